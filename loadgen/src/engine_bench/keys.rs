//! Keys exactly as db_bench's `GenerateKeyFromInt` writes them (tools/db_bench_tool.cc,
//! with `keys_per_prefix == 0`, its default): the low `min(key_size, 8)` bytes of the key
//! number, most significant first, then `'0'` (0x30) bytes up to `key_size`. With the
//! default 16-byte keys, key 1 is `00 00 00 00 00 00 00 01 30 30 30 30 30 30 30 30`, so
//! keys sort in numeric order.
//!
//! How each benchmark picks key numbers (same file, `DoWrite`, `ReadRandom`, `SeekRandom`,
//! `DoDelete`; `rand` is the thread's [`Random64`](super::random::Random64)):
//! - fillseq: 0, 1, 2, ... (no draws).
//! - fillrandom, overwrite: per write one draw that picks the database (`rand.Next() %
//!   num_dbs`, always 0 here), then `rand.Next() % num`: duplicates happen, so about 63% of
//!   the key space ends up present after `num` writes.
//! - readrandom, deleterandom: per operation one draw that picks the database, then
//!   `rand.Next() % num`.
//! - readmissing: as readrandom but the key is `key_size + 1` bytes long (db_bench does
//!   `++key_size_`), so it can never equal a stored key: absent by construction.
//! - seekrandom: `rand.Next() % num`, no database draw.

/// Writes the key for `number` into `key` (its length is the key size).
pub fn generate_key_from_int(number: u64, key: &mut [u8]) {
    let bytes_to_fill = key.len().min(8);
    let (head, padding) = key.split_at_mut(bytes_to_fill);
    for (i, byte) in head.iter_mut().enumerate() {
        let shift = (bytes_to_fill - i - 1) * 8;
        *byte = (number >> shift) as u8;
    }
    padding.fill(b'0');
}

/// The key for `number` as a new vector of `key_size` bytes.
pub fn key_from_int(number: u64, key_size: usize) -> Vec<u8> {
    let mut key = vec![0u8; key_size];
    generate_key_from_int(number, &mut key);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_byte_key_is_big_endian_number_then_ascii_zeros() {
        // db_bench GenerateKeyFromInt: pos[i] = (v >> ((bytes_to_fill - i - 1) << 3)) & 0xFF
        // for i < min(key_size, 8), then memset(pos, '0', key_size - 8).
        assert_eq!(
            key_from_int(1, 16),
            b"\x00\x00\x00\x00\x00\x00\x00\x0100000000".to_vec()
        );
        assert_eq!(
            key_from_int(0x0102_0304_0506_0708, 16),
            b"\x01\x02\x03\x04\x05\x06\x07\x0800000000".to_vec()
        );
    }

    #[test]
    fn readmissing_key_is_one_byte_longer() {
        let key = key_from_int(499_999, 17);
        assert_eq!(&key[..8], &499_999u64.to_be_bytes());
        assert_eq!(&key[8..], b"000000000");
    }

    #[test]
    fn short_keys_keep_the_low_bytes() {
        assert_eq!(
            key_from_int(0x01_0203_0405, 4),
            vec![0x02, 0x03, 0x04, 0x05]
        );
        assert_eq!(key_from_int(7, 8), 7u64.to_be_bytes().to_vec());
    }

    #[test]
    fn keys_sort_numerically() {
        let mut previous = key_from_int(0, 16);
        for number in [1u64, 255, 256, 65_535, 1 << 40] {
            let key = key_from_int(number, 16);
            assert!(previous < key);
            previous = key;
        }
    }
}
