//! Three `kvnode` processes on 127.0.x.y started by the [`LocalCluster`] launcher (N=3,
//! QUORUM): a write through one is read through the others, one killed node is tolerated,
//! two are not. The launcher kills every child however the test ends.

mod common;

use cluster::launcher::{ClusterSpec, LocalCluster};
use cluster::protocol::Consistency;
use cluster::ring::Replication;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Bound on any one client reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one command and returns its reply: the line for simple replies (with its type
/// byte), the payload for bulk strings, `(nil)` for a null bulk.
fn command(address: SocketAddr, arguments: &[&str]) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    let request = common::encode_command(arguments);
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("reply");
    let line = line.trim_end().to_string();
    match line.strip_prefix('$') {
        Some("-1") => "(nil)".to_string(),
        Some(length) => {
            let length: usize = length.parse().expect("bulk length");
            let mut payload = vec![0; length + 2];
            reader.read_exact(&mut payload).expect("bulk payload");
            payload.truncate(length);
            String::from_utf8(payload).expect("utf-8 value")
        }
        None => line,
    }
}

#[test]
fn three_processes_tolerate_one_killed_node_and_refuse_with_two() {
    let directory = tempfile::tempdir().unwrap();
    let mut spec = ClusterSpec::new(
        env!("CARGO_BIN_EXE_kvnode").into(),
        directory.path().to_path_buf(),
        1,
        3,
    );
    spec.replication = Replication::Total(3);
    spec.default_consistency = Consistency::Quorum;
    spec.base.vnodes_per_weight = 16;
    spec.base.request_timeout_ms = 1000;
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
}
