//! Damaged files: every corruption is an error naming the file, never a panic or wrong data.

use super::format::FOOTER_SIZE_BYTES;
use super::tests::{build_table, golden_table, random_entries};
use super::*;
use crate::error::Error;
use crate::iter::EntryIterator;
use crate::options::{Compression, TableOptions};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn flip_byte(path: &Path, position: usize) {
    let mut bytes = std::fs::read(path).expect("reads");
    bytes[position] ^= 0x40;
    std::fs::write(path, bytes).expect("writes");
}

fn assert_names_file(error: &Error, path: &Path) {
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
}

/// Opens, iterates and reads every key of arbitrary file bytes; reports whether the whole
/// table read back without an error.
pub fn exercise_table_file(path: &Path, keys: &[Vec<u8>]) -> bool {
    let Ok(table) = Table::open(path, 1, Some(Arc::new(BlockCache::new(1 << 16)))) else {
        return false;
    };
    let table = Arc::new(table);
    let mut clean = true;
    let mut iterator = table.iter();
    match iterator.seek_to_first() {
        Ok(()) => {
            let mut steps = 0;
            while iterator.valid() && steps < 100_000 {
                if iterator.advance().is_err() {
                    clean = false;
                    break;
                }
                steps += 1;
            }
        }
        Err(_) => clean = false,
    }
    for key in keys {
        clean &= table.get(key).is_ok();
        clean &= iterator.seek(key).is_ok();
    }
    clean
}

#[test]
fn flipped_data_block_byte_is_a_checksum_mismatch() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = golden_table(directory.path());
    flip_byte(&path, 30);
    let table = Arc::new(Table::open(&path, 1, None).expect("data blocks are checked on read"));
    let error = table.get(b"apple").expect_err("corrupt block");
    assert!(
        matches!(error, Error::ChecksumMismatch { offset: 0, .. }),
        "{error}"
    );
    assert_names_file(&error, &path);
    let mut iterator = table.iter();
    let error = iterator.seek_to_first().expect_err("corrupt block");
    assert!(matches!(error, Error::ChecksumMismatch { .. }));
    assert!(!iterator.valid());
}

#[test]
fn flipped_index_byte_fails_open() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = golden_table(directory.path());
    flip_byte(&path, 155); // inside the index block, which starts at 151
    let error = Table::open(&path, 1, None).err().expect("corrupt index");
    assert!(
        matches!(error, Error::ChecksumMismatch { offset: 151, .. }),
        "{error}"
    );
    assert_names_file(&error, &path);
}

#[test]
fn flipped_footer_bytes_fail_open() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = golden_table(directory.path());
    let footer_start = std::fs::metadata(&path).expect("stat").len() as usize - FOOTER_SIZE_BYTES;
    let original = std::fs::read(&path).expect("reads");

    flip_byte(&path, footer_start + 16); // index offset
    let error = Table::open(&path, 1, None).err().expect("corrupt footer");
    assert!(matches!(error, Error::ChecksumMismatch { .. }), "{error}");
    assert_names_file(&error, &path);

    std::fs::write(&path, &original).expect("writes");
    flip_byte(&path, footer_start + 60); // magic
    let error = Table::open(&path, 1, None).err().expect("corrupt magic");
    assert!(
        matches!(error, Error::Corruption { what: "footer", .. }),
        "{error}"
    );
    assert!(error.to_string().contains("magic"));
    assert_names_file(&error, &path);

    std::fs::write(&path, &original).expect("writes");
    flip_byte(&path, footer_start + 48); // version
    let error = Table::open(&path, 1, None).err().expect("other version");
    assert!(
        matches!(
            error,
            Error::UnsupportedVersion {
                found: 0x41,
                supported: 1,
                ..
            }
        ),
        "{error}"
    );
    assert_names_file(&error, &path);
}

#[test]
fn every_truncation_fails_open() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = golden_table(directory.path());
    let original = std::fs::read(&path).expect("reads");
    let truncated = directory.path().join("truncated.sst");
    for length in 0..original.len() {
        std::fs::write(&truncated, &original[..length]).expect("writes");
        let error = Table::open(&truncated, 1, None).err().expect("truncated");
        assert_names_file(&error, &truncated);
    }
}

fn mutation_corpus(directory: &Path) -> (PathBuf, Vec<Vec<u8>>) {
    let mut rng = SmallRng::seed_from_u64(5);
    let entries = random_entries(&mut rng, 60);
    let path = directory.join("source.sst");
    let options = TableOptions {
        block_size_bytes: 256,
        block_restart_interval: 3,
        compression: Compression::Zstd { level: 1 },
        bloom_bits_per_key: 10,
        ..TableOptions::default()
    };
    build_table(&path, &options, &entries);
    (path, entries.into_iter().map(|entry| entry.key).collect())
}

#[test]
fn any_single_byte_change_is_detected() {
    let directory = tempfile::tempdir().expect("temp dir");
    let (source, keys) = mutation_corpus(directory.path());
    let original = std::fs::read(&source).expect("reads");
    assert!(exercise_table_file(&source, &keys));
    let mutated = directory.path().join("mutated.sst");
    let mut rng = SmallRng::seed_from_u64(6);
    for _ in 0..400 {
        let mut bytes = original.clone();
        let position = rng.gen_range(0..bytes.len());
        bytes[position] ^= rng.gen_range(1..=255u8);
        std::fs::write(&mutated, &bytes).expect("writes");
        // Every byte is covered by a checksum or the magic, so a full read must fail.
        assert!(
            !exercise_table_file(&mutated, &keys),
            "change at {position} went unnoticed"
        );
    }
}

#[test]
fn random_and_mutated_files_never_panic() {
    let directory = tempfile::tempdir().expect("temp dir");
    let (source, keys) = mutation_corpus(directory.path());
    let original = std::fs::read(&source).expect("reads");
    let mutated = directory.path().join("mutated.sst");
    let mut rng = SmallRng::seed_from_u64(8);
    for round in 0..600 {
        let bytes: Vec<u8> = match round % 4 {
            0 => (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect(),
            1 => {
                // Random bytes behind a valid magic reach the deeper checks.
                let mut bytes: Vec<u8> = (0..rng.gen_range(64..400)).map(|_| rng.gen()).collect();
                let end = bytes.len();
                bytes[end - 8..].copy_from_slice(&original[original.len() - 8..]);
                bytes
            }
            _ => {
                let mut bytes = original.clone();
                for _ in 0..rng.gen_range(1..6) {
                    let position = rng.gen_range(0..bytes.len());
                    bytes[position] = rng.gen();
                }
                bytes
            }
        };
        std::fs::write(&mutated, &bytes).expect("writes");
        exercise_table_file(&mutated, &keys);
    }
}

/// Every block of a table file, meta blocks included, as (offset, stored size).
fn block_handles(bytes: &[u8]) -> Vec<format::BlockHandle> {
    let footer_start = bytes.len() - FOOTER_SIZE_BYTES;
    let footer = format::Footer::decode(&bytes[footer_start..], bytes.len() as u64, Path::new("x"))
        .expect("valid footer");
    let index_range =
        footer.index.offset as usize..(footer.index.offset + footer.index.size) as usize;
    let index = index::IndexBlock::decode(&bytes[index_range]).expect("valid index");
    let mut handles: Vec<_> = (0..index.len())
        .map(|number| index.entry(number).expect("entry").1)
        .collect();
    handles.extend([footer.filter, footer.index, footer.properties]);
    handles
}

#[test]
fn mutations_behind_valid_checksums_never_panic() {
    let directory = tempfile::tempdir().expect("temp dir");
    let (source, keys) = mutation_corpus(directory.path());
    let original = std::fs::read(&source).expect("reads");
    let handles = block_handles(&original);
    let mutated = directory.path().join("mutated.sst");
    let mut rng = SmallRng::seed_from_u64(9);
    for _ in 0..1500 {
        let mut bytes = original.clone();
        let handle = handles[rng.gen_range(0..handles.len())];
        let (start, size) = (handle.offset as usize, handle.size as usize);
        if size == 0 {
            continue;
        }
        for _ in 0..rng.gen_range(1..4) {
            let position = start + rng.gen_range(0..size);
            bytes[position] = match rng.gen_range(0..3) {
                0 => 0,
                1 => 0xff,
                _ => rng.gen(),
            };
        }
        // Re-seal the block so that the decoders behind the checksum see the damage.
        let checksum = format::block_checksum(&bytes[start..start + size + 1]);
        bytes[start + size + 1..start + size + 5].copy_from_slice(&checksum.to_le_bytes());
        std::fs::write(&mutated, &bytes).expect("writes");
        exercise_table_file(&mutated, &keys);
    }
}
