use super::*;
use crate::options::Compression;
use crate::sstable::format::{read_data_block, BlockCompressor, BlockHandle};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

fn golden_block() -> Vec<u8> {
    let mut builder = BlockBuilder::new(2);
    builder.add(b"apple", 1, ValueKind::Put, b"m", b"v1");
    builder.add(b"apricot", 2, ValueKind::Delete, b"", b"");
    builder.add(b"banana", 3, ValueKind::Put, b"", b"yellow");
    builder.finish().to_vec()
}

#[rustfmt::skip]
const GOLDEN_BLOCK: [u8; 76] = [
    // "apple": shared 0, unshared 5, meta 1, value 2, Put, seq 1, key, meta, value
    0x00, 0x05, 0x01, 0x02, 0x01, 0x01, 0, 0, 0, 0, 0, 0, 0,
    b'a', b'p', b'p', b'l', b'e', b'm', b'v', b'1',
    // "apricot" at 21: shares "ap", unshared "ricot", no meta or value, Delete, seq 2
    0x02, 0x05, 0x00, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0,
    b'r', b'i', b'c', b'o', b't',
    // "banana" at 39: a restart (interval 2), so the whole key; Put, seq 3, value "yellow"
    0x00, 0x06, 0x00, 0x06, 0x01, 0x03, 0, 0, 0, 0, 0, 0, 0,
    b'b', b'a', b'n', b'a', b'n', b'a', b'y', b'e', b'l', b'l', b'o', b'w',
    // restart offsets 0 and 39, restart count 2
    0, 0, 0, 0, 39, 0, 0, 0, 2, 0, 0, 0,
];

#[test]
fn golden_bytes_of_a_raw_block() {
    let raw = golden_block();
    assert_eq!(raw, GOLDEN_BLOCK);
    let mut stored = Vec::new();
    let size = BlockCompressor::new(Compression::None)
        .write_block(&raw, &mut stored)
        .expect("writes");
    assert_eq!(size, 76);
    // Trailer: type 0 (raw), then crc32c of the 76 bytes and the type byte, computed
    // independently with a bitwise CRC-32C (polynomial 0x82F63B78).
    assert_eq!(stored[76..], [0x00, 0xac, 0xe5, 0x23, 0xa1]);
    let block = read_data_block(
        &stored,
        BlockHandle {
            offset: 0,
            size: 76,
        },
        Path::new("golden"),
    )
    .expect("reads back");
    assert_eq!(block.data(), &GOLDEN_BLOCK[..]);
}

#[test]
fn golden_block_reads_back() {
    let block = Arc::new(Block::decode(golden_block()).expect("decodes"));
    let mut iterator = BlockIterator::new(Arc::clone(&block));
    iterator.seek_to_first().expect("seeks");
    let mut seen = Vec::new();
    while iterator.valid() {
        seen.push(iterator.to_entry());
        iterator.advance().expect("advances");
    }
    let entry = |key: &[u8], seq, kind, meta: &[u8], value: &[u8]| Entry {
        key: key.to_vec(),
        seq,
        kind,
        meta: meta.to_vec(),
        value: value.to_vec(),
    };
    assert_eq!(
        seen,
        vec![
            entry(b"apple", 1, ValueKind::Put, b"m", b"v1"),
            entry(b"apricot", 2, ValueKind::Delete, b"", b""),
            entry(b"banana", 3, ValueKind::Put, b"", b"yellow"),
        ]
    );
    let seek = |target: &[u8]| {
        let mut iterator = BlockIterator::new(Arc::clone(&block));
        iterator.seek(target).expect("seeks");
        iterator.valid().then(|| iterator.key().to_vec())
    };
    assert_eq!(seek(b""), Some(b"apple".to_vec()));
    assert_eq!(seek(b"apple"), Some(b"apple".to_vec()));
    assert_eq!(seek(b"applf"), Some(b"apricot".to_vec()));
    assert_eq!(seek(b"b"), Some(b"banana".to_vec()));
    assert_eq!(seek(b"banana"), Some(b"banana".to_vec()));
    assert_eq!(seek(b"banana\0"), None);
    assert_eq!(
        block_get(Arc::clone(&block), b"apricot")
            .expect("gets")
            .map(|e| e.seq),
        Some(2)
    );
    assert_eq!(
        block_get(Arc::clone(&block), b"apricots").expect("gets"),
        None
    );
}

fn random_entries(rng: &mut SmallRng, count: usize) -> Vec<Entry> {
    let mut keys: Vec<Vec<u8>> = (0..count)
        .map(|_| {
            let prefix: &[u8] = [&b"user"[..], b"user0", b"item/", b""][rng.gen_range(0..4)];
            let mut key = prefix.to_vec();
            key.extend((0..rng.gen_range(1..12)).map(|_| rng.gen_range(b'0'..=b'z')));
            key
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|key| {
            let kind = if rng.gen_bool(0.2) {
                ValueKind::Delete
            } else {
                ValueKind::Put
            };
            let meta_length = if rng.gen_bool(0.5) {
                0
            } else {
                rng.gen_range(0..20)
            };
            let value_length = if rng.gen_bool(0.3) {
                0
            } else {
                rng.gen_range(0..300)
            };
            Entry {
                key,
                seq: rng.gen(),
                kind,
                meta: (0..meta_length).map(|_| rng.gen()).collect(),
                value: (0..value_length).map(|_| rng.gen()).collect(),
            }
        })
        .collect()
}

#[test]
fn random_blocks_round_trip_and_seek() {
    let mut rng = SmallRng::seed_from_u64(7);
    for restart_interval in [1, 2, 16, 1000] {
        let entries = random_entries(&mut rng, 200);
        let mut builder = BlockBuilder::new(restart_interval);
        for entry in &entries {
            builder.add(&entry.key, entry.seq, entry.kind, &entry.meta, &entry.value);
        }
        let block = Arc::new(Block::decode(builder.finish().to_vec()).expect("decodes"));
        let mut iterator = BlockIterator::new(Arc::clone(&block));
        iterator.seek_to_first().expect("seeks");
        for entry in &entries {
            assert!(iterator.valid());
            assert_eq!(&iterator.to_entry(), entry);
            iterator.advance().expect("advances");
        }
        assert!(!iterator.valid());
        for (position, entry) in entries.iter().enumerate() {
            let found = block_get(Arc::clone(&block), &entry.key).expect("gets");
            assert_eq!(found.as_ref(), Some(entry));
            let mut after = entry.key.clone();
            after.push(0);
            iterator.seek(&after).expect("seeks");
            match entries.get(position + 1) {
                Some(next) => assert_eq!(iterator.key(), next.key.as_slice()),
                None => assert!(!iterator.valid()),
            }
        }
    }
}

/// Decoding and walking arbitrary bytes must end in an error or a result, never a panic.
pub fn exercise_block_bytes(bytes: &[u8]) {
    let Ok(block) = Block::decode(bytes.to_vec()) else {
        return;
    };
    let block = Arc::new(block);
    let mut iterator = BlockIterator::new(Arc::clone(&block));
    if iterator.seek_to_first().is_ok() {
        let mut steps = 0;
        while iterator.valid() && steps < 10_000 && iterator.advance().is_ok() {
            steps += 1;
        }
    }
    let _ = iterator.seek(b"m");
    let _ = block_get(block, b"apple");
}

#[test]
fn random_and_mutated_bytes_never_panic() {
    let mut rng = SmallRng::seed_from_u64(11);
    let valid = golden_block();
    let entries = random_entries(&mut rng, 30);
    let mut builder = BlockBuilder::new(4);
    for entry in &entries {
        builder.add(&entry.key, entry.seq, entry.kind, &entry.meta, &entry.value);
    }
    let larger = builder.finish().to_vec();
    for round in 0..4000 {
        let bytes: Vec<u8> = match round % 3 {
            0 => (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect(),
            _ => {
                let mut bytes = if round % 2 == 0 {
                    valid.clone()
                } else {
                    larger.clone()
                };
                for _ in 0..rng.gen_range(1..4) {
                    let position = rng.gen_range(0..bytes.len());
                    bytes[position] = rng.gen();
                }
                if rng.gen_bool(0.2) {
                    bytes.truncate(rng.gen_range(0..bytes.len()));
                }
                bytes
            }
        };
        exercise_block_bytes(&bytes);
    }
}
