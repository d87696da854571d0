//! `summary.csv` (one row per measurement) and `intervals.csv` (one row per measurement per
//! interval), for spreadsheets and plotting scripts.
//!
//! A measurement is an operation kind (`READ`) or, in open loop, its intended latency
//! (`Intended-READ`), named as in YCSB's output. Latencies are integer microseconds except the
//! mean; throughput counts every operation, failed or not. `summary.csv` ends with the run's
//! configuration, one column per key, the same value on every row, so that summaries of many
//! runs concatenate into one table.

use crate::measure::{IntervalSnapshot, KindSnapshot, LatencySummary};
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// The metric columns of both CSVs, in order (after `op`, and `interval` in the time series);
/// `kvbench compare` reads summaries by them.
pub const LATENCY_COLUMNS: [&str; 9] = [
    "count",
    "errors",
    "throughput_ops_per_second",
    "mean_us",
    "p50_us",
    "p90_us",
    "p99_us",
    "p999_us",
    "max_us",
];

/// Rows per kind: the service-latency row, then the intended one if any.
fn measurements(snapshot: &IntervalSnapshot) -> Vec<(String, &KindSnapshot, &LatencySummary)> {
    let mut rows = Vec::new();
    for kind in &snapshot.kinds {
        rows.push((kind.kind.name().to_string(), kind, &kind.service));
        if let Some(intended) = &kind.intended {
            rows.push((format!("Intended-{}", kind.kind.name()), kind, intended));
        }
    }
    rows
}

fn latency_cells(kind: &KindSnapshot, latency: &LatencySummary) -> [String; 9] {
    [
        kind.count.to_string(),
        kind.errors.to_string(),
        format!("{:.3}", kind.throughput_per_second),
        format!("{:.3}", latency.mean_micros),
        latency.p50_micros.to_string(),
        latency.p90_micros.to_string(),
        latency.p99_micros.to_string(),
        latency.p999_micros.to_string(),
        latency.max_micros.to_string(),
    ]
}

/// Writes `summary.csv` for the measured part of a run.
pub fn write_summary_csv<W: Write>(
    out: W,
    run: &IntervalSnapshot,
    config: &[(String, String)],
) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let mut header = vec!["op"];
    header.extend(LATENCY_COLUMNS);
    header.extend(config.iter().map(|(key, _)| key.as_str()));
    writer.write_record(&header)?;
    for (name, kind, latency) in measurements(run) {
        let mut record = vec![name];
        record.extend(latency_cells(kind, latency));
        record.extend(config.iter().map(|(_, value)| value.clone()));
        writer.write_record(&record)?;
    }
    writer.flush()?;
    Ok(())
}

/// Writes `intervals.csv`: offsets in seconds from the run start, `warmup` 1 for intervals
/// that count in no total.
pub fn write_intervals_csv<W: Write>(out: W, intervals: &[IntervalSnapshot]) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let mut header = vec!["start_s", "end_s", "warmup", "op"];
    header.extend(LATENCY_COLUMNS);
    writer.write_record(&header)?;
    for interval in intervals {
        let times = [
            format!("{:.3}", interval.start_offset.as_secs_f64()),
            format!("{:.3}", interval.end_offset.as_secs_f64()),
            u8::from(interval.warmup).to_string(),
        ];
        for (name, kind, latency) in measurements(interval) {
            let mut record = times.to_vec();
            record.push(name);
            record.extend(latency_cells(kind, latency));
            writer.write_record(&record)?;
        }
    }
    writer.flush()?;
    Ok(())
}

/// Creates `path` and writes it with `write`, naming the file in any error.
pub(crate) fn write_csv_file(
    path: &Path,
    write: impl FnOnce(std::io::BufWriter<std::fs::File>) -> csv::Result<()>,
) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|source| Error::Io {
        context: path.display().to_string(),
        source,
    })?;
    write(std::io::BufWriter::new(file)).map_err(|source| Error::Csv {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{HistogramSet, OperationKind, Outcome};
    use std::time::Duration;

    fn snapshot(start_seconds: u64, warmup: bool) -> IntervalSnapshot {
        let mut set = HistogramSet::new();
        for micros in [100, 200, 300, 400] {
            set.record(
                OperationKind::Read,
                Outcome::Ok,
                micros,
                Some(micros + 1000),
            );
        }
        set.record(OperationKind::Read, Outcome::Timeout, 9000, Some(9000));
        let start = Duration::from_secs(start_seconds);
        IntervalSnapshot::of(&set, start, start + Duration::from_secs(2), warmup)
    }

    #[test]
    fn summary_csv_header_and_rows_are_golden() {
        let config = [
            ("workload".to_string(), "a".to_string()),
            ("target".to_string(), "1,000".to_string()),
        ];
        let mut out = Vec::new();
        write_summary_csv(&mut out, &snapshot(0, false), &config).unwrap();
        let golden = "\
op,count,errors,throughput_ops_per_second,mean_us,p50_us,p90_us,p99_us,p999_us,max_us,workload,target
READ,5,1,2.500,250.000,200,400,400,400,400,a,\"1,000\"
Intended-READ,5,1,2.500,1250.000,1200,1400,1400,1400,1400,a,\"1,000\"
";
        assert_eq!(String::from_utf8(out).unwrap(), golden);
    }

    #[test]
    fn intervals_csv_header_and_rows_are_golden() {
        let mut out = Vec::new();
        write_intervals_csv(&mut out, &[snapshot(0, true), snapshot(2, false)]).unwrap();
        let golden = "\
start_s,end_s,warmup,op,count,errors,throughput_ops_per_second,mean_us,p50_us,p90_us,p99_us,p999_us,max_us
0.000,2.000,1,READ,5,1,2.500,250.000,200,400,400,400,400
0.000,2.000,1,Intended-READ,5,1,2.500,1250.000,1200,1400,1400,1400,1400
2.000,4.000,0,READ,5,1,2.500,250.000,200,400,400,400,400
2.000,4.000,0,Intended-READ,5,1,2.500,1250.000,1200,1400,1400,1400,1400
";
        assert_eq!(String::from_utf8(out).unwrap(), golden);
    }
}
