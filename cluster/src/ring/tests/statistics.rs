//! Statistical properties of the ring: balance, weights, key movement on membership
//! changes, and placement at 1000 nodes. Seeded and deterministic; the measured figures
//! are printed (`--nocapture`) so a change in the hash or placement shows in numbers.

use std::collections::HashMap;
use std::time::Instant;

use super::*;

const KEY_COUNT: usize = 100_000;
const VNODES: u32 = 256;

/// Keys whose first replica is each node.
fn primary_counts(ring: &Ring, keys: &[[u8; 16]]) -> HashMap<NodeId, usize> {
    let mut counts: HashMap<NodeId, usize> = HashMap::new();
    for key in keys {
        let first = ring.walk(key).next().unwrap().clone();
        *counts.entry(first).or_default() += 1;
    }
    counts
}

/// Exact fraction of the ring's positions each node is first replica for.
fn arc_shares(ring: &Ring) -> HashMap<NodeId, f64> {
    let mut shares: HashMap<NodeId, f64> = HashMap::new();
    let count = ring.tokens.len();
    for index in 0..count {
        let previous = ring.tokens[(index + count - 1) % count];
        let arc = ring.tokens[index].wrapping_sub(previous) as f64 / 2f64.powi(64);
        let owner = &ring.members[ring.token_owners[index] as usize].id;
        *shares.entry(owner.clone()).or_default() += arc;
    }
    shares
}

fn firsts(ring: &Ring, keys: &[[u8; 16]]) -> Vec<NodeId> {
    keys.iter()
        .map(|key| ring.walk(key).next().unwrap().clone())
        .collect()
}

#[test]
fn ten_equal_nodes_share_keys_evenly() {
    let ring = Ring::new(members(10, 1), VNODES).unwrap();
    let counts = primary_counts(&ring, &random_keys(10, KEY_COUNT));
    assert_eq!(counts.len(), 10);
    let mean = KEY_COUNT as f64 / 10.0;
    let max = *counts.values().max().unwrap() as f64;
    let min = *counts.values().min().unwrap() as f64;
    let shares = arc_shares(&ring);
    let arc_max = shares.values().cloned().fold(0.0, f64::max);
    let arc_min = shares.values().cloned().fold(1.0, f64::min);
    eprintln!(
        "balance, 10 nodes x {VNODES} vnodes: keys max/mean {:.4}, min/mean {:.4}; \
         exact arcs max/mean {:.4}, min/mean {:.4}",
        max / mean,
        min / mean,
        arc_max * 10.0,
        arc_min * 10.0
    );
    assert!(max / mean < 1.15, "max/mean {}", max / mean);
}

#[test]
fn weight_two_owns_twice_as_much() {
    let mut all = members(10, 1);
    all[0].weight = 2;
    let ring = Ring::new(all, VNODES).unwrap();
    let counts = primary_counts(&ring, &random_keys(11, KEY_COUNT));
    let heavy = counts[&NodeId::new("node-0000")] as f64;
    let light_mean = (KEY_COUNT as f64 - heavy) / 9.0;
    let ratio = heavy / light_mean;
    eprintln!("weight 2 vs weight 1: {ratio:.4}x the keys");
    assert!((1.7..=2.3).contains(&ratio), "ratio {ratio}");
}

#[test]
fn adding_a_node_moves_about_one_nth_of_keys_all_to_it() {
    let keys = random_keys(12, KEY_COUNT);
    let before = Ring::new(members(10, 1), VNODES).unwrap();
    let newcomer = NodeId::new("node-0010");
    let after = before
        .with_member(Member::new(newcomer.clone(), "dc0"))
        .unwrap();
    let (old_firsts, new_firsts) = (firsts(&before, &keys), firsts(&after, &keys));
    let mut moved = 0;
    for (old, new) in old_firsts.iter().zip(&new_firsts) {
        if old != new {
            assert_eq!(new, &newcomer, "a key moved between two old nodes");
            moved += 1;
        }
    }
    let expected = KEY_COUNT as f64 / 11.0;
    eprintln!(
        "adding an 11th node moved {moved} of {KEY_COUNT} first replicas ({:.4} of K, {:.3}x K/11)",
        moved as f64 / KEY_COUNT as f64,
        moved as f64 / expected
    );
    assert!((0.6 * expected..=1.4 * expected).contains(&(moved as f64)));
    // Whole lists change only by taking the newcomer in.
    let replication = Replication::Total(3);
    for key in keys.iter().take(5_000) {
        let old = before.preference_list(key, &replication).unwrap();
        let new = after.preference_list(key, &replication).unwrap();
        assert!(old == new || new.contains(&newcomer), "{old:?} -> {new:?}");
    }
}

#[test]
fn removing_a_node_moves_only_its_keys() {
    let keys = random_keys(13, KEY_COUNT);
    let before = Ring::new(members(10, 1), VNODES).unwrap();
    let leaver = NodeId::new("node-0003");
    let after = before.without_member(&leaver).unwrap();
    let (old_firsts, new_firsts) = (firsts(&before, &keys), firsts(&after, &keys));
    let mut moved = 0;
    for (old, new) in old_firsts.iter().zip(&new_firsts) {
        assert_eq!(old != new, old == &leaver, "{old} -> {new}");
        moved += usize::from(old != new);
    }
    eprintln!("removing 1 of 10 nodes moved {moved} of {KEY_COUNT} first replicas");
    let replication = Replication::Total(3);
    for key in keys.iter().take(5_000) {
        let old = before.preference_list(key, &replication).unwrap();
        let new = after.preference_list(key, &replication).unwrap();
        assert!(old == new || old.contains(&leaver), "{old:?} -> {new:?}");
    }
}

#[test]
fn thousand_nodes_in_four_datacenters() {
    let started = Instant::now();
    let all = members(1000, 4);
    let ring = Ring::new(all.clone(), VNODES).unwrap();
    let built = started.elapsed();
    assert_eq!(ring.token_count(), 256_000);
    let replication = per_datacenter(&[("dc0", 3), ("dc1", 3), ("dc2", 3), ("dc3", 3)]);
    let keys = random_keys(14, 10_000);
    let started = Instant::now();
    let lists: Vec<Vec<NodeId>> = keys
        .iter()
        .map(|key| ring.preference_list(key, &replication).unwrap())
        .collect();
    let per_list = started.elapsed() / keys.len() as u32;
    eprintln!("1000 nodes x {VNODES} vnodes: built in {built:?}, {per_list:?} per 12-replica list (unoptimised build)");
    for list in &lists {
        assert_well_formed(&ring, list, &replication);
    }
    // A few against the brute-force reference: it rescans all 256 000 tokens per key.
    for (key, list) in keys.iter().zip(&lists).take(20) {
        let position = Ring::position_of(key);
        assert_eq!(
            list,
            &reference_preference_list(&all, VNODES, position, &replication)
        );
    }
    // Ownership at scale agrees with the lists: one node, all 10 000 keys.
    let node = NodeId::new("node-0123");
    let ranges = ring.ranges_replicated_by(&node, &replication).unwrap();
    for (key, list) in keys.iter().zip(&lists) {
        let inside = ranges
            .iter()
            .any(|range| range.contains(Ring::position_of(key)));
        assert_eq!(inside, list.contains(&node));
    }
    let total = Replication::Total(3);
    for key in keys.iter().take(1_000) {
        assert_well_formed(&ring, &ring.preference_list(key, &total).unwrap(), &total);
    }
}
