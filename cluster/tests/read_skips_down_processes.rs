//! A quorum read does not wait on a replica gossip holds Down. Three `kvnode` processes at
//! N=3 R=2 with `read_fanout = quorum` (a read asks its own copy and one more replica): one
//! is frozen with SIGSTOP, so its connections stay open and requests to it go unanswered
//! until the request timeout. A read that asked it waits a quarter of the request timeout
//! before asking the reserve replica (the coordinator's hedge). Once the coordinator's gossip
//! marks it Down, no read asks it first: every read completes before the hedge point. Before
//! the fix, the reads whose preference list put the frozen node first each waited for the
//! hedge (slowest 1.004 s of a 1 s hedge; after: 1.5 ms).

mod common;

use cluster::launcher::LocalCluster;
use cluster::protocol::Consistency;
use cluster::ring::Replication;
use common::{command, fast_gossip, process_spec, wait_until_within, Client};
use std::process::Command;
use std::time::{Duration, Instant};

const REQUEST_TIMEOUT_MS: u64 = 4000;
const KEYS: usize = 40;

/// Sends SIGCONT to the frozen node however the test ends, so the launcher can stop it.
struct Thaw(u32);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

#[test]
fn quorum_reads_skip_a_replica_gossip_holds_down() {
    let directory = tempfile::tempdir().unwrap();
    let mut spec = process_spec(
        directory.path(),
        1,
        3,
        Replication::Total(3),
        Consistency::Quorum,
    );
    spec.base.membership = fast_gossip(2);
    spec.base.request_timeout_ms = REQUEST_TIMEOUT_MS;
    let cluster = LocalCluster::start(&spec).expect("three nodes start");
    let address = cluster.client_addresses();
    let frozen_id = cluster.nodes()[1].id().to_string();
    let mut client = Client::connect(address[0]);
    for index in 0..KEYS {
        let key = format!("key{index}");
        assert_eq!(client.command(&["SET", &key, &key]), "+OK");
    }

    let pid = cluster.nodes()[1].pid().expect("the second node runs");
    let _thaw = Thaw(pid);
    let stopped = Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let down = wait_until_within(
        "the frozen node reported down",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || {
            command(address[0], &["CLUSTER.MEMBERS"])
                .lines()
                .any(|line| line.starts_with(&frozen_id) && line.contains(" down "))
        },
    );
    eprintln!("frozen node reported down after {down:?}");

    let mut slowest = Duration::ZERO;
    for index in 0..KEYS {
        let key = format!("key{index}");
        let started = Instant::now();
        assert_eq!(client.command(&["GET", &key]), key, "GET {key}");
        slowest = slowest.max(started.elapsed());
    }
    eprintln!("slowest of {KEYS} quorum reads with a replica down: {slowest:?}");
    let hedge = Duration::from_millis(REQUEST_TIMEOUT_MS / 4);
    assert!(
        slowest < hedge,
        "a read waited for the hedge ({hedge:?}) on the down replica ({slowest:?})"
    );
}

/// A replica whose process is gone (killed: its port refuses connections) is known to the
/// transport as soon as a connection to it fails: a read that cannot meet its need without
/// it (ALL) fails at once naming it, not after the request timeout, while QUORUM reads go
/// on; once the node is back and reconnected, ALL reads succeed again.
#[test]
fn a_read_that_needs_a_killed_replica_fails_at_once_naming_it() {
    let directory = tempfile::tempdir().unwrap();
    let spec = process_spec(
        directory.path(),
        1,
        3,
        Replication::Total(3),
        Consistency::Quorum,
    );
    let mut cluster = LocalCluster::start(&spec).expect("three nodes start");
    let address = cluster.client_addresses();
    let mut client = Client::connect(address[0]);
    assert_eq!(client.command(&["SET", "k", "v"]), "+OK");
    let read_all = || {
        let mut all = Client::connect(address[0]);
        assert!(all.command(&["CONSISTENCY", "ALL"]).starts_with('+'));
        all.command(&["GET", "k"])
    };
    assert_eq!(read_all(), "v");

    cluster.kill(2).expect("kill n3");
    // A write makes n1 reach for n3: its connection fails, and the transport knows.
    assert_eq!(client.command(&["SET", "k", "v2"]), "+OK");
    let mut last = String::new();
    wait_until_within(
        "a read at ALL refused for the killed replica",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            last = read_all();
            last.contains("n3: unreachable")
        },
    );
    assert!(
        last.starts_with("-ERR quorum not reached: needed 3 read replies"),
        "{last}"
    );
    // QUORUM reads do not need n3.
    assert_eq!(client.command(&["GET", "k"]), "v2");

    cluster.restart(2).expect("restart n3");
    wait_until_within(
        "a read at ALL answered again",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            // Writes keep n1 reconnecting; the restarted node answers once it does.
            let _ = Client::connect(address[0]).command(&["SET", "other", "x"]);
            read_all() == "v2"
        },
    );
}
