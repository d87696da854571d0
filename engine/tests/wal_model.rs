//! Model test: random appends, rotations, segment removals (with retired segments recycled
//! under some seeds), reopenings and torn tails, with the recovered log compared against a
//! plain list of what should be there. The seed is
//! printed on failure; `WAL_MODEL_SEED=<n>` replays one.

use engine::wal::format::{RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use engine::wal::{LogRecord, Wal};
use engine::{Error, IoBackend, SyncPolicy, WalOptions};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

const OPERATIONS_PER_SEED: usize = 300;
const PAYLOAD_BYTES_MAX: usize = 2000;

/// A record the model expects, with the segment it went to.
struct Expected {
    segment: u64,
    seq: u64,
    payload: Vec<u8>,
}

fn run_seed(seed: u64, io: IoBackend) {
    let mut random = SmallRng::seed_from_u64(seed);
    let directory = tempfile::tempdir().unwrap();
    let options = WalOptions {
        io,
        sync: if seed % 2 == 0 {
            SyncPolicy::None
        } else {
            SyncPolicy::Always
        },
        recycle_segments: (seed % 3) as usize,
        ..WalOptions::default()
    };
    let (mut wal, records, _) = Wal::open(directory.path(), &options).unwrap();
    assert!(records.is_empty());
    let mut expected: Vec<Expected> = Vec::new();
    let mut next_seq = 1u64;
    for operation in 0..OPERATIONS_PER_SEED {
        let context = format!("seed {seed}, {io:?}, operation {operation}");
        match random.gen_range(0..100) {
            0..=69 => {
                let length = random.gen_range(0..=PAYLOAD_BYTES_MAX);
                let payload: Vec<u8> = (0..length).map(|_| random.gen()).collect();
                wal.append(next_seq, &payload).unwrap();
                expected.push(Expected {
                    segment: wal.current_segment(),
                    seq: next_seq,
                    payload,
                });
                next_seq += 1;
            }
            70..=79 => {
                let before = wal.current_segment();
                assert_eq!(wal.rotate().unwrap(), before + 1, "{context}");
            }
            80..=84 => {
                let limit = wal
                    .current_segment()
                    .saturating_sub(random.gen_range(0..3u64));
                wal.remove_segments_before(limit).unwrap();
                expected.retain(|record| record.segment >= limit);
            }
            85..=94 => {
                wal.close().unwrap();
                wal = reopen(directory.path(), &options, &expected, 0, &context);
            }
            _ => {
                wal.close().unwrap();
                let torn = tear_tail(directory.path(), &wal, &mut expected, &mut random);
                wal = reopen(directory.path(), &options, &expected, torn, &context);
            }
        }
    }
    wal.close().unwrap();
}

fn reopen(
    directory: &Path,
    options: &WalOptions,
    expected: &[Expected],
    torn_bytes: u64,
    context: &str,
) -> Wal {
    let (wal, records, report) = Wal::open(directory, options).unwrap();
    let want: Vec<LogRecord> = expected
        .iter()
        .map(|record| LogRecord {
            seq: record.seq,
            payload: record.payload.clone(),
        })
        .collect();
    assert_eq!(records.len(), want.len(), "{context}");
    assert!(records == want, "{context}: recovered records differ");
    assert_eq!(
        report.torn_tail_bytes_dropped + report.stale_bytes_dropped,
        torn_bytes,
        "{context}"
    );
    assert!(report.salvaged.is_empty(), "{context}");
    wal
}

/// Tears the closed log's last segment inside its last record (if it has one), as a crash
/// mid-append would, and drops that record from the model. Returns the bytes recovery must
/// drop. Two shapes: the file ends inside the record (a new file extended by the append),
/// or the rest of the file is bytes that are no record of this segment (a recycled file,
/// whose earlier use's bytes follow an append that did not finish).
fn tear_tail(
    directory: &Path,
    wal: &Wal,
    expected: &mut Vec<Expected>,
    random: &mut SmallRng,
) -> u64 {
    let segment = wal.current_segment();
    let path = directory.join(format!("{segment:06}.log"));
    let in_segment = expected
        .iter()
        .filter(|record| record.segment == segment)
        .count();
    if in_segment == 0 {
        return 0;
    }
    let record_bytes = |record: &Expected| (RECORD_HEADER_BYTES + record.payload.len()) as u64;
    let kept: u64 = expected
        .iter()
        .filter(|record| record.segment == segment)
        .take(in_segment - 1)
        .map(record_bytes)
        .sum::<u64>()
        + SEGMENT_HEADER_BYTES as u64;
    let last = expected.pop().unwrap();
    let length = kept + random.gen_range(0..record_bytes(&last));
    let mut file = OpenOptions::new().write(true).open(&path).unwrap();
    let full = file.metadata().unwrap().len();
    // Sealed by close: the end marker follows the last record, and a recycled file may
    // hold more after it.
    let sealed = kept + record_bytes(&last) + RECORD_HEADER_BYTES as u64;
    assert!(full >= sealed, "{full} < {sealed}");
    if random.gen_bool(0.5) {
        file.set_len(length).unwrap();
        return length - kept;
    }
    let foreign: Vec<u8> = (length..full)
        .map(|_| random.gen_range(1..=255u8))
        .collect();
    file.seek(SeekFrom::Start(length)).unwrap();
    file.write_all(&foreign).unwrap();
    full - kept
}

#[test]
fn random_operations_match_the_model() {
    let seeds: Vec<u64> = match std::env::var("WAL_MODEL_SEED") {
        Ok(seed) => vec![seed.parse().unwrap()],
        Err(_) => vec![1, 2, 3, 4],
    };
    let uring = {
        let probe = tempfile::tempdir().unwrap();
        let options = WalOptions {
            io: IoBackend::Uring,
            ..WalOptions::default()
        };
        match Wal::open(probe.path(), &options) {
            Ok(_) => true,
            Err(Error::BackendUnavailable { detail, .. }) => {
                eprintln!("NOTICE: skipping the io_uring backend: {detail}");
                false
            }
            Err(error) => panic!("{error}"),
        }
    };
    for seed in seeds {
        eprintln!("wal model: seed {seed}");
        run_seed(seed, IoBackend::Std);
        if uring {
            run_seed(seed, IoBackend::Uring);
        }
    }
}
