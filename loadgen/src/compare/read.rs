//! Reading `summary.csv` back.

use crate::{Error, Result};
use std::path::Path;

/// The metric columns every summary has, in order, after `op`.
use crate::report::csv_files::LATENCY_COLUMNS as METRIC_COLUMNS;

/// Largest summary accepted: far above any sweep's, small enough to read into memory.
const SUMMARY_BYTES_MAX: u64 = 64 << 20;

/// One row of a summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    pub op: String,
    pub count: u64,
    pub errors: u64,
    pub throughput_ops_per_second: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// The configuration columns' values, in the table's column order.
    pub config: Vec<String>,
    config_columns: std::sync::Arc<[String]>,
}

impl SummaryRow {
    /// The value of configuration column `column` ("" if absent).
    pub fn config_value(&self, column: &str) -> &str {
        self.config_columns
            .iter()
            .position(|c| c == column)
            .and_then(|at| self.config.get(at))
            .map_or("", String::as_str)
    }
}

/// A parsed `summary.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryTable {
    /// Configuration columns (after the metric columns).
    pub config_columns: Vec<String>,
    pub rows: Vec<SummaryRow>,
}

fn bad(path: &Path, detail: String) -> Error {
    Error::CompareInput {
        path: path.to_path_buf(),
        detail,
    }
}

/// Reads and checks a summary file.
pub fn read_summary(path: &Path) -> Result<SummaryTable> {
    let size = std::fs::metadata(path)
        .map_err(|error| bad(path, format!("cannot read: {error}")))?
        .len();
    if size > SUMMARY_BYTES_MAX {
        return Err(bad(
            path,
            format!("{size} bytes is over the {SUMMARY_BYTES_MAX}-byte limit"),
        ));
    }
    let text = std::fs::read(path).map_err(|error| bad(path, format!("cannot read: {error}")))?;
    parse_summary(&text).map_err(|detail| bad(path, detail))
}

/// Parses summary CSV text; errors name the line and column.
pub fn parse_summary(text: &[u8]) -> std::result::Result<SummaryTable, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text);
    let header: Vec<String> = reader
        .headers()
        .map_err(|error| format!("header: {error}"))?
        .iter()
        .map(|cell| cell.trim().to_string())
        .collect();
    if header.first().map(String::as_str) != Some("op") {
        return Err("not a kvbench summary.csv: the first column must be 'op'".to_string());
    }
    for (index, expected) in METRIC_COLUMNS.iter().enumerate() {
        match header.get(index + 1) {
            Some(column) if column == expected => {}
            Some(column) => {
                return Err(format!(
                    "column {} is '{column}', expected '{expected}'",
                    index + 2
                ))
            }
            None => return Err(format!("column '{expected}' is missing")),
        }
    }
    let config_columns: Vec<String> = header[METRIC_COLUMNS.len() + 1..].to_vec();
    let shared: std::sync::Arc<[String]> = config_columns.clone().into();
    let mut rows: Vec<SummaryRow> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|error| error.to_string())?;
        let line = record.position().map_or(0, |p| p.line());
        // A repeated header (summaries concatenated with `cat`) is skipped.
        if record.get(0) == Some("op") {
            continue;
        }
        let cell = |index: usize| record.get(index).unwrap_or("").trim();
        let number = |index: usize| -> std::result::Result<f64, String> {
            let text = cell(index);
            match text.parse::<f64>() {
                Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
                _ => Err(format!(
                    "line {line}, column '{}': '{text}' is not a non-negative number",
                    header[index]
                )),
            }
        };
        let integer = |index: usize| -> std::result::Result<u64, String> {
            cell(index).parse::<u64>().map_err(|_| {
                format!(
                    "line {line}, column '{}': '{}' is not a count",
                    header[index],
                    cell(index)
                )
            })
        };
        let op = cell(0).to_string();
        if op.is_empty() {
            return Err(format!("line {line}: empty op"));
        }
        let row = SummaryRow {
            op,
            count: integer(1)?,
            errors: integer(2)?,
            throughput_ops_per_second: number(3)?,
            mean_us: number(4)?,
            p50_us: number(5)?,
            p90_us: number(6)?,
            p99_us: number(7)?,
            p999_us: number(8)?,
            max_us: number(9)?,
            config: (METRIC_COLUMNS.len() + 1..header.len())
                .map(|index| cell(index).to_string())
                .collect(),
            config_columns: shared.clone(),
        };
        if row.errors > row.count {
            return Err(format!(
                "line {line}: errors {} exceed count {}",
                row.errors, row.count
            ));
        }
        if rows
            .iter()
            .any(|other| other.op == row.op && other.config == row.config)
        {
            return Err(format!(
                "line {line}: a second '{}' row with the same configuration; rows must be \
                 distinguishable by op and configuration columns",
                row.op
            ));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err("no rows".to_string());
    }
    Ok(SummaryTable {
        config_columns,
        rows,
    })
}
