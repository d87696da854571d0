//! Per-thread statistics and db_bench's report lines.
//!
//! db_bench's `Stats::Report` (tools/db_bench_tool.cc) prints
//! `"%-12s : %11.3f micros/op %ld ops/sec %.3f seconds %" PRIu64 " operations;%s%s\n"`
//! with: micros/op = sum of the threads' elapsed seconds * 1e6 / operations (so it is per
//! thread), ops/sec = operations / wall-clock elapsed (first thread start to last thread
//! finish), and the extra text = `"%6.1f MB/s"` when any bytes were counted, then the
//! benchmark's message (`"(F of N found)\n"` for reads, newline included, so a blank line
//! follows) joined with one space. Times are whole microseconds, as db_bench's
//! `NowMicros()`. Both tools' lines therefore parse the same way.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

/// What an operation was, for latency histograms (db_bench's `OperationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OperationKind {
    Read,
    Write,
    Delete,
    Seek,
}

impl OperationKind {
    fn name(self) -> &'static str {
        match self {
            OperationKind::Read => "read",
            OperationKind::Write => "write",
            OperationKind::Delete => "delete",
            OperationKind::Seek => "seek",
        }
    }
}

/// A monotonic microsecond clock shared by every thread of one run.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            epoch: Instant::now(),
        }
    }
    /// Microseconds since the clock was made.
    pub fn now_micros(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
    fn now_nanos(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// One thread's counters for one benchmark, or several threads' merged.
pub struct Stats {
    clock: Clock,
    start_micros: u64,
    finish_micros: u64,
    /// Sum over threads of each thread's elapsed seconds.
    seconds: f64,
    pub done: u64,
    pub bytes: u64,
    message: String,
    histograms: Option<BTreeMap<OperationKind, Histogram<u64>>>,
    last_op_finish_nanos: u64,
}

const HISTOGRAM_HIGHEST_NANOS: u64 = 3_600 * 1_000_000_000;

impl Stats {
    /// Starts the clock for one thread; `histogram` records each operation's latency.
    pub fn start(clock: Clock, histogram: bool) -> Stats {
        let now = clock.now_micros();
        Stats {
            clock,
            start_micros: now,
            finish_micros: now,
            seconds: 0.0,
            done: 0,
            bytes: 0,
            message: String::new(),
            histograms: histogram.then(BTreeMap::new),
            last_op_finish_nanos: clock.now_nanos(),
        }
    }

    /// Counts `count` finished operations; with histograms on, records the time since the
    /// previous one finished (db_bench's `FinishedOps`).
    #[inline]
    pub fn finished_ops(&mut self, count: u64, kind: OperationKind) {
        if let Some(histograms) = self.histograms.as_mut() {
            let now = self.clock.now_nanos();
            let latency = now.saturating_sub(self.last_op_finish_nanos).max(1);
            histograms
                .entry(kind)
                .or_insert_with(|| {
                    Histogram::new_with_bounds(1, HISTOGRAM_HIGHEST_NANOS, 3)
                        .expect("valid histogram bounds")
                })
                .saturating_record(latency);
            self.last_op_finish_nanos = now;
        }
        self.done += count;
    }

    pub fn add_bytes(&mut self, bytes: u64) {
        self.bytes += bytes;
    }

    /// Appends to the message, space-separated.
    pub fn add_message(&mut self, message: &str) {
        if message.is_empty() {
            return;
        }
        if !self.message.is_empty() {
            self.message.push(' ');
        }
        self.message.push_str(message);
    }

    pub fn stop(&mut self) {
        self.finish_micros = self.clock.now_micros();
        self.seconds = (self.finish_micros - self.start_micros) as f64 * 1e-6;
    }

    /// Folds another thread's stats into these (db_bench's `Stats::Merge`).
    pub fn merge(&mut self, other: Stats) {
        self.done += other.done;
        self.bytes += other.bytes;
        self.seconds += other.seconds;
        self.start_micros = self.start_micros.min(other.start_micros);
        self.finish_micros = self.finish_micros.max(other.finish_micros);
        if self.message.is_empty() {
            self.message = other.message;
        }
        if let (Some(mine), Some(theirs)) = (self.histograms.as_mut(), other.histograms) {
            for (kind, histogram) in theirs {
                match mine.get_mut(&kind) {
                    Some(existing) => existing.add(&histogram).expect("same histogram bounds"),
                    None => {
                        mine.insert(kind, histogram);
                    }
                }
            }
        }
    }

    /// Wall-clock seconds from the first start to the last finish.
    pub fn elapsed_seconds(&self) -> f64 {
        // At least one microsecond: db_bench divides by it.
        (self.finish_micros - self.start_micros).max(1) as f64 * 1e-6
    }

    /// The report line (and histograms), exactly as db_bench prints them.
    pub fn report(&self, name: &str) -> String {
        let done = self.done.max(1);
        let elapsed = self.elapsed_seconds();
        let mut extra = String::new();
        if self.bytes > 0 {
            extra = format!("{:6.1} MB/s", (self.bytes as f64 / 1_048_576.0) / elapsed);
        }
        if !self.message.is_empty() {
            if !extra.is_empty() {
                extra.push(' ');
            }
            extra.push_str(&self.message);
        }
        let mut out = format_report_line(
            name,
            self.seconds * 1e6 / done as f64,
            (done as f64 / elapsed) as i64,
            elapsed,
            done,
            &extra,
        );
        if let Some(histograms) = &self.histograms {
            for (kind, histogram) in histograms {
                let _ = writeln!(out, "Microseconds per {}:", kind.name());
                out.push_str(&format_histogram(histogram));
                out.push('\n');
            }
        }
        out
    }
}

/// One db_bench result line, newline included.
pub fn format_report_line(
    name: &str,
    micros_per_op: f64,
    ops_per_sec: i64,
    elapsed_seconds: f64,
    operations: u64,
    extra: &str,
) -> String {
    format!(
        "{name:<12} : {micros_per_op:11.3} micros/op {ops_per_sec} ops/sec {elapsed_seconds:.3} seconds {operations} operations;{}{extra}\n",
        if extra.is_empty() { "" } else { " " },
    )
}

/// The summary lines of db_bench's `HistogramImpl::ToString`, from an HDR histogram of
/// nanoseconds, printed in microseconds.
pub fn format_histogram(histogram: &Histogram<u64>) -> String {
    let micros = |nanos: f64| nanos / 1000.0;
    let at = |quantile: f64| micros(histogram.value_at_quantile(quantile) as f64);
    format!(
        "Count: {} Average: {:.4}  StdDev: {:.2}\n\
         Min: {:.0}  Median: {:.4}  Max: {:.0}\n\
         Percentiles: P50: {:.2} P75: {:.2} P99: {:.2} P99.9: {:.2} P99.99: {:.2}\n\
         ------------------------------------------------------\n",
        histogram.len(),
        micros(histogram.mean()),
        micros(histogram.stdev()),
        micros(histogram.min() as f64),
        at(0.5),
        micros(histogram.max() as f64),
        at(0.5),
        at(0.75),
        at(0.99),
        at(0.999),
        at(0.9999),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_line_matches_db_bench() {
        // db_bench 7.8.3: "fillseq      :       5.855 micros/op 169923 ops/sec 0.012 seconds
        // 2000 operations;   18.8 MB/s"
        let line = format_report_line("fillseq", 5.855, 169_923, 0.012, 2000, "  18.8 MB/s");
        assert_eq!(
            line,
            "fillseq      :       5.855 micros/op 169923 ops/sec 0.012 seconds 2000 operations;   18.8 MB/s\n"
        );
        let line = format_report_line("fillrandom", 7.692, 130_000, 65.0, 8_500_000, " 127.0 MB/s");
        assert_eq!(
            line,
            "fillrandom   :       7.692 micros/op 130000 ops/sec 65.000 seconds 8500000 operations;  127.0 MB/s\n"
        );
    }

    #[test]
    fn read_line_matches_db_bench() {
        // db_bench 7.8.3: "readmissing  :       1.091 micros/op 902527 ops/sec 0.002 seconds
        // 2000 operations; (0 of 2000 found)" followed by a blank line.
        let line = format_report_line(
            "readmissing",
            1.091,
            902_527,
            0.002,
            2000,
            "(0 of 2000 found)\n",
        );
        assert_eq!(
            line,
            "readmissing  :       1.091 micros/op 902527 ops/sec 0.002 seconds 2000 operations; (0 of 2000 found)\n\n"
        );
    }

    #[test]
    fn stats_report_combines_bytes_and_message() {
        let clock = Clock::new();
        let mut stats = Stats::start(clock, false);
        stats.finished_ops(4, OperationKind::Read);
        stats.add_bytes(4 * 1_048_576);
        stats.add_message("(4 of 4 found)\n");
        stats.start_micros = 0;
        stats.finish_micros = 2_000_000;
        stats.seconds = 2.0;
        assert_eq!(
            stats.report("readrandom"),
            "readrandom   :  500000.000 micros/op 2 ops/sec 2.000 seconds 4 operations;    2.0 MB/s (4 of 4 found)\n\n"
        );
    }

    #[test]
    fn merge_sums_ops_and_spans_wall_time() {
        let clock = Clock::new();
        let mut a = Stats::start(clock, true);
        let mut b = Stats::start(clock, true);
        for _ in 0..10 {
            a.finished_ops(1, OperationKind::Write);
            b.finished_ops(1, OperationKind::Write);
        }
        a.start_micros = 100;
        a.finish_micros = 1_100;
        a.seconds = 0.001;
        b.start_micros = 200;
        b.finish_micros = 2_200;
        b.seconds = 0.002;
        a.merge(b);
        assert_eq!(a.done, 20);
        assert_eq!((a.start_micros, a.finish_micros), (100, 2_200));
        let report = a.report("fillrandom");
        assert!(report.starts_with(
            "fillrandom   :     150.000 micros/op 9523 ops/sec 0.002 seconds 20 operations;\n"
        ));
        assert!(report.contains("Microseconds per write:\nCount: 20 Average: "));
        assert!(report.contains("Percentiles: P50: "));
    }
}
