//! Scaling: adding a node to a running cluster and taking one out, while it serves.
//!
//! # The ring as a versioned value
//!
//! A node serves with a [`RingState`]: a [`RingSpec`] (version, [`Phase`], the member lists
//! with their addresses) and the rings built from it. It sits behind a lock as an `Arc`;
//! each request takes a snapshot ([`Scaling::snapshot`]) and keeps it to the end, so a
//! change never shows a request half of one ring and half of another. The spec is
//! persisted in the data directory (`ring-state.toml`), so a restarted node keeps the ring
//! it changed to; the configuration's member list is only the first ring.
//!
//! # A change
//!
//! One node drives it: the node an admin sends `CLUSTER.JOIN`, `CLUSTER.LEAVE` or
//! `CLUSTER.REMOVE` to. With `current` the ring now and `next` the ring after:
//!
//! 1. **Streaming** (version v+1) is sent to every member of both rings
//!    ([`PeerMessage::RingUpdate`]), and the driver waits for all of them to acknowledge.
//!    From then on every write goes to the replicas of both rings, reads still to
//!    `current`'s. The driver then has every member wait until each write it coordinated
//!    under an older ring has been answered ([`PeerMessage::DrainWrites`]: a write counts
//!    as in flight on the ring state it took, [`Scaling::write_snapshot`]), so no write the
//!    sources may miss is acknowledged after streaming starts. That is usually at once;
//!    a write whose mint tries unreachable replicas takes its timeouts.
//! 2. Each node of `next` is told to stream ([`PeerMessage::Rebalance`]): it pulls from
//!    every member of `current` the keys it replicates in `next` but not in `current`
//!    and the source replicates in `current` ([`RingState::streams`]), in bounded batches ([`PeerMessage::StreamPull`], at most
//!    [`STREAM_SCAN_KEYS`] keys scanned per batch), and folds each row into its store with
//!    the vector-clock merge, so a streamed copy and a concurrent write meet correctly in
//!    either order. Every current replica of a key takes part, not one: a key written at
//!    QUORUM may be missing from one replica, and the replicas together hold every
//!    acknowledged write. But the sources, pulled at once, are taken in ring order, and
//!    only the first that replicates a key sends its set
//!    ([`PeerMessage::StreamPullDigests`]); the later ones send a digest of their copy, and
//!    the gainer fetches ([`PeerMessage::StreamFetch`]) the sets whose digest differs from
//!    what it holds (module `stream`), so a key the replicas agree on crosses the network
//!    once.
//! 3. **ReadNew** (v+2): reads go to `next`'s replicas, writes still to both. While some
//!    nodes read from `current` and others from `next`, a write acknowledged by a majority
//!    of the union of both replica sets (one node more than either) reaches a majority of
//!    each.
//! 4. **Stable** (v+3) with `next` as the only ring.
//!
//! A node that leaves (`CLUSTER.LEAVE`, run on it) drives its own change and is a source in
//! step 2, so its ranges are on their new owners before it goes. `CLUSTER.REMOVE` takes out
//! a node that is gone: the other replicas are the sources, and the removed node's
//! acknowledgement is not waited for.
//!
//! # Observability
//!
//! INFO's `# Scaling` section: ring version and phase, changes driven, rows and bytes
//! streamed in and out, keys new to this node, and the last change's figures; the admin
//! command's reply gives the change's figures per node.
//!
//! # Limits
//!
//! One change at a time: a node refuses to drive a change while its ring is moving to
//! other members. A change whose member does not acknowledge a phase within
//! [`PHASE_TIMEOUTS`] request timeouts, or that could not stream, fails with the ring left
//! at that phase (the admin command says which; reads and writes keep being served as that
//! phase says); repeating the same command, on any member, resumes it from there. Nodes
//! that lose ranges keep their copies until an admin runs `CLUSTER.CLEANUP` on them
//! ([`cleanup`]).

mod change;
pub mod cleanup;
mod handler;
mod stream;
pub mod topology;

pub use handler::ScalingHandler;
pub use topology::{Phase, RingSpec, RingState, StreamRole, WriteSnapshot};

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use crate::config::NodeConfig;
use crate::net::transport::PeerTransport;
use crate::protocol::peer::PeerMessage;
use crate::ring::{NodeId, Replication};
use crate::store::LocalStore;
use crate::{Error, Result};

/// Most keys a source scans for one [`PeerMessage::StreamPull`]: bounds the batch (at
/// most this many rows, each under the stored-set limit) and the time a source spends.
pub const STREAM_SCAN_KEYS: u32 = 512;

/// How long the driver waits for every member to take one phase of a change, in request
/// timeouts.
pub const PHASE_TIMEOUTS: u32 = 10;

/// How often a node waiting for writes under an older ring to be answered
/// ([`Scaling::drain_writes`]) looks again.
const DRAIN_POLL: Duration = Duration::from_millis(2);

/// How long one node may take to stream what it gains.
pub const REBALANCE_TIMEOUT: Duration = Duration::from_secs(600);

/// Counters for INFO's `# Scaling`.
#[derive(Default)]
struct Counters {
    changes: AtomicU64,
    rows_received: AtomicU64,
    keys_new: AtomicU64,
    bytes_received: AtomicU64,
    rows_sent: AtomicU64,
    digests_received: AtomicU64,
    rows_fetched: AtomicU64,
    digests_sent: AtomicU64,
    bytes_sent: AtomicU64,
    batches_served: AtomicU64,
    last_keys_moved: AtomicU64,
    last_rows_streamed: AtomicU64,
    last_bytes_streamed: AtomicU64,
    last_duration_ms: AtomicU64,
    cleanups: AtomicU64,
    cleanup_keys_removed: AtomicU64,
    cleanup_bytes_removed: AtomicU64,
}

/// A request an admin makes of the ring (`CLUSTER.JOIN`, `CLUSTER.LEAVE`,
/// `CLUSTER.REMOVE`) or of what this node keeps of it (`CLUSTER.CLEANUP`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScalingRequest {
    /// Add this member (which must be running with `joining = true`).
    Join(crate::config::MemberConfig),
    /// Take this node out, streaming its ranges first.
    Leave,
    /// Take out the member with this id, which is gone.
    Remove(String),
    /// Drop this node's copies of keys it no longer replicates (`CLUSTER.CLEANUP`, see
    /// [`cleanup`]); then, with `compact`, merge its tables.
    Cleanup { compact: bool },
}

/// One node's ring and the machinery that changes it.
pub struct Scaling {
    node: NodeId,
    replication: Replication,
    vnodes_per_weight: u32,
    data_dir: PathBuf,
    request_timeout: Duration,
    state: RwLock<Arc<RingState>>,
    /// States replaced while writes coordinated under them were still unanswered: kept
    /// until those are ([`Scaling::drain_writes`]). None is ever current again, so once
    /// its count is zero it stays zero.
    retired: Mutex<Vec<Arc<RingState>>>,
    store: Arc<LocalStore>,
    /// Weak: the transport's handler chain holds this service, and a strong reference
    /// back would keep both (and the store) alive after the node stops.
    transport: OnceLock<Weak<PeerTransport>>,
    /// Held by the change this node drives.
    driving: tokio::sync::Mutex<()>,
    counters: Counters,
    /// The ring state after every change, for services that follow the ring
    /// (anti-entropy rebuilds its trees on a new stable ring).
    watch: tokio::sync::watch::Sender<Arc<RingState>>,
}

impl Scaling {
    /// The ring persisted in `config.data_dir`, or else the configured one.
    pub fn new(config: &NodeConfig, store: Arc<LocalStore>) -> Result<Arc<Scaling>> {
        let state = match topology::load(&config.data_dir)? {
            Some(spec) => RingState::build(spec, config.vnodes_per_weight)?,
            None => RingState::from_config(config)?,
        };
        let state = Arc::new(state);
        Ok(Arc::new(Scaling {
            watch: tokio::sync::watch::Sender::new(Arc::clone(&state)),
            node: NodeId::new(&config.node_id),
            replication: config.replication.clone(),
            vnodes_per_weight: config.vnodes_per_weight,
            data_dir: config.data_dir.clone(),
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            state: RwLock::new(state),
            retired: Mutex::new(Vec::new()),
            store,
            transport: OnceLock::new(),
            driving: tokio::sync::Mutex::new(()),
            counters: Counters::default(),
        }))
    }

    /// The ring state now; keep it for the whole request.
    pub fn snapshot(&self) -> Arc<RingState> {
        Arc::clone(&self.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The ring state now, for a write to be coordinated under: the write counts as in
    /// flight on it until the returned snapshot is dropped (hold it until the write is
    /// answered), so a ring change can wait for it ([`Scaling::drain_writes`]).
    pub fn write_snapshot(&self) -> WriteSnapshot {
        // Counted under the read lock: `apply` replaces the state under the write lock, so
        // a write either counts on the state it replaced or takes the new one.
        let current = self.state.read().unwrap_or_else(|p| p.into_inner());
        WriteSnapshot::new(Arc::clone(&current))
    }

    /// Waits until every write this node coordinated under a ring older than `version` has
    /// been answered (acknowledged or failed), for at most `limit`. A ring change's driver
    /// has every member do this once they all write to both rings, so that no write the
    /// sources do not hold yet is acknowledged after streaming starts. Fails when this node
    /// is not at `version` yet, or when writes are still unanswered at the end.
    pub async fn drain_writes(&self, version: u64, limit: Duration) -> Result<()> {
        let now = self.snapshot().spec.version;
        if now < version {
            return Err(Error::Command(format!(
                "ERR node {} is at ring version {now}, not yet {version}: it cannot wait for \
                 the writes before it",
                self.node
            )));
        }
        let started = Instant::now();
        loop {
            let pending: usize = {
                let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
                retired.retain(|state| state.writes_in_flight() > 0);
                retired
                    .iter()
                    .filter(|state| state.spec.version < version)
                    .map(|state| state.writes_in_flight())
                    .sum()
            };
            if pending == 0 {
                return Ok(());
            }
            if started.elapsed() >= limit {
                return Err(Error::Command(format!(
                    "ERR node {}: {pending} writes coordinated under a ring older than version \
                     {version} still unanswered after {} ms",
                    self.node,
                    limit.as_millis()
                )));
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
    }

    /// Follows the ring: the receiver sees every state this node takes.
    pub fn watch_ring(&self) -> tokio::sync::watch::Receiver<Arc<RingState>> {
        self.watch.subscribe()
    }

    /// Gives the service its transport and makes every member of the ring a peer.
    pub fn attach(&self, transport: Arc<PeerTransport>) {
        let _ = self.transport.set(Arc::downgrade(&transport));
        self.add_peers(&self.snapshot());
    }

    fn transport(&self) -> Result<Arc<PeerTransport>> {
        self.transport
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| Error::Stopped("the peer transport is not running".into()))
    }

    fn add_peers(&self, state: &RingState) {
        let Ok(transport) = self.transport() else {
            return;
        };
        let known = transport.peers();
        for member in state.all_members() {
            let id = NodeId::new(&member.id);
            if id != self.node && !known.contains(&id) {
                transport.add_peer(id, member.datacenter.clone(), member.peer_address);
            }
        }
    }

    /// Takes `spec` if it is newer than the ring now (persisting it first); returns the
    /// version this node is at afterwards.
    pub fn apply(&self, spec: RingSpec) -> Result<u64> {
        let now = self.snapshot();
        if spec.version <= now.spec.version {
            return Ok(now.spec.version);
        }
        let state = Arc::new(RingState::build(spec, self.vnodes_per_weight)?);
        topology::save(&self.data_dir, &state.spec)?;
        self.add_peers(&state);
        let version = {
            let mut current = self.state.write().unwrap_or_else(|p| p.into_inner());
            if state.spec.version > current.spec.version {
                let replaced = std::mem::replace(&mut *current, Arc::clone(&state));
                // No write can take `replaced` any more (see `write_snapshot`).
                if replaced.writes_in_flight() > 0 {
                    self.retired
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(replaced);
                }
                self.watch.send_replace(Arc::clone(&state));
            }
            current.spec.version
        };
        log::info!(
            "node {}: ring version {} phase {} ({} -> {} members)",
            self.node,
            state.spec.version,
            state.spec.phase.as_str(),
            state.spec.current.len(),
            state.spec.next.len()
        );
        Ok(version)
    }

    /// The replication every ring is placed with.
    pub fn replication(&self) -> &Replication {
        &self.replication
    }

    /// INFO's `# Scaling` fields.
    pub fn info(&self) -> Vec<(&'static str, u64)> {
        let state = self.snapshot();
        let counter = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let c = &self.counters;
        vec![
            ("ring_version", state.spec.version),
            ("ring_phase", u64::from(state.spec.phase.to_byte())),
            ("ring_members", state.read_ring().members().len() as u64),
            ("ring_changes_driven", counter(&c.changes)),
            ("stream_rows_received", counter(&c.rows_received)),
            ("stream_keys_new", counter(&c.keys_new)),
            ("stream_bytes_received", counter(&c.bytes_received)),
            ("stream_digests_received", counter(&c.digests_received)),
            ("stream_rows_fetched", counter(&c.rows_fetched)),
            ("stream_rows_sent", counter(&c.rows_sent)),
            ("stream_digests_sent", counter(&c.digests_sent)),
            ("stream_bytes_sent", counter(&c.bytes_sent)),
            ("stream_batches_served", counter(&c.batches_served)),
            ("last_change_keys_moved", counter(&c.last_keys_moved)),
            ("last_change_rows_streamed", counter(&c.last_rows_streamed)),
            (
                "last_change_bytes_streamed",
                counter(&c.last_bytes_streamed),
            ),
            ("last_change_duration_ms", counter(&c.last_duration_ms)),
            ("cleanups", counter(&c.cleanups)),
            ("cleanup_keys_removed", counter(&c.cleanup_keys_removed)),
            ("cleanup_bytes_removed", counter(&c.cleanup_bytes_removed)),
        ]
    }

    /// Runs an admin's request; the reply's lines describe what moved.
    pub async fn execute(&self, request: ScalingRequest) -> Result<Vec<String>> {
        match request {
            ScalingRequest::Cleanup { compact } => self.cleanup(compact).await,
            change => self.drive(change).await,
        }
    }

    /// Handles the ring-change messages; `None` for every other message.
    pub async fn handle(&self, from: &NodeId, message: PeerMessage) -> Option<PeerMessage> {
        let result = match message {
            PeerMessage::RingUpdate { spec } => self
                .apply(spec)
                .map(|version| PeerMessage::RingAck { version }),
            PeerMessage::StreamPull {
                version,
                cursor,
                scan_limit,
            } => self.serve_pull(from, version, cursor, scan_limit).await,
            PeerMessage::StreamPullDigests {
                version,
                cursor,
                scan_limit,
                pulled,
            } => {
                self.serve_pull_digests(from, version, cursor, scan_limit, pulled)
                    .await
            }
            PeerMessage::StreamFetch { version, keys } => {
                self.serve_fetch(from, version, keys).await
            }
            PeerMessage::Rebalance { version, skip } => self.rebalance(version, &skip).await,
            PeerMessage::DrainWrites { version, wait_ms } => self
                .drain_writes(version, Duration::from_millis(wait_ms))
                .await
                .map(|()| PeerMessage::RingAck {
                    version: self.snapshot().spec.version,
                }),
            _ => return None,
        };
        Some(result.unwrap_or_else(|error| PeerMessage::Error {
            message: error.to_string(),
        }))
    }
}

#[cfg(test)]
mod drain_tests;
#[cfg(test)]
mod tests;
