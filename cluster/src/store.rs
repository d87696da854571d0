//! The local replica store: this node's copy of the keys it replicates, over [`engine::Db`].
//!
//! # Layout
//!
//! One engine record per key. The engine value is the key's encoded
//! [`SiblingSet`] (format in [`crate::version::codec`]: magic `VS`, version 1). A deleted
//! key keeps its tombstone versions in the set (an engine `Put`, not an engine delete), so
//! the deletion replicates and can be a sibling of a concurrent update.
//!
//! The engine metadata holds the set's digest while a write observer is set (anti-entropy
//! on, as it is by default): one tag byte (1) and the 16 little-endian bytes of
//! [`crate::antientropy::wide_digest`] of the value, written with it in the same record
//! (so the engine's checksums cover both, and they never disagree). A digest read is then
//! answered from those 17 bytes without touching the value (whose first read, a cache miss
//! per 64 bytes, was most of a replica's work for it), and a write takes the digest of
//! the set it replaces from them instead of hashing it. Empty or other metadata (a store
//! written without an observer, or by a build before this one) means "hash the value":
//! every reader falls back to that, so no migration is needed.
//!
//! # Sizes
//!
//! `engine.value_size_bytes_max` in the node's config is the largest *client* value. The
//! stored set holds up to `siblings_max` such values plus their clocks, so the engine is
//! opened with its own value limit raised to [`stored_set_bytes_max`] (capped at the
//! engine's 64 MiB ceiling); client values are checked against the configured limit before
//! they reach the engine, with an error naming both sizes.
//!
//! # Concurrency
//!
//! Writes are read-modify-write (decode the set, fold the new version in, encode, put).
//! Two writes to one key must not interleave, or one would overwrite the other's version:
//! a key's writes are serialised by one of [`WRITE_STRIPES`] mutexes chosen by key hash.
//! Reads take no lock: the engine returns the last stored set whole.
//!
//! # A stored set that does not decode
//!
//! The engine checks its own records (CRC-32C on log records and table blocks), so a stored
//! set that fails to decode is one the engine kept intact but that was wrong when written
//! (a bug, or bytes from another format). Reads of it fail with
//! [`Error::CorruptVersion`] naming the key's replica; a coordinator counts that as the
//! replica failing and answers from the others. A write of the key replaces it: the
//! versions it held are unreadable already, so the write keeps what it brings (a client
//! write its new version, a replicated `Put`, read repair or anti-entropy the set other
//! replicas hold), logs the key and counts it (`corrupt_sets_replaced` in INFO). Without
//! that, the key could never be written again on this replica, and a single node could not
//! even delete it.
//!
//! # Write observer
//!
//! Anti-entropy keeps Merkle trees current from [`WriteObserver::stored`], called after
//! every engine write of a key with the digests ([`crate::antientropy::digest`]) of the old
//! and new stored bytes, under the key's stripe lock (so one key's calls come in write
//! order). Without an observer nothing is hashed.
//!
//! Every method is synchronous and may block on the commit log's fsync (`wal.sync =
//! always`) or on an mmap page fault; async callers run them on a blocking thread.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::ring::stable_hash64;
use crate::version::{SiblingSet, VectorClock, Version, VersionConfig};
use crate::{Error, Result};
use meta::{digest_meta, stored_digest};

/// Lock stripes for read-modify-write. 256 makes two hot keys sharing a stripe rare at the
/// concurrency one node sees (a few hundred connections) while costing 10 KiB.
pub const WRITE_STRIPES: usize = 256;

/// Room for one version's clock, timestamp and writer beside its value, in bytes: a clock of
/// `clock_entries_max` (default 10) entries of up to 255-byte names is under 3 KiB.
const VERSION_OVERHEAD_BYTES: usize = 4096;

/// The engine's ceiling on one value (see `engine::Options::validate`).
const ENGINE_VALUE_BYTES_CEILING: usize = 64 << 20;

/// The largest encoded set for client values of up to `value_bytes_max` bytes.
pub fn stored_set_bytes_max(value_bytes_max: usize, versions: &VersionConfig) -> usize {
    let per_version = value_bytes_max.saturating_add(VERSION_OVERHEAD_BYTES);
    per_version
        .saturating_mul(versions.siblings_max)
        .saturating_add(64)
        .min(ENGINE_VALUE_BYTES_CEILING)
}

/// Told of every write of a key (see the module docs, "Write observer").
pub trait WriteObserver: Send + Sync + 'static {
    /// `key` now holds bytes of digest `new`; before, bytes of digest `old` (`None`: absent).
    fn stored(&self, key: &[u8], old: Option<u64>, new: u64);
}

/// This node's replica of its keys.
pub struct LocalStore {
    /// Set once, by anti-entropy, before the node takes writes.
    observer: OnceLock<Arc<dyn WriteObserver>>,
    db: engine::Db,
    versions: VersionConfig,
    value_bytes_max: usize,
    key_bytes_max: usize,
    write_stripes: Vec<Mutex<()>>,
    /// Whether an engine call may wait long (a write waiting for its fsync): such calls go
    /// to tokio's blocking pool, the others run inline; see [`LocalStore::run`].
    calls_may_block: bool,
    /// Stored sets that did not decode and were replaced by a write (module docs).
    corrupt_sets_replaced: AtomicU64,
}

impl LocalStore {
    /// Runs `call` on this store. With the commit log synced lazily (`none`, `periodic`)
    /// an engine call returns in microseconds, so it runs inline on the calling async
    /// thread: handing every command to the blocking pool cost more in thread wake-ups than
    /// the storage work itself (profiled under redis-benchmark). With `always`, a write
    /// waits for its fsync, so calls go to tokio's blocking pool and never hold up the
    /// connections sharing this thread. Inline calls can still wait on a write stall (both
    /// memtables full) or a read of a block missing from the page cache; that holds up this
    /// thread's other connections too, as backpressure.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        call: impl FnOnce(&LocalStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if !self.calls_may_block {
            return call(self);
        }
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || call(&store))
            .await
            .map_err(|error| Error::Stopped(format!("storage task failed: {error}")))?
    }

    /// Opens (or creates) the store in `directory`. `options.value_size_bytes_max` is the
    /// client value limit; the engine itself is opened with room for whole sibling sets.
    pub fn open(
        directory: &Path,
        options: engine::Options,
        versions: VersionConfig,
    ) -> Result<LocalStore> {
        let value_bytes_max = options.value_size_bytes_max;
        let key_bytes_max = options.key_size_bytes_max;
        let mut engine_options = options;
        engine_options.value_size_bytes_max = stored_set_bytes_max(value_bytes_max, &versions);
        engine_options.wal.record_size_bytes_max = engine_options
            .wal
            .record_size_bytes_max
            .max(engine_options.value_size_bytes_max + key_bytes_max + 1024);
        let calls_may_block = matches!(engine_options.wal.sync, engine::SyncPolicy::Always);
        let db = engine::Db::open(directory, engine_options)?;
        Ok(LocalStore {
            observer: OnceLock::new(),
            calls_may_block,
            db,
            versions,
            value_bytes_max,
            key_bytes_max,
            write_stripes: (0..WRITE_STRIPES).map(|_| Mutex::new(())).collect(),
            corrupt_sets_replaced: AtomicU64::new(0),
        })
    }

    /// Sets the write observer; fails if one is set already.
    pub fn set_observer(&self, observer: Arc<dyn WriteObserver>) -> Result<()> {
        self.observer
            .set(observer)
            .map_err(|_| Error::Stopped("the store already has a write observer".into()))
    }

    /// [`LocalStore::apply`] that writes only when the merge changes the stored set;
    /// returns whether it did (anti-entropy counts repaired keys by it).
    pub fn merge_in(&self, key: &[u8], incoming: &SiblingSet) -> Result<bool> {
        Ok(self.merge_in_noting_new(key, incoming)?.1)
    }

    /// [`LocalStore::merge_in`], also saying whether the key held nothing before (streaming
    /// counts the keys new to a node by it): `(new, written)`, from the one read.
    pub fn merge_in_noting_new(&self, key: &[u8], incoming: &SiblingSet) -> Result<(bool, bool)> {
        self.check_key(key)?;
        for version in &incoming.versions {
            self.check_value(version.value.as_deref())?;
        }
        let _guard = self.lock_for(key);
        let (mut stored, old) = self.read_for_write(key)?;
        let new = stored.versions.is_empty();
        let before = stored.clone();
        stored.merge(incoming, &self.versions)?;
        if stored == before {
            return Ok((new, false));
        }
        self.store(key, &stored, old)?;
        Ok((new, true))
    }

    /// The largest client value accepted, in bytes.
    pub fn value_bytes_max(&self) -> usize {
        self.value_bytes_max
    }

    /// The versioning settings writes are made with.
    pub fn version_config(&self) -> &VersionConfig {
        &self.versions
    }

    /// The key's stored versions, tombstones included; `None` if it was never written.
    pub fn read(&self, key: &[u8]) -> Result<Option<SiblingSet>> {
        self.check_key(key)?;
        match self.db.get(key)? {
            None => Ok(None),
            Some(stored) => SiblingSet::decode(&stored.value).map(Some),
        }
    }

    /// The key's stored set as stored, encoded (`None` if it was never written): a
    /// replica answers a peer's `Get` with it without decoding and re-encoding it, and the
    /// coordinator compares replies as bytes. (Added by the repl helper for the quorum read.)
    pub fn read_encoded(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_key(key)?;
        Ok(self.db.get(key)?.map(|stored| stored.value))
    }

    /// [`LocalStore::read_encoded`] with the set's digest
    /// ([`crate::antientropy::wide_digest`] of the bytes), from the stored metadata where it
    /// is kept: a coordinator compares it with the replicas' in a digest read.
    pub fn read_encoded_with_digest(&self, key: &[u8]) -> Result<Option<(Vec<u8>, u128)>> {
        self.check_key(key)?;
        Ok(self.db.get_with(key, |stored| {
            stored.map(|(meta, bytes)| (bytes.to_vec(), stored_digest(meta, bytes)))
        })?)
    }

    /// The digest of the key's stored set ([`crate::antientropy::wide_digest`] of the bytes
    /// [`LocalStore::read_encoded`] returns; `None` if it was never written), read from the
    /// stored metadata (hashed where it lies when that holds none): a replica's answer to a
    /// digest read.
    pub fn read_digest(&self, key: &[u8]) -> Result<Option<u128>> {
        self.check_key(key)?;
        Ok(self.db.get_with(key, |stored| {
            stored.map(|(meta, bytes)| stored_digest(meta, bytes))
        })?)
    }

    /// Calls `read` with the value a plain GET shows for `key` (the last-write-wins winner,
    /// see [`crate::version::codec::latest_value`]): `None` when the key is absent or that
    /// winner is a tombstone. Neither the stored set nor the value is copied or decoded
    /// into versions: the GET hot path.
    pub fn read_latest<T>(&self, key: &[u8], read: impl FnOnce(Option<&[u8]>) -> T) -> Result<T> {
        self.check_key(key)?;
        self.db.get_with(key, |stored| match stored {
            None => Ok(read(None)),
            Some((_, bytes)) => crate::version::codec::latest_value(bytes).map(read),
        })?
    }

    /// Runs `call` with `key`'s stored bytes (`None`: absent) while holding the key's write
    /// lock, so no write of the key (nor its observer call) runs meanwhile: anti-entropy
    /// rebuilding its trees places a key atomically with respect to its writes.
    pub fn with_key_locked<T>(
        &self,
        key: &[u8],
        call: impl FnOnce(Option<&[u8]>) -> T,
    ) -> Result<T> {
        let _stripe = self.lock_for(key);
        let stored = self.db.get(key)?;
        Ok(call(stored.as_ref().map(|stored| stored.value.as_slice())))
    }

    /// Runs `call` holding `key`'s write lock, without reading the key: what
    /// [`LocalStore::with_key_locked`] does for a caller that read the key's bytes earlier
    /// and knows, from the observer, whether it was written since.
    pub fn with_key_lock<T>(&self, key: &[u8], call: impl FnOnce() -> T) -> T {
        let _stripe = self.lock_for(key);
        call()
    }

    /// Folds a replicated set into the stored one (replica side of a coordinated write,
    /// read repair, anti-entropy) and stores the result.
    pub fn apply(&self, key: &[u8], incoming: &SiblingSet) -> Result<SiblingSet> {
        self.check_key(key)?;
        for version in &incoming.versions {
            self.check_value(version.value.as_deref())?;
        }
        let _guard = self.lock_for(key);
        let (mut stored, old) = self.read_for_write(key)?;
        stored.merge(incoming, &self.versions)?;
        self.store(key, &stored, old)?;
        Ok(stored)
    }

    /// [`LocalStore::apply`] of a set still encoded, as a peer's `Put` carries it, returning
    /// nothing; with `defer`, stored and visible at once but durable only once
    /// [`LocalStore::commit`] returns (a replica answering a batch of `Put`s commits once for
    /// the batch, before acknowledging any of them).
    ///
    /// When `incoming` is one version that supersedes every stored one (see
    /// `version::siblings::replaces_all`; a write made with the previous one's
    /// context or by the same coordinator), the merge would leave exactly `incoming`, whose
    /// encoding is `incoming` itself (the format has one encoding per set): those bytes are
    /// stored as they came. The check reads both sets in place
    /// (`version::codec::version_views`): nothing is decoded into versions, copied
    /// or allocated beside one vector of views per set. Otherwise both sets are decoded and
    /// merged as `apply` does. A randomized test checks both paths store the same bytes.
    pub fn apply_encoded(&self, key: &[u8], incoming: Vec<u8>, defer: bool) -> Result<()> {
        use crate::version::codec::version_views;
        self.check_key(key)?;
        let views = version_views(&incoming)?;
        for view in &views {
            self.check_value(view.value)?;
        }
        let _guard = self.lock_for(key);
        // `Some(old digest)` when `incoming` replaces the stored set whole.
        let replaced = match views.as_slice() {
            [version] => self.db.get_with(key, |stored| -> Result<_> {
                let Some((meta, bytes)) = stored else {
                    return Ok(Some(None));
                };
                let replaces = match version_views(bytes) {
                    Ok(stored) => crate::version::siblings::replaces_all(
                        version,
                        &stored,
                        self.versions.policy,
                    ),
                    Err(error @ Error::CorruptVersion(_)) => {
                        self.replacing_corrupt(key, &error);
                        true
                    }
                    Err(error) => return Err(error),
                };
                let old = self
                    .observer
                    .get()
                    .map(|_| stored_digest(meta, bytes) as u64);
                Ok(replaces.then_some(old))
            })??,
            _ => None,
        };
        drop(views);
        if let Some(old) = replaced {
            // Still under the key's lock: nothing came between the check and this write.
            return self.store_encoded(key, incoming, old, defer);
        }
        // The general path: both sets decoded and merged.
        let set = SiblingSet::decode(&incoming)?;
        let (mut stored, old) = self.read_for_write(key)?;
        stored.merge(&set, &self.versions)?;
        self.store_deferrable(key, &stored, old, defer)
    }

    /// A client write coordinated by this node with one replica (N=1): a new version
    /// superseding what `context` covers; `value` `None` writes a tombstone. Returns the new
    /// version (what a coordinator would replicate).
    pub fn write_local(
        &self,
        key: &[u8],
        context: &VectorClock,
        value: Option<Vec<u8>>,
        coordinator: &str,
        now_ms: u64,
    ) -> Result<Version> {
        self.check_key(key)?;
        self.check_value(value.as_deref())?;
        let _guard = self.lock_for(key);
        let (mut stored, old) = self.read_for_write(key)?;
        let version =
            stored.write_with_context(context, coordinator, now_ms, value, &self.versions)?;
        self.store(key, &stored, old)?;
        Ok(version)
    }

    /// [`LocalStore::write_local`] without waiting for the commit log: the write is stored
    /// and visible, and durable once [`LocalStore::commit`] returns (call it before
    /// acknowledging). Returns nothing, unlike `write_local`: a single node replicates no
    /// version.
    pub fn write_local_deferred(
        &self,
        key: &[u8],
        context: &VectorClock,
        value: Option<Vec<u8>>,
        coordinator: &str,
        now_ms: u64,
    ) -> Result<()> {
        self.write_lent(key, context, value, coordinator, now_ms, false)
            .map(drop)
    }

    /// The deferred client write of [`LocalStore::write_local_deferred`], done on the
    /// stored bytes as the engine lends them; returns the new version when `keep_version`.
    fn write_lent(
        &self,
        key: &[u8],
        context: &VectorClock,
        value: Option<Vec<u8>>,
        coordinator: &str,
        now_ms: u64,
        keep_version: bool,
    ) -> Result<Option<Version>> {
        self.check_key(key)?;
        self.check_value(value.as_deref())?;
        let _guard = self.lock_for(key);
        // The whole read-modify-write happens on the stored bytes as the engine lends them:
        // the old values are never copied out (a superseded one is just not copied into the
        // new encoding, a surviving sibling is copied once, straight into it), and the new
        // version is moved out of the set after encoding rather than cloned. For 1 KiB
        // values this was three copies and two allocations per SET beside the one copy
        // into the new encoding.
        let (bytes, old, version) = self.db.get_with(key, |stored| -> Result<_> {
            let old = stored.and_then(|(meta, stored)| {
                self.observer
                    .get()
                    .map(|_| stored_digest(meta, stored) as u64)
            });
            let decoded = match stored.map(|(_, stored)| SiblingSet::decode_lending(stored)) {
                None => None,
                Some(Ok(decoded)) => Some(decoded),
                Some(Err(error @ Error::CorruptVersion(_))) => {
                    self.replacing_corrupt(key, &error);
                    None
                }
                Some(Err(error)) => return Err(error),
            };
            // Absent (or replacing a set that does not decode): a set of the new version.
            let Some((mut set, lent)) = decoded else {
                let mut set = SiblingSet::default();
                let minted = set.write_with_context_in_place(
                    context,
                    coordinator,
                    now_ms,
                    value,
                    &self.versions,
                )?;
                let bytes = set.encode();
                let version = keep_version
                    .then(|| take_version(&mut set, &minted))
                    .transpose()?;
                return Ok((bytes, old, version));
            };
            let before = set.clone();
            let minted = set.write_with_context_in_place(
                context,
                coordinator,
                now_ms,
                value,
                &self.versions,
            )?;
            // A survivor is the new version (its clock is new: the coordinator's counter is
            // above every stored one) or one of the stored versions, found by its identity.
            let value_of = |index: usize| {
                let version = &set.versions[index];
                if version.clock == minted {
                    return version.value.as_deref();
                }
                before
                    .versions
                    .iter()
                    .position(|old| {
                        old.clock == version.clock
                            && old.timestamp_ms == version.timestamp_ms
                            && old.writer == version.writer
                    })
                    .map_or(version.value.as_deref(), |position| lent[position])
            };
            let bytes = set.encode_with_values(value_of);
            let version = keep_version
                .then(|| take_version(&mut set, &minted))
                .transpose()?;
            Ok((bytes, old, version))
        })??;
        self.store_encoded(key, bytes, old, true)?;
        Ok(version)
    }

    /// [`LocalStore::write_local`] without waiting for the commit log, returning the new
    /// version (what a coordinator replicates): stored and visible at once, durable once
    /// [`LocalStore::commit`] returns, which the caller must call before acknowledging it.
    pub fn write_local_version_deferred(
        &self,
        key: &[u8],
        context: &VectorClock,
        value: Option<Vec<u8>>,
        coordinator: &str,
        now_ms: u64,
    ) -> Result<Version> {
        let version = self.write_lent(key, context, value, coordinator, now_ms, true)?;
        version.ok_or_else(|| Error::CorruptVersion("a write kept no new version".to_string()))
    }

    /// Writes every deferred commit-log record (see [`engine::Db::commit_log`]).
    pub fn commit(&self) -> Result<()> {
        self.db.commit_log().map_err(Error::from)
    }

    /// The ticket covering every deferred commit-log record queued so far (by any caller),
    /// for [`LocalStore::poll_commit`].
    pub fn commit_ticket(&self) -> u64 {
        self.db.commit_ticket()
    }

    /// Whether the records up to `ticket` are durable per the sync policy already.
    pub fn is_committed(&self, ticket: u64) -> bool {
        self.db.is_log_committed(ticket)
    }

    /// [`LocalStore::commit`] up to `ticket` without blocking the calling thread on another
    /// thread's log write (see [`engine::Db::poll_commit_log`]).
    pub fn poll_commit(
        &self,
        ticket: u64,
        waker: &std::task::Waker,
    ) -> std::task::Poll<Result<()>> {
        self.db
            .poll_commit_log(ticket, waker)
            .map(|result| result.map_err(Error::from))
    }

    /// Whether writes may be deferred and committed per batch: with the log synced lazily
    /// (`none`, `periodic`). With `always` each write waits for its own (grouped) fsync.
    pub fn defers_commits(&self) -> bool {
        !self.calls_may_block
    }

    /// The engine's counters, for INFO.
    pub fn stats(&self) -> engine::Stats {
        self.db.stats()
    }

    /// Makes everything durable and closes the engine.
    pub fn close(self) -> Result<()> {
        self.db.close().map_err(Error::from)
    }

    /// The stored set (empty if none) and, with an observer, the digest of its bytes
    /// (`None` when absent).
    fn read_for_write(&self, key: &[u8]) -> Result<(SiblingSet, Option<u64>)> {
        // Decoded from the engine's bytes in place: no copy of the stored set first.
        self.db.get_with(key, |stored| match stored {
            None => Ok((SiblingSet::default(), None)),
            Some((meta, bytes)) => {
                let digest = self
                    .observer
                    .get()
                    .map(|_| stored_digest(meta, bytes) as u64);
                let set = match SiblingSet::decode(bytes) {
                    Err(error @ Error::CorruptVersion(_)) => {
                        self.replacing_corrupt(key, &error);
                        SiblingSet::default()
                    }
                    other => other?,
                };
                Ok((set, digest))
            }
        })?
    }

    /// Counts and logs a write replacing `key`'s stored set, which failed to decode with
    /// `error` (see the module docs).
    fn replacing_corrupt(&self, key: &[u8], error: &Error) {
        self.corrupt_sets_replaced.fetch_add(1, Ordering::Relaxed);
        log::warn!(
            "kvnode: key {:?}: the stored version set does not decode ({error}); this write \
             replaces it",
            String::from_utf8_lossy(key)
        );
    }

    /// Stored sets that did not decode and were replaced by a write since the store opened.
    pub fn corrupt_sets_replaced(&self) -> u64 {
        self.corrupt_sets_replaced.load(Ordering::Relaxed)
    }

    fn store(&self, key: &[u8], set: &SiblingSet, old: Option<u64>) -> Result<()> {
        self.store_deferrable(key, set, old, false)
    }

    /// Stores `set`; with `defer`, its commit-log record waits for [`Self::commit_log`].
    fn store_deferrable(
        &self,
        key: &[u8],
        set: &SiblingSet,
        old: Option<u64>,
        defer: bool,
    ) -> Result<()> {
        self.store_encoded(key, set.encode(), old, defer)
    }

    /// [`Self::store_deferrable`] of a set already encoded.
    fn store_encoded(
        &self,
        key: &[u8],
        bytes: Vec<u8>,
        old: Option<u64>,
        defer: bool,
    ) -> Result<()> {
        let observed = self
            .observer
            .get()
            .map(|observer| (observer, crate::antientropy::wide_digest(&bytes)));
        let meta = observed.as_ref().map(|(_, digest)| digest_meta(*digest));
        let meta: &[u8] = meta.as_ref().map_or(&[], |meta| &meta[..]);
        if defer {
            // The engine keeps the encoded set itself rather than a copy.
            self.db.put_owned_deferred(key, meta, bytes)?;
        } else {
            self.db.put_with_meta(key, meta, &bytes)?;
        }
        if let Some((observer, digest)) = observed {
            observer.stored(key, old, digest as u64);
        }
        Ok(())
    }

    fn lock_for(&self, key: &[u8]) -> std::sync::MutexGuard<'_, ()> {
        let stripe = (stable_hash64(key) % WRITE_STRIPES as u64) as usize;
        // A panic while holding a stripe leaves no half-written state (the engine write is
        // atomic), so a poisoned lock is safe to take over.
        self.write_stripes[stripe]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.len() > self.key_bytes_max {
            return Err(Error::Command(format!(
                "ERR key of {} bytes exceeds the limit of {} bytes",
                key.len(),
                self.key_bytes_max
            )));
        }
        Ok(())
    }

    fn check_value(&self, value: Option<&[u8]>) -> Result<()> {
        let length = value.map_or(0, <[u8]>::len);
        if length > self.value_bytes_max {
            return Err(Error::Command(format!(
                "ERR value of {length} bytes exceeds the limit of {} bytes",
                self.value_bytes_max
            )));
        }
        Ok(())
    }
}

/// Moves the version of clock `minted` (a write's new version, which always survives the
/// write: its counter or timestamp is above every stored one) out of `set`.
fn take_version(set: &mut SiblingSet, minted: &VectorClock) -> Result<Version> {
    let index = set
        .versions
        .iter()
        .position(|version| version.clock == *minted)
        .ok_or_else(|| {
            Error::CorruptVersion("a write's new version is not in the set it made".to_string())
        })?;
    Ok(set.versions.swap_remove(index))
}

mod meta;
#[cfg(test)]
mod tests;
mod whole;

pub use whole::next_page_start;
