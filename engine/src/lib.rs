//! `engine`: the storage engine under every replica.
//!
//! A log-structured merge store. A write goes to the commit log ([`wal`]), framed with a
//! length, a crc32c and a sequence number, shared with concurrent writers in one write and
//! one sync (group commit), then into the [`memtable`]. A full memtable is frozen and
//! flushed in the background to an immutable [`sstable`]: zstd-compressed, checksummed
//! blocks, an index, a Bloom filter and a footer, read through mmap. [`compaction`] merges
//! tables (size-tiered; see its docs for why) and the [`manifest`] records which tables
//! make up the database so a crash at any moment reopens to a consistent set.
//!
//! The engine is synchronous and knows nothing of the network or of vector clocks: a value
//! is bytes plus opaque metadata bytes supplied by the caller.

pub mod compaction;
pub mod db;
pub mod error;
pub mod io;
pub mod iter;
pub mod manifest;
pub mod memtable;
pub mod options;
pub mod rowcache;
pub mod sstable;
pub mod types;
pub mod wal;

pub use db::{Db, Stats, WriteBatch};
pub use error::{Error, Result};
pub use options::{
    CompactionOptions, Compression, DataBlockRead, IoBackend, Options, SyncPolicy, TableOptions,
    WalOptions,
};
pub use types::{Entry, SequenceNumber, Value, ValueKind};
