//! Engine configuration. Every field has a default and a doc comment; the cluster embeds
//! [`Options`] in its own TOML configuration.

use serde::{Deserialize, Serialize};

/// Which file I/O backend the commit log writes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IoBackend {
    /// io_uring via tokio-uring on a dedicated thread (Linux only).
    Uring,
    /// Portable `std::fs` writes and `fdatasync`.
    #[default]
    Std,
}

/// When the commit log is forced to stable storage, and so what an acknowledged write
/// survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "lowercase")]
pub enum SyncPolicy {
    /// Writes reach the OS page cache before acknowledgement; the OS flushes when it likes.
    /// Survives a process crash (SIGKILL), not a power loss or kernel crash.
    None,
    /// As `None`, plus an fdatasync at least every `interval_ms`: a power loss loses at most
    /// about that window of acknowledged writes.
    Periodic { interval_ms: u64 },
    /// A write is acknowledged only after the fdatasync covering it returns. Concurrent
    /// writers share one write and one sync (group commit). Survives power loss.
    Always,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy::Periodic { interval_ms: 1000 }
    }
}

/// How SSTable data blocks are read. Index, filter and footer are always read in place
/// from a read-only mmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DataBlockRead {
    /// From the table's mmap. Cheapest while the tables fit the mapped budget
    /// (`table_mapped_bytes_max`); beyond it, random reads mostly re-fault pages.
    Mmap,
    /// With a positioned read (`pread`) into a buffer: one syscall per block-cache miss,
    /// and resident memory that does not depend on the data set at all.
    #[default]
    Pread,
}

/// Block compression for SSTable data blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Compression {
    /// Blocks are stored as they are.
    None,
    /// zstd at the given level (1 is fastest; negative levels are faster still).
    Zstd { level: i32 },
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Zstd { level: 1 }
    }
}

/// Options of the commit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalOptions {
    /// Whether writes go to a commit log at all. Without it, unflushed writes are lost on
    /// crash (db_bench's `--disable_wal`).
    pub enabled: bool,
    /// File I/O backend for log writes.
    pub io: IoBackend,
    /// When the log is synced; see [`SyncPolicy`].
    pub sync: SyncPolicy,
    /// Largest single record (one write batch) accepted, in bytes.
    pub record_size_bytes_max: usize,
    /// On a checksum failure in the middle of a log: `false` refuses to open with an error
    /// naming file and offset; `true` keeps every record before the damage, drops the rest
    /// of that segment, and reports what it dropped.
    pub salvage: bool,
    /// Under [`SyncPolicy::Periodic`], the background syncer also runs as soon as this many
    /// bytes were written since its last sync (0: only every `interval_ms`). A segment
    /// rotation (at every memtable freeze) syncs the old segment while every writer waits;
    /// this keeps what that sync must flush small instead of up to a whole interval's
    /// writes. The syncs themselves stay off the write path.
    pub sync_after_bytes: u64,
    /// Commit-log bytes written for the active memtable's writes (overwrites of a key
    /// included) after which it is frozen and flushed, even though its live data is below
    /// `memtable_size_bytes`: the memtable counts a key's replaced versions as freed, but
    /// the log keeps every record until the flush, so this is what bounds the log's disk
    /// space (about twice this: the active memtable's log and the one being flushed).
    /// Absent: 4 x `memtable_size_bytes` (RocksDB's default ratio for `max_total_wal_size`).
    /// At least 4096.
    pub max_unflushed_bytes: Option<u64>,
    /// Segments whose records all reached SSTables that are kept (as `NNNNNN.free` files)
    /// to be rewritten as later segments instead of deleted; 0 deletes them all. Rewriting
    /// a file the page cache already holds is several times cheaper than filling new pages
    /// (RocksDB's `recycle_log_file_num` does the same), at the cost of this many segments'
    /// disk space (each up to about `max_unflushed_bytes`). Recovery tells a recycled
    /// file's earlier records from this use's by the segment number their checksums are
    /// seeded with.
    pub recycle_segments: usize,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            enabled: true,
            io: IoBackend::default(),
            sync: SyncPolicy::default(),
            record_size_bytes_max: 64 << 20,
            salvage: false,
            sync_after_bytes: 8 << 20,
            max_unflushed_bytes: None,
            recycle_segments: 1,
        }
    }
}

/// Options of SSTables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableOptions {
    /// Target uncompressed size of a data block, in bytes.
    pub block_size_bytes: usize,
    /// Entries between restart points inside a block (key prefix compression resets there).
    pub block_restart_interval: usize,
    /// Data block compression.
    pub compression: Compression,
    /// Bloom filter bits per key; 0 disables the filter.
    pub bloom_bits_per_key: u32,
    /// How data blocks are read; see [`DataBlockRead`].
    pub data_block_read: DataBlockRead,
    /// zstd level for tables written by a memtable flush, when `compression` is zstd.
    /// Writers stall while a flush lags, so flushes favour speed: negative levels skip the
    /// per-block Huffman tables, which dominate compressing 4 KiB blocks. Compaction
    /// rewrites the data at `compression`, so the data set settles at the full ratio.
    /// `None` flushes at `compression` too.
    pub flush_zstd_level: Option<i32>,
}

impl TableOptions {
    /// The options a memtable flush writes with.
    pub fn for_flush(&self) -> TableOptions {
        let compression = match (self.compression, self.flush_zstd_level) {
            (Compression::Zstd { .. }, Some(level)) => Compression::Zstd { level },
            (compression, _) => compression,
        };
        TableOptions {
            compression,
            ..self.clone()
        }
    }
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            block_size_bytes: 4096,
            block_restart_interval: 16,
            compression: Compression::default(),
            bloom_bits_per_key: 10,
            data_block_read: DataBlockRead::default(),
            flush_zstd_level: Some(-1),
        }
    }
}

/// Options of compaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactionOptions {
    /// A merge takes at least this many age-adjacent runs (a run is the output of one
    /// flush or one merge: tables with disjoint key ranges).
    pub min_merge_width: usize,
    /// A merge takes at most this many runs (it holds one block of each in memory).
    pub max_merge_width: usize,
    /// An older run joins a merge of newer ones when its size is at most this many times
    /// their total: 1.2 lets tables of about equal size merge, so each merge roughly
    /// doubles a tier and a byte is rewritten about log2(data / memtable) times.
    pub size_ratio: f64,
    /// A merge starts a new output table once the one being written reaches about this
    /// many bytes, so a merge writes a *run* of tables with disjoint key ranges rather than
    /// one big table. This bounds the table builder's memory (Bloom hashes and index, about
    /// 10 bytes per key until the table is finished) whatever the data set's size. At least
    /// 4 KiB (small values are for tests); default 64 MiB.
    pub table_size_bytes_target: u64,
    /// Whether compactions run in the background on their own.
    pub automatic: bool,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            min_merge_width: 4,
            max_merge_width: 16,
            size_ratio: 1.2,
            table_size_bytes_target: 64 << 20,
            automatic: true,
        }
    }
}

/// Smallest row cache accepted (0 aside): below it, its shards hold almost nothing.
pub const ROW_CACHE_BYTES_MIN: usize = 64 * 1024;

/// Options of the whole engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Commit log options.
    pub wal: WalOptions,
    /// SSTable options.
    pub table: TableOptions,
    /// Compaction options.
    pub compaction: CompactionOptions,
    /// Memtable size at which it is frozen and flushed, in bytes. Memory held by memtables
    /// is at most twice this (one active, one being flushed); writers stall while both are full.
    pub memtable_size_bytes: usize,
    /// Capacity of the cache of decompressed data blocks, in bytes (0 disables it).
    pub block_cache_size_bytes: usize,
    /// Capacity of the row cache, in bytes: the newest version of recently read or flushed
    /// keys, consulted by point reads after the memtables and before the tables (see
    /// `engine::rowcache`). 0 disables it; otherwise at least 64 KiB. Each row is charged its
    /// key, metadata and value plus about 160 bytes. Default 32 MiB: every kvnode read is a
    /// point read, and a flush fills the cache with the keys it flushed, so reads of
    /// recently written keys keep memtable speed after the flush.
    pub row_cache_size_bytes: usize,
    /// Budget on the process's file-backed resident memory, in bytes: table pages read
    /// through mmap stay mapped until it is exceeded, then tables drop their mapped pages
    /// (the data stays in the page cache). Keeps resident memory flat however large the
    /// data set; see `sstable::residency`.
    pub table_mapped_bytes_max: u64,
    /// Longest key accepted, in bytes.
    pub key_size_bytes_max: usize,
    /// Longest value accepted, in bytes.
    pub value_size_bytes_max: usize,
    /// Longest caller metadata accepted, in bytes.
    pub meta_size_bytes_max: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wal: WalOptions::default(),
            table: TableOptions::default(),
            compaction: CompactionOptions::default(),
            memtable_size_bytes: 64 << 20,
            block_cache_size_bytes: 32 << 20,
            row_cache_size_bytes: 32 << 20,
            table_mapped_bytes_max: 64 << 20,
            key_size_bytes_max: 1024,
            value_size_bytes_max: 10 * 1024,
            meta_size_bytes_max: 4096,
        }
    }
}

impl Options {
    /// Commit-log bytes after which the active memtable is frozen (see
    /// [`WalOptions::max_unflushed_bytes`]), with the default applied.
    pub fn wal_unflushed_bytes_max(&self) -> u64 {
        self.wal
            .max_unflushed_bytes
            .unwrap_or((self.memtable_size_bytes as u64).saturating_mul(4))
    }

    /// Checks option values, naming the first bad field.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |field: &'static str, detail: &str| {
            Err(crate::Error::InvalidOption {
                field,
                detail: detail.to_string(),
            })
        };
        if self.memtable_size_bytes < 4096 {
            return bad("memtable_size_bytes", "must be at least 4096");
        }
        if self.table.block_size_bytes < 256 || self.table.block_size_bytes > (1 << 24) {
            return bad("table.block_size_bytes", "must be between 256 and 16 MiB");
        }
        if self.table.block_restart_interval == 0 {
            return bad("table.block_restart_interval", "must be at least 1");
        }
        if self.table.bloom_bits_per_key > 64 {
            return bad("table.bloom_bits_per_key", "must be at most 64");
        }
        if let Compression::Zstd { level } = self.table.compression {
            if !(-7..=22).contains(&level) {
                return bad("table.compression.level", "zstd level must be in -7..=22");
            }
        }
        if let Some(level) = self.table.flush_zstd_level {
            if !(-7..=22).contains(&level) {
                return bad("table.flush_zstd_level", "zstd level must be in -7..=22");
            }
        }
        if self.row_cache_size_bytes != 0 && self.row_cache_size_bytes < ROW_CACHE_BYTES_MIN {
            return bad(
                "row_cache_size_bytes",
                &format!(
                    "must be 0 (off) or at least {ROW_CACHE_BYTES_MIN} (got {})",
                    self.row_cache_size_bytes
                ),
            );
        }
        if self.key_size_bytes_max == 0 || self.key_size_bytes_max > (1 << 16) {
            return bad("key_size_bytes_max", "must be between 1 and 65536");
        }
        if self.value_size_bytes_max > (64 << 20) {
            return bad("value_size_bytes_max", "must be at most 64 MiB");
        }
        if self.compaction.min_merge_width < 2 {
            return bad("compaction.min_merge_width", "must be at least 2");
        }
        if self.compaction.max_merge_width < self.compaction.min_merge_width {
            return bad(
                "compaction.max_merge_width",
                "must be at least min_merge_width",
            );
        }
        if self.compaction.size_ratio < 1.0 {
            return bad("compaction.size_ratio", "must be at least 1.0");
        }
        if self.compaction.table_size_bytes_target < 4096 {
            return bad(
                "compaction.table_size_bytes_target",
                "must be at least 4096",
            );
        }
        if let Some(bytes) = self.wal.max_unflushed_bytes {
            if bytes < 4096 {
                return bad(
                    "wal.max_unflushed_bytes",
                    &format!("must be at least 4096 (got {bytes})"),
                );
            }
        }
        if let SyncPolicy::Periodic { interval_ms } = self.wal.sync {
            if interval_ms == 0 {
                return bad("wal.sync.interval_ms", "must be at least 1");
            }
        }
        Ok(())
    }
}
