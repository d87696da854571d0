//! A bounded cache of decoded data blocks, shared by every table of a database.
//!
//! Sixteen shards, each a CLOCK cache under its own mutex: a hit only sets a reference bit
//! (no list relinking as in LRU), and concurrent readers of different blocks rarely meet
//! on the same lock. Capacity is in bytes, split evenly between shards; a block larger than
//! a shard is never cached.

use super::block::Block;
use super::residency::MappedBudget;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

const SHARD_COUNT: usize = 16;
/// Bookkeeping charged per cached block on top of its bytes (map entry, slot, Arc header).
const ENTRY_OVERHEAD_BYTES: usize = 96;

type CacheKey = (u64, u64);

struct Slot {
    key: CacheKey,
    block: Option<Arc<Block>>,
    referenced: bool,
    charge_bytes: usize,
}

#[derive(Default)]
struct Shard {
    map: HashMap<CacheKey, usize>,
    slots: Vec<Slot>,
    free_slots: Vec<usize>,
    hand: usize,
    size_bytes: usize,
    capacity_bytes: usize,
}

impl Shard {
    fn get(&mut self, key: CacheKey) -> Option<Arc<Block>> {
        let slot = &mut self.slots[*self.map.get(&key)?];
        slot.referenced = true;
        slot.block.clone()
    }

    fn insert(&mut self, key: CacheKey, block: Arc<Block>) {
        let charge_bytes = block.size_bytes() + ENTRY_OVERHEAD_BYTES;
        if charge_bytes > self.capacity_bytes || self.map.contains_key(&key) {
            return;
        }
        while self.size_bytes + charge_bytes > self.capacity_bytes {
            self.evict_one();
        }
        let slot = Slot {
            key,
            block: Some(block),
            referenced: false,
            charge_bytes,
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
        self.map.insert(key, index);
        self.size_bytes += charge_bytes;
    }

    /// Sweeps the clock hand: a referenced block gets a second chance, the first
    /// unreferenced one goes. Ends within two turns because the first turn clears every bit.
    fn evict_one(&mut self) {
        assert!(self.size_bytes > 0, "evicting from an empty shard");
        loop {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let index = self.hand;
            self.hand += 1;
            let slot = &mut self.slots[index];
            if slot.block.is_none() {
                continue;
            }
            if slot.referenced {
                slot.referenced = false;
                continue;
            }
            self.remove_slot(index);
            return;
        }
    }

    fn remove_slot(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        if slot.block.take().is_some() {
            self.size_bytes -= slot.charge_bytes;
            self.map.remove(&slot.key);
            self.free_slots.push(index);
        }
    }

    fn evict_table(&mut self, table_id: u64) {
        for index in 0..self.slots.len() {
            if self.slots[index].block.is_some() && self.slots[index].key.0 == table_id {
                self.remove_slot(index);
            }
        }
    }
}

/// Cache of decompressed data blocks keyed by (table id, block offset). `Send + Sync`.
pub struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    mapped: MappedBudget,
}

impl BlockCache {
    /// A cache of `capacity_bytes` with no budget on mapped table pages.
    pub fn new(capacity_bytes: usize) -> BlockCache {
        BlockCache::with_mapped_budget(capacity_bytes, u64::MAX)
    }

    /// A cache of `capacity_bytes` (0 caches nothing) whose tables keep at most about
    /// `2 * mapped_bytes_max` of data pages mapped; see [`MappedBudget`].
    pub fn with_mapped_budget(capacity_bytes: usize, mapped_bytes_max: u64) -> BlockCache {
        let shards = (0..SHARD_COUNT)
            .map(|_| {
                Mutex::new(Shard {
                    capacity_bytes: capacity_bytes / SHARD_COUNT,
                    ..Shard::default()
                })
            })
            .collect();
        BlockCache {
            shards,
            mapped: MappedBudget::new(mapped_bytes_max),
        }
    }

    fn shard(&self, key: CacheKey) -> &Mutex<Shard> {
        // Offsets of neighbouring blocks differ in their low bits, table ids in theirs: mix
        // both so that one table's blocks spread over every shard.
        let mixed =
            (key.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ key.1).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        &self.shards[(mixed >> 60) as usize % SHARD_COUNT]
    }

    /// The budget on mapped table pages.
    pub fn mapped_budget(&self) -> &MappedBudget {
        &self.mapped
    }

    pub fn get(&self, table_id: u64, block_offset: u64) -> Option<Arc<Block>> {
        let key = (table_id, block_offset);
        self.shard(key).lock().get(key)
    }

    /// Caches a block (a no-op if it is already cached or too large for a shard).
    pub fn insert(&self, table_id: u64, block_offset: u64, block: Arc<Block>) {
        let key = (table_id, block_offset);
        self.shard(key).lock().insert(key, block);
    }

    /// Drops every block of a table, e.g. once compaction has deleted it.
    pub fn evict_table(&self, table_id: u64) {
        for shard in &self.shards {
            shard.lock().evict_table(table_id);
        }
    }

    /// Bytes currently charged; never more than the capacity given to `new`.
    pub fn size_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().size_bytes)
            .sum()
    }

    pub fn entry_count(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().map.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_of(size_bytes: usize) -> Arc<Block> {
        let mut builder = super::super::block::BlockBuilder::new(16);
        builder.add(
            b"key",
            1,
            crate::ValueKind::Put,
            b"",
            &vec![7u8; size_bytes],
        );
        Arc::new(Block::decode(builder.finish().to_vec()).expect("decodes"))
    }

    #[test]
    fn capacity_is_respected_and_hot_blocks_survive() {
        let capacity_bytes = 64 * 1024;
        let cache = BlockCache::new(capacity_bytes);
        for offset in 0..1000u64 {
            cache.insert(1, offset * 4096, block_of(1000));
            // A block read between every two sweeps of the hand always gets its second chance.
            assert!(cache.get(1, 0).is_some(), "hot block evicted at {offset}");
            assert!(
                cache.size_bytes() <= capacity_bytes,
                "{}",
                cache.size_bytes()
            );
        }
        assert!(cache.size_bytes() > capacity_bytes / 2);
        assert!(cache.entry_count() < 1000);
        let last = cache
            .get(1, 999 * 4096)
            .expect("most recent block is cached");
        assert_eq!(last.data().len(), block_of(1000).data().len());
    }

    #[test]
    fn evict_table_and_oversized_blocks() {
        let cache = BlockCache::new(16 * 8192);
        cache.insert(1, 0, block_of(100));
        cache.insert(2, 0, block_of(100));
        cache.insert(3, 0, block_of(100_000));
        assert!(cache.get(3, 0).is_none(), "larger than a shard");
        cache.evict_table(1);
        assert!(cache.get(1, 0).is_none());
        assert!(cache.get(2, 0).is_some());
        cache.evict_table(2);
        assert_eq!(cache.size_bytes(), 0);
        let disabled = BlockCache::new(0);
        disabled.insert(1, 0, block_of(1));
        assert!(disabled.get(1, 0).is_none());
    }
}
