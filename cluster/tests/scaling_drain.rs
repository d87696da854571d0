//! Joins with real `kvnode` processes on 127.0.x.y (launcher [`LocalCluster`], every child
//! killed however the test ends).
//!
//! A ring change waits for the writes coordinated under the ring before it: n1's puts to
//! n2 and n3 are held one second by the link emulator, so a QUORUM write through n1 is
//! unanswered for that long; a join driven by n2 meanwhile waits for it (`drain_ms`)
//! before streaming, and n4 then holds the write.
//!
//! A node started to join gossips to nobody until the change adds it, so no member logs
//! a refused unknown peer.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cluster::launcher::LocalCluster;
use cluster::protocol::Consistency;
use cluster::ring::{Member, NodeId, Replication, Ring};
use common::{fast_gossip, figure, open_store, process_spec, wait_until_within, Client};

const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the emulator holds each of n1's puts.
const PUT_DELAY_MS: u64 = 1000;

fn connect(address: SocketAddr) -> Client {
    Client::connect_with_timeout(address, REPLY_TIMEOUT)
}

#[test]
fn a_join_waits_for_a_write_in_flight_under_the_old_ring() {
    let directory = tempfile::tempdir().unwrap();
    let mut spec = process_spec(
        directory.path(),
        1,
        4,
        Replication::Total(3),
        Consistency::Quorum,
    );
    // Long enough for a write whose puts take a second each way.
    spec.base.request_timeout_ms = 4000;
    spec.base.read_repair = false;
    let mut cluster = LocalCluster::start_holding_back(&spec, 1).expect("three nodes start");
    cluster.start_node(3).expect("n4 starts, joining");
    let address = cluster.client_addresses();
    let configs: Vec<_> = cluster.nodes().iter().map(|n| n.config.clone()).collect();
    let n4 = configs[3].clone();
    // A key n4 replicates once it has joined.
    let four = Ring::new(
        ["n1", "n2", "n3", "n4"].map(|id| Member::new(id, "dc1")),
        spec.base.vnodes_per_weight,
    )
    .unwrap();
    let key = (0..)
        .map(|index| format!("slow{index}"))
        .find(|key| {
            four.preference_list(key.as_bytes(), &Replication::Total(3))
                .unwrap()
                .contains(&NodeId::new("n4"))
        })
        .unwrap();
    let value = "written-before-the-join";

    // Only n1's puts (write requests) are held: ring-change messages go at once.
    for peer in ["n2", "n3"] {
        let delay = format!("write_request={PUT_DELAY_MS}");
        let reply = connect(address[0])
            .command(&["LINK.SET", "NODE", "n1", peer, &delay, "ONEWAY", "LOCAL"]);
        assert!(reply.starts_with('+'), "{reply}");
    }

    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let started = Instant::now();
            let reply = connect(address[0]).command(&["SET", &key, value]);
            (reply, started.elapsed())
        });
        // The write is under way (n1 waits for its puts) when the change starts.
        std::thread::sleep(Duration::from_millis(200));
        let join_started = Instant::now();
        let reply = connect(address[1]).command(&[
            "CLUSTER.JOIN",
            "n4",
            "dc1",
            &n4.client_address.to_string(),
            &n4.peer_address.to_string(),
        ]);
        let join_took = join_started.elapsed();
        let (written, write_took) = writer.join().unwrap();
        assert_eq!(written, "+OK");
        assert!(
            write_took >= Duration::from_millis(PUT_DELAY_MS),
            "the write took {write_took:?}"
        );
        assert!(reply.starts_with("joined n4 ring_version 3"), "{reply}");
        let drain_ms = figure(&reply, "drain_ms");
        eprintln!(
            "write {write_took:?}, join {join_took:?}, drain {drain_ms} ms, streaming {} ms",
            figure(&reply, "stream_ms")
        );
        // The join began 200 ms into the write, and its drain ended when the write was
        // answered: not before, and without the two request timeouts it used to wait.
        assert!(
            drain_ms + 200 >= PUT_DELAY_MS / 2,
            "drained after {drain_ms} ms, the write took {write_took:?}"
        );
        assert!(drain_ms < 4000, "drained after {drain_ms} ms");
    });

    // The write reached n4 by the stream (it went to the old ring's replicas only).
    cluster.stop_node(3).expect("stop n4");
    let set = open_store(&n4)
        .read(key.as_bytes())
        .unwrap()
        .unwrap_or_else(|| panic!("n4 lacks {key}"));
    assert!(
        set.versions
            .iter()
            .any(|version| version.value.as_deref() == Some(value.as_bytes())),
        "n4 holds another {key}: {set:?}"
    );
}

#[test]
fn a_node_started_to_join_gossips_to_nobody_until_it_is_added() {
    let directory = tempfile::tempdir().unwrap();
    let mut spec = process_spec(
        directory.path(),
        1,
        4,
        Replication::Total(3),
        Consistency::Quorum,
    );
    spec.base.membership = fast_gossip(3);
    let mut cluster = LocalCluster::start_holding_back(&spec, 1).expect("three nodes start");
    cluster.start_node(3).expect("n4 starts, joining");
    let address = cluster.client_addresses();
    let n4 = cluster.nodes()[3].config.clone();
    // Ten gossip rounds of n4's before it is added: the members would refuse each as an
    // unknown peer's.
    std::thread::sleep(Duration::from_millis(1000));
    let reply = connect(address[0]).command(&[
        "CLUSTER.JOIN",
        "n4",
        "dc1",
        &n4.client_address.to_string(),
        &n4.peer_address.to_string(),
    ]);
    assert!(reply.starts_with("joined n4 ring_version 3"), "{reply}");
    // Added, n4 gossips: the members come to hold it alive.
    wait_until_within(
        "n1 to see n4 alive",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            connect(address[0])
                .command(&["CLUSTER.MEMBERS"])
                .lines()
                .any(|line| line.starts_with("n4 dc1 alive"))
        },
    );
    for node in cluster.nodes() {
        let log = std::fs::read_to_string(&node.log_path).unwrap();
        assert!(
            !log.contains("not a known peer"),
            "{}'s log: {log}",
            node.config.node_id
        );
    }
}
