//! `sweep.csv`: one row per cell, the cell's parameters then its figures, read from the
//! cell's run directory (`summary.csv`, `staleness.csv`), so a cell run against `--hosts`
//! or on the embedded cluster reports alike.
//!
//! Columns: `cell` (the cell's key), `index`, `label`, `status` (`complete` or
//! `failed: ...`), the axes of [`super::grid::AXES`], then
//! `throughput_ops_per_second`, `operations`, `errors`, for each operation kind
//! `<op>_p50_ms`, `<op>_p90_ms`, `<op>_p99_ms`, `<op>_p999_ms` (empty when the kind did not
//! run), then staleness: `reads_checked`, `stale_reads`, `stale_fraction`, `k_mean` and
//! `k_max` (versions behind, over stale reads), `t_visibility_99_ms` (the upper edge of the
//! first t-visibility bucket from which every bucket saw the latest write in at least 99% of
//! reads), and `run_dir`.

use super::grid::{Cell, AXES};
use crate::report::staleness_csv::STALENESS_CSV_NAME;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The file's name in a sweep directory.
pub const SWEEP_CSV_NAME: &str = "sweep.csv";

/// YCSB measurement names and their column prefixes.
pub const OPS: [(&str, &str); 5] = [
    ("READ", "read"),
    ("UPDATE", "update"),
    ("INSERT", "insert"),
    ("SCAN", "scan"),
    ("READ-MODIFY-WRITE", "rmw"),
];

const PERCENTILES: [(&str, &str); 4] = [
    ("p50_us", "p50_ms"),
    ("p90_us", "p90_ms"),
    ("p99_us", "p99_ms"),
    ("p999_us", "p999_ms"),
];

/// The header of `sweep.csv`.
pub fn header() -> Vec<String> {
    let mut columns: Vec<String> = ["cell", "index", "label", "status"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    columns.extend(AXES.iter().map(|s| s.to_string()));
    columns.extend(
        ["throughput_ops_per_second", "operations", "errors"]
            .iter()
            .map(|s| s.to_string()),
    );
    for (_, prefix) in OPS {
        for (_, suffix) in PERCENTILES {
            columns.push(format!("{prefix}_{suffix}"));
        }
    }
    columns.extend(
        [
            "reads_checked",
            "stale_reads",
            "stale_fraction",
            "k_mean",
            "k_max",
            "t_visibility_99_ms",
            "run_dir",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    columns
}

/// A row by column name.
pub type Row = BTreeMap<String, String>;

fn read_csv(path: &Path) -> Result<Vec<Row>> {
    let mut reader = csv::Reader::from_path(path).map_err(|source| Error::Csv {
        path: path.to_path_buf(),
        source,
    })?;
    let header = reader
        .headers()
        .map_err(|source| Error::Csv {
            path: path.to_path_buf(),
            source,
        })?
        .clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|source| Error::Csv {
            path: path.to_path_buf(),
            source,
        })?;
        rows.push(
            header
                .iter()
                .zip(record.iter())
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        );
    }
    Ok(rows)
}

/// Every row of a CSV file with a header, by column name.
pub fn read_rows(path: &Path) -> Result<Vec<Row>> {
    read_csv(path)
}

/// The figures of one run directory, as `sweep.csv` columns.
pub fn run_figures(run_dir: &Path) -> Result<Row> {
    let summary = read_csv(&run_dir.join("summary.csv"))?;
    let mut row = Row::new();
    let number = |row: &Row, column: &str| -> f64 {
        row.get(column)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let (mut throughput, mut operations, mut errors) = (0.0, 0.0, 0.0);
    for line in summary.iter().filter(|line| {
        line.get("op")
            .is_some_and(|op| !op.starts_with("Intended-"))
    }) {
        throughput += number(line, "throughput_ops_per_second");
        operations += number(line, "count");
        errors += number(line, "errors");
    }
    row.insert(
        "throughput_ops_per_second".into(),
        format!("{throughput:.1}"),
    );
    row.insert("operations".into(), format!("{operations:.0}"));
    row.insert("errors".into(), format!("{errors:.0}"));
    for (op, prefix) in OPS {
        // In open loop the intended latency is what a client on the schedule saw.
        let line = summary
            .iter()
            .find(|line| line.get("op").map(String::as_str) == Some(&format!("Intended-{op}")))
            .or_else(|| {
                summary
                    .iter()
                    .find(|line| line.get("op").map(String::as_str) == Some(op))
            });
        if let Some(line) = line {
            for (micros, millis) in PERCENTILES {
                row.insert(
                    format!("{prefix}_{millis}"),
                    format!("{:.3}", number(line, micros) / 1000.0),
                );
            }
        }
    }
    let staleness = run_dir.join(STALENESS_CSV_NAME);
    if staleness.is_file() {
        staleness_figures(&read_csv(&staleness)?, &mut row);
    }
    row.insert("run_dir".into(), run_dir.display().to_string());
    Ok(row)
}

fn staleness_figures(lines: &[Row], row: &mut Row) {
    let get = |line: &Row, column: &str| {
        line.get(column)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    fn of<'a>(lines: &'a [Row], kind: &'a str) -> impl Iterator<Item = &'a Row> + 'a {
        lines
            .iter()
            .filter(move |line| line.get("row").map(String::as_str) == Some(kind))
    }
    if let Some(total) = of(lines, "total").next() {
        let checked = get(total, "reads");
        let stale = get(total, "stale_reads");
        row.insert("reads_checked".into(), format!("{checked:.0}"));
        row.insert("stale_reads".into(), format!("{stale:.0}"));
        let fraction = if checked > 0.0 { stale / checked } else { 0.0 };
        row.insert("stale_fraction".into(), format!("{fraction:.6}"));
    }
    let (mut weighted, mut count, mut max) = (0.0, 0.0, 0.0f64);
    for line in of(lines, "k") {
        let (k, n) = (get(line, "k"), get(line, "stale_reads"));
        weighted += k * n;
        count += n;
        if n > 0.0 {
            max = max.max(k);
        }
    }
    if count > 0.0 {
        row.insert("k_mean".into(), format!("{:.3}", weighted / count));
        row.insert("k_max".into(), format!("{max:.0}"));
    }
    let buckets: Vec<(f64, f64, f64)> = of(lines, "visibility")
        .map(|line| {
            let to = line
                .get("t_ms_to")
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::INFINITY);
            (to, get(line, "reads"), get(line, "fresh_fraction"))
        })
        .collect();
    if !buckets.is_empty() {
        // The first bucket after the last one under 99% (buckets without reads say nothing).
        let last_bad = buckets
            .iter()
            .rposition(|(_, reads, fresh)| *reads > 0.0 && *fresh < 0.99);
        let edge = match last_bad {
            None => 0.0,
            Some(at) => buckets[at].0,
        };
        row.insert("t_visibility_99_ms".into(), format!("{edge}"));
    }
}

/// The row of a cell: its parameters and `figures` (empty for a failed cell).
pub fn cell_row(cell: &Cell, status: &str, figures: &Row) -> Row {
    let mut row = figures.clone();
    row.insert("cell".into(), cell.key());
    row.insert("index".into(), cell.index.to_string());
    row.insert("label".into(), cell.label());
    row.insert("status".into(), status.to_string());
    for (axis, value) in cell.params() {
        row.insert(axis.to_string(), value);
    }
    row
}

/// Writes `rows` as a whole `sweep.csv` (header first) to `path`, through a temporary file
/// and a rename so an interruption leaves the old file or the new one.
pub fn write_sweep_csv(path: &Path, rows: &[Row]) -> Result<()> {
    let columns = header();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_error = |source| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    writer.write_record(&columns).map_err(csv_error)?;
    for row in rows {
        let record: Vec<&str> = columns
            .iter()
            .map(|column| row.get(column).map_or("", String::as_str))
            .collect();
        writer.write_record(&record).map_err(csv_error)?;
    }
    let bytes = writer.into_inner().map_err(|error| Error::Io {
        context: path.display().to_string(),
        source: error.into_error(),
    })?;
    let temporary = path.with_extension("csv.tmp");
    let io_error = |source| Error::Io {
        context: path.display().to_string(),
        source,
    };
    std::fs::write(&temporary, bytes).map_err(io_error)?;
    std::fs::rename(&temporary, path).map_err(io_error)
}
