//! Ring tests across modules: construction, placement against a brute-force reference,
//! membership changes and ownership. Statistical properties (balance, movement, scale)
//! are in `statistics`.

mod statistics;

use std::collections::{BTreeMap, HashMap, HashSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// `count` weight-1 members `node-0000`.., spread round-robin over `datacenter_count`
/// datacenters `dc0`...
pub(super) fn members(count: usize, datacenter_count: usize) -> Vec<Member> {
    (0..count)
        .map(|i| {
            Member::new(
                format!("node-{i:04}"),
                format!("dc{}", i % datacenter_count),
            )
        })
        .collect()
}

/// `count` random 16-byte keys from a fixed seed.
pub(super) fn random_keys(seed: u64, count: usize) -> Vec<[u8; 16]> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count).map(|_| rng.gen()).collect()
}

pub(super) fn per_datacenter(counts: &[(&str, usize)]) -> Replication {
    Replication::PerDatacenter(counts.iter().map(|&(dc, n)| (dc.to_string(), n)).collect())
}

/// Placement the slow, obvious way: recompute every token, scan linearly. Shares only
/// `token_of` with the code under test.
pub(super) fn reference_preference_list(
    members: &[Member],
    vnodes_per_weight: u32,
    position: u64,
    replication: &Replication,
) -> Vec<NodeId> {
    let mut tokens: Vec<(u64, &Member)> = Vec::new();
    for member in members {
        for vnode in 0..member.weight * vnodes_per_weight {
            tokens.push((hash::token_of(&member.id, vnode), member));
        }
    }
    tokens.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let start = tokens
        .iter()
        .position(|(token, _)| *token >= position)
        .unwrap_or(0);
    let mut chosen: Vec<NodeId> = Vec::new();
    let mut taken_per_datacenter: HashMap<&str, usize> = HashMap::new();
    for step in 0..tokens.len() {
        let member = tokens[(start + step) % tokens.len()].1;
        if chosen.contains(&member.id) {
            continue;
        }
        let wanted = match replication {
            Replication::Total(count) => chosen.len() < *count,
            Replication::PerDatacenter(counts) => {
                let taken = taken_per_datacenter.entry(&member.datacenter).or_default();
                let fits = *taken < counts.get(&member.datacenter).copied().unwrap_or(0);
                *taken += usize::from(fits);
                fits
            }
        };
        if wanted {
            chosen.push(member.id.clone());
        }
    }
    chosen
}

/// Distinct nodes, and per-datacenter counts exactly as asked.
pub(super) fn assert_well_formed(ring: &Ring, list: &[NodeId], replication: &Replication) {
    let distinct: HashSet<&NodeId> = list.iter().collect();
    assert_eq!(distinct.len(), list.len(), "repeated node in {list:?}");
    assert_eq!(list.len(), replication.total());
    if let Replication::PerDatacenter(counts) = replication {
        let mut taken: BTreeMap<String, usize> = BTreeMap::new();
        for id in list {
            *taken
                .entry(ring.member(id).unwrap().datacenter.clone())
                .or_default() += 1;
        }
        let wanted: BTreeMap<String, usize> = counts
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(dc, &n)| (dc.clone(), n))
            .collect();
        assert_eq!(taken, wanted, "per-datacenter counts of {list:?}");
    }
}

fn invalid_config(result: Result<Ring>) -> String {
    match result {
        Err(Error::InvalidConfig { detail, .. }) => detail,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn construction_rejects_bad_member_lists() {
    assert!(invalid_config(Ring::new(Vec::new(), 16)).contains("at least one"));
    let duplicate = vec![Member::new("a", "dc1"), Member::new("a", "dc2")];
    assert!(invalid_config(Ring::new(duplicate, 16)).contains("duplicate node id a"));
    let weightless = vec![Member::new("a", "dc1").with_weight(0)];
    assert!(invalid_config(Ring::new(weightless, 16)).contains("weight 0"));
    assert!(invalid_config(Ring::new(vec![Member::new("", "dc1")], 16)).contains("empty"));
    assert!(invalid_config(Ring::new(vec![Member::new("a", "")], 16)).contains("empty"));
    assert!(matches!(
        Ring::new(members(3, 1), 0),
        Err(Error::InvalidConfig { field, .. }) if field == "ring.vnodes_per_weight"
    ));
}

#[test]
fn construction_enforces_limits() {
    let heavy = vec![Member::new("a", "dc1").with_weight(65)];
    assert!(matches!(
        Ring::new(heavy, 256),
        Err(Error::LimitExceeded {
            what: "virtual nodes per member",
            size: 16_640,
            ..
        })
    ));
    assert!(matches!(
        Ring::new(members(300, 1), 16_384),
        Err(Error::LimitExceeded {
            what: "ring tokens",
            ..
        })
    ));
    assert!(matches!(
        Ring::new(members(MEMBERS_MAX + 1, 1), 1),
        Err(Error::LimitExceeded {
            what: "ring members",
            ..
        })
    ));
    let long_name = "x".repeat(NAME_LENGTH_MAX + 1);
    assert!(matches!(
        Ring::new(vec![Member::new(long_name, "dc1")], 1),
        Err(Error::LimitExceeded {
            what: "node id",
            ..
        })
    ));
}

#[test]
fn accessors_describe_the_ring() {
    let ring = Ring::new(members(6, 2), 8).unwrap();
    assert_eq!(ring.members().len(), 6);
    assert!(ring
        .members()
        .windows(2)
        .all(|pair| pair[0].id < pair[1].id));
    assert_eq!(ring.datacenters(), ["dc0", "dc1"]);
    assert_eq!(ring.token_count(), 48);
    assert_eq!(ring.vnodes_per_weight(), 8);
    assert_eq!(
        ring.member(&NodeId::new("node-0003")).unwrap().datacenter,
        "dc1"
    );
    assert!(ring.member(&NodeId::new("nobody")).is_none());
    assert_eq!(Ring::position_of(b"k"), stable_hash64(b"k"));
}

#[test]
fn placement_matches_the_brute_force_reference() {
    let mut all = members(9, 3);
    all[4].weight = 3;
    let ring = Ring::new(all.clone(), 8).unwrap();
    let replications = [
        Replication::Total(1),
        Replication::Total(3),
        Replication::Total(9),
        per_datacenter(&[("dc0", 2), ("dc2", 1)]),
        per_datacenter(&[("dc0", 1), ("dc1", 1), ("dc2", 3), ("dc9", 0)]),
    ];
    let mut positions: Vec<u64> = random_keys(1, 500)
        .iter()
        .map(|k| Ring::position_of(k))
        .collect();
    // Token boundaries are where off-by-one errors live.
    for &token in ring.tokens.iter().take(50) {
        positions.extend([token.wrapping_sub(1), token, token.wrapping_add(1)]);
    }
    positions.extend([0, u64::MAX]);
    for replication in &replications {
        for &position in &positions {
            let list = ring.preference_list_at(position, replication).unwrap();
            assert_well_formed(&ring, &list, replication);
            assert_eq!(
                list,
                reference_preference_list(&all, 8, position, replication)
            );
        }
    }
}

#[test]
fn too_few_nodes_is_a_placement_error() {
    let ring = Ring::new(members(5, 2), 16).unwrap(); // dc0: 3 nodes, dc1: 2 nodes
    let placement_error = |replication: Replication| match ring.preference_list(b"k", &replication)
    {
        Err(Error::Placement(message)) => message,
        other => panic!("expected a placement error, got {other:?}"),
    };
    assert!(placement_error(Replication::Total(6)).contains("the ring has 5"));
    assert!(placement_error(per_datacenter(&[("dc1", 3)])).contains("dc1, which has 2 nodes"));
    assert!(placement_error(per_datacenter(&[("dc7", 1)])).contains("dc7, which has no members"));
    assert!(placement_error(Replication::Total(0)).contains("zero"));
    assert!(placement_error(per_datacenter(&[("dc7", 0)])).contains("zero"));
    assert!(ring.preference_list(b"k", &Replication::Total(5)).is_ok());
    assert!(ring
        .preference_list(b"k", &per_datacenter(&[("dc0", 3), ("dc1", 2)]))
        .is_ok());
}

#[test]
fn member_order_does_not_matter() {
    let forward = members(40, 3);
    let mut shuffled = forward.clone();
    shuffled.reverse();
    shuffled.swap(3, 17);
    let first = Ring::new(forward, 32).unwrap();
    let second = Ring::new(shuffled, 32).unwrap();
    assert_eq!(first, second);
    let replication = per_datacenter(&[("dc0", 2), ("dc1", 1), ("dc2", 1)]);
    for key in random_keys(2, 200) {
        assert_eq!(
            first.preference_list(&key, &replication).unwrap(),
            second.preference_list(&key, &replication).unwrap()
        );
    }
}

#[test]
fn walk_meets_every_node_once_starting_with_the_preference_list() {
    let ring = Ring::new(members(12, 2), 16).unwrap();
    for key in random_keys(3, 100) {
        let walked: Vec<&NodeId> = ring.walk(&key).collect();
        assert_eq!(walked.len(), 12);
        assert_eq!(walked.iter().collect::<HashSet<_>>().len(), 12);
        let list = ring.preference_list(&key, &Replication::Total(4)).unwrap();
        assert_eq!(
            walked[..4].iter().copied().cloned().collect::<Vec<_>>(),
            list
        );
    }
    let mut walk = ring.walk(b"k");
    assert_eq!(walk.len(), 12);
    walk.next();
    assert_eq!(walk.len(), 11);
}

#[test]
fn membership_changes_make_new_rings() {
    let ring = Ring::new(members(4, 2), 16).unwrap();
    let added = ring
        .with_member(Member::new("node-9999", "dc1").with_weight(2))
        .unwrap();
    assert_eq!(added.members().len(), 5);
    assert_eq!(added.token_count(), 4 * 16 + 32);
    assert_eq!(ring.members().len(), 4, "the old ring is untouched");
    assert_eq!(
        added.without_member(&NodeId::new("node-9999")).unwrap(),
        ring
    );
    assert!(invalid_config(ring.with_member(Member::new("node-0001", "dc0"))).contains("already"));
    assert!(invalid_config(ring.without_member(&NodeId::new("nobody"))).contains("not a member"));
    let single = Ring::new(members(1, 1), 4).unwrap();
    assert!(invalid_config(single.without_member(&NodeId::new("node-0000"))).contains("at least"));
}

#[test]
fn ranges_cover_exactly_the_keys_a_node_replicates() {
    let ring = Ring::new(members(20, 2), 16).unwrap();
    let mut positions: Vec<u64> = random_keys(4, 2000)
        .iter()
        .map(|k| Ring::position_of(k))
        .collect();
    for &token in ring.tokens.iter().step_by(7) {
        positions.extend([token.wrapping_sub(1), token, token.wrapping_add(1)]);
    }
    positions.extend([0, u64::MAX]);
    for replication in [
        Replication::Total(3),
        per_datacenter(&[("dc0", 2), ("dc1", 1)]),
    ] {
        let lists: Vec<Vec<NodeId>> = positions
            .iter()
            .map(|&position| ring.preference_list_at(position, &replication).unwrap())
            .collect();
        let mut total_arc_count = 0;
        for member in ring.members() {
            let ranges = ring.ranges_replicated_by(&member.id, &replication).unwrap();
            assert!(!ranges.is_empty());
            total_arc_count += ranges.len();
            for (&position, list) in positions.iter().zip(&lists) {
                let inside = ranges
                    .iter()
                    .filter(|range| range.contains(position))
                    .count();
                assert!(inside <= 1, "ranges overlap at {position}");
                assert_eq!(
                    inside == 1,
                    list.contains(&member.id),
                    "{} at {position}",
                    member.id
                );
            }
        }
        assert!(
            total_arc_count > 20,
            "arcs should be many and merged, got {total_arc_count}"
        );
    }
    assert!(ring
        .ranges_replicated_by(&NodeId::new("nobody"), &Replication::Total(3))
        .unwrap()
        .is_empty());
    assert!(ring
        .ranges_replicated_by(&NodeId::new("node-0000"), &Replication::Total(21))
        .is_err());
}

#[test]
fn a_node_in_every_list_owns_the_whole_ring() {
    let ring = Ring::new(members(3, 1), 8).unwrap();
    for member in ring.members() {
        let ranges = ring
            .ranges_replicated_by(&member.id, &Replication::Total(3))
            .unwrap();
        assert_eq!(ranges.len(), 1);
        assert!(ranges[0].is_full());
    }
    let lonely = Ring::new(members(1, 1), 1).unwrap();
    let ranges = lonely
        .ranges_replicated_by(&NodeId::new("node-0000"), &Replication::Total(1))
        .unwrap();
    assert!(ranges.len() == 1 && ranges[0].is_full());
}
