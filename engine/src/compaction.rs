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
//! Merges take only *age-adjacent* tables (as RocksDB's universal compaction does). The
//! table list therefore keeps disjoint, descending sequence ranges, so a point read can stop
//! at the first table holding the key, and a tombstone can be dropped exactly when the
//! merge includes the oldest table: no older version can then exist anywhere.
//!
//! The price: space amplification up to about 2x while a large merge runs (its inputs and
//! output coexist), and range scans visit every table. Both are documented in the README.

use crate::iter::{EntryIterator, MergingIterator};
use crate::sstable::{Table, TableBuilder, TableInfo};
use crate::{CompactionOptions, Result, TableOptions, ValueKind};
use std::path::Path;
use std::sync::Arc;

/// What the planner needs to know of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSummary {
    pub id: u64,
    pub size_bytes: u64,
}

/// A merge to run: the ids of age-adjacent tables, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionTask {
    pub inputs: Vec<u64>,
    /// True when the inputs include the oldest table, so tombstones shadow nothing older.
    pub drop_tombstones: bool,
}

/// Chooses the next merge for `tables` (newest first), or `None` when the shape is fine.
///
/// From each starting table, a run grows by the next older table while that table is at
/// most `size_ratio` times the run's total, up to `max_merge_width` tables. Among runs of
/// at least `min_merge_width` tables, the one with the smallest average table size wins:
/// it rewrites the fewest bytes per table removed, so a big freshly merged table is not
/// rewritten just to absorb a few small older ones.
pub fn plan(tables: &[TableSummary], options: &CompactionOptions) -> Option<CompactionTask> {
    let mut best: Option<(f64, usize, usize)> = None;
    for start in 0..tables.len() {
        let mut run_size_bytes = tables[start].size_bytes as f64;
        let mut end = start + 1;
        while end < tables.len()
            && end - start < options.max_merge_width
            && tables[end].size_bytes as f64 <= run_size_bytes * options.size_ratio
        {
            run_size_bytes += tables[end].size_bytes as f64;
            end += 1;
        }
        let width = end - start;
        if width < options.min_merge_width {
            continue;
        }
        let average = run_size_bytes / width as f64;
        if best.is_none_or(|(best_average, _, _)| average < best_average) {
            best = Some((average, start, end));
        }
    }
    best.map(|(_, start, end)| CompactionTask {
        inputs: tables[start..end].iter().map(|table| table.id).collect(),
        drop_tombstones: end == tables.len(),
    })
}

/// A merge of every table into one, dropping tombstones; `None` if there is nothing to do.
pub fn plan_full(tables: &[TableSummary]) -> Option<CompactionTask> {
    if tables.len() < 2 {
        return None;
    }
    Some(CompactionTask {
        inputs: tables.iter().map(|table| table.id).collect(),
        drop_tombstones: true,
    })
}

/// How a merge ended.
#[derive(Debug)]
pub enum Outcome {
    /// The output table was written and synced.
    Written(TableInfo),
    /// Nothing survived (every entry was a droppable tombstone); no file was left.
    Empty,
    /// `should_stop` asked to stop; the partial output was removed. Inputs stay live.
    Cancelled,
}

/// How many entries are merged between two polls of `should_stop`.
const CANCEL_POLL_ENTRIES: u64 = 4096;

/// Merges `inputs` (newest first) into a new table at `output`.
pub fn execute(
    inputs: &[Arc<Table>],
    output: &Path,
    options: &TableOptions,
    drop_tombstones: bool,
    should_stop: &dyn Fn() -> bool,
) -> Result<Outcome> {
    let expected_entries = inputs
        .iter()
        .map(|table| table.info().entry_count as usize)
        .sum();
    let sources = inputs
        .iter()
        .map(|table| Box::new(table.iter()) as Box<dyn EntryIterator>)
        .collect();
    let mut merged = MergingIterator::new(sources);
    merged.seek_to_first()?;
    let mut builder = TableBuilder::create(output, options, expected_entries)?;
    let mut visited = 0u64;
    while merged.valid() {
        visited += 1;
        if visited % CANCEL_POLL_ENTRIES == 0 && should_stop() {
            builder.abandon()?;
            return Ok(Outcome::Cancelled);
        }
        let entry = merged.entry();
        if !(drop_tombstones && entry.kind == ValueKind::Delete) {
            builder.add(&entry.key, entry.seq, entry.kind, &entry.meta, &entry.value)?;
        }
        merged.advance()?;
    }
    if builder.entry_count() == 0 {
        builder.abandon()?;
        return Ok(Outcome::Empty);
    }
    builder.finish().map(Outcome::Written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(sizes: &[u64]) -> Vec<TableSummary> {
        sizes
            .iter()
            .enumerate()
            .map(|(index, &size_bytes)| TableSummary {
                id: 100 - index as u64,
                size_bytes,
            })
            .collect()
    }

    #[test]
    fn equal_sized_tables_merge_once_enough_exist() {
        let options = CompactionOptions::default();
        assert_eq!(plan(&tables(&[10, 10, 10]), &options), None);
        let task = plan(&tables(&[10, 10, 10, 10]), &options).unwrap();
        assert_eq!(task.inputs, vec![100, 99, 98, 97]);
        assert!(task.drop_tombstones);
    }

    #[test]
    fn a_big_old_table_is_left_alone_until_the_newer_ones_add_up() {
        let options = CompactionOptions::default();
        let task = plan(&tables(&[10, 10, 10, 10, 400]), &options).unwrap();
        assert_eq!(task.inputs, vec![100, 99, 98, 97]);
        assert!(
            !task.drop_tombstones,
            "an older table remains, tombstones must stay"
        );
        // Geometric tiers never form a run, so the table count stays logarithmic.
        assert_eq!(plan(&tables(&[10, 40, 160, 640]), &options), None);
        // Once the newer tables add up to about the older one, it joins.
        assert_eq!(plan(&tables(&[10, 10, 10, 40]), &options), None);
        let task = plan(&tables(&[10, 10, 10, 30]), &options).unwrap();
        assert_eq!(task.inputs.len(), 4);
    }

    #[test]
    fn runs_are_capped_and_may_start_below_the_newest() {
        let options = CompactionOptions {
            max_merge_width: 5,
            ..CompactionOptions::default()
        };
        let task = plan(&tables(&[10; 8]), &options).unwrap();
        assert_eq!(task.inputs.len(), 5);
        assert!(!task.drop_tombstones);
        let task = plan(&tables(&[1000, 10, 10, 10, 10]), &options).unwrap();
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
            while let Some(task) = plan(&tables(&sizes), &options) {
                // tables() numbers position i as id 100 - i.
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
        assert!(sizes.len() <= 12, "{} tables left: {sizes:?}", sizes.len());
    }
}
