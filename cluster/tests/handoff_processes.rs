//! Hinted handoff and read repair with real `kvnode` processes on 127.0.x.y (launcher
//! [`LocalCluster`], every child killed however the test ends).
//!
//! A node's local copy is checked by stopping it and opening its data directory with
//! [`LocalStore`] in the test: that reads exactly what the node stored, without a
//! coordinator asking other replicas.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cluster::config::NodeConfig;
use cluster::handoff::HandoffMode;
use cluster::launcher::{ClusterSpec, LocalCluster};
use cluster::ring::{NodeId, Replication, Ring};
use cluster::store::LocalStore;
// Client replies are bounded by common::REPLY_TIMEOUT (10 s).
use common::{command, gets, hinted_spec, info_number, open_store, wait_until_within, Client};

/// Bound on waiting for background work (hint delivery, read repair).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

/// An INFO field of the node at `address`, as a number.
fn info_field(address: SocketAddr, field: &str) -> u64 {
    info_number(&command(address, &["INFO", "repair"]), field)
}

fn spec(directory: &std::path::Path, nodes: usize, mode: HandoffMode) -> ClusterSpec {
    hinted_spec(directory, 1, nodes, mode)
}

fn ring_of(config: &NodeConfig) -> Ring {
    Ring::new(config.ring_members(), config.vnodes_per_weight).unwrap()
}

/// A key whose replicas are exactly `wanted` (in any order).
fn key_replicated_on(ring: &Ring, wanted: &[&str]) -> String {
    (0..100_000)
        .map(|index| format!("probe{index}"))
        .find(|key| {
            let list = ring
                .preference_list(key.as_bytes(), &Replication::Total(3))
                .unwrap();
            wanted.iter().all(|node| list.contains(&NodeId::new(*node)))
        })
        .expect("some key has those replicas")
}

fn wait_until(what: &str, done: impl FnMut() -> bool) {
    wait_until_within(what, SETTLE_TIMEOUT, Duration::from_millis(200), done);
}

#[test]
fn sloppy_writes_while_a_replica_is_down_reach_it_through_hints() {
    let directory = tempfile::tempdir().unwrap();
    let spec = spec(directory.path(), 4, HandoffMode::Sloppy);
    let mut cluster = LocalCluster::start(&spec).expect("four nodes start");
    let address = cluster.client_addresses();
    let configs: Vec<NodeConfig> = cluster.nodes().iter().map(|n| n.config.clone()).collect();
    let ring = ring_of(&configs[0]);

    cluster.stop_node(3).expect("stop n4");
    const KEYS: usize = 2000;
    const WRITERS: usize = 4;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let address = address[writer % 3];
            scope.spawn(move || {
                let mut client = Client::connect(address);
                let indices: Vec<usize> = (writer..KEYS).step_by(WRITERS).collect();
                if writer % 2 == 0 {
                    for index in indices {
                        let key = format!("key{index}");
                        let value = format!("value{index}");
                        assert_eq!(client.command(&["SET", &key, &value]), "+OK", "{key}");
                    }
                    return;
                }
                // The others pipeline their SETs, 25 at a time: each pipeline is written as a
                // batch (one PutMany per replica), its keys for n4 handed off with hints.
                for chunk in indices.chunks(25) {
                    let pipeline: Vec<Vec<String>> = chunk
                        .iter()
                        .map(|index| {
                            vec![
                                "SET".to_string(),
                                format!("key{index}"),
                                format!("value{index}"),
                            ]
                        })
                        .collect();
                    let replies = client.pipeline(&pipeline);
                    assert!(replies.iter().all(|reply| reply == "+OK"), "{replies:?}");
                }
            });
        }
    });
    eprintln!("{KEYS} writes with n4 down took {:?}", started.elapsed());
    let mut client = Client::connect(address[0]);
    // Two of a key's three replicas down: sloppy mode still takes W=2 (n1 and a fallback).
    let both_down = key_replicated_on(&ring, &["n1", "n3", "n4"]);
    cluster.stop_node(2).expect("stop n3");
    assert_eq!(client.command(&["SET", &both_down, "hinted"]), "+OK");
    let stored: u64 = address
        .iter()
        .take(2)
        .map(|a| info_field(*a, "hints_stored"))
        .sum();
    assert!(stored > 0, "hints were stored");

    cluster.restart(2).expect("restart n3");
    cluster.restart(3).expect("restart n4");
    let started = Instant::now();
    wait_until("hint delivery", || {
        address.iter().all(|a| info_field(*a, "hints_pending") == 0)
    });
    eprintln!(
        "hints delivered within {:?} of the restarts",
        started.elapsed()
    );
    let delivered: u64 = address
        .iter()
        .map(|a| info_field(*a, "hints_delivered"))
        .sum();
    let dropped: u64 = address
        .iter()
        .map(|a| info_field(*a, "hints_dropped"))
        .sum();
    assert_eq!(dropped, 0);
    // Each delivery pass that did something logs one line.
    let logged = cluster.nodes().iter().any(|node| {
        std::fs::read_to_string(&node.log_path)
            .unwrap_or_default()
            .contains("hint delivery: ")
    });
    assert!(logged, "no node logged a hint delivery");

    cluster.stop_node(3).expect("stop n4 to read its copy");
    cluster.stop_node(2).expect("stop n3 to read its copy");
    let n4 = open_store(&configs[3]);
    let mut owned = 0;
    for index in 0..KEYS {
        let key = format!("key{index}");
        let list = ring
            .preference_list(key.as_bytes(), &Replication::Total(3))
            .unwrap();
        if !list.contains(&NodeId::new("n4")) {
            continue;
        }
        owned += 1;
        let set = n4
            .read(key.as_bytes())
            .unwrap()
            .unwrap_or_else(|| panic!("n4 lacks {key} after handoff"));
        let value = format!("value{index}");
        assert_eq!(set.versions.len(), 1, "{key}");
        assert_eq!(set.versions[0].value.as_deref(), Some(value.as_bytes()));
    }
    assert!(owned > KEYS / 2, "n4 is a replica of {owned} keys");
    assert!(
        delivered as usize >= owned,
        "{delivered} delivered, n4 owns {owned}"
    );
    let n3 = open_store(&configs[2]);
    for store in [&n3, &n4] {
        let set = store
            .read(both_down.as_bytes())
            .unwrap()
            .expect("hinted key");
        assert_eq!(set.versions[0].value.as_deref(), Some(&b"hinted"[..]));
    }
}

#[test]
fn strict_mode_refuses_a_write_with_two_replicas_down() {
    let directory = tempfile::tempdir().unwrap();
    let spec = spec(directory.path(), 4, HandoffMode::Strict);
    let mut cluster = LocalCluster::start(&spec).expect("four nodes start");
    let address = cluster.client_addresses();
    let ring = ring_of(&cluster.nodes()[0].config);
    let key = key_replicated_on(&ring, &["n1", "n3", "n4"]);
    cluster.stop_node(2).expect("stop n3");
    cluster.stop_node(3).expect("stop n4");
    let reply = Client::connect(address[0]).command(&["SET", &key, "v"]);
    assert!(
        reply.starts_with("-ERR quorum not reached: needed 2 write acknowledgements, got 1"),
        "{reply}"
    );
    assert_eq!(info_field(address[1], "hints_stored"), 0);
    assert_eq!(info_field(address[0], "hinted_writes"), 0);
}

#[test]
fn reads_repair_a_replica_that_missed_writes_whether_or_not_it_coordinates() {
    let directory = tempfile::tempdir().unwrap();
    let spec = spec(directory.path(), 3, HandoffMode::Strict);
    let mut cluster = LocalCluster::start(&spec).expect("three nodes start");
    let address = cluster.client_addresses();
    let configs: Vec<NodeConfig> = cluster.nodes().iter().map(|n| n.config.clone()).collect();

    const KEYS: usize = 200;
    const HALF: usize = KEYS / 2;
    cluster.stop_node(2).expect("stop n3");
    let mut client = Client::connect(address[0]);
    for index in 0..KEYS {
        let key = format!("key{index}");
        assert_eq!(client.command(&["SET", &key, &format!("v{index}")]), "+OK");
    }
    // The transport keeps a message for a peer until `request_timeout_ms` past due (it
    // retries the connection meanwhile): wait that out so n3 really misses the writes.
    std::thread::sleep(Duration::from_millis(3 * spec.base.request_timeout_ms));
    cluster.restart(2).expect("restart n3");

    // Through n3, whose own copy is missing: a QUORUM read asks one other replica for a
    // digest, which differs from n3's (none), so its set is fetched, the read answers with
    // it and n3's copy is repaired. Half of those GETs come one at a time, half in
    // pipelines, which n3 reads as batches (one digest request per replica, then the
    // single read of each key whose digest differed).
    let mut stale = Client::connect(address[2]);
    for index in 0..HALF / 2 {
        let key = format!("key{index}");
        assert_eq!(stale.command(&["GET", &key]), format!("v{index}"), "{key}");
    }
    for start in [HALF / 2, HALF * 3 / 4] {
        let end = start + HALF / 4;
        let replies = stale.pipeline(&gets(start..end));
        let expected: Vec<String> = (start..end).map(|index| format!("v{index}")).collect();
        assert_eq!(replies, expected);
    }
    // (A read whose digest is slow to come, on the connection n3 just opened, may hedge to
    // the third replica for its whole set: that read fetches nothing.)
    let n3_mismatches = info_field(address[2], "read_digest_mismatches");
    assert!(
        (HALF as u64 / 2..=HALF as u64).contains(&n3_mismatches),
        "{n3_mismatches}"
    );
    wait_until("read repair on n3", || {
        info_field(address[2], "read_repairs") >= HALF as u64
    });

    // Through n1 at ALL: n2's digest matches n1's copy, n3's differs for the keys not yet
    // repaired (fetched, then n3 repaired) and matches for the others.
    // In pipelines of 20, each read as a batch; each waits for the repairs it causes (at
    // most `read_repairs_in_flight_max`, 64, run at once; more would be dropped).
    let mut client = Client::connect(address[0]);
    assert_eq!(client.command(&["CONSISTENCY", "ALL"]), "+OK");
    for start in (0..KEYS).step_by(20) {
        let mut pipeline = gets(start..start + 20);
        pipeline.push(vec!["GET".to_string(), "never-written".to_string()]);
        let mut expected: Vec<String> = (start..start + 20)
            .map(|index| format!("v{index}"))
            .collect();
        expected.push("(nil)".to_string());
        assert_eq!(client.pipeline(&pipeline), expected);
        let stale_so_far = (start + 20).saturating_sub(HALF) as u64;
        wait_until("read repair", || {
            info_field(address[0], "read_repairs") >= stale_so_far
        });
    }
    assert_eq!(
        info_field(address[0], "read_digest_mismatches"),
        HALF as u64
    );
    assert_eq!(info_field(address[0], "read_repairs"), HALF as u64);
    assert_eq!(info_field(address[2], "read_repairs"), HALF as u64);
    // Reads that agree repair nothing and fetch nothing, through any node, one by one or
    // in a pipeline.
    for index in 0..10 {
        let key = format!("key{index}");
        assert_eq!(client.command(&["GET", &key]), format!("v{index}"));
        assert_eq!(stale.command(&["GET", &key]), format!("v{index}"));
    }
    let expected: Vec<String> = (0..KEYS).map(|index| format!("v{index}")).collect();
    assert_eq!(stale.pipeline(&gets(0..KEYS)), expected);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(info_field(address[0], "read_repairs"), HALF as u64);
    assert_eq!(
        info_field(address[0], "read_digest_mismatches"),
        HALF as u64
    );
    assert_eq!(
        info_field(address[2], "read_digest_mismatches"),
        n3_mismatches
    );

    drop((client, stale));
    for index in 0..3 {
        cluster.stop_node(index).expect("stop");
    }
    let stores: Vec<LocalStore> = configs.iter().map(open_store).collect();
    for index in 0..KEYS {
        let key = format!("key{index}");
        let first = stores[0].read(key.as_bytes()).unwrap().expect("n1 has it");
        for store in &stores[1..] {
            assert_eq!(
                store.read(key.as_bytes()).unwrap().as_ref(),
                Some(&first),
                "{key}"
            );
        }
    }
}
