//! The row cache seen through the database: a model test with a cache small enough to
//! evict, the flush's invalidation of cached rows, concurrent writers, flushes and readers
//! on the same keys, the byte bound and the option's validation.

mod common;

use engine::{Db, Error, IoBackend, Options, SyncPolicy, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

/// Small enough that a few hundred keys of a few hundred bytes evict each other.
const SMALL_CACHE_BYTES: usize = 64 * 1024;

fn options(row_cache_size_bytes: usize) -> Options {
    let mut options = common::small_options(IoBackend::Std, SyncPolicy::None);
    options.row_cache_size_bytes = row_cache_size_bytes;
    options
}

#[test]
fn engine_with_an_evicting_row_cache_matches_btreemap_model() {
    let seed = common::seed(0x0c0ffee);
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = options(SMALL_CACHE_BYTES);
    let mut db = Db::open(dir.path(), options.clone()).expect("open");
    let mut model: BTreeMap<Vec<u8>, Value> = BTreeMap::new();
    let mut hits = 0;
    for step in 0..3000 {
        let key = format!("key{:04}", rng.gen_range(0..400)).into_bytes();
        match rng.gen_range(0..100) {
            0..=29 => {
                let value = Value {
                    meta: vec![rng.gen(); rng.gen_range(0..8)],
                    value: vec![rng.gen(); rng.gen_range(0..400)],
                };
                db.put_with_meta(&key, &value.meta, &value.value)
                    .expect("put");
                model.insert(key, value);
            }
            30..=37 => {
                db.delete(&key).expect("delete");
                model.remove(&key);
            }
            38..=93 => {
                assert_eq!(
                    db.get(&key).expect("get"),
                    model.get(&key).cloned(),
                    "get {key:?} at step {step}"
                );
                let lent = db
                    .get_with(&key, |found| {
                        found.map(|(meta, value)| Value {
                            meta: meta.to_vec(),
                            value: value.to_vec(),
                        })
                    })
                    .expect("get_with");
                assert_eq!(lent, model.get(&key).cloned(), "get_with {key:?}");
            }
            94..=96 => db.flush().expect("flush"),
            97 => db.compact().expect("compact"),
            _ => {
                hits += db.stats().row_cache_hits;
                db.close().expect("close");
                db = Db::open(dir.path(), options.clone()).expect("reopen");
                assert_eq!(
                    db.stats().row_cache_bytes,
                    0,
                    "a reopened cache starts empty"
                );
            }
        }
        let stats = db.stats();
        assert!(
            stats.row_cache_bytes <= SMALL_CACHE_BYTES,
            "row cache holds {} bytes, over its {SMALL_CACHE_BYTES}",
            stats.row_cache_bytes
        );
    }
    let stats = db.stats();
    hits += stats.row_cache_hits;
    eprintln!("seed {seed}: {hits} row cache hits in all, last {stats:?}");
    assert!(hits > 300, "the cache must serve reads ({hits} hits)");
    assert!(
        stats.row_cache_misses > 0,
        "a small cache must miss sometimes"
    );
}

/// Fails if a flush leaves a cached row older than the flushed memtable's version: the
/// read after the second flush finds nothing in the memtables and would be served the
/// first value from the cache.
#[test]
fn a_flush_replaces_the_cached_rows_of_the_keys_it_flushes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = Db::open(dir.path(), options(1 << 20)).expect("open");
    for round in 0..5u8 {
        db.put(b"key", &[round; 100]).expect("put");
        db.put(b"gone", &[round; 100]).expect("put");
        db.flush().expect("flush");
        // Cached by this read (read-through), or already by the flush.
        assert_eq!(db.get(b"key").unwrap().unwrap().value, vec![round; 100]);
        assert_eq!(db.get(b"gone").unwrap().unwrap().value, vec![round; 100]);
        db.delete(b"gone").expect("delete");
        db.flush().expect("flush");
        assert_eq!(db.get(b"gone").unwrap(), None, "round {round}");
    }
    let stats = db.stats();
    assert!(stats.row_cache_hits > 0, "{stats:?}");
}

/// Writers overwrite a few keys with increasing counters while the memtable flushes every
/// few writes and a thread forces flushes and compactions; readers check that a key never
/// reads older than the counter its writer had acknowledged before the read began, nor
/// older than what the same reader saw before.
#[test]
fn concurrent_readers_never_see_a_value_older_than_one_acknowledged() {
    const KEYS: usize = 4;
    const WRITES_PER_KEY: u64 = 1500;
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut options = options(SMALL_CACHE_BYTES);
    options.memtable_size_bytes = 4096;
    let db = Arc::new(Db::open(dir.path(), options).expect("open"));
    let acknowledged: Arc<Vec<AtomicU64>> =
        Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let writers_done = Arc::new(AtomicBool::new(false));
    let key = |index: usize| format!("key{index}").into_bytes();
    // Padding makes the memtable fill (and flush) every few dozen writes.
    let value_of = |counter: u64| {
        let mut value = counter.to_le_bytes().to_vec();
        value.resize(100, 0);
        value
    };
    let counter_of = |value: &[u8]| u64::from_le_bytes(value[..8].try_into().unwrap());

    let mut threads = Vec::new();
    for index in 0..KEYS {
        let (db, acknowledged) = (Arc::clone(&db), Arc::clone(&acknowledged));
        threads.push(thread::spawn(move || {
            for counter in 1..=WRITES_PER_KEY {
                db.put(&key(index), &value_of(counter)).expect("put");
                acknowledged[index].store(counter, Ordering::SeqCst);
            }
        }));
    }
    let mut readers = Vec::new();
    for reader in 0..2 {
        let (db, acknowledged, done) = (
            Arc::clone(&db),
            Arc::clone(&acknowledged),
            Arc::clone(&writers_done),
        );
        readers.push(thread::spawn(move || {
            let mut seen = [0u64; KEYS];
            let mut reads = 0u64;
            while !done.load(Ordering::SeqCst) || reads < 1000 {
                let index = (reads as usize + reader) % KEYS;
                let floor = acknowledged[index].load(Ordering::SeqCst).max(seen[index]);
                let found = db
                    .get_with(&key(index), |found| {
                        found.map(|(_, value)| counter_of(value))
                    })
                    .expect("get");
                let counter = found.unwrap_or(0);
                assert!(
                    counter >= floor,
                    "key{index} read {counter} after {floor} was acknowledged or seen"
                );
                seen[index] = counter;
                reads += 1;
                if reads % 64 == 0 {
                    // Leaves the writers and the flusher some of the machine's cores.
                    thread::yield_now();
                }
            }
            reads
        }));
    }
    let maintenance = {
        let (db, done) = (Arc::clone(&db), Arc::clone(&writers_done));
        thread::spawn(move || {
            let mut rounds = 0u64;
            while !done.load(Ordering::SeqCst) {
                db.flush().expect("flush");
                if rounds % 8 == 7 {
                    db.compact().expect("compact");
                }
                rounds += 1;
                thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    for thread in threads {
        thread.join().expect("writer");
    }
    writers_done.store(true, Ordering::SeqCst);
    let reads: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
    maintenance.join().expect("maintenance");
    for index in 0..KEYS {
        let value = db.get(&key(index)).unwrap().expect("present");
        assert_eq!(counter_of(&value.value), WRITES_PER_KEY);
    }
    let stats = db.stats();
    eprintln!("{reads} reads: {stats:?}");
    assert!(stats.flushes > 20, "the memtable must have flushed often");
    assert!(stats.row_cache_bytes <= SMALL_CACHE_BYTES);
}

#[test]
fn a_row_cache_too_small_to_hold_anything_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for bad in [1, 4096, 65535] {
        match Db::open(dir.path(), options(bad)) {
            Err(Error::InvalidOption { field, detail }) => {
                assert_eq!(field, "row_cache_size_bytes");
                assert!(detail.contains(&bad.to_string()), "{detail}");
            }
            Err(other) => panic!("row_cache_size_bytes = {bad}: unexpected error {other}"),
            Ok(_) => panic!("row_cache_size_bytes = {bad} was accepted"),
        }
    }
    // Off, and the smallest size, both open.
    for good in [0, 65536] {
        let db = Db::open(dir.path(), options(good)).expect("open");
        db.put(b"k", b"v").unwrap();
        db.flush().unwrap();
        assert_eq!(db.get(b"k").unwrap().unwrap().value, b"v");
        assert_eq!(db.stats().row_cache_hits > 0, good > 0);
        db.close().unwrap();
    }
}
