//! The node's anti-entropy service: its trees, its counters, and the rounds it runs (in the
//! background every `interval_ms`, or now on `ANTIENTROPY.RUN`).
//!
//! A round exchanges with every other replica of this node's ranges in turn (see
//! [`super::exchange`]); one round runs at a time. A peer gossip holds Down is skipped
//! (counted); one that fails (down, partitioned, on another ring) is counted and logged
//! and the round goes on with the next.
//!
//! # Ring changes
//!
//! The service follows the ring ([`AntiEntropy::follow_ring`]). While a change is under
//! way (phase streaming or read_new) rounds are paused: replicas are moving, and the
//! trees describe the ring being left. When the ring reaches a new stable version the
//! ranges are recomputed from it and the trees rebuilt on the blocking pool while writes
//! go on ([`LiveTrees::rebuild`]), then swapped in; a round asked for meanwhile waits
//! for the rebuild (bounded). Every exchange starts with the ring version of the trees:
//! a peer whose trees come from another version answers with its version and no roots,
//! and is skipped (INFO `antientropy_peers_other_ring`) rather than compared.
//!
//! # Start-up
//!
//! A node starts with [`Trees::unbuilt`] and builds its trees as a rebuild would, while
//! writes go on. It waits up to `startup_build_wait_ms` for the build before it goes on
//! starting (binding its peer and client listeners), so a node with little data starts
//! with its trees built, as before; one with more serves meanwhile, and its trees are
//! swapped in when done. Until then its own rounds wait as for a rebuild, and it answers a
//! peer's exchange with ring version [`NOT_BUILT`], so the peer skips it ("still
//! building") instead of finding every bucket different.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::config::AntiEntropyConfig;
use super::exchange::{exchange, ExchangeReport};
use super::partition::{depth_for, partition};
use super::trees::{LiveTrees, Trees, NOT_BUILT};
use crate::net::transport::PeerTransport;
use crate::ring::{NodeId, Replication, Ring};
use crate::scaling::{Phase, RingState};
use crate::store::LocalStore;
use crate::{Error, Result};

/// How long a round waits for the trees of a new stable ring.
const REBUILD_WAIT: Duration = Duration::from_secs(60);

/// Empty trees for the ranges `node` replicates in `ring` (at `version`).
fn plan(
    node: &NodeId,
    config: &AntiEntropyConfig,
    ring: &Ring,
    version: u64,
    replication: &Replication,
) -> Result<Trees> {
    let parts = partition(ring, replication)?;
    let depth = depth_for(
        &parts,
        ring.members().len(),
        config.depth_max,
        config.leaves_per_node_max,
    );
    Trees::new(&parts, node, depth, version)
}

/// Counters for INFO's `# AntiEntropy` section.
#[derive(Default)]
pub struct Stats {
    rounds: AtomicU64,
    exchanges: AtomicU64,
    exchange_errors: AtomicU64,
    ranges_compared: AtomicU64,
    ranges_differing: AtomicU64,
    buckets_differing: AtomicU64,
    keys_compared: AtomicU64,
    keys_fetched: AtomicU64,
    keys_pushed: AtomicU64,
    keys_repaired: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    last_round_ms: AtomicU64,
    peers_skipped: AtomicU64,
    peers_other_ring: AtomicU64,
    rounds_paused: AtomicU64,
    rebuilds: AtomicU64,
}

/// The peer frame header, counted with every message's payload.
const FRAME_HEADER_BYTES: u64 = crate::protocol::peer::HEADER_SIZE_BYTES as u64;

impl Stats {
    /// A message of `payload` bytes was sent.
    pub fn add_sent(&self, payload: usize) {
        self.bytes_sent
            .fetch_add(payload as u64 + FRAME_HEADER_BYTES, Ordering::Relaxed);
    }

    /// A message of `payload` bytes was received.
    pub fn add_received(&self, payload: usize) {
        self.bytes_received
            .fetch_add(payload as u64 + FRAME_HEADER_BYTES, Ordering::Relaxed);
    }

    /// `count` keys of this node's store changed by a merge.
    pub fn add_repaired(&self, count: u64) {
        self.keys_repaired.fetch_add(count, Ordering::Relaxed);
    }

    fn add_exchange(&self, report: &ExchangeReport) {
        let add = |counter: &AtomicU64, value: u64| counter.fetch_add(value, Ordering::Relaxed);
        add(&self.exchanges, 1);
        add(&self.ranges_compared, report.ranges_compared);
        add(&self.ranges_differing, report.ranges_differing);
        add(&self.buckets_differing, report.buckets_differing);
        add(&self.keys_compared, report.keys_compared);
        add(&self.keys_fetched, report.keys_fetched);
        add(&self.keys_pushed, report.keys_pushed);
        add(&self.keys_repaired, report.keys_repaired);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// See the module documentation.
pub struct AntiEntropy {
    node: NodeId,
    config: AntiEntropyConfig,
    store: Arc<LocalStore>,
    /// `None` when disabled.
    trees: Option<Arc<LiveTrees>>,
    /// The last ring state seen: version, and whether it is stable.
    ring_seen: Mutex<(u64, bool)>,
    /// The task following the ring.
    ring_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    stats: Stats,
    timeout: Duration,
    /// Set by [`AntiEntropy::start`], cleared by [`AntiEntropy::stop`]: the transport's
    /// handler chain holds this service, so keeping it longer would be a cycle that keeps
    /// the store (and its directory lock) alive after the node stops.
    transport: Mutex<Option<Arc<PeerTransport>>>,
    /// Held for the whole of a round.
    round: tokio::sync::Mutex<()>,
    /// Held for the whole of a tree build: one at a time.
    builds: tokio::sync::Mutex<()>,
    /// The start-up build, when `open` returned before it ended (see [`AntiEntropy::stopped`]).
    first_build: Mutex<Option<tokio::task::JoinHandle<Result<()>>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Gossip's Down verdicts: such peers are skipped rather than waited for.
    detector: OnceLock<crate::handoff::sloppy::FailureDetector>,
}

impl AntiEntropy {
    /// Makes `store` keep this node's trees current and builds them from it (a full scan,
    /// on the blocking pool) while writes go on; returns once they are built, or after
    /// `startup_build_wait_ms` with the build going on (see the module documentation). A
    /// build that fails within the wait fails the start.
    pub async fn open(
        node: NodeId,
        config: AntiEntropyConfig,
        state: &RingState,
        replication: &Replication,
        store: Arc<LocalStore>,
        timeout: Duration,
    ) -> Result<Arc<AntiEntropy>> {
        let planned = if config.enabled {
            Some(plan(
                &node,
                &config,
                &state.current,
                state.spec.version,
                replication,
            )?)
        } else {
            None
        };
        let trees = match planned {
            Some(_) => {
                let live = Arc::new(LiveTrees::new(Arc::new(Trees::unbuilt())));
                store.set_observer(live.clone())?;
                // Nothing writes before this node binds its listeners, after `open`.
                live.hold_writes_off();
                Some(live)
            }
            None => None,
        };
        let wait = Duration::from_millis(config.startup_build_wait_ms);
        let service = Arc::new(AntiEntropy {
            node,
            config,
            store,
            trees,
            ring_seen: Mutex::new((state.spec.version, state.spec.phase == Phase::Stable)),
            ring_task: Mutex::new(None),
            stats: Stats::default(),
            timeout,
            transport: Mutex::new(None),
            round: tokio::sync::Mutex::new(()),
            builds: tokio::sync::Mutex::new(()),
            first_build: Mutex::new(None),
            task: Mutex::new(None),
            detector: OnceLock::new(),
        });
        let Some(planned) = planned else {
            return Ok(service);
        };
        let building = Arc::clone(&service);
        let mut build = tokio::spawn(async move { building.build(planned, true).await });
        let waited = tokio::time::timeout(wait, &mut build).await;
        if let Some(live) = &service.trees {
            live.writes_may_start();
        }
        match waited {
            Ok(joined) => {
                joined
                    .map_err(|error| Error::Stopped(format!("building Merkle trees: {error}")))??;
            }
            Err(_) => {
                log::info!(
                    "kvnode {}: anti-entropy trees still building after {wait:?}; serving meanwhile",
                    service.node
                );
                *lock(&service.first_build) = Some(build);
            }
        }
        Ok(service)
    }

    /// Starts rounds every `interval_ms` (unless 0 or disabled) over `transport`.
    pub fn start(self: &Arc<Self>, transport: Arc<PeerTransport>) {
        *lock(&self.transport) = Some(transport);
        if self.trees.is_none() || self.config.interval_ms == 0 {
            return;
        }
        // Weak: an aborted task that has not been dropped yet must not keep the store open.
        let service = Arc::downgrade(self);
        let interval = Duration::from_millis(self.config.interval_ms);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(service) = service.upgrade() else {
                    return;
                };
                if let Err(error) = service.run_round().await {
                    log::warn!(
                        "kvnode {}: anti-entropy round failed: {error}",
                        service.node
                    );
                }
            }
        });
        *lock(&self.task) = Some(task);
    }

    /// Makes rounds skip peers `detector` (gossip) holds Down; set once.
    pub fn set_failure_detector(&self, detector: crate::handoff::sloppy::FailureDetector) {
        let _ = self.detector.set(detector);
    }

    /// Follows `ring`: pauses rounds while a change is under way and rebuilds the trees on
    /// every new stable version (see the module documentation).
    pub fn follow_ring(
        self: &Arc<Self>,
        mut ring: tokio::sync::watch::Receiver<Arc<RingState>>,
        replication: Replication,
    ) {
        if self.trees.is_none() {
            return;
        }
        let service = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            loop {
                let state = Arc::clone(&ring.borrow_and_update());
                let Some(service) = service.upgrade() else {
                    return;
                };
                let stable = state.spec.phase == Phase::Stable;
                *lock(&service.ring_seen) = (state.spec.version, stable);
                if stable {
                    if let Err(error) = service.rebuild(&state, &replication).await {
                        log::warn!(
                            "kvnode {}: anti-entropy trees not rebuilt for ring version {}: {error}",
                            service.node, state.spec.version
                        );
                    }
                }
                drop(service);
                if ring.changed().await.is_err() {
                    return;
                }
            }
        });
        *lock(&self.ring_task) = Some(task);
    }

    /// Rebuilds the trees for `state`'s ring unless they already come from it.
    async fn rebuild(&self, state: &RingState, replication: &Replication) -> Result<()> {
        if self.trees.is_none() {
            return Ok(());
        }
        let trees = plan(
            &self.node,
            &self.config,
            &state.current,
            state.spec.version,
            replication,
        )?;
        self.build(trees, false).await
    }

    /// Fills `trees` from the store while writes go on and serves them, unless the trees
    /// served already come from their ring version; one build at a time. `first`: the
    /// build of a starting node (logged and counted as such). A failed first build that
    /// no one waits for any more is logged here.
    async fn build(&self, trees: Trees, first: bool) -> Result<()> {
        let Some(live) = &self.trees else {
            return Ok(());
        };
        let _build = self.builds.lock().await;
        let version = trees.ring_version();
        if live.current().ring_version() == version {
            return Ok(());
        }
        let (ranges, depth) = (trees.ranges().len(), trees.depth());
        let (live, store) = (Arc::clone(live), Arc::clone(&self.store));
        let started = Instant::now();
        let built = tokio::task::spawn_blocking(move || live.rebuild(&store, trees))
            .await
            .map_err(|error| Error::Stopped(format!("building Merkle trees: {error}")))
            .and_then(|result| result);
        let keys = match built {
            Ok(keys) => keys,
            Err(error) => {
                match &error {
                    // The node stopping: news, not trouble.
                    Error::Stopped(_) if first => log::info!(
                        "kvnode {}: anti-entropy trees not built: {error}",
                        self.node
                    ),
                    _ if first => log::warn!(
                        "kvnode {}: anti-entropy trees not built: {error}",
                        self.node
                    ),
                    _ => {}
                }
                return Err(error);
            }
        };
        if first {
            log::info!(
                "kvnode {}: anti-entropy trees built: {ranges} ranges, depth {depth}, {keys} keys in {:?}",
                self.node,
                started.elapsed()
            );
        } else {
            self.stats.rebuilds.fetch_add(1, Ordering::Relaxed);
            log::info!(
                "kvnode {}: anti-entropy trees rebuilt for ring version {version}: {ranges} ranges, \
                 depth {depth}, {keys} keys in {:?}",
                self.node,
                started.elapsed()
            );
        }
        Ok(())
    }

    /// Why a round cannot run now (ring changing, trees not rebuilt yet), waiting up to
    /// [`REBUILD_WAIT`] for a rebuild of the stable ring to finish.
    async fn paused(&self, trees: &Arc<LiveTrees>) -> Option<String> {
        let started = Instant::now();
        loop {
            let (version, stable) = *lock(&self.ring_seen);
            if !stable {
                return Some(format!("paused: ring change under way (version {version})"));
            }
            let built = trees.current().ring_version();
            if built == version {
                return None;
            }
            if started.elapsed() >= REBUILD_WAIT {
                return Some(if built == NOT_BUILT {
                    format!(
                        "paused: trees for ring version {version} still building (none served yet)"
                    )
                } else {
                    format!(
                        "paused: trees for ring version {version} still building (serving {built})"
                    )
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Returns once a start-up build still running at [`AntiEntropy::stop`] has given up
    /// and let go of the store, so that the node's directory can be opened again at once
    /// (an in-process restart). Call after `stop`.
    pub async fn stopped(&self) {
        let build = lock(&self.first_build).take();
        if let Some(build) = build {
            // Its outcome was logged by the build; only its end matters here.
            let _ = build.await;
        }
    }

    /// Stops the background rounds, and a tree build in progress.
    pub fn stop(&self) {
        if let Some(live) = &self.trees {
            live.stop();
        }
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        if let Some(task) = lock(&self.ring_task).take() {
            task.abort();
        }
        lock(&self.transport).take();
    }

    /// The trees served now, or an error saying anti-entropy is off.
    pub fn trees(&self) -> Result<Arc<Trees>> {
        self.trees
            .as_ref()
            .map(|live| live.current())
            .ok_or_else(|| {
                Error::Command(format!(
                    "ERR anti-entropy is disabled on {} (antientropy.enabled = false)",
                    self.node
                ))
            })
    }

    /// The local store.
    pub fn store(&self) -> &LocalStore {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &AntiEntropyConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The store, shared (for blocking tasks).
    pub fn store_arc(&self) -> Arc<LocalStore> {
        Arc::clone(&self.store)
    }

    /// The peer request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// One round now (after any round in progress); a summary line per peer.
    pub async fn run_round(self: &Arc<Self>) -> Result<Vec<String>> {
        self.trees()?;
        let transport = lock(&self.transport)
            .clone()
            .ok_or_else(|| Error::Stopped("anti-entropy is not running".into()))?;
        let _round = self.round.lock().await;
        if let Some(live) = &self.trees {
            if let Some(why) = self.paused(live).await {
                self.stats.rounds_paused.fetch_add(1, Ordering::Relaxed);
                return Ok(vec![why]);
            }
        }
        let trees = self.trees()?;
        let started = Instant::now();
        let peers: BTreeSet<NodeId> = trees
            .ranges()
            .iter()
            .flat_map(|tree| tree.replicas.iter().cloned())
            .filter(|peer| *peer != self.node)
            .collect();
        let mut lines = Vec::new();
        let mut budget = self.config.bytes_per_round_max;
        for peer in peers {
            if self.detector.get().is_some_and(|is_down| is_down(&peer)) {
                self.stats.peers_skipped.fetch_add(1, Ordering::Relaxed);
                lines.push(format!("{peer} skipped: gossip holds it down"));
                continue;
            }
            match exchange(self, &trees, &transport, &peer, &mut budget).await {
                Ok(report)
                    if report
                        .peer_ring_version
                        .is_some_and(|v| v != trees.ring_version()) =>
                {
                    self.stats.peers_other_ring.fetch_add(1, Ordering::Relaxed);
                    lines.push(match report.peer_ring_version {
                        Some(NOT_BUILT) => format!("{peer} skipped: its trees are still building"),
                        theirs => format!(
                            "{peer} skipped: its trees are of ring version {}, these of {}",
                            theirs.unwrap_or_default(),
                            trees.ring_version()
                        ),
                    });
                }
                Ok(report) => {
                    self.stats.add_exchange(&report);
                    lines.push(format!("{peer} {}", report.describe()));
                }
                Err(error) => {
                    self.stats.exchange_errors.fetch_add(1, Ordering::Relaxed);
                    log::warn!(
                        "kvnode {}: anti-entropy with {peer} failed: {error}",
                        self.node
                    );
                    lines.push(format!("{peer} failed: {error}"));
                }
            }
        }
        let elapsed = started.elapsed().as_millis() as u64;
        self.stats.rounds.fetch_add(1, Ordering::Relaxed);
        self.stats.last_round_ms.store(elapsed, Ordering::Relaxed);
        lines.push(format!("round took {elapsed} ms"));
        Ok(lines)
    }

    /// INFO's `# AntiEntropy` fields.
    pub fn info_fields(&self) -> Vec<(&'static str, u64)> {
        let Some(live) = &self.trees else {
            return vec![("antientropy_enabled", 0)];
        };
        let trees = live.current();
        let stats = &self.stats;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        vec![
            ("antientropy_enabled", 1),
            // 0 until the starting node's trees are built.
            (
                "antientropy_ring_version",
                if trees.is_built() {
                    trees.ring_version()
                } else {
                    0
                },
            ),
            ("antientropy_trees_building", u64::from(!trees.is_built())),
            ("antientropy_rebuilds", load(&stats.rebuilds)),
            ("antientropy_ranges", trees.ranges().len() as u64),
            ("antientropy_depth", u64::from(trees.depth())),
            ("antientropy_tree_keys", trees.keys()),
            ("antientropy_tree_update_errors", trees.update_errors()),
            ("antientropy_rounds", load(&stats.rounds)),
            ("antientropy_exchanges", load(&stats.exchanges)),
            ("antientropy_exchange_errors", load(&stats.exchange_errors)),
            ("antientropy_peers_skipped", load(&stats.peers_skipped)),
            (
                "antientropy_peers_other_ring",
                load(&stats.peers_other_ring),
            ),
            ("antientropy_rounds_paused", load(&stats.rounds_paused)),
            ("antientropy_ranges_compared", load(&stats.ranges_compared)),
            (
                "antientropy_ranges_differing",
                load(&stats.ranges_differing),
            ),
            (
                "antientropy_buckets_differing",
                load(&stats.buckets_differing),
            ),
            ("antientropy_keys_compared", load(&stats.keys_compared)),
            ("antientropy_keys_fetched", load(&stats.keys_fetched)),
            ("antientropy_keys_pushed", load(&stats.keys_pushed)),
            ("antientropy_keys_repaired", load(&stats.keys_repaired)),
            ("antientropy_bytes_sent", load(&stats.bytes_sent)),
            ("antientropy_bytes_received", load(&stats.bytes_received)),
            ("antientropy_last_round_ms", load(&stats.last_round_ms)),
        ]
    }

    /// `ANTIENTROPY.ROOTS`: a summary line, then one line per range: `START END root ROOT
    /// keys COUNT replicas A,B,C` (positions and root in hex).
    pub fn root_lines(&self) -> Result<Vec<String>> {
        let trees = self.trees()?;
        if !trees.is_built() {
            return Ok(vec![format!(
                "node {} trees still building (a starting node's scan of its store)",
                self.node
            )]);
        }
        let mut lines = vec![format!(
            "node {} ring_version {} depth {} ranges {}",
            self.node,
            trees.ring_version(),
            trees.depth(),
            trees.ranges().len()
        )];
        for tree in trees.ranges() {
            let (root, keys) = {
                let locked = tree.lock();
                (locked.root(), locked.len())
            };
            let mut line = format!(
                "{:016x} {:016x} root {root:016x} keys {keys} replicas ",
                tree.range.start_exclusive, tree.range.end_inclusive
            );
            let names: Vec<&str> = tree.replicas.iter().map(NodeId::as_str).collect();
            let _ = write!(line, "{}", names.join(","));
            lines.push(line);
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests;
