//! Three `kvnode` processes on 127.0.x.y started by the [`LocalCluster`] launcher (N=3,
//! QUORUM): a write through one is read through the others, one killed node is tolerated,
//! two are not. The launcher kills every child however the test ends.

mod common;

use cluster::launcher::LocalCluster;
use cluster::protocol::Consistency;
use cluster::ring::Replication;
use common::{command_with, process_spec, Arrays, Client};
use std::net::SocketAddr;

/// Sends one command and returns its reply: the line for simple replies (with its type
/// byte), the payload for bulk strings, `(nil)` for a null bulk, an array's header line.
fn command(address: SocketAddr, arguments: &[&str]) -> String {
    command_with(address, arguments, Arrays::Header)
}

#[test]
fn three_processes_tolerate_one_killed_node_and_refuse_with_two() {
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

    assert_eq!(command(address[0], &["SET", "k", "v1"]), "+OK");
    for node in &address {
        assert_eq!(command(*node, &["GET", "k"]), "v1");
        // A summary line and one line per member: the node serves as part of a cluster.
        assert_eq!(command(*node, &["CLUSTER.TOPOLOGY"]), "*4");
    }

    cluster.kill(2).expect("SIGKILL n3");
    assert_eq!(command(address[0], &["SET", "k2", "v2"]), "+OK");
    assert_eq!(command(address[1], &["GET", "k2"]), "v2");
    // Pipelined SETs are written as one batch (one PutMany per replica): W=2 is met by
    // n1 and n2 without the killed n3.
    let sets: Vec<Vec<String>> = (0..6)
        .map(|index| vec!["SET".to_string(), format!("b{index}"), format!("w{index}")])
        .collect();
    assert_eq!(Client::connect(address[0]).pipeline(&sets), vec!["+OK"; 6]);
    let reads: Vec<Vec<String>> = (0..6)
        .map(|index| vec!["GET".to_string(), format!("b{index}")])
        .collect();
    let expected: Vec<String> = (0..6).map(|index| format!("w{index}")).collect();
    assert_eq!(Client::connect(address[1]).pipeline(&reads), expected);
    // Pipelined GETs are read as one batch (one digest request per replica asked): keys
    // whose asked replica is the killed one are read again on their own, from the other.
    for node in &address[..2] {
        let mut client = Client::connect(*node);
        let pipeline: Vec<Vec<String>> = ["k", "k2", "missing", "k", "k2"]
            .iter()
            .map(|key| vec!["GET".to_string(), key.to_string()])
            .collect();
        assert_eq!(
            client.pipeline(&pipeline),
            ["v1", "v2", "(nil)", "v1", "v2"],
            "through {node}"
        );
    }

    cluster.kill(1).expect("SIGKILL n2");
    let reply = command(address[0], &["SET", "k3", "v3"]);
    assert!(
        reply.starts_with("-ERR quorum not reached: needed 2 write acknowledgements, got 1"),
        "{reply}"
    );
    let reply = command(address[0], &["GET", "k"]);
    assert!(
        reply.starts_with("-ERR quorum not reached: needed 2 read replies, got 1"),
        "{reply}"
    );
    for reply in Client::connect(address[0]).pipeline(&sets) {
        assert!(
            reply.starts_with("-ERR quorum not reached: needed 2 write acknowledgements, got 1"),
            "{reply}"
        );
    }
    let replies = Client::connect(address[0]).pipeline(&[
        vec!["GET".to_string(), "k".to_string()],
        vec!["GET".to_string(), "k2".to_string()],
    ]);
    for reply in replies {
        assert!(
            reply.starts_with("-ERR quorum not reached: needed 2 read replies, got 1"),
            "{reply}"
        );
    }
}
