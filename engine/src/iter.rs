//! Sorted cursors over entries, and the merge of several of them.

use crate::{Entry, Result};

mod merge;

pub use merge::MergingIterator;

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
