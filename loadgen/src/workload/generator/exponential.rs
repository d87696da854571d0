//! YCSB's `ExponentialGenerator`, used as "how far back from the newest key".

use rand::{Rng, RngCore};

/// YCSB's default `exponential.percentile`.
pub const EXPONENTIAL_PERCENTILE_DEFAULT: f64 = 95.0;
/// YCSB's default `exponential.frac` (the string "0.8571428571").
pub const EXPONENTIAL_FRACTION_DEFAULT: f64 = 0.857_142_857_1;

/// Exponential with rate `gamma`, set so that `percentile` % of draws fall below `range`.
#[derive(Debug, Clone)]
pub struct ExponentialGenerator {
    gamma: f64,
}

impl ExponentialGenerator {
    /// `percentile` % of draws below `range`.
    pub fn new(percentile: f64, range: f64) -> Self {
        Self {
            gamma: -(1.0 - percentile / 100.0).ln() / range,
        }
    }

    /// The next draw as YCSB's workload uses it: `Double.intValue()`, truncating toward
    /// zero and saturating at `i32` bounds.
    pub fn next_value(&self, rng: &mut dyn RngCore) -> i64 {
        let uniform: f64 = rng.gen();
        (-uniform.ln() / self.gamma) as i32 as i64
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, SeedableRng};

    use super::*;

    #[test]
    fn percentile_of_draws_fall_below_range() {
        let generator = ExponentialGenerator::new(90.0, 100.0);
        let mut rng = StdRng::seed_from_u64(4);
        let samples = 20_000;
        let below = (0..samples)
            .filter(|_| generator.next_value(&mut rng) < 100)
            .count();
        let fraction = below as f64 / samples as f64;
        assert!((fraction - 0.9).abs() < 0.01, "{fraction}");
    }
}
