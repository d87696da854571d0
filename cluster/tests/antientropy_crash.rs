//! SIGKILL one replica during a write load at N=3, W=2, and restart it: every
//! acknowledged write is readable at R=2 at once, and from every replica alone (R=1) after
//! an anti-entropy round. Read repair is off so that the repair seen is anti-entropy's.
//! Real `kvnode` processes on 127.0.x.y, every child killed however the test ends.

mod antientropy_common;
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use antientropy_common::{differing_ranges, info_field, run_round, spec, Client, Reply};
use cluster::launcher::LocalCluster;

/// Writers per surviving coordinator.
const WRITERS: usize = 3;

/// Most writes per writer: bounds the load however slow the machine is.
const WRITES_PER_WRITER_MAX: usize = 20_000;

fn read_all(address: std::net::SocketAddr, level: &str, acknowledged: &[(String, String)]) {
    let mut client = Client::connect(address);
    client.ok(&["CONSISTENCY", "R", level]);
    for (key, value) in acknowledged {
        let reply = client.command(&["GET", key]);
        assert_eq!(
            reply,
            Reply::Bulk(Some(value.clone())),
            "{key} at R={level} from {address}"
        );
    }
}

#[test]
fn every_acknowledged_write_survives_a_sigkill_and_anti_entropy_levels_the_replicas() {
    let directory = tempfile::tempdir().unwrap();
    let mut spec = spec(directory.path(), 1, 3, 0);
    spec.base.read_repair = false;
    let mut cluster = LocalCluster::start(&spec).expect("three nodes start");
    let address = cluster.client_addresses();

    let acknowledged: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let failed = Mutex::new(0usize);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for writer in 0..2 * WRITERS {
            let (acknowledged, failed, stop) = (&acknowledged, &failed, &stop);
            let address = address[writer % 2];
            scope.spawn(move || {
                let mut client = Client::connect(address);
                for index in 0..WRITES_PER_WRITER_MAX {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let (key, value) = (format!("w{writer}k{index}"), format!("v{index}"));
                    match client.command(&["SET", &key, &value]) {
                        Reply::Simple(ok) if ok == "OK" => {
                            acknowledged.lock().unwrap().push((key, value))
                        }
                        _ => *failed.lock().unwrap() += 1,
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(1500));
        cluster.kill(2).expect("SIGKILL n3");
        std::thread::sleep(Duration::from_millis(2000));
        cluster.restart(2).expect("restart n3");
        std::thread::sleep(Duration::from_millis(1000));
        stop.store(true, Ordering::Relaxed);
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    eprintln!(
        "{} writes acknowledged, {} refused or failed around the kill",
        acknowledged.len(),
        failed.into_inner().unwrap()
    );
    assert!(acknowledged.len() > 100, "the load wrote too little");

    read_all(address[0], "2", &acknowledged);
    let behind = differing_ranges(&address);
    assert!(
        !behind.is_empty(),
        "n3 missed no write: the kill came too late"
    );

    for &node in &[2, 0, 1] {
        for line in run_round(address[node]) {
            eprintln!("round on n{}: {line}", node + 1);
        }
    }
    let repaired: Vec<u64> = address
        .iter()
        .map(|a| info_field(*a, "antientropy_keys_repaired"))
        .collect();
    eprintln!("keys repaired per node: {repaired:?}");
    assert!(repaired[2] > 0, "n3 was not repaired");
    assert!(differing_ranges(&address).is_empty());
    for node in address {
        read_all(node, "1", &acknowledged);
    }
}
