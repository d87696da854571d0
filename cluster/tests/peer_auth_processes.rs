//! Two `kvnode` processes sharing a `cluster_secret` replicate to each other; after one is
//! restarted with another secret, each refuses the other (logged with the address and the
//! reason) and a write that needs both fails. The launcher kills every child however the
//! test ends.

mod common;

use cluster::launcher::LocalCluster;
use cluster::protocol::Consistency;
use cluster::ring::Replication;
use common::{command, process_spec, REPLY_TIMEOUT};
use std::time::{Duration, Instant};

#[test]
fn processes_with_the_secret_replicate_and_a_wrong_secret_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let mut spec = process_spec(
        directory.path(),
        1,
        2,
        Replication::Total(2),
        Consistency::Quorum,
    );
    spec.base.cluster_secret = Some("correct horse".to_string());
    let mut cluster = LocalCluster::start(&spec).expect("two nodes start");
    let address = cluster.client_addresses();

    // Quorum of two: the write needs the other node, so the peers authenticated.
    assert_eq!(command(address[0], &["SET", "k", "v1"]), "+OK");
    assert_eq!(command(address[1], &["GET", "k"]), "v1");
    for node in cluster.nodes() {
        let text = std::fs::read_to_string(&node.log_path).unwrap_or_default();
        assert!(!text.contains("correct horse"), "secret in a log: {text}");
    }

    cluster.stop_node(1).expect("stop n2");
    let config_path = cluster.nodes()[1].config_path.clone();
    let text = std::fs::read_to_string(&config_path).unwrap();
    assert!(text.contains("correct horse"), "{text}");
    std::fs::write(
        &config_path,
        text.replace("correct horse", "battery staple"),
    )
    .unwrap();
    cluster.restart(1).expect("n2 restarts with another secret");

    let reply = command(address[0], &["SET", "k2", "v2"]);
    assert!(reply.starts_with("-ERR quorum not reached"), "{reply}");
    let log_path = cluster.nodes()[1].log_path.clone();
    // Waiting for the log line is bounded like a client reply.
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let refused = log.lines().any(|line| {
            line.contains("refused a connection from 127.")
                && line.contains("authentication failed")
        });
        if refused {
            break;
        }
        assert!(Instant::now() < deadline, "no refusal logged by n2: {log}");
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.stop();
}
