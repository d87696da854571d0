//! A replica stopped while 10 000 keys are written (N=3, W=2) gets them all through hinted
//! handoff once back, and its Merkle roots then equal the other replicas' without any
//! anti-entropy round. Real `kvnode` processes on 127.0.x.y, killed however the test ends.

mod antientropy_common;
mod common;

use std::time::Instant;

use antientropy_common::{differing_ranges, info_field, spec, wait_until, write_keys};
use cluster::launcher::LocalCluster;
use cluster::ring::{NodeId, Replication, Ring};
use common::open_store;

#[test]
fn hints_bring_a_stopped_replica_level_and_its_roots_match() {
    let directory = tempfile::tempdir().unwrap();
    // Four nodes so a fallback exists for every key; no background rounds.
    let spec = spec(directory.path(), 1, 4, 0);
    let mut cluster = LocalCluster::start(&spec).expect("four nodes start");
    let address = cluster.client_addresses();
    let stopped = cluster.nodes()[3].config.clone();
    let ring = Ring::new(stopped.ring_members(), stopped.vnodes_per_weight).unwrap();

    cluster.stop_node(3).expect("stop n4");
    const KEYS: usize = 10_000;
    let started = Instant::now();
    write_keys(&address[..3], "key", KEYS, 6);
    eprintln!(
        "{KEYS} writes at W=2 with n4 down took {:?}",
        started.elapsed()
    );
    let stored: u64 = address[..3]
        .iter()
        .map(|a| info_field(*a, "hints_stored"))
        .sum();
    assert!(stored > 0, "no hints were stored");

    cluster.restart(3).expect("restart n4");
    let delivery = wait_until("hint delivery", || {
        address.iter().all(|a| info_field(*a, "hints_pending") == 0)
    });
    let delivered: u64 = address
        .iter()
        .map(|a| info_field(*a, "hints_delivered"))
        .sum();
    eprintln!("{stored} hints stored, {delivered} delivered within {delivery:?} of the restart");
    assert_eq!(
        address
            .iter()
            .map(|a| info_field(*a, "hints_dropped"))
            .sum::<u64>(),
        0
    );
    // Hints were the only repair: no round has run anywhere.
    assert!(address
        .iter()
        .all(|a| info_field(*a, "antientropy_rounds") == 0));
    let converged = wait_until("equal roots", || differing_ranges(&address).is_empty());
    eprintln!("roots equal {converged:?} after the last hint was delivered");

    let owned: Vec<usize> = (0..KEYS)
        .filter(|index| {
            let key = format!("key{index}");
            ring.preference_list(key.as_bytes(), &Replication::Total(3))
                .unwrap()
                .contains(&NodeId::new("n4"))
        })
        .collect();
    assert_eq!(
        info_field(address[3], "antientropy_tree_keys"),
        owned.len() as u64
    );
    cluster.stop_node(3).expect("stop n4 to read its copy");
    let store = open_store(&stopped);
    for index in &owned {
        let key = format!("key{index}");
        let set = store
            .read(key.as_bytes())
            .unwrap()
            .unwrap_or_else(|| panic!("n4 lacks {key}"));
        let value = format!("v{index}");
        assert_eq!(set.versions.len(), 1, "{key}");
        assert_eq!(set.versions[0].value.as_deref(), Some(value.as_bytes()));
    }
    eprintln!("n4 holds all {} keys it replicates", owned.len());
}
