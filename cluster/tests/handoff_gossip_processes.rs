//! Hinted handoff consults the gossip failure detector: once gossip holds a killed
//! replica Down, writes for it go straight to a fallback (no direct attempt, counted in
//! `hint_gossip_down_skips`), and delivery waits until gossip sees it back, then levels
//! it (equal Merkle roots); an anti-entropy round skips it meanwhile. Real `kvnode` processes on 127.0.x.y, killed however the test
//! ends.

mod antientropy_common;
mod common;

use std::time::{Duration, Instant};

use antientropy_common::{differing_ranges, info_field, spec, wait_until, write_keys, Client};
use cluster::launcher::LocalCluster;
use common::fast_gossip;

/// n1's view of `id`'s status from `CLUSTER.MEMBERS`.
fn status(address: std::net::SocketAddr, id: &str) -> String {
    Client::connect(address)
        .command(&["CLUSTER.MEMBERS"])
        .lines()
        .into_iter()
        .find_map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            (words[0] == id).then(|| words[2].to_string())
        })
        .unwrap_or_else(|| panic!("{id} is not a member"))
}

#[test]
fn writes_skip_a_replica_gossip_holds_down_and_hints_reach_it_when_back() {
    let directory = tempfile::tempdir().unwrap();
    let mut spec = spec(directory.path(), 1, 4, 0);
    spec.base.membership = fast_gossip(2);
    // A failed call marks a node down only briefly: what keeps n4 skipped is gossip.
    spec.base.hints.down_recheck_ms = 100;
    let mut cluster = LocalCluster::start(&spec).expect("four nodes start");
    let address = cluster.client_addresses();
    wait_until("n4 alive in n1's view", || {
        status(address[0], "n4") == "alive"
    });

    cluster.kill(3).expect("SIGKILL n4");
    let detected = wait_until("n4 down in n1's view", || {
        status(address[0], "n4") == "down"
    });
    eprintln!("gossip held n4 down {detected:?} after the kill");
    // One gossip tick for the stored status to follow the view.
    std::thread::sleep(Duration::from_millis(300));

    const KEYS: usize = 500;
    let started = Instant::now();
    write_keys(&address[..1], "key", KEYS, 2);
    eprintln!(
        "{KEYS} writes through n1 with n4 down took {:?}",
        started.elapsed()
    );
    let skips = info_field(address[0], "hint_gossip_down_skips");
    let hinted = info_field(address[0], "hinted_writes");
    eprintln!("n1: {hinted} hinted writes, {skips} direct sends skipped by gossip");
    assert!(hinted > KEYS as u64 / 2, "{hinted} hinted writes");
    // Most of them without a direct attempt (a write racing the status change may still
    // try n4 once and be refused).
    assert!(
        skips > hinted / 2,
        "{skips} skips for {hinted} hinted writes"
    );

    // An anti-entropy round does not wait on n4 either.
    let round = antientropy_common::run_round(address[0]);
    assert!(
        round
            .iter()
            .any(|line| line == "n4 skipped: gossip holds it down"),
        "{round:?}"
    );
    assert_eq!(info_field(address[0], "antientropy_peers_skipped"), 1);

    cluster.restart(3).expect("restart n4");
    wait_until("hint delivery", || {
        address.iter().all(|a| info_field(*a, "hints_pending") == 0)
    });
    wait_until("equal roots", || differing_ranges(&address).is_empty());
}
