//! YCSB's `HotspotIntegerGenerator`: a fraction of operations go to a fraction of the keys
//! (the lowest ones), each set drawn uniformly.

use rand::{Rng, RngCore};

/// Hot set `lower .. lower + hot_interval`, cold set the rest of `lower ..= upper`.
#[derive(Debug, Clone)]
pub struct HotspotIntegerGenerator {
    lower: i64,
    hot_interval: i64,
    cold_interval: i64,
    hot_operation_fraction: f64,
}

impl HotspotIntegerGenerator {
    /// Fractions must lie in [0, 1] (the config rejects others; YCSB would silently use 0).
    pub fn new(
        lower: i64,
        upper: i64,
        hot_data_fraction: f64,
        hot_operation_fraction: f64,
    ) -> Self {
        assert!(
            (0.0..=1.0).contains(&hot_data_fraction),
            "{hot_data_fraction}"
        );
        assert!(
            (0.0..=1.0).contains(&hot_operation_fraction),
            "{hot_operation_fraction}"
        );
        assert!(upper >= lower, "hotspot range {lower}..={upper} is empty");
        let interval = upper - lower + 1;
        // YCSB casts the hot interval to int; kept so hot sets agree.
        let hot_interval = (interval as f64 * hot_data_fraction) as i32 as i64;
        Self {
            lower,
            hot_interval,
            cold_interval: interval - hot_interval,
            hot_operation_fraction,
        }
    }

    /// Number of keys in the hot set.
    pub fn hot_interval(&self) -> i64 {
        self.hot_interval
    }

    /// The next key.
    pub fn next_value(&self, rng: &mut dyn RngCore) -> i64 {
        let hot = rng.gen::<f64>() < self.hot_operation_fraction;
        // YCSB divides by zero when a set is empty; the other set is the only sensible pick.
        let use_hot = (hot && self.hot_interval > 0) || self.cold_interval == 0;
        let drawn = (rng.next_u64() as i64).unsigned_abs();
        if use_hot {
            self.lower + (drawn % self.hot_interval as u64) as i64
        } else {
            self.lower + self.hot_interval + (drawn % self.cold_interval as u64) as i64
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, SeedableRng};

    use super::*;

    #[test]
    fn hot_set_gets_its_fraction_of_operations() {
        let generator = HotspotIntegerGenerator::new(0, 999, 0.2, 0.8);
        assert_eq!(generator.hot_interval(), 200);
        let mut rng = StdRng::seed_from_u64(9);
        let samples = 50_000;
        let mut hot = 0;
        for _ in 0..samples {
            let key = generator.next_value(&mut rng);
            assert!((0..1000).contains(&key), "{key}");
            if key < 200 {
                hot += 1;
            }
        }
        let fraction = hot as f64 / samples as f64;
        // Binomial standard deviation is 0.0018; allow about five of them.
        assert!((fraction - 0.8).abs() < 0.01, "{fraction}");
    }

    #[test]
    fn empty_hot_set_falls_back_to_cold() {
        let generator = HotspotIntegerGenerator::new(10, 12, 0.0, 1.0);
        let mut rng = StdRng::seed_from_u64(2);
        assert!((0..100).all(|_| (10..=12).contains(&generator.next_value(&mut rng))));
    }
}
