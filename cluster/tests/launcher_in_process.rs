//! The in-process launcher: 2 datacenters x 2 nodes inside this test's process, talking
//! RESP and the peer protocol over real loopback sockets. A write through one node is read
//! through another, a node is stopped and restarted on its data, and after `stop` nothing
//! listens on any of the cluster's addresses.

mod common;

use cluster::launcher::{InProcessCluster, InProcessSpec, PEER_PORT};
use cluster::ring::Replication;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Sends one RESP command and returns the raw reply (one read is enough for these short
/// replies on loopback).
fn command(address: SocketAddr, arguments: &[&str]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let request = common::encode_command(arguments);
    stream.write_all(request.as_bytes())?;
    let mut reply = [0u8; 512];
    let length = stream.read(&mut reply)?;
    Ok(String::from_utf8_lossy(&reply[..length]).to_string())
}

fn listening(address: SocketAddr) -> bool {
    TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok()
}

#[test]
fn start_write_read_stop_restart_and_stop_an_in_process_cluster() {
    let work = tempfile::tempdir().expect("temporary directory");
    let mut spec = InProcessSpec::new(work.path().to_path_buf(), 2, 2);
    spec.replication = Replication::Total(3);
    spec.base.vnodes_per_weight = 16;
    spec.base.request_timeout_ms = 1000;
    spec.worker_threads = 2;
    let mut cluster = InProcessCluster::start(&spec).expect("cluster starts");
    assert_eq!(cluster.len(), 4);
    let datacenters: Vec<&str> = (0..4).map(|i| cluster.datacenter_of(i).unwrap()).collect();
    assert_eq!(datacenters, ["dc1", "dc1", "dc2", "dc2"]);
    assert!(cluster.datacenter_of(4).is_err());
    let addresses = cluster.client_addresses();
    for (index, config) in cluster.configs().iter().enumerate() {
        assert!(config.data_dir.starts_with(work.path()), "{index}");
        assert!(config.data_dir.is_dir(), "{index} has its data directory");
    }

    assert_eq!(
        command(addresses[0], &["SET", "in-process", "v1"]).unwrap(),
        "+OK\r\n"
    );
    assert_eq!(
        command(addresses[3], &["GET", "in-process"]).unwrap(),
        "$2\r\nv1\r\n",
        "written through dc1, read through dc2"
    );

    // What a routing client needs to rebuild the ring and reach each member.
    let topology = command(addresses[0], &["CLUSTER.TOPOLOGY"]).unwrap();
    assert!(topology.starts_with("*5\r\n"), "{topology}");
    assert!(
        topology.contains("members 4 vnodes_per_weight 16 placement 3"),
        "{topology}"
    );
    assert!(
        topology.contains(&format!("n4 dc2 weight 1 client {}", addresses[3])),
        "{topology}"
    );

    cluster.stop_node(2).expect("stop n3");
    assert!(!cluster.is_running(2));
    assert!(!listening(addresses[2]), "a stopped node refuses clients");
    // N=3 over four nodes with W=R=2: one node down is tolerated.
    assert_eq!(
        command(addresses[1], &["SET", "in-process", "v2"]).unwrap(),
        "+OK\r\n"
    );

    cluster.restart(2).expect("n3 restarts on its data");
    assert!(cluster.is_running(2));
    assert_eq!(
        command(addresses[2], &["GET", "in-process"]).unwrap(),
        "$2\r\nv2\r\n"
    );

    let peers: Vec<SocketAddr> = addresses
        .iter()
        .map(|address| SocketAddr::new(address.ip(), PEER_PORT))
        .collect();
    cluster.stop().expect("every node stops cleanly");
    for address in addresses.iter().chain(&peers) {
        assert!(!listening(*address), "{address} still listens after stop");
    }
}

#[test]
fn a_bad_shape_is_refused_naming_the_field() {
    let work = tempfile::tempdir().expect("temporary directory");
    let mut spec = InProcessSpec::new(work.path().to_path_buf(), 1, 2);
    spec.replication = Replication::Total(3);
    let error = InProcessCluster::start(&spec).unwrap_err().to_string();
    assert!(error.contains("replication"), "{error}");
}

/// The load generator may hold the cluster from async code: starting, stopping a node and
/// dropping the cluster inside a (current-thread) runtime must neither panic nor hang.
#[tokio::test(flavor = "current_thread")]
async fn usable_and_droppable_from_inside_another_runtime() {
    let work = tempfile::tempdir().expect("temporary directory");
    let mut spec = InProcessSpec::new(work.path().to_path_buf(), 1, 2);
    spec.replication = Replication::Total(2);
    spec.base.vnodes_per_weight = 8;
    spec.worker_threads = 1;
    let mut cluster = InProcessCluster::start(&spec).expect("cluster starts");
    let addresses = cluster.client_addresses();
    assert_eq!(command(addresses[1], &["PING"]).unwrap(), "+PONG\r\n");
    cluster.stop_node(0).expect("stop n1");
    assert!(!listening(addresses[0]));
    drop(cluster);
    assert!(!listening(addresses[1]), "dropping stops every node");
}
