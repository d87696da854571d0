//! The properties block: what a table holds, so that [`TableInfo`] comes from the file.
//!
//! ```text
//! u64 file_size_bytes     u64 entry_count        u64 tombstone_count
//! u64 seq_min             u64 seq_max            u64 data_block_count
//! varint smallest_key_length, smallest_key
//! varint largest_key_length,  largest_key
//! ```
//!
//! The counters are fixed-width so that the block's size, and so the file's size, is known
//! before `file_size_bytes` is written into it.

use super::coding::{put_u64, put_varint, varint_length, FormatError, FormatResult, Reader};

/// Summary of one table, recorded in the table itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableInfo {
    pub file_size_bytes: u64,
    pub entry_count: u64,
    pub tombstone_count: u64,
    /// Empty when the table has no entries.
    pub smallest_key: Vec<u8>,
    pub largest_key: Vec<u8>,
    /// Both 0 when the table has no entries.
    pub seq_min: u64,
    pub seq_max: u64,
}

/// [`TableInfo`] plus what only the reader's checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    pub info: TableInfo,
    pub data_block_count: u64,
}

impl Properties {
    pub fn encoded_size_bytes(&self) -> usize {
        let key_bytes = |key: &[u8]| varint_length(key.len() as u64) + key.len();
        6 * 8 + key_bytes(&self.info.smallest_key) + key_bytes(&self.info.largest_key)
    }

    pub fn encode(&self) -> Vec<u8> {
        let info = &self.info;
        let mut bytes = Vec::with_capacity(self.encoded_size_bytes());
        for value in [
            info.file_size_bytes,
            info.entry_count,
            info.tombstone_count,
            info.seq_min,
            info.seq_max,
            self.data_block_count,
        ] {
            put_u64(&mut bytes, value);
        }
        for key in [&info.smallest_key, &info.largest_key] {
            put_varint(&mut bytes, key.len() as u64);
            bytes.extend_from_slice(key);
        }
        assert_eq!(bytes.len(), self.encoded_size_bytes());
        bytes
    }

    pub fn decode(contents: &[u8]) -> FormatResult<Properties> {
        let mut reader = Reader::new(contents);
        let file_size_bytes = reader.u64()?;
        let entry_count = reader.u64()?;
        let tombstone_count = reader.u64()?;
        let seq_min = reader.u64()?;
        let seq_max = reader.u64()?;
        let data_block_count = reader.u64()?;
        let smallest_key = reader.length_prefixed()?.to_vec();
        let largest_key = reader.length_prefixed()?.to_vec();
        if !reader.is_empty() {
            return Err(FormatError::new(reader.position(), "trailing bytes"));
        }
        if tombstone_count > entry_count || seq_min > seq_max || smallest_key > largest_key {
            return Err(FormatError::new(0, "inconsistent counters or key range"));
        }
        Ok(Properties {
            info: TableInfo {
                file_size_bytes,
                entry_count,
                tombstone_count,
                smallest_key,
                largest_key,
                seq_min,
                seq_max,
            },
            data_block_count,
        })
    }
}
