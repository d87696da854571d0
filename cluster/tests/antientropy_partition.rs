//! Two datacenters partitioned for a while: LOCAL_QUORUM writes keep succeeding on both
//! sides; after the heal, background anti-entropy rounds make every replica converge
//! (equal Merkle roots), and keys written on both sides resolve as configured: siblings,
//! or the last write wins. The convergence time after the heal is printed.
//! Real `kvnode` processes on 127.0.x.y, every child killed however the test ends.

mod antientropy_common;
mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use antientropy_common::{differing_ranges, info_field, spec, wait_until, Client, Reply};
use cluster::launcher::LocalCluster;
use cluster::protocol::Consistency;
use cluster::ring::Replication;
use cluster::version::ConflictPolicy;

/// Keys written on one side only, per side.
const ONE_SIDED: usize = 500;

/// Keys written on both sides during the partition.
const BOTH_SIDES: usize = 50;

/// Background rounds every this many milliseconds.
const INTERVAL_MS: u64 = 500;

fn write(address: SocketAddr, keys: impl Iterator<Item = (String, String)>) {
    let mut client = Client::connect(address);
    for (key, value) in keys {
        client.ok(&["SET", &key, &value]);
    }
}

/// The values of `key` in this node's own copy (R=1 on a replica reads locally first).
fn local_values(client: &mut Client, key: &str) -> Vec<String> {
    let Reply::Array(parts) = client.command(&["KV.GET", key, "R", "1"]) else {
        panic!("KV.GET replies with an array");
    };
    let Some(Reply::Array(values)) = parts.get(1).cloned() else {
        panic!("KV.GET's second element is the values: {parts:?}");
    };
    let mut values: Vec<String> = values
        .into_iter()
        .filter_map(|value| match value {
            Reply::Bulk(Some(text)) => Some(text),
            _ => None,
        })
        .collect();
    values.sort();
    values
}

fn partition_and_heal(policy: ConflictPolicy) {
    let directory = tempfile::tempdir().unwrap();
    let mut spec = spec(directory.path(), 2, 2, INTERVAL_MS);
    spec.replication =
        Replication::PerDatacenter(BTreeMap::from([("dc1".into(), 2), ("dc2".into(), 2)]));
    spec.default_consistency = Consistency::LocalQuorum;
    spec.base.versions.policy = policy;
    // Repair is anti-entropy's alone.
    spec.base.read_repair = false;
    let cluster = LocalCluster::start(&spec).expect("four nodes in two datacenters start");
    let address = cluster.client_addresses();

    let reply = Client::connect(address[0]).command(&["LINK.PARTITION", "dc1", "dc2"]);
    assert!(
        matches!(&reply, Reply::Simple(text) if text.starts_with("applied on 4 of 4")),
        "{reply:?}"
    );
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            write(
                address[0],
                (0..ONE_SIDED).map(|i| (format!("a{i}"), format!("a{i}"))),
            )
        });
        scope.spawn(|| {
            write(
                address[3],
                (0..ONE_SIDED).map(|i| (format!("b{i}"), format!("b{i}"))),
            )
        });
    });
    write(
        address[1],
        (0..BOTH_SIDES).map(|i| (format!("c{i}"), "from dc1".into())),
    );
    // Later on the other side, so that last-write-wins has a clear winner.
    std::thread::sleep(Duration::from_millis(50));
    write(
        address[2],
        (0..BOTH_SIDES).map(|i| (format!("c{i}"), "from dc2".into())),
    );
    eprintln!(
        "{} LOCAL_QUORUM writes succeeded on both sides of the partition in {:?}",
        2 * ONE_SIDED + 2 * BOTH_SIDES,
        started.elapsed()
    );
    // Let a few rounds fail against the other side.
    std::thread::sleep(Duration::from_millis(3 * INTERVAL_MS));
    assert!(!differing_ranges(&address).is_empty());

    let reply = Client::connect(address[0]).command(&["LINK.HEAL"]);
    assert!(matches!(&reply, Reply::Simple(_)), "{reply:?}");
    let converged = wait_until("equal roots after the heal", || {
        differing_ranges(&address).is_empty()
    });
    let repaired: Vec<u64> = address
        .iter()
        .map(|a| info_field(*a, "antientropy_keys_repaired"))
        .collect();
    let sent: u64 = address
        .iter()
        .map(|a| info_field(*a, "antientropy_bytes_sent"))
        .sum();
    eprintln!(
        "{policy:?}: converged {converged:?} after the heal (rounds every {INTERVAL_MS} ms); \
         keys repaired per node {repaired:?}, {sent} anti-entropy bytes sent in all"
    );
    let expected = (ONE_SIDED * 2 + BOTH_SIDES) as u64;
    for node in address.iter() {
        assert_eq!(info_field(*node, "antientropy_tree_keys"), expected);
    }
    for node in address.iter() {
        let mut client = Client::connect(*node);
        for index in (0..ONE_SIDED).step_by(25) {
            for side in ["a", "b"] {
                let key = format!("{side}{index}");
                assert_eq!(local_values(&mut client, &key), vec![key.clone()], "{node}");
            }
        }
        for index in 0..BOTH_SIDES {
            let key = format!("c{index}");
            let expected = match policy {
                ConflictPolicy::Siblings => vec!["from dc1".to_string(), "from dc2".to_string()],
                ConflictPolicy::LastWriteWins => vec!["from dc2".to_string()],
            };
            assert_eq!(local_values(&mut client, &key), expected, "{key} on {node}");
        }
    }
}

#[test]
fn after_a_partition_heals_replicas_converge_with_siblings() {
    partition_and_heal(ConflictPolicy::Siblings);
}

#[test]
fn after_a_partition_heals_replicas_converge_by_last_write_wins() {
    partition_and_heal(ConflictPolicy::LastWriteWins);
}
