//! The database: the write path (log, then memtable), the read path (memtables, then runs of
//! tables newest first), and the handles of the background flusher and compactor.
//!
//! Concurrency in one paragraph: writers hold `write_gate` shared while they take a sequence
//! number, append to the log and insert into the active memtable; freezing the memtable
//! takes it exclusively, so every write is wholly before or wholly after a freeze, and the
//! log rotation done under it splits the log at the same point. Readers take a snapshot
//! (`Arc<ReadState>`) and never block writers. The manifest lock serialises the two things
//! that change the table set: a finished flush and a finished compaction.

mod background;
mod batch;
mod open;
mod write;

pub use batch::{Operation, WriteBatch};

use crate::iter::{EntryIterator, MergingIterator, RunIterator};
use crate::manifest::ManifestState;
use crate::memtable::Memtable;
use crate::rowcache::{KeyHash, Row, RowCache};
use crate::sstable::{BlockCache, Table};
use crate::wal::{RecoveryReport, Wal};
use crate::{Error, Options, Result, SequenceNumber, Value, ValueKind};
use parking_lot::{Condvar, Mutex, RwLock};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The database handle. `Send + Sync`: share it across threads with `Arc`.
pub struct Db {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Counters describing the database's state.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Number of live SSTables.
    pub tables: usize,
    /// Number of runs they form (a run: the output of one flush or one merge).
    pub runs: usize,
    /// Bytes in live SSTables.
    pub table_bytes: u64,
    /// Bytes in the active memtable.
    pub memtable_bytes: usize,
    /// Bytes in the memtable being flushed (0 when none).
    pub frozen_memtable_bytes: usize,
    /// Bytes held by the block cache.
    pub block_cache_bytes: usize,
    /// Bytes held by the row cache (0 when it is off).
    pub row_cache_bytes: usize,
    /// Point reads that missed the memtables and found their key in the row cache.
    pub row_cache_hits: u64,
    /// Point reads that missed the memtables and the row cache (and so read the tables).
    pub row_cache_misses: u64,
    /// Memtables flushed since open.
    pub flushes: u64,
    /// Compactions finished since open.
    pub compactions: u64,
    /// Table bytes read by compactions since open.
    pub compaction_bytes_read: u64,
    /// Table bytes written by compactions since open.
    pub compaction_bytes_written: u64,
    /// Times a writer waited for a flush because both memtables were full.
    pub write_stalls: u64,
    /// Microseconds writers spent in those waits.
    pub write_stall_micros: u64,
    /// Bytes appended to the commit log since open.
    pub wal_bytes: u64,
    /// Highest sequence number assigned.
    pub last_seq: SequenceNumber,
    /// Log records replayed when the database opened.
    pub log_records_recovered: u64,
    /// Bytes of an interrupted append cut off the log when the database opened.
    pub log_torn_tail_bytes_dropped: u64,
    /// Bytes of a recycled segment's earlier use cut off the log when the database opened.
    pub log_stale_bytes_dropped: u64,
    /// Log segments salvaged past damage when the database opened (`wal.salvage`).
    pub log_segments_salvaged: usize,
}

/// One operation borrowed from the caller: (kind, key, meta, value).
type OperationRef<'a> = (ValueKind, &'a [u8], &'a [u8], &'a [u8]);

/// What readers see: a consistent set of memtables and tables.
struct ReadState {
    active: Arc<Memtable>,
    frozen: Option<Arc<Memtable>>,
    /// Newest run first, a run's tables contiguous and in ascending key order (the same
    /// order as the manifest). Runs have disjoint, descending sequence ranges; the tables of
    /// a run have disjoint key ranges.
    tables: Vec<RunTable>,
}

/// A live table and the run it belongs to.
#[derive(Clone)]
struct RunTable {
    run_id: u64,
    table: Arc<Table>,
}

/// The runs of `tables` (as `ReadState::tables` orders them), newest first.
fn runs(tables: &[RunTable]) -> impl Iterator<Item = &[RunTable]> {
    tables.chunk_by(|left, right| left.run_id == right.run_id)
}

#[derive(Default)]
struct Counters {
    flushes: AtomicU64,
    compactions: AtomicU64,
    compaction_bytes_read: AtomicU64,
    compaction_bytes_written: AtomicU64,
    write_stalls: AtomicU64,
    write_stall_micros: AtomicU64,
}

struct Inner {
    dir: PathBuf,
    options: Options,
    wal: Option<Wal>,
    cache: Option<Arc<BlockCache>>,
    /// The row cache, when `row_cache_size_bytes` is not 0.
    row_cache: Option<RowCache>,
    next_seq: AtomicU64,
    write_gate: RwLock<()>,
    state: RwLock<Arc<ReadState>>,
    manifest: Mutex<ManifestState>,
    /// Held while a compaction runs, so a manual one and the background one never overlap.
    compaction_running: Mutex<()>,
    /// The log segment that starts after the frozen memtable, set with it at freeze.
    frozen_log_segment: Mutex<u64>,
    /// Signalled when a flush finishes or fails, or on shutdown.
    flush_done: Condvar,
    flush_done_lock: Mutex<()>,
    /// Wakes the background threads.
    work: Condvar,
    work_lock: Mutex<()>,
    shutting_down: AtomicBool,
    background_error: Mutex<Option<String>>,
    counters: Counters,
    recovery: RecoveryReport,
    _lock_file: File,
}

impl Db {
    /// Opens (creating if absent) the database in `path`, replaying its commit log.
    pub fn open(path: &Path, options: Options) -> Result<Db> {
        let inner = Arc::new(open::open(path, options)?);
        let threads = background::start(&inner);
        let db = Db {
            inner,
            threads: Mutex::new(threads),
        };
        // A replayed log may have filled the memtable past its bound.
        db.inner.maybe_freeze()?;
        Ok(db)
    }

    /// Writes `key` with `value` and empty metadata.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.put_with_meta(key, &[], value)
    }

    /// Writes `key` with caller metadata and value.
    pub fn put_with_meta(&self, key: &[u8], meta: &[u8], value: &[u8]) -> Result<()> {
        self.inner.check_sizes(key, meta, value)?;
        let operation = [(ValueKind::Put, key, meta, value)];
        self.inner.write(&operation)
    }

    /// Writes `key` like [`Db::put_with_meta`], but returns before its commit-log record is
    /// written: the write is visible to readers at once, and durable (per the sync policy)
    /// only once [`Db::commit_log`] returns, which the caller must call before acknowledging
    /// it. A pipelined batch of writes then costs one log write instead of one each.
    pub fn put_with_meta_deferred(&self, key: &[u8], meta: &[u8], value: &[u8]) -> Result<()> {
        self.inner.check_sizes(key, meta, value)?;
        let operation = [(ValueKind::Put, key, meta, value)];
        self.inner.write_with(&operation, true)
    }

    /// [`Db::put_with_meta_deferred`] taking `value` by value: the memtable keeps this
    /// buffer instead of a copy of it.
    pub fn put_owned_deferred(&self, key: &[u8], meta: &[u8], value: Vec<u8>) -> Result<()> {
        self.inner.check_sizes(key, meta, &value)?;
        self.inner.write_applying(1, |seq, memtable| {
            if let Some(wal) = &self.inner.wal {
                let operation = [(ValueKind::Put, key, meta, &value[..])];
                let length = batch::encoded_size(operation.iter().copied());
                // Encoded straight into the log's queue: no payload buffer of its own.
                wal.append_deferred_encoded(seq, length, |queue| {
                    batch::encode_operations_into(queue, operation.iter().copied())
                })?;
            }
            memtable.insert_owned(key, seq, ValueKind::Put, meta, value);
            Ok(())
        })
    }

    /// Writes every record queued by [`Db::put_with_meta_deferred`] (by any caller) to the
    /// commit log, synced if the policy is `always`, and returns once they are durable per
    /// the policy. Cheap when there is nothing to write.
    pub fn commit_log(&self) -> Result<()> {
        match &self.inner.wal {
            Some(wal) => wal.commit(wal.last_ticket()),
            None => Ok(()),
        }
    }

    /// The ticket covering every commit-log record queued so far, for
    /// [`Db::poll_commit_log`] (0 without a log).
    pub fn commit_ticket(&self) -> u64 {
        self.inner.wal.as_ref().map_or(0, Wal::last_ticket)
    }

    /// Whether every record up to `ticket` is durable per the sync policy (no I/O).
    pub fn is_log_committed(&self, ticket: u64) -> bool {
        self.inner
            .wal
            .as_ref()
            .is_none_or(|wal| wal.is_committed(ticket))
    }

    /// [`Db::commit_log`] up to `ticket` (from [`Db::commit_ticket`]) for async callers:
    /// never blocks on another thread's log write. `Pending` registers `waker`, woken when
    /// that write ends; poll again then. `Ready` says the records are durable per the sync
    /// policy, or why they may not be (a failed log write is never reported as done).
    pub fn poll_commit_log(
        &self,
        ticket: u64,
        waker: &std::task::Waker,
    ) -> std::task::Poll<Result<()>> {
        match &self.inner.wal {
            Some(wal) => wal.poll_commit(ticket, waker),
            None => std::task::Poll::Ready(Ok(())),
        }
    }

    /// Deletes `key` (writes a tombstone).
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        self.inner.check_sizes(key, &[], &[])?;
        self.inner
            .write(&[(ValueKind::Delete, key, &[][..], &[][..])])
    }

    /// [`Db::delete`] whose log record waits for [`Db::commit_log`], as
    /// [`Db::put_with_meta_deferred`]'s does: visible at once, durable once committed.
    pub fn delete_deferred(&self, key: &[u8]) -> Result<()> {
        self.inner.check_sizes(key, &[], &[])?;
        self.inner
            .write_with(&[(ValueKind::Delete, key, &[][..], &[][..])], true)
    }

    /// Applies every operation of `batch` atomically.
    pub fn write(&self, batch: &WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let operations: Vec<_> = batch
            .operations()
            .iter()
            .map(|op| (op.kind, &op.key[..], &op.meta[..], &op.value[..]))
            .collect();
        for (_, key, meta, value) in &operations {
            self.inner.check_sizes(key, meta, value)?;
        }
        self.inner.write(&operations)
    }

    /// Reads `key`: `None` if absent or deleted.
    pub fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        self.get_with(key, |found| {
            found.map(|(meta, value)| Value {
                meta: meta.to_vec(),
                value: value.to_vec(),
            })
        })
    }

    /// Reads `key` like [`Db::get`], but lends the value to `read` instead of copying it
    /// out: `read` gets `(meta, value)`, or `None` if the key is absent or deleted. A
    /// memtable hit is read in place (under the memtable's read lock, so keep `read`
    /// short); a table hit is lent from the decoded entry.
    pub fn get_with<T>(
        &self,
        key: &[u8],
        read: impl FnOnce(Option<(&[u8], &[u8])>) -> T,
    ) -> Result<T> {
        self.inner.check_key(key)?;
        // Noted before the read state is taken: see `rowcache` on why.
        let read_epoch = self
            .inner
            .row_cache
            .as_ref()
            .map_or(0, RowCache::read_epoch);
        let state = self.inner.read_state();
        let mut read = Some(read);
        let mut deliver = |kind: ValueKind, meta: &[u8], value: &[u8]| {
            // Each path below delivers at most once, then returns.
            let read = read.take().expect("get_with delivers once");
            match kind {
                ValueKind::Put => read(Some((meta, value))),
                ValueKind::Delete => read(None),
            }
        };
        if let Some(found) = state.active.lookup(key, &mut deliver) {
            return Ok(found);
        }
        if let Some(frozen) = &state.frozen {
            if let Some(found) = frozen.lookup(key, &mut deliver) {
                return Ok(found);
            }
        }
        let found = self
            .inner
            .get_beyond_memtables(&state, key, read_epoch, &mut deliver)?;
        Ok(match found {
            Some(found) => found,
            None => deliver(ValueKind::Delete, &[], &[]),
        })
    }

    /// Up to `limit` live keys in order, from `start` (inclusive) to `end` (exclusive, or
    /// the end of the key space).
    pub fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Value)>> {
        let mut cursor = self.inner.merged_cursor();
        cursor.seek(start)?;
        let mut rows = Vec::new();
        while cursor.valid() && rows.len() < limit {
            let entry = cursor.entry();
            if end.is_some_and(|end| entry.key.as_slice() >= end) {
                break;
            }
            if entry.kind == ValueKind::Put {
                rows.push((
                    entry.key.clone(),
                    Value {
                        meta: entry.meta.clone(),
                        value: entry.value.clone(),
                    },
                ));
            }
            cursor.advance()?;
        }
        Ok(rows)
    }

    /// Flushes the active memtable to an SSTable and waits: every write acknowledged
    /// before the call is in a table when it returns.
    pub fn flush(&self) -> Result<()> {
        let target = self.inner.next_seq.load(Ordering::SeqCst).saturating_sub(1);
        loop {
            self.inner.wait_for_frozen_flush()?;
            let state = self.inner.read_state();
            if state.active.is_empty() || self.inner.manifest.lock().last_flushed_seq >= target {
                return Ok(());
            }
            self.inner.freeze(true)?;
        }
    }

    /// Merges every table into one, dropping tombstones, and waits for it.
    pub fn compact(&self) -> Result<()> {
        self.flush()?;
        background::run_compactions(&self.inner, true)
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        let state = self.inner.read_state();
        let counters = &self.inner.counters;
        let (row_cache_hits, row_cache_misses) = self
            .inner
            .row_cache
            .as_ref()
            .map_or((0, 0), RowCache::hits_and_misses);
        Stats {
            tables: state.tables.len(),
            runs: runs(&state.tables).count(),
            table_bytes: state
                .tables
                .iter()
                .map(|t| t.table.info().file_size_bytes)
                .sum(),
            memtable_bytes: state.active.size_bytes(),
            frozen_memtable_bytes: state.frozen.as_ref().map_or(0, |f| f.size_bytes()),
            block_cache_bytes: self.inner.cache.as_ref().map_or(0, |c| c.size_bytes()),
            row_cache_bytes: self.inner.row_cache.as_ref().map_or(0, |c| c.size_bytes()),
            row_cache_hits,
            row_cache_misses,
            flushes: counters.flushes.load(Ordering::Relaxed),
            compactions: counters.compactions.load(Ordering::Relaxed),
            compaction_bytes_read: counters.compaction_bytes_read.load(Ordering::Relaxed),
            compaction_bytes_written: counters.compaction_bytes_written.load(Ordering::Relaxed),
            write_stalls: counters.write_stalls.load(Ordering::Relaxed),
            write_stall_micros: counters.write_stall_micros.load(Ordering::Relaxed),
            wal_bytes: self.inner.wal.as_ref().map_or(0, |wal| wal.bytes_written()),
            last_seq: self
                .inner
                .next_seq
                .load(Ordering::Relaxed)
                .saturating_sub(1),
            log_records_recovered: self.inner.recovery.records,
            log_torn_tail_bytes_dropped: self.inner.recovery.torn_tail_bytes_dropped,
            log_stale_bytes_dropped: self.inner.recovery.stale_bytes_dropped,
            log_segments_salvaged: self.inner.recovery.salvaged.len(),
        }
    }

    /// What opening the database found in its commit log.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// Waits for background work, makes everything durable and closes. Without a commit
    /// log the memtable is flushed first, since nothing else would keep it.
    pub fn close(self) -> Result<()> {
        let flushed = if self.inner.wal.is_none() {
            self.flush()
        } else {
            Ok(())
        };
        let synced = match &self.inner.wal {
            Some(wal) => wal.sync(),
            None => Ok(()),
        };
        self.shutdown();
        let closed = match &self.inner.wal {
            Some(wal) => wal.close(),
            None => Ok(()),
        };
        flushed.and(synced).and(closed)
    }

    fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        self.inner.wake_background();
        self.inner.notify_flush_done();
        for thread in self.threads.lock().drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Calls `read` with the newest version of `key` in `tables` (ordered as
/// `ReadState::tables`), tombstones included: (sequence number, kind, metadata, value), lent
/// from the data block. `None` (and `read` not called) if no table has the key.
///
/// Scanning table by table and stopping at the first hit is right with runs too: the tables
/// of a run have disjoint key ranges, so at most one of them covers `key` and the others are
/// skipped by the range check, whatever their order within the run; and runs come newest
/// first with disjoint, descending sequence ranges, so the first run holding `key` holds its
/// newest version.
fn get_from_tables<T>(
    tables: &[RunTable],
    key: &[u8],
    read: impl FnOnce(SequenceNumber, ValueKind, &[u8], &[u8]) -> T,
) -> Result<Option<T>> {
    let mut read = Some(read);
    for RunTable { table, .. } in tables {
        let info = table.info();
        if key < info.smallest_key.as_slice() || key > info.largest_key.as_slice() {
            continue;
        }
        let found = table.get_with(key, |seq, kind, meta, value| {
            let read = read
                .take()
                .expect("only the first table holding the key is read");
            read(seq, kind, meta, value)
        })?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

impl Inner {
    /// Calls `read` with the newest version of `key` outside the memtables of `state`
    /// (kind, metadata, value; tombstones included): lent from the row cache, else from the
    /// tables of `state`, then cached, unless a flush began after `read_epoch` (noted before
    /// `state` was taken). `None` (and `read` not called) if no table has the key.
    fn get_beyond_memtables<T>(
        &self,
        state: &ReadState,
        key: &[u8],
        read_epoch: u64,
        read: impl FnOnce(ValueKind, &[u8], &[u8]) -> T,
    ) -> Result<Option<T>> {
        let Some(cache) = &self.row_cache else {
            return get_from_tables(&state.tables, key, |_, kind, meta, value| {
                read(kind, meta, value)
            });
        };
        let hash = KeyHash::of(key);
        if let Some(row) = cache.get(hash, key) {
            return Ok(Some(read(row.kind(), row.meta(), row.value())));
        }
        get_from_tables(&state.tables, key, |seq, kind, meta, value| {
            let found = read(kind, meta, value);
            let row = Row::new(key, seq, kind, meta, value);
            cache.insert_read(hash, &row, read_epoch);
            found
        })
    }

    fn read_state(&self) -> Arc<ReadState> {
        Arc::clone(&self.state.read())
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if key.len() > self.options.key_size_bytes_max {
            return Err(Error::KeyTooLarge {
                size_bytes: key.len(),
                size_bytes_max: self.options.key_size_bytes_max,
            });
        }
        Ok(())
    }

    fn check_sizes(&self, key: &[u8], meta: &[u8], value: &[u8]) -> Result<()> {
        self.check_key(key)?;
        if value.len() > self.options.value_size_bytes_max {
            return Err(Error::ValueTooLarge {
                size_bytes: value.len(),
                size_bytes_max: self.options.value_size_bytes_max,
            });
        }
        if meta.len() > self.options.meta_size_bytes_max {
            return Err(Error::MetadataTooLarge {
                size_bytes: meta.len(),
                size_bytes_max: self.options.meta_size_bytes_max,
            });
        }
        Ok(())
    }

    fn check_healthy(&self) -> Result<()> {
        if self.shutting_down.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        match &*self.background_error.lock() {
            Some(message) => Err(Error::Poisoned(message.clone())),
            None => Ok(()),
        }
    }

    fn merged_cursor(&self) -> MergingIterator {
        let state = self.read_state();
        let mut sources: Vec<Box<dyn EntryIterator>> = vec![Box::new(state.active.iter())];
        if let Some(frozen) = &state.frozen {
            sources.push(Box::new(frozen.iter()));
        }
        // One source per run, not per table: a run's tables are read one after the other.
        for run in runs(&state.tables) {
            let tables = run.iter().map(|t| Arc::clone(&t.table)).collect();
            sources.push(Box::new(RunIterator::new(tables)));
        }
        MergingIterator::new(sources)
    }

    fn wake_background(&self) {
        let _guard = self.work_lock.lock();
        self.work.notify_all();
    }

    fn notify_flush_done(&self) {
        let _guard = self.flush_done_lock.lock();
        self.flush_done.notify_all();
    }

    fn set_background_error(&self, error: &Error) {
        let mut slot = self.background_error.lock();
        if slot.is_none() {
            *slot = Some(error.to_string());
        }
        drop(slot);
        self.notify_flush_done();
    }
}

#[cfg(test)]
mod tests;
