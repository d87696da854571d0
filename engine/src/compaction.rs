//! Compaction: merging SSTables so reads touch few of them and deleted data is reclaimed.
//!
//! # Why size-tiered, on age-adjacent runs
//!
//! Every replica of the cluster writes every key it owns, plus hints and repair streams,
//! so the engine's workload is write-heavy, and this machine has two cores to share between
//! serving and compacting. Size-tiered compaction rewrites a byte about
//! log2(data / memtable) times; leveled compaction rewrites it about 10 times per level.
//! Reads pay for the extra tables with one Bloom probe each, well under a microsecond.
//!
//! Merges take only *age-adjacent* runs (as RocksDB's universal compaction does). A run is
//! the output of one flush or one merge: one or more tables with the same sequence range and
//! disjoint, ascending key ranges. The run list therefore keeps disjoint, descending
//! sequence ranges, so a point read can stop at the first table holding the key (within a
//! run at most one table covers it), and a tombstone can be dropped exactly when the merge
//! includes the oldest run: no older version can then exist anywhere.
//!
//! A merge splits its output into tables of about `table_size_bytes_target` bytes, always
//! between two keys (there is one version per key, so any boundary will do). The table
//! builder keeps about 10 bytes per key until it finishes a table, so splitting bounds its
//! memory by the target instead of by the data set.
//!
//! The price: space amplification up to about 2x while a large merge runs (its inputs and
//! output coexist), and range scans visit every run. Both are documented in the README.

use crate::iter::{EntryIterator, MergingIterator, RunIterator};
use crate::manifest;
use crate::sstable::{Table, TableBuilder, TableInfo};
use crate::{CompactionOptions, Result, TableOptions, ValueKind};
use std::path::Path;
use std::sync::Arc;

/// What the planner needs to know of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    pub id: u64,
    /// Bytes in all of the run's tables.
    pub size_bytes: u64,
}

/// A merge to run: the ids of age-adjacent runs, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionTask {
    pub inputs: Vec<u64>,
    /// True when the inputs include the oldest run, so tombstones shadow nothing older.
    pub drop_tombstones: bool,
}

/// Chooses the next merge for `runs` (newest first), or `None` when the shape is fine.
///
/// From each starting run, a merge grows by the next older run while that run is at most
/// `size_ratio` times the merge's total, up to `max_merge_width` runs. Among merges of at
/// least `min_merge_width` runs, the one with the smallest average run size wins: it
/// rewrites the fewest bytes per run removed, so a big freshly merged run is not rewritten
/// just to absorb a few small older ones.
pub fn plan(runs: &[RunSummary], options: &CompactionOptions) -> Option<CompactionTask> {
    let mut best: Option<(f64, usize, usize)> = None;
    for start in 0..runs.len() {
        let mut merge_size_bytes = runs[start].size_bytes as f64;
        let mut end = start + 1;
        while end < runs.len()
            && end - start < options.max_merge_width
            && runs[end].size_bytes as f64 <= merge_size_bytes * options.size_ratio
        {
            merge_size_bytes += runs[end].size_bytes as f64;
            end += 1;
        }
        let width = end - start;
        if width < options.min_merge_width {
            continue;
        }
        let average = merge_size_bytes / width as f64;
        if best.is_none_or(|(best_average, _, _)| average < best_average) {
            best = Some((average, start, end));
        }
    }
    best.map(|(_, start, end)| CompactionTask {
        inputs: runs[start..end].iter().map(|run| run.id).collect(),
        drop_tombstones: end == runs.len(),
    })
}

/// A merge of every run into one, dropping tombstones; `None` if there is nothing to do.
pub fn plan_full(runs: &[RunSummary]) -> Option<CompactionTask> {
    if runs.len() < 2 {
        return None;
    }
    Some(CompactionTask {
        inputs: runs.iter().map(|run| run.id).collect(),
        drop_tombstones: true,
    })
}

/// One table a merge wrote.
#[derive(Debug, Clone)]
pub struct OutputTable {
    pub id: u64,
    pub info: TableInfo,
}

/// How a merge ended.
#[derive(Debug)]
pub enum Outcome {
    /// The output tables, in ascending key order, written and synced. Empty when nothing
    /// survived (every entry was a droppable tombstone); then no file was left.
    Written(Vec<OutputTable>),
    /// `should_stop` asked to stop; the partial output was removed. Inputs stay live.
    Cancelled,
}

/// How many entries are merged between two polls of `should_stop`.
const CANCEL_POLL_ENTRIES: u64 = 4096;

/// Where a merge writes and how.
pub struct OutputOptions<'a> {
    /// The database directory; output table `id` goes to `manifest::table_path(dir, id)`.
    pub dir: &'a Path,
    pub table: &'a TableOptions,
    /// A new output table is started once the current one reaches this size.
    pub table_size_bytes_target: u64,
}

/// Merges `inputs` (runs newest first, each run's tables in ascending key order) into new
/// tables of about `output.table_size_bytes_target` bytes; `allocate_id` names each one. On
/// an error or a cancel, every table this merge wrote is removed.
pub fn execute(
    inputs: &[Vec<Arc<Table>>],
    output: &OutputOptions<'_>,
    allocate_id: &mut dyn FnMut() -> u64,
    drop_tombstones: bool,
    should_stop: &dyn Fn() -> bool,
) -> Result<Outcome> {
    let mut written = Vec::new();
    let result = merge_into(
        inputs,
        output,
        allocate_id,
        drop_tombstones,
        should_stop,
        &mut written,
    );
    match result {
        Ok(true) => Ok(Outcome::Written(written)),
        Ok(false) | Err(_) => {
            for table in &written {
                let _ = std::fs::remove_file(manifest::table_path(output.dir, table.id));
            }
            result.map(|_| Outcome::Cancelled)
        }
    }
}

/// The body of `execute`: `Ok(false)` when cancelled. Finished tables go to `written`; an
/// unfinished one is removed when its builder is dropped.
fn merge_into(
    inputs: &[Vec<Arc<Table>>],
    output: &OutputOptions<'_>,
    allocate_id: &mut dyn FnMut() -> u64,
    drop_tombstones: bool,
    should_stop: &dyn Fn() -> bool,
    written: &mut Vec<OutputTable>,
) -> Result<bool> {
    let all_tables = || inputs.iter().flatten();
    let input_entries: u64 = all_tables().map(|table| table.info().entry_count).sum();
    let input_bytes: u64 = all_tables().map(|table| table.info().file_size_bytes).sum();
    // The Bloom builder reserves a hash per expected entry: size it for one output table.
    let bytes_per_entry = (input_bytes / input_entries.max(1)).max(1);
    let expected_entries =
        input_entries.min(output.table_size_bytes_target / bytes_per_entry + 1) as usize;
    let sources = inputs
        .iter()
        .map(|run| Box::new(RunIterator::new(run.clone())) as Box<dyn EntryIterator>)
        .collect();
    let mut merged = MergingIterator::new(sources);
    merged.seek_to_first()?;
    let mut builder: Option<(u64, TableBuilder)> = None;
    let mut visited = 0u64;
    while merged.valid() {
        visited += 1;
        if visited % CANCEL_POLL_ENTRIES == 0 && should_stop() {
            if let Some((_, builder)) = builder.take() {
                builder.abandon()?;
            }
            return Ok(false);
        }
        let entry = merged.entry();
        if !(drop_tombstones && entry.kind == ValueKind::Delete) {
            let (_, current) = match &mut builder {
                Some(open) => open,
                None => {
                    let id = allocate_id();
                    let path = manifest::table_path(output.dir, id);
                    let created = TableBuilder::create(&path, output.table, expected_entries)?;
                    builder.insert((id, created))
                }
            };
            current.add(&entry.key, entry.seq, entry.kind, &entry.meta, &entry.value)?;
            // Split only here, between two keys: the next key starts the next table.
            if current.estimated_size_bytes() >= output.table_size_bytes_target {
                let (id, full) = builder.take().expect("a builder is open");
                let info = full.finish()?;
                written.push(OutputTable { id, info });
            }
        }
        merged.advance()?;
    }
    if let Some((id, last)) = builder {
        let info = last.finish()?;
        written.push(OutputTable { id, info });
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(sizes: &[u64]) -> Vec<RunSummary> {
        sizes
            .iter()
            .enumerate()
            .map(|(index, &size_bytes)| RunSummary {
                id: 100 - index as u64,
                size_bytes,
            })
            .collect()
    }

    #[test]
    fn equal_sized_tables_merge_once_enough_exist() {
        let options = CompactionOptions::default();
        assert_eq!(plan(&runs(&[10, 10, 10]), &options), None);
        let task = plan(&runs(&[10, 10, 10, 10]), &options).unwrap();
        assert_eq!(task.inputs, vec![100, 99, 98, 97]);
        assert!(task.drop_tombstones);
    }

    #[test]
    fn a_big_old_table_is_left_alone_until_the_newer_ones_add_up() {
        let options = CompactionOptions::default();
        let task = plan(&runs(&[10, 10, 10, 10, 400]), &options).unwrap();
        assert_eq!(task.inputs, vec![100, 99, 98, 97]);
        assert!(
            !task.drop_tombstones,
            "an older table remains, tombstones must stay"
        );
        // Geometric tiers never form a run, so the table count stays logarithmic.
        assert_eq!(plan(&runs(&[10, 40, 160, 640]), &options), None);
        // Once the newer tables add up to about the older one, it joins.
        assert_eq!(plan(&runs(&[10, 10, 10, 40]), &options), None);
        let task = plan(&runs(&[10, 10, 10, 30]), &options).unwrap();
        assert_eq!(task.inputs.len(), 4);
    }

    #[test]
    fn runs_are_capped_and_may_start_below_the_newest() {
        let options = CompactionOptions {
            max_merge_width: 5,
            ..CompactionOptions::default()
        };
        let task = plan(&runs(&[10; 8]), &options).unwrap();
        assert_eq!(task.inputs.len(), 5);
        assert!(!task.drop_tombstones);
        let task = plan(&runs(&[1000, 10, 10, 10, 10]), &options).unwrap();
        assert_eq!(task.inputs, vec![99, 98, 97, 96]);
    }

    #[test]
    fn write_amplification_stays_logarithmic() {
        // Simulate 256 equal flushes and count bytes rewritten per byte flushed.
        let options = CompactionOptions::default();
        let mut sizes: Vec<u64> = Vec::new();
        let (mut flushed, mut rewritten) = (0u64, 0u64);
        for _ in 0..256 {
            sizes.insert(0, 1);
            flushed += 1;
            while let Some(task) = plan(&runs(&sizes), &options) {
                // runs() numbers position i as id 100 - i.
                let first = 100 - task.inputs[0] as usize;
                let merged: u64 = sizes[first..first + task.inputs.len()].iter().sum();
                rewritten += merged;
                sizes.splice(first..first + task.inputs.len(), [merged]);
            }
        }
        let amplification = rewritten as f64 / flushed as f64;
        assert!(
            amplification < 6.0,
            "each byte rewritten {amplification} times"
        );
        assert!(sizes.len() <= 12, "{} runs left: {sizes:?}", sizes.len());
    }

    fn write_run(dir: &Path, id: u64, keys: impl Iterator<Item = u32>, seq: u64) -> Arc<Table> {
        let path = manifest::table_path(dir, id);
        let options = TableOptions {
            block_size_bytes: 512,
            ..TableOptions::default()
        };
        let mut builder = TableBuilder::create(&path, &options, 0).unwrap();
        for key in keys {
            let key = format!("key{key:06}");
            let kind = if seq > 1 && key.ends_with('0') {
                ValueKind::Delete
            } else {
                ValueKind::Put
            };
            builder
                .add(key.as_bytes(), seq, kind, b"m", &[7u8; 100])
                .unwrap();
        }
        builder.finish().unwrap();
        Arc::new(Table::open(&path, id, None).unwrap())
    }

    #[test]
    fn a_merge_splits_its_output_into_tables_with_disjoint_ascending_keys() {
        let dir = tempfile::tempdir().unwrap();
        // An older run of two tables and a newer run of one overlapping both.
        let older = vec![
            write_run(dir.path(), 1, 0..500, 1),
            write_run(dir.path(), 2, 500..1000, 1),
        ];
        let newer = vec![write_run(dir.path(), 3, (0..1000).step_by(3), 2)];
        let table_options = TableOptions {
            block_size_bytes: 512,
            compression: crate::Compression::None,
            ..TableOptions::default()
        };
        let output = OutputOptions {
            dir: dir.path(),
            table: &table_options,
            table_size_bytes_target: 8 << 10,
        };
        let mut next_id = 10;
        let mut allocate = || {
            next_id += 1;
            next_id
        };
        let outcome = execute(&[newer, older], &output, &mut allocate, true, &|| false).unwrap();
        let Outcome::Written(tables) = outcome else {
            panic!("not cancelled")
        };
        assert!(tables.len() >= 4, "{} tables", tables.len());
        let ids: Vec<u64> = tables.iter().map(|table| table.id).collect();
        assert_eq!(ids, (11..11 + tables.len() as u64).collect::<Vec<_>>());
        for pair in tables.windows(2) {
            assert!(pair[0].info.largest_key < pair[1].info.smallest_key);
        }
        // Every key once, newest version, tombstones dropped.
        let run: Vec<Arc<Table>> = tables
            .iter()
            .map(|table| {
                let path = manifest::table_path(dir.path(), table.id);
                Arc::new(Table::open(&path, table.id, None).unwrap())
            })
            .collect();
        let mut iterator = RunIterator::new(run);
        iterator.seek_to_first().unwrap();
        let mut count = 0;
        while iterator.valid() {
            let entry = iterator.entry();
            let number: u32 = std::str::from_utf8(&entry.key[3..])
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(entry.seq, if number % 3 == 0 { 2 } else { 1 });
            assert_eq!(entry.kind, ValueKind::Put);
            count += 1;
            iterator.advance().unwrap();
        }
        let deleted = (0..1000).step_by(3).filter(|n| n % 10 == 0).count();
        assert_eq!(count, 1000 - deleted);
    }

    #[test]
    fn a_cancelled_merge_leaves_no_output() {
        let dir = tempfile::tempdir().unwrap();
        let input = vec![vec![write_run(dir.path(), 1, 0..20000, 1)]];
        let table_options = TableOptions {
            compression: crate::Compression::None,
            ..TableOptions::default()
        };
        let output = OutputOptions {
            dir: dir.path(),
            table: &table_options,
            table_size_bytes_target: 64 << 10,
        };
        let mut next_id = 1;
        let mut allocate = || {
            next_id += 1;
            next_id
        };
        let outcome = execute(&input, &output, &mut allocate, false, &|| true).unwrap();
        assert!(matches!(outcome, Outcome::Cancelled));
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 1, "only the input table remains");
    }
}
