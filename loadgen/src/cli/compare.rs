//! `kvbench compare BASELINE CANDIDATE`: exit 0 when the candidate is within tolerance,
//! 1 on a regression, 2 on unusable input (see [`crate::compare`]).

use crate::compare::{self, CompareOptions, Tolerances};
use crate::{Error, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// Flags of `kvbench compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The reference summary.csv (e.g. results/baseline.csv).
    pub baseline: PathBuf,
    /// The summary.csv of the run to check.
    pub candidate: PathBuf,
    /// Override one tolerance, METRIC=VALUE, repeatable: throughput=10% (largest drop),
    /// p99=0.5 (largest relative increase; also mean, p50, p90, p999, max),
    /// error_rate=0.5pp (percentage points), METRIC=off to skip.
    /// Defaults: throughput 15%, mean 20%, p50 20%, p90 25%, p99 35%, p999 50%,
    /// error_rate 1pp, max not checked.
    #[arg(long = "tolerance", value_name = "METRIC=VALUE")]
    pub tolerances: Vec<String>,
    /// A configuration column not to match rows on (repeatable); run names, timestamps,
    /// commits and hosts are never matched on.
    #[arg(long = "ignore-column", value_name = "COLUMN")]
    pub ignored_columns: Vec<String>,
    /// Latency increases smaller than this (microseconds) are never regressions.
    #[arg(long = "latency-floor-us", default_value_t = 0.0)]
    pub latency_floor_us: f64,
}

/// Runs `kvbench compare`: prints the diff, then fails with [`Error::Regressions`] if any.
pub fn run(args: &CompareArgs, out: &mut dyn Write) -> Result<()> {
    let mut tolerances = Tolerances::default();
    for spec in &args.tolerances {
        tolerances.apply(spec)?;
    }
    if !(args.latency_floor_us.is_finite() && args.latency_floor_us >= 0.0) {
        return Err(Error::InvalidFlag {
            flag: "latency-floor-us",
            detail: format!("{} must be a non-negative number", args.latency_floor_us),
        });
    }
    let options = CompareOptions {
        tolerances,
        ignored_columns: args.ignored_columns.clone(),
        latency_floor_us: args.latency_floor_us,
    };
    let baseline = compare::read_summary(&args.baseline)?;
    let candidate = compare::read_summary(&args.candidate)?;
    let comparison = compare::compare(&baseline, &candidate, &options);
    let text = compare::render(
        &comparison,
        &args.baseline.display().to_string(),
        &args.candidate.display().to_string(),
    );
    out.write_all(text.as_bytes()).map_err(|source| Error::Io {
        context: "stdout".to_string(),
        source,
    })?;
    match comparison.regressions() {
        0 => Ok(()),
        count => Err(Error::Regressions { count }),
    }
}
