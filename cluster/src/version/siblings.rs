//! Sibling sets: the mutually concurrent versions of one key, and how writes, replicated
//! versions and peers' sets fold into them. The policy and bounds are argued in the docs
//! of [`crate::version`].

use std::cmp::Ordering;

use super::{
    codec, Causality, ConflictPolicy, VectorClock, Version, VersionConfig, CLOCK_ENTRIES_MAX,
    SIBLINGS_STORED_MAX,
};
use crate::{Error, Result};

/// The versions of one key that no other stored version descends. Kept in a canonical
/// order (by clock entries, then last-write-wins order) so equal sets encode to equal
/// bytes and anti-entropy's hashes agree across replicas.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SiblingSet {
    /// Mutually concurrent versions; one at most under last-write-wins.
    pub versions: Vec<Version>,
}

impl SiblingSet {
    /// A set holding one version.
    pub fn single(version: Version) -> Self {
        SiblingSet {
            versions: vec![version],
        }
    }

    /// Folds in a version from a peer (a replicated write): versions it descends go, it is
    /// dropped if a stored version descends or equals it, otherwise it becomes a sibling.
    /// Under last-write-wins only the winner stays. Refused, with no change, past
    /// [`SIBLINGS_STORED_MAX`].
    pub fn reconcile(&mut self, incoming: Version, config: &VersionConfig) -> Result<()> {
        self.fold_in(
            [incoming],
            config.policy,
            SIBLINGS_STORED_MAX,
            "stored siblings",
        )
    }

    /// Folds in a peer's whole set (read repair, anti-entropy): the result holds the maximal,
    /// mutually concurrent versions of both. Refused, with no change, past
    /// [`SIBLINGS_STORED_MAX`].
    pub fn merge(&mut self, other: &SiblingSet, config: &VersionConfig) -> Result<()> {
        let incoming = other.versions.iter().cloned();
        self.fold_in(
            incoming,
            config.policy,
            SIBLINGS_STORED_MAX,
            "stored siblings",
        )
    }

    /// The causal context a client gets with its read: the merge of every sibling's clock.
    /// Sending it back with a write replaces all of them. Pruned to [`CLOCK_ENTRIES_MAX`] so
    /// it always decodes; a pruned context covers less, which can only leave a spurious
    /// sibling, never lose one.
    pub fn context(&self) -> VectorClock {
        let mut context = VectorClock::new();
        for version in &self.versions {
            context.merge(&version.clock);
        }
        context.prune(CLOCK_ENTRIES_MAX);
        context
    }

    /// A client write coordinated here: the new version's clock is `context` with the
    /// coordinator's counter raised above every counter it stores for the key (see the
    /// module docs of [`crate::version`]), pruned to `clock_entries_max`. It supersedes every
    /// sibling its clock descends (all the context covers, unless pruning intervened);
    /// siblings the context did not cover stay (except an earlier write through this same
    /// coordinator, see "Counters" there). Refused, with no change, when it would leave
    /// more than `siblings_max` siblings and more than before.
    pub fn write_with_context(
        &mut self,
        context: &VectorClock,
        coordinator: &str,
        now_ms: u64,
        value: Option<Vec<u8>>,
        config: &VersionConfig,
    ) -> Result<Version> {
        let version = self.mint(context, coordinator, now_ms, value, config)?;
        self.fold_in_minted(version.clone(), config)?;
        Ok(version)
    }

    /// [`SiblingSet::write_with_context`] returning only the new version's clock: no copy
    /// of the version (and its value) for a caller that replicates nothing.
    pub fn write_with_context_in_place(
        &mut self,
        context: &VectorClock,
        coordinator: &str,
        now_ms: u64,
        value: Option<Vec<u8>>,
        config: &VersionConfig,
    ) -> Result<VectorClock> {
        let version = self.mint(context, coordinator, now_ms, value, config)?;
        let clock = version.clock.clone();
        self.fold_in_minted(version, config)?;
        Ok(clock)
    }

    /// The version a write coordinated here makes (see [`SiblingSet::write_with_context`]).
    fn mint(
        &self,
        context: &VectorClock,
        coordinator: &str,
        now_ms: u64,
        value: Option<Vec<u8>>,
        config: &VersionConfig,
    ) -> Result<Version> {
        let stored_counter = self
            .versions
            .iter()
            .map(|version| version.clock.counter(coordinator))
            .max()
            .unwrap_or(0);
        let mut clock = context.clone();
        clock.advance_past(coordinator, stored_counter, now_ms)?;
        let covered: Vec<&VectorClock> = self
            .versions
            .iter()
            .map(|version| &version.clock)
            .filter(|sibling| context.descends(sibling))
            .collect();
        clock.prune_keeping(config.clock_entries_max, Some(coordinator), &covered);

        // A write minted here happened after every version stored here, whatever the wall
        // clocks say (and whether or not the writer read them): its timestamp goes above all
        // of them. Without this, a plain SET acknowledged after another one through a
        // different coordinator in the same millisecond lost the (timestamp, writer) order to
        // it: GET returned the older value, and `lww` dropped the newer write.
        let covered_timestamp = self
            .versions
            .iter()
            .map(|version| version.timestamp_ms.saturating_add(1))
            .max()
            .unwrap_or(0);
        Ok(Version {
            clock,
            timestamp_ms: now_ms.max(covered_timestamp),
            writer: coordinator.to_owned(),
            value,
        })
    }

    /// Folds in a version minted by [`SiblingSet::mint`].
    fn fold_in_minted(&mut self, version: Version, config: &VersionConfig) -> Result<()> {
        // A write that does not grow the set is accepted even above the bound, so that
        // resolving writes always go through.
        let limit = config
            .siblings_max
            .max(self.versions.len())
            .min(SIBLINGS_STORED_MAX);
        let what = "siblings after write (read and resolve them first)";
        self.fold_in([version], config.policy, limit, what)
    }

    /// True when every version is a tombstone (the key reads as absent).
    pub fn is_deleted(&self) -> bool {
        self.versions.iter().all(|version| version.value.is_none())
    }

    /// Adds `incoming` and keeps the survivors under `policy`, in canonical order; when more
    /// than `limit` would survive, leaves the set as it was. Works in place, because a
    /// replica does this on every replicated write and values can be large.
    fn fold_in(
        &mut self,
        incoming: impl IntoIterator<Item = Version>,
        policy: ConflictPolicy,
        limit: usize,
        what: &'static str,
    ) -> Result<()> {
        let original_length = self.versions.len();
        self.versions.extend(incoming);
        let keep = survivors(&self.versions, policy);
        let kept = keep.iter().filter(|&&keep| keep).count();
        if kept > limit {
            self.versions.truncate(original_length);
            return Err(Error::LimitExceeded {
                what,
                size: kept,
                limit,
            });
        }
        let mut index = 0;
        self.versions.retain(|_| {
            index += 1;
            keep[index - 1]
        });
        self.versions.sort_by(canonical_order);
        Ok(())
    }
}

/// Which of `candidates` to keep under `policy`.
fn survivors(candidates: &[Version], policy: ConflictPolicy) -> Vec<bool> {
    let mut keep = vec![false; candidates.len()];
    match policy {
        ConflictPolicy::LastWriteWins => {
            let winner = (0..candidates.len())
                .max_by(|&left, &right| last_write_order(&candidates[left], &candidates[right]));
            if let Some(winner) = winner {
                keep[winner] = true;
            }
        }
        ConflictPolicy::Siblings => {
            for (index, candidate) in candidates.iter().enumerate() {
                keep[index] = !is_superseded(index, candidate, candidates);
            }
        }
    }
    keep
}

/// True when another candidate descends this one. Among versions with equal clocks (the
/// same write, or a reused counter) one is kept, the last-write-wins winner, so every
/// replica keeps the same one.
fn is_superseded(index: usize, candidate: &Version, candidates: &[Version]) -> bool {
    // A candidate never supersedes itself (equal clocks, equal order, not an earlier
    // index), and comparing it with itself would compare its whole value.
    let mut others = candidates
        .iter()
        .enumerate()
        .filter(|&(other_index, _)| other_index != index);
    others.any(|(other_index, other)| {
        match other.clock.compare(&candidate.clock) {
            Causality::After => true,
            Causality::Equal => match last_write_order(other, candidate) {
                Ordering::Greater => true,
                // Identical versions: keep the first copy.
                Ordering::Equal => other_index < index,
                Ordering::Less => false,
            },
            Causality::Before | Causality::Concurrent => false,
        }
    })
}

/// Last-write-wins order: `(timestamp_ms, writer)`, then value and clock so that the order
/// is total and every replica picks the same winner.
pub(crate) fn last_write_order(left: &Version, right: &Version) -> Ordering {
    (left.timestamp_ms, &left.writer, &left.value)
        .cmp(&(right.timestamp_ms, &right.writer, &right.value))
        .then_with(|| clock_order(&left.clock, &right.clock))
}

/// Whether folding the one version `incoming` into the set of versions `stored` leaves
/// `incoming` alone, as [`SiblingSet::reconcile`] and [`SiblingSet::merge`] of a
/// one-version set do when every stored version is superseded by it: under `siblings` its
/// clock descends each stored one (an equal clock must lose the last-write-wins order to
/// it), under `lww` it is not behind any of them in last-write-wins order. Works on the
/// encoded versions ([`codec::version_views`]), so a replica stores a replicated set as it
/// came without decoding either set; the common case, a write made with the context of
/// the previous one or by the same coordinator.
pub(crate) fn replaces_all(
    incoming: &codec::VersionView<'_>,
    stored: &[codec::VersionView<'_>],
    policy: ConflictPolicy,
) -> bool {
    stored.iter().all(|old| {
        let order = incoming.last_write_order(old);
        match policy {
            ConflictPolicy::LastWriteWins => order != Ordering::Less,
            ConflictPolicy::Siblings => match incoming.compare_clocks(old) {
                Causality::After => true,
                Causality::Equal => order == Ordering::Greater,
                Causality::Before | Causality::Concurrent => false,
            },
        }
    })
}

/// The order versions are stored in: by clock, then by last-write-wins order.
fn canonical_order(left: &Version, right: &Version) -> Ordering {
    clock_order(&left.clock, &right.clock).then_with(|| last_write_order(left, right))
}

fn clock_order(left: &VectorClock, right: &VectorClock) -> Ordering {
    fn key(entry: &super::ClockEntry) -> (&str, u64, u64) {
        (entry.node.as_str(), entry.counter, entry.last_update_ms)
    }
    left.entries()
        .iter()
        .map(key)
        .cmp(right.entries().iter().map(key))
}

#[cfg(test)]
mod tests;
