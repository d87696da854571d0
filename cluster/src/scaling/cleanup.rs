//! `CLUSTER.CLEANUP [COMPACT]`: a node drops its copies of the keys it no longer
//! replicates.
//!
//! A ring change streams each range to the nodes that gain it, and the nodes that lose a
//! range keep their copies (a stale duplicate, outside every anti-entropy tree, that no
//! read asks for). They take disk and memory, and a capacity planner measuring a grown
//! cluster sees the old nodes no smaller. An admin runs this on each node once the ring is
//! stable, as Cassandra's `nodetool cleanup` after adding nodes.
//!
//! The node scans its store in steps of [`CLEANUP_SCAN_KEYS`] keys on the blocking pool
//! (it serves meanwhile). A key whose preference list in the stable ring does not hold this
//! node is dropped under the key's write lock, and only if its stored bytes are still those
//! the scan read and the ring is still at the version the cleanup started at: a key written
//! since (by a coordinator already at a newer ring, say) is kept, and a ring change stops
//! the cleanup after the step under way, with what it did so far in the error. The copy is
//! dropped with an engine tombstone, not a version, so nothing is deleted for the cluster;
//! with `COMPACT` the node then merges its tables, which gives the space back on disk.
//!
//! The node refuses while a ring change is under way (a phase other than stable), while it
//! drives a change itself, and when it is not a member of the ring (it left, or has not
//! joined); it runs one cleanup at a time.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{Phase, RingState, Scaling};
use crate::ring::{NodeId, Replication};
use crate::store::LocalStore;
use crate::{Error, Result};

/// Keys one step scans: each step is one blocking-pool task, and the version check between
/// steps bounds how much runs after a ring change begins.
pub const CLEANUP_SCAN_KEYS: usize = 1024;

/// What a cleanup (or one step of it) did.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub scanned: u64,
    pub removed: u64,
    /// Key and stored bytes of the removed copies.
    pub bytes: u64,
    /// Keys this node does not replicate that were written between the scan and the
    /// removal, or found when the ring had moved on: kept.
    pub kept: u64,
}

impl Swept {
    fn add(&mut self, other: Swept) {
        self.scanned += other.scanned;
        self.removed += other.removed;
        self.bytes += other.bytes;
        self.kept += other.kept;
    }
}

impl Scaling {
    /// Runs `CLUSTER.CLEANUP`; see the module documentation.
    pub(super) async fn cleanup(&self, compact: bool) -> Result<Vec<String>> {
        let Ok(_driving) = self.driving.try_lock() else {
            return Err(Error::Command(
                "ERR a ring change or a cleanup is already running on this node".into(),
            ));
        };
        let state = self.snapshot();
        let version = state.spec.version;
        if state.spec.phase != Phase::Stable {
            return Err(Error::Command(format!(
                "ERR the ring is changing (version {version}, phase {}): clean up once it is \
                 stable",
                state.spec.phase.as_str()
            )));
        }
        if !state
            .read_ring()
            .members()
            .iter()
            .any(|member| member.id == self.node)
        {
            // A node that left (or has not joined) replicates nothing: its copies are what
            // the members streamed from it, so it keeps them rather than drop them all.
            return Err(Error::Command(format!(
                "ERR node {} is not a member of the ring (version {version}): nothing to \
                 clean up",
                self.node
            )));
        }
        let started = Instant::now();
        let mut swept = Swept::default();
        let mut cursor = Some(Vec::new());
        while let Some(start) = cursor.take() {
            let step = Step {
                store: Arc::clone(&self.store),
                state: Arc::clone(&state),
                node: self.node.clone(),
                replication: self.replication.clone(),
                ring_now: self.watch.subscribe(),
            };
            let (done, next) = tokio::task::spawn_blocking(move || step.sweep(&start))
                .await
                .map_err(|error| Error::Stopped(format!("cleanup task failed: {error}")))??;
            swept.add(done);
            self.count_cleaned(done);
            cursor = next;
            let now = self.snapshot().spec.version;
            if now != version {
                return Err(Error::Command(format!(
                    "ERR cleanup stopped: the ring moved from version {version} to {now}; {} \
                     of {} keys scanned were removed ({} bytes); run it again once the ring \
                     is stable",
                    swept.removed, swept.scanned, swept.bytes
                )));
            }
        }
        let sweep_ms = started.elapsed().as_millis() as u64;
        let mut lines = vec![
            format!("cleaned ring_version {version}"),
            format!("keys_scanned {}", swept.scanned),
            format!("keys_removed {}", swept.removed),
            format!("bytes_removed {}", swept.bytes),
            format!("keys_kept_written {}", swept.kept),
            format!("duration_ms {sweep_ms}"),
        ];
        if compact {
            let compacting = Instant::now();
            let store = Arc::clone(&self.store);
            tokio::task::spawn_blocking(move || store.compact())
                .await
                .map_err(|error| Error::Stopped(format!("compaction task failed: {error}")))??;
            lines.push(format!("compact_ms {}", compacting.elapsed().as_millis()));
        }
        self.counters.cleanups.fetch_add(1, Ordering::Relaxed);
        log::info!("node {}: cleanup done: {}", self.node, lines.join(", "));
        Ok(lines)
    }

    fn count_cleaned(&self, done: Swept) {
        let counters = &self.counters;
        counters
            .cleanup_keys_removed
            .fetch_add(done.removed, Ordering::Relaxed);
        counters
            .cleanup_bytes_removed
            .fetch_add(done.bytes, Ordering::Relaxed);
    }
}

/// One step's inputs, moved to the blocking pool.
struct Step {
    store: Arc<LocalStore>,
    /// The stable ring the cleanup started at.
    state: Arc<RingState>,
    node: NodeId,
    replication: Replication,
    /// The node's ring now, checked under each key's lock.
    ring_now: tokio::sync::watch::Receiver<Arc<RingState>>,
}

impl Step {
    /// Scans up to [`CLEANUP_SCAN_KEYS`] keys from `start`, dropping those this node does
    /// not replicate; returns what it did and where the next step starts (`None`: done).
    fn sweep(&self, start: &[u8]) -> Result<(Swept, Option<Vec<u8>>)> {
        let rows = self.store.scan_raw(start, CLEANUP_SCAN_KEYS)?;
        let next = crate::store::next_page_start(&rows, CLEANUP_SCAN_KEYS);
        let version = self.state.spec.version;
        let mut swept = Swept::default();
        for (key, bytes) in rows {
            swept.scanned += 1;
            if self
                .state
                .read_replicas(&key, &self.replication)?
                .contains(&self.node)
            {
                continue;
            }
            let still_stable = || self.ring_now.borrow().spec.version == version;
            if self.store.remove_if_unchanged(&key, &bytes, still_stable)? {
                swept.removed += 1;
                swept.bytes += (key.len() + bytes.len()) as u64;
            } else {
                swept.kept += 1;
            }
        }
        // One log write (and sync, with `sync = always`) for the step's removals.
        self.store.commit()?;
        Ok((swept, next))
    }
}
