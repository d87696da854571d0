use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::*;

fn siblings_config() -> VersionConfig {
    VersionConfig::default()
}

fn lww_config() -> VersionConfig {
    VersionConfig {
        policy: ConflictPolicy::LastWriteWins,
        ..VersionConfig::default()
    }
}

fn values(set: &SiblingSet) -> Vec<Option<Vec<u8>>> {
    let mut values: Vec<_> = set.versions.iter().map(|v| v.value.clone()).collect();
    values.sort();
    values
}

fn bytes(text: &str) -> Option<Vec<u8>> {
    Some(text.as_bytes().to_vec())
}

#[test]
fn classic_scenario_from_the_notes() {
    let config = siblings_config();
    let mut sx = SiblingSet::default();
    // D1 [Sx,1], then D2 [Sx,2] read-modify-write through Sx.
    let d1 = sx
        .write_with_context(&VectorClock::new(), "Sx", 1, bytes("D1"), &config)
        .unwrap();
    let d2 = sx
        .write_with_context(&sx.context(), "Sx", 2, bytes("D2"), &config)
        .unwrap();
    assert_eq!(d2.clock.compare(&d1.clock), Causality::After);
    assert_eq!(values(&sx), [bytes("D2")]);

    // D3 through Sy and D4 through Sz, both from D2's context, each on its own replica.
    let context_d2 = sx.context();
    let mut sy = sx.clone();
    let mut sz = sx.clone();
    let d3 = sy
        .write_with_context(&context_d2, "Sy", 3, bytes("D3"), &config)
        .unwrap();
    let d4 = sz
        .write_with_context(&context_d2, "Sz", 4, bytes("D4"), &config)
        .unwrap();
    assert_eq!(d3.clock.counter("Sx"), 2);
    assert_eq!(d3.clock.counter("Sy"), 1);
    assert_eq!(d4.clock.counter("Sz"), 1);
    assert_eq!(d3.clock.compare(&d4.clock), Causality::Concurrent);

    // Read repair at Sx sees both: siblings.
    sx.merge(&sy, &config).unwrap();
    sx.merge(&sz, &config).unwrap();
    assert_eq!(values(&sx), [bytes("D3"), bytes("D4")]);

    // The client resolves with the merged context; Sx coordinates: D5 [Sx,3][Sy,1][Sz,1].
    let d5 = sx
        .write_with_context(&sx.context(), "Sx", 5, bytes("D5"), &config)
        .unwrap();
    let counters: Vec<(&str, u64)> = d5
        .clock
        .entries()
        .iter()
        .map(|e| (e.node.as_str(), e.counter))
        .collect();
    assert_eq!(counters, [("Sx", 3), ("Sy", 1), ("Sz", 1)]);
    assert_eq!(values(&sx), [bytes("D5")]);
    // The replicas that only had D3 or D4 collapse too when D5 reaches them.
    sy.reconcile(d5.clone(), &config).unwrap();
    sz.merge(&sx, &config).unwrap();
    assert_eq!(sy, sx);
    assert_eq!(sz, sx);
}

/// Random causal histories: every version's clock is a merge of some earlier clocks plus a
/// fresh, never reused counter of its coordinator (what write_with_context guarantees).
fn random_history(rng: &mut SmallRng, count: usize) -> Vec<Version> {
    let nodes = ["n0", "n1", "n2", "n3"];
    let mut issued = [0u64; 4];
    let mut history: Vec<Version> = Vec::new();
    for step in 0..count {
        let mut clock = VectorClock::new();
        for earlier in &history {
            if rng.gen_bool(0.3) {
                clock.merge(&earlier.clock);
            }
        }
        let node = rng.gen_range(0..nodes.len());
        clock
            .advance_past(nodes[node], issued[node], step as u64)
            .unwrap();
        issued[node] = clock.counter(nodes[node]);
        history.push(Version {
            clock,
            timestamp_ms: rng.gen_range(0..20),
            writer: nodes[node].to_owned(),
            value: if rng.gen_bool(0.2) {
                None
            } else {
                Some(vec![step as u8])
            },
        });
    }
    history
}

/// Brute force: the versions no other one strictly descends.
fn brute_force_maximal(versions: &[Version]) -> Vec<Version> {
    let mut kept: Vec<Version> = versions
        .iter()
        .filter(|v| {
            !versions
                .iter()
                .any(|w| w.clock.compare(&v.clock) == Causality::After)
        })
        .cloned()
        .collect();
    kept.sort_by(canonical_order);
    kept.dedup();
    kept
}

#[test]
fn reconcile_and_merge_keep_exactly_the_maximal_versions() {
    let config = siblings_config();
    let mut rng = SmallRng::seed_from_u64(21);
    for _ in 0..300 {
        let count = rng.gen_range(1..14);
        let history = random_history(&mut rng, count);
        let mut delivered: Vec<Version> = history
            .iter()
            .filter(|_| rng.gen_bool(0.7))
            .cloned()
            .collect();
        delivered.shuffle(&mut rng);
        let mut set = SiblingSet::default();
        for version in &delivered {
            set.reconcile(version.clone(), &config).unwrap();
            // Duplicate deliveries change nothing.
            set.reconcile(version.clone(), &config).unwrap();
        }
        assert_eq!(set.versions, brute_force_maximal(&delivered));

        // Merging two replicas' sets equals reconciling everything, in either order.
        let (left, right) = delivered.split_at(delivered.len() / 2);
        let mut left_set = SiblingSet::default();
        let mut right_set = SiblingSet::default();
        left.iter()
            .for_each(|v| left_set.reconcile(v.clone(), &config).unwrap());
        right
            .iter()
            .for_each(|v| right_set.reconcile(v.clone(), &config).unwrap());
        let mut left_then_right = left_set.clone();
        left_then_right.merge(&right_set, &config).unwrap();
        right_set.merge(&left_set, &config).unwrap();
        assert_eq!(left_then_right, set);
        assert_eq!(right_set, set);
    }
}

#[test]
fn concurrent_writes_through_different_coordinators_are_siblings() {
    let config = siblings_config();
    let mut set = SiblingSet::default();
    let context = set.context();
    set.write_with_context(&context, "a", 1, bytes("from a"), &config)
        .unwrap();
    // Same (stale) context through another node: a sibling, not an overwrite.
    set.write_with_context(&context, "b", 2, bytes("from b"), &config)
        .unwrap();
    assert_eq!(values(&set), [bytes("from a"), bytes("from b")]);
    // A delete with the full context replaces both and stays as a tombstone.
    set.write_with_context(&set.context(), "a", 3, None, &config)
        .unwrap();
    assert_eq!(values(&set), [None]);
    assert!(set.is_deleted());
}

#[test]
fn a_concurrent_delete_is_a_sibling_of_an_update() {
    let config = siblings_config();
    let mut set = SiblingSet::default();
    set.write_with_context(&VectorClock::new(), "a", 1, bytes("v1"), &config)
        .unwrap();
    let context = set.context();
    set.write_with_context(&context, "a", 2, bytes("v2"), &config)
        .unwrap();
    set.write_with_context(&context, "b", 3, None, &config)
        .unwrap();
    assert_eq!(values(&set), [None, bytes("v2")]);
    assert!(!set.is_deleted());
}

#[test]
fn same_coordinator_blind_writes_get_distinct_counters() {
    // The documented limit of per-node clocks: the later blind write through the same node
    // descends the earlier one. Without distinct counters they would tie instead, and
    // replicas holding different ones would never converge.
    let config = siblings_config();
    let mut set = SiblingSet::default();
    let first = set
        .write_with_context(&VectorClock::new(), "a", 1, bytes("first"), &config)
        .unwrap();
    let second = set
        .write_with_context(&VectorClock::new(), "a", 2, bytes("second"), &config)
        .unwrap();
    assert_eq!(second.clock.compare(&first.clock), Causality::After);
    assert_eq!(values(&set), [bytes("second")]);
}

#[test]
fn writes_past_the_sibling_bound_are_refused_without_change() {
    let config = VersionConfig {
        siblings_max: 3,
        ..siblings_config()
    };
    let mut set = SiblingSet::default();
    for node in ["a", "b", "c"] {
        set.write_with_context(&VectorClock::new(), node, 1, bytes(node), &config)
            .unwrap();
    }
    let before = set.clone();
    let refused = set.write_with_context(&VectorClock::new(), "d", 2, bytes("d"), &config);
    assert!(matches!(
        refused,
        Err(Error::LimitExceeded {
            size: 4,
            limit: 3,
            ..
        })
    ));
    assert_eq!(set, before);
    // A write that resolves the siblings is always accepted.
    set.write_with_context(&set.context(), "d", 3, bytes("resolved"), &config)
        .unwrap();
    assert_eq!(values(&set), [bytes("resolved")]);
}

#[test]
fn replica_side_merges_refuse_only_past_the_stored_ceiling() {
    let config = siblings_config();
    let concurrent = |index: usize| {
        let mut clock = VectorClock::new();
        clock.increment(&format!("node{index}"), 0).unwrap();
        Version {
            clock,
            timestamp_ms: 0,
            writer: "w".into(),
            value: None,
        }
    };
    let mut set = SiblingSet {
        versions: (0..SIBLINGS_STORED_MAX).map(concurrent).collect(),
    };
    // Above siblings_max (64) but below the ceiling: kept, nothing is dropped.
    assert!(set.versions.len() > config.siblings_max);
    let before = set.clone();
    let refused = set.reconcile(concurrent(SIBLINGS_STORED_MAX), &config);
    assert!(matches!(refused, Err(Error::LimitExceeded { .. })));
    assert_eq!(set, before);
}

#[test]
fn write_clocks_are_pruned_but_keep_the_coordinator() {
    let config = siblings_config();
    let mut context = VectorClock::new();
    for index in 0..15 {
        context.increment(&format!("old{index:02}"), index).unwrap();
    }
    let mut set = SiblingSet::default();
    let version = set
        .write_with_context(&context, "zz-coordinator", 0, bytes("v"), &config)
        .unwrap();
    assert_eq!(version.clock.len(), config.clock_entries_max);
    assert_eq!(version.clock.counter("zz-coordinator"), 1);
    // The oldest entries went.
    assert_eq!(version.clock.counter("old00"), 0);
    assert_eq!(version.clock.counter("old14"), 1);
}

#[test]
fn last_write_wins_keeps_the_latest_and_breaks_ties_by_writer() {
    let config = lww_config();
    let version = |node: &str, timestamp_ms: u64| {
        let mut clock = VectorClock::new();
        clock.increment(node, timestamp_ms).unwrap();
        Version {
            clock,
            timestamp_ms,
            writer: node.to_owned(),
            value: bytes(node),
        }
    };
    let mut set = SiblingSet::default();
    set.reconcile(version("b", 10), &config).unwrap();
    set.reconcile(version("a", 5), &config).unwrap();
    assert_eq!(values(&set), [bytes("b")]);
    set.reconcile(version("c", 10), &config).unwrap();
    assert_eq!(
        values(&set),
        [bytes("c")],
        "tie at 10 ms goes to the higher writer"
    );
    let mut other = SiblingSet::single(version("a", 11));
    other.merge(&set, &config).unwrap();
    set.merge(&SiblingSet::single(version("a", 11)), &config)
        .unwrap();
    assert_eq!(set, other);
    assert_eq!(values(&set), [bytes("a")]);
}

#[test]
fn last_write_wins_loses_concurrent_writes_but_not_read_modify_writes() {
    let config = lww_config();
    let mut set = SiblingSet::default();
    set.write_with_context(&VectorClock::new(), "fast", 1000, bytes("ahead"), &config)
        .unwrap();
    // A blind write minted on a replica that had not seen "ahead", by a node whose clock
    // runs behind, is lost when the two meet: the documented cost.
    let mut elsewhere = SiblingSet::default();
    elsewhere
        .write_with_context(&VectorClock::new(), "slow", 900, bytes("lost"), &config)
        .unwrap();
    set.merge(&elsewhere, &config).unwrap();
    assert_eq!(values(&set), [bytes("ahead")]);
    // The same node, having read first, wins: its timestamp is raised past what it read.
    let written = set
        .write_with_context(&set.context(), "slow", 900, bytes("read first"), &config)
        .unwrap();
    assert_eq!(written.timestamp_ms, 1001);
    assert_eq!(values(&set), [bytes("read first")]);
}

#[test]
fn a_write_minted_after_another_wins_in_the_same_millisecond() {
    // "n2" sorts after "n1": before timestamps were raised above every stored version, the
    // later write through n1 lost the (timestamp, writer) order to the earlier one via n2.
    for config in [lww_config(), VersionConfig::default()] {
        let mut set = SiblingSet::default();
        set.write_with_context(&VectorClock::new(), "n2", 500, bytes("first"), &config)
            .unwrap();
        let later = set
            .write_with_context(&VectorClock::new(), "n1", 500, bytes("second"), &config)
            .unwrap();
        assert_eq!(later.timestamp_ms, 501);
        let newest = set
            .versions
            .iter()
            .max_by(|a, b| (a.timestamp_ms, &a.writer).cmp(&(b.timestamp_ms, &b.writer)))
            .unwrap();
        assert_eq!(newest.value.as_deref(), Some(&b"second"[..]), "{config:?}");
    }
}

/// A stored version whose clock names `nodes`, each at counter 1, updated in list order.
fn version_naming(nodes: &[String], value: &str) -> Version {
    let mut clock = VectorClock::new();
    for (index, node) in nodes.iter().enumerate() {
        clock.increment(node, index as u64).unwrap();
    }
    Version {
        clock,
        timestamp_ms: 0,
        writer: "w".into(),
        value: bytes(value),
    }
}

#[test]
fn pruning_drops_history_no_stored_version_carries_first() {
    let config = siblings_config();
    let stored: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let mut set = SiblingSet::single(version_naming(&stored, "stored"));
    // The client's context also carries newer history from versions gone from this replica.
    let mut context = set.context();
    for index in 0..12 {
        context
            .increment(&format!("gone{index:02}"), 100 + index)
            .unwrap();
    }
    let written = set
        .write_with_context(&context, "z", 1000, bytes("new"), &config)
        .unwrap();
    assert_eq!(written.clock.len(), config.clock_entries_max);
    // The oldest entries (a, b, c) are kept because the stored version needs them.
    assert_eq!(values(&set), [bytes("new")]);
}

#[test]
fn siblings_naming_more_nodes_than_the_bound_cannot_be_collapsed() {
    // The documented cost of pruning: a stored version naming clock_entries_max nodes,
    // replaced through an 11th node, stays as a spurious sibling, and no later write can
    // name all 11 nodes to collapse the pair. A larger bound cures it.
    let nodes: Vec<String> = (0..10).map(|index| format!("n{index}")).collect();
    for (clock_entries_max, expected_after_resolving) in [(10, 2), (11, 1)] {
        let config = VersionConfig {
            clock_entries_max,
            ..siblings_config()
        };
        let mut set = SiblingSet::single(version_naming(&nodes, "old"));
        set.write_with_context(&set.context(), "z", 100, bytes("new"), &config)
            .unwrap();
        let spurious = if clock_entries_max == 10 { 2 } else { 1 };
        assert_eq!(set.versions.len(), spurious, "bound {clock_entries_max}");
        // The client reads both and resolves through a node the old clock names.
        set.write_with_context(&set.context(), "n5", 200, bytes("resolved"), &config)
            .unwrap();
        assert_eq!(set.versions.len(), expected_after_resolving);
        assert!(set.versions.iter().any(|v| v.value == bytes("resolved")));
    }
}

#[test]
fn last_write_wins_converges_on_random_histories() {
    let config = lww_config();
    let mut rng = SmallRng::seed_from_u64(23);
    for _ in 0..300 {
        let count = rng.gen_range(1..12);
        let mut delivered = random_history(&mut rng, count);
        delivered.shuffle(&mut rng);
        let winner = delivered
            .iter()
            .max_by(|a, b| last_write_order(a, b))
            .cloned();
        let (left, right) = delivered.split_at(rng.gen_range(0..=delivered.len()));
        let mut left_set = SiblingSet::default();
        let mut right_set = SiblingSet::default();
        for version in left {
            left_set.reconcile(version.clone(), &config).unwrap();
        }
        for version in right {
            right_set.reconcile(version.clone(), &config).unwrap();
        }
        let mut merged = left_set.clone();
        merged.merge(&right_set, &config).unwrap();
        right_set.merge(&left_set, &config).unwrap();
        assert_eq!(merged, right_set);
        assert_eq!(merged.versions, winner.into_iter().collect::<Vec<_>>());
    }
}
