//! Per-key write history and the classification of reads.
//!
//! **What counts as stale.** Writes are partially ordered by real time: write `w` *follows*
//! write `v` if `w` was issued at or after the moment `v` ended (was acknowledged, or failed,
//! as seen by its writer). A read begun at `s` *misses* `w` if `w` was acknowledged at or
//! before `s` and `w` follows every version the read returned (a read returning siblings
//! `{v1, v2}` saw everything that does not follow both). The read is stale if it missed at
//! least one write:
//!
//! - **k** is the number of missed writes; with one writer per key it is the number of
//!   versions the read is behind the latest acknowledged write.
//! - **t** is `s` minus the acknowledgement time of the newest missed write: how long that
//!   write had been committed when the read began and still was not seen.
//!
//! **Concurrent writers.** A returned version that overlaps in time a newer acknowledged
//! write (neither follows the other) is not stale: the store may order concurrent writes
//! either way (LWW picks one by timestamp, siblings keep both), so a linearizable store
//! could return it too. Only writes issued after the returned version ended are missed.
//!
//! **t-visibility.** For every read with an acknowledged write before it, the latest one
//! (by acknowledgement time) `w*` gives one sample: `t = s - ack(w*)`, and the read *sees*
//! `w*` unless it missed it. Bucketed by t, these are the measured counterpart of the WARS
//! prediction (a read begun t ms after a commit returns it).
//!
//! **Unknown versions.** A returned stamp that is not in the key's history was either evicted
//! (history is bounded) or issued by a writer whose write the tracker has not recorded yet.
//! If it was issued after the newest write the tracker knows of, it is taken as in flight
//! (sees everything); otherwise it is taken as ended when it was issued, which is exact for an
//! evicted version in all but contrived histories, and k is then flagged as a lower bound if
//! the key lost history. An unstamped value or a missing key is older than every tracked
//! write. Callers must record a write as issued before sending it, so a read can never return
//! a value the tracker has not heard of, except from another process.

use super::stamp::{Observed, ValueStamp};
use parking_lot::Mutex;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

const SHARDS: usize = 64;
/// "Has not ended" in the history.
const IN_FLIGHT: u64 = u64::MAX;

/// Limits of a [`StalenessTracker`].
#[derive(Debug, Clone, Copy)]
pub struct TrackerConfig {
    /// Writes remembered per key (the oldest ended ones are forgotten first). A read older
    /// than that many versions still counts as stale, with k reported as a lower bound.
    pub history_per_key: usize,
    /// Keys tracked; writes to further keys are ignored and reads of them are `Untracked`.
    /// Bounds memory at about `keys_max * (history_per_key * 40 + 100)` bytes.
    pub keys_max: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            history_per_key: 8,
            keys_max: 1_000_000,
        }
    }
}

/// The verdict on one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The read saw every write acknowledged before it began.
    Fresh,
    /// The read missed `k` acknowledged writes; the newest of them had been acknowledged
    /// `t_micros` before the read began.
    Stale {
        k: u64,
        /// Some missed writes may have been forgotten: the true k is at least `k`.
        k_is_lower_bound: bool,
        t_micros: u64,
    },
    /// No write to the key was acknowledged before the read began: nothing to miss.
    NoPriorWrite,
    /// The key is beyond [`TrackerConfig::keys_max`].
    Untracked,
}

/// One read's classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadClass {
    pub verdict: Verdict,
    /// The read's t-visibility sample, if a write was acknowledged before it began.
    pub visibility: Option<VisibilitySample>,
    /// Versions (siblings) the read returned; 0 for a missing key.
    pub versions_returned: usize,
    /// Whether any returned value was unstamped.
    pub unstamped_returned: bool,
}

/// Whether a read saw the latest write acknowledged before it began, and how long before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisibilitySample {
    /// Microseconds from that write's acknowledgement to the read's start.
    pub since_commit_micros: u64,
    /// Whether the read returned it, or a version concurrent with or newer than it. With
    /// concurrent writers a stale read may still have seen the latest write (it missed an
    /// older one that followed what it returned).
    pub seen: bool,
}

#[derive(Debug, Clone, Copy)]
struct WriteRecord {
    writer: u64,
    sequence: u64,
    issued: u64,
    /// When its writer saw the outcome; `IN_FLIGHT` until then.
    ended: u64,
    acknowledged: bool,
}

#[derive(Debug, Default)]
struct KeyHistory {
    /// In the order recorded as issued.
    writes: VecDeque<WriteRecord>,
    forgotten: u64,
}

/// Shared by the load threads: write history per key, read classification.
#[derive(Debug)]
pub struct StalenessTracker {
    config: TrackerConfig,
    shards: Vec<Mutex<HashMap<Vec<u8>, KeyHistory>>>,
    keys: Mutex<usize>,
}

impl StalenessTracker {
    pub fn new(config: TrackerConfig) -> Self {
        StalenessTracker {
            config: TrackerConfig {
                history_per_key: config.history_per_key.max(1),
                keys_max: config.keys_max,
            },
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            keys: Mutex::new(0),
        }
    }

    fn shard(&self, key: &[u8]) -> &Mutex<HashMap<Vec<u8>, KeyHistory>> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        &self.shards[hasher.finish() as usize % SHARDS]
    }

    /// Records a write about to be sent (call before sending it).
    pub fn write_issued(&self, key: &[u8], stamp: &ValueStamp) {
        self.update(key, stamp, |_| {});
    }

    /// Records how a write ended: `acknowledged` at `ended_micros`, or failed (error or
    /// timeout: it may still have been applied, and a later read may return it, but no read
    /// is stale for missing it).
    pub fn write_ended(
        &self,
        key: &[u8],
        stamp: &ValueStamp,
        ended_micros: u64,
        acknowledged: bool,
    ) {
        self.update(key, stamp, |record| {
            record.ended = ended_micros.min(IN_FLIGHT - 1);
            record.acknowledged = acknowledged;
        });
    }

    fn update(&self, key: &[u8], stamp: &ValueStamp, change: impl FnOnce(&mut WriteRecord)) {
        let mut shard = self.shard(key).lock();
        if !shard.contains_key(key) {
            let mut keys = self.keys.lock();
            if *keys >= self.config.keys_max {
                return;
            }
            *keys += 1;
            shard.insert(key.to_vec(), KeyHistory::default());
        }
        let history = shard.get_mut(key).expect("inserted above");
        let existing = history
            .writes
            .iter()
            .position(|r| r.writer == stamp.writer && r.sequence == stamp.sequence);
        let index = match existing {
            Some(index) => index,
            None => {
                history.writes.push_back(WriteRecord {
                    writer: stamp.writer,
                    sequence: stamp.sequence,
                    issued: stamp.issued_micros,
                    ended: IN_FLIGHT,
                    acknowledged: false,
                });
                history.writes.len() - 1
            }
        };
        change(&mut history.writes[index]);
        while history.writes.len() > self.config.history_per_key {
            // Forget the oldest write that has ended; in-flight ones only if nothing ended.
            let victim = history
                .writes
                .iter()
                .position(|r| r.ended != IN_FLIGHT)
                .unwrap_or(0);
            history.writes.remove(victim);
            history.forgotten += 1;
        }
    }

    /// Classifies a read of `key` begun at `read_start_micros` that returned `observed`
    /// (empty: the key was not found; several: siblings).
    pub fn classify_read(
        &self,
        key: &[u8],
        observed: &[Observed],
        read_start_micros: u64,
    ) -> ReadClass {
        let unstamped_returned = observed.contains(&Observed::Unstamped);
        let mut class = ReadClass {
            verdict: Verdict::Untracked,
            visibility: None,
            versions_returned: observed.len(),
            unstamped_returned,
        };
        let shard = self.shard(key).lock();
        let Some(history) = shard.get(key) else {
            let keys_full = *self.keys.lock() >= self.config.keys_max;
            if !keys_full {
                class.verdict = Verdict::NoPriorWrite;
            }
            return class;
        };
        let start = read_start_micros;
        let acknowledged_before = || {
            history
                .writes
                .iter()
                .filter(move |r| r.acknowledged && r.ended <= start)
        };
        let Some(latest) = acknowledged_before().max_by_key(|r| r.ended) else {
            class.verdict = Verdict::NoPriorWrite;
            return class;
        };
        let (newest_end, from_unknown) = newest_returned_end(history, observed);
        class.visibility = Some(VisibilitySample {
            since_commit_micros: start - latest.ended,
            seen: latest.issued < newest_end,
        });
        let mut k = 0;
        let mut newest_missed = 0;
        for write in acknowledged_before().filter(|r| r.issued >= newest_end) {
            k += 1;
            newest_missed = newest_missed.max(write.ended);
        }
        class.verdict = if k == 0 {
            Verdict::Fresh
        } else {
            Verdict::Stale {
                k,
                k_is_lower_bound: from_unknown && history.forgotten > 0,
                t_micros: start - newest_missed,
            }
        };
        class
    }
}

impl StalenessTracker {
    /// Every key with at least one acknowledged write still in its history (for the
    /// lost-write check, which reads each back and classifies it like a read).
    pub fn acknowledged_keys(&self) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock();
            keys.extend(
                shard
                    .iter()
                    .filter(|(_, history)| history.writes.iter().any(|r| r.acknowledged))
                    .map(|(key, _)| key.clone()),
            );
        }
        keys.sort();
        keys
    }
}

/// The latest end time among the returned versions (a write following all of them must be
/// issued at or after it), and whether it came from versions not in the history.
fn newest_returned_end(history: &KeyHistory, observed: &[Observed]) -> (u64, bool) {
    let newest_known_issue = history.writes.iter().map(|r| r.issued).max().unwrap_or(0);
    let mut newest = 0;
    let mut from_unknown = true;
    for version in observed {
        let Observed::Stamp(stamp) = version else {
            continue; // unstamped: older than everything, end 0
        };
        let record = history
            .writes
            .iter()
            .find(|r| r.writer == stamp.writer && r.sequence == stamp.sequence);
        let (end, unknown) = match record {
            Some(record) => (record.ended, false),
            None if stamp.issued_micros > newest_known_issue => (IN_FLIGHT, false),
            None => (stamp.issued_micros, true),
        };
        if end > newest || (end == newest && !unknown) {
            newest = end;
            from_unknown = unknown;
        }
    }
    (newest, from_unknown)
}
