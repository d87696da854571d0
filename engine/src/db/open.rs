//! Opening a database: the directory lock, the manifest and its tables, leftovers of an
//! interrupted flush or compaction, and the replay of the commit log.

use super::{batch, Counters, Inner, ReadState, RunTable};
use crate::manifest::{self, ManifestState};
use crate::memtable::Memtable;
use crate::rowcache::RowCache;
use crate::sstable::{BlockCache, Table};
use crate::wal::{RecoveryReport, Wal};
use crate::{DataBlockRead, Error, Options, Result};
use parking_lot::{Condvar, Mutex, RwLock};
use std::fs::{self, File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

const LOCK_FILE_NAME: &str = "LOCK";
const WAL_DIRECTORY_NAME: &str = "wal";

pub(super) fn open(dir: &Path, options: Options) -> Result<Inner> {
    options.validate()?;
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let lock_file = lock_directory(dir)?;
    let manifest_state = match manifest::load(dir)? {
        Some(state) => state,
        None => {
            let state = ManifestState {
                next_table_id: 1,
                ..ManifestState::default()
            };
            manifest::store(dir, &state)?;
            state
        }
    };
    // Always present, even at capacity 0, because it also carries the mapped-page budget.
    let cache = Some(Arc::new(BlockCache::with_mapped_budget(
        options.block_cache_size_bytes,
        options.table_mapped_bytes_max,
    )));
    let tables = open_tables(dir, &manifest_state, &cache, options.table.data_block_read)?;
    remove_leftovers(dir, &manifest_state)?;

    let active = Memtable::new();
    let mut last_seq = manifest_state.last_flushed_seq;
    let (wal, recovery) = if options.wal.enabled {
        let wal_dir = dir.join(WAL_DIRECTORY_NAME);
        let (wal, report) = Wal::open_replaying(&wal_dir, &options.wal, |record_seq, payload| {
            let operations = batch::decode_borrowed(payload, &wal_dir, record_seq)?;
            for (index, operation) in operations.into_iter().enumerate() {
                let seq = record_seq + index as u64;
                last_seq = last_seq.max(seq);
                // Writes up to last_flushed_seq are already in tables; their log segment
                // was simply not deleted before the crash.
                if seq > manifest_state.last_flushed_seq {
                    active.insert(
                        operation.key,
                        seq,
                        operation.kind,
                        operation.meta,
                        operation.value,
                    );
                }
            }
            Ok(())
        })?;
        (Some(wal), report)
    } else {
        (None, RecoveryReport::default())
    };

    // Empty at open: recovery replays the log into the memtable, which reads check first.
    let row_cache =
        (options.row_cache_size_bytes > 0).then(|| RowCache::new(options.row_cache_size_bytes));
    Ok(Inner {
        dir: dir.to_path_buf(),
        options,
        wal,
        cache,
        row_cache,
        next_seq: AtomicU64::new(last_seq + 1),
        write_gate: RwLock::new(()),
        state: RwLock::new(Arc::new(ReadState {
            active: Arc::new(active),
            frozen: None,
            tables,
        })),
        manifest: Mutex::new(manifest_state),
        compaction_running: Mutex::new(()),
        frozen_log_segment: Mutex::new(0),
        flush_done: Condvar::new(),
        flush_done_lock: Mutex::new(()),
        work: Condvar::new(),
        work_lock: Mutex::new(()),
        shutting_down: AtomicBool::new(false),
        background_error: Mutex::new(None),
        counters: Counters::default(),
        recovery,
        _lock_file: lock_file,
    })
}

/// Takes an exclusive advisory lock, so two processes never write one database.
fn lock_directory(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    // SAFETY: flock on a descriptor we own; no memory is shared with the kernel.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        return Err(Error::Locked {
            path: dir.to_path_buf(),
        });
    }
    Ok(file)
}

fn open_tables(
    dir: &Path,
    state: &ManifestState,
    cache: &Option<Arc<BlockCache>>,
    data_block_read: DataBlockRead,
) -> Result<Vec<RunTable>> {
    state
        .tables
        .iter()
        .map(|record| {
            let path = manifest::table_path(dir, record.id);
            let size_bytes = fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
            if size_bytes != record.file_size_bytes {
                return Err(Error::corruption(
                    "table file",
                    &path,
                    size_bytes,
                    format!(
                        "the manifest says {} bytes, the file has {size_bytes}",
                        record.file_size_bytes
                    ),
                ));
            }
            let table = Table::open_with(&path, record.id, cache.clone(), data_block_read)?;
            Ok(RunTable {
                run_id: record.run_id,
                table: Arc::new(table),
            })
        })
        .collect()
}

/// Deletes table files the manifest does not list: outputs of a flush or compaction that
/// a crash interrupted before the manifest named them.
fn remove_leftovers(dir: &Path, state: &ManifestState) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let listed = |id: u64| state.tables.iter().any(|table| table.id == id);
        let leftover = match manifest::parse_table_file_name(name) {
            Some(id) => !listed(id),
            None => name.ends_with(".tmp"),
        };
        if leftover {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}
