//! YCSB's `DiscreteGenerator`: picks one of several values by weight, weights normalised
//! by their sum (so proportions need not add up to one).

use rand::{Rng, RngCore};

/// Weighted choice among values.
#[derive(Debug, Clone)]
pub struct DiscreteGenerator<T> {
    choices: Vec<(f64, T)>,
    weight_sum: f64,
}

impl<T: Clone> DiscreteGenerator<T> {
    /// Choices with positive weights; the caller rejects an all-zero set.
    pub fn new(choices: Vec<(f64, T)>) -> Self {
        assert!(!choices.is_empty(), "a discrete generator needs a choice");
        assert!(
            choices.iter().all(|(weight, _)| *weight > 0.0),
            "weights must be positive"
        );
        let weight_sum = choices.iter().map(|(weight, _)| weight).sum();
        Self {
            choices,
            weight_sum,
        }
    }

    /// The next value: walks the choices subtracting normalised weights from one uniform
    /// draw, as YCSB does, so the same draw picks the same value.
    pub fn next_value(&self, rng: &mut dyn RngCore) -> T {
        let mut remaining: f64 = rng.gen();
        for (weight, value) in &self.choices {
            let normalised = weight / self.weight_sum;
            if remaining < normalised {
                return value.clone();
            }
            remaining -= normalised;
        }
        // Rounding can leave a sliver past the last weight, where YCSB would assert.
        self.choices[self.choices.len() - 1].1.clone()
    }

    /// The choices and their weights as given.
    pub fn choices(&self) -> &[(f64, T)] {
        &self.choices
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, SeedableRng};

    use super::*;

    #[test]
    fn frequencies_follow_normalised_weights() {
        // Weights summing to 2 behave like 0.25 / 0.75.
        let generator = DiscreteGenerator::new(vec![(0.5, 'a'), (1.5, 'b')]);
        let mut rng = StdRng::seed_from_u64(5);
        let samples = 40_000;
        let a_count = (0..samples)
            .filter(|_| generator.next_value(&mut rng) == 'a')
            .count();
        let fraction = a_count as f64 / samples as f64;
        assert!((fraction - 0.25).abs() < 0.01, "{fraction}");
    }
}
