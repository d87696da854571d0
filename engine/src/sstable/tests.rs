//! Table-level tests: round trips, point reads, iterator semantics, golden footer bytes.

use super::*;
use crate::iter::EntryIterator;
use crate::options::{Compression, TableOptions};
use crate::types::{Entry, ValueKind};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn build_table(path: &Path, options: &TableOptions, entries: &[Entry]) -> TableInfo {
    let mut builder = TableBuilder::create(path, options, entries.len()).expect("creates");
    for entry in entries {
        builder
            .add(&entry.key, entry.seq, entry.kind, &entry.meta, &entry.value)
            .expect("adds");
    }
    assert_eq!(builder.entry_count(), entries.len() as u64);
    builder.finish().expect("finishes")
}

pub fn random_entries(rng: &mut SmallRng, count: usize) -> Vec<Entry> {
    let mut keys: Vec<Vec<u8>> = (0..count)
        .map(|_| {
            // Shared prefixes exercise prefix compression; the number keeps keys distinct.
            let prefix: &[u8] =
                [&b"user"[..], b"user00", b"order/2024/", b"x"][rng.gen_range(0..4)];
            let mut key = prefix.to_vec();
            key.extend(format!("{:08}", rng.gen_range(0..100_000_000u32)).bytes());
            key
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|key| {
            let tombstone = rng.gen_bool(0.15);
            let meta_length = if tombstone || rng.gen_bool(0.4) {
                0
            } else {
                rng.gen_range(1..40)
            };
            let value_length = if tombstone || rng.gen_bool(0.2) {
                0
            } else {
                rng.gen_range(1..2000)
            };
            // Half-compressible values: random bytes over a small alphabet.
            let alphabet = rng.gen_range(2..=255u8);
            Entry {
                key,
                seq: rng.gen_range(1..1_000_000),
                kind: if tombstone {
                    ValueKind::Delete
                } else {
                    ValueKind::Put
                },
                meta: (0..meta_length).map(|_| rng.gen()).collect(),
                value: (0..value_length)
                    .map(|_| rng.gen_range(0..alphabet))
                    .collect(),
            }
        })
        .collect()
}

fn small_block_options(compression: Compression) -> TableOptions {
    TableOptions {
        block_size_bytes: 1024,
        block_restart_interval: 4,
        compression,
        bloom_bits_per_key: 10,
        ..TableOptions::default()
    }
}

fn collect(iterator: &mut TableIterator) -> Vec<Entry> {
    let mut entries = Vec::new();
    while iterator.valid() {
        entries.push(iterator.entry().clone());
        iterator.advance().expect("advances");
    }
    entries
}

#[test]
fn table_and_iterator_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Table>();
    send_sync::<BlockCache>();
    send::<TableIterator>();
}

#[test]
fn round_trip_of_many_entries() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut rng = SmallRng::seed_from_u64(1);
    let entries = random_entries(&mut rng, 3000);
    for (number, compression) in [
        Compression::None,
        Compression::Zstd { level: 1 },
        Compression::Zstd { level: -3 },
    ]
    .into_iter()
    .enumerate()
    {
        let path = directory.path().join(format!("{number}.sst"));
        let info = build_table(&path, &small_block_options(compression), &entries);
        assert_eq!(info.entry_count, entries.len() as u64);
        let tombstones = entries
            .iter()
            .filter(|entry| entry.kind == ValueKind::Delete)
            .count();
        assert_eq!(info.tombstone_count, tombstones as u64);
        assert_eq!(info.smallest_key, entries[0].key);
        assert_eq!(info.largest_key, entries[entries.len() - 1].key);
        assert_eq!(
            info.seq_min,
            entries.iter().map(|entry| entry.seq).min().unwrap_or(0)
        );
        assert_eq!(
            info.seq_max,
            entries.iter().map(|entry| entry.seq).max().unwrap_or(0)
        );
        assert_eq!(
            info.file_size_bytes,
            std::fs::metadata(&path).expect("stat").len()
        );

        let cache = Arc::new(BlockCache::new(1 << 20));
        let table = Arc::new(Table::open(&path, 7, Some(Arc::clone(&cache))).expect("opens"));
        assert_eq!(table.info(), &info);
        assert_eq!(table.id(), 7);
        assert_eq!(table.path(), path.as_path());
        let mut iterator = table.iter();
        iterator.seek_to_first().expect("seeks");
        assert_eq!(collect(&mut iterator), entries);

        for entry in &entries {
            assert_eq!(table.get(&entry.key).expect("gets").as_ref(), Some(entry));
            let mut absent = entry.key.clone();
            absent.push(b'!');
            assert_eq!(table.get(&absent).expect("gets"), None);
        }
        assert_eq!(table.get(b"").expect("gets"), None);
        assert_eq!(table.get(b"\xff\xff").expect("gets"), None);
        assert!(cache.size_bytes() > 0 && cache.size_bytes() <= 1 << 20);
    }
}

#[test]
fn iterator_seek_semantics() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut rng = SmallRng::seed_from_u64(2);
    let entries = random_entries(&mut rng, 1000);
    let path = directory.path().join("seek.sst");
    build_table(
        &path,
        &small_block_options(Compression::Zstd { level: 1 }),
        &entries,
    );
    let table = Arc::new(Table::open(&path, 1, None).expect("opens"));
    let mut iterator = table.iter();
    let mut key_at = |target: &[u8]| {
        iterator.seek(target).expect("seeks");
        iterator.valid().then(|| iterator.entry().key.clone())
    };
    assert_eq!(key_at(b""), Some(entries[0].key.clone()), "before first");
    assert_eq!(key_at(b"\xff"), None, "past last");
    for position in (0..entries.len()).step_by(7) {
        let key = &entries[position].key;
        assert_eq!(key_at(key).as_ref(), Some(key), "exact");
        let mut between = key.clone();
        between.push(0);
        assert_eq!(
            key_at(&between),
            entries.get(position + 1).map(|entry| entry.key.clone()),
            "between"
        );
    }
    // Seeking, then walking, crosses block boundaries.
    let middle = entries.len() / 2;
    iterator.seek(&entries[middle].key).expect("seeks");
    assert_eq!(collect(&mut iterator), entries[middle..]);
}

#[test]
fn empty_table_and_table_without_filter() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("empty.sst");
    let info = build_table(&path, &TableOptions::default(), &[]);
    assert_eq!(info.entry_count, 0);
    let table = Arc::new(Table::open(&path, 1, None).expect("opens"));
    assert_eq!(table.get(b"a").expect("gets"), None);
    let mut iterator = table.iter();
    iterator.seek_to_first().expect("seeks");
    assert!(!iterator.valid());

    let mut rng = SmallRng::seed_from_u64(3);
    let entries = random_entries(&mut rng, 100);
    let path = directory.path().join("no_filter.sst");
    let options = TableOptions {
        bloom_bits_per_key: 0,
        ..TableOptions::default()
    };
    build_table(&path, &options, &entries);
    let table = Table::open(&path, 2, None).expect("opens");
    assert!(table.may_contain(b"surely absent"));
    for entry in &entries {
        assert_eq!(table.get(&entry.key).expect("gets").as_ref(), Some(entry));
    }
}

#[test]
fn abandon_removes_the_file() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("abandoned.sst");
    let mut builder = TableBuilder::create(&path, &TableOptions::default(), 10).expect("creates");
    builder
        .add(b"a", 1, ValueKind::Put, b"", b"v")
        .expect("adds");
    assert!(builder.estimated_size_bytes() > 0);
    builder.abandon().expect("abandons");
    assert!(!path.exists());
}

pub fn golden_table(directory: &Path) -> PathBuf {
    let path = directory.join("golden.sst");
    let options = TableOptions {
        compression: Compression::None,
        ..TableOptions::default()
    };
    let entry = |key: &[u8], seq, kind, meta: &[u8], value: &[u8]| Entry {
        key: key.to_vec(),
        seq,
        kind,
        meta: meta.to_vec(),
        value: value.to_vec(),
    };
    build_table(
        &path,
        &options,
        &[
            entry(b"apple", 1, ValueKind::Put, b"m", b"v1"),
            entry(b"apricot", 2, ValueKind::Delete, b"", b""),
            entry(b"banana", 3, ValueKind::Put, b"", b"yellow"),
        ],
    );
    path
}

#[test]
fn golden_footer_bytes() {
    let directory = tempfile::tempdir().expect("temp dir");
    let bytes = std::fs::read(golden_table(directory.path())).expect("reads");
    // Data block: 64 bytes of entries + one restart + count = 72, trailer to 77.
    // Filter: one 64-byte line + probe count + line count = 69, to 151.
    // Index: "banana" -> (0, 72) in 9 bytes + one offset + count = 17, to 173.
    // Properties: 6 u64 + "apple" and "banana" with their lengths = 61, to 239.
    assert_eq!(bytes.len(), 239 + 64);
    #[rustfmt::skip]
    let footer: [u8; 64] = [
        77, 0, 0, 0, 0, 0, 0, 0,   69, 0, 0, 0, 0, 0, 0, 0,   // filter handle
        151, 0, 0, 0, 0, 0, 0, 0,  17, 0, 0, 0, 0, 0, 0, 0,   // index handle
        173, 0, 0, 0, 0, 0, 0, 0,  61, 0, 0, 0, 0, 0, 0, 0,   // properties handle
        1, 0, 0, 0,                                           // format version
        189, 86, 186, 6,                                      // crc32c of the 52 bytes above
        0x31, 0x45, 0x4c, 0x42, 0x41, 0x54, 0x53, 0x53,       // magic "1ELBATSS"
    ];
    assert_eq!(bytes[239..], footer);
    // The index block, in place: "banana" -> (offset 0, size 72), entry offset 0, count 1,
    // then the trailer's type byte (raw).
    #[rustfmt::skip]
    let index: [u8; 18] = [
        6, b'b', b'a', b'n', b'a', b'n', b'a', 0, 72,
        0, 0, 0, 0,   1, 0, 0, 0,
        0,
    ];
    assert_eq!(bytes[151..169], index);
}

#[test]
fn concurrent_readers_share_a_table_and_a_small_cache() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut rng = SmallRng::seed_from_u64(4);
    let entries = Arc::new(random_entries(&mut rng, 2000));
    let path = directory.path().join("shared.sst");
    build_table(
        &path,
        &small_block_options(Compression::Zstd { level: 1 }),
        &entries,
    );
    // Smaller than the table's blocks, so that readers race evictions.
    let cache = Arc::new(BlockCache::new(64 * 1024));
    let table = Arc::new(Table::open(&path, 3, Some(Arc::clone(&cache))).expect("opens"));
    let readers: Vec<_> = (0..4)
        .map(|reader| {
            let (table, entries) = (Arc::clone(&table), Arc::clone(&entries));
            std::thread::spawn(move || {
                for entry in entries.iter().skip(reader).step_by(3) {
                    assert_eq!(table.get(&entry.key).expect("gets").as_ref(), Some(entry));
                }
                let mut iterator = table.iter();
                iterator.seek_to_first().expect("seeks");
                assert_eq!(collect(&mut iterator).len(), entries.len());
            })
        })
        .collect();
    for reader in readers {
        reader.join().expect("reader succeeds");
    }
    assert!(cache.size_bytes() <= 64 * 1024);
    cache.evict_table(3);
    assert_eq!(cache.size_bytes(), 0);
}

/// Resident bytes of this process's mappings of `path`, from /proc/self/smaps.
#[cfg(target_os = "linux")]
fn mapped_resident_bytes(path: &Path) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("reads smaps");
    let name = path.to_string_lossy().to_string();
    let mut in_mapping = false;
    let mut total_kib = 0u64;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            in_mapping = line.ends_with(name.as_str());
        } else if in_mapping && first == "Rss:" {
            total_kib += line
                .split_whitespace()
                .nth(1)
                .and_then(|kib| kib.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total_kib * 1024
}

#[cfg(target_os = "linux")]
#[test]
fn mapped_budget_bounds_resident_table_pages_and_reads_stay_right() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut rng = SmallRng::seed_from_u64(9);
    let entries = random_entries(&mut rng, 4000);
    let path = directory.path().join("budget.sst");
    let info = build_table(&path, &small_block_options(Compression::None), &entries);
    assert!(
        info.file_size_bytes > 1 << 20,
        "table of {} bytes is too small to tell",
        info.file_size_bytes
    );

    let read_everything = |table: &Table| {
        for entry in &entries {
            assert_eq!(table.get(&entry.key).expect("gets").as_ref(), Some(entry));
        }
    };
    let unbounded = Table::open(&path, 1, Some(Arc::new(BlockCache::new(0)))).expect("opens");
    read_everything(&unbounded);
    let unbounded_resident = mapped_resident_bytes(&path);
    assert!(
        unbounded_resident > info.file_size_bytes / 2,
        "without a budget the pages stay: {unbounded_resident}"
    );
    drop(unbounded);

    let budget_bytes = 64 * 1024;
    let cache = Arc::new(BlockCache::with_mapped_budget(0, budget_bytes));
    let bounded = Table::open(&path, 2, Some(Arc::clone(&cache))).expect("opens");
    read_everything(&bounded);
    assert!(cache.mapped_budget().epoch() > 10);
    let bounded_resident = mapped_resident_bytes(&path);
    // Twice the budget, plus index and filter pages and the kernel's fault-around.
    assert!(
        bounded_resident < unbounded_resident / 4,
        "with a {budget_bytes}-byte budget {bounded_resident} bytes stay mapped (unbounded: {unbounded_resident})"
    );
}

#[test]
fn positioned_reads_return_the_same_entries_and_catch_damage() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut rng = SmallRng::seed_from_u64(12);
    let entries = random_entries(&mut rng, 1500);
    let path = directory.path().join("pread.sst");
    build_table(
        &path,
        &small_block_options(Compression::Zstd { level: 1 }),
        &entries,
    );
    let table = Arc::new(
        Table::open_with(&path, 1, None, crate::options::DataBlockRead::Pread).expect("opens"),
    );
    for entry in &entries {
        assert_eq!(table.get(&entry.key).expect("gets").as_ref(), Some(entry));
    }
    let mut iterator = table.iter();
    iterator.seek_to_first().expect("seeks");
    assert_eq!(collect(&mut iterator), entries);
    drop((iterator, table));

    // Damage the first data block: a positioned read must report it at its real offset.
    let mut bytes = std::fs::read(&path).expect("reads");
    bytes[20] ^= 0x10;
    std::fs::write(&path, &bytes).expect("writes");
    let table =
        Table::open_with(&path, 2, None, crate::options::DataBlockRead::Pread).expect("opens");
    let error = table.get(&entries[0].key).expect_err("damaged block");
    match error {
        crate::Error::ChecksumMismatch {
            offset, ref path, ..
        } => {
            assert_eq!(offset, 0, "the first block starts at 0");
            assert!(path.ends_with("pread.sst"));
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
}
