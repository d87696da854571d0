use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;

/// A clock from `(node, counter, last_update_ms)` triples in any order.
fn clock(entries: &[(&str, u64, u64)]) -> VectorClock {
    let mut entries: Vec<ClockEntry> = entries
        .iter()
        .map(|&(node, counter, last_update_ms)| ClockEntry {
            node: node.to_owned(),
            counter,
            last_update_ms,
        })
        .collect();
    entries.sort_by(|a, b| a.node.cmp(&b.node));
    VectorClock::from_sorted_entries(entries)
}

fn random_clock(rng: &mut SmallRng) -> VectorClock {
    let nodes = ["a", "b", "c", "d", "e"];
    let mut entries: Vec<(&str, u64, u64)> = Vec::new();
    for node in nodes {
        if rng.gen_bool(0.6) {
            entries.push((node, rng.gen_range(1..4), rng.gen_range(0..3)));
        }
    }
    clock(&entries)
}

#[test]
fn causality_cases() {
    let d1 = clock(&[("s0", 1, 0), ("s1", 1, 0)]);
    let d2 = clock(&[("s0", 1, 0), ("s1", 2, 0)]);
    let d3 = clock(&[("s0", 2, 0), ("s1", 1, 0)]);
    assert_eq!(d1.compare(&d1.clone()), Causality::Equal);
    assert_eq!(d1.compare(&d2), Causality::Before);
    assert_eq!(d2.compare(&d1), Causality::After);
    assert_eq!(d2.compare(&d3), Causality::Concurrent);
    assert!(d2.descends(&d1) && d1.descends(&d1) && !d1.descends(&d2));
    // A missing entry counts as 0, and last_update_ms plays no part.
    let empty = VectorClock::new();
    assert_eq!(empty.compare(&d1), Causality::Before);
    assert_eq!(
        clock(&[("x", 1, 5)]).compare(&clock(&[("x", 1, 9)])),
        Causality::Equal
    );
    assert_eq!(
        clock(&[("x", 1, 0)]).compare(&clock(&[("y", 1, 0)])),
        Causality::Concurrent
    );
}

#[test]
fn compare_is_antisymmetric_on_random_clocks() {
    let mut rng = SmallRng::seed_from_u64(7);
    for _ in 0..2000 {
        let (left, right) = (random_clock(&mut rng), random_clock(&mut rng));
        let expected = match left.compare(&right) {
            Causality::Equal => Causality::Equal,
            Causality::Before => Causality::After,
            Causality::After => Causality::Before,
            Causality::Concurrent => Causality::Concurrent,
        };
        assert_eq!(right.compare(&left), expected, "{left:?} vs {right:?}");
    }
}

#[test]
fn increment_creates_then_advances_entries() {
    let mut clock = VectorClock::new();
    clock.increment("Sx", 10).unwrap();
    clock.increment("Sx", 20).unwrap();
    clock.increment("Sa", 30).unwrap();
    assert_eq!(clock.counter("Sx"), 2);
    assert_eq!(clock.counter("Sa"), 1);
    assert_eq!(clock.counter("Sz"), 0);
    assert_eq!(clock.entries()[0].node, "Sa");
    assert_eq!(clock.entries()[1].last_update_ms, 20);
    assert!(clock.increment("", 1).is_err());
    assert!(clock.increment(&"n".repeat(256), 1).is_err());
    let mut full = self::clock(&[("x", u64::MAX, 0)]);
    assert!(full.increment("x", 1).is_err());
}

#[test]
fn merge_is_commutative_associative_idempotent() {
    let mut rng = SmallRng::seed_from_u64(11);
    let merged = |left: &VectorClock, right: &VectorClock| {
        let mut result = left.clone();
        result.merge(right);
        result
    };
    for _ in 0..2000 {
        let a = random_clock(&mut rng);
        let b = random_clock(&mut rng);
        let c = random_clock(&mut rng);
        assert_eq!(merged(&a, &b), merged(&b, &a));
        assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        assert_eq!(merged(&a, &a), a);
        let both = merged(&a, &b);
        assert!(both.descends(&a) && both.descends(&b));
        assert!(both
            .entries()
            .windows(2)
            .all(|pair| pair[0].node < pair[1].node));
    }
}

#[test]
fn prune_drops_oldest_updates_and_keeps_the_pinned_entry() {
    let mut clock = clock(&[("a", 1, 50), ("b", 1, 10), ("c", 1, 30), ("d", 1, 20)]);
    let mut pinned = clock.clone();
    clock.prune(2);
    let nodes: Vec<&str> = clock.entries().iter().map(|e| e.node.as_str()).collect();
    assert_eq!(nodes, ["a", "c"]);
    pinned.prune_keeping(2, Some("b"), &[]);
    let nodes: Vec<&str> = pinned.entries().iter().map(|e| e.node.as_str()).collect();
    assert_eq!(nodes, ["a", "b"]);
    // Entries of nodes no live clock carries go first, however recent.
    let live = self::clock(&[("b", 1, 0), ("d", 1, 0)]);
    let mut preferring = self::clock(&[("a", 1, 50), ("b", 1, 10), ("c", 1, 30), ("d", 1, 20)]);
    preferring.prune_keeping(2, None, &[&live]);
    let nodes: Vec<&str> = preferring
        .entries()
        .iter()
        .map(|e| e.node.as_str())
        .collect();
    assert_eq!(nodes, ["b", "d"]);
    // Never below one entry, and a no-op when within the bound.
    pinned.prune(0);
    assert_eq!(pinned.len(), 1);
}

#[test]
fn pruning_can_make_a_descendant_look_concurrent() {
    // O was read, the new write K descends it; pruning K to 2 entries drops "a" (oldest).
    let ancestor = clock(&[("a", 1, 1), ("b", 1, 2)]);
    let mut descendant = ancestor.clone();
    descendant.increment("c", 3).unwrap();
    assert_eq!(descendant.compare(&ancestor), Causality::After);
    descendant.prune_keeping(2, Some("c"), &[]);
    assert_eq!(descendant.compare(&ancestor), Causality::Concurrent);
}

#[test]
fn pruning_never_creates_dominance() {
    // A pruned clock is an ancestor of the original, so whatever it descends the original
    // descended too: pruning cannot make a concurrent or later version look superseded.
    let mut rng = SmallRng::seed_from_u64(13);
    for _ in 0..3000 {
        let original = random_clock(&mut rng);
        let other = random_clock(&mut rng);
        let mut pruned = original.clone();
        let max_entries = rng.gen_range(0..5);
        pruned.prune(max_entries);
        assert!(pruned.len() <= max_entries.max(1));
        assert!(original.descends(&pruned));
        if pruned.descends(&other) {
            assert!(
                original.descends(&other),
                "{original:?} {pruned:?} {other:?}"
            );
        }
    }
}
