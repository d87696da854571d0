//! Immutable sorted tables: the on-disk form of flushed memtables and compaction output.
//!
//! # File format, version 1
//!
//! ```text
//! data block 0 | trailer
//! ...
//! data block n-1 | trailer
//! filter block | trailer        Bloom filter over every key (see `bloom`); may be empty
//! index block | trailer         one entry per data block (see `index`)
//! properties block | trailer    counters and key range: `TableInfo` (see `properties`)
//! footer                        64 bytes, fixed (see `format::Footer`), ending in the
//!                               format version, its own crc32c and the magic
//!                               0x5353_5441_424c_4531 ("SSTABLE1"), little-endian u64
//! ```
//!
//! All integers are little-endian; lengths inside blocks are LEB128 varints.
//!
//! A block's *stored bytes* are followed by a 5-byte *trailer*: one compression type byte
//! (0 = raw, 1 = zstd) and the crc32c (unmasked) of the stored bytes followed by that type
//! byte. A zstd block stores a varint uncompressed length, then one zstd frame. A data
//! block is compressed only when that saves at least 1/8 of its size; the filter, index
//! and properties blocks are always raw, because they are used in place from the mmap.
//!
//! A data block (see `block`) holds entries with keys prefix-compressed against the previous
//! key, a full key every `block_restart_interval` entries, and an array of those restart
//! offsets. Blocks are cut once they reach `block_size_bytes` uncompressed.
//!
//! # Reading
//!
//! `Table::open` maps the file and verifies the footer and the checksums and structure of
//! the filter, index and properties blocks once. A point read probes the Bloom filter,
//! binary-searches the index in place, then reads one data block (from the [`BlockCache`]
//! or the mmap, checksum verified before decompression and caching), binary-searches its
//! restart points and scans at most one restart interval.

pub mod block;
pub mod bloom;
pub mod builder;
pub mod cache;
pub mod coding;
pub mod format;
pub mod index;
pub mod iterator;
pub mod properties;
pub mod reader;
pub mod residency;

pub use builder::TableBuilder;
pub use cache::BlockCache;
pub use iterator::TableIterator;
pub use properties::TableInfo;
pub use reader::Table;
pub use residency::MappedBudget;

#[cfg(test)]
mod corruption_tests;
#[cfg(test)]
mod tests;
