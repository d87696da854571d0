//! The shared, run-time changeable wrapper around a [`LinkTable`].

use std::sync::{PoisonError, RwLock};

use rand::Rng;

use super::stats::{self, LinkStats, Measure, Scope};
use super::{Endpoint, LinkConfig, LinkTable, MessageKind, PartitionGroup, PartitionId, Verdict};
use crate::Result;

/// The link table shared by every sender on a node, behind a lock so admin commands can
/// change it while traffic flows. Verdicts take the read lock only.
#[derive(Debug, Default)]
pub struct LinkEmulator {
    table: RwLock<LinkTable>,
    /// The WARS messages' delays, for `LINK.STATS` ([`stats`]).
    stats: LinkStats,
}

impl LinkEmulator {
    /// An emulator over `table`.
    pub fn new(table: LinkTable) -> Self {
        LinkEmulator {
            table: RwLock::new(table),
            stats: LinkStats::default(),
        }
    }

    /// An emulator configured by a node's `[links]` section.
    pub fn from_config(config: &LinkConfig) -> Result<Self> {
        Ok(Self::new(LinkTable::from_config(config)?))
    }

    /// Decides one message's fate under the current table.
    pub fn verdict<R: Rng + ?Sized>(
        &self,
        from: Endpoint<'_>,
        to: Endpoint<'_>,
        rng: &mut R,
    ) -> Verdict {
        self.read(|table| table.verdict(from, to, rng))
    }

    /// Decides the fate of one `kind` message (per-kind delays apply).
    pub fn verdict_for<R: Rng + ?Sized>(
        &self,
        from: Endpoint<'_>,
        to: Endpoint<'_>,
        kind: MessageKind,
        rng: &mut R,
    ) -> Verdict {
        let verdict = self.read(|table| table.verdict_for(from, to, kind, rng));
        if let Verdict::Deliver { delay } = verdict {
            if kind != MessageKind::Other && from != to {
                let scope = Scope::of(from.datacenter, to.datacenter);
                self.stats.record(kind, scope, Measure::Applied, delay);
            }
        }
        verdict
    }

    /// Notes that a `kind` message with `request_id` left this node's transport for `to`
    /// (after its verdict), so the receiver can measure its transit ([`stats`]).
    pub fn note_sent(
        &self,
        from: Endpoint<'_>,
        to: Endpoint<'_>,
        request_id: u64,
        kind: MessageKind,
    ) {
        stats::note_sent(from, to, request_id, kind);
    }

    /// Notes that this node (`to`) decoded a `kind` message with `request_id` from `from`:
    /// its transit is recorded when the sender noted it in this process.
    pub fn note_received(&self, from: &str, to: &str, request_id: u64, kind: MessageKind) {
        if let Some((transit, scope)) = stats::note_received(from, to, request_id, kind) {
            self.stats.record(kind, scope, Measure::Transit, transit);
        }
    }

    /// The delays seen so far ([`stats`]).
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// Runs `f` on the current table.
    pub fn read<T>(&self, f: impl FnOnce(&LinkTable) -> T) -> T {
        // A panic elsewhere cannot leave the table half-updated (every mutation validates
        // before writing), so a poisoned lock still guards consistent data.
        f(&self.table.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Changes the table in place, e.g. `emulator.update(|t| t.partition(a, b))`.
    pub fn update<T>(&self, f: impl FnOnce(&mut LinkTable) -> T) -> T {
        f(&mut self.table.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// Swaps in a whole new table (a reloaded configuration), returning the old one.
    pub fn replace(&self, table: LinkTable) -> LinkTable {
        self.update(|current| std::mem::replace(current, table))
    }

    /// A copy of the current table.
    pub fn snapshot(&self) -> LinkTable {
        self.read(LinkTable::clone)
    }

    /// Cuts both ways between two groups; see [`LinkTable::partition`].
    pub fn partition(&self, a: PartitionGroup, b: PartitionGroup) -> Result<PartitionId> {
        self.update(|table| table.partition(a, b))
    }

    /// Heals one partition; see [`LinkTable::heal`].
    pub fn heal(&self, id: PartitionId) -> bool {
        self.update(|table| table.heal(id))
    }

    /// Heals every partition; see [`LinkTable::heal_all`].
    pub fn heal_all(&self) -> usize {
        self.update(LinkTable::heal_all)
    }

    /// The human-readable table for the admin command.
    pub fn describe(&self) -> String {
        self.read(LinkTable::describe)
    }
}
