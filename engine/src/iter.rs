//! Sorted cursors over entries: the concatenation of a run's tables, and the merge of
//! several sources.

use crate::{Entry, Result};

mod merge;
mod run;

pub use merge::MergingIterator;
pub use run::RunIterator;

/// A sorted cursor over entries. One version per key per source.
pub trait EntryIterator: Send {
    /// Positions at the first entry whose key is >= `key`.
    fn seek(&mut self, key: &[u8]) -> Result<()>;
    /// Positions at the first entry.
    fn seek_to_first(&mut self) -> Result<()>;
    /// Whether the cursor is on an entry.
    fn valid(&self) -> bool;
    /// The current entry; only call when valid().
    fn entry(&self) -> &Entry;
    /// Moves to the next entry.
    fn advance(&mut self) -> Result<()>;
}
