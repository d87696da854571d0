//! YCSB's end-of-run text summary, line for line, so that existing YCSB parsers and plots
//! read kvbench's output unchanged.
//!
//! What YCSB prints (core `site.ycsb`), and what this reproduces:
//! - `Client.exportMeasurements`: `[OVERALL], RunTime(ms), <long>` then
//!   `[OVERALL], Throughput(ops/sec), <double>` with throughput = 1000.0 * operations / run
//!   time in ms. (The JVM garbage-collection lines that follow in YCSB have no counterpart.)
//! - `TextMeasurementsExporter.write`: `"[" + metric + "], " + measurement + ", " + value`,
//!   with Java's `Long.toString` or `Double.toString` for the value (see [`java_double`]).
//! - `OneMeasurementHdrHistogram.exportMeasurements`, per measurement: `Operations`,
//!   `AverageLatency(us)` (double), `MinLatency(us)`, `MaxLatency(us)`, one
//!   `<ordinal>PercentileLatency(us)` per `hdrhistogram.percentiles` (default `95,99`), then
//!   `OneMeasurement.exportStatusCounts`: `Return=<Status name>, <count>`.
//! - `DBWrapper.measure` names a failed operation's measurement `<OP>-FAILED`, so failures
//!   get their own section; with `measurement.interval=both` (open loop) the intended-latency
//!   measurements are `Intended-<OP>` and the return codes are reported on the plain ones only.
//! - `Measurements.exportMeasurements` lists the plain measurements, then the intended ones;
//!   YCSB's order inside each group is a hash map's, here it is [`OperationKind::ALL`]'s.

use crate::measure::{HistogramSet, OperationKind, Outcome};
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::time::Duration;

/// YCSB's default `hdrhistogram.percentiles`.
pub const YCSB_DEFAULT_PERCENTILES: [f64; 2] = [95.0, 99.0];

/// The text YCSB prints at the end of a run, for `totals` measured over `runtime`.
pub fn ycsb_text(runtime: Duration, totals: &HistogramSet, percentiles: &[f64]) -> String {
    let mut text = String::new();
    let runtime_ms = runtime.as_millis() as u64;
    let throughput = 1000.0 * totals.operations() as f64 / runtime_ms as f64;
    write_line(&mut text, "OVERALL", "RunTime(ms)", &runtime_ms.to_string());
    write_line(
        &mut text,
        "OVERALL",
        "Throughput(ops/sec)",
        &java_double(throughput),
    );

    for kind in OperationKind::ALL {
        let histograms = totals.kind(kind);
        let ok = [(Outcome::Ok, histograms.outcomes[Outcome::Ok.index()])];
        let failed: Vec<(Outcome, u64)> = Outcome::ALL
            .into_iter()
            .filter(|outcome| !outcome.is_ok())
            .map(|outcome| (outcome, histograms.outcomes[outcome.index()]))
            .collect();
        let name = kind.name();
        write_measurement(&mut text, name, &histograms.service, percentiles, &ok);
        let failed_name = format!("{name}-FAILED");
        write_measurement(
            &mut text,
            &failed_name,
            &histograms.failed_service,
            percentiles,
            &failed,
        );
    }
    for kind in OperationKind::ALL {
        let histograms = totals.kind(kind);
        let name = format!("Intended-{}", kind.name());
        write_measurement(&mut text, &name, &histograms.intended, percentiles, &[]);
        let failed_name = format!("{name}-FAILED");
        write_measurement(
            &mut text,
            &failed_name,
            &histograms.failed_intended,
            percentiles,
            &[],
        );
    }
    text
}

/// One measurement's section; nothing for an empty histogram, as YCSB creates a measurement
/// only when an operation is measured under its name.
fn write_measurement(
    text: &mut String,
    name: &str,
    histogram: &Histogram<u64>,
    percentiles: &[f64],
    return_counts: &[(Outcome, u64)],
) {
    if histogram.is_empty() {
        return;
    }
    write_line(text, name, "Operations", &histogram.len().to_string());
    write_line(
        text,
        name,
        "AverageLatency(us)",
        &java_double(histogram.mean()),
    );
    write_line(text, name, "MinLatency(us)", &histogram.min().to_string());
    write_line(text, name, "MaxLatency(us)", &histogram.max().to_string());
    for &percentile in percentiles {
        let value = histogram.value_at_percentile(percentile);
        let measurement = format!("{}PercentileLatency(us)", ordinal(percentile));
        write_line(text, name, &measurement, &value.to_string());
    }
    for &(outcome, count) in return_counts.iter().filter(|(_, count)| *count > 0) {
        write_line(
            text,
            name,
            &format!("Return={}", outcome.name()),
            &count.to_string(),
        );
    }
}

fn write_line(text: &mut String, metric: &str, measurement: &str, value: &str) {
    writeln!(text, "[{metric}], {measurement}, {value}").expect("writing to a String");
}

/// YCSB's `ordinal`: `95` → `95th`, `1` → `1st`, `12` → `12th`; a fractional percentile is
/// Java's `Double.toString` of it (`99.9`).
pub fn ordinal(percentile: f64) -> String {
    if percentile.fract() != 0.0 {
        return java_double(percentile);
    }
    let whole = percentile as i64;
    let suffix = match (whole % 100, whole % 10) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    };
    format!("{whole}{suffix}")
}

/// Java's `Double.toString`: the shortest digits that round-trip (as Rust's `Display`, and as
/// Java since JDK 19), always with a fractional part (`10.0`), and in computerized scientific
/// notation (`1.0E7`, `1.5E-4`) outside [1e-3, 1e7).
pub fn java_double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let magnitude = value.abs();
    if value == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let plain = value.to_string();
        return if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        };
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always has an exponent");
    if mantissa.contains('.') {
        format!("{mantissa}E{exponent}")
    } else {
        format!("{mantissa}.0E{exponent}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_doubles_print_as_java_does() {
        assert_eq!(java_double(98.91196834817013), "98.91196834817013");
        assert_eq!(java_double(10.0), "10.0");
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(0.0001), "1.0E-4");
        assert_eq!(java_double(0.00015), "1.5E-4");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(12_345_678.5), "1.23456785E7");
        assert_eq!(java_double(9_999_999.0), "9999999.0");
        assert_eq!(java_double(f64::NAN), "NaN");
    }

    #[test]
    fn ordinals_follow_ycsb() {
        assert_eq!(ordinal(95.0), "95th");
        assert_eq!(ordinal(99.0), "99th");
        assert_eq!(ordinal(1.0), "1st");
        assert_eq!(ordinal(2.0), "2nd");
        assert_eq!(ordinal(3.0), "3rd");
        assert_eq!(ordinal(11.0), "11th");
        assert_eq!(ordinal(99.9), "99.9");
    }

    #[test]
    fn text_matches_ycsb_golden_output() {
        let mut totals = HistogramSet::new();
        for micros in 1..=500 {
            totals.record(OperationKind::Read, Outcome::Ok, micros, Some(micros + 100));
        }
        totals.record(OperationKind::Read, Outcome::NotFound, 42, Some(142));
        for micros in [100, 200, 300, 400] {
            totals.record(OperationKind::Update, Outcome::Ok, micros, Some(micros));
        }
        let text = ycsb_text(
            Duration::from_millis(10_110),
            &totals,
            &YCSB_DEFAULT_PERCENTILES,
        );
        // The mean is the sum of bucket midpoints over the count in f64, as Java's `getMean`,
        // hence the rounding residue in Intended-READ's.
        let golden = "\
[OVERALL], RunTime(ms), 10110
[OVERALL], Throughput(ops/sec), 49.95054401582591
[READ], Operations, 500
[READ], AverageLatency(us), 250.5
[READ], MinLatency(us), 1
[READ], MaxLatency(us), 500
[READ], 95thPercentileLatency(us), 475
[READ], 99thPercentileLatency(us), 495
[READ], Return=OK, 500
[READ-FAILED], Operations, 1
[READ-FAILED], AverageLatency(us), 42.0
[READ-FAILED], MinLatency(us), 42
[READ-FAILED], MaxLatency(us), 42
[READ-FAILED], 95thPercentileLatency(us), 42
[READ-FAILED], 99thPercentileLatency(us), 42
[READ-FAILED], Return=NOT_FOUND, 1
[UPDATE], Operations, 4
[UPDATE], AverageLatency(us), 250.0
[UPDATE], MinLatency(us), 100
[UPDATE], MaxLatency(us), 400
[UPDATE], 95thPercentileLatency(us), 400
[UPDATE], 99thPercentileLatency(us), 400
[UPDATE], Return=OK, 4
[Intended-READ], Operations, 500
[Intended-READ], AverageLatency(us), 350.49999999999994
[Intended-READ], MinLatency(us), 101
[Intended-READ], MaxLatency(us), 600
[Intended-READ], 95thPercentileLatency(us), 575
[Intended-READ], 99thPercentileLatency(us), 595
[Intended-READ-FAILED], Operations, 1
[Intended-READ-FAILED], AverageLatency(us), 142.0
[Intended-READ-FAILED], MinLatency(us), 142
[Intended-READ-FAILED], MaxLatency(us), 142
[Intended-READ-FAILED], 95thPercentileLatency(us), 142
[Intended-READ-FAILED], 99thPercentileLatency(us), 142
[Intended-UPDATE], Operations, 4
[Intended-UPDATE], AverageLatency(us), 250.0
[Intended-UPDATE], MinLatency(us), 100
[Intended-UPDATE], MaxLatency(us), 400
[Intended-UPDATE], 95thPercentileLatency(us), 400
[Intended-UPDATE], 99thPercentileLatency(us), 400
";
        assert_eq!(text, golden);
    }
}
