//! The consistent-hashing ring: which nodes hold a key.
//!
//! A [`Ring`] is a plain value built from a member list. Every node that is handed the
//! same members builds the same ring, byte for byte, without talking to anyone: token
//! positions come from a stable hash of `(node id, virtual node index)` (the hash of
//! [`stable_hash64`], whose module says why it was chosen), and nothing depends on the order the members were listed in. Placement is a pure
//! function of the ring, the key and the [`Replication`] setting, so the coordinator,
//! hinted handoff, anti-entropy and the simulation all agree on who owns what.
//!
//! Each token owns the arc `(previous token, token]`. A key's position is the stable hash
//! of its bytes ([`Ring::position_of`]); its first replica is the owner of the first
//! token at or after that position, and the other replicas are found by walking on
//! clockwise, skipping nodes already chosen (Dynamo's preference list), optionally
//! per datacenter (Cassandra's NetworkTopologyStrategy).
//!
//! Rings change by making new rings ([`Ring::with_member`], [`Ring::without_member`]):
//! a caller holding an old ring keeps a consistent view while the new one is adopted.

mod hash;
mod member;
mod ownership;
mod placement;
mod replication;
#[cfg(test)]
mod tests;

pub use hash::stable_hash64;
pub use member::{Member, NodeId};
pub use ownership::TokenRange;
pub use placement::Walk;
pub use replication::Replication;

use std::fmt;

use crate::{Error, Result};

/// Most members a ring accepts. Gossip, the per-call member bitset and operators' tables
/// are all sized by this; the design targets 1000-node simulations.
pub const MEMBERS_MAX: usize = 10_000;

/// Most virtual nodes one member may have (`weight * vnodes_per_weight`). More buys
/// little balance (spread falls as 1/sqrt(vnodes)) and costs memory on every node.
pub const VNODES_PER_MEMBER_MAX: u64 = 16_384;

/// Most tokens in a ring. 4 Mi tokens cost 48 MiB per ring copy; 1000 nodes x 256
/// vnodes is 256 Ki.
pub const TOKENS_MAX: u64 = 1 << 22;

/// Longest node id or datacenter name, in bytes. They travel in every gossip message.
pub const NAME_LENGTH_MAX: usize = 255;

/// The token ring: members, their datacenters, and every virtual node's position.
///
/// Equality is structural: two rings are equal exactly when they were built from the same
/// members and `vnodes_per_weight`, whatever the order the members were given in.
#[derive(Clone, PartialEq, Eq)]
pub struct Ring {
    /// Members sorted by id, so indices are stable for a given member set.
    members: Vec<Member>,
    /// Distinct datacenter names, sorted.
    datacenters: Vec<String>,
    /// For each member (same index as `members`), its index in `datacenters`.
    member_datacenter: Vec<u32>,
    /// For each datacenter (same index as `datacenters`), how many members it has; lets
    /// placement reject an impossible per-datacenter count before walking the ring.
    datacenter_member_counts: Vec<usize>,
    vnodes_per_weight: u32,
    /// Token positions, ascending. Separate from the owners so the binary search touches
    /// only 8 bytes per probe.
    tokens: Vec<u64>,
    /// For each token (same index as `tokens`), the index of its owner in `members`.
    token_owners: Vec<u32>,
}

impl Ring {
    /// Builds the ring for `members`, each getting `weight * vnodes_per_weight` tokens.
    ///
    /// Fails on an empty member list, duplicate ids, empty or over-long names, a zero
    /// weight or `vnodes_per_weight`, and on virtual node counts over the limits.
    pub fn new(members: impl IntoIterator<Item = Member>, vnodes_per_weight: u32) -> Result<Ring> {
        let mut members: Vec<Member> = members.into_iter().collect();
        validate_members(&mut members, vnodes_per_weight)?;

        let mut datacenters: Vec<String> = members.iter().map(|m| m.datacenter.clone()).collect();
        datacenters.sort();
        datacenters.dedup();
        let mut datacenter_member_counts = vec![0usize; datacenters.len()];
        let member_datacenter: Vec<u32> = members
            .iter()
            .map(|member| {
                let index = datacenters
                    .binary_search(&member.datacenter)
                    .expect("every member's datacenter was collected above");
                datacenter_member_counts[index] += 1;
                index as u32
            })
            .collect();

        let mut owned_tokens: Vec<(u64, u32)> = Vec::new();
        for (member_index, member) in members.iter().enumerate() {
            let vnodes = member.weight * vnodes_per_weight;
            owned_tokens.extend(
                (0..vnodes).map(|vnode| (hash::token_of(&member.id, vnode), member_index as u32)),
            );
        }
        // Ties (two vnodes hashing to one position, ~1e-9 at 256 Ki tokens) are broken by
        // member index, i.e. by id, so every node still builds the same ring.
        owned_tokens.sort_unstable();
        let (tokens, token_owners) = owned_tokens.into_iter().unzip();

        Ok(Ring {
            members,
            datacenters,
            member_datacenter,
            datacenter_member_counts,
            vnodes_per_weight,
            tokens,
            token_owners,
        })
    }

    /// A new ring with `member` added. Fails if its id is already a member.
    pub fn with_member(&self, member: Member) -> Result<Ring> {
        if self.index_of(&member.id).is_some() {
            return Err(Error::InvalidConfig {
                field: "ring.members".into(),
                detail: format!("node {} is already a member", member.id),
            });
        }
        let members = self.members.iter().cloned().chain(std::iter::once(member));
        Ring::new(members, self.vnodes_per_weight)
    }

    /// A new ring without the member `id`. Fails if `id` is not a member or is the last.
    pub fn without_member(&self, id: &NodeId) -> Result<Ring> {
        let index = self.index_of(id).ok_or_else(|| Error::InvalidConfig {
            field: "ring.members".into(),
            detail: format!("node {id} is not a member"),
        })?;
        let members = self.members.iter().enumerate().filter(|(i, _)| *i != index);
        Ring::new(members.map(|(_, m)| m.clone()), self.vnodes_per_weight)
    }

    /// Members, sorted by id.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member with this id, if any.
    pub fn member(&self, id: &NodeId) -> Option<&Member> {
        self.index_of(id).map(|index| &self.members[index])
    }

    /// Distinct datacenter names, sorted.
    pub fn datacenters(&self) -> &[String] {
        &self.datacenters
    }

    /// The virtual node multiplier this ring was built with.
    pub fn vnodes_per_weight(&self) -> u32 {
        self.vnodes_per_weight
    }

    /// Number of tokens (virtual nodes) on the ring.
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// Token positions, ascending: each token owns `(previous token, token]`. For planners
    /// that work per arc (anti-entropy's ranges).
    pub fn token_positions(&self) -> &[u64] {
        &self.tokens
    }

    /// A key's position on the ring: the stable hash of its bytes. Public and stable
    /// across versions and platforms so streaming and anti-entropy can bucket keys by
    /// [`TokenRange`] themselves.
    pub fn position_of(key: &[u8]) -> u64 {
        stable_hash64(key)
    }

    fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.members.binary_search_by(|m| m.id.cmp(id)).ok()
    }

    /// Index of the token that owns `position`: the first token at or after it, wrapping.
    fn token_index_for(&self, position: u64) -> usize {
        let index = self.tokens.partition_point(|&token| token < position);
        if index == self.tokens.len() {
            0
        } else {
            index
        }
    }
}

/// Sorts `members` by id and checks everything [`Ring::new`] promises to reject.
fn validate_members(members: &mut [Member], vnodes_per_weight: u32) -> Result<()> {
    let invalid = |detail: String| Error::InvalidConfig {
        field: "ring.members".into(),
        detail,
    };
    if members.is_empty() {
        return Err(invalid("a ring needs at least one member".into()));
    }
    if members.len() > MEMBERS_MAX {
        return Err(Error::LimitExceeded {
            what: "ring members",
            size: members.len(),
            limit: MEMBERS_MAX,
        });
    }
    if vnodes_per_weight == 0 {
        return Err(Error::InvalidConfig {
            field: "ring.vnodes_per_weight".into(),
            detail: "must be at least 1".into(),
        });
    }
    members.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(pair) = members.windows(2).find(|pair| pair[0].id == pair[1].id) {
        return Err(invalid(format!("duplicate node id {}", pair[0].id)));
    }
    let mut total_tokens: u64 = 0;
    for member in members.iter() {
        check_name("node id", member.id.as_str())?;
        check_name("datacenter name", &member.datacenter)?;
        if member.weight == 0 {
            return Err(invalid(format!("node {} has weight 0", member.id)));
        }
        let vnodes = u64::from(member.weight) * u64::from(vnodes_per_weight);
        if vnodes > VNODES_PER_MEMBER_MAX {
            return Err(Error::LimitExceeded {
                what: "virtual nodes per member",
                size: usize::try_from(vnodes).unwrap_or(usize::MAX),
                limit: VNODES_PER_MEMBER_MAX as usize,
            });
        }
        total_tokens += vnodes;
    }
    if total_tokens > TOKENS_MAX {
        return Err(Error::LimitExceeded {
            what: "ring tokens",
            size: usize::try_from(total_tokens).unwrap_or(usize::MAX),
            limit: TOKENS_MAX as usize,
        });
    }
    Ok(())
}

fn check_name(what: &'static str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidConfig {
            field: "ring.members".into(),
            detail: format!("empty {what}"),
        });
    }
    if name.len() > NAME_LENGTH_MAX {
        return Err(Error::LimitExceeded {
            what,
            size: name.len(),
            limit: NAME_LENGTH_MAX,
        });
    }
    Ok(())
}

/// Summarises instead of printing a quarter of a million tokens.
impl fmt::Debug for Ring {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Ring")
            .field("members", &self.members.len())
            .field("datacenters", &self.datacenters)
            .field("vnodes_per_weight", &self.vnodes_per_weight)
            .field("tokens", &self.tokens.len())
            .finish()
    }
}
