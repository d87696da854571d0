//! Helpers shared by the engine's scenario tests.
#![allow(dead_code)]

use engine::{CompactionOptions, IoBackend, Options, SyncPolicy};

/// Options that make a small test exercise flushes and compactions often.
pub fn small_options(io: IoBackend, sync: SyncPolicy) -> Options {
    let mut options = Options {
        memtable_size_bytes: 16 * 1024,
        block_cache_size_bytes: 64 * 1024,
        ..Options::default()
    };
    options.table.block_size_bytes = 512;
    options.table.block_restart_interval = 4;
    options.wal.io = io;
    options.wal.sync = sync;
    options.compaction = CompactionOptions {
        min_merge_width: 3,
        max_merge_width: 6,
        // Small, so merges split their output and runs have several tables.
        table_size_bytes_target: 8 * 1024,
        ..CompactionOptions::default()
    };
    options
}

/// The backends this machine can run: io_uring only where the kernel and sandbox allow it.
pub fn available_backends() -> Vec<IoBackend> {
    let mut backends = vec![IoBackend::Std];
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut options = Options::default();
    options.wal.io = IoBackend::Uring;
    match engine::Db::open(dir.path(), options) {
        Ok(db) => {
            db.close().expect("closing the io_uring probe database");
            backends.push(IoBackend::Uring);
        }
        Err(engine::Error::BackendUnavailable { detail, .. }) => {
            eprintln!("io_uring unavailable here, testing the std backend only: {detail}");
        }
        Err(other) => panic!("opening with io_uring failed unexpectedly: {other}"),
    }
    backends
}

/// A seed from `ENGINE_TEST_SEED`, or `default`; printed so a failure can be replayed.
pub fn seed(default: u64) -> u64 {
    let seed = std::env::var("ENGINE_TEST_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default);
    eprintln!("seed {seed} (replay with ENGINE_TEST_SEED={seed})");
    seed
}
