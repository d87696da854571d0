//! Staleness per reporting interval: stale fraction, k and t of every second of the run, so a
//! failure or a delay change shows in staleness as it does in latency. Written as
//! `staleness_intervals.csv` beside `intervals.csv`, with the same one-second period measured
//! on the same run clock (a read counts in the interval it began in; warm-up included, as in
//! `intervals.csv`).
//!
//! ```text
//! interval,start_s,end_s,reads,fresh,stale,stale_fraction,k_mean,k_max,stale_t_mean_ms,visibility_reads,visibility_fresh_fraction
//! 0,0,1,812,805,7,0.008621,1.000,1,3.214,790,0.991139
//! ```
//!
//! `reads = fresh + stale` (reads of keys never written before, or untracked, are in no
//! interval's checked count, as in the run's totals). `k_mean` and `stale_t_mean_ms` are over
//! the interval's stale reads; `visibility_*` are its t-visibility samples (reads begun after
//! a commit to their key), whatever their t.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::tracker::{ReadClass, Verdict};
use crate::{Error, Result};

/// Interval length, microseconds: the driver's status / `intervals.csv` period.
pub const INTERVAL_MICROS: u64 = 1_000_000;

/// Most intervals kept (a day at one per second); later reads count in the last one.
pub const INTERVALS_MAX: usize = 86_400;

/// The file's name in a run's results directory.
pub const STALENESS_INTERVALS_CSV_NAME: &str = "staleness_intervals.csv";

/// The header line's fields.
pub const STALENESS_INTERVALS_CSV_HEADER: &str = "interval,start_s,end_s,reads,fresh,stale,\
stale_fraction,k_mean,k_max,stale_t_mean_ms,visibility_reads,visibility_fresh_fraction";

/// One interval's staleness counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntervalStaleness {
    /// Reads that saw every write acknowledged before they began.
    pub fresh: u64,
    /// Reads that missed at least one.
    pub stale: u64,
    /// Sum of the stale reads' k.
    pub k_sum: u64,
    /// Largest k of the interval.
    pub k_max: u64,
    /// Sum of the stale reads' t (since the newest missed write), microseconds.
    pub stale_t_sum_micros: u64,
    /// Reads with a t-visibility sample.
    pub visibility_reads: u64,
    /// Of those, reads that saw the latest acknowledged write.
    pub visibility_seen: u64,
}

impl IntervalStaleness {
    /// Counts one classified read.
    pub fn record(&mut self, class: &ReadClass) {
        match class.verdict {
            Verdict::Fresh => self.fresh += 1,
            Verdict::Stale { k, t_micros, .. } => {
                self.stale += 1;
                self.k_sum += k;
                self.k_max = self.k_max.max(k);
                self.stale_t_sum_micros += t_micros;
            }
            Verdict::NoPriorWrite | Verdict::Untracked => return,
        }
        if let Some(sample) = class.visibility {
            self.visibility_reads += 1;
            self.visibility_seen += u64::from(sample.seen);
        }
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &IntervalStaleness) {
        self.fresh += other.fresh;
        self.stale += other.stale;
        self.k_sum += other.k_sum;
        self.k_max = self.k_max.max(other.k_max);
        self.stale_t_sum_micros += other.stale_t_sum_micros;
        self.visibility_reads += other.visibility_reads;
        self.visibility_seen += other.visibility_seen;
    }

    /// `stale / (fresh + stale)`; 0 without reads.
    pub fn stale_fraction(&self) -> f64 {
        ratio(self.stale, self.fresh + self.stale)
    }

    /// Mean k of the stale reads; 0 without any.
    pub fn k_mean(&self) -> f64 {
        ratio(self.k_sum, self.stale)
    }

    /// Mean t (ms) of the stale reads; 0 without any.
    pub fn stale_t_mean_ms(&self) -> f64 {
        ratio(self.stale_t_sum_micros, self.stale) / 1000.0
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The interval a read begun at `began_micros` (run clock) counts in.
pub fn interval_of(began_micros: u64) -> usize {
    ((began_micros / INTERVAL_MICROS) as usize).min(INTERVALS_MAX - 1)
}

/// Adds `from` into `into` interval by interval, growing `into` as needed.
pub fn merge_intervals(into: &mut Vec<IntervalStaleness>, from: &[IntervalStaleness]) {
    if into.len() < from.len() {
        into.resize(from.len(), IntervalStaleness::default());
    }
    for (mine, theirs) in into.iter_mut().zip(from) {
        mine.merge(theirs);
    }
}

/// Writes the table, one row per interval up to the last with a read.
pub fn write_staleness_intervals_csv(
    out: &mut dyn Write,
    intervals: &[IntervalStaleness],
) -> std::io::Result<()> {
    writeln!(out, "{STALENESS_INTERVALS_CSV_HEADER}")?;
    let seconds = INTERVAL_MICROS as f64 / 1e6;
    for (index, interval) in intervals.iter().enumerate() {
        writeln!(
            out,
            "{index},{},{},{},{},{},{:.6},{:.3},{},{:.3},{},{:.6}",
            index as f64 * seconds,
            (index + 1) as f64 * seconds,
            interval.fresh + interval.stale,
            interval.fresh,
            interval.stale,
            interval.stale_fraction(),
            interval.k_mean(),
            interval.k_max,
            interval.stale_t_mean_ms(),
            interval.visibility_reads,
            ratio(interval.visibility_seen, interval.visibility_reads)
        )?;
    }
    Ok(())
}

/// Writes `staleness_intervals.csv` into `directory`; returns its path.
pub fn write_staleness_intervals_csv_file(
    directory: &Path,
    intervals: &[IntervalStaleness],
) -> Result<PathBuf> {
    let path = directory.join(STALENESS_INTERVALS_CSV_NAME);
    let mut text = Vec::new();
    write_staleness_intervals_csv(&mut text, intervals)
        .and_then(|()| std::fs::write(&path, &text))
        .map_err(|source| Error::Io {
            context: path.display().to_string(),
            source,
        })?;
    Ok(path)
}

#[cfg(test)]
mod tests;
