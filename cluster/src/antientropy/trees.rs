//! This node's Merkle trees, one per range it replicates, kept current by the store's
//! write observer.
//!
//! Built from a full scan of the store when the node starts, then updated on every write:
//! O(depth) under the range's own mutex. The start-up build is a rebuild (below) from
//! [`Trees::unbuilt`], so a node with much data serves clients before its trees are done
//! (see `crate::antientropy::service`).
//!
//! # Rebuilding while writes go on
//!
//! On a new stable ring the node builds a new set of [`Trees`] and swaps it in
//! ([`LiveTrees::rebuild`]). The build scans the store in key order with a *cursor* (the
//! last key placed) while the write observer feeds both the serving trees and the new
//! ones: a write of a key at or before the cursor is applied to the new trees as usual;
//! a write of a key after it is only noted (*uncovered*), since the scan will place that
//! key later. The scan places a key — reads its stored bytes, inserts them, moves the
//! cursor to it — holding the key's write lock ([`LocalStore::with_key_locked`]), so
//! every write of that key is either before (and the scan reads its result) or after
//! (and the observer applies it on top). Before moving the cursor past a key that was
//! noted but not in the scanned page (written after the page was read), the scan places
//! it first; at the end it places every noted key left. A key of the page no write has
//! been noted for is placed with the bytes the page scan read (still under its lock: a
//! write of it would have been noted, observer call and all, before releasing the lock);
//! only a noted one is read again. So each key is placed exactly
//! once and every later write lands on top of it: the new trees equal a build from the
//! store as it is when the swap happens, with no write lost and none counted twice.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::merkle::MerkleTree;
use super::partition::ReplicatedRange;
use crate::ring::{NodeId, Ring, TokenRange};
use crate::store::{LocalStore, WriteObserver};
use crate::Result;

/// The ring version of [`Trees::unbuilt`]: no ring's, so no exchange compares them.
pub const NOT_BUILT: u64 = u64::MAX;

/// Rows read per engine scan while building.
const BUILD_PAGE_ROWS: usize = 4096;

/// One range's tree and the other nodes that replicate it.
pub struct RangeTree {
    /// The range.
    pub range: TokenRange,
    /// Its replicas, sorted, this node included.
    pub replicas: Vec<NodeId>,
    tree: Mutex<MerkleTree>,
}

impl RangeTree {
    /// The tree, locked.
    pub fn lock(&self) -> MutexGuard<'_, MerkleTree> {
        // A panic mid-update leaves a wrong hash at worst, which a repair round fixes by
        // exchanging a few keys; the tree stays usable.
        self.tree
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Every tree of this node.
pub struct Trees {
    /// The version of the ring ([`crate::scaling::RingSpec::version`]) the ranges come from.
    ring_version: u64,
    depth: u8,
    /// Sorted by `start_exclusive`; at most one wraps past zero (or is the whole ring).
    ranges: Vec<RangeTree>,
    /// Writes whose key could not be placed in its tree (should stay 0).
    update_errors: AtomicU64,
}

impl Trees {
    /// Empty trees of `depth` for the ranges of `partition` (of the ring at `ring_version`)
    /// that `node` replicates.
    pub fn new(
        partition: &[ReplicatedRange],
        node: &NodeId,
        depth: u8,
        ring_version: u64,
    ) -> Result<Trees> {
        let mut ranges = Vec::new();
        for part in partition.iter().filter(|part| part.replicas.contains(node)) {
            ranges.push(RangeTree {
                range: part.range,
                replicas: part.replicas.clone(),
                tree: Mutex::new(MerkleTree::new(part.range, depth)?),
            });
        }
        ranges.sort_by_key(|tree| tree.range);
        Ok(Trees {
            ring_version,
            depth,
            ranges,
            update_errors: AtomicU64::new(0),
        })
    }

    /// No trees, standing for the ones a node builds as it starts: of ring version
    /// [`NOT_BUILT`], holding no range (writes are not counted in them).
    pub fn unbuilt() -> Trees {
        Trees {
            ring_version: NOT_BUILT,
            depth: 0,
            ranges: Vec::new(),
            update_errors: AtomicU64::new(0),
        }
    }

    /// Whether these are [`Trees::unbuilt`].
    pub fn is_built(&self) -> bool {
        self.ring_version != NOT_BUILT
    }

    /// The version of the ring the ranges come from.
    pub fn ring_version(&self) -> u64 {
        self.ring_version
    }

    /// The depth of every tree.
    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// The trees, sorted by range.
    pub fn ranges(&self) -> &[RangeTree] {
        &self.ranges
    }

    /// The tree of exactly `range`, if this node has one.
    pub fn get(&self, range: &TokenRange) -> Option<&RangeTree> {
        self.ranges
            .binary_search_by(|tree| tree.range.cmp(range))
            .ok()
            .map(|index| &self.ranges[index])
    }

    /// The tree whose range holds ring position `position`.
    pub fn holding(&self, position: u64) -> Option<&RangeTree> {
        let after = self
            .ranges
            .partition_point(|tree| tree.range.start_exclusive < position);
        if after > 0 && self.ranges[after - 1].range.contains(position) {
            return Some(&self.ranges[after - 1]);
        }
        // The wrapping range (start >= end) sorts last by its start.
        self.ranges
            .last()
            .filter(|tree| tree.range.contains(position))
    }

    /// Adds `key` with the digest of its stored `bytes` to the tree holding it; returns
    /// whether one does (a key of a range this node does not replicate is in none).
    pub fn insert_row(&self, key: &[u8], bytes: &[u8]) -> Result<bool> {
        match self.holding(Ring::position_of(key)) {
            Some(tree) => {
                tree.lock().insert(key, super::digest(bytes))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Fills the trees from every key in `store`; returns the keys counted. Only while
    /// nothing writes to the store: the tests' reference for what the trees should hold (a
    /// node builds through [`LiveTrees::rebuild`], which writes may race).
    pub fn build(&self, store: &LocalStore) -> Result<u64> {
        let mut start = Vec::new();
        let mut counted = 0;
        loop {
            let rows = store.scan_raw(&start, BUILD_PAGE_ROWS)?;
            for (key, bytes) in &rows {
                counted += u64::from(self.insert_row(key, bytes)?);
            }
            match rows.last() {
                Some((last, _)) if rows.len() == BUILD_PAGE_ROWS => {
                    start = last.clone();
                    start.push(0);
                }
                _ => return Ok(counted),
            }
        }
    }

    /// Writes the observer could not apply to a tree.
    pub fn update_errors(&self) -> u64 {
        self.update_errors.load(Ordering::Relaxed)
    }

    /// Keys in all trees.
    pub fn keys(&self) -> u64 {
        self.ranges.iter().map(|tree| tree.lock().len()).sum()
    }
}

impl WriteObserver for Trees {
    fn stored(&self, key: &[u8], old: Option<u64>, new: u64) {
        let Some(tree) = self.holding(Ring::position_of(key)) else {
            return;
        };
        let mut tree = tree.lock();
        let result = match old {
            Some(old) if old == new => Ok(()),
            Some(old) => tree.update(key, old, new),
            None => tree.insert(key, new),
        };
        if result.is_err() {
            self.update_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The trees the node serves, and the ones being built for a new ring; the store's write
/// observer (see the module documentation).
pub struct LiveTrees {
    live: RwLock<Live>,
    /// Set when the node stops: a build in progress gives up (see [`LiveTrees::stop`]).
    stopped: AtomicBool,
    quiet: Quiet,
}

/// Whether the caller holds writes off ([`LiveTrees::hold_writes_off`]), and the lock a
/// build holds while it reads and places a page without locking keys.
#[derive(Default)]
struct Quiet {
    held: AtomicBool,
    page: Mutex<()>,
}

struct Live {
    current: Arc<Trees>,
    building: Option<Arc<Building>>,
}

/// Trees under construction and how far the scan got.
struct Building {
    trees: Arc<Trees>,
    progress: Mutex<Progress>,
}

#[derive(Default)]
struct Progress {
    /// The last key placed; `None` before the first.
    cursor: Option<Vec<u8>>,
    /// The scan is over: every key is placed.
    done: bool,
    /// Keys written after the cursor since the scan began, not placed yet.
    uncovered: BTreeSet<Vec<u8>>,
}

impl Progress {
    fn covers(&self, key: &[u8]) -> bool {
        self.done || self.cursor.as_deref().is_some_and(|cursor| key <= cursor)
    }
}

impl Building {
    fn observe(&self, key: &[u8], old: Option<u64>, new: u64) {
        let mut progress = lock(&self.progress);
        if progress.covers(key) {
            self.trees.stored(key, old, new);
        } else {
            progress.uncovered.insert(key.to_vec());
        }
    }

    /// Scans `store` and places every key; see the module documentation. Gives up with
    /// an error at the next page once `stopped` is set. While `quiet` holds true (no write
    /// can reach the store: see [`LiveTrees::hold_writes_off`]), a page is read and placed
    /// under its read lock straight from the scanned bytes, without taking each key's lock
    /// and reading it again (three times faster on a starting node's million keys).
    fn run(&self, store: &LocalStore, stopped: &AtomicBool, quiet: &Quiet) -> Result<()> {
        let mut start = Vec::new();
        loop {
            if stopped.load(Ordering::Relaxed) {
                return Err(crate::Error::Stopped(
                    "its Merkle tree build was cut short".into(),
                ));
            }
            let page = lock(&quiet.page);
            let rows = if quiet.held.load(Ordering::Acquire) {
                let rows = store.scan_raw(&start, BUILD_PAGE_ROWS)?;
                self.place_scanned(&rows)?;
                drop(page);
                rows
            } else {
                drop(page);
                let rows = store.scan_raw(&start, BUILD_PAGE_ROWS)?;
                for (key, bytes) in &rows {
                    if !self.place_unwritten(store, key, bytes)? {
                        self.place_through(store, Some(key))?;
                    }
                }
                rows
            };
            match rows.last() {
                Some((last, _)) if rows.len() == BUILD_PAGE_ROWS => {
                    start = last.clone();
                    start.push(0);
                }
                _ => return self.place_through(store, None),
            }
        }
    }

    /// Places a page of scanned rows as they are: only while no write can reach the store,
    /// so none is noted and none races the placement.
    fn place_scanned(&self, rows: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        let mut progress = lock(&self.progress);
        debug_assert!(progress.uncovered.is_empty());
        for (key, bytes) in rows {
            self.trees.insert_row(key, bytes)?;
        }
        if let Some((last, _)) = rows.last() {
            progress.cursor = Some(last.clone());
        }
        Ok(())
    }

    /// Places `key` with the `bytes` the scan read, under the key's lock, if no write of it
    /// was noted since (every write of a key the cursor has not reached is noted, observer
    /// call included, before its lock is released) and no noted key comes before it: then
    /// `bytes` are what the store holds. Returns false, placing nothing, otherwise; the
    /// caller then places it by reading it again ([`Building::place_through`]).
    fn place_unwritten(&self, store: &LocalStore, key: &[u8], bytes: &[u8]) -> Result<bool> {
        store.with_key_lock(key, || {
            let mut progress = lock(&self.progress);
            if progress
                .uncovered
                .iter()
                .next()
                .is_some_and(|first| first.as_slice() <= key)
            {
                return Ok(false);
            }
            if progress.covers(key) {
                return Ok(true);
            }
            self.trees.insert_row(key, bytes)?;
            progress.cursor = Some(key.to_vec());
            Ok(true)
        })
    }

    /// Places the noted keys before `key`, then `key`; with `None`, every noted key, then
    /// marks the scan done.
    fn place_through(&self, store: &LocalStore, key: Option<&[u8]>) -> Result<()> {
        loop {
            let earlier = {
                let mut progress = lock(&self.progress);
                let first = progress.uncovered.iter().next().cloned();
                match (first, key) {
                    (None, None) => {
                        progress.done = true;
                        return Ok(());
                    }
                    (Some(first), Some(key)) if first.as_slice() >= key => None,
                    (first, _) => first,
                }
            };
            let Some(target) = earlier.as_deref().or(key) else {
                return Ok(());
            };
            let placed = store.with_key_locked(target, |bytes| {
                let mut progress = lock(&self.progress);
                // A key noted meanwhile before `target` goes first.
                if progress
                    .uncovered
                    .iter()
                    .next()
                    .is_some_and(|first| first.as_slice() < target)
                {
                    return Ok::<bool, crate::Error>(false);
                }
                progress.uncovered.remove(target);
                if progress.covers(target) {
                    return Ok(true);
                }
                if let Some(bytes) = bytes {
                    self.trees.insert_row(target, bytes)?;
                }
                progress.cursor = Some(target.to_vec());
                Ok(true)
            })??;
            if placed && earlier.is_none() {
                return Ok(());
            }
        }
    }
}

impl LiveTrees {
    /// Serves `trees`.
    pub fn new(trees: Arc<Trees>) -> LiveTrees {
        LiveTrees {
            live: RwLock::new(Live {
                current: trees,
                building: None,
            }),
            stopped: AtomicBool::new(false),
            quiet: Quiet::default(),
        }
    }

    /// The caller promises that nothing writes to the store until it calls
    /// [`LiveTrees::writes_may_start`] (a starting node, before it binds its listeners):
    /// meanwhile a build places scanned rows without locking each key.
    pub fn hold_writes_off(&self) {
        self.quiet.held.store(true, Ordering::Release);
    }

    /// Ends [`LiveTrees::hold_writes_off`]: returns once the page a build is placing
    /// without locks is placed; from then on every key is placed under its lock.
    pub fn writes_may_start(&self) {
        self.quiet.held.store(false, Ordering::Release);
        // A page begun while writes were held off is placed once this is acquired; every
        // later page sees `held` false.
        drop(lock(&self.quiet.page));
    }

    /// Makes a build in progress, and any later one, give up at its next page of rows: a
    /// stopped node's blocking build must not keep its store (and directory lock) open.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// The trees served now.
    pub fn current(&self) -> Arc<Trees> {
        let live = self.live.read().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&live.current)
    }

    /// Fills `trees` from `store` while writes go on, then serves them; blocking, one at
    /// a time. Returns the keys placed in the new trees.
    pub fn rebuild(&self, store: &LocalStore, trees: Trees) -> Result<u64> {
        let trees = Arc::new(trees);
        let building = Arc::new(Building {
            trees: Arc::clone(&trees),
            progress: Mutex::new(Progress::default()),
        });
        self.live
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .building = Some(Arc::clone(&building));
        let result = building.run(store, &self.stopped, &self.quiet);
        // One swap: from here on every write goes to the new trees only.
        let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
        live.building = None;
        result?;
        live.current = Arc::clone(&trees);
        drop(live);
        Ok(trees.keys())
    }
}

impl WriteObserver for LiveTrees {
    fn stored(&self, key: &[u8], old: Option<u64>, new: u64) {
        let live = self.live.read().unwrap_or_else(|p| p.into_inner());
        live.current.stored(key, old, new);
        if let Some(building) = &live.building {
            building.observe(key, old, new);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::antientropy::partition::partition;
    use crate::ring::{Member, Replication};
    use crate::version::{SiblingSet, VectorClock, VersionConfig};
    use std::sync::Arc;

    fn ring() -> Ring {
        let members = (1..=5).map(|i| Member::new(format!("n{i}").as_str(), "dc1"));
        Ring::new(members, 8).unwrap()
    }

    fn open(directory: &std::path::Path) -> LocalStore {
        LocalStore::open(
            directory,
            engine::Options::default(),
            VersionConfig::default(),
        )
        .unwrap()
    }

    #[test]
    fn incremental_trees_equal_trees_built_from_the_data() {
        let parts = partition(&ring(), &Replication::Total(3)).unwrap();
        let node = NodeId::new("n2");
        let directory = tempfile::tempdir().unwrap();
        let store = open(directory.path());
        let live = Arc::new(Trees::new(&parts, &node, 6, 0).unwrap());
        store.set_observer(live.clone()).unwrap();
        for index in 0..500 {
            let key = format!("key{index}");
            let context = VectorClock::new();
            let value = Some(format!("v{index}").into_bytes());
            store
                .write_local(key.as_bytes(), &context, value, "n2", index)
                .unwrap();
        }
        for index in (0..500).step_by(7) {
            let key = format!("key{index}");
            let set = store.read(key.as_bytes()).unwrap().unwrap();
            let version = store
                .write_local(key.as_bytes(), &set.context(), None, "n2", 1000)
                .unwrap();
            // Applying what is already there changes nothing.
            assert!(!store
                .merge_in(key.as_bytes(), &SiblingSet::single(version))
                .unwrap());
        }
        assert_eq!(live.update_errors(), 0);
        let rebuilt = Trees::new(&parts, &node, 6, 0).unwrap();
        let counted = rebuilt.build(&store).unwrap();
        assert_eq!(counted, live.keys());
        assert!(counted > 100 && counted < 500, "{counted}");
        for (a, b) in live.ranges().iter().zip(rebuilt.ranges()) {
            assert_eq!(*a.lock(), *b.lock());
        }
    }

    #[test]
    fn a_rebuild_during_writes_equals_a_build_from_the_data_afterwards() {
        let old_parts = partition(&ring(), &Replication::Total(3)).unwrap();
        let members = (1..=4).map(|i| Member::new(format!("n{i}").as_str(), "dc1"));
        let new_ring = Ring::new(members, 8).unwrap();
        let new_parts = partition(&new_ring, &Replication::Total(3)).unwrap();
        let node = NodeId::new("n2");
        let directory = tempfile::tempdir().unwrap();
        let store = Arc::new(open(directory.path()));
        let live = Arc::new(LiveTrees::new(Arc::new(
            Trees::new(&old_parts, &node, 5, 0).unwrap(),
        )));
        store.set_observer(live.clone()).unwrap();
        let write = |store: &LocalStore, index: u64| {
            let key = format!("key{}", index % 3000);
            let context = store
                .read(key.as_bytes())
                .unwrap()
                .map(|set| set.context())
                .unwrap_or_default();
            let value = Some(format!("v{index}").into_bytes());
            store
                .write_local(key.as_bytes(), &context, value, "n2", index)
                .unwrap();
        };
        for index in 0..1500 {
            write(&store, index);
        }
        for round in 1..=3u64 {
            let stop = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|scope| {
                for writer in 0..2u64 {
                    let (store, stop) = (&store, &stop);
                    scope.spawn(move || {
                        // New keys and updates, before and after the scan's cursor.
                        let mut index = round * 100_000 + writer * 7;
                        while !stop.load(Ordering::Relaxed) {
                            write(store, index);
                            index += 13;
                        }
                    });
                }
                let trees = Trees::new(&new_parts, &node, 6, round).unwrap();
                live.rebuild(&store, trees).unwrap();
                stop.store(true, Ordering::Relaxed);
            });
            let current = live.current();
            assert_eq!(current.ring_version(), round);
            assert_eq!(current.update_errors(), 0);
            let expected = Trees::new(&new_parts, &node, 6, round).unwrap();
            expected.build(&store).unwrap();
            assert!(expected.keys() > 500, "{}", expected.keys());
            assert_eq!(current.keys(), expected.keys());
            for (a, b) in current.ranges().iter().zip(expected.ranges()) {
                assert_eq!(*a.lock(), *b.lock(), "round {round}");
            }
        }
    }

    #[test]
    fn a_build_begun_with_writes_held_off_and_finished_under_writes_equals_a_build_afterwards() {
        let parts = partition(&ring(), &Replication::Total(3)).unwrap();
        let node = NodeId::new("n2");
        let directory = tempfile::tempdir().unwrap();
        let store = Arc::new(open(directory.path()));
        let write = |store: &LocalStore, index: u64, round: u64| {
            let key = format!("key{index:06}");
            let context = store
                .read(key.as_bytes())
                .unwrap()
                .map(|set| set.context())
                .unwrap_or_default();
            let value = Some(format!("v{index} {round}").into_bytes());
            store
                .write_local(
                    key.as_bytes(),
                    &context,
                    value,
                    "n2",
                    round * 1_000_000 + index,
                )
                .unwrap();
        };
        for index in 0..60_000 {
            write(&store, index, 0);
        }
        let live = Arc::new(LiveTrees::new(Arc::new(Trees::unbuilt())));
        store.set_observer(live.clone()).unwrap();
        live.hold_writes_off();
        let builder = {
            let (live, store) = (Arc::clone(&live), Arc::clone(&store));
            let trees = Trees::new(&parts, &node, 6, 1).unwrap();
            std::thread::spawn(move || live.rebuild(&store, trees))
        };
        // Once the first page is placed without locks, writes may start.
        let progress = |check: &dyn Fn(&Progress) -> bool| {
            let live = live.live.read().unwrap();
            live.building
                .as_ref()
                .is_some_and(|building| check(&lock(&building.progress)))
        };
        let started = std::time::Instant::now();
        while !progress(&|progress| progress.cursor.is_some()) {
            assert!(started.elapsed() < std::time::Duration::from_secs(30));
            std::thread::yield_now();
        }
        live.writes_may_start();
        assert!(
            progress(&|progress| !progress.done),
            "the build ended before writes began"
        );
        // Overwrites on both sides of the cursor, and new keys.
        for index in (0..60_000).step_by(5).chain(60_000..61_000) {
            write(&store, index, 1);
        }
        let placed = builder.join().unwrap().unwrap();
        let served = live.current();
        assert_eq!(served.ring_version(), 1);
        assert_eq!(served.update_errors(), 0);
        let expected = Trees::new(&parts, &node, 6, 1).unwrap();
        let counted = expected.build(&store).unwrap();
        // The build may have ended before the last writes (they then went to the served
        // trees directly): it placed at most every key.
        assert!(placed <= counted, "{placed} > {counted}");
        assert_eq!(served.keys(), counted);
        for (a, b) in served.ranges().iter().zip(expected.ranges()) {
            assert_eq!(*a.lock(), *b.lock());
        }
        // Writes after the swap land on the served trees.
        write(&store, 7, 2);
        let expected = Trees::new(&parts, &node, 6, 1).unwrap();
        expected.build(&store).unwrap();
        for (a, b) in served.ranges().iter().zip(expected.ranges()) {
            assert_eq!(*a.lock(), *b.lock());
        }
    }

    #[test]
    fn every_position_of_a_replicated_range_finds_its_tree() {
        let parts = partition(&ring(), &Replication::Total(3)).unwrap();
        let trees = Trees::new(&parts, &NodeId::new("n1"), 2, 0).unwrap();
        for part in &parts {
            let mine = part.replicas.contains(&NodeId::new("n1"));
            for position in [
                part.range.start_exclusive.wrapping_add(1),
                part.range.end_inclusive,
            ] {
                let found = trees.holding(position).map(|tree| tree.range);
                assert_eq!(found, mine.then_some(part.range));
            }
        }
    }
}
