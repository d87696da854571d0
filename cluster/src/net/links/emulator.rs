//! The shared, run-time changeable wrapper around a [`LinkTable`].

use std::sync::{PoisonError, RwLock};

use rand::Rng;

use super::{Endpoint, LinkConfig, LinkTable, MessageKind, PartitionGroup, PartitionId, Verdict};
use crate::Result;

/// The link table shared by every sender on a node, behind a lock so admin commands can
/// change it while traffic flows. Verdicts take the read lock only.
#[derive(Debug, Default)]
pub struct LinkEmulator {
    table: RwLock<LinkTable>,
}

impl LinkEmulator {
    /// An emulator over `table`.
    pub fn new(table: LinkTable) -> Self {
        LinkEmulator {
            table: RwLock::new(table),
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
        self.read(|table| table.verdict_for(from, to, kind, rng))
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
