//! Ownership: which arcs of the ring a node holds a replica of.
//!
//! Streaming (bootstrap, decommission) and anti-entropy ask the opposite question from
//! the coordinator: not "who holds this key" but "which keys do I hold". Every position
//! in a token's arc `(previous token, token]` has the same preference list, so one
//! placement per token answers it exactly, and adjacent arcs are merged into ranges.

use serde::{Deserialize, Serialize};

use super::placement::MemberSet;
use super::{NodeId, Replication, Ring};
use crate::Result;

/// An arc of the ring, `(start_exclusive, end_inclusive]`, clockwise.
///
/// When `start_exclusive >= end_inclusive` the arc wraps past `u64::MAX` to 0; when they
/// are equal it is the whole ring (the only way to name it with one half-open arc, and
/// what a node that replicates everything gets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TokenRange {
    /// The arc begins just after this position.
    pub start_exclusive: u64,
    /// The arc ends at, and includes, this position.
    pub end_inclusive: u64,
}

impl TokenRange {
    /// Whether the ring position `position` (see [`Ring::position_of`]) is in the arc.
    pub fn contains(&self, position: u64) -> bool {
        if self.start_exclusive < self.end_inclusive {
            self.start_exclusive < position && position <= self.end_inclusive
        } else {
            self.start_exclusive < position || position <= self.end_inclusive
        }
    }

    /// Whether the arc is the whole ring.
    pub fn is_full(&self) -> bool {
        self.start_exclusive == self.end_inclusive
    }
}

impl Ring {
    /// The arcs whose keys `node` holds a replica of under `replication`, sorted by
    /// `start_exclusive`, adjacent arcs merged. A key is in one of them exactly when
    /// `node` is in its [`Ring::preference_list`]. Empty if `node` is not a member.
    ///
    /// Costs one placement per token (about a quarter of a million for 1000 nodes x 256
    /// vnodes): meant for streaming and repair planning, not for the request path.
    pub fn ranges_replicated_by(
        &self,
        node: &NodeId,
        replication: &Replication,
    ) -> Result<Vec<TokenRange>> {
        let plan = self.plan(replication)?;
        let Some(target) = self.index_of(node) else {
            return Ok(Vec::new());
        };
        let target = target as u32;
        let mut seen = MemberSet::new(self.members.len());
        let mut chosen = Vec::with_capacity(plan.total());
        let mut wanted = Vec::with_capacity(self.datacenters.len());
        let replicated: Vec<bool> = (0..self.tokens.len())
            .map(|token| {
                chosen.clear();
                self.place(token, &plan, &mut seen, &mut wanted, |member| {
                    chosen.push(member)
                });
                chosen.iter().for_each(|&member| seen.remove(member));
                chosen.contains(&target)
            })
            .collect();
        Ok(self.merge_arcs(&replicated))
    }

    /// Turns "token i's arc is wanted" flags into merged ranges.
    fn merge_arcs(&self, wanted: &[bool]) -> Vec<TokenRange> {
        let count = self.tokens.len();
        // Start just after an unwanted arc so no run is split by the wrap at index 0.
        let Some(unwanted) = wanted.iter().position(|&flag| !flag) else {
            return vec![TokenRange {
                start_exclusive: self.tokens[0],
                end_inclusive: self.tokens[0],
            }];
        };
        let mut ranges = Vec::new();
        let mut run_start: Option<usize> = None;
        for step in 1..=count {
            let index = (unwanted + step) % count;
            match (wanted[index], run_start) {
                (true, None) => run_start = Some(index),
                (false, Some(first)) => {
                    let previous = (index + count - 1) % count;
                    let range = TokenRange {
                        start_exclusive: self.tokens[(first + count - 1) % count],
                        end_inclusive: self.tokens[previous],
                    };
                    // Equal ends here can only come from colliding tokens, whose arcs
                    // are empty; it must not be read as the whole ring.
                    if !range.is_full() {
                        ranges.push(range);
                    }
                    run_start = None;
                }
                _ => {}
            }
        }
        ranges.sort_unstable();
        ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_range_contains_its_end_not_its_start() {
        let range = TokenRange {
            start_exclusive: 10,
            end_inclusive: 20,
        };
        assert!(!range.contains(10));
        assert!(range.contains(11));
        assert!(range.contains(20));
        assert!(!range.contains(21));
        assert!(!range.is_full());
    }

    #[test]
    fn wrapping_range_spans_zero() {
        let range = TokenRange {
            start_exclusive: u64::MAX - 5,
            end_inclusive: 3,
        };
        assert!(range.contains(u64::MAX));
        assert!(range.contains(0));
        assert!(range.contains(3));
        assert!(!range.contains(4));
        assert!(!range.contains(u64::MAX - 5));
    }

    #[test]
    fn equal_ends_mean_the_whole_ring() {
        let range = TokenRange {
            start_exclusive: 7,
            end_inclusive: 7,
        };
        assert!(range.is_full());
        for position in [0, 6, 7, 8, u64::MAX] {
            assert!(range.contains(position));
        }
    }
}
