//! The digest of a key's stored bytes, for the Merkle trees: 64 bits, stable across
//! builds and platforms (replicas compare digests), and cheap, because the store computes
//! two per write (old and new bytes) while anti-entropy is on.
//!
//! Why not the ring's FNV-1a ([`crate::ring::stable_hash64`]): it takes a multiply per
//! byte, about 10 µs for a 10 KiB sibling set. This reads 8-byte words into four
//! independent lanes (multiply, rotate: the lanes overlap in the pipeline), then mixes
//! the lanes, the tail and the length with MurmurHash3's `fmix64`. It is not a
//! cryptographic hash: replicas are trusted, and a collision only hides one difference
//! from anti-entropy (read repair still sees it).
//!
//! Changing it makes every replica disagree with unchanged ones until all run the same
//! build: the golden values in the tests pin it.

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

fn fmix64(mut value: u64) -> u64 {
    value ^= value >> 33;
    value = value.wrapping_mul(0xff51_afd7_ed55_8ccd);
    value ^= value >> 33;
    value = value.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    value ^ (value >> 33)
}

fn word(bytes: &[u8]) -> u64 {
    let mut array = [0u8; 8];
    array[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(array)
}

fn lane(state: u64, word: u64) -> u64 {
    (state ^ word.wrapping_mul(K2))
        .rotate_left(31)
        .wrapping_mul(K1)
}

/// The digest of `bytes` (see the module documentation).
pub fn digest(bytes: &[u8]) -> u64 {
    seeded(bytes, [K1, K2, K1 ^ K2, K1.rotate_left(17)])
}

/// A 128-bit digest of `bytes` for digest reads (see [`crate::coordinator`]): a replica
/// answers a quorum read's second request with it instead of its stored set, and a
/// coordinator that finds it equal to its own copy's takes the two copies to be the same.
/// Two 64-bit digests with different starting lanes, so a chance collision (which would
/// hide a newer version from that read) is a 2^-128 event; like [`digest`] it is not
/// cryptographic. Pinned by golden values as [`digest`] is.
pub fn wide_digest(bytes: &[u8]) -> u128 {
    let low = digest(bytes);
    let high = seeded(bytes, [K2, K1, K1.rotate_left(29), K2 ^ K1.rotate_left(7)]);
    (u128::from(high) << 64) | u128::from(low)
}

fn seeded(bytes: &[u8], mut lanes: [u64; 4]) -> u64 {
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (index, state) in lanes.iter_mut().enumerate() {
            *state = lane(*state, word(&block[index * 8..index * 8 + 8]));
        }
    }
    let mut hash = (bytes.len() as u64).wrapping_mul(K1);
    for state in lanes {
        hash = fmix64(hash ^ state);
    }
    for chunk in blocks.remainder().chunks(8) {
        hash = fmix64(lane(hash, word(chunk)));
    }
    fmix64(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_values_do_not_change() {
        let values: Vec<u64> = [&b""[..], b"a", b"abcdefgh", &[7u8; 100]]
            .iter()
            .map(|bytes| digest(bytes))
            .collect();
        let expected: [u64; 4] = [
            0x0cc1_678b_1b02_88cb,
            0x2407_636e_304d_5229,
            0x171a_8786_2378_b936,
            0x318e_d652_2240_adc6,
        ];
        assert_eq!(values.len(), expected.len());
        assert_eq!(
            values
                .iter()
                .map(|v| format!("{v:#018x}"))
                .collect::<Vec<_>>(),
            expected
                .iter()
                .map(|v| format!("{v:#018x}"))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn wide_golden_values_do_not_change_and_the_low_half_is_digest() {
        let values: Vec<String> = [&b""[..], b"a", &[7u8; 100]]
            .iter()
            .map(|bytes| {
                assert_eq!(wide_digest(bytes) as u64, digest(bytes));
                format!("{:#034x}", wide_digest(bytes))
            })
            .collect();
        assert_eq!(
            values,
            [
                "0x15fa3810c73af56b0cc1678b1b0288cb",
                "0x1d43072803ee71352407636e304d5229",
                "0x84f845abf978fe11318ed6522240adc6",
            ]
        );
    }

    #[test]
    fn every_byte_and_the_length_matter() {
        let base = vec![0u8; 77];
        let reference = digest(&base);
        for index in 0..base.len() {
            let mut changed = base.clone();
            changed[index] = 1;
            assert_ne!(digest(&changed), reference, "byte {index}");
            assert_ne!(
                wide_digest(&changed) >> 64,
                wide_digest(&base) >> 64,
                "byte {index}"
            );
        }
        assert_ne!(digest(&base[..76]), reference);
        assert_ne!(digest(&[0u8; 78]), reference);
    }
}
