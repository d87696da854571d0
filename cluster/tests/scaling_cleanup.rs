//! `CLUSTER.CLEANUP`: after a fourth node joins a three-node N=3 cluster, each old node
//! drops exactly the keys it no longer replicates, keeps every key written while it cleans,
//! and the cluster still serves every key at ALL. Refused while the ring is changing. Real
//! `kvnode` processes on 127.0.x.y, every child killed however the test ends.

mod antientropy_common;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use antientropy_common::{four_node_ring, info_field, spec, write_keys, Client, Reply};
use cluster::launcher::LocalCluster;
use cluster::ring::{NodeId, Replication};
use common::open_store;

const KEYS: usize = 1500;

/// `CLUSTER.CLEANUP [COMPACT]` on `address`: the reply's `name value` lines.
fn cleanup(address: SocketAddr, compact: bool) -> BTreeMap<String, u64> {
    let mut words = vec!["CLUSTER.CLEANUP"];
    if compact {
        words.push("COMPACT");
    }
    let lines = Client::connect(address).command(&words).lines();
    assert!(lines[0].starts_with("cleaned ring_version "), "{lines:?}");
    lines
        .iter()
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').expect("name value");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

#[test]
fn after_a_join_cleanup_drops_exactly_the_keys_each_node_lost() {
    let directory = tempfile::tempdir().unwrap();
    let spec = spec(directory.path(), 1, 4, 0);
    let mut cluster = LocalCluster::start_holding_back(&spec, 1).expect("three nodes start");
    let address = cluster.client_addresses();
    let n4 = cluster.nodes()[3].config.clone();
    write_keys(&address[..3], "pre", KEYS, 2);

    // Three nodes, three replicas: every node replicates every key.
    let before = cleanup(address[0], false);
    assert_eq!(before["cleaned ring_version"], 0, "{before:?}");
    assert_eq!(before["keys_scanned"], KEYS as u64, "{before:?}");
    assert_eq!(before["keys_removed"], 0, "{before:?}");

    // n4 is not running yet: the join stops at its streaming phase, and cleanup refuses.
    let n4_client = n4.client_address.to_string();
    let n4_peer = n4.peer_address.to_string();
    let join_words = ["CLUSTER.JOIN", "n4", "dc1", &n4_client, &n4_peer];
    let stuck = Client::connect(address[0]).command(&join_words);
    assert!(
        format!("{stuck:?}").contains("phase streaming"),
        "{stuck:?}"
    );
    let refused = Client::connect(address[1]).command(&["CLUSTER.CLEANUP"]);
    assert!(
        matches!(&refused, Reply::Error(text)
            if text.contains("the ring is changing (version 1, phase streaming)")),
        "{refused:?}"
    );
    cluster.start_node(3).expect("n4 starts, joining");
    let join = Client::connect(address[0]).command(&join_words).lines();
    assert!(join[0].starts_with("joined n4 ring_version 3"), "{join:?}");

    // The four-node ring: who replicates what.
    let ring = four_node_ring(&spec);
    let owners = |key: &str| -> Vec<NodeId> {
        ring.preference_list(key.as_bytes(), &Replication::Total(3))
            .unwrap()
    };
    let pre: Vec<String> = (0..KEYS).map(|index| format!("pre{index}")).collect();

    // Each old node cleans while two clients write new keys (through n1 and n2).
    let mut cleaned = Vec::new();
    let during_keys = 600;
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| write_keys(&address, "during", during_keys, 2));
        for (index, a) in address[..3].iter().enumerate() {
            let id = NodeId::new(format!("n{}", index + 1));
            let expected = pre.iter().filter(|key| !owners(key).contains(&id)).count();
            let figures = cleanup(*a, false);
            assert_eq!(figures["cleaned ring_version"], 3, "{figures:?}");
            assert_eq!(
                figures["keys_removed"], expected as u64,
                "{id}: {figures:?}"
            );
            assert!(figures["keys_scanned"] >= KEYS as u64, "{id}: {figures:?}");
            assert!(
                figures["bytes_removed"] > expected as u64 * 5,
                "{id}: {figures:?}"
            );
            cleaned.push(figures);
        }
        writer.join().unwrap();
    });
    eprintln!("cleanups on n1-n3: {cleaned:?}");
    // A node loses about a quarter of the keys to n4.
    let removed: u64 = cleaned.iter().map(|figures| figures["keys_removed"]).sum();
    assert!(
        removed > KEYS as u64 / 2 && removed < KEYS as u64 * 3 / 2,
        "{removed}"
    );
    for (index, (a, figures)) in address[..3].iter().zip(&cleaned).enumerate() {
        // n1 also ran the one before the join.
        let runs = if index == 0 { 2 } else { 1 };
        assert_eq!(info_field(*a, "cleanups"), runs);
        assert_eq!(
            info_field(*a, "cleanup_keys_removed"),
            figures["keys_removed"]
        );
    }

    // Nothing is lost for the cluster: every key reads at ALL, through a new and an old node.
    for a in [address[3], address[0]] {
        let mut client = Client::connect(a);
        client.ok(&["CONSISTENCY", "ALL"]);
        for index in 0..KEYS {
            let reply = client.command(&["GET", &format!("pre{index}")]);
            assert_eq!(reply, Reply::Bulk(Some(format!("v{index}"))), "pre{index}");
        }
        for index in 0..during_keys {
            let reply = client.command(&["GET", &format!("during{index}")]);
            assert_eq!(
                reply,
                Reply::Bulk(Some(format!("v{index}"))),
                "during{index}"
            );
        }
    }

    // A second cleanup has nothing left to drop; COMPACT merges the tables after it.
    let again = cleanup(address[1], true);
    assert_eq!(again["keys_removed"], 0, "{again:?}");
    assert!(again.contains_key("compact_ms"), "{again:?}");

    // Each node's store now holds exactly the keys it replicates.
    let nodes: Vec<_> = cluster
        .nodes()
        .iter()
        .map(|node| node.config.clone())
        .collect();
    cluster.stop();
    let all: Vec<String> = pre
        .iter()
        .cloned()
        .chain((0..during_keys).map(|index| format!("during{index}")))
        .collect();
    for config in &nodes {
        let id = NodeId::new(&config.node_id);
        let store = open_store(config);
        let held: BTreeSet<String> = store
            .scan(b"", None, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(key, _)| String::from_utf8(key).unwrap())
            .collect();
        let owned: BTreeSet<String> = all
            .iter()
            .filter(|key| owners(key).contains(&id))
            .cloned()
            .collect();
        assert_eq!(held, owned, "{id}");
        store.close().unwrap();
    }
}
