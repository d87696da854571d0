//! Scaling with real `kvnode` processes on 127.0.x.y (launcher [`LocalCluster`], every
//! child killed however the test ends): a fourth node joins a three-node N=3 cluster under
//! a QUORUM write and read load, then a node leaves under load.
//!
//! Read repair is off, so what a node's store holds afterwards came from writes and
//! streaming alone; every store is opened after the nodes stop and must hold every key its
//! final ring gives it.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cluster::config::NodeConfig;
use cluster::launcher::{ClusterSpec, LocalCluster};
use cluster::protocol::Consistency;
use cluster::ring::{Member, NodeId, Replication, Ring};
use common::{figure, info_number, open_store, process_spec, Client};

/// Bound on any one client reply (a ring change answers when it is done).
const REPLY_TIMEOUT: Duration = Duration::from_secs(180);
/// Keys written before the join.
const PRELOAD: usize = 3000;
/// Writer and reader threads of the background load.
const WRITERS: usize = 2;
const VNODES: u32 = 64;

/// A client connection whose replies are bounded by [`REPLY_TIMEOUT`]; its `command` reads
/// simple replies with their type byte, bulk payloads bare, `(nil)` for a null bulk, arrays
/// as their elements joined by newlines.
fn connect(address: SocketAddr) -> Client {
    Client::connect_with_timeout(address, REPLY_TIMEOUT)
}

fn info_field(address: SocketAddr, field: &str) -> u64 {
    info_number(
        &connect(address).command(&["INFO", "scaling", "repair"]),
        field,
    )
}

fn ring(ids: &[&str]) -> Ring {
    Ring::new(ids.iter().map(|id| Member::new(*id, "dc1")), VNODES).unwrap()
}

fn replicas(ring: &Ring, key: &str) -> Vec<NodeId> {
    ring.preference_list(key.as_bytes(), &Replication::Total(3))
        .unwrap()
}

/// Acknowledged writes (key -> value) and the load's errors.
#[derive(Default)]
struct Load {
    written: Mutex<BTreeMap<String, String>>,
    errors: Mutex<Vec<String>>,
}

/// Writes new keys and reads back earlier ones through `targets` until `stop`; every
/// error reply and every wrong value is recorded.
fn run_load(load: &Load, targets: &[SocketAddr], stop: &AtomicBool, tag: &str) {
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            scope.spawn(move || {
                let mut client = connect(targets[writer % targets.len()]);
                let mut index = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("{tag}-{writer}-{index}");
                    let value = format!("v{index}");
                    let reply = client.command(&["SET", &key, &value]);
                    if reply == "+OK" {
                        load.written.lock().unwrap().insert(key.clone(), value);
                    } else {
                        load.errors
                            .lock()
                            .unwrap()
                            .push(format!("SET {key}: {reply}"));
                    }
                    index += 1;
                }
            });
        }
        scope.spawn(move || {
            let mut clients: Vec<Client> = targets.iter().map(|a| connect(*a)).collect();
            let mut round = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let sample: Vec<(String, String)> = {
                    let written = load.written.lock().unwrap();
                    let step = (written.len() / 50).max(1);
                    written
                        .iter()
                        .skip(round % step)
                        .step_by(step)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                };
                for (key, value) in sample {
                    let client = &mut clients[round % targets.len()];
                    let reply = client.command(&["GET", &key]);
                    if reply != value {
                        load.errors
                            .lock()
                            .unwrap()
                            .push(format!("GET {key}: {reply}"));
                    }
                    round += 1;
                }
            }
        });
    });
}

/// Runs `change` on a thread while the load runs on `targets`; returns the change's reply,
/// its wall time and the number of keys acknowledged before it started.
fn change_under_load(
    load: &Load,
    targets: &[SocketAddr],
    tag: &str,
    change: impl FnOnce() -> String + Send,
) -> (String, Duration, usize) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let loader = scope.spawn(|| run_load(load, targets, &stop, tag));
        std::thread::sleep(Duration::from_millis(500));
        let before = load.written.lock().unwrap().len();
        let started = Instant::now();
        let reply = change();
        let took = started.elapsed();
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        loader.join().unwrap();
        (reply, took, before)
    })
}

/// Waits (bounded) until no node at `addresses` holds a hint; prints how many writes were
/// acknowledged with hints.
fn wait_for_no_hints(addresses: &[SocketAddr]) {
    let started = Instant::now();
    while addresses
        .iter()
        .any(|a| info_field(*a, "hints_pending") > 0)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "hints still pending after 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let hinted: u64 = addresses
        .iter()
        .map(|a| info_field(*a, "hinted_writes"))
        .sum();
    eprintln!("writes acknowledged with a hint so far: {hinted}");
}

/// Waits (bounded) until `CLUSTER.MEMBERS` at `address` has a line starting with `start`.
fn wait_for_member_line(address: SocketAddr, start: &str) {
    let started = Instant::now();
    loop {
        let members = connect(address).command(&["CLUSTER.MEMBERS"]);
        if members.lines().any(|line| line.starts_with(start)) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no member line {start:?} within 60 s: {members}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_node_joins_then_one_leaves_under_quorum_load() {
    let directory = tempfile::tempdir().unwrap();
    let spec = spec(directory.path(), 4);
    let mut cluster = LocalCluster::start_holding_back(&spec, 1).expect("three nodes start");
    let address = cluster.client_addresses();
    let configs: Vec<NodeConfig> = cluster.nodes().iter().map(|n| n.config.clone()).collect();
    let load = Load::default();

    let mut client = connect(address[0]);
    for index in 0..PRELOAD {
        let (key, value) = (format!("pre{index}"), format!("p{index}"));
        assert_eq!(client.command(&["SET", &key, &value]), "+OK");
        load.written.lock().unwrap().insert(key, value);
    }
    let n4 = &configs[3];
    let join = [
        "CLUSTER.JOIN".to_string(),
        "n4".into(),
        "dc1".into(),
        n4.client_address.to_string(),
        n4.peer_address.to_string(),
    ];
    let join_words: Vec<&str> = join.iter().map(String::as_str).collect();
    // n4 is not running yet: the change stops at its first phase, and the cluster keeps
    // serving (writes to both rings, with hints for n4).
    let reply = connect(address[0]).command(&join_words);
    assert!(
        reply.starts_with("-ERR ring change stopped at version 1 (phase streaming)")
            && reply.contains("n4"),
        "{reply}"
    );
    assert_eq!(info_field(address[1], "ring_phase"), 1);
    for index in 0..20 {
        let (key, value) = (format!("stuck{index}"), format!("s{index}"));
        assert_eq!(client.command(&["SET", &key, &value]), "+OK");
        assert_eq!(client.command(&["GET", &key]), value);
        load.written.lock().unwrap().insert(key, value);
    }
    let reply = connect(address[2]).command(&["CLUSTER.REMOVE", "n1"]);
    assert!(reply.contains("repeat that change's command"), "{reply}");

    cluster.start_node(3).expect("n4 starts, joining");
    let topology = connect(address[3]).command(&["CLUSTER.TOPOLOGY"]);
    assert!(topology.contains("members 3 "), "{topology}");

    // The same command resumes the join, through n1 while clients use n1..n3.
    let (reply, took, before) = change_under_load(&load, &address[..3], "join", || {
        connect(address[0]).command(&join_words)
    });
    assert!(reply.starts_with("joined n4 ring_version 3"), "{reply}");
    let errors = load.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} errors during the join: {errors:?}",
        errors.len()
    );
    let four = ring(&["n1", "n2", "n3", "n4"]);
    let n4_id = NodeId::new("n4");
    let written = load.written.lock().unwrap().clone();
    let in_range = |keys: &mut dyn Iterator<Item = &String>| {
        keys.filter(|key| replicas(&four, key).contains(&n4_id))
            .count()
    };
    // (The `stuck` keys may reach n4 by hint delivery first.)
    let preload_gained = in_range(&mut written.keys().filter(|k| k.starts_with("pre")));
    let all_gained = in_range(&mut written.keys());
    let share = all_gained as f64 / written.len() as f64;
    let moved = figure(&reply, "keys_moved");
    eprintln!(
        "JOIN: K={} keys before ({} at the end), N=3 replicas, 3 -> 4 nodes: keys_moved {moved}, \
         rows_streamed {}, bytes_streamed {}, n4 replicates {:.3} of the keys (K x share = {:.0}), \
         ratio {:.2}, join took {took:?} (driver: {} ms, streaming {} ms)",
        before,
        written.len(),
        figure(&reply, "rows_streamed"),
        figure(&reply, "bytes_streamed"),
        share,
        before as f64 * share,
        moved as f64 / (before as f64 * share),
        figure(&reply, "duration_ms"),
        figure(&reply, "stream_ms"),
    );
    // Every preloaded key n4 replicates was streamed to it; keys written during the join
    // may have reached it by a write first.
    assert!(
        moved as usize >= preload_gained,
        "{moved} < {preload_gained}"
    );
    assert!(moved as usize <= all_gained, "{moved} > {all_gained}");
    // Streaming moves the keys written before the change began: the preload. The load
    // runs while the ring is already at its streaming phase (writes go to both rings), so
    // its keys reach n4 by writes, however many it wrote before `before` was taken (a
    // release build writes thousands in that half second, a debug build tens).
    let expected = PRELOAD as f64 * share;
    assert!(
        (0.5 * expected..=2.0 * expected).contains(&(moved as f64)),
        "{moved} keys moved, preload x share is {expected:.0}"
    );
    assert_eq!(info_field(address[3], "stream_keys_new"), moved);
    // A key comes whole from the first source pulled that has it (n1: N=3 of three nodes)
    // and as a digest from the others; only the sets whose digest differed from n4's copy
    // (keys the load wrote meanwhile) were fetched. Every source used to send every key.
    let (rows, digests, fetched) = (
        figure(&reply, "rows_streamed"),
        info_field(address[3], "stream_digests_received"),
        info_field(address[3], "stream_rows_fetched"),
    );
    eprintln!("JOIN: {rows} sets streamed, {fetched} of them fetched after {digests} digests");
    assert!(
        digests >= preload_gained as u64,
        "{digests} digests, {preload_gained} preloaded keys gained"
    );
    assert!(
        rows <= all_gained as u64 + fetched,
        "{rows} sets streamed for {all_gained} keys gained ({fetched} fetched)"
    );
    assert_eq!(info_field(address[1], "ring_version"), 3);
    let topology = connect(address[1]).command(&["CLUSTER.TOPOLOGY"]);
    assert!(
        topology.contains("members 4 ") && topology.contains("\nn4 dc1"),
        "{topology}"
    );
    // n4 gossips with the members now that they accept it.
    wait_for_member_line(address[0], "n4 dc1 alive");

    // n2 leaves while clients use n1, n3 and n4.
    let targets = [address[0], address[2], address[3]];
    let (reply, took, before) = change_under_load(&load, &targets, "leave", || {
        connect(address[1]).command(&["CLUSTER.LEAVE"])
    });
    assert!(reply.starts_with("n2 left ring_version 6"), "{reply}");
    let errors = load.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} errors during the leave: {errors:?}",
        errors.len()
    );
    let written = load.written.lock().unwrap().clone();
    let n2_id = NodeId::new("n2");
    let had_n2 = written
        .keys()
        .filter(|key| replicas(&four, key).contains(&n2_id))
        .count();
    let moved = figure(&reply, "keys_moved");
    eprintln!(
        "LEAVE: K={before} keys before ({} at the end), 4 -> 3 nodes: keys_moved {moved} \
         (keys that lacked a new replica), rows_streamed {}, bytes_streamed {}, keys n2 \
         replicated {had_n2}, leave took {took:?} (driver: {} ms, streaming {} ms)",
        written.len(),
        figure(&reply, "rows_streamed"),
        figure(&reply, "bytes_streamed"),
        figure(&reply, "duration_ms"),
        figure(&reply, "stream_ms"),
    );
    assert!(moved as usize <= had_n2, "{moved} of {had_n2}");
    // Preloaded keys whose four-node replicas were n1, n2 and n3 were never on n4.
    let n4_lacked = written
        .keys()
        .filter(|key| key.starts_with("pre") && !replicas(&four, key).contains(&n4_id))
        .count();
    assert!(moved as usize >= n4_lacked, "{moved} < {n4_lacked}");
    wait_for_member_line(address[0], "n2 dc1 left");
    // Writes acknowledged with a hint (a put that timed out on the loaded machine) reach
    // their replica when the hint is delivered: n2 hands its hints on before it stops.
    wait_for_no_hints(&address);
    cluster.stop_node(1).expect("n2 stops after leaving");

    // Every acknowledged key is readable at QUORUM through every remaining node.
    let mut clients: Vec<Client> = targets.iter().map(|a| connect(*a)).collect();
    for (index, (key, value)) in written.iter().enumerate() {
        let reply = clients[index % 3].command(&["GET", key]);
        assert_eq!(&reply, value, "{key}");
    }
    // What the stores hold (three nodes, three replicas: every node replicates every key).
    // A write acknowledged by a quorum whose third put timed out has no fallback node to
    // take a hint here, and read repair is off: every key must be on at least two stores.
    // n4 never saw a preloaded key except by streaming (the join's, or the leave's for
    // keys whose four-node replicas were n1, n2 and n3): it must hold them all.
    std::thread::sleep(Duration::from_millis(500));
    wait_for_no_hints(&targets);
    let mut holders: BTreeMap<&str, usize> = BTreeMap::new();
    for index in [0, 2, 3] {
        cluster.stop_node(index).expect("stop");
        let store = open_store(&configs[index]);
        let id = configs[index].node_id.clone();
        let mut held = 0;
        for (key, value) in &written {
            let Some(set) = store.read(key.as_bytes()).unwrap() else {
                assert!(!(id == "n4" && key.starts_with("pre")), "n4 lacks {key}");
                continue;
            };
            assert!(
                set.versions
                    .iter()
                    .any(|version| version.value.as_deref() == Some(value.as_bytes())),
                "{id} has a wrong {key}"
            );
            *holders.entry(key.as_str()).or_default() += 1;
            held += 1;
        }
        eprintln!("{id} holds {held} of the {} keys", written.len());
    }
    assert_on_a_quorum(&holders, written.keys());
    // A restarted node keeps the ring it changed to, not its configured member list.
    cluster.start_node(0).expect("n1 restarts");
    let topology = connect(address[0]).command(&["CLUSTER.TOPOLOGY"]);
    assert!(
        topology.contains("members 3 ")
            && topology.contains("ring_version 6")
            && topology.contains("\nn4 dc1")
            && !topology.contains("\nn2 dc1"),
        "{topology}"
    );
}

/// Every key of `keys` is on at least 2 of its 3 replicas (`holders`: key to how many
/// stores hold it); prints how many are on all three.
fn assert_on_a_quorum<'a>(
    holders: &BTreeMap<&str, usize>,
    keys: impl ExactSizeIterator<Item = &'a String>,
) {
    let total = keys.len();
    for key in keys {
        let count = holders.get(key.as_str()).copied().unwrap_or(0);
        assert!(count >= 2, "{key} is on {count} of its 3 replicas");
    }
    let on_all = holders.values().filter(|&&count| count == 3).count();
    eprintln!("{on_all} of {total} keys are on all three replicas");
}

fn spec(directory: &std::path::Path, nodes: usize) -> ClusterSpec {
    let mut spec = process_spec(
        directory,
        1,
        nodes,
        Replication::Total(3),
        Consistency::Quorum,
    );
    spec.base.vnodes_per_weight = VNODES;
    spec.base.read_repair = false;
    spec.base.hints.delivery_interval_ms = 200;
    spec
}

#[test]
fn a_dead_node_is_removed_and_its_ranges_come_from_the_other_replicas() {
    let directory = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::start(&spec(directory.path(), 4)).expect("four nodes start");
    let address = cluster.client_addresses();
    let configs: Vec<NodeConfig> = cluster.nodes().iter().map(|n| n.config.clone()).collect();
    let load = Load::default();
    let mut client = connect(address[0]);
    for index in 0..1000 {
        let (key, value) = (format!("pre{index}"), format!("p{index}"));
        assert_eq!(client.command(&["SET", &key, &value]), "+OK");
        load.written.lock().unwrap().insert(key, value);
    }
    cluster.kill(3).expect("n4 crashes");
    let reply = connect(address[0]).command(&["CLUSTER.REMOVE", "n1"]);
    assert!(reply.contains("CLUSTER.LEAVE"), "{reply}");
    let reply = connect(address[0]).command(&["CLUSTER.REMOVE", "n9"]);
    assert!(reply.contains("n9 is not a member"), "{reply}");
    let (reply, took, before) = change_under_load(&load, &address[..3], "remove", || {
        connect(address[0]).command(&["CLUSTER.REMOVE", "n4"])
    });
    assert!(reply.starts_with("removed n4 ring_version 3"), "{reply}");
    // The removed node is not pulled from (it is gone): no source failed, and its keys
    // came from the other replicas.
    assert!(!reply.contains("failed_sources"), "{reply}");
    let errors = load.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} errors during the removal: {errors:?}",
        errors.len()
    );
    eprintln!(
        "REMOVE: K={before}, 4 -> 3 nodes with n4 dead: keys_moved {}, rows_streamed {}, took {took:?} (streaming {} ms)",
        figure(&reply, "keys_moved"),
        figure(&reply, "rows_streamed"),
        figure(&reply, "stream_ms"),
    );
    let written = load.written.lock().unwrap().clone();
    // Each preloaded key n4 replicated had a new replica that lacked it (unless a hint for
    // a timed-out put went there).
    let four = ring(&["n1", "n2", "n3", "n4"]);
    let n4_id = NodeId::new("n4");
    let had_n4 = written
        .keys()
        .filter(|key| key.starts_with("pre") && replicas(&four, key).contains(&n4_id))
        .count();
    let moved = figure(&reply, "keys_moved") as usize;
    assert!(
        moved >= had_n4 * 9 / 10 && moved <= written.len(),
        "{moved} keys moved, {had_n4} preloaded keys had n4 as a replica"
    );
    let mut clients: Vec<Client> = address[..3].iter().map(|a| connect(*a)).collect();
    for (index, (key, value)) in written.iter().enumerate() {
        assert_eq!(&clients[index % 3].command(&["GET", key]), value, "{key}");
    }
    drop(clients);
    // Hints for n4 stay pending (it is gone); hints for the others are delivered within a
    // few 200 ms delivery rounds.
    std::thread::sleep(Duration::from_secs(2));
    // Three nodes, three replicas: every key on at least a quorum of the stores (see the
    // other test), most on all three.
    let mut holders: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, config) in configs.iter().enumerate().take(3) {
        cluster.stop_node(index).expect("stop");
        let store = open_store(config);
        for key in written.keys() {
            if store.read(key.as_bytes()).unwrap().is_some() {
                *holders.entry(key.as_str()).or_default() += 1;
            }
        }
    }
    assert_on_a_quorum(&holders, written.keys());
}
