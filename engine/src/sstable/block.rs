//! Data blocks: prefix-compressed entries with a restart array for binary search.
//!
//! Uncompressed layout (the format module wraps it in compression and a trailer):
//!
//! ```text
//! entry*      varint shared_key_length     bytes shared with the previous key (0 at a restart)
//!             varint unshared_key_length
//!             varint meta_length
//!             varint value_length
//!             u8     kind                  0 = Delete, 1 = Put
//!             u64    seq                   little-endian
//!             [unshared_key_length] key suffix
//!             [meta_length] meta
//!             [value_length] value
//! restarts    u32 little-endian offset of every restart entry, ascending, first is 0
//! u32         restart count (at least 1)
//! ```
//!
//! A restart entry stores its whole key, so a reader can binary-search the restart array
//! comparing keys read in place, then scan forward at most `block_restart_interval` entries.

use super::coding::{put_u32, put_varint, FormatError, FormatResult, Reader};
use crate::types::{Entry, SequenceNumber, ValueKind};
use std::cmp::Ordering;
use std::ops::Range;
use std::sync::Arc;

/// Bytes of an entry that are not key, meta or value, at most: four varints, kind, seq.
const ENTRY_OVERHEAD_BYTES_MAX: usize = 4 * 5 + 1 + 8;

/// Accumulates sorted entries into the uncompressed bytes of one block.
pub struct BlockBuilder {
    buffer: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    entries_since_restart: usize,
    entry_count: usize,
    last_key: Vec<u8>,
}

impl BlockBuilder {
    pub fn new(restart_interval: usize) -> BlockBuilder {
        assert!(restart_interval >= 1, "restart interval must be at least 1");
        BlockBuilder {
            buffer: Vec::new(),
            restarts: Vec::new(),
            restart_interval,
            entries_since_restart: 0,
            entry_count: 0,
            last_key: Vec::new(),
        }
    }

    /// Appends an entry; `key` must sort after every key already added.
    pub fn add(
        &mut self,
        key: &[u8],
        seq: SequenceNumber,
        kind: ValueKind,
        meta: &[u8],
        value: &[u8],
    ) {
        assert!(
            self.entry_count == 0 || key > self.last_key.as_slice(),
            "block keys must be strictly ascending"
        );
        let shared = if self.entries_since_restart == self.restart_interval || self.entry_count == 0
        {
            self.restarts.push(self.offset_u32(self.buffer.len()));
            self.entries_since_restart = 0;
            0
        } else {
            common_prefix_length(&self.last_key, key)
        };
        let unshared = &key[shared..];
        put_varint(&mut self.buffer, shared as u64);
        put_varint(&mut self.buffer, unshared.len() as u64);
        put_varint(&mut self.buffer, meta.len() as u64);
        put_varint(&mut self.buffer, value.len() as u64);
        self.buffer.push(kind as u8);
        self.buffer.extend_from_slice(&seq.to_le_bytes());
        self.buffer.extend_from_slice(unshared);
        self.buffer.extend_from_slice(meta);
        self.buffer.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(unshared);
        self.entries_since_restart += 1;
        self.entry_count += 1;
    }

    /// Size of the block if finished now.
    pub fn estimated_size_bytes(&self) -> usize {
        self.buffer.len() + 4 * self.restarts.len() + 4
    }

    /// Upper bound of the bytes `add` would append for an entry of these sizes.
    pub fn entry_size_bytes_max(key: &[u8], meta: &[u8], value: &[u8]) -> usize {
        ENTRY_OVERHEAD_BYTES_MAX + key.len() + meta.len() + value.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entry_count == 0
    }

    pub fn entry_count(&self) -> usize {
        self.entry_count
    }

    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Appends the restart array and returns the finished block; call `reset` before reuse.
    pub fn finish(&mut self) -> &[u8] {
        assert!(self.entry_count > 0, "a block holds at least one entry");
        assert_eq!(
            self.restarts.first(),
            Some(&0),
            "the first entry is a restart"
        );
        assert!(
            self.restarts.windows(2).all(|pair| pair[0] < pair[1]),
            "restart offsets ascend"
        );
        let restart_count = self.offset_u32(self.restarts.len());
        for index in 0..self.restarts.len() {
            put_u32(&mut self.buffer, self.restarts[index]);
        }
        put_u32(&mut self.buffer, restart_count);
        &self.buffer
    }

    pub fn reset(&mut self) {
        self.buffer.clear();
        self.restarts.clear();
        self.entries_since_restart = 0;
        self.entry_count = 0;
        self.last_key.clear();
    }

    fn offset_u32(&self, value: usize) -> u32 {
        u32::try_from(value).expect("a block is smaller than 4 GiB")
    }
}

pub fn common_prefix_length(left: &[u8], right: &[u8]) -> usize {
    left.iter()
        .zip(right)
        .take_while(|(left_byte, right_byte)| left_byte == right_byte)
        .count()
}

/// A decoded (uncompressed, checksum-verified) block whose restart array has been validated.
#[derive(Debug)]
pub struct Block {
    data: Vec<u8>,
    restarts_start: usize,
    restart_count: usize,
}

impl Block {
    /// Validates the restart array of untrusted bytes. Entries are checked lazily, as they
    /// are read, so that a point lookup does not pay to parse the whole block.
    pub fn decode(data: Vec<u8>) -> FormatResult<Block> {
        let length = data.len();
        if length < 4 {
            return Err(FormatError::new(0, "block shorter than its restart count"));
        }
        let restart_count = Reader::at(&data, length - 4).u32()? as usize;
        if restart_count == 0 {
            return Err(FormatError::new(length - 4, "block has no restart point"));
        }
        let restarts_start = restart_count
            .checked_mul(4)
            .and_then(|restarts_length| (length - 4).checked_sub(restarts_length))
            .filter(|&start| start > 0)
            .ok_or(FormatError::new(
                length - 4,
                "restart count larger than the block",
            ))?;
        let mut restarts = Reader::at(&data, restarts_start);
        let mut previous: Option<usize> = None;
        for _ in 0..restart_count {
            let position = restarts.position();
            let offset = restarts.u32()? as usize;
            let in_order = match previous {
                None => offset == 0,
                Some(previous) => offset > previous,
            };
            if !in_order || offset >= restarts_start {
                return Err(FormatError::new(
                    position,
                    "restart offset out of order or range",
                ));
            }
            previous = Some(offset);
        }
        assert_eq!(restarts_start + 4 * restart_count + 4, length);
        Ok(Block {
            data,
            restarts_start,
            restart_count,
        })
    }

    /// Bytes of memory the block holds, as charged to the cache.
    pub fn size_bytes(&self) -> usize {
        self.data.capacity() + std::mem::size_of::<Block>()
    }

    /// The uncompressed bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    fn restart_offset(&self, index: usize) -> usize {
        let position = self.restarts_start + 4 * index;
        // In bounds: `decode` checked the whole restart array.
        let bytes = &self.data[position..position + 4];
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize
    }

    /// The full key stored at a restart point, read in place.
    fn restart_key(&self, index: usize) -> FormatResult<&[u8]> {
        let offset = self.restart_offset(index);
        let header = self.decode_entry(offset)?;
        if header.shared != 0 {
            return Err(FormatError::new(
                offset,
                "restart entry shares a key prefix",
            ));
        }
        Ok(&self.data[header.key_suffix])
    }

    fn decode_entry(&self, offset: usize) -> FormatResult<EntryLayout> {
        let mut reader = Reader::at(&self.data[..self.restarts_start], offset);
        let shared = reader.varint_usize()?;
        let unshared = reader.varint_usize()?;
        let meta_length = reader.varint_usize()?;
        let value_length = reader.varint_usize()?;
        let kind_position = reader.position();
        let kind = ValueKind::from_byte(reader.u8()?)
            .ok_or(FormatError::new(kind_position, "unknown value kind"))?;
        let seq = reader.u64()?;
        let key_start = reader.position();
        reader.bytes(unshared)?;
        let meta_start = reader.position();
        reader.bytes(meta_length)?;
        let value_start = reader.position();
        reader.bytes(value_length)?;
        Ok(EntryLayout {
            shared,
            key_suffix: key_start..meta_start,
            kind,
            seq,
            meta: meta_start..value_start,
            value: value_start..reader.position(),
            next_offset: reader.position(),
        })
    }

    /// The restart to scan forward from when seeking `target`: the last one whose key is
    /// < `target`, or one whose key equals it.
    fn find_restart(&self, target: &[u8]) -> FormatResult<usize> {
        // Invariant: every restart before `low` has a key < target; every restart from
        // `high` on has a key >= target.
        let (mut low, mut high) = (0, self.restart_count);
        while low < high {
            let middle = low + (high - low) / 2;
            match self.restart_key(middle)?.cmp(target) {
                Ordering::Less => low = middle + 1,
                Ordering::Equal => return Ok(middle),
                Ordering::Greater => high = middle,
            }
        }
        Ok(low.saturating_sub(1))
    }
}

/// Where an entry's parts lie inside the block.
struct EntryLayout {
    shared: usize,
    key_suffix: Range<usize>,
    kind: ValueKind,
    seq: SequenceNumber,
    meta: Range<usize>,
    value: Range<usize>,
    next_offset: usize,
}

/// A cursor over one block; owns the block so that it can outlive a cache eviction.
pub struct BlockIterator {
    block: Arc<Block>,
    key: Vec<u8>,
    seq: SequenceNumber,
    kind: ValueKind,
    meta: Range<usize>,
    value: Range<usize>,
    next_offset: usize,
    valid: bool,
}

impl BlockIterator {
    pub fn new(block: Arc<Block>) -> BlockIterator {
        BlockIterator {
            block,
            key: Vec::new(),
            seq: 0,
            kind: ValueKind::Put,
            meta: 0..0,
            value: 0..0,
            next_offset: 0,
            valid: false,
        }
    }

    pub fn valid(&self) -> bool {
        self.valid
    }

    pub fn key(&self) -> &[u8] {
        &self.key
    }

    pub fn seq(&self) -> SequenceNumber {
        self.seq
    }

    pub fn kind(&self) -> ValueKind {
        self.kind
    }

    pub fn meta(&self) -> &[u8] {
        &self.block.data[self.meta.clone()]
    }

    pub fn value(&self) -> &[u8] {
        &self.block.data[self.value.clone()]
    }

    /// Copies the current entry into `entry`, reusing its buffers.
    pub fn fill_entry(&self, entry: &mut Entry) {
        entry.key.clear();
        entry.key.extend_from_slice(&self.key);
        entry.seq = self.seq;
        entry.kind = self.kind;
        entry.meta.clear();
        entry.meta.extend_from_slice(self.meta());
        entry.value.clear();
        entry.value.extend_from_slice(self.value());
    }

    pub fn to_entry(&self) -> Entry {
        Entry {
            key: self.key.clone(),
            seq: self.seq,
            kind: self.kind,
            meta: self.meta().to_vec(),
            value: self.value().to_vec(),
        }
    }

    pub fn seek_to_first(&mut self) -> FormatResult<()> {
        self.key.clear();
        self.read_entry_at(0)
    }

    /// Positions at the first entry whose key is >= `target`, or invalid past the end.
    pub fn seek(&mut self, target: &[u8]) -> FormatResult<()> {
        let restart = self.block.find_restart(target)?;
        self.key.clear();
        self.read_entry_at(self.block.restart_offset(restart))?;
        while self.valid && self.key.as_slice() < target {
            self.advance()?;
        }
        Ok(())
    }

    pub fn advance(&mut self) -> FormatResult<()> {
        if !self.valid {
            return Ok(());
        }
        self.read_entry_at(self.next_offset)
    }

    fn read_entry_at(&mut self, offset: usize) -> FormatResult<()> {
        self.valid = false;
        if offset >= self.block.restarts_start {
            return Ok(());
        }
        let layout = self.block.decode_entry(offset)?;
        if layout.shared > self.key.len() {
            return Err(FormatError::new(
                offset,
                "shared key prefix longer than the previous key",
            ));
        }
        self.key.truncate(layout.shared);
        self.key
            .extend_from_slice(&self.block.data[layout.key_suffix.clone()]);
        self.seq = layout.seq;
        self.kind = layout.kind;
        self.meta = layout.meta;
        self.value = layout.value;
        self.next_offset = layout.next_offset;
        self.valid = true;
        Ok(())
    }
}

/// Calls `read` with the entry whose key is exactly `key` (sequence number, kind, metadata,
/// value), lent from the block without copying, if the block holds one.
pub fn block_lookup<T>(
    block: Arc<Block>,
    key: &[u8],
    read: impl FnOnce(SequenceNumber, ValueKind, &[u8], &[u8]) -> T,
) -> FormatResult<Option<T>> {
    let mut iterator = BlockIterator::new(block);
    iterator.seek(key)?;
    Ok((iterator.valid() && iterator.key() == key).then(|| {
        read(
            iterator.seq(),
            iterator.kind(),
            iterator.meta(),
            iterator.value(),
        )
    }))
}

/// The entry whose key is exactly `key`, if the block holds one.
pub fn block_get(block: Arc<Block>, key: &[u8]) -> FormatResult<Option<Entry>> {
    let mut iterator = BlockIterator::new(block);
    iterator.seek(key)?;
    Ok((iterator.valid() && iterator.key() == key).then(|| iterator.to_entry()))
}

#[cfg(test)]
mod tests;
