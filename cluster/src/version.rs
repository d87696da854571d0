//! Versioning: vector clocks, sibling sets and last-write-wins.
//!
//! Every stored value is a [`SiblingSet`]: the mutually concurrent [`Version`]s of one key,
//! each carrying the [`VectorClock`] of the write that made it. Replicas apply replicated
//! writes with [`SiblingSet::reconcile`], read repair and anti-entropy use
//! [`SiblingSet::merge`], a coordinator makes a new version with
//! [`SiblingSet::write_with_context`], and a client gets [`SiblingSet::context`] with its read
//! and sends it back to say which versions its write replaces. Byte formats are documented in
//! [`codec`].
//!
//! # Counters
//!
//! A coordinator gives a new write the counter `max(context, every local sibling) + 1` for its
//! own entry, not `context + 1`. With `context + 1`, two clients writing blind (empty context)
//! through the same node would get equal clocks for different values: replicas holding one
//! or the other would then never converge, because equal clocks look like the same write.
//! This makes each `(node, counter)` a unique write provided the coordinator is a replica of
//! the key and stores every write it coordinates before acknowledging it (Dynamo's rule:
//! the coordinator is taken from the key's preference list).
//!
//! The known limit of per-node clocks (the reason dotted version vectors exist): when two
//! writes go through the *same* coordinator from contexts that differ only in that
//! coordinator's entry (e.g. two blind writes), the later one descends the earlier one and
//! replaces it, although its client never saw it. Writes through different coordinators
//! become siblings as they should. Clients that read before writing (and send the context
//! back) are not affected.
//!
//! # Pruning (Dynamo/Riak style, [`VersionConfig::clock_entries_max`], default 10)
//!
//! A new version's clock is pruned to at most `clock_entries_max` entries. The coordinator's
//! own just-incremented entry is never dropped; entries of nodes that no stored version the
//! context covers carries go first (they record history nothing here needs); then the
//! oldest `last_update_ms`. A missing entry compares as 0, so a pruned clock `P` of `K` is
//! an ancestor of `K`. What that can and cannot do, for a pruned new version `P` and any
//! stored version `O`:
//!
//! - **Can: a descendant looks concurrent.** If the write was meant to replace `O` (its
//!   context covered `O`) but pruning dropped an entry where `O` is ahead, `P` and `O`
//!   compare as concurrent: `O` stays as a spurious sibling, identically on every replica
//!   (they compare the same clocks). The same happens with a stale copy of an old version on
//!   another replica that carries a dropped entry; read repair brings it back as a sibling.
//! - **Resolved by the next read-modify-write, if it fits.** That write's context covers
//!   the spurious sibling, whose entries are now kept in preference, so it is collapsed as
//!   long as the siblings' clocks name at most `clock_entries_max` nodes together (counting
//!   the coordinator). When they name more, no single write can descend them all and at
//!   least one spurious sibling survives every write: it takes more than
//!   `clock_entries_max` distinct coordinators among a key's live versions (a key has 3
//!   replicas plus fallbacks), and the remedy is a larger `clock_entries_max`.
//! - **Cannot: a concurrent version looks superseded by `P`.** `O` superseded by `P` needs
//!   `P >= O` on every entry of `O`; pruning only lowers `P`, so it never creates such a
//!   dominance. And `P` never looks superseded by a concurrent `O`: `P` keeps its own entry
//!   with a counter above everything its coordinator stores for the key, which only `P`'s
//!   descendants can carry.
//! - **The exception: a reused counter.** The last argument fails if a coordinator issues a
//!   counter twice. That happens only if it no longer stores any version with its entry at
//!   that height: its entry was pruned away from every version it holds (at least
//!   `clock_entries_max` other nodes coordinated newer writes of the key since) or it lost
//!   its disk. Then a stale version elsewhere that carries the old counter can supersede the
//!   new write (or tie with it; ties keep the last-write-wins winner on every replica).
//!
//! # Sibling bound ([`VersionConfig::siblings_max`], default 64)
//!
//! A client write that would leave more than `siblings_max` siblings (and more than there
//! were before it) is refused with [`crate::Error::LimitExceeded`] and changes nothing: the
//! writer learns it must read and resolve first (a write whose context covers the siblings
//! always shrinks the set, so it is always accepted). Replica-side [`SiblingSet::reconcile`]
//! and [`SiblingSet::merge`] never drop a version to meet the bound, since that version may
//! be the only copy of an acknowledged write; they only refuse (again with no change) past
//! [`SIBLINGS_STORED_MAX`], the codec's hard ceiling, which concurrent writes at different
//! coordinators can approach only by the number of replicas times `siblings_max`.
//!
//! # Last-write-wins ([`ConflictPolicy::LastWriteWins`])
//!
//! Every set keeps one version: the highest `(timestamp_ms, writer)` (then value and clock,
//! so that all replicas pick the same one). Concurrent writes are not kept: every one but
//! the winner is lost, even though it was acknowledged, and a writer whose clock runs behind
//! loses to an older write from a node whose clock runs ahead. A write's timestamp is
//! raised above every version stored on the replica that mints it, so a write that
//! reaches a replica after another (a read-modify-write, or a plain SET sent after the
//! previous one was acknowledged, through any coordinator) wins there whatever the wall
//! clocks say; writes minted on replicas that had not yet seen each other are still
//! ordered by their timestamps.

pub mod clock;
pub mod codec;
pub mod siblings;

pub use clock::{Causality, ClockEntry, VectorClock};
pub use siblings::SiblingSet;

use serde::{Deserialize, Serialize};

/// The most entries a decoded vector clock may hold: far above `clock_entries_max` (a
/// client's context merges the clocks of all siblings, and contexts are pruned to this).
pub const CLOCK_ENTRIES_MAX: usize = 1024;
/// The longest node name in a clock, and the longest writer name, in bytes.
pub const NODE_NAME_BYTES_MAX: usize = 255;
/// The most versions a stored sibling set may hold (the codec's ceiling, see the module
/// docs for why it is above `siblings_max`).
pub const SIBLINGS_STORED_MAX: usize = 1024;
/// The largest value one version may carry in the codec; the node enforces its own, much
/// smaller, configured value limit before a value gets here.
pub const VALUE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// One write of a key: its causal history, when and where it was made, and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The causal history of this write.
    pub clock: VectorClock,
    /// Wall-clock milliseconds at the coordinator (raised above the versions it replaced).
    pub timestamp_ms: u64,
    /// The node that coordinated the write; breaks last-write-wins ties.
    pub writer: String,
    /// The value; `None` is a deletion, kept as a tombstone so it replicates and can be a
    /// sibling of a concurrent update.
    pub value: Option<Vec<u8>>,
}

/// How concurrent writes of one key are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ConflictPolicy {
    /// Keep every concurrent version; the client resolves them on its next write.
    #[default]
    #[serde(rename = "siblings")]
    Siblings,
    /// Keep only the version with the highest `(timestamp_ms, writer)`; others are lost.
    #[serde(rename = "lww")]
    LastWriteWins,
}

/// The versioning settings of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VersionConfig {
    /// How concurrent writes are resolved: `siblings` or `lww`.
    pub policy: ConflictPolicy,
    /// Client writes that would leave more siblings than this are refused.
    pub siblings_max: usize,
    /// A new version's clock keeps at most this many entries (oldest updates dropped).
    pub clock_entries_max: usize,
}

impl Default for VersionConfig {
    fn default() -> Self {
        VersionConfig {
            policy: ConflictPolicy::Siblings,
            siblings_max: 64,
            clock_entries_max: 10,
        }
    }
}

impl VersionConfig {
    /// Checks the limits against the codec's ceilings.
    pub fn validate(&self) -> crate::Result<()> {
        if self.siblings_max == 0 || self.siblings_max > SIBLINGS_STORED_MAX {
            return Err(crate::Error::InvalidConfig {
                field: "siblings_max".into(),
                detail: format!("{} is not in 1..={SIBLINGS_STORED_MAX}", self.siblings_max),
            });
        }
        if self.clock_entries_max == 0 || self.clock_entries_max > CLOCK_ENTRIES_MAX {
            return Err(crate::Error::InvalidConfig {
                field: "clock_entries_max".into(),
                detail: format!(
                    "{} is not in 1..={CLOCK_ENTRIES_MAX}",
                    self.clock_entries_max
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IntoDeserializer;

    #[test]
    fn conflict_policy_serde_names() {
        let parse = |name: &str| -> std::result::Result<ConflictPolicy, serde::de::value::Error> {
            ConflictPolicy::deserialize(name.into_deserializer())
        };
        assert_eq!(parse("siblings").ok(), Some(ConflictPolicy::Siblings));
        assert_eq!(parse("lww").ok(), Some(ConflictPolicy::LastWriteWins));
        assert!(parse("LastWriteWins").is_err());
    }

    #[test]
    fn config_validation() {
        assert!(VersionConfig::default().validate().is_ok());
        let zero_siblings = VersionConfig {
            siblings_max: 0,
            ..VersionConfig::default()
        };
        assert!(zero_siblings.validate().is_err());
        let huge_clock = VersionConfig {
            clock_entries_max: CLOCK_ENTRIES_MAX + 1,
            ..VersionConfig::default()
        };
        assert!(huge_clock.validate().is_err());
    }
}
