//! The human-readable summary table and the per-interval status line.

use crate::measure::{IntervalSnapshot, KindSnapshot, LatencySummary};
use std::fmt::Write as _;

/// Latency in milliseconds with microsecond resolution: one unit for every column, so the
/// eye can compare down a column without reading unit suffixes.
fn milliseconds(micros: f64) -> String {
    format!("{:.3}", micros / 1000.0)
}

/// One row per kind, plus an `Intended-KIND` row in open loop. Latencies in milliseconds.
pub fn summary_table(snapshot: &IntervalSnapshot) -> String {
    let mut table = String::new();
    let header = [
        "op", "count", "errors", "ops/s", "mean", "p50", "p90", "p99", "p99.9", "max",
    ];
    write_row(&mut table, &header.map(String::from));
    let units = [
        "", "", "", "", "(ms)", "(ms)", "(ms)", "(ms)", "(ms)", "(ms)",
    ];
    write_row(&mut table, &units.map(String::from));
    for kind in &snapshot.kinds {
        write_row(&mut table, &row(kind.kind.name(), kind, &kind.service));
        if let Some(intended) = &kind.intended {
            let name = format!("Intended-{}", kind.kind.name());
            write_row(&mut table, &row(&name, kind, intended));
        }
    }
    table
}

fn row(name: &str, kind: &KindSnapshot, latency: &LatencySummary) -> [String; 10] {
    [
        name.to_string(),
        kind.count.to_string(),
        kind.errors.to_string(),
        format!("{:.1}", kind.throughput_per_second),
        milliseconds(latency.mean_micros),
        milliseconds(latency.p50_micros as f64),
        milliseconds(latency.p90_micros as f64),
        milliseconds(latency.p99_micros as f64),
        milliseconds(latency.p999_micros as f64),
        milliseconds(latency.max_micros as f64),
    ]
}

/// Column widths: `READ-MODIFY-WRITE` plus the `Intended-` prefix fits the first.
const WIDTHS: [usize; 10] = [26, 11, 8, 11, 9, 9, 9, 9, 9, 9];

fn write_row(table: &mut String, cells: &[String; 10]) {
    let mut line = format!("{:<width$}", cells[0], width = WIDTHS[0]);
    for (cell, width) in cells[1..].iter().zip(&WIDTHS[1..]) {
        write!(line, " {cell:>width$}").expect("writing to a String");
    }
    table.push_str(line.trim_end());
    table.push('\n');
}

/// The line printed every interval: total and per-kind ops/s, each kind's p99 (intended p99
/// in open loop, since that is what a client on the schedule saw), errors.
pub fn status_line(snapshot: &IntervalSnapshot) -> String {
    let mut line = format!(
        "{:>6.1} s: {:.0} ops/s",
        snapshot.end_offset.as_secs_f64(),
        snapshot.throughput_per_second()
    );
    for kind in &snapshot.kinds {
        let (label, p99) = match &kind.intended {
            Some(intended) => ("intended p99", intended.p99_micros),
            None => ("p99", kind.service.p99_micros),
        };
        write!(
            line,
            " | {} {:.0} ops/s {label} {} ms",
            kind.kind.name(),
            kind.throughput_per_second,
            milliseconds(p99 as f64)
        )
        .expect("writing to a String");
    }
    write!(line, " | errors {}", snapshot.errors()).expect("writing to a String");
    if snapshot.warmup {
        line.push_str(" (warm-up)");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{HistogramSet, OperationKind, Outcome};
    use std::time::Duration;

    fn snapshot(warmup: bool) -> IntervalSnapshot {
        let mut set = HistogramSet::new();
        for micros in 1..=1000 {
            set.record(OperationKind::Read, Outcome::Ok, micros, None);
        }
        set.record(OperationKind::Update, Outcome::Ok, 1500, Some(2500));
        set.record(OperationKind::Update, Outcome::Error, 10, Some(20));
        IntervalSnapshot::of(&set, Duration::from_secs(4), Duration::from_secs(5), warmup)
    }

    /// 2500 µs reads back as 2501: above 2048 a 3-digit histogram's buckets are 2 µs wide,
    /// and percentiles report a bucket's highest value.
    #[test]
    fn table_has_fixed_columns_and_units() {
        let golden = "\
op                               count   errors       ops/s      mean       p50       p90       p99     p99.9       max
                                                                 (ms)      (ms)      (ms)      (ms)      (ms)      (ms)
READ                              1000        0      1000.0     0.500     0.500     0.900     0.990     1.000     1.000
UPDATE                               2        1         2.0     1.500     1.500     1.500     1.500     1.500     1.500
Intended-UPDATE                      2        1         2.0     2.501     2.501     2.501     2.501     2.501     2.501
";
        assert_eq!(summary_table(&snapshot(false)), golden);
    }

    #[test]
    fn status_line_shows_rates_tails_and_errors() {
        assert_eq!(
            status_line(&snapshot(false)),
            "   5.0 s: 1002 ops/s | READ 1000 ops/s p99 0.990 ms \
             | UPDATE 2 ops/s intended p99 2.501 ms | errors 1"
        );
        assert!(status_line(&snapshot(true)).ends_with("errors 1 (warm-up)"));
    }
}
