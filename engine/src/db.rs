//! Stand-in with the final public signatures; replaced by the LSM implementation.

use crate::{Options, Result, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The database handle. `Send + Sync`: share it across threads with `Arc`.
pub struct Db {
    map: parking_lot::Mutex<BTreeMap<Vec<u8>, Value>>,
}

/// Counters describing the database's state.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Number of live SSTables.
    pub tables: usize,
    /// Bytes in live SSTables.
    pub table_bytes: u64,
}

impl Db {
    /// Opens (creating if absent) the database in `path`, recovering from its log.
    pub fn open(_path: &Path, _options: Options) -> Result<Db> {
        Ok(Db {
            map: Default::default(),
        })
    }
    /// Writes `key` with `value` and empty metadata.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.put_with_meta(key, &[], value)
    }
    /// Writes `key` with caller metadata and value.
    pub fn put_with_meta(&self, key: &[u8], meta: &[u8], value: &[u8]) -> Result<()> {
        self.map.lock().insert(
            key.to_vec(),
            Value {
                meta: meta.to_vec(),
                value: value.to_vec(),
            },
        );
        Ok(())
    }
    /// Deletes `key` (writes a tombstone).
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        self.map.lock().remove(key);
        Ok(())
    }
    /// Reads `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        Ok(self.map.lock().get(key).cloned())
    }
    /// Up to `limit` live keys in order, from `start` (inclusive) to `end` (exclusive, or
    /// the end of the key space).
    pub fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Value)>> {
        let map = self.map.lock();
        Ok(map
            .range(start.to_vec()..)
            .take_while(|(k, _)| end.is_none_or(|e| k.as_slice() < e))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    /// Flushes the memtable to an SSTable and waits for it.
    pub fn flush(&self) -> Result<()> {
        Ok(())
    }
    /// Compacts everything into as few tables as possible and waits for it.
    pub fn compact(&self) -> Result<()> {
        Ok(())
    }
    /// Current counters.
    pub fn stats(&self) -> Stats {
        Stats::default()
    }
    /// Waits for background work, syncs the log and closes.
    pub fn close(self) -> Result<()> {
        Ok(())
    }
}
