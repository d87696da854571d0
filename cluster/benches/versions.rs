//! The version work of a SET on the coordinator and on a replica, without the store or the
//! network: decoding the stored sibling set, minting the new version over it and encoding
//! the result (a coordinator's read-modify-write), and folding a replicated version into a
//! stored set (a replica's). Sets of one and of three versions (a key written concurrently
//! through three coordinators), 1 KiB values, three-entry clocks at most.
//!
//! `cargo bench -p cluster --bench versions`

use cluster::version::{SiblingSet, VectorClock, VersionConfig};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const VALUE: [u8; 1024] = [b'x'; 1024];

/// A stored set written once through `n1`, and one holding three concurrent versions
/// written through n1, n2 and n3.
fn stored_sets(config: &VersionConfig) -> [(String, Vec<u8>); 2] {
    let mut one = SiblingSet::default();
    one.write_with_context_in_place(&VectorClock::new(), "n1", 1, Some(VALUE.to_vec()), config)
        .unwrap();
    let mut three = SiblingSet::default();
    for (index, node) in ["n1", "n2", "n3"].iter().enumerate() {
        // A blind write each: concurrent with the others, so all three stay.
        let mut own = SiblingSet::default();
        own.write_with_context_in_place(
            &VectorClock::new(),
            node,
            index as u64 + 1,
            Some(VALUE.to_vec()),
            config,
        )
        .unwrap();
        three.merge(&own, config).unwrap();
    }
    assert_eq!(three.versions.len(), 3);
    [
        ("one_version".to_string(), one.encode()),
        ("three_versions".to_string(), three.encode()),
    ]
}

fn coordinator(c: &mut Criterion) {
    let config = VersionConfig::default();
    let mut group = c.benchmark_group("coordinator_set");
    for (name, stored) in stored_sets(&config) {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut set = SiblingSet::decode(black_box(&stored)).unwrap();
                let context = set.context();
                set.write_with_context_in_place(&context, "n1", 10, Some(VALUE.to_vec()), &config)
                    .unwrap();
                black_box(set.encode())
            })
        });
    }
    group.finish();
}

fn replica(c: &mut Criterion) {
    let config = VersionConfig::default();
    let mut group = c.benchmark_group("replica_put");
    for (name, stored) in stored_sets(&config) {
        // What the coordinator sends: its new version alone, descending the stored ones.
        let mut minted = SiblingSet::decode(&stored).unwrap();
        let context = minted.context();
        minted
            .write_with_context_in_place(&context, "n1", 10, Some(VALUE.to_vec()), &config)
            .unwrap();
        let incoming = minted.encode();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut set = SiblingSet::decode(black_box(&stored)).unwrap();
                let incoming = SiblingSet::decode(black_box(&incoming)).unwrap();
                set.merge(&incoming, &config).unwrap();
                black_box(set.encode())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, coordinator, replica);
criterion_main!(benches);
