//! The in-memory table of recent writes, ordered by key, one version per key.
//!
//! Concurrent writers may reach the memtable in a different order than their sequence
//! numbers (they share one log write, then insert independently), so an insert only
//! replaces an existing version when its sequence number is higher: the memtable always
//! holds what replaying the log in any order would produce.
//!
//! Point lookups go through a hash index (one hash, one key compare), the ordered set of
//! keys serves iteration and flushing. A B-tree of heap-allocated keys costs a pointer
//! chase and a `memcmp` per comparison, about 20-40 of them per lookup in a full memtable;
//! it dominated reads (and the read half of read-modify-write) when profiled under
//! redis-benchmark.
//!
//! The hash index is split into `SHARDS` (16) maps by key hash, each under its own lock, and
//! the ordered set has a lock of its own, taken only by the insert of a new key and by
//! iteration. A read-modify-write holds a read lock while it builds the new version from
//! the lent old one, and its insert takes a write lock: with one lock for the whole table,
//! two threads writing different keys waited for each other (under redis-benchmark SET -P 1
//! on a 3-node cluster, the coordinator made 0.13-0.16 `sched_yield` calls per request from
//! the lock's spinning, 0.03-0.04 with the shards: `scripts/cluster-perf.sh syscalls`).
//! Lock order: a shard's lock is never held while the order lock is taken, nor the other
//! way round. A key is put in its shard before the ordered set, and never removed, so a key
//! an iterator finds in the ordered set is always in its shard.

use crate::iter::EntryIterator;
use crate::{Entry, Result, SequenceNumber, ValueKind};
use parking_lot::RwLock;
use smallvec::SmallVec;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes charged per entry beyond its key, metadata and value: the B-tree node share and
/// the slot's own fields. An estimate; it keeps the flush trigger honest for tiny values.
const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Bytes charged per insert in [`Memtable::logged_bytes`] beyond key, metadata and value:
/// about a commit-log record's header, sequence number and length fields.
const LOG_RECORD_OVERHEAD_BYTES: usize = 32;

/// Metadata up to this many bytes is held in the slot itself (kvnode keeps a 17-byte
/// digest there, read on every digest read): no allocation per insert, and no pointer to
/// chase (a cache miss in a large memtable) per read.
const INLINE_META_BYTES: usize = 24;

#[derive(Debug, Clone)]
struct Slot {
    seq: SequenceNumber,
    kind: ValueKind,
    meta: SmallVec<[u8; INLINE_META_BYTES]>,
    value: Vec<u8>,
}

/// Hash index shards (see the module docs).
const SHARDS: usize = 16;

type Slots = HashMap<Arc<[u8]>, Slot>;

/// The shard holding `key`: by the row cache's key hash (a few multiplies for a short key,
/// every bit mixed), whose top bits nothing else here uses.
fn shard_index(key: &[u8]) -> usize {
    (crate::rowcache::KeyHash::of(key).bits() >> 59) as usize % SHARDS
}

impl Slot {
    fn entry(&self, key: &[u8]) -> Entry {
        Entry {
            key: key.to_vec(),
            seq: self.seq,
            kind: self.kind,
            meta: self.meta.to_vec(),
            value: self.value.clone(),
        }
    }
}

/// A sorted in-memory table. Shared as `Arc<Memtable>` between writers, readers, iterators
/// and the flusher.
#[derive(Debug)]
pub struct Memtable {
    /// The slots by key, in [`SHARDS`] maps chosen by key hash.
    shards: Box<[RwLock<Slots>]>,
    /// Every key held, in order.
    order: RwLock<BTreeSet<Arc<[u8]>>>,
    /// Live bytes: what the versions held now take (a replaced version's bytes are freed).
    size_bytes: AtomicUsize,
    /// Every insert's bytes, replaced or not: about what the commit log holds for the
    /// writes this memtable has taken since it was created.
    logged_bytes: AtomicU64,
    seq_max: AtomicU64,
}

impl Default for Memtable {
    fn default() -> Memtable {
        Memtable {
            shards: (0..SHARDS).map(|_| RwLock::new(Slots::default())).collect(),
            order: RwLock::new(BTreeSet::new()),
            size_bytes: AtomicUsize::new(0),
            logged_bytes: AtomicU64::new(0),
            seq_max: AtomicU64::new(0),
        }
    }
}

impl Memtable {
    /// An empty memtable.
    pub fn new() -> Memtable {
        Memtable::default()
    }

    fn shard(&self, key: &[u8]) -> &RwLock<Slots> {
        &self.shards[shard_index(key)]
    }

    /// Inserts a version of `key`, unless a newer one is already here.
    pub fn insert(
        &self,
        key: &[u8],
        seq: SequenceNumber,
        kind: ValueKind,
        meta: &[u8],
        value: &[u8],
    ) {
        self.insert_owned(key, seq, kind, meta, value.to_vec());
    }

    /// [`Memtable::insert`] taking the value by value, so a caller that built it for this
    /// write hands it over instead of having it copied.
    pub fn insert_owned(
        &self,
        key: &[u8],
        seq: SequenceNumber,
        kind: ValueKind,
        meta: &[u8],
        value: Vec<u8>,
    ) {
        let value_length = value.len();
        let slot = Slot {
            seq,
            kind,
            meta: SmallVec::from_slice(meta),
            value,
        };
        let added = key.len() + meta.len() + value_length + ENTRY_OVERHEAD_BYTES;
        // Logged whether or not it replaces anything: the log keeps every record until the
        // memtable is flushed, which is what `logged_bytes` bounds.
        self.logged_bytes.fetch_add(
            (key.len() + meta.len() + value_length + LOG_RECORD_OVERHEAD_BYTES) as u64,
            Ordering::Relaxed,
        );
        let mut shard = self.shard(key).write();
        match shard.get_mut(key) {
            Some(existing) if existing.seq >= seq => return,
            Some(existing) => {
                let freed = existing.meta.len() + existing.value.len();
                let replaced = std::mem::replace(existing, slot);
                // Counted under the lock, so a concurrent replacement of the same key
                // never subtracts bytes that were not added yet (no transient underflow).
                let grown = meta.len() + value_length;
                if grown >= freed {
                    self.size_bytes.fetch_add(grown - freed, Ordering::Relaxed);
                } else {
                    self.size_bytes.fetch_sub(freed - grown, Ordering::Relaxed);
                }
                drop(shard);
                // Freed after the lock: other writers and readers need not wait for it.
                drop(replaced);
            }
            None => {
                let key: Arc<[u8]> = Arc::from(key);
                shard.insert(Arc::clone(&key), slot);
                // Shard first, then the order (see the module docs), never both locks.
                drop(shard);
                self.order.write().insert(key);
                self.size_bytes.fetch_add(added, Ordering::Relaxed);
            }
        }
        self.seq_max.fetch_max(seq, Ordering::Relaxed);
    }

    /// Calls `read` with the version of `key` held here (kind, metadata, value), under the
    /// read lock and without copying; `None` (and `read` not called) when the key is not
    /// here.
    pub fn lookup<T>(
        &self,
        key: &[u8],
        read: impl FnOnce(ValueKind, &[u8], &[u8]) -> T,
    ) -> Option<T> {
        let shard = self.shard(key).read();
        shard
            .get(key)
            .map(|slot| read(slot.kind, &slot.meta, &slot.value))
    }

    /// The version of `key` held here, tombstones included.
    pub fn get(&self, key: &[u8]) -> Option<Entry> {
        self.shard(key).read().get(key).map(|slot| slot.entry(key))
    }

    /// Approximate memory held by the versions held now, in bytes: replacing a key's
    /// version frees the old one's bytes, so overwrites of the same keys do not grow it.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes.load(Ordering::Relaxed)
    }

    /// Approximate commit-log bytes written for this memtable's inserts, replaced ones
    /// included: what the log must keep until this memtable is flushed.
    pub fn logged_bytes(&self) -> u64 {
        self.logged_bytes.load(Ordering::Relaxed)
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.order.read().len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.order.read().is_empty()
    }

    /// Highest sequence number inserted (0 when empty).
    pub fn seq_max(&self) -> SequenceNumber {
        self.seq_max.load(Ordering::Relaxed)
    }

    /// Calls `visit` with every entry in key order: for flushing a frozen memtable, which
    /// no writer touches any more. Takes the read locks of every shard, then the order's
    /// (no writer waits for them, so the module's lock order does not apply).
    pub fn for_each(
        &self,
        mut visit: impl FnMut(&[u8], SequenceNumber, ValueKind, &[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        let shards: Vec<_> = self.shards.iter().map(|shard| shard.read()).collect();
        let order = self.order.read();
        for key in order.iter() {
            let Some(slot) = shards[shard_index(key)].get(key) else {
                continue;
            };
            visit(key, slot.seq, slot.kind, &slot.meta, &slot.value)?;
        }
        Ok(())
    }

    /// A cursor over this memtable. It sees writes made after its creation.
    pub fn iter(self: &Arc<Self>) -> MemtableIterator {
        MemtableIterator {
            memtable: Arc::clone(self),
            current: None,
        }
    }

    /// First entry strictly after `after` (or from the start), as an owned entry.
    fn next_after(&self, bound: Bound<&[u8]>) -> Option<Entry> {
        let key = self
            .order
            .read()
            .range::<[u8], _>((bound, Bound::Unbounded))
            .next()
            .cloned()?;
        // The order lock is released before the shard's is taken (module docs).
        self.shard(&key)
            .read()
            .get(&key)
            .map(|slot| slot.entry(&key))
    }
}

/// A cursor over a memtable. Each step takes the read lock briefly, so writers are never
/// held up by a slow scan.
pub struct MemtableIterator {
    memtable: Arc<Memtable>,
    current: Option<Entry>,
}

impl EntryIterator for MemtableIterator {
    fn seek(&mut self, key: &[u8]) -> Result<()> {
        self.current = self.memtable.next_after(Bound::Included(key));
        Ok(())
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.current = self.memtable.next_after(Bound::Unbounded);
        Ok(())
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn entry(&self) -> &Entry {
        self.current
            .as_ref()
            .expect("entry() called on an exhausted memtable iterator")
    }

    fn advance(&mut self) -> Result<()> {
        if let Some(current) = self.current.take() {
            self.current = self.memtable.next_after(Bound::Excluded(&current.key));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_sequence_never_replaces_newer() {
        let memtable = Memtable::new();
        memtable.insert(b"k", 5, ValueKind::Put, b"m5", b"v5");
        memtable.insert(b"k", 3, ValueKind::Put, b"m3", b"v3");
        let entry = memtable.get(b"k").unwrap();
        assert_eq!((entry.seq, entry.value.as_slice()), (5, b"v5".as_slice()));
        memtable.insert(b"k", 7, ValueKind::Delete, b"", b"");
        assert_eq!(memtable.get(b"k").unwrap().kind, ValueKind::Delete);
        assert_eq!(memtable.seq_max(), 7);
    }

    #[test]
    fn iterator_walks_in_key_order_and_seeks() {
        let memtable = Arc::new(Memtable::new());
        for (seq, key) in [b"c", b"a", b"e"].iter().enumerate() {
            memtable.insert(*key, seq as u64 + 1, ValueKind::Put, b"", b"x");
        }
        let mut iterator = memtable.iter();
        iterator.seek_to_first().unwrap();
        let mut keys = Vec::new();
        while iterator.valid() {
            keys.push(iterator.entry().key.clone());
            iterator.advance().unwrap();
        }
        assert_eq!(keys, vec![b"a".to_vec(), b"c".to_vec(), b"e".to_vec()]);
        iterator.seek(b"b").unwrap();
        assert_eq!(iterator.entry().key, b"c");
        iterator.seek(b"f").unwrap();
        assert!(!iterator.valid());
    }

    #[test]
    fn overwrites_count_live_bytes_but_every_logged_byte() {
        let memtable = Memtable::new();
        memtable.insert(b"key", 1, ValueKind::Put, b"meta", &[0u8; 1000]);
        let one = memtable.size_bytes();
        for seq in 2..=100 {
            memtable.insert(b"key", seq, ValueKind::Put, b"meta", &[seq as u8; 1000]);
        }
        assert_eq!(
            memtable.size_bytes(),
            one,
            "same-size overwrites must not grow it"
        );
        assert!(memtable.logged_bytes() >= 100 * 1007);
        // A smaller replacement shrinks it, a larger one grows it by the difference.
        memtable.insert(b"key", 101, ValueKind::Put, b"", b"x");
        assert_eq!(memtable.size_bytes(), one - 1003);
        memtable.insert(b"key", 102, ValueKind::Put, b"meta", &[0u8; 2000]);
        assert_eq!(memtable.size_bytes(), one + 1000);
        // A stale insert replaces nothing and frees nothing, but was logged.
        let logged = memtable.logged_bytes();
        memtable.insert(b"key", 50, ValueKind::Put, b"", b"");
        assert_eq!(memtable.size_bytes(), one + 1000);
        assert!(memtable.logged_bytes() > logged);
        assert_eq!(memtable.get(b"key").unwrap().seq, 102);
    }

    #[test]
    fn concurrent_writers_and_a_scan_agree_with_the_shards() {
        // Writers on every shard at once, new keys and overwrites, while a cursor walks:
        // the cursor only ever sees keys in order (each found in its shard), and afterwards
        // the ordered set, the shards and the counters agree.
        let memtable = Arc::new(Memtable::new());
        let writers: Vec<_> = (0..4u64)
            .map(|writer| {
                let memtable = Arc::clone(&memtable);
                std::thread::spawn(move || {
                    for round in 0..3u64 {
                        for number in 0..500u64 {
                            let key = format!("key{:05}", number * 4 + writer);
                            let seq = 1 + round * 10_000 + number * 4 + writer;
                            memtable.insert(
                                key.as_bytes(),
                                seq,
                                ValueKind::Put,
                                b"",
                                &[round as u8; 8],
                            );
                        }
                    }
                })
            })
            .collect();
        let mut scans = 0;
        while writers.iter().any(|writer| !writer.is_finished()) && scans < 50 {
            let mut iterator = memtable.iter();
            iterator.seek_to_first().unwrap();
            let mut previous: Option<Vec<u8>> = None;
            while iterator.valid() {
                let key = iterator.entry().key.clone();
                assert!(previous.as_ref().is_none_or(|previous| *previous < key));
                previous = Some(key);
                iterator.advance().unwrap();
            }
            scans += 1;
        }
        for writer in writers {
            writer.join().unwrap();
        }
        assert_eq!(memtable.len(), 2000);
        let mut seen = Vec::new();
        memtable
            .for_each(|key, seq, _, _, value| {
                seen.push((key.to_vec(), seq, value.to_vec()));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen.len(), 2000);
        for (index, (key, seq, value)) in seen.iter().enumerate() {
            assert_eq!(*key, format!("key{index:05}").into_bytes());
            assert_eq!(*seq, 1 + 20_000 + index as u64);
            assert_eq!(*value, vec![2u8; 8]);
            assert_eq!(memtable.get(key).unwrap().seq, *seq);
        }
        assert_eq!(memtable.size_bytes(), 2000 * (8 + 8 + ENTRY_OVERHEAD_BYTES));
    }

    #[test]
    fn size_grows_with_inserts() {
        let memtable = Memtable::new();
        memtable.insert(b"key", 1, ValueKind::Put, b"meta", &[0u8; 1000]);
        assert!(memtable.size_bytes() >= 1007);
        assert_eq!(memtable.len(), 1);
    }
}
