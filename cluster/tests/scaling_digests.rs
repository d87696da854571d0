//! A join's digest streaming when the old replicas disagree: n1, the first source pulled,
//! missed writes while it was stopped (no hints, no anti-entropy, no read repair), so n4
//! gets n1's copies whole, then n2's digests show which of them are old or missing and n4
//! fetches exactly those from n2; n3's digests then match. Real `kvnode` processes on
//! 127.0.x.y, every child killed however the test ends.

mod antientropy_common;
mod common;

use antientropy_common::{
    differing_ranges, four_node_ring, info_field, wait_until, write_keys, Client, Reply,
};
use cluster::handoff::HandoffMode;
use cluster::launcher::LocalCluster;
use cluster::ring::{NodeId, Replication};
use common::{hinted_spec, open_store};

const KEYS: usize = 400;
/// Of the `KEYS` keys written with every node up, the first `OVERWRITTEN` are written
/// again while n1 is stopped.
const OVERWRITTEN: usize = 100;
const MISSED: usize = 200;

#[test]
fn a_join_fetches_the_sets_its_first_source_lacked_or_held_old() {
    let directory = tempfile::tempdir().unwrap();
    let mut spec = hinted_spec(directory.path(), 1, 4, HandoffMode::Strict);
    spec.base.antientropy.interval_ms = 0;
    spec.base.read_repair = false;
    let mut cluster = LocalCluster::start_holding_back(&spec, 1).expect("three nodes start");
    let address = cluster.client_addresses();
    let n4 = cluster.nodes()[3].config.clone();
    write_keys(&address[..3], "key", KEYS, 2);
    // A QUORUM write is acknowledged before its third replica has it: n1 stops only once
    // all three hold the same sets (equal Merkle roots), so n1's copies differ from the
    // others' by the writes below alone.
    wait_until("n1-n3 hold the same sets", || {
        differing_ranges(&address[..3]).is_empty()
    });

    // n1 misses new keys and new values of old ones (QUORUM: n2 and n3 acknowledge).
    cluster.stop_node(0).expect("n1 stops");
    let mut client = Client::connect(address[1]);
    for index in 0..OVERWRITTEN {
        client.ok(&["SET", &format!("key{index}"), &format!("new{index}")]);
    }
    write_keys(&address[1..3], "missed", MISSED, 2);
    wait_until("n2 and n3 hold the same sets", || {
        differing_ranges(&address[1..3]).is_empty()
    });
    // The coordinators' transports hold a put for an unreachable peer for one request
    // timeout, and deliver it if the peer comes back meanwhile: n1 restarts after that.
    std::thread::sleep(std::time::Duration::from_millis(
        3 * spec.base.request_timeout_ms,
    ));
    cluster.start_node(0).expect("n1 restarts");

    cluster.start_node(3).expect("n4 starts, joining");
    let n4_client = n4.client_address.to_string();
    let n4_peer = n4.peer_address.to_string();
    let join = Client::connect(address[1])
        .command(&["CLUSTER.JOIN", "n4", "dc1", &n4_client, &n4_peer])
        .lines();
    assert!(join[0].starts_with("joined n4 ring_version 3"), "{join:?}");

    let ring = four_node_ring(&spec);
    let n4_id = NodeId::new("n4");
    let gains = |key: &String| {
        ring.preference_list(key.as_bytes(), &Replication::Total(3))
            .unwrap()
            .contains(&n4_id)
    };
    let key = |index: usize| format!("key{index}");
    let missed = |index: usize| format!("missed{index}");
    let gained_old = (OVERWRITTEN..KEYS).map(key).filter(gains).count() as u64;
    let gained_overwritten = (0..OVERWRITTEN).map(key).filter(gains).count() as u64;
    let gained_missed = (0..MISSED).map(missed).filter(gains).count() as u64;
    assert!(gained_overwritten > 0 && gained_missed > 0);

    // n1 sent every key it held whole; n2 and n3 sent digests of the same keys and of the
    // missed ones; n4 fetched from n2 the ones n1 had old or lacked, and n3's then matched.
    let figure = |name: &str| info_field(n4.client_address, name);
    let fetched = figure("stream_rows_fetched");
    let digests = figure("stream_digests_received");
    let sets = figure("stream_rows_received");
    eprintln!(
        "n4: {sets} sets ({fetched} fetched), {digests} digests; gained {gained_old} unchanged, \
         {gained_overwritten} overwritten, {gained_missed} missed by n1"
    );
    assert_eq!(fetched, gained_overwritten + gained_missed);
    assert_eq!(sets, gained_old + gained_overwritten + fetched);
    assert_eq!(
        digests,
        2 * (gained_old + gained_overwritten + gained_missed)
    );
    assert_eq!(
        figure("stream_keys_new"),
        gained_old + gained_overwritten + gained_missed
    );

    // Every key reads its newest value through n4.
    let mut client = Client::connect(n4.client_address);
    for index in 0..KEYS {
        let want = if index < OVERWRITTEN { "new" } else { "v" };
        assert_eq!(
            client.command(&["GET", &key(index)]),
            Reply::Bulk(Some(format!("{want}{index}"))),
            "key{index}"
        );
    }

    // n4's own copies are n2's sets: a fetched set merged into n1's old copy leaves what
    // n2 holds (a plain SET with no context through n2 made its value a sibling of the
    // first one there too).
    let n2 = cluster.nodes()[1].config.clone();
    cluster.stop();
    let (store, n2_store) = (open_store(&n4), open_store(&n2));
    let all = (0..KEYS).map(key).chain((0..MISSED).map(missed));
    for name in all.filter(gains) {
        let held = store.read(name.as_bytes()).unwrap().expect("n4 holds it");
        assert_eq!(
            Some(&held),
            n2_store.read(name.as_bytes()).unwrap().as_ref(),
            "{name}"
        );
    }
    n2_store.close().unwrap();
    store.close().unwrap();
}
