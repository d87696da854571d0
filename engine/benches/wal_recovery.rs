//! What recovery costs with recycled commit-log segments (`wal.recycle_segments`):
//!
//! - `decode_stale_tail`: decoding a segment whose new use holds nothing but a header, over
//!   64 MiB of its earlier use's records (the shape a crash leaves in a recycled file): the
//!   decoder tries every offset for a record of the segment before calling the rest stale.
//!   Once with varied payloads, once with all-zero ones (the zero shortcut's case).
//! - `open_sealed_recycled`: `Wal::open` of a log whose last segment is a sealed recycled
//!   256 MiB file holding one record, against reading that file whole and decoding it (what
//!   recovery did before it mapped segments).
//!
//! `cargo bench -p engine --bench wal_recovery`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use engine::wal::format::{decode_segment, record_header, segment_header, SegmentEnd};
use engine::wal::Wal;
use engine::{SyncPolicy, WalOptions};
use std::path::{Path, PathBuf};

const STALE_BYTES: usize = 64 << 20;
const RECYCLED_BYTES: usize = 256 << 20;

/// Segment 6's header over segment 5's records of `payload`, `STALE_BYTES` in all.
fn recycled_segment(payload: &[u8]) -> Vec<u8> {
    let mut bytes = segment_header(5).to_vec();
    let mut seq = 1;
    while bytes.len() < STALE_BYTES {
        bytes.extend_from_slice(&record_header(5, seq, payload));
        bytes.extend_from_slice(payload);
        seq += 1;
    }
    let header = segment_header(6);
    bytes[..header.len()].copy_from_slice(&header);
    bytes
}

fn decode_stale_tail(c: &mut Criterion) {
    let varied: Vec<u8> = (0..1100u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut group = c.benchmark_group("wal_recovery");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(STALE_BYTES as u64));
    for (name, payload) in [("varied", varied), ("zeros", vec![0u8; 1100])] {
        let bytes = recycled_segment(&payload);
        group.bench_function(format!("decode_stale_tail_{name}"), |b| {
            b.iter(|| {
                let decoded = decode_segment(Path::new("bench.log"), &bytes).unwrap();
                assert!(matches!(
                    decoded.end,
                    SegmentEnd::Damaged { stale: true, .. }
                ));
            })
        });
    }
    group.finish();
}

fn options() -> WalOptions {
    WalOptions {
        sync: SyncPolicy::None,
        recycle_segments: 1,
        ..WalOptions::default()
    }
}

/// A log directory whose last segment is a sealed recycled file of about
/// `RECYCLED_BYTES` holding one record; returns the directory and that segment's path.
fn sealed_recycled_log() -> (tempfile::TempDir, PathBuf) {
    let directory = tempfile::tempdir().unwrap();
    let (wal, _, _) = Wal::open(directory.path(), &options()).unwrap();
    let payload = vec![7u8; 1 << 20];
    for seq in 1..=(RECYCLED_BYTES >> 20) as u64 {
        wal.append(seq, &payload).unwrap();
    }
    wal.rotate().unwrap();
    wal.remove_segments_before(wal.current_segment()).unwrap();
    wal.rotate().unwrap();
    wal.append(u64::MAX - 1, b"one record").unwrap();
    let last = directory
        .path()
        .join(format!("{:06}.log", wal.current_segment()));
    wal.close().unwrap();
    (directory, last)
}

fn open_sealed_recycled(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_recovery");
    group.sample_size(10);
    group.bench_function("open_sealed_recycled_mapped", |b| {
        b.iter_batched(
            sealed_recycled_log,
            |(directory, _)| {
                let (wal, records, _) = Wal::open(directory.path(), &options()).unwrap();
                assert_eq!(records.len(), 1);
                wal.close().unwrap();
                directory
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("open_sealed_recycled_read_whole", |b| {
        b.iter_batched(
            sealed_recycled_log,
            |(directory, last)| {
                let bytes = std::fs::read(&last).unwrap();
                let decoded = decode_segment(&last, &bytes).unwrap();
                assert!(matches!(decoded.end, SegmentEnd::Sealed));
                assert_eq!(decoded.records.len(), 1);
                directory
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, decode_stale_tail, open_sealed_recycled);
criterion_main!(benches);
