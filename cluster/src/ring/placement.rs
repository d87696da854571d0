//! Placement: from a key's position to the nodes that hold it.
//!
//! Cost: one binary search over the sorted token vector, then a clockwise walk that stops
//! as soon as the replicas are found. With V virtual nodes per node the walk meets a new
//! physical node almost every step, so a list of R replicas takes about R steps plus the
//! repeats; a datacenter with few nodes among many can make the walk longer, bounded by
//! one turn of the ring. Allocations: the returned list and a bitset of one bit per
//! member (plus one count per datacenter for per-datacenter replication).

use super::{NodeId, Replication, Ring};
use crate::{Error, Result};

/// A replication setting checked against this ring and turned into indices, so walks
/// (one per token when computing ownership) do no string lookups.
pub(super) enum Plan {
    Total(usize),
    /// Replicas still wanted per datacenter, indexed like `Ring::datacenters`.
    PerDatacenter(Vec<usize>),
}

impl Plan {
    pub(super) fn total(&self) -> usize {
        match self {
            Plan::Total(count) => *count,
            Plan::PerDatacenter(counts) => counts.iter().sum(),
        }
    }
}

/// One bit per member: which ones a walk has already met.
pub(super) struct MemberSet(Vec<u64>);

impl MemberSet {
    pub(super) fn new(member_count: usize) -> MemberSet {
        MemberSet(vec![0; member_count.div_ceil(64)])
    }

    /// Adds `member`; true if it was not there before.
    pub(super) fn insert(&mut self, member: u32) -> bool {
        let (word, bit) = ((member / 64) as usize, member % 64);
        let fresh = self.0[word] & (1 << bit) == 0;
        self.0[word] |= 1 << bit;
        fresh
    }

    pub(super) fn remove(&mut self, member: u32) {
        self.0[(member / 64) as usize] &= !(1 << (member % 64));
    }
}

impl Ring {
    /// The nodes that hold `key`, coordinator first, in clockwise order from the key's
    /// position: distinct physical nodes, as many as `replication` asks, per datacenter
    /// when it names datacenters.
    ///
    /// Fails with [`Error::Placement`] when the ring cannot satisfy `replication`: zero
    /// replicas, more replicas than nodes, a named datacenter with no members or fewer
    /// members than its count.
    pub fn preference_list(&self, key: &[u8], replication: &Replication) -> Result<Vec<NodeId>> {
        self.preference_list_at(Ring::position_of(key), replication)
    }

    /// [`Ring::preference_list`] for a ring position rather than a key, for callers that
    /// work in positions (streaming a [`super::TokenRange`], Merkle tree leaves).
    pub fn preference_list_at(
        &self,
        position: u64,
        replication: &Replication,
    ) -> Result<Vec<NodeId>> {
        let plan = self.plan(replication)?;
        let mut chosen = Vec::with_capacity(plan.total());
        let mut seen = MemberSet::new(self.members.len());
        let mut wanted_per_datacenter = Vec::new();
        let start = self.token_index_for(position);
        self.place(
            start,
            &plan,
            &mut seen,
            &mut wanted_per_datacenter,
            |member| {
                chosen.push(self.members[member as usize].id.clone());
            },
        );
        Ok(chosen)
    }

    /// Every distinct node once, in clockwise order from `key`'s position: the first ones
    /// are the `Total` preference list, and the coordinator keeps walking past it to find
    /// stand-ins for unreachable replicas (sloppy quorum, hinted handoff).
    pub fn walk(&self, key: &[u8]) -> Walk<'_> {
        self.walk_at(Ring::position_of(key))
    }

    /// [`Ring::walk`] from a ring position.
    pub fn walk_at(&self, position: u64) -> Walk<'_> {
        Walk {
            ring: self,
            next_token: self.token_index_for(position),
            steps_left: self.tokens.len(),
            unseen: self.members.len(),
            seen: MemberSet::new(self.members.len()),
        }
    }

    /// Checks `replication` against this ring's members once, before any walk.
    pub(super) fn plan(&self, replication: &Replication) -> Result<Plan> {
        let plan = match replication {
            Replication::Total(count) => {
                if *count > self.members.len() {
                    return Err(Error::Placement(format!(
                        "replication needs {count} distinct nodes but the ring has {}",
                        self.members.len()
                    )));
                }
                Plan::Total(*count)
            }
            Replication::PerDatacenter(counts) => {
                let mut wanted = vec![0; self.datacenters.len()];
                for (datacenter, &count) in counts.iter().filter(|(_, &count)| count > 0) {
                    let index = self.datacenters.binary_search(datacenter).map_err(|_| {
                        Error::Placement(format!(
                            "replication wants {count} replicas in datacenter {datacenter}, \
                             which has no members"
                        ))
                    })?;
                    let available = self.datacenter_member_counts[index];
                    if count > available {
                        return Err(Error::Placement(format!(
                            "replication wants {count} replicas in datacenter {datacenter}, \
                             which has {available} nodes"
                        )));
                    }
                    wanted[index] = count;
                }
                Plan::PerDatacenter(wanted)
            }
        };
        if plan.total() == 0 {
            return Err(Error::Placement(
                "replication asks for zero replicas".into(),
            ));
        }
        Ok(plan)
    }

    /// Walks clockwise from token `start`, calling `emit` with each chosen member index in
    /// order. `seen` must be empty on entry and holds exactly the chosen members on return.
    /// `plan` came from [`Ring::plan`], which guarantees one turn of the ring suffices.
    /// `wanted_per_datacenter` is scratch space, overwritten, so callers placing once per
    /// token allocate it once.
    pub(super) fn place(
        &self,
        start: usize,
        plan: &Plan,
        seen: &mut MemberSet,
        wanted_per_datacenter: &mut Vec<usize>,
        mut emit: impl FnMut(u32),
    ) {
        wanted_per_datacenter.clear();
        if let Plan::PerDatacenter(counts) = plan {
            wanted_per_datacenter.extend_from_slice(counts);
        }
        let mut left = plan.total();
        let token_count = self.tokens.len();
        let mut index = start;
        for _ in 0..token_count {
            let member = self.token_owners[index];
            index = if index + 1 == token_count {
                0
            } else {
                index + 1
            };
            if let Plan::PerDatacenter(_) = plan {
                let datacenter = self.member_datacenter[member as usize] as usize;
                if wanted_per_datacenter[datacenter] == 0 || !seen.insert(member) {
                    continue;
                }
                wanted_per_datacenter[datacenter] -= 1;
            } else if !seen.insert(member) {
                continue;
            }
            emit(member);
            left -= 1;
            if left == 0 {
                return;
            }
        }
        panic!("placement plan checked against the ring but one turn found {left} too few");
    }
}

/// Iterator of [`Ring::walk`]: distinct nodes in clockwise order, at most one turn.
pub struct Walk<'ring> {
    ring: &'ring Ring,
    next_token: usize,
    steps_left: usize,
    unseen: usize,
    seen: MemberSet,
}

impl<'ring> Iterator for Walk<'ring> {
    type Item = &'ring NodeId;

    fn next(&mut self) -> Option<&'ring NodeId> {
        let ring = self.ring;
        while self.steps_left > 0 && self.unseen > 0 {
            let member = ring.token_owners[self.next_token];
            self.next_token = (self.next_token + 1) % ring.tokens.len();
            self.steps_left -= 1;
            if self.seen.insert(member) {
                self.unseen -= 1;
                return Some(&ring.members[member as usize].id);
            }
        }
        None
    }

    /// Exact: every member not yet met still has all its tokens ahead in this turn.
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.unseen, Some(self.unseen))
    }
}

impl ExactSizeIterator for Walk<'_> {}
