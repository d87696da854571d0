//! Opens a table file through mmap and serves point reads.

use super::block::{block_lookup, Block};
use super::bloom::BloomFilter;
use super::cache::BlockCache;
use super::coding::FormatError;
use super::format::{
    pread_data_block, read_block_contents, read_data_block, BlockHandle, Footer, FOOTER_SIZE_BYTES,
};
use super::index::IndexBlock;
use super::iterator::TableIterator;
use super::properties::{Properties, TableInfo};
use crate::error::{Error, Result};
use crate::options::DataBlockRead;
use crate::types::{Entry, SequenceNumber, ValueKind};
use memmap2::{Mmap, UncheckedAdvice};
use std::borrow::Cow;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An open, immutable table. `Send + Sync`: share it as `Arc<Table>`.
///
/// The index and the filter are read in place from the mmap, so a table's heap footprint
/// does not grow with its size; only data blocks are copied out (decompressed), into the
/// optional shared [`BlockCache`].
pub struct Table {
    id: u64,
    path: PathBuf,
    mmap: Mmap,
    info: TableInfo,
    cache: Option<Arc<BlockCache>>,
    /// Data blocks occupy `[0, data_end)`.
    data_end: usize,
    index_contents: Range<usize>,
    /// Bit lines and probe count of the Bloom filter, if the table has one.
    filter: Option<(Range<usize>, u32)>,
    /// The mapped-page budget epoch in which this table last dropped its mapped pages.
    released_epoch: AtomicU64,
    data_block_read: DataBlockRead,
    /// Kept open for positioned reads of data blocks.
    file: File,
}

impl Table {
    /// Maps the file and checks its footer, and the checksums and structure of its
    /// filter, index and properties blocks. Data blocks are checked as they are read.
    pub fn open(path: &Path, table_id: u64, cache: Option<Arc<BlockCache>>) -> Result<Table> {
        Table::open_with(path, table_id, cache, DataBlockRead::Mmap)
    }

    /// As [`Table::open`], reading data blocks as `data_block_read` says.
    pub fn open_with(
        path: &Path,
        table_id: u64,
        cache: Option<Arc<BlockCache>>,
        data_block_read: DataBlockRead,
    ) -> Result<Table> {
        let file = File::open(path).map_err(|error| Error::io(path, error))?;
        let file_size = file
            .metadata()
            .map_err(|error| Error::io(path, error))?
            .len();
        if file_size < FOOTER_SIZE_BYTES as u64 {
            return Err(Error::corruption(
                "footer",
                path,
                0,
                format!(
                    "file of {file_size} bytes is shorter than the {FOOTER_SIZE_BYTES}-byte footer"
                ),
            ));
        }
        // SAFETY: table files are written once, fsynced and never modified in place; they
        // are only ever deleted, which leaves an existing mapping valid.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|error| Error::io(path, error))?;
        // Point reads touch one block at a time: without this, each page fault would also
        // map up to 64 KiB of neighbouring cached pages (fault-around) and read ahead,
        // inflating resident memory far beyond what the mapped budget charges. Failure only
        // costs that memory.
        let _ = mmap.advise(memmap2::Advice::Random);
        let footer_start = mmap.len() - FOOTER_SIZE_BYTES;
        let footer = Footer::decode(&mmap[footer_start..], file_size, path)?;

        let filter_contents = meta_block_range(&mmap, footer.filter, "filter block", path)?;
        let filter = BloomFilter::decode(&mmap[filter_contents.clone()])
            .map_err(|error| error.into_error("filter block", path, footer.filter.offset))?
            .map(|filter| {
                let lines = filter_contents.start..filter_contents.start + filter.lines_length();
                (lines, filter.probe_count())
            });

        let index_contents = meta_block_range(&mmap, footer.index, "index block", path)?;
        let data_end = usize::try_from(footer.filter.offset).unwrap_or(usize::MAX);
        let index_error =
            |error: FormatError| error.into_error("index block", path, footer.index.offset);
        let index = IndexBlock::decode(&mmap[index_contents.clone()]).map_err(index_error)?;
        index.validate(footer.filter.offset).map_err(index_error)?;

        let properties_contents =
            meta_block_range(&mmap, footer.properties, "properties block", path)?;
        let properties_error = |detail: String| {
            Error::corruption("properties block", path, footer.properties.offset, detail)
        };
        let properties = Properties::decode(&mmap[properties_contents])
            .map_err(|error| properties_error(error.to_string()))?;
        if properties.info.file_size_bytes != file_size {
            return Err(properties_error(format!(
                "table was written with {} bytes but the file has {file_size}",
                properties.info.file_size_bytes
            )));
        }
        if properties.data_block_count != index.len() as u64
            || (properties.info.entry_count == 0) != index.is_empty()
        {
            return Err(properties_error(format!(
                "{} data blocks and {} entries recorded, but the index lists {} blocks",
                properties.data_block_count,
                properties.info.entry_count,
                index.len()
            )));
        }
        Ok(Table {
            id: table_id,
            path: path.to_path_buf(),
            info: properties.info,
            cache,
            data_end,
            index_contents,
            filter,
            mmap,
            released_epoch: AtomicU64::new(0),
            data_block_read,
            file,
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn info(&self) -> &TableInfo {
        &self.info
    }

    /// `false` means the key is certainly not in the table. Probes only the Bloom filter.
    #[inline]
    pub fn may_contain(&self, key: &[u8]) -> bool {
        match &self.filter {
            None => true,
            Some((lines, probe_count)) => {
                BloomFilter::from_decoded_parts(&self.mmap[lines.clone()], *probe_count)
                    .may_contain(key)
            }
        }
    }

    /// The table's version of `key`, tombstones included (kind `Delete`).
    pub fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        self.get_with(key, |seq, kind, meta, value| Entry {
            key: key.to_vec(),
            seq,
            kind,
            meta: meta.to_vec(),
            value: value.to_vec(),
        })
    }

    /// Calls `read` with the table's version of `key` (sequence number, kind, metadata,
    /// value), lent from the data block without copying; `None` (and `read` not called)
    /// when the table has no version of it.
    pub fn get_with<T>(
        &self,
        key: &[u8],
        read: impl FnOnce(SequenceNumber, ValueKind, &[u8], &[u8]) -> T,
    ) -> Result<Option<T>> {
        if self.info.entry_count == 0
            || key < self.info.smallest_key.as_slice()
            || key > self.info.largest_key.as_slice()
            || !self.may_contain(key)
        {
            return Ok(None);
        }
        let index = self.index()?;
        let Some(block_number) = index.find(key).map_err(|error| self.index_error(error))? else {
            return Ok(None);
        };
        let handle = self.block_handle(&index, block_number)?;
        let block = self.data_block(handle)?;
        block_lookup(block, key, read)
            .map_err(|error| error.into_error("data block", &self.path, handle.offset))
    }

    /// A cursor over every entry, in key order.
    pub fn iter(self: &Arc<Self>) -> TableIterator {
        TableIterator::new(Arc::clone(self))
    }

    pub(super) fn index(&self) -> Result<IndexBlock<'_>> {
        IndexBlock::decode(&self.mmap[self.index_contents.clone()])
            .map_err(|error| self.index_error(error))
    }

    pub(super) fn block_handle(
        &self,
        index: &IndexBlock<'_>,
        block_number: usize,
    ) -> Result<BlockHandle> {
        index
            .entry(block_number)
            .map(|(_, handle)| handle)
            .map_err(|error| self.index_error(error))
    }

    pub(super) fn index_error(&self, error: FormatError) -> Error {
        // The index is stored raw, so its contents start at its handle's offset.
        error.into_error("index block", &self.path, self.index_contents.start as u64)
    }

    /// The decoded block at `handle`, from the cache or read, verified and cached.
    pub(super) fn data_block(&self, handle: BlockHandle) -> Result<Arc<Block>> {
        if let Some(block) = self
            .cache
            .as_ref()
            .and_then(|cache| cache.get(self.id, handle.offset))
        {
            return Ok(block);
        }
        if let Some(cache) = &self.cache {
            self.keep_within_mapped_budget(cache);
        }
        let block = Arc::new(match self.data_block_read {
            DataBlockRead::Mmap => {
                read_data_block(&self.mmap[..self.data_end], handle, &self.path)?
            }
            DataBlockRead::Pread => {
                pread_data_block(&self.file, self.data_end as u64, handle, &self.path)?
            }
        });
        if let Some(cache) = &self.cache {
            cache.insert(self.id, handle.offset, Arc::clone(&block));
        }
        Ok(block)
    }

    /// Counts a block read from the mapping against the budget, first dropping this table's
    /// mapped pages if an epoch ended since it last did.
    fn keep_within_mapped_budget(&self, cache: &BlockCache) {
        let budget = cache.mapped_budget();
        let epoch = budget.epoch();
        if self.released_epoch.load(Ordering::Relaxed) != epoch {
            self.released_epoch.store(epoch, Ordering::Relaxed);
            // SAFETY: the mapping is shared, read-only and of an immutable file, so
            // MADV_DONTNEED only unmaps pages; a later access faults the same bytes back in
            // from the page cache. Slices borrowed from the mapping stay valid.
            // Failure leaves the pages mapped, which costs memory, not correctness.
            let _ = unsafe { self.mmap.unchecked_advise(UncheckedAdvice::DontNeed) };
        }
        budget.charge_read();
    }
}

/// Verifies a meta block's checksum and returns where its contents lie in the mmap.
/// Meta blocks are never compressed: they are used in place.
fn meta_block_range(
    mmap: &[u8],
    handle: BlockHandle,
    what: &'static str,
    path: &Path,
) -> Result<Range<usize>> {
    match read_block_contents(mmap, handle, what, path)? {
        Cow::Borrowed(contents) => {
            let start = contents.as_ptr() as usize - mmap.as_ptr() as usize;
            Ok(start..start + contents.len())
        }
        Cow::Owned(_) => Err(Error::corruption(
            what,
            path,
            handle.offset,
            "meta block is compressed",
        )),
    }
}
