//! Writes a table file from entries in key order.

use super::block::BlockBuilder;
use super::bloom::BloomBuilder;
use super::format::{BlockCompressor, BlockHandle, Footer, FOOTER_SIZE_BYTES};
use super::index::{shortest_separator, IndexBuilder};
use super::properties::{Properties, TableInfo};
use crate::error::{Error, Result};
use crate::options::{Compression, TableOptions};
use crate::types::{SequenceNumber, ValueKind};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const WRITE_BUFFER_SIZE_BYTES: usize = 256 << 10;

/// Builds one table file. Dropping a builder without `finish` removes its partial file, as
/// `abandon` does, but `abandon` reports a failure to remove it.
pub struct TableBuilder {
    path: PathBuf,
    /// `None` once finished or abandoned.
    writer: Option<BufWriter<File>>,
    block_size_bytes: usize,
    block: BlockBuilder,
    index: IndexBuilder,
    bloom: BloomBuilder,
    compressor: BlockCompressor,
    /// Stored bytes of the block being written, reused between blocks.
    stored: Vec<u8>,
    offset: u64,
    /// The last full block, whose index entry waits for the next key: the separator is
    /// chosen between the block's last key and that key.
    pending_handle: Option<BlockHandle>,
    separator: Vec<u8>,
    last_key: Vec<u8>,
    smallest_key: Vec<u8>,
    entry_count: u64,
    tombstone_count: u64,
    seq_min: SequenceNumber,
    seq_max: SequenceNumber,
    data_block_count: u64,
}

impl TableBuilder {
    /// Creates (truncating) the file at `path`. `expected_entries` sizes the Bloom filter's
    /// hash buffer; it need not be exact.
    pub fn create(
        path: &Path,
        options: &TableOptions,
        expected_entries: usize,
    ) -> Result<TableBuilder> {
        if options.block_restart_interval == 0 {
            return Err(Error::InvalidOption {
                field: "table.block_restart_interval",
                detail: "must be at least 1".to_string(),
            });
        }
        let file = File::create(path).map_err(|error| Error::io(path, error))?;
        Ok(TableBuilder {
            path: path.to_path_buf(),
            writer: Some(BufWriter::with_capacity(WRITE_BUFFER_SIZE_BYTES, file)),
            block_size_bytes: options.block_size_bytes.max(1),
            block: BlockBuilder::new(options.block_restart_interval),
            index: IndexBuilder::new(),
            bloom: BloomBuilder::new(options.bloom_bits_per_key, expected_entries),
            compressor: BlockCompressor::new(options.compression),
            stored: Vec::new(),
            offset: 0,
            pending_handle: None,
            separator: Vec::new(),
            last_key: Vec::new(),
            smallest_key: Vec::new(),
            entry_count: 0,
            tombstone_count: 0,
            seq_min: 0,
            seq_max: 0,
            data_block_count: 0,
        })
    }

    /// Appends one entry. Keys must be strictly ascending: one version per key per table.
    pub fn add(
        &mut self,
        key: &[u8],
        seq: SequenceNumber,
        kind: ValueKind,
        meta: &[u8],
        value: &[u8],
    ) -> Result<()> {
        assert!(
            self.entry_count == 0 || key > self.last_key.as_slice(),
            "table keys must be strictly ascending"
        );
        if let Some(handle) = self.pending_handle.take() {
            shortest_separator(&self.last_key, key, &mut self.separator);
            self.index.add(&self.separator, handle);
        }
        if self.entry_count == 0 {
            self.smallest_key = key.to_vec();
            self.seq_min = seq;
            self.seq_max = seq;
        }
        self.seq_min = self.seq_min.min(seq);
        self.seq_max = self.seq_max.max(seq);
        self.entry_count += 1;
        if kind == ValueKind::Delete {
            self.tombstone_count += 1;
        }
        self.bloom.add_key(key);
        self.block.add(key, seq, kind, meta, value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        if self.block.estimated_size_bytes() >= self.block_size_bytes {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Size the file would have if finished now (before compression of the open block).
    pub fn estimated_size_bytes(&self) -> u64 {
        self.offset
            + (self.block.estimated_size_bytes()
                + self.index.estimated_size_bytes()
                + self.bloom.estimated_size_bytes()
                + FOOTER_SIZE_BYTES) as u64
    }

    pub fn entry_count(&self) -> u64 {
        self.entry_count
    }

    fn flush_block(&mut self) -> Result<()> {
        assert!(self.pending_handle.is_none());
        let raw = self.block.finish();
        self.stored.clear();
        let size = self
            .compressor
            .write_block(raw, &mut self.stored)
            .map_err(|error| Error::io(&self.path, error))?;
        let handle = self.write_stored(size)?;
        self.pending_handle = Some(handle);
        self.block.reset();
        self.data_block_count += 1;
        Ok(())
    }

    /// Writes a meta block (filter, index, properties): never compressed, so that the
    /// reader can use it straight from the mmap.
    fn write_meta_block(&mut self, contents: &[u8]) -> Result<BlockHandle> {
        self.stored.clear();
        let size = BlockCompressor::new(Compression::None)
            .write_block(contents, &mut self.stored)
            .map_err(|error| Error::io(&self.path, error))?;
        assert_eq!(size, contents.len());
        self.write_stored(size)
    }

    fn write_stored(&mut self, size: usize) -> Result<BlockHandle> {
        let writer = self.writer.as_mut().expect("builder is open");
        writer
            .write_all(&self.stored)
            .map_err(|error| Error::io(&self.path, error))?;
        let handle = BlockHandle {
            offset: self.offset,
            size: size as u64,
        };
        self.offset += self.stored.len() as u64;
        Ok(handle)
    }

    /// Writes the last data block, filter, index, properties and footer, then fsyncs.
    pub fn finish(mut self) -> Result<TableInfo> {
        if !self.block.is_empty() {
            self.flush_block()?;
        }
        if let Some(handle) = self.pending_handle.take() {
            // Past the last block any key >= its last key would do; the last key itself
            // keeps the index's range equal to the table's.
            let last_key = std::mem::take(&mut self.last_key);
            self.index.add(&last_key, handle);
            self.last_key = last_key;
        }
        let filter_contents = self.bloom.finish();
        let filter = self.write_meta_block(&filter_contents)?;
        let index_contents = std::mem::replace(&mut self.index, IndexBuilder::new()).finish();
        let index = self.write_meta_block(&index_contents)?;
        let mut properties = Properties {
            info: TableInfo {
                file_size_bytes: 0,
                entry_count: self.entry_count,
                tombstone_count: self.tombstone_count,
                smallest_key: std::mem::take(&mut self.smallest_key),
                largest_key: if self.entry_count == 0 {
                    Vec::new()
                } else {
                    self.last_key.clone()
                },
                seq_min: self.seq_min,
                seq_max: self.seq_max,
            },
            data_block_count: self.data_block_count,
        };
        properties.info.file_size_bytes = self.offset
            + (properties.encoded_size_bytes()
                + super::format::BLOCK_TRAILER_SIZE_BYTES
                + FOOTER_SIZE_BYTES) as u64;
        let properties_handle = self.write_meta_block(&properties.encode())?;
        let footer = Footer {
            filter,
            index,
            properties: properties_handle,
        };
        self.stored = footer.encode();
        self.write_stored(FOOTER_SIZE_BYTES)?;
        assert_eq!(self.offset, properties.info.file_size_bytes);
        let writer = self.writer.take().expect("builder is open");
        let file = writer
            .into_inner()
            .map_err(|error| Error::io(&self.path, error.into_error()))?;
        file.sync_all()
            .map_err(|error| Error::io(&self.path, error))?;
        Ok(properties.info)
    }

    /// Stops writing and removes the partial file.
    pub fn abandon(mut self) -> Result<()> {
        self.writer = None;
        std::fs::remove_file(&self.path).map_err(|error| Error::io(&self.path, error))
    }
}

impl Drop for TableBuilder {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            // Neither finished nor abandoned (an error unwound past it): best effort.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
