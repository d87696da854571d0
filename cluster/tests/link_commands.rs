//! The link emulator's admin commands on real `kvnode` processes started by the
//! [`LocalCluster`] launcher: a change made through one node applies on every member and
//! shapes the latency and availability of writes coordinated by another; and on a node
//! without members the commands work locally and answer at once. The launcher kills every
//! child however the test ends; every client read is bounded by a timeout.

mod common;

use cluster::launcher::{ClusterSpec, LocalCluster};
use cluster::protocol::Consistency;
use cluster::ring::Replication;
// Every reply is bounded by common::REPLY_TIMEOUT, 10 s (the nodes' request timeout is 1 s).
use common::{command, process_spec};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One-way delay set between the datacenters, in milliseconds.
const DELAY_MS: u64 = 50;

/// A versioned write at `level`, and how long it took.
fn timed_put(address: SocketAddr, key: &str, level: &str) -> (String, Duration) {
    let started = Instant::now();
    let reply = command(address, &["KV.PUT", key, "value", "CL", level]);
    (reply, started.elapsed())
}

/// Whether `LINK.GET`'s table has a row starting with these words.
fn has_row(table: &str, first_words: &[&str]) -> bool {
    table.lines().any(|line| {
        line.split_whitespace()
            .take(first_words.len())
            .eq(first_words.iter().copied())
    })
}

fn two_datacenter_cluster(directory: &std::path::Path) -> LocalCluster {
    // Every node holds every key: two replicas in each datacenter.
    let spec = process_spec(
        directory,
        2,
        2,
        Replication::PerDatacenter(BTreeMap::from([("dc1".into(), 2), ("dc2".into(), 2)])),
        Consistency::Quorum,
    );
    LocalCluster::start(&spec).expect("four nodes start")
}

#[test]
fn link_changes_through_one_node_shape_writes_coordinated_by_another() {
    let directory = tempfile::tempdir().unwrap();
    let mut cluster = two_datacenter_cluster(directory.path());
    // n1 and n2 are in dc1, n3 and n4 in dc2.
    let address = cluster.client_addresses();
    let (n1, n2, n3, n4) = (address[0], address[1], address[2], address[3]);
    // Connections between every pair are made before anything is timed.
    for (index, node) in address.iter().enumerate() {
        let (reply, _) = timed_put(*node, &format!("warm{index}"), "EACH_QUORUM");
        assert_eq!(reply, "+OK");
    }

    let delay = format!("const({DELAY_MS})");
    let reply = command(n3, &["LINK.SET", "dc1", "dc2", &delay]);
    assert!(
        reply.starts_with("+applied on 4 of 4 nodes: dc1 <-> dc2: delay const(50)"),
        "{reply}"
    );
    let table = command(n1, &["LINK.GET"]);
    assert!(table.starts_with("links of node n1 (dc1)"), "{table}");
    assert!(
        has_row(&table, &["datacenter", "dc1", "dc2", "const(50)"]),
        "{table}"
    );
    assert!(
        has_row(&table, &["datacenter", "dc2", "dc1", "const(50)"]),
        "{table}"
    );

    // EACH_QUORUM through n1 waits for dc2: a request and its acknowledgement each cross
    // the delayed link. LOCAL_QUORUM needs dc1 only. The fastest of several writes is
    // compared, so a stall of the loaded test machine cannot make the bound fail.
    let each_fastest = (0..3)
        .map(|index| {
            let (reply, elapsed) = timed_put(n1, &format!("each{index}"), "EACH_QUORUM");
            assert_eq!(reply, "+OK");
            elapsed
        })
        .min()
        .unwrap();
    let local_fastest = (0..5)
        .map(|index| {
            let (reply, elapsed) = timed_put(n1, &format!("local{index}"), "LOCAL_QUORUM");
            assert_eq!(reply, "+OK");
            elapsed
        })
        .min()
        .unwrap();
    let delay = Duration::from_millis(DELAY_MS);
    assert!(each_fastest >= delay, "EACH_QUORUM took {each_fastest:?}");
    assert!(local_fastest < delay, "LOCAL_QUORUM took {local_fastest:?}");
    eprintln!("with {DELAY_MS} ms dc1<->dc2: fastest EACH_QUORUM {each_fastest:?}, fastest LOCAL_QUORUM {local_fastest:?}");

    let reply = command(n3, &["LINK.PARTITION", "dc1", "dc2"]);
    assert!(
        reply.starts_with("+applied on 4 of 4 nodes: partition #1 cuts dc dc1 and dc dc2"),
        "{reply}"
    );
    let (reply, _) = timed_put(n1, "cut", "EACH_QUORUM");
    assert!(
        reply.starts_with("-ERR quorum not reached: needed 4 write acknowledgements, got 2"),
        "{reply}"
    );
    let (reply, _) = timed_put(n1, "cut", "LOCAL_QUORUM");
    assert_eq!(reply, "+OK");
    let table = command(n4, &["LINK.GET"]);
    assert!(table.contains("#1 {dc dc1} <-> {dc dc2}"), "{table}");

    let reply = command(n2, &["LINK.HEAL", "dc2", "dc1"]);
    assert!(
        reply.starts_with("+applied on 4 of 4 nodes: healed 1 partition(s)"),
        "{reply}"
    );
    let (reply, elapsed) = timed_put(n1, "healed", "EACH_QUORUM");
    assert_eq!(reply, "+OK");
    assert!(
        elapsed >= delay,
        "the delay outlives the partition: {elapsed:?}"
    );

    let reply = command(n4, &["LINK.RESET"]);
    assert!(
        reply.starts_with("+applied on 4 of 4 nodes: links reset"),
        "{reply}"
    );
    let table = command(n2, &["LINK.GET"]);
    assert!(!has_row(&table, &["datacenter"]), "{table}");
    assert!(table.ends_with("partitions: none"), "{table}");

    // LOCAL changes this node only.
    let reply = command(
        n1,
        &[
            "LINK.SET", "NODE", "n1", "n3", "exp(5)", "LOSS", "1%", "LOCAL",
        ],
    );
    assert!(
        reply.starts_with("+applied on this node only (LOCAL), n1: n1 <-> n3"),
        "{reply}"
    );
    assert!(has_row(
        &command(n1, &["LINK.GET"]),
        &["node", "n1", "n3", "exp(5)"]
    ));
    assert!(!has_row(&command(n3, &["LINK.GET"]), &["node"]));

    // A bad spec is refused before anything is applied, naming the bad word.
    let reply = command(n2, &["LINK.SET", "dc1", "dc2", "expo(5)"]);
    assert!(
        reply.starts_with("-ERR LINK.SET: bad delay") && reply.contains("expo"),
        "{reply}"
    );

    // A member that does not answer is named; the others still apply the change.
    cluster.kill(3).expect("SIGKILL n4");
    let reply = command(n1, &["LINK.RESET"]);
    assert!(
        reply.starts_with("+applied on 3 of 4 nodes: links reset"),
        "{reply}"
    );
    assert!(reply.contains("not applied on n4: "), "{reply}");
    assert!(!has_row(&command(n1, &["LINK.GET"]), &["node"]));
}

#[test]
fn link_commands_on_a_node_without_members_apply_locally_at_once() {
    let directory = tempfile::tempdir().unwrap();
    let mut spec = ClusterSpec::new(
        env!("CARGO_BIN_EXE_kvnode").into(),
        directory.path().to_path_buf(),
        1,
        1,
    );
    spec.replication = Replication::Total(1);
    spec.default_consistency = Consistency::One;
    let cluster = LocalCluster::start(&spec).expect("one node starts");
    let node = cluster.client_addresses()[0];
    let started = Instant::now();

    let reply = command(
        node,
        &["LINK.SET", "dc1", "dc2", "40+exp(5)", "LOSS", "0.5"],
    );
    assert!(
        reply.starts_with("+applied on 1 of 1 nodes (no members): dc1 <-> dc2"),
        "{reply}"
    );
    let table = command(node, &["LINK.GET"]);
    assert!(
        has_row(&table, &["datacenter", "dc1", "dc2", "40+exp(5)"]),
        "{table}"
    );
    assert!(table.contains("50%"), "{table}");
    let reply = command(node, &["LINK.PARTITION", "NODE", "n1", "n2"]);
    assert!(
        reply.contains("partition #1 cuts node n1 and node n2"),
        "{reply}"
    );
    assert!(command(node, &["LINK.GET"]).contains("{node n1} <-> {node n2}"));
    let reply = command(node, &["LINK.HEAL"]);
    assert!(reply.ends_with("healed 1 partition(s)"), "{reply}");
    let reply = command(node, &["LINK.RESET", "LOCAL"]);
    assert!(
        reply.starts_with("+applied on this node only (LOCAL), n1: links reset"),
        "{reply}"
    );
    assert!(!has_row(&command(node, &["LINK.GET"]), &["datacenter"]));
    let reply = command(node, &["LINK.SET", "dc1", "dc2", "exp(5)", "LOSS", "150%"]);
    assert!(
        reply.starts_with("-ERR LINK.SET: LOSS") && reply.contains("'150%'"),
        "{reply}"
    );
    // The data path is untouched.
    assert_eq!(command(node, &["SET", "k", "v"]), "+OK");
    assert_eq!(command(node, &["GET", "k"]), "v");
    // Nothing waited on a peer: generous, only catches a command that hangs to a timeout.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
