//! Vector clocks: one `(node, counter, last_update_ms)` entry per coordinating node.

use std::cmp::Ordering;

use super::NODE_NAME_BYTES_MAX;
use crate::{Error, Result};

/// How two clocks' histories relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Causality {
    /// The same history.
    Equal,
    /// `self` happened before `other`: `other` descends it.
    Before,
    /// `self` descends `other`.
    After,
    /// Neither descends the other: concurrent writes, siblings.
    Concurrent,
}

/// One node's entry in a clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockEntry {
    /// The coordinating node's name.
    pub node: String,
    /// How many writes of this key the node has coordinated in this history.
    pub counter: u64,
    /// When the node last advanced this entry (wall-clock ms); only pruning reads it, so it
    /// plays no part in comparisons.
    pub last_update_ms: u64,
}

/// A vector clock. Entries are kept sorted by node name so compare and merge are one linear
/// walk, and so equal clocks encode to equal bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VectorClock {
    entries: Vec<ClockEntry>,
}

impl VectorClock {
    /// The empty clock: the history of a key never written (a blind write's context).
    pub fn new() -> Self {
        VectorClock::default()
    }

    /// Builds a clock from entries sorted strictly by node name, as the decoder has checked.
    pub(crate) fn from_sorted_entries(entries: Vec<ClockEntry>) -> Self {
        debug_assert!(entries.windows(2).all(|pair| pair[0].node < pair[1].node));
        VectorClock { entries }
    }

    /// The entries, sorted by node name.
    pub fn entries(&self) -> &[ClockEntry] {
        &self.entries
    }

    /// How many nodes appear in the clock.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for the empty clock.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The node's counter; 0 when the node has no entry.
    pub fn counter(&self, node: &str) -> u64 {
        match self.position(node) {
            Ok(index) => self.entries[index].counter,
            Err(_) => 0,
        }
    }

    /// Records one more write coordinated by `node` at `now_ms`.
    pub fn increment(&mut self, node: &str, now_ms: u64) -> Result<()> {
        let current = self.counter(node);
        self.advance_past(node, current, now_ms)
    }

    /// Sets `node`'s counter to `floor + 1` (or one past its current counter if higher), so
    /// a coordinator can issue a counter above every one it has stored for the key.
    pub(crate) fn advance_past(&mut self, node: &str, floor: u64, now_ms: u64) -> Result<()> {
        if node.is_empty() || node.len() > NODE_NAME_BYTES_MAX {
            return Err(Error::LimitExceeded {
                what: "vector clock node name bytes (1..)",
                size: node.len(),
                limit: NODE_NAME_BYTES_MAX,
            });
        }
        let next = floor
            .max(self.counter(node))
            .checked_add(1)
            .ok_or_else(|| {
                Error::CorruptVersion(format!("counter of node {node:?} would overflow"))
            })?;
        match self.position(node) {
            Ok(index) => {
                let entry = &mut self.entries[index];
                entry.counter = next;
                entry.last_update_ms = now_ms;
            }
            Err(index) => self.entries.insert(
                index,
                ClockEntry {
                    node: node.to_owned(),
                    counter: next,
                    last_update_ms: now_ms,
                },
            ),
        }
        Ok(())
    }

    /// How this clock's history relates to `other`'s (missing entries count as 0).
    pub fn compare(&self, other: &VectorClock) -> Causality {
        let mut self_ahead = false;
        let mut other_ahead = false;
        let (mut left, mut right) = (0, 0);
        while left < self.entries.len() || right < other.entries.len() {
            let order = match (self.entries.get(left), other.entries.get(right)) {
                (Some(mine), Some(theirs)) => mine.node.cmp(&theirs.node),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            // A node missing on one side counts as counter 0 there.
            let (self_counter, other_counter) = match order {
                Ordering::Less => {
                    left += 1;
                    (self.entries[left - 1].counter, 0)
                }
                Ordering::Greater => {
                    right += 1;
                    (0, other.entries[right - 1].counter)
                }
                Ordering::Equal => {
                    left += 1;
                    right += 1;
                    (
                        self.entries[left - 1].counter,
                        other.entries[right - 1].counter,
                    )
                }
            };
            self_ahead |= self_counter > other_counter;
            other_ahead |= other_counter > self_counter;
        }
        match (self_ahead, other_ahead) {
            (false, false) => Causality::Equal,
            (false, true) => Causality::Before,
            (true, false) => Causality::After,
            (true, true) => Causality::Concurrent,
        }
    }

    /// True when this clock has seen everything `other` has (equal or after).
    pub fn descends(&self, other: &VectorClock) -> bool {
        matches!(self.compare(other), Causality::Equal | Causality::After)
    }

    /// Entry-wise maximum: the history of both. For equal counters the later
    /// `last_update_ms` is kept, so merge stays commutative, associative and idempotent.
    pub fn merge(&mut self, other: &VectorClock) {
        let mine = std::mem::take(&mut self.entries);
        let mut merged = Vec::with_capacity(mine.len().max(other.entries.len()));
        let mut left = mine.into_iter().peekable();
        let mut right = other.entries.iter().peekable();
        loop {
            let order = match (left.peek(), right.peek()) {
                (None, None) => break,
                (Some(mine), Some(theirs)) => mine.node.cmp(&theirs.node),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
            };
            let next = match order {
                Ordering::Less => left.next(),
                Ordering::Greater => right.next().cloned(),
                Ordering::Equal => match (left.next(), right.next()) {
                    (Some(mine), Some(theirs)) => Some(later_entry(mine, theirs)),
                    (mine, _) => mine,
                },
            };
            merged.extend(next);
        }
        self.entries = merged;
    }

    /// Drops the entries with the oldest `last_update_ms` (ties: node name) until at most
    /// `max_entries` remain (at least 1 is kept). See the module docs of
    /// [`crate::version`] for what this can do to comparisons.
    pub fn prune(&mut self, max_entries: usize) {
        self.prune_keeping(max_entries, None, &[]);
    }

    /// Like [`VectorClock::prune`], but never drops `pinned`'s entry (a new write keeps the
    /// entry that makes it distinct from every version it did not see), and drops entries
    /// of nodes absent from every clock in `live` before any other: those only record
    /// history no stored version carries, so dropping them cannot stop this clock from
    /// descending the live versions.
    pub(crate) fn prune_keeping(
        &mut self,
        max_entries: usize,
        pinned: Option<&str>,
        live: &[&VectorClock],
    ) {
        let max_entries = max_entries.max(1);
        if self.entries.len() <= max_entries {
            return;
        }
        let is_live = |node: &str| live.iter().any(|clock| clock.counter(node) > 0);
        let mut drop_order: Vec<(bool, u64, usize)> = (0..self.entries.len())
            .filter(|&index| Some(self.entries[index].node.as_str()) != pinned)
            .map(|index| {
                let entry = &self.entries[index];
                (is_live(&entry.node), entry.last_update_ms, index)
            })
            .collect();
        // Entries are sorted by node, so the index breaks last-update ties by node name.
        drop_order.sort_unstable();
        let mut drop = vec![false; self.entries.len()];
        for &(_, _, index) in drop_order.iter().take(self.entries.len() - max_entries) {
            drop[index] = true;
        }
        let mut index = 0;
        self.entries.retain(|_| {
            index += 1;
            !drop[index - 1]
        });
    }

    fn position(&self, node: &str) -> std::result::Result<usize, usize> {
        self.entries
            .binary_search_by(|entry| entry.node.as_str().cmp(node))
    }
}

/// The entry with the higher `(counter, last_update_ms)`: a maximum on a total order.
fn later_entry(mine: ClockEntry, theirs: &ClockEntry) -> ClockEntry {
    if (theirs.counter, theirs.last_update_ms) > (mine.counter, mine.last_update_ms) {
        theirs.clone()
    } else {
        mine
    }
}

#[cfg(test)]
mod tests;
