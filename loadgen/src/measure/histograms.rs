//! The histograms of one thread, one interval, or one whole run.

use super::kinds::{OperationKind, Outcome};
use hdrhistogram::Histogram;

/// HDR precision: every recorded value is kept within 0.1% (YCSB's `new Recorder(3)`).
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies above one hour are clamped to it: a bound keeps histogram memory bounded
/// (auto-resize would otherwise grow with any absurd value), and an hour-long operation is
/// a failure whatever its exact length.
pub const HIGHEST_TRACKABLE_MICROS: u64 = 3_600 * 1_000_000;

/// A new empty latency histogram in microseconds. Auto-resizing, so that a thread's idle
/// kinds cost a few hundred bytes instead of the ~200 KiB a histogram sized for an hour takes.
pub(crate) fn new_latency_histogram() -> Histogram<u64> {
    let mut histogram =
        Histogram::new(SIGNIFICANT_DIGITS).expect("3 significant digits is a valid precision");
    histogram.auto(true);
    histogram
}

/// Records one latency, clamped to [`HIGHEST_TRACKABLE_MICROS`]. (`saturating_record` would
/// clamp to the histogram's *current* size instead of growing it.)
#[inline]
fn record_clamped(histogram: &mut Histogram<u64>, micros: u64) {
    histogram
        .record(micros.min(HIGHEST_TRACKABLE_MICROS))
        .expect("an auto-resizing histogram grows to any value up to an hour");
}

/// Adds `source` into `target`; both are auto-resizing, so this cannot run out of range.
pub(crate) fn add_histogram(target: &mut Histogram<u64>, source: &Histogram<u64>) {
    target
        .add(source)
        .expect("auto-resizing histograms accept any value");
}

/// One operation kind's latencies and outcome counts.
#[derive(Debug, Clone)]
pub struct KindHistograms {
    /// Service latency (request sent to response received) of successful operations.
    pub service: Histogram<u64>,
    /// Intended latency (scheduled start to response) of successful operations; empty in
    /// closed-loop mode.
    pub intended: Histogram<u64>,
    /// Service latency of failed operations (YCSB's `READ-FAILED`).
    pub failed_service: Histogram<u64>,
    /// Intended latency of failed operations.
    pub failed_intended: Histogram<u64>,
    /// Operations per [`Outcome`], indexed by [`Outcome::index`].
    pub outcomes: [u64; Outcome::COUNT],
}

impl KindHistograms {
    fn new() -> KindHistograms {
        KindHistograms {
            service: new_latency_histogram(),
            intended: new_latency_histogram(),
            failed_service: new_latency_histogram(),
            failed_intended: new_latency_histogram(),
            outcomes: [0; Outcome::COUNT],
        }
    }

    /// Records one operation. Latencies are clamped to [`HIGHEST_TRACKABLE_MICROS`].
    #[inline]
    pub fn record(&mut self, outcome: Outcome, service_micros: u64, intended_micros: Option<u64>) {
        self.outcomes[outcome.index()] += 1;
        let (service, intended) = if outcome.is_ok() {
            (&mut self.service, &mut self.intended)
        } else {
            (&mut self.failed_service, &mut self.failed_intended)
        };
        record_clamped(service, service_micros);
        if let Some(intended_micros) = intended_micros {
            record_clamped(intended, intended_micros);
        }
    }

    /// Operations of this kind, successful or not.
    pub fn operations(&self) -> u64 {
        self.outcomes.iter().sum()
    }

    /// Failed operations (every outcome but `OK`).
    pub fn errors(&self) -> u64 {
        self.operations() - self.outcomes[Outcome::Ok.index()]
    }

    fn add(&mut self, other: &KindHistograms) {
        add_histogram(&mut self.service, &other.service);
        add_histogram(&mut self.intended, &other.intended);
        add_histogram(&mut self.failed_service, &other.failed_service);
        add_histogram(&mut self.failed_intended, &other.failed_intended);
        for (count, other_count) in self.outcomes.iter_mut().zip(other.outcomes) {
            *count += other_count;
        }
    }

    fn reset(&mut self) {
        // `reset` keeps the counts arrays: the next interval records without allocating.
        self.service.reset();
        self.intended.reset();
        self.failed_service.reset();
        self.failed_intended.reset();
        self.outcomes = [0; Outcome::COUNT];
    }

    /// The four histograms with their interval-log tags (see [`HistogramSet::tagged`]).
    fn tagged(&self, kind: OperationKind) -> [(String, &Histogram<u64>); 4] {
        let name = kind.name();
        [
            (name.to_string(), &self.service),
            (format!("Intended-{name}"), &self.intended),
            (format!("{name}-FAILED"), &self.failed_service),
            (format!("Intended-{name}-FAILED"), &self.failed_intended),
        ]
    }
}

/// Every kind's histograms: what a thread records into, and what intervals and totals hold.
#[derive(Debug, Clone)]
pub struct HistogramSet {
    kinds: Vec<KindHistograms>,
}

impl Default for HistogramSet {
    fn default() -> Self {
        HistogramSet::new()
    }
}

impl HistogramSet {
    /// An empty set with one [`KindHistograms`] per [`OperationKind`].
    pub fn new() -> HistogramSet {
        HistogramSet {
            kinds: (0..OperationKind::COUNT)
                .map(|_| KindHistograms::new())
                .collect(),
        }
    }

    /// Records one operation.
    #[inline]
    pub fn record(
        &mut self,
        kind: OperationKind,
        outcome: Outcome,
        service_micros: u64,
        intended_micros: Option<u64>,
    ) {
        self.kinds[kind.index()].record(outcome, service_micros, intended_micros);
    }

    /// One kind's histograms.
    pub fn kind(&self, kind: OperationKind) -> &KindHistograms {
        &self.kinds[kind.index()]
    }

    /// Adds every histogram and count of `other` into this set.
    pub fn add(&mut self, other: &HistogramSet) {
        for (mine, theirs) in self.kinds.iter_mut().zip(&other.kinds) {
            mine.add(theirs);
        }
    }

    /// Empties the set, keeping its allocations.
    pub fn reset(&mut self) {
        self.kinds.iter_mut().for_each(KindHistograms::reset);
    }

    /// Operations of every kind and outcome.
    pub fn operations(&self) -> u64 {
        self.kinds.iter().map(KindHistograms::operations).sum()
    }

    /// Every non-empty histogram with its interval-log tag: the YCSB measurement name
    /// (`READ`, `READ-FAILED`) and, for intended latency, YCSB's `Intended-` prefix.
    pub fn tagged(&self) -> Vec<(String, &Histogram<u64>)> {
        OperationKind::ALL
            .into_iter()
            .flat_map(|kind| self.kind(kind).tagged(kind))
            .filter(|(_, histogram)| !histogram.is_empty())
            .collect()
    }

    /// Adds a histogram read back from an interval log into the one its tag names; returns
    /// false for a tag that names none. Outcome counts are not in interval logs: a merged
    /// histogram's count goes to `OK` for successes and `ERROR` for failures.
    pub fn add_tagged(&mut self, tag: &str, histogram: &Histogram<u64>) -> bool {
        let (intended, rest) = match tag.strip_prefix("Intended-") {
            Some(rest) => (true, rest),
            None => (false, tag),
        };
        let (failed, name) = match rest.strip_suffix("-FAILED") {
            Some(name) => (true, name),
            None => (false, rest),
        };
        let Some(kind) = OperationKind::from_name(name) else {
            return false;
        };
        let histograms = &mut self.kinds[kind.index()];
        let target = match (intended, failed) {
            (false, false) => &mut histograms.service,
            (true, false) => &mut histograms.intended,
            (false, true) => &mut histograms.failed_service,
            (true, true) => &mut histograms.failed_intended,
        };
        add_histogram(target, histogram);
        if !intended {
            let outcome = if failed { Outcome::Error } else { Outcome::Ok };
            histograms.outcomes[outcome.index()] += histogram.len();
        }
        true
    }
}
