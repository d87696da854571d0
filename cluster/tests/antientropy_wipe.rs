//! Anti-entropy restores a replica whose data directory was wiped: real `kvnode`
//! processes on 127.0.x.y, every child killed however the test ends.

mod antientropy_common;
mod common;

use std::time::Instant;

use antientropy_common::{differing_ranges, info_field, roots, run_round, spec, write_keys};
use cluster::launcher::LocalCluster;
use common::open_store;

#[test]
fn a_wiped_replica_gets_every_key_back_from_anti_entropy() {
    let directory = tempfile::tempdir().unwrap();
    // Rounds only on demand, so the test sees what one round does.
    let spec = spec(directory.path(), 1, 3, 0);
    let mut cluster = LocalCluster::start(&spec).expect("three nodes start");
    let address = cluster.client_addresses();
    let wiped = cluster.nodes()[2].config.clone();

    const KEYS: usize = 3000;
    write_keys(&address[..2], "key", KEYS, 4);
    // Every write reached all three replicas (W=2 acknowledged, the third in the background).
    antientropy_common::wait_until("all replicas hold every key", || {
        address
            .iter()
            .all(|a| info_field(*a, "antientropy_tree_keys") == KEYS as u64)
    });
    assert!(differing_ranges(&address).is_empty());
    let before = roots(address[0]);
    assert_eq!(before.len(), 1, "N=3 of 3 nodes is one range: {before:?}");

    cluster.stop_node(2).expect("stop n3");
    std::fs::remove_dir_all(&wiped.data_dir).expect("wipe n3's data directory");
    cluster
        .restart(2)
        .expect("restart n3 on an empty directory");
    assert_eq!(info_field(address[2], "antientropy_tree_keys"), 0);
    assert!(!differing_ranges(&address).is_empty());

    let started = Instant::now();
    let summary = run_round(address[2]);
    let took = started.elapsed();
    eprintln!("one round from the wiped node took {took:?}:");
    for line in &summary {
        eprintln!("  {line}");
    }
    let repaired = info_field(address[2], "antientropy_keys_repaired");
    let sent = info_field(address[2], "antientropy_bytes_sent");
    let received = info_field(address[2], "antientropy_bytes_received");
    eprintln!("n3 repaired {repaired} keys; sent {sent} bytes, received {received} bytes");
    assert_eq!(repaired, KEYS as u64, "{summary:?}");
    assert_eq!(info_field(address[2], "antientropy_tree_keys"), KEYS as u64);
    assert!(differing_ranges(&address).is_empty(), "{summary:?}");
    assert_eq!(roots(address[2]), before);
    // A second round finds nothing to do: equal roots, no keys moved.
    let summary = run_round(address[2]);
    assert_eq!(
        info_field(address[2], "antientropy_keys_repaired"),
        KEYS as u64
    );
    assert!(
        summary
            .iter()
            .all(|line| !line.contains("ranges_differing 1")),
        "{summary:?}"
    );

    cluster.stop_node(2).expect("stop n3 to read its copy");
    let store = open_store(&wiped);
    for index in 0..KEYS {
        let key = format!("key{index}");
        let set = store
            .read(key.as_bytes())
            .unwrap()
            .unwrap_or_else(|| panic!("n3 lacks {key} after anti-entropy"));
        assert_eq!(set.versions.len(), 1, "{key}");
        let value = format!("v{index}");
        assert_eq!(set.versions[0].value.as_deref(), Some(value.as_bytes()));
    }
}

#[test]
fn with_many_ranges_a_wiped_replica_is_restored_from_each_range_s_replicas() {
    let directory = tempfile::tempdir().unwrap();
    // Five nodes, N=3: the ring splits into many ranges, each shared with other peers.
    let spec = spec(directory.path(), 1, 5, 0);
    let mut cluster = LocalCluster::start(&spec).expect("five nodes start");
    let address = cluster.client_addresses();
    let wiped = cluster.nodes()[4].config.clone();
    const KEYS: usize = 2000;
    write_keys(&address[..4], "key", KEYS, 4);
    antientropy_common::wait_until("equal roots after the writes", || {
        differing_ranges(&address).is_empty()
    });
    let held = info_field(address[4], "antientropy_tree_keys");
    let ranges = info_field(address[4], "antientropy_ranges");
    assert!(ranges > 5, "{ranges} ranges");
    assert!(held > 0 && held < KEYS as u64, "n5 holds {held} keys");

    cluster.stop_node(4).expect("stop n5");
    std::fs::remove_dir_all(&wiped.data_dir).expect("wipe n5's data directory");
    cluster.restart(4).expect("restart n5");
    let summary = run_round(address[4]);
    eprintln!("{ranges} ranges on n5; one round:");
    for line in &summary {
        eprintln!("  {line}");
    }
    assert_eq!(info_field(address[4], "antientropy_keys_repaired"), held);
    assert_eq!(info_field(address[4], "antientropy_tree_keys"), held);
    assert!(differing_ranges(&address).is_empty(), "{summary:?}");
}
