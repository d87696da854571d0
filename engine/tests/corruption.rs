//! Damaged files give clear errors naming the file, and never wrong data.

mod common;

use engine::{Db, Error, IoBackend, Options, SyncPolicy};
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

fn options() -> Options {
    let mut options = common::small_options(IoBackend::Std, SyncPolicy::None);
    options.memtable_size_bytes = 1 << 20;
    options.block_cache_size_bytes = 0;
    options
}

fn key(number: u32) -> Vec<u8> {
    format!("key{number:06}").into_bytes()
}

fn value(number: u32) -> Vec<u8> {
    format!("value-{number}-").repeat(8).into_bytes()
}

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

fn flip_byte(path: &Path, offset: u64) {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open for damage");
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(offset)).expect("seek");
    file.read_exact(&mut byte).expect("read byte");
    byte[0] ^= 0x55;
    file.seek(SeekFrom::Start(offset)).expect("seek");
    file.write_all(&byte).expect("write byte");
}

/// A database with one flushed table of 2000 keys; returns the table's path.
fn database_with_one_table(dir: &Path) -> PathBuf {
    let db = Db::open(dir, options()).expect("open");
    for number in 0..2000 {
        db.put(&key(number), &value(number)).expect("put");
    }
    db.flush().expect("flush");
    db.close().expect("close");
    let tables = files_with_suffix(dir, ".sst");
    assert_eq!(tables.len(), 1, "{tables:?}");
    tables[0].clone()
}

fn assert_names_file(error: &Error, path: &Path) {
    let message = error.to_string();
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(
        message.contains(name.as_ref()),
        "error {message:?} should name {name}"
    );
}

#[test]
fn flipped_byte_in_a_data_block_is_a_checksum_error_never_wrong_data() {
    let dir = tempfile::tempdir().unwrap();
    let table = database_with_one_table(dir.path());
    flip_byte(&table, 40);
    let db = Db::open(dir.path(), options()).expect("open checks index and footer only");
    let error = db
        .scan(b"key", None, usize::MAX)
        .expect_err("a full scan reads the damaged block");
    assert!(
        matches!(
            error,
            Error::ChecksumMismatch { .. } | Error::Corruption { .. }
        ),
        "{error:?}"
    );
    assert_names_file(&error, &table);
    // Point reads either fail the same way or return the right value: never a wrong one.
    let mut failed = 0;
    for number in 0..2000 {
        match db.get(&key(number)) {
            Ok(found) => assert_eq!(found.map(|v| v.value), Some(value(number))),
            Err(_) => failed += 1,
        }
    }
    assert!(failed > 0, "some key lives in the damaged block");
}

#[test]
fn flipped_byte_in_the_footer_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let table = database_with_one_table(dir.path());
    let length = fs::metadata(&table).unwrap().len();
    flip_byte(&table, length - 3);
    let error = Db::open(dir.path(), options())
        .err()
        .expect("open must fail");
    assert_names_file(&error, &table);
}

#[test]
fn truncated_table_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let table = database_with_one_table(dir.path());
    let length = fs::metadata(&table).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&table)
        .unwrap()
        .set_len(length / 2)
        .unwrap();
    let error = Db::open(dir.path(), options())
        .err()
        .expect("open must fail");
    assert_names_file(&error, &table);
}

/// Writes 100 keys through the log only, closes, and returns the segment holding them.
fn database_with_log_only(dir: &Path) -> PathBuf {
    let db = Db::open(dir, options()).expect("open");
    for number in 0..100 {
        db.put(&key(number), &value(number)).expect("put");
    }
    db.close().expect("close");
    let segments = files_with_suffix(&dir.join("wal"), ".log");
    segments
        .into_iter()
        .max_by_key(|path| fs::metadata(path).unwrap().len())
        .expect("a log segment")
}

#[test]
fn torn_log_tail_is_cut_and_earlier_writes_survive() {
    let dir = tempfile::tempdir().unwrap();
    let segment = database_with_log_only(dir.path());
    // A crash leaves no end marker (close wrote one) and, here, five bytes of the last
    // record missing.
    let marker = engine::wal::format::RECORD_HEADER_BYTES as u64;
    let length = fs::metadata(&segment).unwrap().len() - marker;
    OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(length - 5)
        .unwrap();
    let db = Db::open(dir.path(), options()).expect("a torn tail is not an error");
    assert!(db.recovery_report().torn_tail_bytes_dropped > 0);
    for number in 0..99 {
        assert_eq!(
            db.get(&key(number)).unwrap().map(|v| v.value),
            Some(value(number))
        );
    }
    assert_eq!(
        db.get(&key(99)).unwrap(),
        None,
        "the torn record is dropped"
    );
}

#[test]
fn damage_in_the_middle_of_the_log_is_an_error_unless_salvaging() {
    let dir = tempfile::tempdir().unwrap();
    let segment = database_with_log_only(dir.path());
    let length = fs::metadata(&segment).unwrap().len();
    flip_byte(&segment, length / 2);
    let error = Db::open(dir.path(), options())
        .err()
        .expect("mid-log damage must fail open");
    assert!(
        matches!(
            error,
            Error::ChecksumMismatch { .. } | Error::Corruption { .. }
        ),
        "{error:?}"
    );
    assert_names_file(&error, &segment);

    let mut salvage = options();
    salvage.wal.salvage = true;
    let db = Db::open(dir.path(), salvage).expect("salvage opens");
    assert_eq!(db.recovery_report().salvaged.len(), 1);
    assert_eq!(
        db.get(&key(0)).unwrap().map(|v| v.value),
        Some(value(0)),
        "records before the damage are kept"
    );
}

#[test]
fn oversized_input_is_refused_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    db.put(b"kept", b"value").unwrap();
    let big_key = vec![b'k'; 1025];
    assert!(matches!(
        db.put(&big_key, b"v"),
        Err(Error::KeyTooLarge {
            size_bytes: 1025,
            size_bytes_max: 1024
        })
    ));
    let big_value = vec![0u8; 10 * 1024 + 1];
    assert!(matches!(
        db.put(b"k", &big_value),
        Err(Error::ValueTooLarge { .. })
    ));
    assert!(matches!(db.put(b"", b"v"), Err(Error::EmptyKey)));
    assert_eq!(
        db.get(b"kept").unwrap().map(|v| v.value),
        Some(b"value".to_vec())
    );
}

#[test]
fn a_second_process_handle_is_refused_by_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let _db = Db::open(dir.path(), options()).unwrap();
    assert!(matches!(
        Db::open(dir.path(), options()),
        Err(Error::Locked { .. })
    ));
}
