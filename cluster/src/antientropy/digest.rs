//! The digest of a key's stored bytes, for digest reads (128 bits) and the Merkle trees
//! (64 bits, the low half of the 128): stable across builds and platforms (replicas compare
//! digests), and cheap, because the store computes one per write while anti-entropy is on
//! and keeps it beside the set (see [`crate::store`], "Layout"), where digest reads and the
//! next write of the key find it.
//!
//! It is XXH3's 128-bit form (the `xxhash-rust` crate, seed 0): specified,
//! endian-independent and pinned by the golden values below. It replaced a hand-written
//! four-lane multiply-rotate hash, scalar, that needed two passes for 128 bits; XXH3 takes
//! one, vectorised (`scripts/cluster-perf.sh ab`: GET -P 16 7% more requests/s). The Merkle digest is its low half, so the one stored
//! digest serves both. It is not a cryptographic hash: replicas are trusted, and a
//! collision only hides one difference (from anti-entropy, or from one digest read; read
//! repair still sees it).
//!
//! Changing it makes every replica disagree with unchanged ones until all run the same
//! build: the golden values in the tests pin it.

use xxhash_rust::xxh3::xxh3_128;

/// The 64-bit digest of `bytes`, for the Merkle trees: the low half of [`wide_digest`].
pub fn digest(bytes: &[u8]) -> u64 {
    wide_digest(bytes) as u64
}

/// A 128-bit digest of `bytes` for digest reads (see [`crate::coordinator`]): a replica
/// answers a quorum read's second request with it instead of its stored set, and a
/// coordinator that finds it equal to its own copy's takes the two copies to be the same.
/// A chance collision (which would hide a newer version from that read) is a 2^-128
/// event; like [`digest`] it is not cryptographic. Pinned by golden values as [`digest`]
/// is.
pub fn wide_digest(bytes: &[u8]) -> u128 {
    xxh3_128(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_values_do_not_change() {
        let values: Vec<String> = [&b""[..], b"a", b"abcdefgh", &[7u8; 100], &[9u8; 1100]]
            .iter()
            .map(|bytes| format!("{:#018x}", digest(bytes)))
            .collect();
        assert_eq!(values, GOLDEN_64);
    }

    #[test]
    fn wide_golden_values_do_not_change_and_the_low_half_is_digest() {
        let values: Vec<String> = [&b""[..], b"a", &[7u8; 100], &[9u8; 1100]]
            .iter()
            .map(|bytes| {
                assert_eq!(wide_digest(bytes) as u64, digest(bytes));
                format!("{:#034x}", wide_digest(bytes))
            })
            .collect();
        assert_eq!(values, GOLDEN_128);
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
            assert_ne!(
                wide_digest(&changed) as u64,
                wide_digest(&base) as u64,
                "byte {index}"
            );
        }
        assert_ne!(digest(&base[..76]), reference);
        assert_ne!(digest(&[0u8; 78]), reference);
    }

    // The empty input's 128-bit value is XXH3's published one
    // (0x99aa06d3014798d86001c324468d497f), so this is XXH3 and not merely stable.
    const GOLDEN_64: [&str; 5] = [
        "0x6001c324468d497f",
        "0xe6c632b61e964e1f",
        "0x42b702b313880f12",
        "0xc744f62d4ba07e77",
        "0xa9e93b0240c3e297",
    ];
    const GOLDEN_128: [&str; 4] = [
        "0x99aa06d3014798d86001c324468d497f",
        "0xa96faf705af16834e6c632b61e964e1f",
        "0x482fc5ce6e11d6ddc744f62d4ba07e77",
        "0xb5dc405265960337a9e93b0240c3e297",
    ];
}
