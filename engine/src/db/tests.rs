use super::*;
use crate::manifest;

fn options() -> Options {
    let mut options = Options {
        memtable_size_bytes: 16 << 10,
        ..Options::default()
    };
    options.wal.enabled = false;
    options.table.block_size_bytes = 512;
    options.compaction.automatic = false;
    options.compaction.table_size_bytes_target = 8 << 10;
    options
}

fn key(number: u32) -> Vec<u8> {
    format!("key{number:06}").into_bytes()
}

/// Writes `count` keys over several flushes, each flush its own run.
fn fill(db: &Db, count: u32) {
    for number in 0..count {
        db.put(&key(number), &[number as u8; 200]).unwrap();
        if number % 100 == 99 {
            db.flush().unwrap();
        }
    }
    db.flush().unwrap();
}

fn check_all(db: &Db, count: u32) {
    for number in 0..count {
        let value = db.get(&key(number)).unwrap().expect("present");
        assert_eq!(value.value, vec![number as u8; 200]);
    }
    let rows = db.scan(b"\0", None, usize::MAX).unwrap();
    assert_eq!(rows.len(), count as usize);
}

#[test]
fn owned_deferred_puts_are_logged_in_place_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options();
    options.wal.enabled = true;
    let db = Db::open(dir.path(), options.clone()).unwrap();
    for number in 0..50u32 {
        db.put_owned_deferred(&key(number), b"", vec![number as u8; 300])
            .unwrap();
    }
    // A deferred record beside plain ones, in one log.
    db.put(&key(1000), b"plain").unwrap();
    db.put_owned_deferred(&key(7), b"m7", b"rewritten".to_vec())
        .unwrap();
    assert!(!db.is_log_committed(db.commit_ticket()));
    db.commit_log().unwrap();
    assert!(db.is_log_committed(db.commit_ticket()));
    let logged = db.stats().wal_bytes;
    drop(db);
    let db = Db::open(dir.path(), options).unwrap();
    assert!(logged > 50 * 300);
    for number in 0..50u32 {
        let expected = if number == 7 {
            b"rewritten".to_vec()
        } else {
            vec![number as u8; 300]
        };
        assert_eq!(db.get(&key(number)).unwrap().unwrap().value, expected);
    }
    assert_eq!(db.get(&key(1000)).unwrap().unwrap().value, b"plain");
    // The metadata is logged and recovered with the value.
    assert_eq!(db.get(&key(7)).unwrap().unwrap().meta, b"m7");
    assert_eq!(db.get(&key(8)).unwrap().unwrap().meta, b"");
    assert!(db.put_owned_deferred(b"", b"", vec![1]).is_err());
}

#[test]
fn get_with_lends_what_get_returns_from_memtable_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    fill(&db, 300);
    // Newer versions in the memtable over older ones in tables, and deletions of both.
    db.put_with_meta(&key(5), b"meta", b"newer").unwrap();
    db.delete(&key(6)).unwrap();
    db.put(&key(1000), b"only in memtable").unwrap();
    db.delete(&key(1000)).unwrap();
    for number in [0, 5, 6, 7, 299, 300, 1000] {
        let lent = db
            .get_with(&key(number), |found| {
                found.map(|(meta, value)| (meta.to_vec(), value.to_vec()))
            })
            .unwrap();
        let copied = db
            .get(&key(number))
            .unwrap()
            .map(|value| (value.meta, value.value));
        assert_eq!(lent, copied, "key {number}");
    }
    assert_eq!(
        db.get_with(&key(5), |found| found.map(|(_, value)| value.to_vec()))
            .unwrap(),
        Some(b"newer".to_vec())
    );
    assert!(db.get_with(&key(6), |found| found.is_none()).unwrap());
    assert!(db.get_with(b"", |_| ()).is_err(), "an empty key is refused");
}

#[test]
fn a_merge_writes_one_run_of_several_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    fill(&db, 1000);
    let before = db.stats();
    assert_eq!(before.runs, before.tables, "a flush writes a one-table run");
    db.compact().unwrap();
    let stats = db.stats();
    assert_eq!(stats.runs, 1);
    assert!(stats.tables >= 4, "{} tables", stats.tables);
    let state = db.inner.read_state();
    let run_id = state.tables[0].table.id();
    for pair in state.tables.windows(2) {
        assert!(pair[0].table.info().largest_key < pair[1].table.info().smallest_key);
    }
    assert!(state.tables.iter().all(|t| t.run_id == run_id));
    let listed = manifest::load(dir.path()).unwrap().unwrap().tables;
    let expected: Vec<(u64, u64)> = state
        .tables
        .iter()
        .map(|t| (t.table.id(), run_id))
        .collect();
    let actual: Vec<(u64, u64)> = listed.iter().map(|t| (t.id, t.run_id)).collect();
    assert_eq!(actual, expected);
    drop(state);
    check_all(&db, 1000);
    db.close().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(db.stats().runs, 1);
    check_all(&db, 1000);
}

#[test]
fn deferred_puts_are_visible_at_once_and_recovered_once_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options();
    options.wal.enabled = true;
    let db = Db::open(dir.path(), options.clone()).unwrap();
    let written_before = db.stats().wal_bytes;
    for number in 0..10 {
        db.put_with_meta_deferred(&key(number), b"m", b"v").unwrap();
    }
    assert_eq!(db.get(&key(3)).unwrap().unwrap().value, b"v");
    assert_eq!(
        db.stats().wal_bytes,
        written_before,
        "nothing written before commit"
    );
    db.commit_log().unwrap();
    let written = db.stats().wal_bytes;
    assert!(written > written_before);
    db.commit_log().unwrap();
    assert_eq!(
        db.stats().wal_bytes,
        written,
        "a second commit writes nothing"
    );
    // Dropped without close: only what the log holds survives.
    drop(db);
    let db = Db::open(dir.path(), options).unwrap();
    for number in 0..10 {
        assert_eq!(db.get(&key(number)).unwrap().unwrap().meta, b"m");
    }
}

#[test]
fn deferred_deletes_are_visible_at_once_and_durable_once_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options();
    options.wal.enabled = true;
    let db = Db::open(dir.path(), options.clone()).unwrap();
    for number in 0..10 {
        db.put(&key(number), b"v").unwrap();
    }
    let written_before = db.stats().wal_bytes;
    for number in 0..5 {
        db.delete_deferred(&key(number)).unwrap();
    }
    assert_eq!(db.get(&key(2)).unwrap(), None, "visible before the commit");
    assert_eq!(db.scan(b"", None, 100).unwrap().len(), 5);
    assert_eq!(
        db.stats().wal_bytes,
        written_before,
        "nothing written before commit"
    );
    db.commit_log().unwrap();
    assert!(db.stats().wal_bytes > written_before);
    // Dropped without close: the committed tombstones survive.
    drop(db);
    let db = Db::open(dir.path(), options).unwrap();
    for number in 0..10 {
        assert_eq!(
            db.get(&key(number)).unwrap().is_some(),
            number >= 5,
            "{number}"
        );
    }
    assert!(db.delete_deferred(b"").is_err());
}

#[test]
fn a_version_1_manifest_opens_with_each_table_its_own_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    fill(&db, 500);
    db.close().unwrap();
    let state = manifest::load(dir.path()).unwrap().unwrap();
    assert!(state.tables.len() >= 5);
    std::fs::write(dir.path().join("MANIFEST"), manifest::encode_v1(&state)).unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let stats = db.stats();
    assert_eq!(stats.runs, state.tables.len());
    assert_eq!(stats.tables, state.tables.len());
    check_all(&db, 500);
    db.compact().unwrap();
    assert_eq!(db.stats().runs, 1);
    check_all(&db, 500);
    db.close().unwrap();
    let reread = manifest::load(dir.path()).unwrap().unwrap();
    let run_id = reread.tables[0].id;
    assert!(reread.tables.iter().all(|t| t.run_id == run_id));
}

/// Bytes of the commit log's segments on disk.
fn log_bytes_on_disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum()
}

/// Waits (bounded) until no memtable is being flushed.
fn wait_for_flushes(db: &Db) {
    for _ in 0..2000 {
        if db.stats().frozen_memtable_bytes == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("a frozen memtable was never flushed");
}

/// 20 keys of 200 bytes each overwritten 100 times: about 440 KB written, 4.4 KB live.
fn overwrite(db: &Db, rounds: u32) {
    for round in 0..rounds {
        for number in 0..20u32 {
            db.put(&key(number), &[(round + number) as u8; 200])
                .unwrap();
        }
    }
}

#[test]
fn overwrites_count_live_bytes_so_a_small_working_set_never_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options();
    options.wal.enabled = true;
    options.wal.max_unflushed_bytes = Some(64 << 20);
    let db = Db::open(dir.path(), options).unwrap();
    overwrite(&db, 100);
    // 440 KB through a 16 KiB memtable; counting replaced bytes would have flushed ~25 times.
    let stats = db.stats();
    assert_eq!(stats.flushes, 0);
    assert_eq!(stats.frozen_memtable_bytes, 0);
    assert!(stats.memtable_bytes < 16 << 10, "{}", stats.memtable_bytes);
    assert!(stats.memtable_bytes >= 20 * 200);
}

#[test]
fn the_log_written_since_the_last_flush_bounds_the_log_and_recovery_holds() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options();
    options.wal.enabled = true;
    options.wal.max_unflushed_bytes = Some(32 << 10);
    let db = Db::open(dir.path(), options.clone()).unwrap();
    let mut largest_log = 0;
    for _ in 0..10 {
        overwrite(&db, 10);
        wait_for_flushes(&db);
        largest_log = largest_log.max(log_bytes_on_disk(dir.path()));
    }
    let stats = db.stats();
    // About 440 KB of log for 4.4 KB of live data: the log trigger flushed ~13 times.
    assert!(stats.flushes >= 5, "{} flushes", stats.flushes);
    assert!(stats.wal_bytes > 400 << 10);
    // What stays on disk is what the unflushed memtables wrote, not the whole history.
    assert!(
        largest_log < 128 << 10,
        "{largest_log} bytes of log on disk"
    );
    drop(db);
    let db = Db::open(dir.path(), options).unwrap();
    for number in 0..20u32 {
        let value = db.get(&key(number)).unwrap().expect("present");
        assert_eq!(value.value, vec![(9 + number) as u8; 200]);
    }
}

#[test]
fn a_tiny_log_bound_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options();
    options.wal.max_unflushed_bytes = Some(100);
    let error = Db::open(dir.path(), options).err().expect("refused");
    assert!(
        error.to_string().contains("wal.max_unflushed_bytes"),
        "{error}"
    );
    let defaults = Options::default();
    assert_eq!(
        defaults.wal_unflushed_bytes_max(),
        4 * defaults.memtable_size_bytes as u64
    );
}

/// The race the flush epoch guards against, played step by step: a read takes its state,
/// a flush writes a newer version of the key and the cache then evicts it, and only then
/// does the read, from its older state's tables, go to insert the old version. Without the
/// guard the old version would be cached and served.
#[test]
fn a_read_begun_before_a_flush_does_not_cache_what_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        // Shards of 2 KiB: one 1500-byte row each, so any other row in the shard evicts it.
        row_cache_size_bytes: 64 << 10,
        ..options()
    };
    let db = Db::open(dir.path(), options).unwrap();
    let inner = &db.inner;
    let cache = inner.row_cache.as_ref().unwrap();
    let target = b"target".as_slice();
    db.put(target, &[1; 1500]).unwrap();
    db.flush().unwrap();

    // The slow reader: notes the epoch and takes the state, then stalls.
    let read_epoch = cache.read_epoch();
    let old_state = inner.read_state();

    db.put(target, &[2; 1500]).unwrap();
    db.flush().unwrap();
    let hash = KeyHash::of(target);
    assert_eq!(cache.get(hash, target).unwrap().value(), &[2; 1500]);
    // Other rows evict it: 200 of them over 32 shards.
    for number in 0..200 {
        db.put(&key(number), &[3; 1500]).unwrap();
    }
    db.flush().unwrap();
    assert!(
        cache.get(hash, target).is_none(),
        "the target must be evicted"
    );

    // The reader resumes: finds the old version in its state's tables.
    let found = inner
        .get_beyond_memtables(&old_state, target, read_epoch, |_, _, value| value.to_vec())
        .unwrap()
        .unwrap();
    assert_eq!(found, vec![1; 1500], "the reader sees its own state");
    drop(old_state);
    assert_eq!(db.get(target).unwrap().unwrap().value, vec![2; 1500]);
    assert!(
        cache.get(hash, target).is_some(),
        "a fresh read caches it again"
    );
}

/// Sizes of the files in `dir`, by name.
fn file_sizes(dir: &Path) -> Vec<(std::ffi::OsString, u64)> {
    let mut sizes: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (entry.file_name(), entry.metadata().unwrap().len())
        })
        .collect();
    sizes.sort();
    sizes
}

#[test]
fn a_well_framed_record_that_is_no_batch_fails_the_open_and_leaves_the_log_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options();
    options.wal.enabled = true;
    let db = Db::open(dir.path(), options.clone()).unwrap();
    for number in 0..20u32 {
        db.put(&key(number), &[number as u8; 100]).unwrap();
    }
    let next_seq = db.inner.next_seq.load(Ordering::Relaxed);
    drop(db);
    // A record the log's framing and checksum accept, whose payload is not a write batch
    // (version byte 9): replay, not the log's own checks, must refuse it.
    let wal_dir = dir.path().join("wal");
    let (wal, records, _) = crate::wal::Wal::open(&wal_dir, &options.wal).unwrap();
    assert_eq!(records.len(), 20);
    wal.append(next_seq, &[9, 0, 0, 0, 0]).unwrap();
    wal.close().unwrap();
    drop(wal);
    let before = file_sizes(&wal_dir);

    let Err(error) = Db::open(dir.path(), options.clone()) else {
        panic!("a log with a record that is no write batch opened");
    };
    let error = error.to_string();
    assert!(error.contains("log record payload"), "{error}");
    assert!(error.contains(&format!("seq {next_seq}")), "{error}");
    assert!(error.contains("unknown payload version 9"), "{error}");
    // Nothing was cut, removed or recycled on the way to the error.
    assert_eq!(file_sizes(&wal_dir), before);
}
