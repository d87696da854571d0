//! Start-up builds: serving unbuilt trees, building under writes, stopping.

use super::*;
use crate::antientropy::wire::AeMessage;
use crate::version::{VectorClock, VersionConfig};

fn state() -> RingState {
    crate::antientropy::test_support::ring_state(&["n1", "n2", "n3"], 3)
}

/// A store in a new temporary directory holding keys 0..`keys` (see [`write`]).
fn filled_store(keys: u64) -> (tempfile::TempDir, Arc<LocalStore>) {
    let directory = tempfile::tempdir().unwrap();
    let store = Arc::new(
        LocalStore::open(
            directory.path(),
            engine::Options::default(),
            VersionConfig::default(),
        )
        .unwrap(),
    );
    for index in 0..keys {
        write(&store, index);
    }
    (directory, store)
}

fn write(store: &LocalStore, index: u64) {
    let key = format!("key{index:06}");
    let value = Some(format!("value {index}").into_bytes());
    store
        .write_local(key.as_bytes(), &VectorClock::new(), value, "n1", index)
        .unwrap();
}

fn info(service: &AntiEntropy, field: &str) -> u64 {
    service
        .info_fields()
        .into_iter()
        .find(|(name, _)| *name == field)
        .map(|(_, value)| value)
        .unwrap()
}

/// A start that does not wait: the node serves unbuilt trees (peers are told so, and
/// skip it), writes go on while they build, and the trees swapped in then equal a
/// build from the store.
#[tokio::test]
async fn a_start_that_does_not_wait_builds_its_trees_while_writes_go_on() {
    let (_directory, store) = filled_store(20_000);
    let config = AntiEntropyConfig {
        startup_build_wait_ms: 0,
        ..AntiEntropyConfig::default()
    };
    let state = state();
    let replication = Replication::Total(3);
    // A current-thread runtime: the build task cannot have run before `open` returns.
    let service = AntiEntropy::open(
        NodeId::new("n1"),
        config.clone(),
        &state,
        &replication,
        Arc::clone(&store),
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    let unbuilt = service.trees().unwrap();
    assert!(!unbuilt.is_built());
    assert_eq!(info(&service, "antientropy_trees_building"), 1);
    assert_eq!(info(&service, "antientropy_ring_version"), 0);
    assert!(service.root_lines().unwrap()[0].contains("still building"));
    let planned = plan(&NodeId::new("n1"), &config, &state.current, 3, &replication).unwrap();
    let ranges: Vec<_> = planned.ranges().iter().map(|tree| tree.range).collect();
    let reply = super::super::responder::answer(
        &service,
        AeMessage::Roots {
            depth: planned.depth(),
            ring_version: 3,
            ranges: ranges.clone(),
        },
    )
    .unwrap();
    assert_eq!(
        reply,
        AeMessage::RootsReply {
            ring_version: NOT_BUILT,
            roots: vec![None; ranges.len()],
        }
    );
    // Writes while the build runs: new keys and overwrites, before and after its cursor.
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            for index in (0..20_000).step_by(3).chain(20_000..23_000) {
                write(&store, index + 1_000_000 * u64::from(index % 2 == 0));
            }
        })
    };
    let started = Instant::now();
    while !service.trees().unwrap().is_built() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "trees never built"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writer.join().unwrap();
    let built = service.trees().unwrap();
    assert_eq!(built.ring_version(), 3);
    assert_eq!(info(&service, "antientropy_trees_building"), 0);
    assert_eq!(info(&service, "antientropy_rebuilds"), 0);
    assert_eq!(built.update_errors(), 0);
    let expected = plan(&NodeId::new("n1"), &config, &state.current, 3, &replication).unwrap();
    let keys = expected.build(&store).unwrap();
    assert!(keys > 20_000, "{keys}");
    assert_eq!(built.keys(), keys);
    for (served, rebuilt) in built.ranges().iter().zip(expected.ranges()) {
        assert_eq!(*served.lock(), *rebuilt.lock());
    }
}

/// A stopped node's build gives up rather than scanning on.
#[tokio::test]
async fn stopping_a_starting_node_ends_its_build() {
    let (_directory, store) = filled_store(50_000);
    let config = AntiEntropyConfig {
        startup_build_wait_ms: 0,
        ..AntiEntropyConfig::default()
    };
    let service = AntiEntropy::open(
        NodeId::new("n1"),
        config,
        &state(),
        &Replication::Total(3),
        Arc::clone(&store),
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    service.stop();
    // The build task gives up at its first page, never swaps trees in, and lets go of the
    // store: only this test and the service hold it then.
    service.stopped().await;
    assert!(!service.trees().unwrap().is_built());
    assert_eq!(Arc::strong_count(&store), 2);
}
