//! What keeping Merkle trees current costs a write: the same writes to a [`LocalStore`]
//! with and without anti-entropy's write observer, per value size.
//!
//! ```text
//! cargo run --release -p cluster --example merkle_hook_cost [-- WRITES]
//! ```
//!
//! Each write is a read-modify-write of the key's sibling set (what a replica does); with
//! the observer it also digests the old and new stored bytes and updates one tree leaf to
//! the root (depth 12). The commit log is not synced per write (`periodic`, the default),
//! the case where the hook is the largest share.

use std::sync::Arc;
use std::time::Instant;

use cluster::antientropy::partition::partition;
use cluster::antientropy::trees::Trees;
use cluster::ring::{Member, NodeId, Replication, Ring};
use cluster::store::LocalStore;
use cluster::version::{VectorClock, VersionConfig};

fn run(writes: usize, value_bytes: usize, observed: bool) -> f64 {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = LocalStore::open(
        directory.path(),
        engine::Options::default(),
        VersionConfig::default(),
    )
    .expect("open the store");
    if observed {
        let members = (1..=3).map(|i| Member::new(format!("n{i}").as_str(), "dc1"));
        let ring = Ring::new(members, 256).expect("ring");
        let parts = partition(&ring, &Replication::Total(3)).expect("partition");
        let trees = Arc::new(Trees::new(&parts, &NodeId::new("n1"), 12, 0).expect("trees"));
        store.set_observer(trees).expect("observer");
    }
    let value = vec![b'x'; value_bytes];
    let context = VectorClock::new();
    let started = Instant::now();
    for index in 0..writes {
        // Half the writes overwrite an existing key (old digest present), as under load.
        let key = format!("key{}", index % (writes / 2).max(1));
        store
            .write_local(
                key.as_bytes(),
                &context,
                Some(value.clone()),
                "n1",
                index as u64,
            )
            .expect("write");
    }
    started.elapsed().as_nanos() as f64 / writes as f64
}

/// The hook alone, as the store calls it per write: two digests of a stored set of about
/// `value_bytes` and one tree update. Nanoseconds per call.
fn hook_only(calls: usize, value_bytes: usize) -> f64 {
    use cluster::store::WriteObserver;
    let members = (1..=3).map(|i| Member::new(format!("n{i}").as_str(), "dc1"));
    let ring = Ring::new(members, 256).expect("ring");
    let parts = partition(&ring, &Replication::Total(3)).expect("partition");
    let trees = Trees::new(&parts, &NodeId::new("n1"), 12, 0).expect("trees");
    let keys: Vec<String> = (0..1000).map(|i| format!("key{i}")).collect();
    let stored = vec![b'x'; value_bytes + 40];
    for key in &keys {
        trees.stored(key.as_bytes(), None, 0);
    }
    let started = Instant::now();
    for index in 0..calls {
        let key = &keys[index % keys.len()];
        let old = cluster::antientropy::digest(&stored);
        let new = cluster::antientropy::digest(&stored[1..]);
        std::hint::black_box((old, new));
        // Each key flips between digests 0 and 1, one flip per pass over the keys, so
        // every call is a real leaf-to-root update.
        let flip = ((index / keys.len()) % 2) as u64;
        trees.stored(key.as_bytes(), Some(flip), 1 - flip);
    }
    started.elapsed().as_nanos() as f64 / calls as f64
}

fn main() {
    let writes: usize = std::env::args()
        .nth(1)
        .map(|text| text.parse().expect("WRITES is a number"))
        .unwrap_or(200_000);
    println!("value_bytes,plain_ns_per_write,observed_ns_per_write,ratio,hook_only_ns");
    for value_bytes in [16, 100, 1024, 10_240] {
        let count = if value_bytes > 1024 {
            writes / 10
        } else {
            writes
        };
        // Alternate to spread machine noise over both.
        let mut plain = Vec::new();
        let mut observed = Vec::new();
        for _ in 0..3 {
            plain.push(run(count, value_bytes, false));
            observed.push(run(count, value_bytes, true));
        }
        let best = |runs: &[f64]| runs.iter().cloned().fold(f64::INFINITY, f64::min);
        let (plain, observed) = (best(&plain), best(&observed));
        let hook = (0..3)
            .map(|_| hook_only(200_000, value_bytes))
            .fold(f64::INFINITY, f64::min);
        println!(
            "{value_bytes},{plain:.0},{observed:.0},{:.3},{hook:.0}",
            observed / plain
        );
    }
}
