//! YCSB's `UniformLongGenerator`: `|nextLong| % interval + lower`.

use rand::RngCore;

/// Uniform over `lower ..= upper`.
#[derive(Debug, Clone)]
pub struct UniformLongGenerator {
    lower: i64,
    interval: u64,
}

impl UniformLongGenerator {
    /// Values `lower ..= upper`; `upper >= lower` is asserted (the config checks it first).
    pub fn new(lower: i64, upper: i64) -> Self {
        assert!(upper >= lower, "uniform range {lower}..={upper} is empty");
        Self {
            lower,
            interval: (upper - lower) as u64 + 1,
        }
    }

    /// The next value. YCSB's `Math.abs(nextLong()) % interval` has the same slight modulo
    /// bias for huge intervals; kept rather than "fixed" so the distributions agree.
    pub fn next_value(&self, rng: &mut dyn RngCore) -> i64 {
        let drawn = (rng.next_u64() as i64).unsigned_abs();
        self.lower + (drawn % self.interval) as i64
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, SeedableRng};

    use super::*;

    #[test]
    fn stays_within_bounds_and_reaches_both() {
        let generator = UniformLongGenerator::new(-3, 4);
        let mut rng = StdRng::seed_from_u64(11);
        let mut seen = [0_u32; 8];
        for _ in 0..10_000 {
            let value = generator.next_value(&mut rng);
            assert!((-3..=4).contains(&value), "{value}");
            seen[(value + 3) as usize] += 1;
        }
        assert!(
            seen.iter().all(|&count| (1100..1400).contains(&count)),
            "{seen:?}"
        );
        let single = UniformLongGenerator::new(9, 9);
        assert_eq!(single.next_value(&mut rng), 9);
    }
}
