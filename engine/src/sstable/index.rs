//! The index block: one entry per data block, read in place from the mmap.
//!
//! ```text
//! entry*   varint separator_length, separator,
//!          varint block_offset, varint block_size (stored bytes, trailer excluded)
//! u32      offset of every entry, little-endian, ascending
//! u32      entry count
//! ```
//!
//! A separator is >= every key of its block and < every key of the next block; entries
//! carry no prefix compression so that a binary search decodes each probe on its own.

use super::block::common_prefix_length;
use super::coding::{put_u32, put_varint, read_u32_at, FormatError, FormatResult, Reader};
use super::format::BlockHandle;
use std::cmp::Ordering;

#[derive(Default)]
pub struct IndexBuilder {
    buffer: Vec<u8>,
    offsets: Vec<u32>,
    last_separator: Vec<u8>,
}

impl IndexBuilder {
    pub fn new() -> IndexBuilder {
        IndexBuilder::default()
    }

    pub fn add(&mut self, separator: &[u8], handle: BlockHandle) {
        assert!(
            self.offsets.is_empty() || separator > self.last_separator.as_slice(),
            "index separators must be strictly ascending"
        );
        let offset = u32::try_from(self.buffer.len()).expect("index block under 4 GiB");
        self.offsets.push(offset);
        put_varint(&mut self.buffer, separator.len() as u64);
        self.buffer.extend_from_slice(separator);
        put_varint(&mut self.buffer, handle.offset);
        put_varint(&mut self.buffer, handle.size);
        self.last_separator.clear();
        self.last_separator.extend_from_slice(separator);
    }

    pub fn estimated_size_bytes(&self) -> usize {
        self.buffer.len() + 4 * self.offsets.len() + 4
    }

    pub fn finish(mut self) -> Vec<u8> {
        let count = u32::try_from(self.offsets.len()).expect("fewer than 4G blocks");
        for index in 0..self.offsets.len() {
            put_u32(&mut self.buffer, self.offsets[index]);
        }
        put_u32(&mut self.buffer, count);
        assert!(IndexBlock::decode(&self.buffer).is_ok_and(|index| index.len() == count as usize));
        self.buffer
    }
}

/// A short key `s` with `last_key <= s < next_key`: the common prefix plus one incremented
/// byte when that fits, else `last_key` itself. Short separators keep the index small.
pub fn shortest_separator(last_key: &[u8], next_key: &[u8], separator: &mut Vec<u8>) {
    assert!(last_key < next_key);
    let common = common_prefix_length(last_key, next_key);
    separator.clear();
    if common < last_key.len() {
        let byte = last_key[common];
        // `common < next_key.len()` holds because last_key < next_key and they differ here.
        // The incremented prefix stays below `next_key` if its last byte is smaller than
        // next_key's, or equal to it but a proper prefix of it.
        if byte < 0xff && (byte + 1 < next_key[common] || next_key.len() > common + 1) {
            separator.extend_from_slice(&last_key[..=common]);
            separator[common] += 1;
            assert!(separator.as_slice() > last_key && separator.as_slice() < next_key);
            return;
        }
    }
    separator.extend_from_slice(last_key);
}

/// An index block read in place.
#[derive(Debug, Clone, Copy)]
pub struct IndexBlock<'a> {
    entries: &'a [u8],
    offsets: &'a [u8],
    count: usize,
}

impl<'a> IndexBlock<'a> {
    /// Checks the offset array of untrusted contents. Cheap: entries are decoded lazily.
    pub fn decode(contents: &'a [u8]) -> FormatResult<IndexBlock<'a>> {
        let length = contents.len();
        let count_position = length
            .checked_sub(4)
            .ok_or(FormatError::new(0, "index shorter than its entry count"))?;
        let count = read_u32_at(contents, count_position)
            .ok_or(FormatError::new(count_position, "truncated entry count"))?
            as usize;
        let offsets_start = count
            .checked_mul(4)
            .and_then(|offsets_length| count_position.checked_sub(offsets_length))
            .ok_or(FormatError::new(
                count_position,
                "entry count larger than the index",
            ))?;
        Ok(IndexBlock {
            entries: &contents[..offsets_start],
            offsets: &contents[offsets_start..count_position],
            count,
        })
    }

    /// Full check, once at open: every entry decodes, separators ascend, and the handles
    /// tile the data area `[0, data_end)` with no gap or overlap.
    pub fn validate(&self, data_end: u64) -> FormatResult<()> {
        let mut expected_offset = 0u64;
        let mut previous: Option<&[u8]> = None;
        for index in 0..self.count {
            let (separator, handle) = self.entry(index)?;
            let position = self.entry_offset(index)?;
            if previous.is_some_and(|previous| previous >= separator) {
                return Err(FormatError::new(position, "separators out of order"));
            }
            if handle.offset != expected_offset || handle.size == 0 {
                return Err(FormatError::new(
                    position,
                    "block handle leaves a gap or overlaps",
                ));
            }
            expected_offset = handle
                .end_with_trailer()
                .ok_or(FormatError::new(position, "block handle overflows"))?;
            previous = Some(separator);
        }
        if expected_offset != data_end {
            return Err(FormatError::new(
                self.entries.len(),
                "data blocks do not end where the filter begins",
            ));
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn entry_offset(&self, index: usize) -> FormatResult<usize> {
        let position = index * 4;
        let offset = read_u32_at(self.offsets, position)
            .ok_or(FormatError::new(position, "entry offset out of range"))?;
        Ok(offset as usize)
    }

    fn separator(&self, index: usize) -> FormatResult<&'a [u8]> {
        Reader::at(self.entries, self.entry_offset(index)?).length_prefixed()
    }

    pub fn entry(&self, index: usize) -> FormatResult<(&'a [u8], BlockHandle)> {
        let mut reader = Reader::at(self.entries, self.entry_offset(index)?);
        let separator = reader.length_prefixed()?;
        let offset = reader.varint()?;
        let size = reader.varint()?;
        Ok((separator, BlockHandle { offset, size }))
    }

    /// The first entry whose separator is >= `key`: the only block that can hold `key`.
    pub fn find(&self, key: &[u8]) -> FormatResult<Option<usize>> {
        let (mut low, mut high) = (0, self.count);
        while low < high {
            let middle = low + (high - low) / 2;
            match self.separator(middle)?.cmp(key) {
                Ordering::Less => low = middle + 1,
                Ordering::Equal => return Ok(Some(middle)),
                Ordering::Greater => high = middle,
            }
        }
        Ok((low < self.count).then_some(low))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_short_and_between() {
        let mut separator = Vec::new();
        let cases: [(&[u8], &[u8], &[u8]); 6] = [
            (b"apple", b"banana", b"b"),
            (b"apple", b"apricot", b"apq"),
            (b"abc", b"abd", b"abc"),
            (b"ab", b"abc", b"ab"),
            (b"a\xff", b"b", b"a\xff"),
            (b"a\xff", b"bc", b"b"),
        ];
        for (last, next, expected) in cases {
            shortest_separator(last, next, &mut separator);
            assert_eq!(separator, expected, "{last:?} {next:?}");
        }
    }

    #[test]
    fn find_returns_the_covering_block() {
        let mut builder = IndexBuilder::new();
        let mut offset = 0;
        for separator in [&b"c"[..], b"f", b"k"] {
            builder.add(separator, BlockHandle { offset, size: 10 });
            offset += 15;
        }
        let contents = builder.finish();
        let index = IndexBlock::decode(&contents).expect("decodes");
        index.validate(45).expect("valid");
        assert!(index.validate(50).is_err());
        let find = |key: &[u8]| index.find(key).expect("finds");
        assert_eq!(find(b"a"), Some(0));
        assert_eq!(find(b"c"), Some(0));
        assert_eq!(find(b"d"), Some(1));
        assert_eq!(find(b"k"), Some(2));
        assert_eq!(find(b"z"), None);
        assert_eq!(
            index.entry(1).expect("entry").1,
            BlockHandle {
                offset: 15,
                size: 10
            }
        );
    }
}
