//! This node's Merkle trees, one per range it replicates, kept current by the store's
//! write observer.
//!
//! Built from a full scan of the store when the node starts, before it takes any write
//! (the peer listener is not bound yet), then updated on every write: O(depth) under the
//! range's own mutex.
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
//! it first; at the end it places every noted key left. So each key is placed exactly
//! once and every later write lands on top of it: the new trees equal a build from the
//! store as it is when the swap happens, with no write lost and none counted twice.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::merkle::MerkleTree;
use super::partition::ReplicatedRange;
use crate::ring::{NodeId, Ring, TokenRange};
use crate::store::{LocalStore, WriteObserver};
use crate::Result;

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

    /// Fills the trees from every key in `store`; returns the keys counted. Must run before
    /// the store takes writes (see the module documentation).
    pub fn build(&self, store: &LocalStore) -> Result<u64> {
        let mut start = Vec::new();
        let mut counted = 0;
        loop {
            let rows = store.scan_raw(&start, BUILD_PAGE_ROWS)?;
            for (key, bytes) in &rows {
                if let Some(tree) = self.holding(Ring::position_of(key)) {
                    tree.lock().insert(key, super::digest(bytes))?;
                    counted += 1;
                }
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

    /// Scans `store` and places every key; see the module documentation.
    fn run(&self, store: &LocalStore) -> Result<()> {
        let mut start = Vec::new();
        loop {
            let rows = store.scan_raw(&start, BUILD_PAGE_ROWS)?;
            for (key, _) in &rows {
                self.place_through(store, Some(key))?;
            }
            match rows.last() {
                Some((last, _)) if rows.len() == BUILD_PAGE_ROWS => {
                    start = last.clone();
                    start.push(0);
                }
                _ => return self.place_through(store, None),
            }
        }
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
                if let (Some(bytes), Some(tree)) =
                    (bytes, self.trees.holding(Ring::position_of(target)))
                {
                    tree.lock().insert(target, super::digest(bytes))?;
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
        }
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
        let result = building.run(store);
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
