//! kvbench against a kvnode: the node (the cluster crate's server, in this process, on
//! 127.0.0.1 over TCP) is detected from its INFO, loaded, and run with workload E, whose
//! scans go through KV.SCAN, and with workload A.

use cluster::config::NodeConfig;
use cluster::server::RunningNode;
use loadgen::client::{Target, TargetKind};
use loadgen::driver::{run_phase, DriverConfig, Phase, RunControl};
use loadgen::measure::OperationKind;
use loadgen::workload::{CoreWorkloadConfig, Properties};
use std::path::Path;
use std::time::Duration;

fn workload(file: &str, overrides: &[&str]) -> CoreWorkloadConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../workloads")
        .join(file);
    let properties = Properties::from_command_line(&[path.as_path()], overrides).unwrap();
    CoreWorkloadConfig::from_properties(&properties).unwrap()
}

#[test]
fn load_then_scan_and_update_workloads_against_a_kvnode() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let directory = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        client_address: "127.0.0.1:0".parse().unwrap(),
        data_dir: directory.path().to_path_buf(),
        ..NodeConfig::default()
    };
    config.validate().unwrap();
    let node = runtime.block_on(RunningNode::start(config)).unwrap();
    let target = Target::resolve(&node.client_address().to_string()).unwrap();
    let mut driver = DriverConfig::new(vec![target]);
    driver.connections_per_thread = 2;
    driver.pipeline = 4;
    driver.reply_timeout = Duration::from_secs(30);

    let sizes = [
        "recordcount=300",
        "operationcount=400",
        "maxscanlength=20",
        "fieldcount=3",
        "fieldlength=50",
    ];
    let load = run_phase(
        Phase::Load,
        &workload("workloade", &sizes),
        &driver,
        &RunControl::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(load.target_kind, TargetKind::Kvnode, "detected from INFO");
    assert_eq!(load.partial, None);
    let insert = load.totals.kind(OperationKind::Insert);
    assert_eq!((insert.operations(), insert.errors()), (300, 0));

    let scans = run_phase(
        Phase::Run,
        &workload("workloade", &sizes),
        &driver,
        &RunControl::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(scans.partial, None);
    let scan = scans.totals.kind(OperationKind::Scan);
    let insert = scans.totals.kind(OperationKind::Insert);
    assert_eq!(scan.operations() + insert.operations(), 400);
    assert!(scan.operations() > 300, "{}", scan.operations());
    assert_eq!(scan.errors() + insert.errors(), 0);

    let updates = run_phase(
        Phase::Run,
        &workload("workloadf", &sizes),
        &driver,
        &RunControl::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(updates.partial, None);
    let read = updates.totals.kind(OperationKind::Read);
    let read_modify_write = updates.totals.kind(OperationKind::ReadModifyWrite);
    // Workload F: reads, and read-modify-writes whose read is counted as a read too.
    assert_eq!(
        read.operations(),
        400,
        "every operation reads once (RMW {})",
        read_modify_write.operations()
    );
    assert!(read_modify_write.operations() > 100);
    assert_eq!(read.errors() + read_modify_write.errors(), 0);

    runtime.block_on(node.stop()).unwrap();
}
