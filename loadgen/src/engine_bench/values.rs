//! Values as db_bench's `RandomGenerator` makes them (tools/db_bench_tool.cc): at start it
//! fills a buffer of `max(1 MiB, value_size)` bytes with 100-byte pieces from
//! `test::CompressibleString(&rnd, compression_ratio, 100)`, with `Random rnd(301)`: each
//! piece is `int(100 * ratio)` (at least 1) random printable bytes (`' ' + rnd.Uniform(95)`)
//! repeated until 100 bytes. `Generate(len)` hands out consecutive `len`-byte windows of
//! that buffer, wrapping to the start when the next window would run past its end. A
//! value therefore compresses to about `compression_ratio` of its size, and every thread
//! (each builds its own generator) writes the same value sequence, as in db_bench.

use super::random::Random;

/// db_bench's value source.
pub struct RandomGenerator {
    data: Vec<u8>,
    position: usize,
}

const PIECE_BYTES: usize = 100;
const MINIMUM_BUFFER_BYTES: usize = 1 << 20;

impl RandomGenerator {
    /// Builds the buffer for values of up to `value_size` bytes.
    pub fn new(value_size: usize, compression_ratio: f64) -> RandomGenerator {
        let mut random = Random::new(301);
        let target = value_size.max(MINIMUM_BUFFER_BYTES);
        let mut data = Vec::with_capacity(target + PIECE_BYTES);
        while data.len() < target {
            data.extend_from_slice(&compressible_string(
                &mut random,
                compression_ratio,
                PIECE_BYTES,
            ));
        }
        RandomGenerator { data, position: 0 }
    }

    /// The next value of `len` bytes.
    pub fn generate(&mut self, len: usize) -> &[u8] {
        assert!(len <= self.data.len(), "value larger than generator buffer");
        if self.position + len > self.data.len() {
            self.position = 0;
        }
        self.position += len;
        &self.data[self.position - len..self.position]
    }
}

/// `test::CompressibleString`: `len` bytes made of `int(len * fraction)` random printable
/// bytes repeated.
fn compressible_string(random: &mut Random, fraction: f64, len: usize) -> Vec<u8> {
    let raw_len = ((len as f64 * fraction) as usize).max(1);
    let raw: Vec<u8> = (0..raw_len)
        .map(|_| b' ' + random.uniform(95) as u8)
        .collect();
    raw.iter().copied().cycle().take(len).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_repeat_random_printable_bytes() {
        let mut generator = RandomGenerator::new(100, 0.5);
        let value = generator.generate(100).to_vec();
        assert_eq!(&value[..50], &value[50..]);
        assert!(value.iter().all(|b| (b' '..=b'~').contains(b)));
        // The first byte is ' ' + (first Park-Miller draw from seed 301) % 95.
        // (301 * 16807 is below the modulus, so the first draw is the product itself.)
        let first = (301u64 * 16_807) % 95;
        assert_eq!(value[0], b' ' + first as u8);
    }

    #[test]
    fn consecutive_values_are_consecutive_windows_and_wrap() {
        let mut generator = RandomGenerator::new(1000, 0.5);
        let total = generator.data.len();
        let a = generator.generate(1000).to_vec();
        let b = generator.generate(1000).to_vec();
        assert_eq!(&generator.data[..1000], a.as_slice());
        assert_eq!(&generator.data[1000..2000], b.as_slice());
        for _ in 2..total / 1000 {
            generator.generate(1000);
        }
        assert_eq!(generator.generate(1000), a.as_slice());
    }

    #[test]
    fn a_1024_byte_value_compresses_to_about_half() {
        let mut generator = RandomGenerator::new(1024, 0.5);
        let mut ratios = Vec::new();
        for _ in 0..20 {
            let value = generator.generate(1024).to_vec();
            let compressed = zstd::bulk::compress(&value, 3).expect("zstd compress");
            ratios.push(compressed.len() as f64 / value.len() as f64);
        }
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        assert!((0.4..=0.6).contains(&mean), "mean zstd ratio {mean}");
    }

    #[test]
    fn ratio_one_is_incompressible_and_tiny_ratio_is_very_compressible() {
        let mut random_values = RandomGenerator::new(1024, 1.0);
        let value = random_values.generate(1024).to_vec();
        let compressed = zstd::bulk::compress(&value, 3).expect("zstd compress");
        assert!(compressed.len() as f64 > 0.75 * value.len() as f64);
        let mut repetitive = RandomGenerator::new(1024, 0.1);
        let value = repetitive.generate(1024).to_vec();
        let compressed = zstd::bulk::compress(&value, 3).expect("zstd compress");
        assert!((compressed.len() as f64) < 0.3 * value.len() as f64);
    }
}
