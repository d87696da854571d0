//! `kvbench compare BASELINE CANDIDATE`: the CI regression check between two `summary.csv`
//! files (as [`crate::report::csv_files`] writes them; summaries of several runs concatenated
//! with one header work too).
//!
//! Rows are matched by operation (`READ`, `Intended-UPDATE`, ...) and by the configuration
//! columns both files have, except those that differ between any two runs by nature
//! ([`DEFAULT_IGNORED_COLUMNS`], plus `--ignore-column`). Each metric has a tolerance:
//!
//! | metric | regression when | default |
//! |---|---|---|
//! | `throughput` | candidate ops/s below baseline by more than the fraction | 15% |
//! | `mean`, `p50` | latency above baseline by more than the fraction | 20% |
//! | `p90` | | 25% |
//! | `p99` | | 35% |
//! | `p999` | | 50% |
//! | `max` | | not checked |
//! | `error_rate` | errors/ops above baseline by more than the percentage points | 1 pp |
//!
//! Why these defaults: the project's CI machine is a shared 2-core host where several builds
//! run at once. Repeated identical short runs there move throughput and the median by about
//! 5-10% and the tail by far more (p99 and above are set by a handful of samples in a short
//! run, and by whatever else the host scheduled at the time), so each tolerance is about twice
//! the spread expected at its percentile, and the maximum (a single sample) is not checked.
//! A real regression worth catching (a lost fast path, an extra fsync, a lock on the hot
//! path) moves throughput or the median by far more than these. `--latency-floor-us` also
//! ignores latency increases smaller than an absolute amount, for sub-millisecond
//! operations whose percentiles move by a few microseconds of scheduler noise. Tighten with
//! `--tolerance p99=20%` on a quiet machine.
//!
//! A baseline row with no candidate row (an operation type missing) is a regression; a
//! candidate row with no baseline row is reported as new and is not.

mod read;
#[cfg(test)]
mod tests;

pub use read::{parse_summary, read_summary, SummaryRow, SummaryTable};

use crate::{Error, Result};
use std::fmt::Write as _;

/// Configuration columns that differ between any two runs and so never match rows.
/// `hosts` is among them: an embedded cluster takes new loopback addresses every run, and
/// a baseline is meant to be compared across machines.
pub const DEFAULT_IGNORED_COLUMNS: [&str; 11] = [
    "run",
    "run_name",
    "name",
    "timestamp",
    "time",
    "date",
    "start_time",
    "git_commit",
    "commit",
    "host",
    "hosts",
];

/// A compared metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Throughput,
    Mean,
    P50,
    P90,
    P99,
    P999,
    Max,
    ErrorRate,
}

impl Metric {
    /// Every metric, in table order.
    pub const ALL: [Metric; 8] = [
        Metric::Throughput,
        Metric::Mean,
        Metric::P50,
        Metric::P90,
        Metric::P99,
        Metric::P999,
        Metric::Max,
        Metric::ErrorRate,
    ];

    /// The name used in `--tolerance` and the table.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Throughput => "throughput",
            Metric::Mean => "mean",
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P99 => "p99",
            Metric::P999 => "p999",
            Metric::Max => "max",
            Metric::ErrorRate => "error_rate",
        }
    }

    /// Parses a metric name (`p99.9` and `errors` accepted as aliases).
    pub fn parse(name: &str) -> Option<Metric> {
        match name.trim().to_ascii_lowercase().as_str() {
            "p99.9" => Some(Metric::P999),
            "errors" | "error-rate" => Some(Metric::ErrorRate),
            other => Metric::ALL
                .into_iter()
                .find(|metric| metric.name() == other),
        }
    }

    /// The metric's value in a row: ops/s, microseconds, or percent of operations failed.
    pub fn value(self, row: &SummaryRow) -> f64 {
        match self {
            Metric::Throughput => row.throughput_ops_per_second,
            Metric::Mean => row.mean_us,
            Metric::P50 => row.p50_us,
            Metric::P90 => row.p90_us,
            Metric::P99 => row.p99_us,
            Metric::P999 => row.p999_us,
            Metric::Max => row.max_us,
            Metric::ErrorRate => match row.count {
                0 => 0.0,
                count => row.errors as f64 * 100.0 / count as f64,
            },
        }
    }
}

/// Per-metric tolerance: a fraction for throughput and latencies, percentage points for the
/// error rate; `None` means not checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerances {
    values: Vec<(Metric, Option<f64>)>,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            values: vec![
                (Metric::Throughput, Some(0.15)),
                (Metric::Mean, Some(0.20)),
                (Metric::P50, Some(0.20)),
                (Metric::P90, Some(0.25)),
                (Metric::P99, Some(0.35)),
                (Metric::P999, Some(0.50)),
                (Metric::Max, None),
                (Metric::ErrorRate, Some(1.0)),
            ],
        }
    }
}

impl Tolerances {
    /// The tolerance of `metric`.
    pub fn get(&self, metric: Metric) -> Option<f64> {
        self.values
            .iter()
            .find(|(m, _)| *m == metric)
            .and_then(|(_, tolerance)| *tolerance)
    }

    /// Sets one tolerance.
    pub fn set(&mut self, metric: Metric, tolerance: Option<f64>) {
        match self.values.iter_mut().find(|(m, _)| *m == metric) {
            Some(entry) => entry.1 = tolerance,
            None => self.values.push((metric, tolerance)),
        }
    }

    /// Applies `metric=value`: `15%` or `0.15` for a fraction, `1` or `1pp` percentage
    /// points for `error_rate`, `off` to skip the metric.
    pub fn apply(&mut self, spec: &str) -> Result<()> {
        let bad = |detail: String| Error::InvalidFlag {
            flag: "tolerance",
            detail: format!("'{spec}': {detail}"),
        };
        let (name, value) = spec
            .split_once('=')
            .ok_or_else(|| bad("expected metric=value, e.g. p99=30%".to_string()))?;
        let metric = Metric::parse(name).ok_or_else(|| {
            let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            bad(format!(
                "unknown metric '{name}' (known: {})",
                known.join(", ")
            ))
        })?;
        let value = value.trim();
        if value.eq_ignore_ascii_case("off") || value.eq_ignore_ascii_case("none") {
            self.set(metric, None);
            return Ok(());
        }
        let (number, scale) = if let Some(percent) = value.strip_suffix('%') {
            if metric == Metric::ErrorRate {
                return Err(bad(
                    "error_rate takes percentage points, e.g. error_rate=1 or 1pp".to_string(),
                ));
            }
            (percent, 0.01)
        } else if let Some(points) = value.strip_suffix("pp") {
            if metric != Metric::ErrorRate {
                return Err(bad(format!(
                    "{} takes a fraction or a percentage, e.g. 0.2 or 20%",
                    metric.name()
                )));
            }
            (points, 1.0)
        } else {
            (value, 1.0)
        };
        let parsed: f64 = number
            .trim()
            .parse()
            .map_err(|_| bad(format!("'{value}' is not a number")))?;
        if !(parsed.is_finite() && parsed >= 0.0) {
            return Err(bad(format!("'{value}' must be a non-negative number")));
        }
        self.set(metric, Some(parsed * scale));
        Ok(())
    }

    /// One line describing every tolerance.
    pub fn describe(&self) -> String {
        Metric::ALL
            .iter()
            .map(|&metric| match (self.get(metric), metric) {
                (None, _) => format!("{} not checked", metric.name()),
                (Some(t), Metric::ErrorRate) => format!("error_rate +{t}pp"),
                (Some(t), Metric::Throughput) => format!("throughput -{}%", percent(t)),
                (Some(t), _) => format!("{} +{}%", metric.name(), percent(t)),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How to compare.
#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    pub tolerances: Tolerances,
    /// Configuration columns not used to match rows, beyond [`DEFAULT_IGNORED_COLUMNS`].
    pub ignored_columns: Vec<String>,
    /// Latency increases below this many microseconds are never regressions.
    pub latency_floor_us: f64,
}

/// The verdict on one metric of one matched row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Better,
    Regression,
    /// Not comparable (no operations in one run, or a zero baseline).
    NotApplicable,
    /// No tolerance given: shown, not judged.
    NotChecked,
}

/// One line of the diff.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricComparison {
    pub metric: Metric,
    pub baseline: f64,
    pub candidate: f64,
    pub status: Status,
}

/// A matched pair of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct RowComparison {
    /// Operation plus the distinguishing configuration values.
    pub label: String,
    pub metrics: Vec<MetricComparison>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub rows: Vec<RowComparison>,
    /// Baseline rows without a candidate row (regressions).
    pub missing: Vec<String>,
    /// Candidate rows without a baseline row (informational).
    pub added: Vec<String>,
    /// Columns used to match rows besides `op`.
    pub match_columns: Vec<String>,
    /// Remarks on the inputs (columns present in one file only, ...).
    pub notes: Vec<String>,
    tolerances: Tolerances,
}

impl Comparison {
    /// Regressions found: metrics beyond tolerance plus missing rows.
    pub fn regressions(&self) -> usize {
        self.missing.len()
            + self
                .rows
                .iter()
                .flat_map(|row| &row.metrics)
                .filter(|metric| metric.status == Status::Regression)
                .count()
    }
}

/// Compares two summaries.
pub fn compare(
    baseline: &SummaryTable,
    candidate: &SummaryTable,
    options: &CompareOptions,
) -> Comparison {
    let ignored = |column: &str| {
        DEFAULT_IGNORED_COLUMNS.contains(&column)
            || options.ignored_columns.iter().any(|c| c == column)
    };
    let mut notes = Vec::new();
    let match_columns: Vec<String> = baseline
        .config_columns
        .iter()
        .filter(|column| !ignored(column) && candidate.config_columns.contains(column))
        .cloned()
        .collect();
    for (table, other, which) in [
        (baseline, candidate, "baseline"),
        (candidate, baseline, "candidate"),
    ] {
        for column in &table.config_columns {
            if !ignored(column) && !other.config_columns.contains(column) {
                notes.push(format!(
                    "column '{column}' is only in the {which}; not used to match rows"
                ));
            }
        }
    }
    // Only the matching columns whose value varies across the baseline's rows label them.
    let label_columns: Vec<&String> = match_columns
        .iter()
        .filter(|column| {
            let mut values = baseline.rows.iter().map(|row| row.config_value(column));
            let first = values.next();
            values.any(|value| Some(value) != first)
        })
        .collect();
    let key = |row: &SummaryRow| -> (String, Vec<String>) {
        let values = match_columns
            .iter()
            .map(|c| row.config_value(c).to_string())
            .collect();
        (row.op.clone(), values)
    };
    let label = |row: &SummaryRow| -> String {
        let mut text = row.op.clone();
        for column in &label_columns {
            let _ = write!(text, " {column}={}", row.config_value(column));
        }
        text
    };
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for base in &baseline.rows {
        match candidate.rows.iter().find(|cand| key(cand) == key(base)) {
            Some(cand) => rows.push(RowComparison {
                label: label(base),
                metrics: Metric::ALL
                    .iter()
                    .map(|&metric| judge(metric, base, cand, options))
                    .collect(),
            }),
            None => missing.push(label(base)),
        }
    }
    let added = candidate
        .rows
        .iter()
        .filter(|cand| !baseline.rows.iter().any(|base| key(base) == key(cand)))
        .map(label)
        .collect();
    Comparison {
        rows,
        missing,
        added,
        match_columns,
        notes,
        tolerances: options.tolerances.clone(),
    }
}

fn judge(
    metric: Metric,
    base: &SummaryRow,
    cand: &SummaryRow,
    options: &CompareOptions,
) -> MetricComparison {
    let (baseline, candidate) = (metric.value(base), metric.value(cand));
    let status = match options.tolerances.get(metric) {
        None => Status::NotChecked,
        Some(_) if base.count == 0 || cand.count == 0 => Status::NotApplicable,
        Some(tolerance) if metric == Metric::ErrorRate => {
            classify(candidate - baseline, baseline - candidate, tolerance)
        }
        Some(_) if baseline <= 0.0 => Status::NotApplicable,
        Some(tolerance) if metric == Metric::Throughput => {
            let drop = (baseline - candidate) / baseline;
            classify(drop, -drop, tolerance)
        }
        Some(tolerance) => {
            let increase = (candidate - baseline) / baseline;
            let absolute = candidate - baseline;
            if increase > tolerance && absolute <= options.latency_floor_us {
                Status::Ok
            } else {
                classify(increase, -increase, tolerance)
            }
        }
    };
    MetricComparison {
        metric,
        baseline,
        candidate,
        status,
    }
}

/// `worse` beyond the tolerance is a regression, `better` beyond it an improvement.
fn classify(worse: f64, better: f64, tolerance: f64) -> Status {
    if worse > tolerance {
        Status::Regression
    } else if better > tolerance {
        Status::Better
    } else {
        Status::Ok
    }
}

/// The readable diff: one line per metric of every matched row, then missing and new rows
/// and the verdict.
pub fn render(comparison: &Comparison, baseline_name: &str, candidate_name: &str) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "baseline:  {baseline_name}\ncandidate: {candidate_name}"
    );
    let _ = writeln!(text, "tolerances: {}", comparison.tolerances.describe());
    if !comparison.match_columns.is_empty() {
        let _ = writeln!(
            text,
            "rows matched on: op, {}",
            comparison.match_columns.join(", ")
        );
    }
    for note in &comparison.notes {
        let _ = writeln!(text, "note: {note}");
    }
    let width = comparison
        .rows
        .iter()
        .map(|row| row.label.len())
        .chain([2])
        .max()
        .unwrap_or(2);
    let _ = writeln!(
        text,
        "\n{:<width$}  {:<10}  {:>14}  {:>14}  {:>9}  {:>9}  status",
        "op", "metric", "baseline", "candidate", "change", "allowed"
    );
    for row in &comparison.rows {
        for metric in &row.metrics {
            let _ = writeln!(
                text,
                "{:<width$}  {:<10}  {:>14}  {:>14}  {:>9}  {:>9}  {}",
                row.label,
                column_name(metric.metric),
                format_value(metric.metric, metric.baseline),
                format_value(metric.metric, metric.candidate),
                format_change(metric),
                format_allowed(metric.metric, comparison.tolerances.get(metric.metric)),
                match metric.status {
                    Status::Ok => "ok",
                    Status::Better => "better",
                    Status::Regression => "REGRESSION",
                    Status::NotApplicable => "n/a",
                    Status::NotChecked => "-",
                }
            );
        }
    }
    for label in &comparison.missing {
        let _ = writeln!(
            text,
            "REGRESSION: {label} is in the baseline but missing from the candidate"
        );
    }
    for label in &comparison.added {
        let _ = writeln!(text, "new: {label} is in the candidate only (not compared)");
    }
    let regressions = comparison.regressions();
    let _ = match regressions {
        0 => writeln!(
            text,
            "\nresult: no regression ({} rows compared)",
            comparison.rows.len()
        ),
        n => writeln!(text, "\nresult: {n} regression(s)"),
    };
    text
}

fn column_name(metric: Metric) -> String {
    match metric {
        Metric::Throughput => "ops/s".to_string(),
        Metric::ErrorRate => "errors%".to_string(),
        other => format!("{}_us", other.name()),
    }
}

fn format_value(metric: Metric, value: f64) -> String {
    match metric {
        Metric::ErrorRate => format!("{value:.3}%"),
        _ if value.fract() == 0.0 => format!("{value:.0}"),
        _ => format!("{value:.1}"),
    }
}

fn format_change(metric: &MetricComparison) -> String {
    if metric.metric == Metric::ErrorRate {
        return format!("{:+.2}pp", metric.candidate - metric.baseline);
    }
    if metric.baseline <= 0.0 {
        return "-".to_string();
    }
    format!(
        "{:+.1}%",
        (metric.candidate - metric.baseline) / metric.baseline * 100.0
    )
}

fn format_allowed(metric: Metric, tolerance: Option<f64>) -> String {
    match (tolerance, metric) {
        (None, _) => "-".to_string(),
        (Some(t), Metric::ErrorRate) => format!("+{t}pp"),
        (Some(t), Metric::Throughput) => format!("-{}%", percent(t)),
        (Some(t), _) => format!("+{}%", percent(t)),
    }
}

/// A fraction as a percentage without binary-fraction noise (0.29 -> "29", not 28.999...).
fn percent(fraction: f64) -> f64 {
    (fraction * 100.0 * 1000.0).round() / 1000.0
}
