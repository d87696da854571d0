//! One-way delay distributions for emulated links.
//!
//! Sampling is implemented here from uniform draws (inverse CDF for uniform, exponential and
//! Pareto; Box-Muller for normal) rather than with `rand_distr`: five closed forms are a few
//! lines each, and owning them keeps a seeded simulation's sample stream fixed across
//! dependency upgrades, which a recorded experiment needs to replay exactly.
//!
//! In a TOML file a distribution is either a table tagged by `type`
//! (`{ type = "exponential", mean_ms = 20 }`) or a string in the compact text syntax
//! (`"50+exp(5)"`, see [`syntax`]); both are validated when read.

pub mod syntax;

use std::fmt;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Deepest nesting of mixtures and shifts accepted. Real latency fits need two or three
/// levels; the limit keeps recursive sampling and parsing bounded for hostile input.
pub const MAX_DEPTH: usize = 8;

/// Most components one mixture may have; published fits use two or three.
pub const MAX_MIXTURE_COMPONENTS: usize = 16;

/// Largest parameter (in milliseconds) accepted anywhere: one hour. Anything larger is a typo
/// (seconds given as milliseconds twice over) rather than a link anyone wants to emulate.
pub const MAX_PARAMETER_MS: f64 = 3_600_000.0;

/// Samples are capped at ten minutes. Heavy-tailed distributions (Pareto with a small shape)
/// occasionally draw absurd values; a message held that long is in effect lost, and holding it
/// would pin memory in the transport. Means reported by [`DelayDistribution::mean_ms`] ignore
/// the cap.
pub const MAX_SAMPLE_MS: f64 = 600_000.0;

/// Resampling attempts for the truncated normal before giving up and returning zero. The
/// mean is validated non-negative, so each attempt succeeds with probability at least 1/2 and
/// 64 failures in a row happen with probability below 2^-64.
const NORMAL_RESAMPLE_LIMIT: usize = 64;

/// A distribution of one-way delay, parameters in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DelayDistribution {
    /// Always `ms`.
    Constant {
        /// The delay.
        ms: f64,
    },
    /// Uniform on `[min_ms, max_ms)`.
    Uniform {
        /// Smallest delay.
        min_ms: f64,
        /// Largest delay (exclusive); equal to `min_ms` means constant.
        max_ms: f64,
    },
    /// Normal, truncated at zero by resampling (so the result is the conditional distribution
    /// given a non-negative draw, not a spike of mass at zero).
    Normal {
        /// Mean before truncation; must be non-negative.
        mean_ms: f64,
        /// Standard deviation before truncation.
        stddev_ms: f64,
    },
    /// Exponential with the given mean (rate `1 / mean_ms`).
    Exponential {
        /// Mean delay.
        mean_ms: f64,
    },
    /// Pareto (type I): minimum `scale_ms` (x_m) and tail index `shape` (alpha).
    Pareto {
        /// The minimum delay, x_m; must be positive.
        scale_ms: f64,
        /// The tail index alpha; must be positive. The mean is finite only for alpha > 1.
        shape: f64,
    },
    /// `offset_ms` plus a draw from `inner`: fixed propagation delay plus queueing jitter.
    Shifted {
        /// The fixed part.
        offset_ms: f64,
        /// The random part.
        inner: Box<DelayDistribution>,
    },
    /// Draws from one component chosen with probability proportional to its weight.
    Mixture {
        /// The components; weights need not sum to one.
        components: Vec<MixtureComponent>,
    },
}

/// One weighted component of a [`DelayDistribution::Mixture`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureComponent {
    /// Relative weight; must be positive.
    pub weight: f64,
    /// The component's distribution.
    pub delay: DelayDistribution,
}

impl Default for DelayDistribution {
    /// No delay at all: an unconfigured link behaves like a local one.
    fn default() -> Self {
        DelayDistribution::Constant { ms: 0.0 }
    }
}

impl DelayDistribution {
    /// A mixture from `(weight, distribution)` pairs.
    pub fn mixture(components: impl IntoIterator<Item = (f64, DelayDistribution)>) -> Self {
        DelayDistribution::Mixture {
            components: components
                .into_iter()
                .map(|(weight, delay)| MixtureComponent { weight, delay })
                .collect(),
        }
    }

    /// `offset_ms` plus a draw from `inner`.
    pub fn shifted(offset_ms: f64, inner: DelayDistribution) -> Self {
        DelayDistribution::Shifted {
            offset_ms,
            inner: Box::new(inner),
        }
    }

    /// Draws one delay. Assumes the distribution is valid (see [`Self::validate`]); values
    /// are clamped to `[0, MAX_SAMPLE_MS]` so an invalid one still cannot panic.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let ms = self.sample_ms(rng);
        let ms = if ms.is_nan() {
            0.0
        } else {
            ms.clamp(0.0, MAX_SAMPLE_MS)
        };
        Duration::from_secs_f64(ms / 1000.0)
    }

    /// Draws one delay in milliseconds, uncapped.
    pub fn sample_ms<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match self {
            DelayDistribution::Constant { ms } => *ms,
            DelayDistribution::Uniform { min_ms, max_ms } => {
                min_ms + (max_ms - min_ms) * rng.gen::<f64>()
            }
            DelayDistribution::Normal { mean_ms, stddev_ms } => {
                for _ in 0..NORMAL_RESAMPLE_LIMIT {
                    let draw = mean_ms + stddev_ms * standard_normal(rng);
                    if draw >= 0.0 {
                        return draw;
                    }
                }
                0.0
            }
            // 1 - u lies in (0, 1], so the logarithm is finite.
            DelayDistribution::Exponential { mean_ms } => -mean_ms * (1.0 - rng.gen::<f64>()).ln(),
            DelayDistribution::Pareto { scale_ms, shape } => {
                scale_ms / (1.0 - rng.gen::<f64>()).powf(1.0 / shape)
            }
            DelayDistribution::Shifted { offset_ms, inner } => offset_ms + inner.sample_ms(rng),
            DelayDistribution::Mixture { components } => {
                let total: f64 = components.iter().map(|c| c.weight).sum();
                let mut target = rng.gen::<f64>() * total;
                for component in components {
                    if target < component.weight {
                        return component.delay.sample_ms(rng);
                    }
                    target -= component.weight;
                }
                // Rounding can leave `target` a hair above the last weight.
                components
                    .last()
                    .map_or(0.0, |component| component.delay.sample_ms(rng))
            }
        }
    }

    /// The exact mean in milliseconds, or `None` where it is infinite (Pareto with
    /// `shape <= 1`, or a mixture or shift containing one). Ignores the [`MAX_SAMPLE_MS`] cap.
    pub fn mean_ms(&self) -> Option<f64> {
        match self {
            DelayDistribution::Constant { ms } => Some(*ms),
            DelayDistribution::Uniform { min_ms, max_ms } => Some((min_ms + max_ms) / 2.0),
            DelayDistribution::Normal { mean_ms, stddev_ms } => {
                Some(truncated_normal_mean(*mean_ms, *stddev_ms))
            }
            DelayDistribution::Exponential { mean_ms } => Some(*mean_ms),
            DelayDistribution::Pareto { scale_ms, shape } => {
                (*shape > 1.0).then(|| shape * scale_ms / (shape - 1.0))
            }
            DelayDistribution::Shifted { offset_ms, inner } => {
                inner.mean_ms().map(|mean| offset_ms + mean)
            }
            DelayDistribution::Mixture { components } => {
                let total: f64 = components.iter().map(|c| c.weight).sum();
                let mut mean = 0.0;
                for component in components {
                    mean += component.weight / total * component.delay.mean_ms()?;
                }
                Some(mean)
            }
        }
    }

    /// Checks every parameter: finite, non-negative, within [`MAX_PARAMETER_MS`], Pareto
    /// scale and shape positive, mixture weights positive, at most
    /// [`MAX_MIXTURE_COMPONENTS`] components and [`MAX_DEPTH`] levels of nesting.
    pub fn validate(&self) -> Result<()> {
        self.validate_at(1)
    }

    fn validate_at(&self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(invalid(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        match self {
            DelayDistribution::Constant { ms } => check_ms("const", "ms", *ms),
            DelayDistribution::Uniform { min_ms, max_ms } => {
                check_ms("uniform", "min_ms", *min_ms)?;
                check_ms("uniform", "max_ms", *max_ms)?;
                if max_ms < min_ms {
                    return Err(invalid(format!(
                        "uniform: max_ms {max_ms} is below min_ms {min_ms}"
                    )));
                }
                Ok(())
            }
            DelayDistribution::Normal { mean_ms, stddev_ms } => {
                check_ms("normal", "mean_ms", *mean_ms)?;
                check_ms("normal", "stddev_ms", *stddev_ms)
            }
            DelayDistribution::Exponential { mean_ms } => check_ms("exp", "mean_ms", *mean_ms),
            DelayDistribution::Pareto { scale_ms, shape } => {
                check_ms("pareto", "scale_ms", *scale_ms)?;
                if *scale_ms <= 0.0 {
                    return Err(invalid("pareto: scale_ms must be positive".to_string()));
                }
                // Shapes much below 0.1 put nearly every draw at the sample cap; above 1000
                // the distribution is a constant in disguise. Both are typos.
                if !(shape.is_finite() && (0.01..=1000.0).contains(shape)) {
                    return Err(invalid(format!(
                        "pareto: shape {shape} must be positive, between 0.01 and 1000"
                    )));
                }
                Ok(())
            }
            DelayDistribution::Shifted { offset_ms, inner } => {
                check_ms("shift", "offset_ms", *offset_ms)?;
                inner.validate_at(depth + 1)
            }
            DelayDistribution::Mixture { components } => {
                if components.is_empty() {
                    return Err(invalid("mix: needs at least one component".to_string()));
                }
                if components.len() > MAX_MIXTURE_COMPONENTS {
                    return Err(invalid(format!(
                        "mix: {} components exceed the limit of {MAX_MIXTURE_COMPONENTS}",
                        components.len()
                    )));
                }
                for component in components {
                    let weight = component.weight;
                    if !(weight.is_finite() && weight > 0.0) {
                        return Err(invalid(format!(
                            "mix: weight {weight} must be positive and finite"
                        )));
                    }
                    component.delay.validate_at(depth + 1)?;
                }
                Ok(())
            }
        }
    }

    /// One-line description with the mean, for the admin `describe` table.
    pub fn summary(&self) -> String {
        match self.mean_ms() {
            Some(mean) => format!("{self} (mean {mean:.3} ms)"),
            None => format!("{self} (mean infinite)"),
        }
    }
}

fn invalid(detail: String) -> Error {
    Error::InvalidConfig {
        field: "delay".to_string(),
        detail,
    }
}

fn check_ms(distribution: &str, parameter: &str, value: f64) -> Result<()> {
    if !value.is_finite() || value < 0.0 {
        return Err(invalid(format!(
            "{distribution}: {parameter} {value} must be a non-negative number"
        )));
    }
    if value > MAX_PARAMETER_MS {
        return Err(invalid(format!(
            "{distribution}: {parameter} {value} exceeds the limit of {MAX_PARAMETER_MS} ms"
        )));
    }
    Ok(())
}

/// One standard normal draw by Box-Muller (the cosine half; the sine half is discarded so
/// the generator holds no state between calls).
fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let radius_uniform = 1.0 - rng.gen::<f64>(); // (0, 1], so ln is finite
    let angle_uniform = rng.gen::<f64>();
    (-2.0 * radius_uniform.ln()).sqrt() * (std::f64::consts::TAU * angle_uniform).cos()
}

/// Mean of a normal conditioned on being non-negative: mu + sigma * phi(a) / Phi(a) with
/// a = mu / sigma.
fn truncated_normal_mean(mean: f64, stddev: f64) -> f64 {
    if stddev <= 0.0 {
        return mean.max(0.0);
    }
    let a = mean / stddev;
    let density = (-a * a / 2.0).exp() / (std::f64::consts::TAU).sqrt();
    let mass = 0.5 * erfc(-a / std::f64::consts::SQRT_2);
    mean + stddev * density / mass
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, relative error below
/// 1.2e-7): std has none and the truncated-normal mean needs only a few digits.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let value = t * poly.exp();
    if x >= 0.0 {
        value
    } else {
        2.0 - value
    }
}

impl<'de> Deserialize<'de> for DelayDistribution {
    /// Accepts the tagged table or a string in the text syntax; validates either way, so a
    /// bad configuration is rejected when the file is read, naming the bad value.
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(DelayVisitor)
    }
}

struct DelayVisitor;

impl<'de> serde::de::Visitor<'de> for DelayVisitor {
    type Value = DelayDistribution;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(
            "a delay distribution: a table with `type` (constant, uniform, normal, exponential, \
             pareto, shifted, mixture) or a string such as \"50+exp(5)\"",
        )
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> std::result::Result<Self::Value, E> {
        text.parse().map_err(E::custom)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let tagged = TaggedDelay::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        let distribution = tagged.into_distribution();
        distribution.validate().map_err(serde::de::Error::custom)?;
        Ok(distribution)
    }
}

/// The table form, mirrored so the public enum can also be read from a string.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum TaggedDelay {
    Constant {
        ms: f64,
    },
    Uniform {
        min_ms: f64,
        max_ms: f64,
    },
    Normal {
        mean_ms: f64,
        stddev_ms: f64,
    },
    Exponential {
        mean_ms: f64,
    },
    Pareto {
        scale_ms: f64,
        shape: f64,
    },
    Shifted {
        offset_ms: f64,
        inner: Box<DelayDistribution>,
    },
    Mixture {
        components: Vec<MixtureComponent>,
    },
}

impl TaggedDelay {
    fn into_distribution(self) -> DelayDistribution {
        match self {
            TaggedDelay::Constant { ms } => DelayDistribution::Constant { ms },
            TaggedDelay::Uniform { min_ms, max_ms } => {
                DelayDistribution::Uniform { min_ms, max_ms }
            }
            TaggedDelay::Normal { mean_ms, stddev_ms } => {
                DelayDistribution::Normal { mean_ms, stddev_ms }
            }
            TaggedDelay::Exponential { mean_ms } => DelayDistribution::Exponential { mean_ms },
            TaggedDelay::Pareto { scale_ms, shape } => {
                DelayDistribution::Pareto { scale_ms, shape }
            }
            TaggedDelay::Shifted { offset_ms, inner } => {
                DelayDistribution::Shifted { offset_ms, inner }
            }
            TaggedDelay::Mixture { components } => DelayDistribution::Mixture { components },
        }
    }
}

#[cfg(test)]
mod tests;
