//! YCSB's `ZipfianGenerator` and `ScrambledZipfianGenerator`.
//!
//! The algorithm is Gray et al., "Quickly Generating Billion-Record Synthetic Databases"
//! (SIGMOD 1994), with YCSB's constants and quirks kept on purpose so a run here skews keys
//! the way a YCSB run does: `eta` is recomputed with the item count given at construction,
//! not the grown one, and `zeta` is extended incrementally when the item count grows.

use rand::{Rng, RngCore};

use super::super::keys::fnv_hash_64;

/// YCSB's `ZipfianGenerator.ZIPFIAN_CONSTANT`.
pub const ZIPFIAN_CONSTANT: f64 = 0.99;
/// YCSB's `ScrambledZipfianGenerator.ITEM_COUNT`: the scrambled generator draws from this
/// many items and folds them onto the key range, so inserts do not move the popular keys.
pub const SCRAMBLED_ITEM_COUNT: i64 = 10_000_000_000;
/// YCSB's `ScrambledZipfianGenerator.ZETAN`: zeta(10^10, 0.99), precomputed because the sum
/// takes minutes.
pub const SCRAMBLED_ZETA_N: f64 = 26.46902820178302;

/// Zeta of items `first_item + 1 ..= item_count` added to `initial_sum` (YCSB's
/// `zetastatic(st, n, theta, initialsum)`).
pub fn zeta(first_item: i64, item_count: i64, theta: f64, initial_sum: f64) -> f64 {
    let mut sum = initial_sum;
    for item in first_item..item_count {
        sum += 1.0 / ((item + 1) as f64).powf(theta);
    }
    sum
}

/// Zipfian over `base ..= base + items - 1`, item `base` the most popular.
#[derive(Debug, Clone)]
pub struct ZipfianGenerator {
    items: i64,
    base: i64,
    theta: f64,
    zeta_2_theta: f64,
    alpha: f64,
    zeta_n: f64,
    eta: f64,
    count_for_zeta: i64,
    last_value: i64,
}

impl ZipfianGenerator {
    /// Items `minimum ..= maximum` with YCSB's constant 0.99; computes zeta in O(items).
    pub fn new(minimum: i64, maximum: i64) -> Self {
        Self::with_constant(minimum, maximum, ZIPFIAN_CONSTANT)
    }

    /// Items `minimum ..= maximum` with another zipfian constant.
    pub fn with_constant(minimum: i64, maximum: i64, zipfian_constant: f64) -> Self {
        let zeta_n = zeta(0, maximum - minimum + 1, zipfian_constant, 0.0);
        Self::with_zeta(minimum, maximum, zipfian_constant, zeta_n)
    }

    /// Items `minimum ..= maximum` with a precomputed zeta of the item count.
    pub fn with_zeta(minimum: i64, maximum: i64, zipfian_constant: f64, zeta_n: f64) -> Self {
        let items = maximum - minimum + 1;
        let theta = zipfian_constant;
        let zeta_2_theta = zeta(0, 2, theta, 0.0);
        Self {
            items,
            base: minimum,
            theta,
            zeta_2_theta,
            alpha: 1.0 / (1.0 - theta),
            zeta_n,
            eta: eta(items, theta, zeta_2_theta, zeta_n),
            count_for_zeta: items,
            last_value: minimum,
        }
    }

    /// The next item from the configured item count.
    pub fn next_value(&mut self, rng: &mut dyn RngCore) -> i64 {
        self.next_long(self.items, rng)
    }

    /// The next item when the distribution has `item_count` items (YCSB's `nextLong`). A
    /// larger count than last time extends zeta incrementally; a smaller one keeps the old
    /// zeta, as YCSB does with `allowitemcountdecrease` false.
    pub fn next_long(&mut self, item_count: i64, rng: &mut dyn RngCore) -> i64 {
        if item_count > self.count_for_zeta {
            self.zeta_n = zeta(self.count_for_zeta, item_count, self.theta, self.zeta_n);
            self.count_for_zeta = item_count;
            // YCSB recomputes eta with the constructor's item count; kept for fidelity.
            self.eta = eta(self.items, self.theta, self.zeta_2_theta, self.zeta_n);
        }
        let uniform: f64 = rng.gen();
        let scaled = uniform * self.zeta_n;
        if scaled < 1.0 {
            return self.base;
        }
        if scaled < 1.0 + 0.5_f64.powf(self.theta) {
            return self.base + 1;
        }
        let offset =
            (item_count as f64 * (self.eta * uniform - self.eta + 1.0).powf(self.alpha)) as i64;
        // YCSB records the last value only on this path; kept for fidelity.
        self.last_value = self.base + offset;
        self.last_value
    }

    /// The last value recorded (see `next_long`).
    pub fn last_value(&self) -> i64 {
        self.last_value
    }

    /// The zeta currently in use (grows with the item count).
    pub fn zeta_n(&self) -> f64 {
        self.zeta_n
    }
}

fn eta(items: i64, theta: f64, zeta_2_theta: f64, zeta_n: f64) -> f64 {
    (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta_2_theta / zeta_n)
}

/// Zipfian popularity scattered over `minimum ..= maximum` by hashing the item drawn from a
/// fixed 10^10-item zipfian, as YCSB's `ScrambledZipfianGenerator` does.
#[derive(Debug, Clone)]
pub struct ScrambledZipfianGenerator {
    generator: ZipfianGenerator,
    minimum: i64,
    item_count: i64,
}

impl ScrambledZipfianGenerator {
    /// Keys `minimum ..= maximum`. Only YCSB's constant 0.99 is offered: another constant
    /// would need zeta over 10^10 items.
    pub fn new(minimum: i64, maximum: i64) -> Self {
        Self {
            // YCSB passes max = ITEM_COUNT, so the inner generator has ITEM_COUNT + 1 items
            // with the zeta of ITEM_COUNT; kept for fidelity.
            generator: ZipfianGenerator::with_zeta(
                0,
                SCRAMBLED_ITEM_COUNT,
                ZIPFIAN_CONSTANT,
                SCRAMBLED_ZETA_N,
            ),
            minimum,
            item_count: maximum - minimum + 1,
        }
    }

    /// The next key.
    pub fn next_value(&mut self, rng: &mut dyn RngCore) -> i64 {
        let drawn = self.generator.next_value(rng);
        self.minimum + fnv_hash_64(drawn) % self.item_count
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, SeedableRng};

    use super::*;

    /// YCSB's probability of each rank for a generator over `items` items: the inverse
    /// transform makes rank 0 exactly 1/zeta, rank 1 exactly 0.5^theta/zeta, and rank k >= 2
    /// the mass of u where floor(n * (eta*u - eta + 1)^alpha) == k.
    fn ycsb_rank_probabilities(items: i64) -> Vec<f64> {
        let generator = ZipfianGenerator::new(0, items - 1);
        let zeta_n = generator.zeta_n;
        let eta = generator.eta;
        let alpha = generator.alpha;
        let n = items as f64;
        // Inverse of the tail transform: the u at which the item reaches `rank`.
        let u_at = |rank: f64| ((rank / n).powf(1.0 / alpha) - 1.0 + eta) / eta;
        let first_tail_u = (1.0 + 0.5_f64.powf(ZIPFIAN_CONSTANT)) / zeta_n;
        let mut probabilities = vec![0.0; items as usize];
        probabilities[0] = 1.0 / zeta_n;
        probabilities[1] = 0.5_f64.powf(ZIPFIAN_CONSTANT) / zeta_n;
        for (rank, probability) in probabilities.iter_mut().enumerate() {
            let low = u_at(rank as f64).clamp(first_tail_u, 1.0);
            let high = u_at(rank as f64 + 1.0).clamp(first_tail_u, 1.0);
            *probability += high - low;
        }
        probabilities
    }

    #[test]
    fn zipfian_rank_frequencies_pass_chi_square() {
        const ITEMS: i64 = 1000;
        const SAMPLES: usize = 200_000;
        const TOP_RANKS: usize = 20;
        let probabilities = ycsb_rank_probabilities(ITEMS);
        let mut generator = ZipfianGenerator::new(0, ITEMS - 1);
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = vec![0_u64; TOP_RANKS + 1];
        for _ in 0..SAMPLES {
            let item = generator.next_value(&mut rng);
            assert!((0..ITEMS).contains(&item), "{item}");
            counts[(item as usize).min(TOP_RANKS)] += 1;
        }
        let tail_probability: f64 = probabilities[TOP_RANKS..].iter().sum();
        let mut chi_square = 0.0;
        for (bucket, &observed) in counts.iter().enumerate() {
            let probability = if bucket < TOP_RANKS {
                probabilities[bucket]
            } else {
                tail_probability
            };
            let expected = probability * SAMPLES as f64;
            chi_square += (observed as f64 - expected).powi(2) / expected;
        }
        // 20 degrees of freedom: the 0.999 quantile is 45.3.
        assert!(
            chi_square < 45.3,
            "chi-square {chi_square}, counts {counts:?}"
        );
        // The analytic probabilities themselves must sum to one.
        let total: f64 = probabilities.iter().sum();
        assert!((total - 1.0).abs() < 1e-3, "{total}");
    }

    #[test]
    fn zeta_grows_incrementally() {
        let mut generator = ZipfianGenerator::new(0, 99);
        let mut rng = StdRng::seed_from_u64(1);
        generator.next_long(150, &mut rng);
        let from_scratch = zeta(0, 150, ZIPFIAN_CONSTANT, 0.0);
        assert!((generator.zeta_n() - from_scratch).abs() < 1e-12);
        // A smaller count does not recompute.
        generator.next_long(120, &mut rng);
        assert!((generator.zeta_n() - from_scratch).abs() < 1e-12);
    }

    #[test]
    fn scrambled_zeta_constant_matches_its_definition_approximately() {
        // Euler-Maclaurin: zeta(n, s) ~ n^(1-s)/(1-s) + zeta(s) + n^-s / 2, with
        // Riemann zeta(0.99) = -99.4228...; checks the constant is zeta(10^10, 0.99).
        let n = SCRAMBLED_ITEM_COUNT as f64;
        let approximation = n.powf(0.01) / 0.01 - 99.42280599 + 0.5 * n.powf(-0.99);
        assert!(
            (approximation - SCRAMBLED_ZETA_N).abs() < 1e-2,
            "{approximation}"
        );
    }

    #[test]
    fn scrambled_stays_in_range_and_is_skewed() {
        let mut generator = ScrambledZipfianGenerator::new(100, 1099);
        let mut rng = StdRng::seed_from_u64(3);
        let mut counts = vec![0_u32; 1000];
        for _ in 0..50_000 {
            let key = generator.next_value(&mut rng);
            assert!((100..=1099).contains(&key), "{key}");
            counts[(key - 100) as usize] += 1;
        }
        // Item 0 of the inner zipfian always lands on min + fnvhash64(0) % 1000.
        let hottest = 100 + fnv_hash_64(0) % 1000;
        let maximum = *counts.iter().max().unwrap();
        assert_eq!(counts[(hottest - 100) as usize], maximum);
    }
}
