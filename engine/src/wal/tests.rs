//! Every test runs against each available I/O backend.

use super::*;
use crate::io::tests::available_backends;
use crate::{Error, IoBackend};
use std::fs::OpenOptions;

fn options(io: IoBackend, sync: SyncPolicy) -> WalOptions {
    WalOptions {
        io,
        sync,
        ..WalOptions::default()
    }
}

fn payload(index: u64) -> Vec<u8> {
    format!(
        "record number {index} {}",
        "x".repeat((index % 50) as usize)
    )
    .into_bytes()
}

/// Opens a log in `directory`, appends `count` records with seqs 1..=count, closes it.
fn write_records(directory: &Path, options: &WalOptions, count: u64) {
    let (wal, _, _) = Wal::open(directory, options).unwrap();
    for seq in 1..=count {
        wal.append(seq, &payload(seq)).unwrap();
    }
    wal.close().unwrap();
}

fn segment_path(directory: &Path, number: u64) -> PathBuf {
    directory.join(segment::file_name(number))
}

/// Offset of record `index` (0-based) in a segment written by `write_records`.
fn record_offset(index: u64) -> u64 {
    let mut offset = format::SEGMENT_HEADER_BYTES as u64;
    for seq in 1..=index {
        offset += (format::RECORD_HEADER_BYTES + payload(seq).len()) as u64;
    }
    offset
}

#[test]
fn wal_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Wal>();
}

#[test]
fn append_and_reopen_round_trip() {
    for backend in available_backends() {
        for sync in [
            SyncPolicy::None,
            SyncPolicy::Periodic { interval_ms: 5 },
            SyncPolicy::Always,
        ] {
            let directory = tempfile::tempdir().unwrap();
            let options = options(backend, sync);
            write_records(directory.path(), &options, 100);
            let (wal, records, report) = Wal::open(directory.path(), &options).unwrap();
            assert_eq!(wal.current_segment(), 2);
            assert_eq!(records.len(), 100, "{backend:?} {sync:?}");
            for (index, record) in records.iter().enumerate() {
                let seq = index as u64 + 1;
                assert_eq!(record.seq, seq);
                assert_eq!(record.payload, payload(seq));
            }
            assert_eq!(report.segments_read, 1);
            assert_eq!(report.records, 100);
            assert_eq!(report.torn_tail_bytes_dropped, 0);
            assert!(report.salvaged.is_empty());
            wal.append(101, b"after reopen").unwrap();
            wal.close().unwrap();
            let (_, records, report) = Wal::open(directory.path(), &options).unwrap();
            assert_eq!(report.segments_read, 2);
            assert_eq!(records.len(), 101);
            assert_eq!(records[100].payload, b"after reopen");
        }
    }
}

#[test]
fn appends_reach_the_os_before_returning_without_sync() {
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let (wal, _, _) = Wal::open(directory.path(), &options(backend, SyncPolicy::None)).unwrap();
        wal.append(1, b"visible").unwrap();
        // Read through another descriptor while the log is still open: what a process
        // killed right now would leave behind.
        let path = segment_path(directory.path(), 1);
        let bytes = std::fs::read(&path).unwrap();
        let decoded = decode_segment(&path, &bytes).unwrap();
        assert_eq!(decoded.records.len(), 1, "{backend:?}");
        assert_eq!(decoded.records[0].payload, b"visible");
        assert_eq!(wal.bytes_written(), bytes.len() as u64);
        assert_eq!(wal.sync_count(), 0);
    }
}

#[test]
fn concurrent_appenders_share_syncs() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 50;
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let options = options(backend, SyncPolicy::Always);
        let (wal, _, _) = Wal::open(directory.path(), &options).unwrap();
        std::thread::scope(|scope| {
            for thread_index in 0..THREADS {
                let wal = &wal;
                scope.spawn(move || {
                    for index in 0..PER_THREAD {
                        let seq = thread_index * PER_THREAD + index + 1;
                        wal.append(seq, &payload(seq)).unwrap();
                    }
                });
            }
        });
        let syncs = wal.sync_count();
        wal.close().unwrap();
        let total = THREADS * PER_THREAD;
        eprintln!("{backend:?}: {total} appends with Always took {syncs} syncs");
        assert!(
            syncs < total,
            "{backend:?}: {syncs} syncs for {total} records"
        );
        let (_, records, _) = Wal::open(directory.path(), &options).unwrap();
        let mut seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
        for record in &records {
            assert_eq!(record.payload, payload(record.seq));
        }
    }
}

#[test]
fn periodic_policy_syncs_in_the_background() {
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let options = options(backend, SyncPolicy::Periodic { interval_ms: 10 });
        let (wal, _, _) = Wal::open(directory.path(), &options).unwrap();
        wal.append(1, b"one").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while wal.sync_count() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(wal.sync_count() >= 1, "{backend:?}");
        // Nothing new written: the syncer must not keep syncing.
        let settled = wal.sync_count();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(wal.sync_count(), settled, "{backend:?}");
        wal.close().unwrap();
    }
}

#[test]
fn rotate_and_remove_old_segments() {
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let options = options(backend, SyncPolicy::None);
        let (wal, _, _) = Wal::open(directory.path(), &options).unwrap();
        assert_eq!(wal.current_segment(), 1);
        wal.append(1, b"in segment one").unwrap();
        assert_eq!(wal.rotate().unwrap(), 2);
        assert_eq!(wal.current_segment(), 2);
        wal.append(2, b"in segment two").unwrap();
        let old = std::fs::read(segment_path(directory.path(), 1)).unwrap();
        let decoded = decode_segment(Path::new("1"), &old).unwrap();
        assert_eq!(decoded.records.len(), 1);
        assert_eq!(decoded.records[0].seq, 1);
        assert_eq!(wal.rotate().unwrap(), 3);
        // Asking beyond the current segment removes only the older ones.
        assert_eq!(wal.remove_segments_before(u64::MAX).unwrap(), 2);
        assert_eq!(wal.remove_segments_before(3).unwrap(), 0);
        wal.append(3, b"in segment three").unwrap();
        wal.close().unwrap();
        let (wal, records, _) = Wal::open(directory.path(), &options).unwrap();
        assert_eq!(wal.current_segment(), 4);
        let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
        assert_eq!(seqs, [3], "{backend:?}");
    }
}

#[test]
fn torn_tail_is_cut_and_the_next_open_is_clean() {
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let options = options(backend, SyncPolicy::Always);
        write_records(directory.path(), &options, 3);
        let path = segment_path(directory.path(), 1);
        // Without the end marker close wrote: the shape of a crash.
        let length = std::fs::metadata(&path).unwrap().len() - format::RECORD_HEADER_BYTES as u64;
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(length - 5).unwrap();
        drop(file);
        let (wal, records, report) = Wal::open(directory.path(), &options).unwrap();
        assert_eq!(records.len(), 2, "{backend:?}");
        assert_eq!(
            report.torn_tail_bytes_dropped,
            length - 5 - record_offset(2)
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), record_offset(2));
        wal.close().unwrap();
        let (_, records, report) = Wal::open(directory.path(), &options).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(report.torn_tail_bytes_dropped, 0);
        assert!(report.salvaged.is_empty());
    }
}

/// Writes three records and flips a byte inside the second one's payload.
fn damage_second_record(directory: &Path, options: &WalOptions) -> PathBuf {
    write_records(directory, options, 3);
    let path = segment_path(directory, 1);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[record_offset(1) as usize + format::RECORD_HEADER_BYTES + 2] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn mid_log_damage_is_an_error_naming_file_and_offset() {
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let options = options(backend, SyncPolicy::None);
        let path = damage_second_record(directory.path(), &options);
        let error = Wal::open(directory.path(), &options).err().unwrap();
        match &error {
            Error::ChecksumMismatch {
                path: error_path,
                offset,
                ..
            } => {
                assert_eq!(error_path, &path);
                assert_eq!(*offset, record_offset(1));
            }
            other => panic!("{backend:?}: unexpected {other}"),
        }
        assert!(error.to_string().contains("000001.log"), "{error}");
    }
}

#[test]
fn mid_log_damage_is_salvaged_when_asked() {
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let mut options = options(backend, SyncPolicy::None);
        let path = damage_second_record(directory.path(), &options);
        let length = std::fs::metadata(&path).unwrap().len();
        options.salvage = true;
        let (wal, records, report) = Wal::open(directory.path(), &options).unwrap();
        assert_eq!(records.len(), 1, "{backend:?}");
        assert_eq!(records[0].seq, 1);
        assert_eq!(
            report.salvaged,
            vec![(path.clone(), record_offset(1), length - record_offset(1))]
        );
        wal.append(4, b"after salvage").unwrap();
        wal.close().unwrap();
        options.salvage = false;
        let (_, records, report) = Wal::open(directory.path(), &options).unwrap();
        let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
        assert_eq!(seqs, [1, 4]);
        assert!(report.salvaged.is_empty());
    }
}

#[test]
fn a_torn_shape_in_an_older_segment_is_damage() {
    let directory = tempfile::tempdir().unwrap();
    let options = options(IoBackend::Std, SyncPolicy::None);
    write_records(directory.path(), &options, 3);
    write_records(directory.path(), &options, 1);
    let path = segment_path(directory.path(), 1);
    let length = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(length - 1)
        .unwrap();
    let error = Wal::open(directory.path(), &options).err().unwrap();
    assert!(
        matches!(&error, Error::Corruption { path: error_path, .. } if error_path == &path),
        "{error}"
    );
}

#[test]
fn a_torn_segment_header_is_removed() {
    let directory = tempfile::tempdir().unwrap();
    let options = options(IoBackend::Std, SyncPolicy::None);
    write_records(directory.path(), &options, 2);
    std::fs::write(
        segment_path(directory.path(), 2),
        &format::segment_header(2)[..5],
    )
    .unwrap();
    let (wal, records, report) = Wal::open(directory.path(), &options).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(report.torn_tail_bytes_dropped, 5);
    assert_eq!(wal.current_segment(), 3);
    assert!(!segment_path(directory.path(), 2).exists());
}

#[test]
fn oversize_records_are_rejected() {
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let mut options = options(backend, SyncPolicy::None);
        options.record_size_bytes_max = 100;
        let (wal, _, _) = Wal::open(directory.path(), &options).unwrap();
        wal.append(1, &[7u8; 100]).unwrap();
        let error = wal.append(2, &[7u8; 101]).err().unwrap();
        assert!(
            matches!(
                error,
                Error::RecordTooLarge {
                    size_bytes: 101,
                    size_bytes_max: 100
                }
            ),
            "{error}"
        );
        wal.close().unwrap();
    }
}

#[test]
fn closed_log_refuses_appends() {
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let (wal, _, _) =
            Wal::open(directory.path(), &options(backend, SyncPolicy::Always)).unwrap();
        wal.append(1, b"x").unwrap();
        wal.close().unwrap();
        wal.close().unwrap();
        assert!(matches!(wal.append(2, b"y"), Err(Error::Closed)));
        assert!(matches!(wal.rotate(), Err(Error::Closed)));
        assert!(matches!(wal.sync(), Err(Error::Closed)));
    }
}

#[test]
fn records_larger_than_the_queue_bound_pass_through() {
    let directory = tempfile::tempdir().unwrap();
    let options = options(IoBackend::Std, SyncPolicy::None);
    let (wal, _, _) = Wal::open(directory.path(), &options).unwrap();
    let big = vec![3u8; 6 << 20];
    std::thread::scope(|scope| {
        for seq in 1..=3u64 {
            let (wal, big) = (&wal, &big);
            scope.spawn(move || wal.append(seq, big).unwrap());
        }
    });
    wal.close().unwrap();
    let (_, records, _) = Wal::open(directory.path(), &options).unwrap();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|record| record.payload == big));
}

/// Group commit through `poll_commit`, as event-loop threads use it: every record a poll
/// reported committed is in the log after a reopen (`None`: written to the OS, which
/// survives the process; the reopen reads what the OS holds).
#[test]
fn records_committed_by_polling_threads_are_all_in_the_log_after_reopen() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 200;
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let options = options(backend, SyncPolicy::None);
        let (wal, _, _) = Wal::open(directory.path(), &options).unwrap();
        std::thread::scope(|scope| {
            for thread_index in 0..THREADS {
                let wal = &wal;
                scope.spawn(move || {
                    let waker = std::task::Waker::noop();
                    for index in 0..PER_THREAD {
                        let seq = thread_index * PER_THREAD + index + 1;
                        let ticket = wal.append_deferred(seq, &payload(seq)).unwrap();
                        // Bounded: a leader holds the write for one pwrite at most.
                        let mut polls = 0u64;
                        while wal.poll_commit(ticket, waker).is_pending() {
                            polls += 1;
                            assert!(polls < 100_000_000, "commit never completed");
                            std::thread::yield_now();
                        }
                        assert!(wal.is_committed(ticket));
                    }
                });
            }
        });
        // Not closed (closing would write anything still queued): what a commit reported
        // written must already be in the file. Leaks one file handle for the test.
        std::mem::forget(wal);
        let (_, records, _) = Wal::open(directory.path(), &options).unwrap();
        let mut seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=THREADS * PER_THREAD).collect::<Vec<_>>());
        for record in &records {
            assert_eq!(record.payload, payload(record.seq));
        }
    }
}

#[test]
fn periodic_syncer_runs_early_once_sync_after_bytes_are_unsynced() {
    for io in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let options = WalOptions {
            // The interval alone would not sync within the test.
            sync_after_bytes: 64 << 10,
            ..options(
                io,
                SyncPolicy::Periodic {
                    interval_ms: 3_600_000,
                },
            )
        };
        let (wal, _, _) = Wal::open(directory.path(), &options).unwrap();
        let record = vec![7u8; 4096];
        for seq in 1..=64 {
            wal.append(seq, &record).unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while wal.sync_count() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{io:?}: 256 KiB written, sync_after_bytes 64 KiB, and no sync"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        wal.close().unwrap();
    }
}

#[test]
fn sync_after_bytes_zero_leaves_syncing_to_the_interval() {
    let directory = tempfile::tempdir().unwrap();
    let options = WalOptions {
        sync_after_bytes: 0,
        ..options(
            IoBackend::Std,
            SyncPolicy::Periodic {
                interval_ms: 3_600_000,
            },
        )
    };
    let (wal, _, _) = Wal::open(directory.path(), &options).unwrap();
    let record = vec![7u8; 4096];
    for seq in 1..=64 {
        wal.append(seq, &record).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(wal.sync_count(), 0);
    wal.close().unwrap();
}

/// Options with `keep` retired segments recycled, no syncs.
fn recycling(io: IoBackend, keep: usize) -> WalOptions {
    WalOptions {
        recycle_segments: keep,
        ..options(io, SyncPolicy::None)
    }
}

fn free_files(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".free"))
        .collect();
    names.sort();
    names
}

/// A retired segment is kept as a `.free` file and rewritten as a later segment: the same
/// file (its length kept, so the pages are rewritten rather than added), and after a crash
/// (no end marker) only the records of its new use are replayed.
#[test]
fn retired_segments_are_rewritten_and_their_earlier_records_never_replay() {
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let options = recycling(backend, 1);
        let (wal, _, _) = Wal::open(directory.path(), &options).unwrap();
        for seq in 1..=40 {
            wal.append(seq, &[seq as u8; 500]).unwrap();
        }
        let first = segment_path(directory.path(), 1);
        assert_eq!(wal.rotate().unwrap(), 2);
        let first_length = std::fs::metadata(&first).unwrap().len();
        wal.append(41, b"in segment two").unwrap();
        assert_eq!(wal.remove_segments_before(2).unwrap(), 1);
        assert!(!first.exists());
        assert_eq!(free_files(directory.path()), ["000001.free"]);
        assert_eq!(wal.rotate().unwrap(), 3);
        assert!(free_files(directory.path()).is_empty(), "{backend:?}");
        let third = segment_path(directory.path(), 3);
        assert_eq!(std::fs::metadata(&third).unwrap().len(), first_length);
        wal.append(42, b"first of three").unwrap();
        wal.append(43, b"second of three").unwrap();
        // A crash: the log is never closed, so segment 3 has no end marker.
        std::mem::forget(wal);
        let (wal, records, report) = Wal::open(directory.path(), &options).unwrap();
        let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
        assert_eq!(seqs, [41, 42, 43], "{backend:?}");
        assert_eq!(report.torn_tail_bytes_dropped, 0);
        let kept = record_offset_of(&[b"first of three", b"second of three"]);
        assert_eq!(report.stale_bytes_dropped, first_length - kept);
        assert_eq!(std::fs::metadata(&third).unwrap().len(), kept);
        wal.close().unwrap();
        let (wal, records, report) = Wal::open(directory.path(), &options).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(report.stale_bytes_dropped, 0);
        wal.close().unwrap();
    }
}

/// Offset just past `payloads` written as records after a segment header.
fn record_offset_of(payloads: &[&[u8]]) -> u64 {
    let records: usize = payloads
        .iter()
        .map(|payload| format::RECORD_HEADER_BYTES + payload.len())
        .sum();
    (format::SEGMENT_HEADER_BYTES + records) as u64
}

/// A closed log's last segment is sealed, so a recycled file's earlier bytes after it are
/// never examined; damage before a later record of the same use is still an error.
#[test]
fn a_recycled_segment_is_sealed_on_close_and_damage_in_it_is_still_found() {
    let directory = tempfile::tempdir().unwrap();
    let options = recycling(IoBackend::Std, 2);
    let (wal, _, _) = Wal::open(directory.path(), &options).unwrap();
    for seq in 1..=20 {
        wal.append(seq, &[7u8; 300]).unwrap();
    }
    wal.rotate().unwrap();
    wal.remove_segments_before(2).unwrap();
    wal.rotate().unwrap();
    for seq in 21..=23 {
        wal.append(seq, &payload(seq)).unwrap();
    }
    wal.close().unwrap();
    let (wal, records, report) = Wal::open(directory.path(), &options).unwrap();
    let seqs: Vec<u64> = records.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, [21, 22, 23]);
    assert_eq!(
        report.stale_bytes_dropped + report.torn_tail_bytes_dropped,
        0
    );
    wal.close().unwrap();
    // Damage in the second of segment 3's records, with the third after it.
    let path = segment_path(directory.path(), 3);
    let mut bytes = std::fs::read(&path).unwrap();
    let second = record_offset_of(&[&payload(21)]) as usize;
    bytes[second + format::RECORD_HEADER_BYTES + 1] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let error = Wal::open(directory.path(), &options).err().unwrap();
    assert!(
        matches!(&error, Error::ChecksumMismatch { path: error_path, offset, .. }
            if error_path == &path && *offset == second as u64),
        "{error}"
    );
}

/// Lowering `recycle_segments` deletes the `.free` files beyond it at the next open; 0
/// deletes retired segments outright.
#[test]
fn free_files_beyond_the_setting_are_deleted() {
    let directory = tempfile::tempdir().unwrap();
    let keep_two = recycling(IoBackend::Std, 2);
    let (wal, _, _) = Wal::open(directory.path(), &keep_two).unwrap();
    for _ in 0..3 {
        wal.append(1, b"x").unwrap();
        wal.rotate().unwrap();
    }
    assert_eq!(wal.remove_segments_before(4).unwrap(), 3);
    assert_eq!(free_files(directory.path()), ["000001.free", "000002.free"]);
    wal.close().unwrap();
    let none = WalOptions {
        recycle_segments: 0,
        ..keep_two
    };
    let (wal, _, _) = Wal::open(directory.path(), &none).unwrap();
    assert!(free_files(directory.path()).is_empty());
    wal.rotate().unwrap();
    assert_eq!(wal.remove_segments_before(u64::MAX).unwrap(), 2);
    assert!(free_files(directory.path()).is_empty());
    wal.close().unwrap();
}

/// Appenders racing rotations: a record queued while a rotation writes out the old
/// segment's last batch goes to the new segment and must carry its number. Every
/// acknowledged record is recovered, in each writer's order.
#[test]
fn records_appended_during_rotations_are_all_recovered() {
    for backend in available_backends() {
        let directory = tempfile::tempdir().unwrap();
        let options = recycling(backend, 1);
        let (wal, _, _) = Wal::open(directory.path(), &options).unwrap();
        let wal = Arc::new(wal);
        let next_seq = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let writers: Vec<_> = (0..3u64)
            .map(|writer| {
                let wal = Arc::clone(&wal);
                let next_seq = Arc::clone(&next_seq);
                std::thread::spawn(move || {
                    for index in 0..1500u64 {
                        let seq = next_seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let payload = format!("writer {writer} record {index}");
                        wal.append(seq, payload.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..60 {
            wal.rotate().unwrap();
            let current = wal.current_segment();
            wal.remove_segments_before(current.saturating_sub(1))
                .unwrap();
            std::thread::yield_now();
        }
        for writer in writers {
            writer.join().unwrap();
        }
        let kept_from = wal.current_segment().saturating_sub(1);
        wal.close().unwrap();
        let (_, records, report) = Wal::open(directory.path(), &options).unwrap();
        assert!(report.salvaged.is_empty());
        assert_eq!(
            report.torn_tail_bytes_dropped + report.stale_bytes_dropped,
            0
        );
        // Segments before `kept_from` were retired; what remains must be whole: every
        // record of each writer from its first recovered one on, in order.
        for writer in 0..3u64 {
            let indices: Vec<u64> = records
                .iter()
                .filter_map(|record| {
                    let text = String::from_utf8(record.payload.clone()).unwrap();
                    let rest = text.strip_prefix(&format!("writer {writer} record "))?;
                    rest.parse().ok()
                })
                .collect();
            if let Some(&first) = indices.first() {
                let expected: Vec<u64> = (first..1500).collect();
                assert_eq!(
                    indices, expected,
                    "{backend:?} writer {writer}, from {kept_from}"
                );
            }
        }
    }
}
