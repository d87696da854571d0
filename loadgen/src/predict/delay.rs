//! The four WARS delays of a replica, and the named production scenarios of the PBS paper.
//!
//! A delay is either one of the link emulator's distributions (same text syntax:
//! `exp(20)`, `pareto(10,1.5)`, `mix(0.9*exp(5),0.1*pareto(50,1.2))`, `75+preset:linkedin-ssd`,
//! ...) or an empirical sample, e.g. the one-way latencies a run measured. On the command line
//! `NAME:ARGS` is accepted as a shorthand for `NAME(ARGS)` (`exp:20`, `uniform:1,3`).
//!
//! The scenarios are the paper's Table 3 ("Distribution fits for production latency
//! distributions") and its WAN setup. Source: P. Bailis, S. Venkataraman, M. J. Franklin,
//! J. M. Hellerstein, I. Stoica, "Probabilistically Bounded Staleness for Practical Partial
//! Quorums", PVLDB 5(8), 2012, section 5.3; checked against the paper's LaTeX source
//! (`writeup/ernst.tex`, label `table:fits`, repository
//! `pbailis/pbs-vldb-historical-paper-material`), which gives, rates lambda per ms:
//!
//! - LNKD-SSD: W = A = R = S = 91.22% Pareto(x_m 0.235, alpha 10) + 8.78% Exp(lambda 1.66);
//! - LNKD-DISK: A = R = S as LNKD-SSD; W = 38% Pareto(1.05, 1.51) + 62% Exp(0.183);
//! - YMMR: W = 93.9% Pareto(3, 3.35) + 6.1% Exp(0.0028);
//!   A = R = S = 98.2% Pareto(1.5, 3.8) + 1.8% Exp(0.0217);
//! - WAN: LNKD-DISK delays, plus 75 ms on every message to and from the replicas outside the
//!   coordinator's datacenter (one replica per datacenter); "reads and writes are routed to
//!   random data centers", so a read's coordinator is placed independently of the write's.
//!
//! The cluster crate's `net::presets` holds the same numbers (read from the same source), so
//! the scenarios are built from those presets. The paper reports, for N=3, R=W=1, P(consistent)
//! right after commit of 89.3% (YMMR), 97.5% (LNKD-SSD), 43.9% (LNKD-DISK); the tests check
//! the model reproduces them.

use crate::{Error, Result};
use cluster::net::delay::MAX_SAMPLE_MS;
use cluster::net::{presets, DelayDistribution};
use rand::Rng;
use std::fmt;
use std::sync::Arc;

/// Most samples an empirical delay holds.
pub const EMPIRICAL_SAMPLES_MAX: usize = 10_000_000;

/// One delay distribution, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Delay {
    /// A parametric distribution, as the link emulator samples it.
    Model(DelayDistribution),
    /// Draws uniformly among measured samples (ms).
    Empirical(Arc<[f64]>),
}

impl Delay {
    /// Draws one delay in ms, clamped to `[0, MAX_SAMPLE_MS]` as the link emulator does.
    pub fn sample_ms<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let ms = match self {
            Delay::Model(distribution) => distribution.sample_ms(rng),
            Delay::Empirical(samples) => samples[rng.gen_range(0..samples.len())],
        };
        if ms.is_nan() {
            0.0
        } else {
            ms.clamp(0.0, MAX_SAMPLE_MS)
        }
    }

    /// An empirical delay from measured samples (ms), checked.
    pub fn empirical(samples: Vec<f64>) -> Result<Delay> {
        let delay = Delay::Empirical(samples.into());
        delay.validate("delay")?;
        Ok(delay)
    }

    /// The mean in ms, `None` if infinite.
    pub fn mean_ms(&self) -> Option<f64> {
        match self {
            Delay::Model(distribution) => distribution.mean_ms(),
            Delay::Empirical(samples) => Some(samples.iter().sum::<f64>() / samples.len() as f64),
        }
    }

    fn validate(&self, flag: &'static str) -> Result<()> {
        match self {
            Delay::Model(distribution) => {
                distribution.validate().map_err(|error| Error::InvalidFlag {
                    flag,
                    detail: error.to_string(),
                })
            }
            Delay::Empirical(samples) => {
                if samples.is_empty() || samples.len() > EMPIRICAL_SAMPLES_MAX {
                    return Err(Error::InvalidFlag {
                        flag,
                        detail: format!(
                            "an empirical delay needs 1 to {EMPIRICAL_SAMPLES_MAX} samples, got {}",
                            samples.len()
                        ),
                    });
                }
                match samples.iter().find(|ms| !(ms.is_finite() && **ms >= 0.0)) {
                    Some(bad) => Err(Error::InvalidFlag {
                        flag,
                        detail: format!("empirical sample {bad} is not a non-negative number"),
                    }),
                    None => Ok(()),
                }
            }
        }
    }
}

impl fmt::Display for Delay {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delay::Model(distribution) => write!(formatter, "{distribution}")?,
            Delay::Empirical(samples) => write!(formatter, "empirical({} samples)", samples.len())?,
        }
        match self.mean_ms() {
            Some(mean) => write!(formatter, " (mean {mean:.3} ms)"),
            None => write!(formatter, " (mean infinite)"),
        }
    }
}

impl From<DelayDistribution> for Delay {
    fn from(distribution: DelayDistribution) -> Self {
        Delay::Model(distribution)
    }
}

/// The four one-way delays of one replica.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaDelays {
    /// W: write request, coordinator to replica.
    pub write: Delay,
    /// A: write acknowledgement, replica to coordinator.
    pub ack: Delay,
    /// R: read request, coordinator to replica.
    pub read: Delay,
    /// S: read response, replica to coordinator.
    pub response: Delay,
}

impl ReplicaDelays {
    /// Checks each distribution, naming the flag that set it.
    pub fn validate(&self) -> Result<()> {
        self.write.validate("write-delay")?;
        self.ack.validate("ack-delay")?;
        self.read.validate("read-delay")?;
        self.response.validate("response-delay")
    }

    /// The same shift added to all four delays (a remote datacenter).
    fn shifted(&self, offset_ms: f64) -> ReplicaDelays {
        let shift = |delay: &Delay| match delay {
            Delay::Model(distribution) => {
                Delay::Model(DelayDistribution::shifted(offset_ms, distribution.clone()))
            }
            Delay::Empirical(samples) => {
                Delay::Empirical(samples.iter().map(|ms| ms + offset_ms).collect())
            }
        };
        ReplicaDelays {
            write: shift(&self.write),
            ack: shift(&self.ack),
            read: shift(&self.read),
            response: shift(&self.response),
        }
    }
}

/// Parses a delay in the link emulator's syntax or the `NAME:ARGS` shorthand; `flag` names
/// the flag in errors.
pub fn parse_delay(flag: &'static str, text: &str) -> Result<Delay> {
    const SHORTHAND: [&str; 9] = [
        "const",
        "constant",
        "uniform",
        "normal",
        "exp",
        "exponential",
        "pareto",
        "mix",
        "mixture",
    ];
    let trimmed = text.trim();
    let spec = match trimmed.split_once(':') {
        Some((name, args)) if SHORTHAND.contains(&name.trim()) => {
            format!("{}({args})", name.trim())
        }
        _ => trimmed.to_string(),
    };
    spec.parse::<DelayDistribution>()
        .map(Delay::Model)
        .map_err(|error| Error::InvalidFlag {
            flag,
            detail: error.to_string(),
        })
}

/// The named scenarios [`scenario`] knows.
pub const SCENARIOS: [&str; 4] = ["lnkd-ssd", "lnkd-disk", "ymmr", "wan"];

/// WAN scenario: added one-way delay (ms) between datacenters.
pub const WAN_DELAY_MS: f64 = 75.0;

fn preset(name: &str) -> Delay {
    Delay::Model(presets::lookup(name).expect("the cluster crate defines this preset"))
}

/// The per-replica delays of a named scenario of the paper for N replicas (one entry for all
/// replicas, or N entries for `wan`, replica 0 being in the coordinator's datacenter).
pub fn scenario(name: &str, replicas: usize) -> Result<Vec<ReplicaDelays>> {
    let ssd = preset("linkedin-ssd");
    let all = |write: Delay, rest: Delay| ReplicaDelays {
        write,
        ack: rest.clone(),
        read: rest.clone(),
        response: rest,
    };
    let disk = all(preset("linkedin-disk-write"), ssd.clone());
    match name {
        "lnkd-ssd" => Ok(vec![all(ssd.clone(), ssd)]),
        "lnkd-disk" => Ok(vec![disk]),
        "ymmr" => Ok(vec![all(preset("yammer-write"), preset("yammer"))]),
        "wan" => {
            let remote = disk.shifted(WAN_DELAY_MS);
            let mut delays = vec![disk];
            delays.extend(std::iter::repeat_n(remote, replicas.saturating_sub(1)));
            Ok(delays)
        }
        other => Err(Error::InvalidFlag {
            flag: "scenario",
            detail: format!(
                "unknown scenario '{other}' (known: {})",
                SCENARIOS.join(", ")
            ),
        }),
    }
}

/// The model of a named scenario for N, R, W (see [`scenario`]); `wan` routes reads through
/// a randomly placed coordinator.
pub fn scenario_model(
    name: &str,
    replicas: usize,
    read_quorum: usize,
    write_quorum: usize,
) -> Result<super::WarsModel> {
    Ok(super::WarsModel {
        replicas,
        read_quorum,
        write_quorum,
        delays: scenario(name, replicas)?,
        read_coordinator_random: name == "wan",
    })
}
