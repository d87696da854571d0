//! Memtable insert and lookup costs, with db_bench-like 16-byte keys and 1 KiB values.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use engine::memtable::Memtable;
use engine::ValueKind;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ENTRIES: u64 = 10_000;

fn keys(seed: u64) -> Vec<[u8; 16]> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..ENTRIES)
        .map(|_| {
            let mut key = [b'0'; 16];
            key[..8].copy_from_slice(&rng.gen_range(0..1_000_000u64).to_be_bytes());
            key
        })
        .collect()
}

fn inserts(c: &mut Criterion) {
    let keys = keys(1);
    let value = vec![b'x'; 1024];
    let mut group = c.benchmark_group("memtable");
    group.throughput(Throughput::Elements(ENTRIES));
    group.bench_function("insert_random_1k_values", |b| {
        b.iter_batched(
            Memtable::new,
            |memtable| {
                for (seq, key) in keys.iter().enumerate() {
                    memtable.insert(key, seq as u64 + 1, ValueKind::Put, b"", &value);
                }
                memtable
            },
            BatchSize::LargeInput,
        )
    });
    let memtable = Memtable::new();
    for (seq, key) in keys.iter().enumerate() {
        memtable.insert(key, seq as u64 + 1, ValueKind::Put, b"", &value);
    }
    let probes = self::keys(2);
    group.bench_function("get_random", |b| {
        b.iter(|| {
            probes
                .iter()
                .filter(|key| memtable.get(&key[..]).is_some())
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, inserts);
criterion_main!(benches);
