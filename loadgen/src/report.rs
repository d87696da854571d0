//! What a run leaves behind, all in `results/<run-name>/`:
//!
//! - `ycsb.txt`: YCSB's end-of-run text, line for line ([`ycsb`]);
//! - `summary.txt`: a fixed-width table for humans ([`table`]);
//! - `summary.csv` and `intervals.csv` ([`csv_files`]);
//! - `metadata.json`: version, git commit, host, configuration ([`metadata`]);
//! - `latency.hlog`: the raw interval histograms every figure above is computed from
//!   ([`crate::measure::histogram_log`]), written during the run.
//!
//! [`table::status_line`] is the line printed every interval while the run goes.

pub mod csv_files;
pub mod html;
pub mod metadata;
pub mod plots;
pub mod staleness_csv;
pub mod table;
pub mod ycsb;

pub use metadata::RunMetadata;
pub use table::{status_line, summary_table};
pub use ycsb::{ycsb_text, YCSB_DEFAULT_PERCENTILES};

use crate::measure::{HistogramSet, IntervalSnapshot};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Longest run name: it is a directory name, and it appears in every plot legend.
pub const RUN_NAME_BYTES_MAX: usize = 128;

/// Everything a finished run reports.
#[derive(Debug, Clone, Copy)]
pub struct RunResults<'a> {
    pub metadata: &'a RunMetadata,
    /// The measured part of the run (warm-up excluded), e.g. `Collector::run_snapshot`.
    pub run: &'a IntervalSnapshot,
    /// The histograms `run` was computed from (`Collector::totals`).
    pub totals: &'a HistogramSet,
    /// Every interval, warm-up included (flagged).
    pub intervals: &'a [IntervalSnapshot],
}

/// `results/<run-name>/`.
#[derive(Debug, Clone)]
pub struct ResultsDirectory {
    path: PathBuf,
}

impl ResultsDirectory {
    /// Creates `<results_root>/<run_name>/` (and the root) if missing.
    pub fn create(results_root: &Path, run_name: &str) -> Result<ResultsDirectory> {
        validate_run_name(run_name)?;
        let path = results_root.join(run_name);
        std::fs::create_dir_all(&path).map_err(|source| Error::Io {
            context: path.display().to_string(),
            source,
        })?;
        Ok(ResultsDirectory { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the run's interval log goes.
    pub fn histogram_log_path(&self) -> PathBuf {
        self.path.join("latency.hlog")
    }

    /// Writes every end-of-run file.
    pub fn write(&self, results: &RunResults<'_>) -> Result<()> {
        let runtime = results
            .run
            .end_offset
            .saturating_sub(results.run.start_offset);
        let ycsb = ycsb_text(runtime, results.totals, &YCSB_DEFAULT_PERCENTILES);
        self.write_text("ycsb.txt", &ycsb)?;
        self.write_text("summary.txt", &summary_table(results.run))?;
        self.write_text("metadata.json", &results.metadata.to_json())?;
        let config = &results.metadata.config;
        csv_files::write_csv_file(&self.path.join("summary.csv"), |out| {
            csv_files::write_summary_csv(out, results.run, config)
        })?;
        csv_files::write_csv_file(&self.path.join("intervals.csv"), |out| {
            csv_files::write_intervals_csv(out, results.intervals)
        })
    }

    fn write_text(&self, name: &str, text: &str) -> Result<()> {
        let path = self.path.join(name);
        std::fs::write(&path, text).map_err(|source| Error::Io {
            context: path.display().to_string(),
            source,
        })
    }
}

/// A run name must be one plain path component that survives any shell and file system.
fn validate_run_name(name: &str) -> Result<()> {
    let invalid = |detail| {
        Err(Error::InvalidRunName {
            name: name.to_string(),
            detail,
        })
    };
    if name.is_empty() || name.len() > RUN_NAME_BYTES_MAX {
        return invalid("must be 1 to 128 bytes long");
    }
    if name.starts_with('.') {
        return invalid("must not start with '.'");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !name.chars().all(allowed) {
        return invalid("may hold only ASCII letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
