//! Key names exactly as YCSB's `CoreWorkload.buildKeyName` builds them, so a database
//! loaded by YCSB can be run against by kvbench and the other way round.

/// FNV-1 64-bit offset basis, as YCSB's `Utils.FNV_OFFSET_BASIS_64`.
pub const FNV_OFFSET_BASIS_64: u64 = 0xCBF2_9CE4_8422_2325;
/// FNV-1 64-bit prime, as YCSB's `Utils.FNV_PRIME_64`.
pub const FNV_PRIME_64: u64 = 1_099_511_628_211;

/// YCSB's `Utils.fnvhash64`: FNV-1a over the eight bytes of the long, least significant
/// first, shifting arithmetically (Java `>>`), then `Math.abs` of the signed result.
/// `Math.abs(Long.MIN_VALUE)` stays negative in Java, hence `wrapping_abs`.
pub fn fnv_hash_64(value: i64) -> i64 {
    let mut remaining = value;
    let mut hash = FNV_OFFSET_BASIS_64;
    for _ in 0..8 {
        let octet = (remaining & 0xff) as u64;
        remaining >>= 8;
        hash ^= octet;
        hash = hash.wrapping_mul(FNV_PRIME_64);
    }
    (hash as i64).wrapping_abs()
}

/// YCSB's `buildKeyName`: the key number, hashed unless inserts are ordered, in decimal,
/// left-padded with zeros to `zero_padding` digits, after the prefix (`user` in YCSB).
pub fn build_key_name(
    key_number: i64,
    zero_padding: usize,
    ordered_inserts: bool,
    key_prefix: &str,
) -> String {
    let number = if ordered_inserts {
        key_number
    } else {
        fnv_hash_64(key_number)
    };
    let digits = number.to_string();
    let fill = zero_padding.saturating_sub(digits.len());
    let mut key = String::with_capacity(key_prefix.len() + fill + digits.len());
    key.push_str(key_prefix);
    key.push_str(&"0".repeat(fill));
    key.push_str(&digits);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed independently of this code with:
    //
    // def fnv(val):
    //     h = 0xCBF29CE484222325
    //     for i in range(8):
    //         octet = val & 0xff
    //         val >>= 8
    //         h ^= octet
    //         h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    //     if h >= 1 << 63: h -= 1 << 64
    //     return abs(h) if h != -(1 << 63) else h
    // for k in [0, 1, 2, 42, 999, 1000, 123456789]: print(k, fnv(k))
    const FNV_EXPECTED: [(i64, i64); 7] = [
        (0, 6284781860667377211),
        (1, 8517097267634966620),
        (2, 1820151046732198393),
        (42, 55488592825689361),
        (999, 2071219101098386137),
        (1000, 5952875239596136740),
        (123456789, 2350796791908741607),
    ];

    #[test]
    fn fnv_hash_matches_independent_computation() {
        for (key_number, expected) in FNV_EXPECTED {
            assert_eq!(fnv_hash_64(key_number), expected, "key number {key_number}");
        }
    }

    #[test]
    fn hashed_key_names() {
        assert_eq!(
            build_key_name(0, 1, false, "user"),
            "user6284781860667377211"
        );
        assert_eq!(
            build_key_name(1000, 1, false, "user"),
            "user5952875239596136740"
        );
        // fnvhash64(42) has 17 digits, so padding to 20 adds three zeros.
        assert_eq!(
            build_key_name(42, 20, false, "user"),
            "user00055488592825689361"
        );
    }

    #[test]
    fn ordered_key_names_and_padding() {
        assert_eq!(build_key_name(5, 1, true, "user"), "user5");
        assert_eq!(build_key_name(5, 8, true, "user"), "user00000005");
        assert_eq!(build_key_name(123, 2, true, "user"), "user123");
        assert_eq!(build_key_name(7, 0, true, "k"), "k7");
    }
}
