//! Named production latency fits, usable as `preset:NAME` in the text syntax.
//!
//! Source: P. Bailis, S. Venkataraman, M. J. Franklin, J. M. Hellerstein, I. Stoica,
//! "Probabilistically Bounded Staleness for Practical Partial Quorums", PVLDB 5(8), 2012,
//! Table 3 ("Distribution fits for production latency distributions"). The numbers were read
//! from the paper's LaTeX source (`writeup/ernst.tex`, label `table:fits`, in the authors'
//! repository `pbailis/pbs-vldb-historical-paper-material`) and cross-checked against the
//! authors' Monte Carlo simulator in the same repository (`nrw_solver/src/Simulator.java`,
//! classes `LinkedSSDDelay`, `LinkedDiskDelay`, `YammerDelayModel`). The two agree except the
//! Yammer write Pareto shape: the table says 3.35, the simulator 3.5; we follow the table.
//!
//! The paper fits *one-way* message delays of the WARS model: W (write request to a
//! replica), A (write acknowledgement), R (read request), S (read response), each a mixture
//! of a Pareto body and an exponential tail. Exponential rates are given there as lambda per
//! millisecond; here as the mean `1 / lambda`. The fits are single-node service plus network
//! times inside one datacenter; the paper's WAN scenario adds a fixed 75 ms to remote
//! messages, which is `75+preset:linkedin-ssd` in this syntax.
//!
//! Since one emulated link carries every message type, pick the preset matching the messages
//! that dominate, or use the write fit on the links whose delay you want to stress.

use super::delay::DelayDistribution;

/// One named preset.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// The name used after `preset:`.
    pub name: &'static str,
    /// What was measured and which WARS message types the fit describes.
    pub description: &'static str,
    /// Builds the distribution.
    build: fn() -> DelayDistribution,
}

impl Preset {
    /// The preset's distribution.
    pub fn distribution(&self) -> DelayDistribution {
        (self.build)()
    }
}

/// A Pareto body weighted `pareto_weight` plus an exponential tail with rate `lambda` per ms.
fn pareto_exponential(
    pareto_weight: f64,
    scale_ms: f64,
    shape: f64,
    exponential_weight: f64,
    lambda_per_ms: f64,
) -> DelayDistribution {
    DelayDistribution::mixture([
        (pareto_weight, DelayDistribution::Pareto { scale_ms, shape }),
        (
            exponential_weight,
            DelayDistribution::Exponential {
                mean_ms: 1.0 / lambda_per_ms,
            },
        ),
    ])
}

/// All presets, in the order `names()` lists them.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "linkedin-ssd",
        description: "LNKD-SSD: LinkedIn Voldemort on SSDs, W=A=R=S; 91.22% Pareto(0.235, 10) \
                      + 8.78% exponential(rate 1.66/ms). Also LNKD-DISK's A=R=S.",
        build: || pareto_exponential(0.9122, 0.235, 10.0, 0.0878, 1.66),
    },
    Preset {
        name: "linkedin-disk-write",
        description: "LNKD-DISK write requests (W): LinkedIn Voldemort on 15k RPM disks; 38% \
                      Pareto(1.05, 1.51) + 62% exponential(rate 0.183/ms).",
        build: || pareto_exponential(0.38, 1.05, 1.51, 0.62, 0.183),
    },
    Preset {
        name: "yammer",
        description: "YMMR A=R=S (read requests, read responses, write acks): Yammer Riak; \
                      98.2% Pareto(1.5, 3.8) + 1.8% exponential(rate 0.0217/ms).",
        build: || pareto_exponential(0.982, 1.5, 3.8, 0.018, 0.0217),
    },
    Preset {
        name: "yammer-write",
        description: "YMMR write requests (W): Yammer Riak; 93.9% Pareto(3, 3.35) + 6.1% \
                      exponential(rate 0.0028/ms).",
        build: || pareto_exponential(0.939, 3.0, 3.35, 0.061, 0.0028),
    },
];

/// The preset called `name`, if any.
pub fn lookup(name: &str) -> Option<DelayDistribution> {
    PRESETS
        .iter()
        .find(|preset| preset.name == name)
        .map(Preset::distribution)
}

/// Every preset name.
pub fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|preset| preset.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_have_the_published_means() {
        for preset in PRESETS {
            preset.distribution().validate().unwrap();
        }
        // LNKD-SSD: 0.9122 * (10 * 0.235 / 9) + 0.0878 / 1.66.
        let ssd = lookup("linkedin-ssd").unwrap().mean_ms().unwrap();
        let expected = 0.9122 * (10.0 * 0.235 / 9.0) + 0.0878 / 1.66;
        assert!((ssd - expected).abs() < 1e-12, "{ssd} vs {expected}");
        // Sanity against the paper's Table 1: SSD average 0.58 ms is a round trip of two of
        // these one-way delays plus service, so each one-way mean is below it.
        assert!(ssd < 0.58);
    }

    #[test]
    fn presets_parse_in_the_text_syntax() {
        for name in names() {
            let parsed: DelayDistribution = format!("preset:{name}").parse().unwrap();
            assert_eq!(parsed, lookup(name).unwrap());
        }
        let wan: DelayDistribution = "75+preset:linkedin-ssd".parse().unwrap();
        assert_eq!(
            wan,
            DelayDistribution::shifted(75.0, lookup("linkedin-ssd").unwrap())
        );
        let error = "preset:nope".parse::<DelayDistribution>().unwrap_err();
        assert!(
            error.to_string().contains("unknown preset 'nope'"),
            "{error}"
        );
    }
}
