//! `kvbench probe`: a staleness probe that makes the t-visibility curve dense at small t.
//!
//! Each probe writes a fresh key once (`KV.PUT key value W w`) through one coordinator and,
//! once the write is acknowledged, reads it back (`KV.GET key R r`) through a *different*
//! coordinator at each chosen delay after the acknowledgement (default 0, 1, 2, 5, 10, 20,
//! 50 and 100 ms), every read on a connection of its own so they do not queue behind one
//! another. A read that returns the written value is fresh; one that returns nothing (the
//! key was never written before) is stale. Per delay the probe reports the reads, how many
//! were fresh, P(fresh | t) with its 95% interval, and the mean t the reads really started
//! at (timers fire late on a busy machine; predictions are taken at that t).
//!
//! Coordinators (`probe.coordinators`): `non_replica` (the default) writes and reads
//! through nodes that hold no replica of the key, as the PBS paper's validation did
//! ("we determined the node that did not store the data and sent all requests through
//! it"), so every replica is reached over the emulated network; it needs at least N + 2
//! nodes and otherwise falls back to `any`, which picks two different nodes at random.
//!
//! Properties (`-P file`, `-p name=value`; see `workloads/probe-pbs`):
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `probe.delays_ms` | `0,1,2,5,10,20,50,100` | read delays after the write's ack |
//! | `probe.count` | 500 | probes (writes) |
//! | `probe.concurrency` | 4 | probes in flight at once |
//! | `probe.rate` | 20 | probe writes per second in all (0: as fast as they complete) |
//! | `probe.read_quorum` / `probe.write_quorum` | 1 / 1 | R and W of each request |
//! | `probe.coordinators` | `non_replica` | or `any` |
//! | `probe.value_bytes` | 64 | value size |
//! | `probe.timeout_ms` | 10000 | per request |
//! | `probe.seed` | 1 | key names and coordinator choice |

pub mod cluster;
mod run;
#[cfg(test)]
mod tests;

pub use run::run_probes;

use std::fmt::Write as _;

use crate::workload::Properties;
use crate::{Error, Result};

/// Most delays one probe run may read at (each is a connection per concurrent probe).
pub const DELAYS_MAX: usize = 64;
/// Most probes one run may make.
pub const PROBES_MAX: usize = 10_000_000;
/// Most probes in flight.
pub const CONCURRENCY_MAX: usize = 256;
/// Largest read delay accepted: one minute.
pub const DELAY_MS_MAX: f64 = 60_000.0;

/// Which nodes coordinate a probe's write and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coordinators {
    /// Two different nodes, neither a replica of the key (falls back to `Any` when the
    /// cluster has fewer than N + 2 nodes).
    NonReplica,
    /// Two different nodes chosen at random.
    Any,
}

/// What a probe run does.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOptions {
    /// Read delays after the write's acknowledgement, ms, ascending.
    pub delays_ms: Vec<f64>,
    /// Probes (writes).
    pub count: usize,
    /// Probes in flight at once.
    pub concurrency: usize,
    /// Probe writes per second over all workers; 0 for no pacing.
    pub rate: f64,
    /// R of each read.
    pub read_quorum: usize,
    /// W of each write.
    pub write_quorum: usize,
    /// Coordinator choice.
    pub coordinators: Coordinators,
    /// Bytes per value.
    pub value_bytes: usize,
    /// Per-request timeout, ms.
    pub timeout_ms: u64,
    /// Seed of key names and coordinator choice.
    pub seed: u64,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            delays_ms: vec![0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0],
            count: 500,
            concurrency: 4,
            rate: 20.0,
            read_quorum: 1,
            write_quorum: 1,
            coordinators: Coordinators::NonReplica,
            value_bytes: 64,
            timeout_ms: 10_000,
            seed: 1,
        }
    }
}

/// The property names [`ProbeOptions::from_properties`] reads.
pub const PROBE_PROPERTIES: [&str; 10] = [
    "probe.delays_ms",
    "probe.count",
    "probe.concurrency",
    "probe.rate",
    "probe.read_quorum",
    "probe.write_quorum",
    "probe.coordinators",
    "probe.value_bytes",
    "probe.timeout_ms",
    "probe.seed",
];

fn invalid(field: &str, detail: String) -> Error {
    Error::InvalidOption {
        field: field.to_string(),
        detail,
    }
}

fn number<T: std::str::FromStr>(properties: &Properties, name: &str, default: T) -> Result<T> {
    match properties.get(name) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| invalid(name, format!("'{text}' is not a number"))),
    }
}

impl ProbeOptions {
    /// Reads the `probe.*` properties over the defaults, and checks them.
    pub fn from_properties(properties: &Properties) -> Result<ProbeOptions> {
        let defaults = ProbeOptions::default();
        let delays_ms = match properties.get("probe.delays_ms") {
            None => defaults.delays_ms,
            Some(text) => text
                .split(',')
                .map(|part| {
                    part.trim().parse::<f64>().map_err(|_| {
                        invalid("probe.delays_ms", format!("'{part}' is not a number of ms"))
                    })
                })
                .collect::<Result<Vec<f64>>>()?,
        };
        let coordinators = match properties.get("probe.coordinators").map(str::trim) {
            None | Some("non_replica") => Coordinators::NonReplica,
            Some("any") => Coordinators::Any,
            Some(other) => {
                return Err(invalid(
                    "probe.coordinators",
                    format!("'{other}': expected non_replica or any"),
                ))
            }
        };
        let options = ProbeOptions {
            delays_ms,
            count: number(properties, "probe.count", defaults.count)?,
            concurrency: number(properties, "probe.concurrency", defaults.concurrency)?,
            rate: number(properties, "probe.rate", defaults.rate)?,
            read_quorum: number(properties, "probe.read_quorum", defaults.read_quorum)?,
            write_quorum: number(properties, "probe.write_quorum", defaults.write_quorum)?,
            coordinators,
            value_bytes: number(properties, "probe.value_bytes", defaults.value_bytes)?,
            timeout_ms: number(properties, "probe.timeout_ms", defaults.timeout_ms)?,
            seed: number(properties, "probe.seed", defaults.seed)?,
        };
        options.validate()?;
        Ok(options)
    }

    /// Checks every bound, naming the property.
    pub fn validate(&self) -> Result<()> {
        if self.delays_ms.is_empty() || self.delays_ms.len() > DELAYS_MAX {
            return Err(invalid(
                "probe.delays_ms",
                format!("give 1 to {DELAYS_MAX} delays"),
            ));
        }
        if let Some(bad) = self
            .delays_ms
            .iter()
            .find(|ms| !(ms.is_finite() && (0.0..=DELAY_MS_MAX).contains(*ms)))
        {
            return Err(invalid(
                "probe.delays_ms",
                format!("{bad} is not between 0 and {DELAY_MS_MAX} ms"),
            ));
        }
        if self.delays_ms.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(invalid(
                "probe.delays_ms",
                "delays must be given in ascending order, each once".into(),
            ));
        }
        let ranges: [(&str, usize, usize, usize); 5] = [
            ("probe.count", self.count, 1, PROBES_MAX),
            ("probe.concurrency", self.concurrency, 1, CONCURRENCY_MAX),
            ("probe.read_quorum", self.read_quorum, 1, 64),
            ("probe.write_quorum", self.write_quorum, 1, 64),
            ("probe.value_bytes", self.value_bytes, 16, 1 << 20),
        ];
        for (name, value, low, high) in ranges {
            if !(low..=high).contains(&value) {
                return Err(invalid(
                    name,
                    format!("{value} is not between {low} and {high}"),
                ));
            }
        }
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            return Err(invalid(
                "probe.rate",
                format!("{} is not a rate >= 0", self.rate),
            ));
        }
        if self.timeout_ms == 0 {
            return Err(invalid("probe.timeout_ms", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// What one read saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// It returned the probe's value.
    Fresh,
    /// It returned no value or other values.
    Stale,
    /// It failed (error reply, timeout, connection lost).
    Error,
}

/// Classifies a read of a probe key: `reply` is `Err` for a failed read, else the values
/// it returned (several when siblings came back, none when the key was not found).
pub fn classify(written: &[u8], reply: &std::result::Result<Vec<Vec<u8>>, String>) -> ReadOutcome {
    match reply {
        Err(_) => ReadOutcome::Error,
        Ok(values) if values.iter().any(|value| value == written) => ReadOutcome::Fresh,
        Ok(_) => ReadOutcome::Stale,
    }
}

/// One read: which delay it was scheduled at, when it really started (ms after the write's
/// acknowledgement reached the client) and what it saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Index into the run's delays.
    pub delay_index: usize,
    /// Actual start, ms after the acknowledgement.
    pub started_ms: f64,
    /// Fresh, stale or failed.
    pub outcome: ReadOutcome,
}

/// The counts at one delay.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DelayRow {
    /// The scheduled delay, ms.
    pub delay_ms: f64,
    /// Reads that answered (fresh + stale).
    pub reads: u64,
    /// Reads that returned the probe's value.
    pub fresh: u64,
    /// Reads that failed (not in `reads`).
    pub errors: u64,
    /// Sum of the answered reads' actual start times, ms.
    started_ms_sum: f64,
}

impl DelayRow {
    /// P(fresh | t), `None` without answered reads.
    pub fn p_fresh(&self) -> Option<f64> {
        (self.reads > 0).then(|| self.fresh as f64 / self.reads as f64)
    }

    /// Half-width of the 95% interval of [`Self::p_fresh`] (normal approximation).
    pub fn confidence_95(&self) -> f64 {
        match self.p_fresh() {
            Some(p) => 1.96 * (p * (1.0 - p) / self.reads as f64).sqrt(),
            None => 0.0,
        }
    }

    /// Mean actual start of the answered reads, ms after the ack (the scheduled delay when
    /// there were none).
    pub fn mean_started_ms(&self) -> f64 {
        if self.reads == 0 {
            self.delay_ms
        } else {
            self.started_ms_sum / self.reads as f64
        }
    }
}

/// A probe run's result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeReport {
    /// One row per delay, ascending.
    pub rows: Vec<DelayRow>,
    /// Probe writes acknowledged.
    pub writes: u64,
    /// Probe writes that failed (their reads were not made).
    pub write_errors: u64,
    /// Sum of acknowledged writes' latencies, ms.
    pub write_latency_ms_sum: f64,
    /// Probes whose coordinators were not both non-replicas (the `any` fallback).
    pub replica_coordinated: u64,
}

impl ProbeReport {
    /// Empty counts for these delays.
    pub fn new(delays_ms: &[f64]) -> ProbeReport {
        ProbeReport {
            rows: delays_ms
                .iter()
                .map(|&delay_ms| DelayRow {
                    delay_ms,
                    ..DelayRow::default()
                })
                .collect(),
            ..ProbeReport::default()
        }
    }

    /// Counts one read.
    pub fn record(&mut self, observation: &Observation) {
        let Some(row) = self.rows.get_mut(observation.delay_index) else {
            return;
        };
        match observation.outcome {
            ReadOutcome::Error => row.errors += 1,
            outcome => {
                row.reads += 1;
                row.fresh += u64::from(outcome == ReadOutcome::Fresh);
                row.started_ms_sum += observation.started_ms;
            }
        }
    }

    /// Counts one write: its latency (ms) when acknowledged, `None` when it failed.
    pub fn record_write(&mut self, latency_ms: Option<f64>) {
        match latency_ms {
            Some(ms) => {
                self.writes += 1;
                self.write_latency_ms_sum += ms;
            }
            None => self.write_errors += 1,
        }
    }

    /// Adds another report's counts (same delays).
    pub fn merge(&mut self, other: &ProbeReport) {
        for (mine, theirs) in self.rows.iter_mut().zip(&other.rows) {
            mine.reads += theirs.reads;
            mine.fresh += theirs.fresh;
            mine.errors += theirs.errors;
            mine.started_ms_sum += theirs.started_ms_sum;
        }
        self.writes += other.writes;
        self.write_errors += other.write_errors;
        self.write_latency_ms_sum += other.write_latency_ms_sum;
        self.replica_coordinated += other.replica_coordinated;
    }

    /// `(mean actual t, P(fresh))` of every delay with at least `reads_min` answered reads.
    pub fn measured_points(&self, reads_min: u64) -> Vec<(f64, f64)> {
        self.rows
            .iter()
            .filter(|row| row.reads >= reads_min.max(1))
            .filter_map(|row| Some((row.mean_started_ms(), row.p_fresh()?)))
            .collect()
    }

    /// The per-delay CSV: `delay_ms,mean_t_ms,reads,fresh,stale,errors,p_fresh,ci95`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("delay_ms,mean_t_ms,reads,fresh,stale,errors,p_fresh,ci95\n");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "{},{:.3},{},{},{},{},{},{:.5}",
                row.delay_ms,
                row.mean_started_ms(),
                row.reads,
                row.fresh,
                row.reads - row.fresh,
                row.errors,
                row.p_fresh().map_or(String::new(), |p| format!("{p:.5}")),
                row.confidence_95()
            );
        }
        out
    }
}
