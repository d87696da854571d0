//! Sorted cursors over entries, shared by the memtable, tables and merges.

use crate::error::Result;
use crate::types::Entry;

/// A sorted cursor over entries. One version per key per source.
pub trait EntryIterator: Send {
    /// Positions at the first entry whose key is >= `key`.
    fn seek(&mut self, key: &[u8]) -> Result<()>;
    fn seek_to_first(&mut self) -> Result<()>;
    fn valid(&self) -> bool;
    /// The current entry; only call when valid().
    fn entry(&self) -> &Entry;
    fn advance(&mut self) -> Result<()>;
}
