//! The local cluster launcher against real `kvnode` processes: start 2 datacenters x 2
//! nodes, crash one with SIGKILL, restart it on its data, stop everything.

mod common;

use cluster::launcher::{ClusterSpec, LocalCluster};
use cluster::ring::Replication;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Sends one RESP command and returns the raw reply (one read is enough for these
/// short replies on loopback).
fn command(address: SocketAddr, arguments: &[&str]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let request = common::encode_command(arguments);
    stream.write_all(request.as_bytes())?;
    let mut reply = [0u8; 512];
    let length = stream.read(&mut reply)?;
    Ok(String::from_utf8_lossy(&reply[..length]).to_string())
}

/// The value of `field` in `INFO engine` from `address`.
fn engine_info(address: SocketAddr, field: &str) -> u64 {
    common::info_number(&common::command(address, &["INFO", "engine"]), field)
}

#[test]
fn launch_crash_restart_and_stop_a_two_datacenter_cluster() {
    let work = tempfile::tempdir().expect("temporary directory");
    let mut spec = ClusterSpec::new(
        env!("CARGO_BIN_EXE_kvnode").into(),
        work.path().to_path_buf(),
        2,
        2,
    );
    spec.replication = Replication::Total(3);
    let mut cluster = LocalCluster::start(&spec).expect("cluster starts");
    assert_eq!(cluster.nodes().len(), 4);
    let datacenters: Vec<&str> = cluster
        .nodes()
        .iter()
        .map(|n| n.config.datacenter.as_str())
        .collect();
    assert_eq!(datacenters, ["dc1", "dc1", "dc2", "dc2"]);
    for address in cluster.client_addresses() {
        assert_eq!(
            command(address, &["PING"]).expect("ping"),
            "+PONG\r\n",
            "{address}"
        );
    }

    let second = cluster.client_addresses()[1];
    assert_eq!(
        command(second, &["SET", "launcher-key", "v1"]).expect("set"),
        "+OK\r\n"
    );
    // Node 2 holds a replica of about three keys in four (N=3 of 4 nodes).
    for index in 0..20 {
        let key = format!("launcher-more-{index}");
        assert_eq!(
            command(second, &["SET", &key, "v"]).expect("set"),
            "+OK\r\n"
        );
    }
    assert_eq!(engine_info(second, "log_records_recovered"), 0);
    cluster.kill(1).expect("SIGKILL node 2");
    assert!(
        command(second, &["PING"]).is_err(),
        "a killed node refuses connections"
    );

    cluster.restart(1).expect("node 2 restarts on its data");
    assert_eq!(
        command(second, &["PING"]).expect("ping after restart"),
        "+PONG\r\n"
    );
    assert_eq!(
        command(second, &["GET", "launcher-key"]).expect("get after restart"),
        "$2\r\nv1\r\n",
        "the acknowledged write survived SIGKILL"
    );
    // The writes came back from its commit log, and INFO says so.
    assert!(engine_info(second, "log_records_recovered") >= 10);
    assert_eq!(engine_info(second, "log_torn_tail_bytes_dropped"), 0);
    assert_eq!(engine_info(second, "log_segments_salvaged"), 0);
    cluster.stop();
}
