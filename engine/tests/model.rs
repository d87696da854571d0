//! Model test: the engine against a `BTreeMap` under seeded random puts, deletes, gets and
//! scans, with forced flushes, compactions and close-and-reopen in between.

mod common;

use engine::{DataBlockRead, Db, IoBackend, SyncPolicy, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;

const OPERATIONS: usize = 6000;
const KEY_SPACE: u32 = 600;

fn random_key(rng: &mut StdRng) -> Vec<u8> {
    // Shared prefixes of varying length exercise the blocks' prefix compression.
    let number = rng.gen_range(0..KEY_SPACE);
    let prefix = "k".repeat(rng.gen_range(1..4));
    format!("{prefix}{number:05}").into_bytes()
}

fn random_bytes(rng: &mut StdRng, length_max: usize) -> Vec<u8> {
    let length = rng.gen_range(0..=length_max);
    (0..length).map(|_| rng.gen::<u8>()).collect()
}

fn check_scan(db: &Db, model: &BTreeMap<Vec<u8>, Value>, rng: &mut StdRng) {
    let start = random_key(rng);
    let limit = rng.gen_range(1..40);
    let end = rng.gen_bool(0.3).then(|| random_key(rng));
    let expected: Vec<(Vec<u8>, Value)> = model
        .range(start.clone()..)
        .take_while(|(key, _)| end.as_ref().is_none_or(|end| *key < end))
        .take(limit)
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let actual = db.scan(&start, end.as_deref(), limit).expect("scan");
    assert_eq!(
        actual, expected,
        "scan from {start:?} to {end:?} limit {limit}"
    );
}

fn run(seed: u64, io: IoBackend, dir: &Path) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut options = common::small_options(io, SyncPolicy::None);
    // Alternate the two ways of reading data blocks between rounds.
    options.table.data_block_read = if seed % 2 == 0 {
        DataBlockRead::Mmap
    } else {
        DataBlockRead::Pread
    };
    let mut db = Db::open(dir, options.clone()).expect("open");
    let mut model: BTreeMap<Vec<u8>, Value> = BTreeMap::new();
    for step in 0..OPERATIONS {
        match rng.gen_range(0..100) {
            0..=44 => {
                let key = random_key(&mut rng);
                let value = Value {
                    meta: random_bytes(&mut rng, 16),
                    value: random_bytes(&mut rng, 300),
                };
                db.put_with_meta(&key, &value.meta, &value.value)
                    .expect("put");
                model.insert(key, value);
            }
            45..=59 => {
                let key = random_key(&mut rng);
                db.delete(&key).expect("delete");
                model.remove(&key);
            }
            60..=89 => {
                let key = random_key(&mut rng);
                assert_eq!(
                    db.get(&key).expect("get"),
                    model.get(&key).cloned(),
                    "get {key:?} at step {step}"
                );
            }
            90..=95 => check_scan(&db, &model, &mut rng),
            96 => db.flush().expect("flush"),
            97 => db.compact().expect("compact"),
            _ => {
                db.close().expect("close");
                db = Db::open(dir, options.clone()).expect("reopen");
            }
        }
    }
    // Everything, in order, after one last reopen.
    db.close().expect("close");
    let db = Db::open(dir, options).expect("final reopen");
    let all = db.scan(b"\0", None, usize::MAX).expect("full scan");
    let expected: Vec<_> = model.into_iter().collect();
    assert_eq!(all.len(), expected.len());
    assert_eq!(all, expected);
    let stats = db.stats();
    eprintln!("{io:?} seed {seed}: {stats:?}");
    assert!(stats.tables >= 1, "the run must have produced tables");
    assert!(
        stats.tables > stats.runs,
        "merges must have split their output into several tables per run"
    );
}

#[test]
fn engine_matches_btreemap_model() {
    let base = common::seed(0x5eed);
    for io in common::available_backends() {
        for round in 0..3 {
            let dir = tempfile::tempdir().expect("temporary directory");
            run(base + round, io, dir.path());
        }
    }
}
