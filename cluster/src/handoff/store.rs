//! Durable hints: a separate engine instance holding writes meant for other nodes.
//!
//! # Record format, version 1
//!
//! ```text
//! engine key   u8 owner length, owner id (UTF-8), then the user key
//! engine meta  0x48 0x4E ("HN"), u8 format version 1, u64 big-endian stored-at (ms)
//! engine value the hint's encoded SiblingSet (format in crate::version::codec)
//! ```
//!
//! Keys sort by owner first, so a delivery pass meets one owner's hints together. One
//! record per (owner, key): a second hint for the pair merges its versions into the first
//! and keeps the first's stored-at time, so a key written over and over still expires.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::ring::NodeId;
use crate::version::{SiblingSet, VersionConfig};
use crate::{Error, Result};

use super::{HintConfig, HintCounters};

/// The first bytes of every hint's metadata: "HN".
pub const HINT_MAGIC: [u8; 2] = *b"HN";

/// The hint record format this build writes.
pub const HINT_FORMAT_VERSION: u8 = 1;

const META_SIZE_BYTES: usize = 11;

/// Rows read per engine scan when counting hints at open.
const COUNT_BATCH: usize = 4096;

/// One stored hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The node the write was meant for.
    pub owner: NodeId,
    /// The user key.
    pub key: Vec<u8>,
    /// The versions to deliver.
    pub siblings: SiblingSet,
    /// When the hint was first stored, in milliseconds since the epoch.
    pub stored_at_ms: u64,
    /// The stored value bytes, to delete the hint only if unchanged since it was read.
    encoded: Vec<u8>,
}

/// Encodes the engine key of `owner`'s hint for `key`.
pub fn encode_key(owner: &str, key: &[u8]) -> Result<Vec<u8>> {
    let length = u8::try_from(owner.len()).map_err(|_| Error::LimitExceeded {
        what: "hint owner id",
        size: owner.len(),
        limit: u8::MAX as usize,
    })?;
    let mut bytes = Vec::with_capacity(1 + owner.len() + key.len());
    bytes.push(length);
    bytes.extend_from_slice(owner.as_bytes());
    bytes.extend_from_slice(key);
    Ok(bytes)
}

/// Splits an engine key into owner and user key.
pub fn decode_key(bytes: &[u8]) -> Result<(NodeId, Vec<u8>)> {
    let corrupt = |detail: &str| Error::CorruptVersion(format!("hint key: {detail}"));
    let (&length, rest) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
    let length = length as usize;
    if rest.len() < length {
        return Err(corrupt("shorter than its owner length"));
    }
    let owner = std::str::from_utf8(&rest[..length]).map_err(|_| corrupt("owner not UTF-8"))?;
    Ok((NodeId::new(owner), rest[length..].to_vec()))
}

/// Encodes a hint's metadata.
pub fn encode_meta(stored_at_ms: u64) -> [u8; META_SIZE_BYTES] {
    let mut meta = [0; META_SIZE_BYTES];
    meta[..2].copy_from_slice(&HINT_MAGIC);
    meta[2] = HINT_FORMAT_VERSION;
    meta[3..].copy_from_slice(&stored_at_ms.to_be_bytes());
    meta
}

/// Reads a hint's stored-at time from its metadata.
pub fn decode_meta(meta: &[u8]) -> Result<u64> {
    if meta.len() != META_SIZE_BYTES || meta[..2] != HINT_MAGIC {
        return Err(Error::CorruptVersion(format!(
            "hint metadata of {} bytes without the HN magic",
            meta.len()
        )));
    }
    if meta[2] != HINT_FORMAT_VERSION {
        return Err(Error::CorruptVersion(format!(
            "hint format version {}, this node reads {HINT_FORMAT_VERSION}",
            meta[2]
        )));
    }
    let mut stamp = [0; 8];
    stamp.copy_from_slice(&meta[3..]);
    Ok(u64::from_be_bytes(stamp))
}

/// This node's hints for other nodes.
pub struct HintStore {
    db: engine::Db,
    config: HintConfig,
    versions: VersionConfig,
    /// Hints stored now.
    pending: AtomicU64,
    /// Serialises read-modify-write and delete-if-unchanged; hints are rare next to
    /// client writes, so one lock is enough.
    lock: Mutex<()>,
    /// Shared with INFO.
    pub counters: HintCounters,
}

impl HintStore {
    /// Opens (or creates) the hint store in `directory`, counting the hints already there.
    /// `options` are the node's engine options (sizes are raised to fit whole sets).
    pub fn open(
        directory: &Path,
        mut options: engine::Options,
        config: HintConfig,
        versions: VersionConfig,
    ) -> Result<HintStore> {
        options.value_size_bytes_max =
            crate::store::stored_set_bytes_max(options.value_size_bytes_max, &versions);
        options.key_size_bytes_max = options.key_size_bytes_max.saturating_add(256);
        options.wal.record_size_bytes_max = options
            .wal
            .record_size_bytes_max
            .max(options.value_size_bytes_max + options.key_size_bytes_max + 1024);
        let db = engine::Db::open(directory, options)?;
        let store = HintStore {
            db,
            config,
            versions,
            pending: AtomicU64::new(0),
            lock: Mutex::new(()),
            counters: HintCounters::default(),
        };
        let mut start = Vec::new();
        let mut count = 0u64;
        loop {
            let rows = store.db.scan(&start, None, COUNT_BATCH)?;
            count += rows.len() as u64;
            match rows.last() {
                Some((key, _)) if rows.len() == COUNT_BATCH => {
                    start = key.clone();
                    start.push(0);
                }
                _ => break,
            }
        }
        store.pending.store(count, Ordering::Relaxed);
        Ok(store)
    }

    /// Hints stored now.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// The limits this store enforces.
    pub fn config(&self) -> &HintConfig {
        &self.config
    }

    /// Stores a hint that `owner` should get `siblings` for `key`, merging with an
    /// existing hint for the pair. Refused (and counted as dropped) when the store holds
    /// `count_max` hints already.
    pub fn store(&self, owner: &str, key: &[u8], siblings: &SiblingSet, now_ms: u64) -> Result<()> {
        let engine_key = encode_key(owner, key)?;
        let _guard = self.guard();
        let (mut merged, stored_at_ms, existed) = match self.db.get(&engine_key)? {
            Some(stored) => (
                SiblingSet::decode(&stored.value)?,
                decode_meta(&stored.meta)?,
                true,
            ),
            None => (SiblingSet::default(), now_ms, false),
        };
        if !existed && self.pending() >= self.config.count_max {
            HintCounters::add(&self.counters.dropped, 1);
            return Err(Error::Command(format!(
                "ERR hint store full: {} hints stored, hints.count_max is {}",
                self.pending(),
                self.config.count_max
            )));
        }
        merged.merge(siblings, &self.versions)?;
        self.db
            .put_with_meta(&engine_key, &encode_meta(stored_at_ms), &merged.encode())?;
        if !existed {
            self.pending.fetch_add(1, Ordering::Relaxed);
        }
        HintCounters::add(&self.counters.stored, 1);
        Ok(())
    }

    /// Up to `limit` hints in engine key order (by owner, then key). A record that cannot
    /// be read is deleted and counted as dropped.
    pub fn batch(&self, limit: usize) -> Result<Vec<Hint>> {
        let rows = self.db.scan(&[], None, limit)?;
        let mut hints = Vec::with_capacity(rows.len());
        for (engine_key, stored) in rows {
            let decoded = decode_key(&engine_key).and_then(|(owner, key)| {
                Ok(Hint {
                    owner,
                    key,
                    siblings: SiblingSet::decode(&stored.value)?,
                    stored_at_ms: decode_meta(&stored.meta)?,
                    encoded: stored.value,
                })
            });
            match decoded {
                Ok(hint) => hints.push(hint),
                Err(_) => {
                    // An unreadable record would block delivery forever: drop it.
                    let _guard = self.guard();
                    self.db.delete(&engine_key)?;
                    self.forget_one();
                    HintCounters::add(&self.counters.dropped, 1);
                }
            }
        }
        Ok(hints)
    }

    /// Whether `hint` is past `age_ms_max` at `now_ms`.
    pub fn is_expired(&self, hint: &Hint, now_ms: u64) -> bool {
        now_ms.saturating_sub(hint.stored_at_ms) > self.config.age_ms_max
    }

    /// Deletes `hint` if its record is unchanged since it was read (a hint merged into it
    /// meanwhile must survive for the next pass). Returns whether it was deleted.
    pub fn remove_if_unchanged(&self, hint: &Hint) -> Result<bool> {
        let engine_key = encode_key(hint.owner.as_str(), &hint.key)?;
        let _guard = self.guard();
        match self.db.get(&engine_key)? {
            Some(stored) if stored.value == hint.encoded => {
                self.db.delete(&engine_key)?;
                self.forget_one();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Makes everything durable and closes the engine.
    pub fn close(self) -> Result<()> {
        self.db.close().map_err(Error::from)
    }

    fn forget_one(&self) {
        let _ = self
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |count| {
                Some(count.saturating_sub(1))
            });
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        // The engine write is atomic: a poisoned lock leaves no half-written hint.
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests;
