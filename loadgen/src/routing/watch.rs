//! Following the cluster's ring while a run goes on.
//!
//! A token-aware router computes each key's replicas from the [`Topology`] it was built
//! with. When the ring changes under the run (a node joins or leaves, by the schedule's
//! `add`/`remove` or by an admin), a router that kept the old ring sends keys to nodes
//! that no longer replicate them: each such request costs the cluster a hop (the node has
//! a replica mint the version and forwards the reads), and the run would measure that
//! rather than the new ring. A [`TopologyWatch`] holds the latest topology; a thread asks
//! the nodes for it every [`FOLLOW_INTERVAL`] and publishes it when its ring version
//! moves, and routers built to follow the watch rebuild themselves on their next request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use super::{fetch_topology, Topology};

/// How often the following thread asks for `CLUSTER.TOPOLOGY`.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// The latest topology and a count of how many were published.
pub struct TopologyWatch {
    published: AtomicU64,
    current: RwLock<Topology>,
}

impl TopologyWatch {
    /// A watch holding `topology`.
    pub fn new(topology: Topology) -> Arc<TopologyWatch> {
        Arc::new(TopologyWatch {
            published: AtomicU64::new(0),
            current: RwLock::new(topology),
        })
    }

    /// How many topologies were published after the first: a router compares it with the
    /// count it last saw (one atomic load per request).
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// The latest topology.
    pub fn current(&self) -> Topology {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Makes `topology` the latest.
    pub fn publish(&self, topology: Topology) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = topology;
        self.published.fetch_add(1, Ordering::Release);
    }

    /// Asks `addresses` (the first that answers) for the topology every `interval`, and
    /// publishes it when its ring version differs from the latest's. The thread ends once
    /// nothing else holds the watch (at most `interval` later).
    pub fn follow(self: &Arc<Self>, addresses: Vec<SocketAddr>, interval: Duration) {
        let watch: Weak<TopologyWatch> = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("kvbench-topology".into())
            .spawn(move || loop {
                std::thread::sleep(interval);
                let Some(watch) = watch.upgrade() else {
                    return;
                };
                let known = watch.current().ring_version();
                // A node the schedule killed does not answer: the next one is asked.
                if let Some(topology) = addresses
                    .iter()
                    .find_map(|address| fetch_topology(*address).ok())
                {
                    if topology.ring_version() != known {
                        watch.publish(topology);
                    }
                }
            });
        if let Err(error) = spawned {
            log::warn!("kvbench: not following the ring (no thread: {error})");
        }
    }
}
