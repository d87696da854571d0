//! Counters of read classifications: what a run (or one interval of it) reports.

use super::intervals::{interval_of, merge_intervals, IntervalStaleness};
use super::tracker::{ReadClass, Verdict};

/// Edges (ms) of the t buckets, shared by the t-visibility curve and the distribution of t
/// for stale reads: bucket i is `[EDGES[i], EDGES[i+1])`, the last one open-ended. Dense below
/// 10 ms, where a probe workload puts most reads and where quorum systems converge.
pub const T_BUCKET_EDGES_MS: [f64; 25] = [
    0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0, 70.0, 100.0, 150.0,
    200.0, 300.0, 500.0, 700.0, 1000.0, 2000.0, 5000.0, 10000.0, 30000.0,
];
const T_BUCKETS: usize = T_BUCKET_EDGES_MS.len();

/// k values counted one by one; larger ones share the last slot.
pub const K_DISTRIBUTION_MAX: usize = 32;

/// Staleness counters. Plain data: each load thread keeps its own, [`Self::merge`] combines
/// them, `std::mem::take` cuts an interval.
#[derive(Debug, Clone, PartialEq)]
pub struct StalenessStats {
    /// Reads classified (all verdicts).
    pub reads: u64,
    /// Reads that saw every write acknowledged before they began.
    pub fresh: u64,
    /// Reads that missed at least one.
    pub stale: u64,
    /// Reads with no acknowledged write to their key before they began.
    pub no_prior_write: u64,
    /// Reads of keys beyond the tracker's limit.
    pub untracked: u64,
    /// Reads that returned an unstamped value.
    pub unstamped: u64,
    /// Reads that returned more than one version (siblings).
    pub with_siblings: u64,
    /// Stale reads whose k is only a lower bound (history forgotten).
    pub k_lower_bound: u64,
    /// `k_counts[k - 1]` stale reads missed k writes; the last slot counts k >= its index + 1.
    pub k_counts: [u64; K_DISTRIBUTION_MAX],
    /// Stale reads by t since the newest missed write was acknowledged, per t bucket.
    pub stale_t_counts: [u64; T_BUCKETS],
    /// Per t bucket: reads with a t-visibility sample.
    pub visibility_reads: [u64; T_BUCKETS],
    /// Per t bucket: of those, reads that saw the latest acknowledged write.
    pub visibility_seen: [u64; T_BUCKETS],
    /// Per t bucket: sum of the samples' t, microseconds (for the bucket's mean t).
    pub visibility_t_sum_micros: [u64; T_BUCKETS],
    /// Per reporting interval (one second of the run clock, by the read's start): the reads
    /// recorded with [`Self::record_at`]; see [`super::intervals`].
    pub intervals: Vec<IntervalStaleness>,
}

impl Default for StalenessStats {
    fn default() -> Self {
        StalenessStats {
            reads: 0,
            fresh: 0,
            stale: 0,
            no_prior_write: 0,
            untracked: 0,
            unstamped: 0,
            with_siblings: 0,
            k_lower_bound: 0,
            k_counts: [0; K_DISTRIBUTION_MAX],
            stale_t_counts: [0; T_BUCKETS],
            visibility_reads: [0; T_BUCKETS],
            visibility_seen: [0; T_BUCKETS],
            visibility_t_sum_micros: [0; T_BUCKETS],
            intervals: Vec::new(),
        }
    }
}

/// One point of the measured t-visibility curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VisibilityBucket {
    /// Lower edge (ms, inclusive).
    pub from_ms: f64,
    /// Upper edge (ms, exclusive); infinite for the last bucket.
    pub to_ms: f64,
    /// Reads begun this long after the latest commit.
    pub reads: u64,
    /// Of those, the ones that returned it (or something not older).
    pub seen: u64,
    /// Mean t of the bucket's reads (ms): the x to plot against a prediction.
    pub mean_t_ms: f64,
}

impl VisibilityBucket {
    /// `seen / reads`.
    pub fn probability(&self) -> f64 {
        self.seen as f64 / self.reads as f64
    }
}

fn bucket_of(micros: u64) -> usize {
    let ms = micros as f64 / 1000.0;
    T_BUCKET_EDGES_MS
        .partition_point(|edge| *edge <= ms)
        .saturating_sub(1)
}

impl StalenessStats {
    /// Counts one classified read.
    pub fn record(&mut self, class: &ReadClass) {
        self.reads += 1;
        self.unstamped += u64::from(class.unstamped_returned);
        self.with_siblings += u64::from(class.versions_returned > 1);
        match class.verdict {
            Verdict::Fresh => self.fresh += 1,
            Verdict::Stale {
                k,
                k_is_lower_bound,
                t_micros,
            } => {
                self.stale += 1;
                self.k_lower_bound += u64::from(k_is_lower_bound);
                let slot = (k.max(1) as usize).min(K_DISTRIBUTION_MAX) - 1;
                self.k_counts[slot] += 1;
                self.stale_t_counts[bucket_of(t_micros)] += 1;
            }
            Verdict::NoPriorWrite => {
                self.no_prior_write += 1;
                return;
            }
            Verdict::Untracked => {
                self.untracked += 1;
                return;
            }
        }
        if let Some(sample) = class.visibility {
            let bucket = bucket_of(sample.since_commit_micros);
            self.visibility_reads[bucket] += 1;
            self.visibility_seen[bucket] += u64::from(sample.seen);
            self.visibility_t_sum_micros[bucket] += sample.since_commit_micros;
        }
    }

    /// Counts one classified read begun at `began_micros` on the run clock, in the totals
    /// and in its interval.
    pub fn record_at(&mut self, class: &ReadClass, began_micros: u64) {
        self.record(class);
        let index = interval_of(began_micros);
        if self.intervals.len() <= index {
            self.intervals
                .resize(index + 1, IntervalStaleness::default());
        }
        self.intervals[index].record(class);
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &StalenessStats) {
        merge_intervals(&mut self.intervals, &other.intervals);
        self.reads += other.reads;
        self.fresh += other.fresh;
        self.stale += other.stale;
        self.no_prior_write += other.no_prior_write;
        self.untracked += other.untracked;
        self.unstamped += other.unstamped;
        self.with_siblings += other.with_siblings;
        self.k_lower_bound += other.k_lower_bound;
        add(&mut self.k_counts, &other.k_counts);
        add(&mut self.stale_t_counts, &other.stale_t_counts);
        add(&mut self.visibility_reads, &other.visibility_reads);
        add(&mut self.visibility_seen, &other.visibility_seen);
        add(
            &mut self.visibility_t_sum_micros,
            &other.visibility_t_sum_micros,
        );
    }

    /// Reads that could be stale: fresh plus stale.
    pub fn checked(&self) -> u64 {
        self.fresh + self.stale
    }

    /// `stale / (fresh + stale)`; 0 when nothing was checked.
    pub fn stale_fraction(&self) -> f64 {
        match self.checked() {
            0 => 0.0,
            checked => self.stale as f64 / checked as f64,
        }
    }

    /// `(k, stale reads)` for every k seen; the last k means "k or more".
    pub fn k_distribution(&self) -> Vec<(usize, u64)> {
        self.k_counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(slot, count)| (slot + 1, *count))
            .collect()
    }

    /// The measured t-visibility curve: the non-empty buckets, in order of t.
    pub fn t_visibility(&self) -> Vec<VisibilityBucket> {
        (0..T_BUCKETS)
            .filter(|&bucket| self.visibility_reads[bucket] > 0)
            .map(|bucket| VisibilityBucket {
                from_ms: T_BUCKET_EDGES_MS[bucket],
                to_ms: T_BUCKET_EDGES_MS
                    .get(bucket + 1)
                    .copied()
                    .unwrap_or(f64::INFINITY),
                reads: self.visibility_reads[bucket],
                seen: self.visibility_seen[bucket],
                mean_t_ms: self.visibility_t_sum_micros[bucket] as f64
                    / self.visibility_reads[bucket] as f64
                    / 1000.0,
            })
            .collect()
    }
}

impl StalenessStats {
    /// A text report: stale fraction, k distribution, and the t-visibility curve, with a
    /// predicted P(consistent) beside each bucket when `predicted` (t in ms to probability,
    /// e.g. `|t| prediction.probability_consistent(t)`) is given, and their RMSE over the
    /// buckets with at least `min_reads` reads.
    pub fn report(&self, predicted: Option<&dyn Fn(f64) -> f64>, min_reads: u64) -> String {
        use std::fmt::Write as _;
        let mut text = String::new();
        let _ = writeln!(
            text,
            "staleness: {} reads checked, {} stale ({:.4}%), {} with no earlier write, {} unstamped, {} with siblings",
            self.checked(),
            self.stale,
            self.stale_fraction() * 100.0,
            self.no_prior_write,
            self.unstamped,
            self.with_siblings
        );
        if self.stale > 0 {
            let ks: Vec<String> = self
                .k_distribution()
                .iter()
                .map(|(k, count)| {
                    let plus = if *k == K_DISTRIBUTION_MAX { "+" } else { "" };
                    format!("k={k}{plus}: {count}")
                })
                .collect();
            let _ = writeln!(text, "versions behind (k): {}", ks.join(", "));
        }
        let _ = write!(
            text,
            "{:>9}  {:>9}  {:>10}  {:>10}  {:>14}",
            "t_ms_from", "t_ms_to", "mean_t_ms", "reads", "P(consistent)"
        );
        if predicted.is_some() {
            let _ = write!(text, "  {:>10}", "predicted");
        }
        let _ = writeln!(text);
        let mut squares = Vec::new();
        for bucket in self.t_visibility() {
            let _ = write!(
                text,
                "{:>9}  {:>9}  {:>10.3}  {:>10}  {:>14.5}",
                bucket.from_ms,
                bucket.to_ms,
                bucket.mean_t_ms,
                bucket.reads,
                bucket.probability()
            );
            if let Some(predict) = predicted {
                let p = predict(bucket.mean_t_ms);
                let _ = write!(text, "  {p:>10.5}");
                if bucket.reads >= min_reads {
                    squares.push((bucket.probability() - p).powi(2));
                }
            }
            let _ = writeln!(text);
        }
        if !squares.is_empty() {
            let rmse = (squares.iter().sum::<f64>() / squares.len() as f64).sqrt();
            let _ = writeln!(
                text,
                "RMSE measured vs predicted: {:.4}% over {} buckets with >= {min_reads} reads",
                rmse * 100.0,
                squares.len()
            );
        }
        text
    }
}

fn add<const N: usize>(into: &mut [u64; N], from: &[u64; N]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}
