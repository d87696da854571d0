//! The row cache: a bounded in-memory map from key to its newest version outside the
//! memtables, for point reads (ScyllaDB's row cache, RocksDB's `row_cache`).
//!
//! A point read looks in the memtables, then here, then in the tables; a table hit is
//! copied in (read-through), and a flush puts the flushed memtable's versions in before the
//! flushed table replaces the memtable in the read state, so reads right after a flush do
//! not go to the table at all.
//!
//! Why a cached row is never older than what a reader must see: a reader checks its
//! memtables first, so a stale row could only be served once the memtable holding a newer
//! version is flushed, and the flush overwrites (or adds) the row of every key it flushes
//! *before* installing the read state without that memtable. What is left is a reader that
//! read an old version from the tables of an older read state and inserts it after the
//! flush has written the newer one (or after the newer one was evicted): every insert from
//! a read carries the flush epoch seen before the read state was taken, and is dropped if a
//! flush has begun since ([`RowCache::insert_read`]). The epoch is checked under the shard
//! lock the flush also takes to write the row, so no insert can slip between the two.
//! Compaction never changes a key's newest version, so it leaves the cache alone; a
//! dropped tombstone and a cached tombstone both read as absent.
//!
//! Layout: shards chosen by key hash, each a CLOCK cache under a `RwLock` (a hit takes the
//! read lock and sets a reference bit; only inserts and evictions take the write lock).
//! Capacity is in bytes, split evenly between shards; each row is charged its key, metadata
//! and value plus [`ROW_OVERHEAD_BYTES`]. A row larger than a shard is not cached.
//!
//! A hit is a chain of dependent loads, each a cache miss once the cache outgrows the CPU's
//! (100k rows of 1 KiB under redis-benchmark): the map's control bytes, its bucket, the
//! row. The bucket holds the row's handle (not an index into the clock's slots) and its
//! reference bit, and a row is one allocation (counts, header, key, metadata, value: the
//! key comparison brings in the start of the value): six misses per hit before, three now.

use crate::{SequenceNumber, ValueKind};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const SHARD_COUNT: usize = 32;
/// Bookkeeping charged per row beyond its key, metadata and value: its header and reference
/// counts, its slot and its share of the hash map.
pub const ROW_OVERHEAD_BYTES: usize = 160;

/// One cached version of a key: a header (sequence number, kind, key and metadata
/// lengths), then the key, the metadata and the value, all in one shared allocation (the
/// reference counts sit just before the header). Lent to readers by cloning the handle, so
/// a hit copies nothing and holds no lock while the reader looks at it.
#[derive(Debug, Clone)]
pub struct Row(Arc<[u8]>);

/// Sequence number (8 bytes, little-endian), kind (1), key length (4), metadata length (4).
const ROW_HEADER_BYTES: usize = 17;

impl Row {
    /// A row of these parts. Panics if the key or metadata exceeds 4 GiB (the engine's
    /// limits are far below that).
    pub fn new(key: &[u8], seq: SequenceNumber, kind: ValueKind, meta: &[u8], value: &[u8]) -> Row {
        let mut header = [0u8; ROW_HEADER_BYTES];
        header[..8].copy_from_slice(&seq.to_le_bytes());
        header[8] = kind as u8;
        let length = |part: &[u8]| u32::try_from(part.len()).expect("a row part over 4 GiB");
        header[9..13].copy_from_slice(&length(key).to_le_bytes());
        header[13..17].copy_from_slice(&length(meta).to_le_bytes());
        // An exact-size iterator: one allocation, no intermediate buffer.
        Row(header
            .iter()
            .chain(key)
            .chain(meta)
            .chain(value)
            .copied()
            .collect())
    }

    fn field(&self, at: usize) -> usize {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&self.0[at..at + 4]);
        u32::from_le_bytes(bytes) as usize
    }

    pub fn kind(&self) -> ValueKind {
        // Written by `new` from a ValueKind.
        ValueKind::from_byte(self.0[8]).unwrap_or(ValueKind::Put)
    }

    pub fn seq(&self) -> SequenceNumber {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&self.0[..8]);
        SequenceNumber::from_le_bytes(bytes)
    }

    pub fn key(&self) -> &[u8] {
        &self.0[ROW_HEADER_BYTES..ROW_HEADER_BYTES + self.field(9)]
    }

    pub fn meta(&self) -> &[u8] {
        let start = ROW_HEADER_BYTES + self.field(9);
        &self.0[start..start + self.field(13)]
    }

    pub fn value(&self) -> &[u8] {
        &self.0[ROW_HEADER_BYTES + self.field(9) + self.field(13)..]
    }

    fn charge_bytes(&self) -> usize {
        self.0.len() + ROW_OVERHEAD_BYTES
    }
}

/// The hash of a key, computed once per read: its bits 32..37 pick the shard, the shard's
/// map uses the whole of it (low bits for the bucket, top bits for the tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHash(u64);

impl KeyHash {
    pub fn of(key: &[u8]) -> KeyHash {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut hash = (key.len() as u64).wrapping_mul(K);
        let mut chunks = key.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            hash = (hash ^ word).wrapping_mul(K).rotate_left(29);
        }
        let mut tail = 0u64;
        for (index, byte) in chunks.remainder().iter().enumerate() {
            tail |= u64::from(*byte) << (8 * index);
        }
        hash = (hash ^ tail).wrapping_mul(K);
        // murmur3's finaliser: every input bit reaches every output bit.
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        hash ^= hash >> 33;
        KeyHash(hash)
    }

    fn shard(self) -> usize {
        (self.0 >> 32) as usize % SHARD_COUNT
    }

    /// The hash itself (the memtable picks its shards by its top bits).
    pub(crate) fn bits(self) -> u64 {
        self.0
    }
}

/// The shard maps hold already-mixed hashes: hashing them again would only cost time.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, _bytes: &[u8]) {
        unreachable!("only u64 hashes are hashed");
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// A row's place on the clock.
struct Slot {
    hash: u64,
    charge_bytes: usize,
    used: bool,
}

/// A cached row, in the shard map's bucket: a hit reads the bucket anyway, so the
/// reference bit here costs no load of its own.
struct Cached {
    row: Row,
    slot: usize,
    /// Set by hits, cleared by the clock hand ([`Shard::evict_one`]).
    referenced: AtomicBool,
}

/// One shard. The map goes from hash to the row and its slot; two keys with the same 64-bit
/// hash share a slot (the newer insert replaces the other), which only costs a miss.
#[derive(Default)]
struct Shard {
    map: HashMap<u64, Cached, BuildHasherDefault<IdentityHasher>>,
    slots: Vec<Slot>,
    free_slots: Vec<usize>,
    hand: usize,
    size_bytes: usize,
    capacity_bytes: usize,
}

impl Shard {
    fn get(&self, hash: KeyHash, key: &[u8]) -> Option<Row> {
        let cached = self.map.get(&hash.0)?;
        if cached.row.key() != key {
            return None;
        }
        // Only written when clear: a hot row's bucket is not dirtied by every hit.
        if !cached.referenced.load(Ordering::Relaxed) {
            cached.referenced.store(true, Ordering::Relaxed);
        }
        Some(cached.row.clone())
    }

    /// Stores `row` unless a version with a higher sequence number of the same key is
    /// here.
    fn put(&mut self, hash: KeyHash, row: Row) {
        let charge_bytes = row.charge_bytes();
        if let Some(cached) = self.map.get(&hash.0) {
            if cached.row.key() == row.key() && cached.row.seq() > row.seq() {
                return;
            }
            let index = cached.slot;
            self.remove_slot(index);
        }
        if charge_bytes > self.capacity_bytes {
            return;
        }
        while self.size_bytes + charge_bytes > self.capacity_bytes {
            self.evict_one();
        }
        let slot = Slot {
            hash: hash.0,
            charge_bytes,
            used: true,
        };
        let index = match self.free_slots.pop() {
            Some(index) => {
                self.slots[index] = slot;
                index
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        let cached = Cached {
            row,
            slot: index,
            referenced: AtomicBool::new(false),
        };
        self.map.insert(hash.0, cached);
        self.size_bytes += charge_bytes;
    }

    /// Sweeps the clock hand: a referenced row gets a second chance, the first
    /// unreferenced one goes. Ends within two turns because the first turn clears every bit.
    fn evict_one(&mut self) {
        assert!(self.size_bytes > 0, "evicting from an empty shard");
        loop {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let index = self.hand;
            self.hand += 1;
            let slot = &self.slots[index];
            if !slot.used {
                continue;
            }
            let referenced = self
                .map
                .get_mut(&slot.hash)
                .is_some_and(|cached| std::mem::take(cached.referenced.get_mut()));
            if referenced {
                continue;
            }
            self.remove_slot(index);
            return;
        }
    }

    fn remove_slot(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        if slot.used {
            slot.used = false;
            self.size_bytes -= slot.charge_bytes;
            self.map.remove(&slot.hash);
            self.free_slots.push(index);
        }
    }
}

/// Counters kept beside each shard's lock, so counting a hit dirties no other cache line.
#[derive(Default)]
struct ShardCounters {
    hits: AtomicU64,
    misses: AtomicU64,
}

#[repr(align(128))]
struct PaddedShard {
    shard: RwLock<Shard>,
    counters: ShardCounters,
}

/// The row cache. `Send + Sync`.
pub struct RowCache {
    shards: Vec<PaddedShard>,
    /// Flushes begun (see the module docs): bumped by [`RowCache::begin_flush`].
    flush_epoch: AtomicU64,
    capacity_bytes: usize,
}

impl RowCache {
    /// A cache of about `capacity_bytes` (split between shards).
    pub fn new(capacity_bytes: usize) -> RowCache {
        let shards = (0..SHARD_COUNT)
            .map(|_| PaddedShard {
                shard: RwLock::new(Shard {
                    capacity_bytes: capacity_bytes / SHARD_COUNT,
                    ..Shard::default()
                }),
                counters: ShardCounters::default(),
            })
            .collect();
        RowCache {
            shards,
            flush_epoch: AtomicU64::new(0),
            capacity_bytes,
        }
    }

    fn shard(&self, hash: KeyHash) -> &PaddedShard {
        &self.shards[hash.shard()]
    }

    /// The cached version of `key` (a tombstone reads as absent to the caller).
    pub fn get(&self, hash: KeyHash, key: &[u8]) -> Option<Row> {
        let shard = self.shard(hash);
        let row = shard.shard.read().get(hash, key);
        let counter = if row.is_some() {
            &shard.counters.hits
        } else {
            &shard.counters.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        row
    }

    /// The epoch a reader notes *before* taking its read state, for
    /// [`RowCache::insert_read`].
    pub fn read_epoch(&self) -> u64 {
        self.flush_epoch.load(Ordering::SeqCst)
    }

    /// Caches `row`, read from the tables of a read state taken after `read_epoch` was
    /// noted: dropped if a flush has begun since (the flush may already have written a
    /// newer version, or be about to), or if a newer version is cached.
    pub fn insert_read(&self, hash: KeyHash, row: &Row, read_epoch: u64) {
        let mut shard = self.shard(hash).shard.write();
        // Checked under the shard lock, which `flush_row` also takes after bumping the
        // epoch: either this insert comes first and the flush overwrites it, or this sees
        // the bump.
        if self.flush_epoch.load(Ordering::SeqCst) != read_epoch {
            return;
        }
        shard.put(hash, row.clone());
    }

    /// Starts a flush: from now on, no read begun before it may insert.
    pub fn begin_flush(&self) {
        self.flush_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Writes a flushed memtable's version of a key (after [`RowCache::begin_flush`] and
    /// before the flushed table is installed): replaces any cached row of the key, and adds
    /// one while `budget` (bytes) lasts, so a flush larger than the cache neither copies
    /// nor churns through more than the cache holds.
    pub fn flush_row(
        &self,
        (key, seq, kind, meta, value): (&[u8], SequenceNumber, ValueKind, &[u8], &[u8]),
        budget: &mut usize,
    ) {
        let hash = KeyHash::of(key);
        let mut shard = self.shard(hash).shard.write();
        if !shard.map.contains_key(&hash.0) {
            let charge_bytes = key.len() + meta.len() + value.len() + ROW_OVERHEAD_BYTES;
            if *budget < charge_bytes {
                return;
            }
            *budget -= charge_bytes;
        }
        shard.put(hash, Row::new(key, seq, kind, meta, value));
    }

    /// Configured capacity in bytes.
    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }

    /// Bytes currently charged; never more than the capacity.
    pub fn size_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.shard.read().size_bytes).sum()
    }

    /// Rows cached.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.shard.read().map.len()).sum()
    }

    /// Whether no row is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lookups that found a row, and lookups that did not, since creation.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        self.shards.iter().fold((0, 0), |(hits, misses), s| {
            (
                hits + s.counters.hits.load(Ordering::Relaxed),
                misses + s.counters.misses.load(Ordering::Relaxed),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_gives_back_its_parts() {
        for (key, seq, kind, meta, value) in [
            (
                &b"key"[..],
                7u64,
                ValueKind::Put,
                &b"meta"[..],
                &[9u8; 1000][..],
            ),
            (b"k", u64::MAX, ValueKind::Delete, b"", b""),
            (b"", 0, ValueKind::Put, &[1; 17], b"v"),
        ] {
            let row = Row::new(key, seq, kind, meta, value);
            assert_eq!(
                (row.key(), row.seq(), row.kind(), row.meta(), row.value()),
                (key, seq, kind, meta, value)
            );
            assert_eq!(
                row.charge_bytes(),
                ROW_HEADER_BYTES + key.len() + meta.len() + value.len() + ROW_OVERHEAD_BYTES
            );
        }
    }

    fn row(key: &[u8], seq: u64, value_length: usize) -> Row {
        Row::new(
            key,
            seq,
            ValueKind::Put,
            b"m",
            &vec![seq as u8; value_length],
        )
    }

    fn flush_row(cache: &RowCache, key: &[u8], seq: u64, budget: &mut usize) {
        cache.flush_row((key, seq, ValueKind::Put, b"m", &[seq as u8; 10]), budget);
    }

    #[test]
    fn byte_bound_holds_and_hot_rows_survive() {
        let capacity_bytes = 64 * 1024;
        let cache = RowCache::new(capacity_bytes);
        let epoch = cache.read_epoch();
        let hot = b"hot-key".as_slice();
        cache.insert_read(KeyHash::of(hot), &row(hot, 1, 100), epoch);
        for n in 0..5000u64 {
            let key = format!("key{n}").into_bytes();
            cache.insert_read(KeyHash::of(&key), &row(&key, n, 200), epoch);
            assert!(
                cache.get(KeyHash::of(hot), hot).is_some(),
                "hot row evicted at {n}"
            );
            assert!(
                cache.size_bytes() <= capacity_bytes,
                "{}",
                cache.size_bytes()
            );
        }
        assert!(cache.size_bytes() > capacity_bytes / 2);
        assert!(cache.len() < 5000);
        let (hits, misses) = cache.hits_and_misses();
        assert_eq!((hits, misses), (5000, 0));
    }

    #[test]
    fn older_versions_never_replace_newer_and_flushes_fence_reads() {
        let cache = RowCache::new(1 << 20);
        let key = b"k".as_slice();
        let hash = KeyHash::of(key);
        let epoch = cache.read_epoch();
        cache.insert_read(hash, &row(key, 5, 10), epoch);
        cache.insert_read(hash, &row(key, 3, 10), epoch);
        assert_eq!(cache.get(hash, key).unwrap().seq(), 5);
        // A read that started before a flush may not insert after it began.
        cache.begin_flush();
        let mut budget = usize::MAX;
        flush_row(&cache, key, 9, &mut budget);
        cache.insert_read(KeyHash::of(b"other"), &row(b"other", 1, 10), epoch);
        assert!(cache.get(KeyHash::of(b"other"), b"other").is_none());
        assert_eq!(cache.get(hash, key).unwrap().seq(), 9);
        // A flush with no budget left still replaces what is cached, adds nothing.
        cache.begin_flush();
        let mut budget = 0;
        flush_row(&cache, key, 12, &mut budget);
        flush_row(&cache, b"new", 13, &mut budget);
        assert_eq!(cache.get(hash, key).unwrap().seq(), 12);
        assert!(cache.get(KeyHash::of(b"new"), b"new").is_none());
    }

    #[test]
    fn rows_larger_than_a_shard_are_not_cached() {
        let cache = RowCache::new(SHARD_COUNT * 1024);
        let epoch = cache.read_epoch();
        let big = b"big".as_slice();
        cache.insert_read(KeyHash::of(big), &row(big, 1, 4096), epoch);
        assert!(cache.get(KeyHash::of(big), big).is_none());
        assert_eq!(cache.size_bytes(), 0);
    }
}
