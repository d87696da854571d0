//! The ranges anti-entropy keeps a tree for: the ring cut into arcs that each have one
//! replica set.
//!
//! Every position in a token's arc `(previous token, token]` has the same preference list,
//! so the ring splits into arcs of constant replica set; adjacent arcs with the same set
//! (as a set: order does not matter to repair) are merged. Every node computes the same
//! partition from the same ring, so two replicas of a range name it by the same
//! [`TokenRange`] and bucket its keys the same way, without talking.
//!
//! Tree depth: all trees of the cluster have one depth, chosen from the partition so that a
//! node holds about `leaves_per_node_max` leaves in all; also the same on every node.

use crate::ring::{NodeId, Replication, Ring, TokenRange};
use crate::Result;

use super::merkle::DEPTH_MAX;

/// One range of the partition and the nodes that replicate it, sorted by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicatedRange {
    /// The arc.
    pub range: TokenRange,
    /// Its replicas, sorted.
    pub replicas: Vec<NodeId>,
}

/// The whole ring's partition into replicated ranges, sorted by `start_exclusive`.
pub fn partition(ring: &Ring, replication: &Replication) -> Result<Vec<ReplicatedRange>> {
    let tokens = ring.token_positions();
    let count = tokens.len();
    let mut sets: Vec<Vec<NodeId>> = Vec::with_capacity(count);
    for &token in tokens {
        let mut replicas = ring.preference_list_at(token, replication)?;
        replicas.sort();
        sets.push(replicas);
    }
    // Start after a change of set, so no run is split by the wrap at index 0.
    let Some(change) = (0..count).find(|&index| sets[index] != sets[(index + count - 1) % count])
    else {
        return Ok(vec![ReplicatedRange {
            range: TokenRange {
                start_exclusive: tokens[0],
                end_inclusive: tokens[0],
            },
            replicas: sets.swap_remove(0),
        }]);
    };
    let mut ranges = Vec::new();
    let mut run_first = change;
    for step in 1..=count {
        let index = (change + step) % count;
        let previous = (index + count - 1) % count;
        if step == count || sets[index] != sets[previous] {
            let range = TokenRange {
                start_exclusive: tokens[(run_first + count - 1) % count],
                end_inclusive: tokens[previous],
            };
            // Equal ends here only come from colliding tokens, whose arcs are empty.
            if !range.is_full() {
                ranges.push(ReplicatedRange {
                    range,
                    replicas: sets[previous].clone(),
                });
            }
            run_first = index;
        }
    }
    ranges.sort_by_key(|replicated| replicated.range);
    Ok(ranges)
}

/// The tree depth for `partition`: about `leaves_per_node_max` leaves per node, at most
/// `depth_max` (itself at most [`DEPTH_MAX`]).
pub fn depth_for(
    partition: &[ReplicatedRange],
    members: usize,
    depth_max: u8,
    leaves_per_node_max: u64,
) -> u8 {
    let replicas: usize = partition.iter().map(|r| r.replicas.len()).sum();
    // Ranges one node holds, on average, rounded up.
    let per_node = replicas.div_ceil(members.max(1)).max(1) as u64;
    let leaves_per_range = (leaves_per_node_max / per_node).max(1);
    let depth = 63 - leaves_per_range.leading_zeros() as u8;
    depth.min(depth_max).min(DEPTH_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::Member;

    fn ring(nodes: usize, datacenters: usize) -> Ring {
        let members = (0..nodes).map(|index| {
            Member::new(
                format!("n{}", index + 1).as_str(),
                format!("dc{}", index % datacenters + 1).as_str(),
            )
        });
        Ring::new(members, 16).unwrap()
    }

    #[test]
    fn three_replicas_of_three_nodes_is_one_full_range() {
        let parts = partition(&ring(3, 1), &Replication::Total(3)).unwrap();
        assert_eq!(parts.len(), 1);
        assert!(parts[0].range.is_full());
        assert_eq!(parts[0].replicas.len(), 3);
    }

    #[test]
    fn ranges_cover_the_ring_once_with_the_keys_replica_sets() {
        let ring = ring(6, 2);
        let replication = Replication::Total(3);
        let parts = partition(&ring, &replication).unwrap();
        assert!(parts.len() > 6);
        for index in 0..2000u32 {
            let key = format!("key{index}");
            let position = Ring::position_of(key.as_bytes());
            let holding: Vec<_> = parts
                .iter()
                .filter(|part| part.range.contains(position))
                .collect();
            assert_eq!(holding.len(), 1, "{key}");
            let mut expected = ring.preference_list(key.as_bytes(), &replication).unwrap();
            expected.sort();
            assert_eq!(holding[0].replicas, expected, "{key}");
        }
        for pair in parts.windows(2) {
            assert_eq!(pair[0].range.end_inclusive, pair[1].range.start_exclusive);
        }
    }

    #[test]
    fn depth_keeps_a_node_near_its_leaf_budget() {
        let parts = partition(&ring(3, 1), &Replication::Total(3)).unwrap();
        assert_eq!(depth_for(&parts, 3, 12, 1 << 16), 12);
        assert_eq!(depth_for(&parts, 3, 20, 1 << 16), 16);
        let parts = partition(&ring(6, 2), &Replication::Total(3)).unwrap();
        let depth = depth_for(&parts, 6, 20, 1 << 16);
        let per_node = parts.len() * 3 / 6;
        assert!(
            (per_node << depth) <= 1 << 17,
            "{} ranges, depth {depth}",
            parts.len()
        );
        assert_eq!(depth_for(&parts, 6, 20, 1), 0);
    }
}
