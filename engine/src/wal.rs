//! The commit log: every write is appended here before it touches the memtable, so that a
//! crash loses nothing that was acknowledged (within the limits of the [`SyncPolicy`]).
//!
//! The log is a directory of numbered segment files (`000001.log`, `000002.log`, ...). Appends
//! go to the newest segment; [`Wal::rotate`] starts a new one when the memtable it backs is
//! frozen, and [`Wal::remove_segments_before`] retires segments whose records reached an
//! SSTable: up to [`WalOptions::recycle_segments`] of them are renamed `NNNNNN.free` and
//! rewritten as later segments, the rest deleted. Concurrent appenders share one write and
//! one sync (group commit; see `writer`).
//!
//! # On-disk format, version 2
//!
//! All integers are little-endian.
//!
//! ```text
//! segment := header record* [end]
//! header  := magic u64 = "LSMWAL\0\x01" | version u32 = 2 | segment u64 | crc32c(magic..segment) u32
//!                                                                                 (24 bytes)
//! record  := length u32 | seq u64 | header_crc u32 | payload_crc u32 | payload   (20 + length)
//!            header_crc  = crc32c(segment u64 | length | seq)
//!            payload_crc = crc32c(payload)
//! end     := length u32 = 0xffffffff | seq u64 = 0 | header_crc u32 | 0 u32     (20 bytes)
//! ```
//!
//! The length has its own checksum so that a damaged length is recognised as damage.
//! Without it a flipped bit in the length of a record in the middle of a log would make the
//! record seem to run past the end of the file, exactly like a torn final append, and
//! recovery would silently drop every later record as a "torn tail".
//!
//! The header checksum is seeded with the segment's number (numbers are never reused in a
//! directory), so a recycled file's records from its earlier use never check out as records
//! of its new one. The end marker is written (and synced) when a segment is rotated away
//! from or the log is closed: nothing of this segment follows it. Version 1 (a 12-byte
//! header of magic and version, unseeded header checksums, no end marker) is still read.
//!
//! # Recovery
//!
//! [`Wal::open`] replays every segment in order, each up to its end marker or the end of
//! the file. A bad record in the last segment followed only by zeros, the end of the file,
//! or (in a recycled file) bytes in which no record of this segment can be found, is what
//! an interrupted append leaves: the file is cut at the last good record and the bytes
//! counted in [`RecoveryReport::torn_tail_bytes_dropped`] (or, for a recycled file's earlier
//! bytes, [`RecoveryReport::stale_bytes_dropped`]). Anything else (a bad record with a
//! record of its segment after it, or damage in an older segment, which was sealed and
//! synced whole before its successor existed) is damage at rest:
//! [`Error::ChecksumMismatch`] or [`Error::Corruption`] naming the file and the offset of
//! the bad record, or with [`WalOptions::salvage`] the records before it are kept, the rest
//! of the segment is cut off and listed in [`RecoveryReport::salvaged`].
//!
//! [`Error::ChecksumMismatch`]: crate::Error::ChecksumMismatch
//! [`Error::Corruption`]: crate::Error::Corruption
//!
//! # What an acknowledged append survives
//!
//! - [`SyncPolicy::None`]: `append` returns after the `write` to the OS finished, so the
//!   record survives a crash of the process, not of the machine.
//! - [`SyncPolicy::Periodic`]: as `None`; a background thread also syncs every interval, so
//!   a machine crash loses at most about one interval of acknowledged appends.
//! - [`SyncPolicy::Always`]: `append` returns after an `fdatasync` covering the record.

use crate::{Result, SequenceNumber, SyncPolicy, WalOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub mod format;
mod recovery;
mod segment;
mod writer;

pub use format::{decode_segment, DecodedRecord, DecodedSegment, SegmentEnd};

/// One record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub seq: SequenceNumber,
    pub payload: Vec<u8>,
}

/// What [`Wal::open`] found and repaired.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    pub segments_read: usize,
    pub records: u64,
    pub torn_tail_bytes_dropped: u64,
    /// Bytes cut off the last segment after its last record that a recycled file held
    /// from its earlier use (the last segment was not sealed: the process stopped
    /// without closing the log).
    pub stale_bytes_dropped: u64,
    /// (segment path, offset of the damage, bytes dropped) for each segment salvaged past a
    /// mid-log checksum failure.
    pub salvaged: Vec<(PathBuf, u64, u64)>,
}

/// An open commit log. `Send + Sync`: many threads append concurrently.
pub struct Wal {
    writer: Arc<writer::Writer>,
    syncer: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl Wal {
    /// Opens the log directory (creating it), reads every existing segment in order and
    /// returns their records in log order, repairing a torn tail as described in the module
    /// documentation. Then starts a new segment, numbered after the highest existing one,
    /// for appends. Holds a copy of the whole log in memory: [`Wal::open_replaying`] hands
    /// the records over one by one instead.
    pub fn open(
        directory: &Path,
        options: &WalOptions,
    ) -> Result<(Wal, Vec<LogRecord>, RecoveryReport)> {
        let mut records = Vec::new();
        let (wal, report) = Wal::open_replaying(directory, options, |seq, payload| {
            records.push(LogRecord {
                seq,
                payload: payload.to_vec(),
            });
            Ok(())
        })?;
        Ok((wal, records, report))
    }

    /// [`Wal::open`] calling `replay` with each record's sequence number and payload, in log
    /// order, instead of collecting them: the payload is borrowed from the segment's
    /// mapping, so replaying a log into a memtable copies each record once (into the
    /// memtable), not twice, and never holds the whole log in memory. An error from
    /// `replay` stops the open and is returned; segments are repaired only after every
    /// record of theirs was replayed.
    pub fn open_replaying(
        directory: &Path,
        options: &WalOptions,
        mut replay: impl FnMut(SequenceNumber, &[u8]) -> Result<()>,
    ) -> Result<(Wal, RecoveryReport)> {
        validate(options)?;
        std::fs::create_dir_all(directory).map_err(|error| crate::Error::io(directory, error))?;
        let recovered = recovery::recover(directory, options, &mut replay)?;
        segment::trim_free(directory, options.recycle_segments)?;
        let active = segment::create(
            directory,
            recovered.segment_highest + 1,
            options.io,
            options.recycle_segments > 0,
        )?;
        let writer = Arc::new(writer::Writer::new(
            directory.to_path_buf(),
            options.clone(),
            active,
        ));
        let syncer = match options.sync {
            SyncPolicy::Periodic { interval_ms } => {
                let writer = writer.clone();
                let interval = Duration::from_millis(interval_ms);
                let thread = std::thread::Builder::new()
                    .name("wal-syncer".to_string())
                    .spawn(move || writer.run_periodic_syncer(interval))
                    .map_err(|error| crate::Error::io(directory, error))?;
                Some(thread)
            }
            SyncPolicy::None | SyncPolicy::Always => None,
        };
        let wal = Wal {
            writer,
            syncer: parking_lot::Mutex::new(syncer),
        };
        Ok((wal, recovered.report))
    }

    /// Appends one record carrying `seq` (assigned by the caller) and returns once it is
    /// durable per the sync policy. Concurrent callers are grouped: one write and (for
    /// `Always`) one fdatasync for the whole group.
    pub fn append(&self, seq: SequenceNumber, payload: &[u8]) -> Result<()> {
        self.writer.append(seq, payload)
    }

    /// Queues one record carrying `seq` without waiting for it to reach the log file;
    /// returns a ticket. The record is written by the next [`Wal::commit`] (of this ticket
    /// or a later one, by any caller), [`Wal::sync`], rotation or close, so several
    /// records can share one write. Nothing about it may be acknowledged before a commit
    /// of its ticket returns.
    pub fn append_deferred(&self, seq: SequenceNumber, payload: &[u8]) -> Result<u64> {
        self.writer.append_deferred(seq, payload)
    }

    /// [`Wal::append_deferred`] of a payload that `encode` appends (exactly
    /// `payload_length` bytes) straight into the log's queue, sparing the caller a buffer
    /// and a copy. `encode` runs under the log's lock: keep it to copying bytes.
    pub fn append_deferred_encoded(
        &self,
        seq: SequenceNumber,
        payload_length: usize,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<u64> {
        self.writer
            .append_deferred_encoded(seq, payload_length, encode)
    }

    /// Returns once the record with `ticket` and every earlier one is durable per the sync
    /// policy (written for `None` and `Periodic`, synced for `Always`).
    pub fn commit(&self, ticket: u64) -> Result<()> {
        self.writer.commit(ticket)
    }

    /// [`Wal::commit`] without blocking: `Ready` once the record with `ticket` and every
    /// earlier one is durable per the policy (having written them on this thread when
    /// nobody else was writing), `Pending` with `waker` registered while another thread
    /// writes. For event loops, where a thread blocked on another's write would stall
    /// every connection it serves.
    pub fn poll_commit(
        &self,
        ticket: u64,
        waker: &std::task::Waker,
    ) -> std::task::Poll<Result<()>> {
        self.writer.poll_commit(ticket, waker)
    }

    /// Whether the record with `ticket` and every earlier one is durable per the policy.
    pub fn is_committed(&self, ticket: u64) -> bool {
        self.writer.is_committed(ticket)
    }

    /// The ticket of the last record queued (0 before any).
    pub fn last_ticket(&self) -> u64 {
        self.writer.last_ticket()
    }

    /// Closes the current segment (synced) and starts a new one; returns the new segment's
    /// number. Every record whose append returned before rotate was called is in an older
    /// segment.
    pub fn rotate(&self) -> Result<u64> {
        self.writer.rotate()
    }

    /// Retires every segment numbered below `segment` (their data is in SSTables now):
    /// kept for reuse while fewer than [`WalOptions::recycle_segments`] wait, deleted
    /// otherwise. Returns how many were retired. The current segment is never retired,
    /// whatever `segment` says.
    pub fn remove_segments_before(&self, segment: u64) -> Result<usize> {
        let limit = segment.min(self.writer.current_segment());
        let keep_free = self.writer.options().recycle_segments;
        segment::remove_before(self.writer.directory(), limit, keep_free)
    }

    /// Forces everything appended so far to stable storage.
    pub fn sync(&self) -> Result<()> {
        self.writer.sync()
    }

    /// Number of the segment appends currently go to.
    pub fn current_segment(&self) -> u64 {
        self.writer.current_segment()
    }

    /// Bytes this handle wrote to segment files since open: segment headers and records.
    pub fn bytes_written(&self) -> u64 {
        self.writer.bytes_written()
    }

    /// Number of fdatasyncs issued on behalf of appends, [`Wal::sync`], rotation and the
    /// periodic syncer. Fewer syncs than `Always` appends shows group commit at work.
    pub fn sync_count(&self) -> u64 {
        self.writer.syncs()
    }

    /// Flushes, syncs, stops background threads. Later calls fail with `Error::Closed`;
    /// closing twice is harmless.
    pub fn close(&self) -> Result<()> {
        let result = self.writer.close();
        if let Some(syncer) = self.syncer.lock().take() {
            // The syncer only returns; a panic there has already been reported on stderr.
            let _ = syncer.join();
        }
        result.and(self.writer.close_file())
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        // Nobody is left to hear about an error here; `close` exists for callers who care.
        let _ = self.close();
    }
}

fn validate(options: &WalOptions) -> Result<()> {
    // u32::MAX itself is the end marker's length.
    if options.record_size_bytes_max == 0
        || options.record_size_bytes_max >= format::END_MARKER_LENGTH as usize
    {
        return Err(crate::Error::InvalidOption {
            field: "wal.record_size_bytes_max",
            detail: "must be between 1 and 4294967294".to_string(),
        });
    }
    if options.sync == (SyncPolicy::Periodic { interval_ms: 0 }) {
        return Err(crate::Error::InvalidOption {
            field: "wal.sync.interval_ms",
            detail: "must be at least 1".to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
