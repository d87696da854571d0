//! Figures computed from histograms: what reports print.

use super::histograms::{HistogramSet, KindHistograms};
use super::kinds::OperationKind;
use hdrhistogram::Histogram;
use std::time::Duration;

/// Latency figures of one histogram, in microseconds.
///
/// Percentiles are HdrHistogram's `value_at_percentile`: the highest value equivalent (within
/// 3 significant digits) to the recorded value at that rank, as Java's `getValueAtPercentile`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_micros: f64,
    pub min_micros: u64,
    pub p50_micros: u64,
    pub p90_micros: u64,
    pub p95_micros: u64,
    pub p99_micros: u64,
    pub p999_micros: u64,
    pub max_micros: u64,
}

impl LatencySummary {
    /// The figures of `histogram`; all zero when it is empty.
    pub fn of(histogram: &Histogram<u64>) -> LatencySummary {
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: histogram.len(),
            mean_micros: histogram.mean(),
            min_micros: histogram.min(),
            p50_micros: histogram.value_at_percentile(50.0),
            p90_micros: histogram.value_at_percentile(90.0),
            p95_micros: histogram.value_at_percentile(95.0),
            p99_micros: histogram.value_at_percentile(99.0),
            p999_micros: histogram.value_at_percentile(99.9),
            // The highest equivalent value, as Java's `getMaxValue`, so max >= every percentile.
            max_micros: histogram.max(),
        }
    }
}

/// One operation kind over one interval or one run.
#[derive(Debug, Clone, PartialEq)]
pub struct KindSnapshot {
    pub kind: OperationKind,
    /// Operations, successful or not.
    pub count: u64,
    /// Operations that did not end `OK`.
    pub errors: u64,
    /// Operations (successful or not) per second of the snapshot's duration.
    pub throughput_per_second: f64,
    /// Service latency of the successful operations.
    pub service: LatencySummary,
    /// Intended latency of the successful operations; `None` in closed loop.
    pub intended: Option<LatencySummary>,
}

impl KindSnapshot {
    /// The figures of one kind's histograms over `duration`.
    pub fn of(kind: OperationKind, histograms: &KindHistograms, duration: Duration) -> Self {
        let count = histograms.operations();
        let seconds = duration.as_secs_f64();
        KindSnapshot {
            kind,
            count,
            errors: histograms.errors(),
            throughput_per_second: if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            },
            service: LatencySummary::of(&histograms.service),
            intended: (!histograms.intended.is_empty())
                .then(|| LatencySummary::of(&histograms.intended)),
        }
    }
}

/// The figures of one interval (or of a whole run, from its start to its end offset).
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalSnapshot {
    /// Interval start, from the run clock's epoch.
    pub start_offset: Duration,
    /// Interval end, from the run clock's epoch.
    pub end_offset: Duration,
    /// Whether the interval lies in the warm-up period (and so counts in no total).
    pub warmup: bool,
    /// One entry per kind that had operations, in [`OperationKind::ALL`] order.
    pub kinds: Vec<KindSnapshot>,
}

impl IntervalSnapshot {
    /// The figures of `histograms` over `[start_offset, end_offset)`.
    pub fn of(
        histograms: &HistogramSet,
        start_offset: Duration,
        end_offset: Duration,
        warmup: bool,
    ) -> IntervalSnapshot {
        let duration = end_offset.saturating_sub(start_offset);
        let kinds = OperationKind::ALL
            .into_iter()
            .filter(|&kind| histograms.kind(kind).operations() > 0)
            .map(|kind| KindSnapshot::of(kind, histograms.kind(kind), duration))
            .collect();
        IntervalSnapshot {
            start_offset,
            end_offset,
            warmup,
            kinds,
        }
    }

    /// Operations of every kind.
    pub fn count(&self) -> u64 {
        self.kinds.iter().map(|kind| kind.count).sum()
    }

    /// Failed operations of every kind.
    pub fn errors(&self) -> u64 {
        self.kinds.iter().map(|kind| kind.errors).sum()
    }

    /// Operations of every kind per second.
    pub fn throughput_per_second(&self) -> f64 {
        self.kinds
            .iter()
            .map(|kind| kind.throughput_per_second)
            .sum()
    }
}
