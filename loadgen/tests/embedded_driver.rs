//! The routing policies plugged into the YCSB driver against an embedded cluster: a load
//! phase routed `same-dc:dc2` sends every insert to dc2's nodes, which the nodes' own
//! command counters (INFO stats) confirm, and every insert succeeds.

use cluster::protocol::RespValue;
use cluster::ring::Replication;
use loadgen::client::{Target, TargetKind};
use loadgen::driver::{run_phase, DriverConfig, Phase, RunControl};
use loadgen::local::{EmbeddedCluster, LocalClusterOptions};
use loadgen::routing::{call, fetch_topology, Policy};
use loadgen::workload::{CoreWorkloadConfig, Properties};
use std::net::SocketAddr;

const RECORDS: u64 = 300;

fn commands_processed(node: SocketAddr) -> u64 {
    let RespValue::BulkString(Some(text)) = call(node, &[b"INFO", b"stats"]).unwrap() else {
        panic!("INFO is a bulk string");
    };
    let text = String::from_utf8(text).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .expect("INFO stats counts commands")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_load_routed_to_one_datacenter_only_reaches_its_nodes() {
    let options = LocalClusterOptions {
        datacenters: 2,
        nodes_per_datacenter: 2,
        replication: Replication::Total(2),
        inter_dc_delay: "1".into(),
        worker_threads: 2,
        ..LocalClusterOptions::default()
    };
    let cluster = EmbeddedCluster::start(&options).expect("embedded cluster starts");
    let addresses = cluster.client_addresses();
    let topology = fetch_topology(addresses[0]).unwrap();
    let before: Vec<u64> = addresses.iter().map(|a| commands_processed(*a)).collect();

    let mut properties = Properties::new();
    properties.set("recordcount", &RECORDS.to_string());
    properties.set("fieldcount", "2");
    properties.set("fieldlength", "20");
    let workload = CoreWorkloadConfig::from_properties(&properties).unwrap();
    let targets = addresses
        .iter()
        .map(|address| Target {
            name: address.to_string(),
            address: *address,
        })
        .collect();
    let mut config = DriverConfig::new(targets);
    config.target_kind = Some(TargetKind::Kvnode);
    config.connections_per_thread = 2;
    config.router = Policy::parse("same-dc:dc2")
        .unwrap()
        .driver_factory(&addresses, Some(&topology))
        .unwrap();
    let result = run_phase(
        Phase::Load,
        &workload,
        &config,
        &RunControl::default(),
        &mut |_| {},
    )
    .expect("load phase");
    assert_eq!(result.partial, None);
    assert_eq!(result.operations_done(), RECORDS);
    assert_eq!(result.run.errors(), 0);

    let served: Vec<u64> = addresses
        .iter()
        .zip(&before)
        .map(|(address, before)| commands_processed(*address) - before)
        .collect();
    // The INFO calls above count too; the inserts all went to dc2 (nodes 3 and 4).
    assert!(served[0] < 10 && served[1] < 10, "{served:?}");
    assert!(served[2] + served[3] >= RECORDS, "{served:?}");
    assert!(served[2] > 0 && served[3] > 0, "{served:?}");
    cluster.stop().unwrap();
}
