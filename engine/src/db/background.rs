//! The two background threads: the flusher turns the frozen memtable into a table, the
//! compactor merges runs of tables as the planner says. Each records a failure as the database's
//! background error (writes then fail with `Error::Poisoned`) and stops.

use super::{runs, Inner, ReadState, RunTable};
use crate::compaction::{self, CompactionTask, Outcome, OutputOptions, RunSummary};
use crate::manifest::{self, TableRecord};
use crate::sstable::{Table, TableBuilder};
use crate::{Error, Result};
use std::fs;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long an idle background thread sleeps between looks at the state; wake-ups come
/// by condition variable, this only bounds the cost of a missed one.
const IDLE_WAIT: Duration = Duration::from_millis(200);

pub(super) fn start(inner: &Arc<Inner>) -> Vec<JoinHandle<()>> {
    let mut threads = Vec::new();
    let flusher = Arc::clone(inner);
    threads.push(
        thread::Builder::new()
            .name("engine-flush".into())
            .spawn(move || flush_loop(&flusher))
            .expect("spawning the flush thread"),
    );
    if inner.options.compaction.automatic {
        let compactor = Arc::clone(inner);
        threads.push(
            thread::Builder::new()
                .name("engine-compact".into())
                .spawn(move || compact_loop(&compactor))
                .expect("spawning the compaction thread"),
        );
    }
    threads
}

fn stopping(inner: &Inner) -> bool {
    inner.shutting_down.load(Ordering::Relaxed)
}

fn wait_for_work(inner: &Inner) {
    let mut guard = inner.work_lock.lock();
    inner.work.wait_for(&mut guard, IDLE_WAIT);
}

fn flush_loop(inner: &Inner) {
    while !stopping(inner) {
        if inner.read_state().frozen.is_none() {
            wait_for_work(inner);
            continue;
        }
        if let Err(error) = guarded("flush", || flush_frozen(inner)) {
            inner.set_background_error(&error);
            return;
        }
    }
}

fn compact_loop(inner: &Inner) {
    lower_thread_priority();
    while !stopping(inner) {
        if let Err(error) = guarded("compaction", || run_compactions(inner, false)) {
            inner.set_background_error(&error);
            return;
        }
        wait_for_work(inner);
    }
}

/// Runs `work`, turning a panic into an error so the database is poisoned rather than
/// left with a dead background thread nobody notices.
fn guarded(what: &str, work: impl FnOnce() -> Result<()>) -> Result<()> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Error::Poisoned(format!(
                "{what} thread panicked: {message}"
            )))
        }
    }
}

/// Compaction can wait; a flush cannot (writers stall behind it). On Linux the nice value
/// is per thread, so this lowers only the compactor's share of the CPU.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on this thread's own id; failure only leaves the priority as it was.
    unsafe {
        let thread_id = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread_id as libc::id_t, 10);
    }
}

fn allocate_table_id(inner: &Inner) -> u64 {
    let mut manifest = inner.manifest.lock();
    let id = manifest.next_table_id;
    manifest.next_table_id += 1;
    id
}

/// Writes the frozen memtable as the newest run (one table, run id = table id), records
/// it, and releases its log.
fn flush_frozen(inner: &Inner) -> Result<()> {
    let Some(frozen) = inner.read_state().frozen.clone() else {
        return Ok(());
    };
    let log_segment = *inner.frozen_log_segment.lock();
    let id = allocate_table_id(inner);
    let path = manifest::table_path(&inner.dir, id);
    let table_options = inner.options.table.for_flush();
    let mut builder = TableBuilder::create(&path, &table_options, frozen.len())?;
    frozen.for_each(|key, seq, kind, meta, value| builder.add(key, seq, kind, meta, value))?;
    let info = builder.finish()?;
    let table = Arc::new(Table::open_with(
        &path,
        id,
        inner.cache.clone(),
        inner.options.table.data_block_read,
    )?);
    // Before the read state drops the memtable: from then on the cache must hold no row
    // older than the memtable's (see `rowcache`).
    if let Some(cache) = &inner.row_cache {
        cache.begin_flush();
        let mut budget = cache.capacity_bytes();
        frozen.for_each(|key, seq, kind, meta, value| {
            cache.flush_row((key, seq, kind, meta, value), &mut budget);
            Ok(())
        })?;
    }
    {
        let mut manifest_state = inner.manifest.lock();
        let mut next = manifest_state.clone();
        next.tables.insert(
            0,
            TableRecord {
                id,
                run_id: id,
                file_size_bytes: info.file_size_bytes,
            },
        );
        next.last_flushed_seq = next.last_flushed_seq.max(frozen.seq_max());
        manifest::store(&inner.dir, &next)?;
        *manifest_state = next;
        let mut state = inner.state.write();
        let mut tables = vec![RunTable { run_id: id, table }];
        tables.extend(state.tables.iter().cloned());
        *state = Arc::new(ReadState {
            active: Arc::clone(&state.active),
            frozen: None,
            tables,
        });
    }
    if let Some(wal) = &inner.wal {
        wal.remove_segments_before(log_segment)?;
    }
    inner.counters.flushes.fetch_add(1, Ordering::Relaxed);
    inner.notify_flush_done();
    inner.wake_background();
    Ok(())
}

/// Runs merges until the planner is content (or, with `everything`, one merge of all
/// runs). Only one caller runs merges at a time.
pub(super) fn run_compactions(inner: &Inner, everything: bool) -> Result<()> {
    let _running = inner.compaction_running.lock();
    loop {
        if stopping(inner) {
            return Ok(());
        }
        let state = inner.read_state();
        let summaries: Vec<RunSummary> = runs(&state.tables)
            .map(|run| RunSummary {
                id: run[0].run_id,
                size_bytes: run.iter().map(|t| t.table.info().file_size_bytes).sum(),
            })
            .collect();
        let task = if everything {
            compaction::plan_full(&summaries)
        } else {
            compaction::plan(&summaries, &inner.options.compaction)
        };
        let Some(task) = task else {
            return Ok(());
        };
        let inputs = input_runs(&state, &task);
        // Keep only the input tables: the snapshot also pins the memtables it saw, and a
        // long merge would keep them alive after they are flushed, two memtables more than
        // the bound on memtable memory.
        drop(state);
        merge(inner, inputs, &task)?;
        if everything {
            return Ok(());
        }
    }
}

/// Each input run's tables, in ascending key order; the runs newest first.
fn input_runs(state: &ReadState, task: &CompactionTask) -> Vec<Vec<Arc<Table>>> {
    let inputs: Vec<Vec<Arc<Table>>> = task
        .inputs
        .iter()
        .filter_map(|run_id| {
            runs(&state.tables)
                .find(|run| run[0].run_id == *run_id)
                .map(|run| run.iter().map(|t| Arc::clone(&t.table)).collect())
        })
        .collect();
    assert_eq!(
        inputs.len(),
        task.inputs.len(),
        "planned inputs must be live runs"
    );
    inputs
}

fn merge(inner: &Inner, inputs: Vec<Vec<Arc<Table>>>, task: &CompactionTask) -> Result<()> {
    let output_options = OutputOptions {
        dir: &inner.dir,
        table: &inner.options.table,
        table_size_bytes_target: inner.options.compaction.table_size_bytes_target,
    };
    let outcome = compaction::execute(
        &inputs,
        &output_options,
        &mut || allocate_table_id(inner),
        task.drop_tombstones,
        &|| stopping(inner),
    )?;
    let written = match outcome {
        Outcome::Cancelled => return Ok(()),
        Outcome::Written(written) => written,
    };
    let output = open_output(inner, &written);
    let output = match output {
        Ok(output) => output,
        Err(error) => {
            for table in &written {
                let _ = fs::remove_file(manifest::table_path(&inner.dir, table.id));
            }
            return Err(error);
        }
    };
    install_merge_output(inner, task, &output)?;
    let input_tables: Vec<&Arc<Table>> = inputs.iter().flatten().collect();
    let bytes_read: u64 = input_tables.iter().map(|t| t.info().file_size_bytes).sum();
    for table in &input_tables {
        if let Some(cache) = &inner.cache {
            cache.evict_table(table.id());
        }
        let _ = fs::remove_file(table.path());
    }
    let counters = &inner.counters;
    counters.compactions.fetch_add(1, Ordering::Relaxed);
    counters
        .compaction_bytes_read
        .fetch_add(bytes_read, Ordering::Relaxed);
    let bytes_written: u64 = written.iter().map(|t| t.info.file_size_bytes).sum();
    counters
        .compaction_bytes_written
        .fetch_add(bytes_written, Ordering::Relaxed);
    Ok(())
}

/// Opens a merge's output tables as one run, whose id is the first table's.
fn open_output(inner: &Inner, written: &[compaction::OutputTable]) -> Result<Vec<RunTable>> {
    let run_id = written.first().map_or(0, |table| table.id);
    written
        .iter()
        .map(|output| {
            let path = manifest::table_path(&inner.dir, output.id);
            let table = Table::open_with(
                &path,
                output.id,
                inner.cache.clone(),
                inner.options.table.data_block_read,
            )?;
            Ok(RunTable {
                run_id,
                table: Arc::new(table),
            })
        })
        .collect()
}

/// Replaces the tables of the merged runs by the output run in the manifest, then in the
/// read state. Flushes only ever prepend runs, and merges are serialised, so the input
/// runs' tables are still contiguous.
fn install_merge_output(inner: &Inner, task: &CompactionTask, output: &[RunTable]) -> Result<()> {
    let mut manifest_state = inner.manifest.lock();
    let mut next = manifest_state.clone();
    let (position, count) = inputs_span(next.tables.iter().map(|t| t.run_id), &task.inputs);
    let replacement = output.iter().map(|t| TableRecord {
        id: t.table.id(),
        run_id: t.run_id,
        file_size_bytes: t.table.info().file_size_bytes,
    });
    next.tables.splice(position..position + count, replacement);
    manifest::store(&inner.dir, &next)?;
    *manifest_state = next;

    let mut state = inner.state.write();
    let (position, count) = inputs_span(state.tables.iter().map(|t| t.run_id), &task.inputs);
    let mut tables = state.tables.clone();
    tables.splice(position..position + count, output.iter().cloned());
    *state = Arc::new(ReadState {
        active: Arc::clone(&state.active),
        frozen: state.frozen.clone(),
        tables,
    });
    Ok(())
}

/// Where the tables of the contiguous runs `inputs` start in the list of tables' run ids,
/// and how many tables they are.
fn inputs_span(run_ids: impl Iterator<Item = u64>, inputs: &[u64]) -> (usize, usize) {
    let run_ids: Vec<u64> = run_ids.collect();
    let position = run_ids
        .iter()
        .position(|id| *id == inputs[0])
        .expect("the first merged run is still listed");
    let mut count = 0;
    let mut runs_seen: Vec<u64> = Vec::new();
    for id in &run_ids[position..] {
        if !inputs.contains(id) {
            break;
        }
        if runs_seen.last() != Some(id) {
            runs_seen.push(*id);
        }
        count += 1;
    }
    assert_eq!(
        runs_seen, inputs,
        "merged runs must still be contiguous and in order"
    );
    assert!(
        !run_ids[position + count..]
            .iter()
            .any(|id| inputs.contains(id)),
        "a merged run's tables must be contiguous"
    );
    (position, count)
}
