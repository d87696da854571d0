//! YCSB's `SkewedLatestGenerator`: zipfian over "how many keys back from the newest
//! acknowledged insert", so recently inserted keys are the most popular (workload D).

use std::sync::Arc;

use rand::RngCore;

use super::counter::AcknowledgedCounterGenerator;
use super::zipfian::ZipfianGenerator;

/// Skewed towards the latest acknowledged key of a shared insert counter.
#[derive(Debug)]
pub struct SkewedLatestGenerator {
    basis: Arc<AcknowledgedCounterGenerator>,
    zipfian: ZipfianGenerator,
}

impl SkewedLatestGenerator {
    /// YCSB builds the zipfian over `basis.lastValue()` items at construction and lets it
    /// grow (incremental zeta) as inserts are acknowledged.
    pub fn new(basis: Arc<AcknowledgedCounterGenerator>) -> Self {
        let items = basis.last_value();
        Self {
            basis,
            zipfian: ZipfianGenerator::new(0, items - 1),
        }
    }

    /// The next key: newest acknowledged minus a zipfian offset.
    pub fn next_value(&mut self, rng: &mut dyn RngCore) -> i64 {
        let newest = self.basis.last_value();
        newest - self.zipfian.next_long(newest, rng)
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, SeedableRng};

    use super::*;

    #[test]
    fn prefers_the_latest_keys_and_follows_inserts() {
        let basis = Arc::new(AcknowledgedCounterGenerator::new(1000));
        let mut generator = SkewedLatestGenerator::new(Arc::clone(&basis));
        let mut rng = StdRng::seed_from_u64(6);
        let mut counts = vec![0_u32; 1000];
        for _ in 0..20_000 {
            let key = generator.next_value(&mut rng);
            assert!((0..=999).contains(&key), "{key}");
            counts[key as usize] += 1;
        }
        let most_frequent = (0..1000).max_by_key(|&key| counts[key]).unwrap();
        assert_eq!(
            most_frequent, 999,
            "the last inserted key is the most frequent"
        );
        assert!(counts[999] > counts[998] && counts[998] > counts[990]);

        // After 10 more inserts the newest key becomes the favourite.
        for _ in 0..10 {
            let key = basis.next_value();
            basis.acknowledge(key).unwrap();
        }
        let mut newest_hits = 0;
        for _ in 0..2_000 {
            let key = generator.next_value(&mut rng);
            assert!(key <= 1009, "{key}");
            if key == 1009 {
                newest_hits += 1;
            }
        }
        assert!(newest_hits > 200, "{newest_hits}");
    }
}
