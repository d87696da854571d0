//! What runs over the whole store rather than one key: scans (anti-entropy, streaming,
//! `KV.SCAN`), dropping the copies of keys this node no longer replicates
//! (`CLUSTER.CLEANUP`), and compaction.

use super::LocalStore;
use crate::version::SiblingSet;
use crate::{Error, Result};

/// Where the scan after `rows` (one page of at most `limit` keys, in order) starts: just
/// past its last key when the page is full, `None` when the page reached the end.
pub fn next_page_start<T>(rows: &[(Vec<u8>, T)], limit: usize) -> Option<Vec<u8>> {
    match rows.last() {
        Some((key, _)) if rows.len() == limit => {
            let mut next = key.clone();
            next.push(0);
            Some(next)
        }
        _ => None,
    }
}

impl LocalStore {
    /// Up to `limit` keys from `start` (inclusive) with their stored bytes, undecoded:
    /// anti-entropy digests them without decoding.
    pub fn scan_raw(&self, start: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .db
            .scan(start, None, limit)?
            .into_iter()
            .map(|(key, stored)| (key, stored.value))
            .collect())
    }

    /// Drops this node's copy of `key` (an engine tombstone, no version: the key is not
    /// deleted for the cluster) if its stored bytes are still `expected` and `still` says
    /// so, both checked under the key's write lock; returns whether it did. A write of the
    /// key since `expected` was read keeps it. Visible at once; durable after
    /// [`LocalStore::commit`] (a copy dropped without it comes back after a crash, as a
    /// stale duplicate again). The write observer is not told: only keys
    /// outside every range this node replicates are dropped this way (`CLUSTER.CLEANUP`),
    /// and those are in none of its anti-entropy trees.
    pub fn remove_if_unchanged(
        &self,
        key: &[u8],
        expected: &[u8],
        still: impl FnOnce() -> bool,
    ) -> Result<bool> {
        let _guard = self.lock_for(key);
        let unchanged = self.db.get_with(key, |stored| {
            stored.is_some_and(|(_, bytes)| bytes == expected)
        })?;
        if !unchanged || !still() {
            return Ok(false);
        }
        // Its log record waits for the caller's commit: with `sync = always` a step of a
        // cleanup syncs once, not once per key.
        self.db.delete_deferred(key)?;
        Ok(true)
    }

    /// Merges every table into one, dropping what tombstones shadow, and waits for it.
    pub fn compact(&self) -> Result<()> {
        self.db.compact().map_err(Error::from)
    }

    /// Up to `limit` keys from `start` (inclusive) to `end` (exclusive), with their sets.
    /// Keys whose versions are all tombstones are included: callers decide how to show them.
    pub fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, SiblingSet)>> {
        self.db
            .scan(start, end, limit)?
            .into_iter()
            .map(|(key, stored)| Ok((key, SiblingSet::decode(&stored.value)?)))
            .collect()
    }
}
