//! Anti-entropy follows a ring change: after a fourth node joins a three-node N=3 cluster,
//! every node rebuilds its trees for the new stable ring, rounds compare and repair over
//! the new ranges. Real `kvnode` processes on 127.0.x.y, every child killed however the
//! test ends.

mod antientropy_common;
mod common;

use std::collections::BTreeMap;

use antientropy_common::{
    differing_ranges, four_node_ring, info_field, roots, run_round, spec, wait_until, write_keys,
    Client, Reply,
};
use cluster::launcher::LocalCluster;
use cluster::ring::{NodeId, Replication};
use cluster::version::VectorClock;
use common::open_store;

const KEYS: usize = 1500;

/// A round's summary has no failed, skipped or paused peer.
fn assert_clean_round(summary: &[String], node: &str) {
    assert!(
        summary.len() >= 2
            && summary.iter().all(|line| {
                !line.contains("failed") && !line.contains("skipped") && !line.contains("paused")
            }),
        "{node}: {summary:?}"
    );
}

#[test]
fn after_a_join_trees_follow_the_new_ring_and_rounds_repair_over_it() {
    let directory = tempfile::tempdir().unwrap();
    // Rounds only on demand, so the test sees what one round does.
    let spec = spec(directory.path(), 1, 4, 0);
    let mut cluster = LocalCluster::start_holding_back(&spec, 1).expect("three nodes start");
    let address = cluster.client_addresses();
    let n4 = cluster.nodes()[3].config.clone();

    write_keys(&address[..3], "pre", KEYS, 2);
    let n4_client = n4.client_address.to_string();
    let n4_peer = n4.peer_address.to_string();
    let join_words = ["CLUSTER.JOIN", "n4", "dc1", &n4_client, &n4_peer];
    // n4 is not running yet: the change stops at its first phase, and rounds pause.
    let stuck = Client::connect(address[0]).command(&join_words);
    assert!(
        format!("{stuck:?}").contains("ring change stopped at version 1 (phase streaming)"),
        "{stuck:?}"
    );
    let summary = run_round(address[1]);
    assert_eq!(
        summary,
        ["paused: ring change under way (version 1)"],
        "{summary:?}"
    );
    assert_eq!(info_field(address[1], "antientropy_rounds_paused"), 1);
    assert_eq!(info_field(address[1], "antientropy_ring_version"), 0);

    cluster.start_node(3).expect("n4 starts, joining");
    // The same command resumes the join.
    let join = Client::connect(address[0]).command(&join_words);
    let Reply::Array(lines) = &join else {
        panic!("CLUSTER.JOIN: {join:?}");
    };
    assert!(
        matches!(&lines[0], Reply::Bulk(Some(line)) if line.starts_with("joined n4 ring_version 3")),
        "{join:?}"
    );

    // Every node rebuilds its trees for the stable ring (version 3) in the background.
    wait_until("every node's trees come from ring version 3", || {
        address
            .iter()
            .all(|a| info_field(*a, "antientropy_ring_version") == 3)
    });
    for a in &address[..3] {
        assert_eq!(info_field(*a, "antientropy_rebuilds"), 1);
    }
    for (index, a) in address.iter().enumerate() {
        let summary = run_round(*a);
        assert_clean_round(&summary, &format!("n{}", index + 1));
    }
    // The ranges of the four-node ring, each held by its three replicas, with equal roots.
    assert!(differing_ranges(&address).is_empty());
    let mut holders: BTreeMap<String, usize> = BTreeMap::new();
    for a in &address {
        for range in roots(*a).into_keys() {
            *holders.entry(range).or_default() += 1;
        }
    }
    assert!(holders.len() > 4, "{holders:?}");
    assert!(holders.values().all(|&count| count == 3), "{holders:?}");
    assert_eq!(info_field(address[3], "antientropy_peers_other_ring"), 0);

    // A key only n4 holds (written into its store while it is stopped), in a range n4
    // replicates in the new ring: one round from n4 pushes it to the other two replicas.
    let ring = four_node_ring(&spec);
    let n4_id = NodeId::new("n4");
    let key = (0..)
        .map(|index| format!("lonely{index}"))
        .find(|key| {
            ring.preference_list(key.as_bytes(), &Replication::Total(3))
                .unwrap()
                .contains(&n4_id)
        })
        .unwrap();
    cluster.stop_node(3).expect("stop n4");
    {
        let store = open_store(&n4);
        store
            .write_local(
                key.as_bytes(),
                &VectorClock::new(),
                Some(b"only-on-n4".to_vec()),
                "n4",
                1,
            )
            .unwrap();
        store.close().unwrap();
    }
    cluster.start_node(3).expect("restart n4");
    // Restarted, n4 builds its trees from the persisted ring.
    assert_eq!(info_field(address[3], "antientropy_ring_version"), 3);
    assert_eq!(
        differing_ranges(&address).len(),
        2,
        "the key's range on n4 vs its two peers"
    );
    let repaired_before: u64 = address[..3]
        .iter()
        .map(|a| info_field(*a, "antientropy_keys_repaired"))
        .sum();
    let summary = run_round(address[3]);
    assert_clean_round(&summary, "n4");
    eprintln!("round from n4 after the join: {summary:?}");
    let repaired_after: u64 = address[..3]
        .iter()
        .map(|a| info_field(*a, "antientropy_keys_repaired"))
        .sum();
    assert_eq!(repaired_after - repaired_before, 2, "{summary:?}");
    assert!(differing_ranges(&address).is_empty());
    assert_eq!(
        Client::connect(address[0]).command(&["GET", &key]),
        Reply::Bulk(Some("only-on-n4".into()))
    );
}
