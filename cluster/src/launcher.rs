//! Starts an emulated multi-datacenter cluster on this host, for tests and for the load
//! generator: either as `kvnode` processes ([`LocalCluster`]) or as nodes running inside
//! the calling process ([`InProcessCluster`]).
//!
//! Every node gets a loopback address of its own (127.0.0.x) with the same two ports, so
//! the member list can be written before any node starts and no two nodes race for a
//! port. A cluster picks its block of addresses from the process id and a counter and
//! skips blocks whose ports are already taken, so several clusters (tests in parallel, or
//! several test binaries) rarely meet; when they still do, a node fails to bind and the
//! launch reports it.
//!
//! Both launchers own their nodes: dropping a cluster stops every node it started,
//! whatever path the caller took.
//!
//! - [`addresses`]: address blocks and the per-node configurations both launchers share.
//! - [`process`]: [`LocalCluster`], one `kvnode` process per node.
//! - [`in_process`]: [`InProcessCluster`], every node a [`crate::server::RunningNode`] on one
//!   tokio runtime owned by the cluster.
//! - [`readiness`]: waiting until a node serves (its ready line, or a `PING` answered).

pub mod addresses;
pub mod in_process;
pub mod process;
pub mod readiness;

pub use addresses::{ClusterLayout, CLIENT_PORT, NODES_MAX, PEER_PORT};
pub use in_process::{InProcessCluster, InProcessSpec};
pub use process::{ClusterSpec, LaunchedNode, LocalCluster};
