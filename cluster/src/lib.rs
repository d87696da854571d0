//! `cluster`: the Dynamo-style node (`kvnode`) built on [`engine`].
//!
//! Built so far: the pure parts, each unit-tested without sockets: the consistent-hashing
//! [`ring`], [`version`] (vector clocks, siblings, last-write-wins), the RESP and peer
//! codecs in [`protocol`], and the link emulator's model in [`net`]; the peer transport
//! ([`net::transport`], every message through the link emulator); and a single node: its
//! [`config`], its local replica [`store`] over the engine, and the RESP [`server`] (the
//! `kvnode` binary); and the quorum [`coordinator`] that joins them behind
//! [`server::Backend`] when the node has other members; and the [`launcher`] that starts
//! a local multi-datacenter cluster of `kvnode` processes, or of nodes inside the calling
//! process.

pub mod antientropy;
pub mod config;
pub mod coordinator;
pub mod diagnostics;
pub mod error;
pub mod handoff;
pub mod launcher;
pub mod membership;
pub mod net;
pub mod protocol;
pub mod ring;
pub mod scaling;
pub mod server;
pub mod store;
pub mod version;

pub use error::{Error, Result};
