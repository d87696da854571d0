//! The consistency trade-off table a sweep prints at its end: one line per cell, throughput,
//! read and update (or insert) latency, errors and staleness side by side.

use super::results::Row;
use std::fmt::Write;

/// The table of `rows` (rows of `sweep.csv`).
pub fn tradeoff_table(rows: &[Row]) -> String {
    let get = |row: &Row, column: &str| row.get(column).cloned().unwrap_or_default();
    let or_dash = |text: String| {
        if text.is_empty() {
            "-".to_string()
        } else {
            text
        }
    };
    // The write column: updates if the workload has them, else inserts.
    let write_op = if rows.iter().any(|row| !get(row, "update_p50_ms").is_empty()) {
        "update"
    } else {
        "insert"
    };
    let label_width = rows
        .iter()
        .map(|row| get(row, "label").len())
        .chain([7])
        .max()
        .unwrap_or(7);
    let mut table = String::new();
    let header = [
        "ops/s",
        "read p50",
        "read p99",
        &format!("{write_op} p50"),
        &format!("{write_op} p99"),
        "errors",
        "stale",
        "k mean",
        "t99 (ms)",
    ]
    .map(|s| s.to_string());
    let _ = write!(table, "{:<label_width$}", "setting");
    for cell in &header {
        let _ = write!(table, " {cell:>10}");
    }
    table.push('\n');
    let _ = write!(table, "{:<label_width$}", "");
    for unit in ["", "(ms)", "(ms)", "(ms)", "(ms)", "", "", "", ""] {
        let _ = write!(table, " {unit:>10}");
    }
    table = table.trim_end().to_string();
    table.push('\n');
    for row in rows {
        let _ = write!(table, "{:<label_width$}", get(row, "label"));
        let status = get(row, "status");
        if status != "complete" {
            let _ = writeln!(table, " {status}");
            continue;
        }
        let stale = match get(row, "stale_fraction").parse::<f64>() {
            Ok(fraction) => format!("{:.3}%", fraction * 100.0),
            Err(_) => "-".to_string(),
        };
        let throughput = get(row, "throughput_ops_per_second")
            .parse::<f64>()
            .map_or("-".to_string(), |t| format!("{t:.0}"));
        let cells = [
            throughput,
            or_dash(get(row, "read_p50_ms")),
            or_dash(get(row, "read_p99_ms")),
            or_dash(get(row, &format!("{write_op}_p50_ms"))),
            or_dash(get(row, &format!("{write_op}_p99_ms"))),
            or_dash(get(row, "errors")),
            stale,
            or_dash(get(row, "k_mean")),
            or_dash(get(row, "t_visibility_99_ms")),
        ];
        for cell in &cells {
            let _ = write!(table, " {cell:>10}");
        }
        table.push('\n');
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_line_per_cell_with_its_figures() {
        let mut row = Row::new();
        for (k, v) in [
            ("label", "QUORUM"),
            ("status", "complete"),
            ("throughput_ops_per_second", "5309.4"),
            ("read_p50_ms", "5.000"),
            ("read_p99_ms", "16.800"),
            ("update_p50_ms", "5.100"),
            ("update_p99_ms", "17.100"),
            ("errors", "0"),
            ("stale_fraction", "0.000125"),
        ] {
            row.insert(k.into(), v.into());
        }
        let mut failed = Row::new();
        failed.insert("label".into(), "ALL".into());
        failed.insert("status".into(), "failed: boom".into());
        let table = tradeoff_table(&[row, failed]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].contains("update p99"), "{table}");
        assert!(lines[2].starts_with("QUORUM"), "{table}");
        assert!(
            lines[2].contains("5309") && lines[2].contains("0.013%"),
            "{table}"
        );
        assert!(lines[3].contains("failed: boom"), "{table}");
    }
}
