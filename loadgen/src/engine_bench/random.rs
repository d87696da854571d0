//! The two random number generators db_bench uses, bit for bit, so that a run with the same
//! `--seed` touches the same keys in the same order as RocksDB's `db_bench`.
//!
//! - [`Random64`] is RocksDB's `Random64` (util/random.h): a plain `std::mt19937_64` seeded
//!   with one 64-bit value; `Next()` is one draw of the engine. db_bench gives every
//!   benchmark thread its own `Random64` and picks keys with `Next() % num`.
//! - [`Random`] is LevelDB/RocksDB's `Random`: the Park-Miller "minimal standard" generator
//!   (`seed = seed * 16807 % (2^31 - 1)`). db_bench's value generator draws from it with
//!   seed 301.

/// `std::mt19937_64`: the 64-bit Mersenne Twister with the C++ standard's parameters and
/// seeding (`x[0] = seed; x[i] = f * (x[i-1] ^ (x[i-1] >> 62)) + i`).
#[derive(Clone)]
pub struct Random64 {
    state: Box<[u64; STATE_WORDS]>,
    index: usize,
}

const STATE_WORDS: usize = 312;
const SHIFT_SIZE: usize = 156;
const MATRIX_A: u64 = 0xB502_6F5A_A966_19E9;
const UPPER_MASK: u64 = 0xFFFF_FFFF_8000_0000;
const LOWER_MASK: u64 = 0x7FFF_FFFF;
const INIT_MULTIPLIER: u64 = 6_364_136_223_846_793_005;

impl Random64 {
    /// Seeds the generator as `std::mt19937_64(seed)` does.
    pub fn new(seed: u64) -> Random64 {
        let mut state = Box::new([0u64; STATE_WORDS]);
        state[0] = seed;
        for i in 1..STATE_WORDS {
            let previous = state[i - 1];
            state[i] = INIT_MULTIPLIER
                .wrapping_mul(previous ^ (previous >> 62))
                .wrapping_add(i as u64);
        }
        Random64 {
            state,
            index: STATE_WORDS,
        }
    }

    /// The next draw (`Random64::Next()` in RocksDB).
    pub fn next_u64(&mut self) -> u64 {
        if self.index >= STATE_WORDS {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= (y >> 29) & 0x5555_5555_5555_5555;
        y ^= (y << 17) & 0x71D6_7FFF_EDA6_0000;
        y ^= (y << 37) & 0xFFF7_EEE0_0000_0000;
        y ^= y >> 43;
        y
    }

    fn twist(&mut self) {
        for i in 0..STATE_WORDS {
            let bits =
                (self.state[i] & UPPER_MASK) | (self.state[(i + 1) % STATE_WORDS] & LOWER_MASK);
            let mut next = bits >> 1;
            if bits & 1 != 0 {
                next ^= MATRIX_A;
            }
            self.state[i] = self.state[(i + SHIFT_SIZE) % STATE_WORDS] ^ next;
        }
        self.index = 0;
    }
}

/// LevelDB's `Random`: Park-Miller, multiplier 16807, modulus 2^31 - 1.
#[derive(Debug, Clone)]
pub struct Random {
    seed: u32,
}

const MODULUS: u32 = 2_147_483_647;
const MULTIPLIER: u64 = 16_807;

impl Random {
    /// As RocksDB's constructor: the seed is masked to 31 bits and a seed of 0 (which would
    /// stick at 0) becomes 1.
    pub fn new(seed: u32) -> Random {
        let masked = seed & MODULUS;
        Random {
            seed: if masked == 0 { 1 } else { masked },
        }
    }

    /// The next value in `[1, 2^31 - 2]`.
    pub fn next_u32(&mut self) -> u32 {
        let product = u64::from(self.seed) * MULTIPLIER;
        // (product % M) computed with ((x << 31) % M) == x, as RocksDB does.
        let mut seed = ((product >> 31) + (product & u64::from(MODULUS))) as u32;
        if seed > MODULUS {
            seed -= MODULUS;
        }
        self.seed = seed;
        seed
    }

    /// A value in `[0, n)`; `n` must be positive.
    pub fn uniform(&mut self, n: u32) -> u32 {
        self.next_u32() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_64_matches_the_cpp_standard() {
        // [rand.predef]: "The 10000th consecutive invocation of a default-constructed object
        // of type mt19937_64 shall produce the value 9981545732273789042." Default seed 5489.
        let mut random = Random64::new(5489);
        let mut value = 0;
        for _ in 0..10_000 {
            value = random.next_u64();
        }
        assert_eq!(value, 9_981_545_732_273_789_042);
    }

    #[test]
    fn mt19937_64_first_draw_for_seed_5489() {
        // First output of std::mt19937_64 with its default seed.
        assert_eq!(Random64::new(5489).next_u64(), 14_514_284_786_278_117_030);
    }

    #[test]
    fn park_miller_sequence() {
        // seed 1: 16807, 16807^2 mod (2^31 - 1) = 282475249, then 1622650073.
        let mut random = Random::new(1);
        assert_eq!(random.next_u32(), 16_807);
        assert_eq!(random.next_u32(), 282_475_249);
        assert_eq!(random.next_u32(), 1_622_650_073);
        assert_eq!(Random::new(0).next_u32(), 16_807);
    }
}
