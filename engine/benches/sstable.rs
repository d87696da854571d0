//! Micro-benchmarks of the SSTable hot paths: block encoding and decoding, Bloom probes.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use engine::sstable::block::{Block, BlockBuilder};
use engine::sstable::bloom::{BloomBuilder, BloomFilter};
use engine::sstable::format::{read_data_block, BlockCompressor, BlockHandle};
use engine::{Compression, ValueKind};
use std::path::Path;

/// Entries shaped like the engine's: "user" keys with a counter, 100-byte values.
fn block_entries() -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..36u32)
        .map(|number| {
            let key = format!("user{:012}", number * 7919).into_bytes();
            let value = format!("value-{number:04}-").repeat(10).into_bytes()[..100].to_vec();
            (key, value)
        })
        .collect()
}

fn encode_raw_block(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut builder = BlockBuilder::new(16);
    for (seq, (key, value)) in entries.iter().enumerate() {
        builder.add(key, seq as u64, ValueKind::Put, b"", value);
    }
    builder.finish().to_vec()
}

fn bench_block(criterion: &mut Criterion) {
    let entries = block_entries();
    let raw = encode_raw_block(&entries);
    let mut group = criterion.benchmark_group("block");
    group.throughput(Throughput::Bytes(raw.len() as u64));
    group.bench_function("encode", |bencher| {
        let mut builder = BlockBuilder::new(16);
        bencher.iter(|| {
            builder.reset();
            for (seq, (key, value)) in entries.iter().enumerate() {
                builder.add(key, seq as u64, ValueKind::Put, b"", value);
            }
            black_box(builder.finish().len())
        })
    });
    for (name, compression) in [
        ("none", Compression::None),
        ("zstd", Compression::Zstd { level: 1 }),
    ] {
        let mut stored = Vec::new();
        let size = BlockCompressor::new(compression)
            .write_block(&raw, &mut stored)
            .expect("compresses");
        let handle = BlockHandle {
            offset: 0,
            size: size as u64,
        };
        group.bench_function(format!("decode_{name}"), |bencher| {
            bencher.iter(|| {
                let block = read_data_block(black_box(&stored), handle, Path::new("bench"))
                    .expect("decodes");
                black_box(block.data().len())
            })
        });
    }
    group.bench_function("decode_contents_only", |bencher| {
        bencher.iter(|| black_box(Block::decode(raw.clone()).expect("decodes").data().len()))
    });
    group.finish();
}

fn bench_bloom(criterion: &mut Criterion) {
    let key_count = 1_000_000u32;
    let mut builder = BloomBuilder::new(10, key_count as usize);
    let key = |number: u32| format!("user{number:012}").into_bytes();
    for number in 0..key_count {
        builder.add_key(&key(number));
    }
    let contents = builder.finish();
    let filter = BloomFilter::decode(&contents)
        .expect("decodes")
        .expect("enabled");
    let present: Vec<Vec<u8>> = (0..1024).map(|number| key(number * 977)).collect();
    let absent: Vec<Vec<u8>> = (0..1024)
        .map(|number| key(key_count + number * 977))
        .collect();
    let mut group = criterion.benchmark_group("bloom");
    group.throughput(Throughput::Elements(1));
    for (name, keys) in [("probe_hit", &present), ("probe_miss", &absent)] {
        group.bench_function(name, |bencher| {
            let mut position = 0;
            bencher.iter(|| {
                position = (position + 1) & 1023;
                black_box(filter.may_contain(black_box(&keys[position])))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_block, bench_bloom);
criterion_main!(benches);
