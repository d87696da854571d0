//! `kvbench predict`: the WARS model of Bailis et al., "Probabilistically Bounded Staleness
//! for Practical Partial Quorums" (PVLDB 5(8), 2012), evaluated by Monte Carlo.
//!
//! WARS names the four one-way message delays of a Dynamo-style quorum operation, drawn
//! independently per replica: **W** (write request, coordinator to replica), **A** (write
//! acknowledgement), **R** (read request) and **S** (read response). One trial:
//!
//! 1. a write is sent to all N replicas at time 0; replica i has it at `W_i` and its
//!    acknowledgement reaches the coordinator at `W_i + A_i`; the write *commits* at `c`, the
//!    W-th smallest `W_i + A_i`;
//! 2. a read starts at `c + t`; replica i answers what it holds when the request arrives, at
//!    `c + t + R_i`, and the answer is back at `c + t + R_i + S_i`; the first R answers (by
//!    `R_i + S_i`) count, later ones are ignored (no read repair);
//! 3. the read is consistent if one of those R replicas had the write before the request
//!    arrived: `W_i <= c + t + R_i`.
//!
//! Which replicas answer first does not depend on `t`, so one trial gives the whole curve:
//! the read is consistent for every `t >= min_i (W_i - c - R_i)` over the first R replicas.
//! That threshold is kept per trial and sorted, so P(consistent at t) is an empirical CDF:
//! monotone in t by construction, exactly 1 at t = 0 when R + W > N (some replica is in both
//! quorums and had the write before the commit), and answerable for any t after the run.
//! Write latency is `c`; read latency is the R-th smallest `R_i + S_i`.
//!
//! Trials run in fixed chunks, each with its own generator seeded from (seed, chunk), so the
//! result depends on the seed and the trial count only, not on the number of threads.
//! Delays use the link emulator's distributions ([`cluster::net::DelayDistribution`], same
//! text syntax and presets, samples clamped the same way), so a prediction describes exactly
//! what an emulated cluster is configured with.

pub mod delay;
pub mod measured;
#[cfg(test)]
mod tests;

pub use delay::{parse_delay, scenario, scenario_model, Delay, ReplicaDelays, SCENARIOS};
pub use measured::{MeasuredDelays, MEASURED_DELAYS_CSV};

use crate::{Error, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Largest replication factor the model accepts (the per-trial work is O(N log N)).
pub const REPLICAS_MAX: usize = 64;
/// Most trials one prediction runs: three `f64` per trial are kept, so this bounds memory
/// at about 240 MB.
pub const TRIALS_MAX: u64 = 10_000_000;
/// Trials per generator: the unit of work handed to a thread.
const CHUNK_TRIALS: usize = 16_384;

/// N, R, W and the delays of each replica.
#[derive(Debug, Clone)]
pub struct WarsModel {
    /// Replicas per key.
    pub replicas: usize,
    /// Read quorum: responses a read waits for.
    pub read_quorum: usize,
    /// Write quorum: acknowledgements a write waits for.
    pub write_quorum: usize,
    /// One entry per replica (length `replicas`), or a single entry used for all of them,
    /// as seen from the write's coordinator.
    pub delays: Vec<ReplicaDelays>,
    /// Whether each read goes through its own coordinator, placed at a uniformly random
    /// replica's position independently of the write's: replica i's R and S delays are then
    /// those of entry `(i + N - b) mod N` for a random b per trial. The paper's WAN setup
    /// ("reads and writes are routed to random data centers"); irrelevant when all replicas
    /// share one delay set.
    pub read_coordinator_random: bool,
}

impl WarsModel {
    /// The same delays at every replica.
    pub fn uniform(
        replicas: usize,
        read_quorum: usize,
        write_quorum: usize,
        delays: ReplicaDelays,
    ) -> Self {
        WarsModel {
            replicas,
            read_quorum,
            write_quorum,
            delays: vec![delays],
            read_coordinator_random: false,
        }
    }

    /// Checks N, R, W and every distribution, naming the bad one.
    pub fn validate(&self) -> Result<()> {
        let flag = |flag: &'static str, detail: String| Err(Error::InvalidFlag { flag, detail });
        if self.replicas == 0 || self.replicas > REPLICAS_MAX {
            return flag(
                "n",
                format!("{} must be between 1 and {REPLICAS_MAX}", self.replicas),
            );
        }
        if self.read_quorum == 0 || self.read_quorum > self.replicas {
            return flag(
                "r",
                format!(
                    "{} must be between 1 and N={}",
                    self.read_quorum, self.replicas
                ),
            );
        }
        if self.write_quorum == 0 || self.write_quorum > self.replicas {
            return flag(
                "w",
                format!(
                    "{} must be between 1 and N={}",
                    self.write_quorum, self.replicas
                ),
            );
        }
        if self.delays.len() != 1 && self.delays.len() != self.replicas {
            return flag(
                "write-delay",
                format!(
                    "{} per-replica delay sets given for N={}: give one (for all replicas) or N",
                    self.delays.len(),
                    self.replicas
                ),
            );
        }
        self.delays.iter().try_for_each(ReplicaDelays::validate)
    }

    fn delays_of(&self, replica: usize) -> &ReplicaDelays {
        &self.delays[if self.delays.len() == 1 { 0 } else { replica }]
    }
}

/// How many trials and from which seed.
#[derive(Debug, Clone, Copy)]
pub struct SimulationOptions {
    /// Independent write-then-read trials.
    pub trials: u64,
    /// Seed of the whole run.
    pub seed: u64,
    /// Worker threads; 0 means the machine's available parallelism. Does not change the
    /// result.
    pub threads: usize,
}

impl Default for SimulationOptions {
    fn default() -> Self {
        SimulationOptions {
            trials: 1_000_000,
            seed: 1,
            threads: 0,
        }
    }
}

/// The outcome of a simulation: every trial's staleness threshold and latencies, sorted.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Per trial, the smallest t (ms after commit) at which the read is consistent; may be
    /// negative (consistent even for a read started before the commit).
    thresholds_ms: Vec<f64>,
    read_latencies_ms: Vec<f64>,
    write_latencies_ms: Vec<f64>,
}

/// Runs the model.
pub fn simulate(model: &WarsModel, options: &SimulationOptions) -> Result<Prediction> {
    model.validate()?;
    if options.trials == 0 || options.trials > TRIALS_MAX {
        return Err(Error::InvalidFlag {
            flag: "trials",
            detail: format!("{} must be between 1 and {TRIALS_MAX}", options.trials),
        });
    }
    let trials = options.trials as usize;
    let mut thresholds = vec![0.0; trials];
    let mut reads = vec![0.0; trials];
    let mut writes = vec![0.0; trials];
    let mut chunks: Vec<Chunk<'_>> = thresholds
        .chunks_mut(CHUNK_TRIALS)
        .zip(reads.chunks_mut(CHUNK_TRIALS))
        .zip(writes.chunks_mut(CHUNK_TRIALS))
        .enumerate()
        .map(|(index, ((t, r), w))| (index, t, r, w))
        .collect();
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, chunks.len());
    let per_thread = chunks.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut rest = chunks.as_mut_slice();
        while !rest.is_empty() {
            let (mine, others) = rest.split_at_mut(per_thread.min(rest.len()));
            rest = others;
            scope.spawn(move || {
                let mut scratch = Scratch::new(model.replicas);
                for (index, t, r, w) in mine.iter_mut() {
                    let mut rng = StdRng::seed_from_u64(chunk_seed(options.seed, *index as u64));
                    for trial in 0..t.len() {
                        let outcome = scratch.trial(model, &mut rng);
                        t[trial] = outcome.threshold_ms;
                        r[trial] = outcome.read_latency_ms;
                        w[trial] = outcome.write_latency_ms;
                    }
                }
            });
        }
    });
    drop(chunks);
    for values in [&mut thresholds, &mut reads, &mut writes] {
        values.sort_unstable_by(f64::total_cmp);
    }
    Ok(Prediction {
        thresholds_ms: thresholds,
        read_latencies_ms: reads,
        write_latencies_ms: writes,
    })
}

/// One chunk of trials: its index (for its seed) and its slices of thresholds, read and
/// write latencies.
type Chunk<'a> = (usize, &'a mut [f64], &'a mut [f64], &'a mut [f64]);

/// SplitMix64 of the run seed and the chunk index: neighbouring chunks get unrelated seeds.
fn chunk_seed(seed: u64, chunk: u64) -> u64 {
    let mut z = seed.wrapping_add(chunk.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct TrialOutcome {
    threshold_ms: f64,
    read_latency_ms: f64,
    write_latency_ms: f64,
}

/// Per-thread buffers, so a trial allocates nothing.
struct Scratch {
    write_arrival: Vec<f64>,
    read_request: Vec<f64>,
    ack_at: Vec<f64>,
    /// (R_i + S_i, i), ordered to find the first R responders.
    responses: Vec<(f64, usize)>,
}

impl Scratch {
    fn new(replicas: usize) -> Self {
        Scratch {
            write_arrival: vec![0.0; replicas],
            read_request: vec![0.0; replicas],
            ack_at: vec![0.0; replicas],
            responses: vec![(0.0, 0); replicas],
        }
    }

    fn trial(&mut self, model: &WarsModel, rng: &mut StdRng) -> TrialOutcome {
        let n = model.replicas;
        let read_shift = if model.read_coordinator_random && model.delays.len() > 1 {
            rng.gen_range(0..n)
        } else {
            0
        };
        for replica in 0..n {
            let delays = model.delays_of(replica);
            let write = delays.write.sample_ms(rng);
            let ack = delays.ack.sample_ms(rng);
            let read_delays = model.delays_of((replica + n - read_shift) % n);
            let read = read_delays.read.sample_ms(rng);
            let response = read_delays.response.sample_ms(rng);
            self.write_arrival[replica] = write;
            self.ack_at[replica] = write + ack;
            self.read_request[replica] = read;
            self.responses[replica] = (read + response, replica);
        }
        let w = model.write_quorum - 1;
        let (_, &mut commit, _) = self.ack_at.select_nth_unstable_by(w, f64::total_cmp);
        let r = model.read_quorum - 1;
        self.responses
            .select_nth_unstable_by(r, |a, b| a.0.total_cmp(&b.0));
        let first = &self.responses[..=r];
        let read_latency = first.iter().map(|(at, _)| *at).fold(f64::MIN, f64::max);
        let threshold = first
            .iter()
            .map(|&(_, i)| self.write_arrival[i] - commit - self.read_request[i])
            .fold(f64::INFINITY, f64::min);
        TrialOutcome {
            threshold_ms: threshold,
            read_latency_ms: read_latency,
            write_latency_ms: commit,
        }
    }
}

impl Prediction {
    /// Trials run.
    pub fn trials(&self) -> usize {
        self.thresholds_ms.len()
    }

    /// P(consistent) for a read started `t_ms` after the write committed (t-visibility).
    pub fn probability_consistent(&self, t_ms: f64) -> f64 {
        let consistent = self
            .thresholds_ms
            .partition_point(|&threshold| threshold <= t_ms);
        consistent as f64 / self.trials() as f64
    }

    /// Half-width of the 95% confidence interval of [`Self::probability_consistent`]
    /// (normal approximation of the binomial).
    pub fn confidence_95(&self, t_ms: f64) -> f64 {
        let p = self.probability_consistent(t_ms);
        1.96 * (p * (1.0 - p) / self.trials() as f64).sqrt()
    }

    /// The smallest t >= 0 (ms) after which at least `probability` of reads are consistent.
    pub fn t_for_probability(&self, probability: f64) -> f64 {
        let needed = (probability.clamp(0.0, 1.0) * self.trials() as f64).ceil() as usize;
        match needed.checked_sub(1) {
            None => 0.0,
            Some(index) => self.thresholds_ms[index.min(self.trials() - 1)].max(0.0),
        }
    }

    /// Root-mean-square difference between measured t-visibility points `(t_ms, P)` and the
    /// prediction at the same t, unweighted as in the paper's validation (RMSE over
    /// t = 1..199 ms). `None` without points. Callers should drop measured points backed by
    /// too few reads to mean anything.
    pub fn rmse(&self, measured: &[(f64, f64)]) -> Option<f64> {
        if measured.is_empty() {
            return None;
        }
        let sum: f64 = measured
            .iter()
            .map(|&(t, p)| (p - self.probability_consistent(t)).powi(2))
            .sum();
        Some((sum / measured.len() as f64).sqrt())
    }

    /// Read latency (ms) at quantile `q` in [0, 1].
    pub fn read_latency(&self, q: f64) -> f64 {
        quantile(&self.read_latencies_ms, q)
    }

    /// Write latency (ms) at quantile `q` in [0, 1].
    pub fn write_latency(&self, q: f64) -> f64 {
        quantile(&self.write_latencies_ms, q)
    }

    /// Mean read latency (ms).
    pub fn read_latency_mean(&self) -> f64 {
        mean(&self.read_latencies_ms)
    }

    /// Mean write latency (ms).
    pub fn write_latency_mean(&self) -> f64 {
        mean(&self.write_latencies_ms)
    }
}

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}
