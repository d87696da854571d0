//! Replaying existing segments at open, cutting torn tails and (optionally) salvaging damage.

use super::format::{self, SegmentEnd};
use super::{segment, RecoveryReport};
use crate::io::{sync_directory, LogFile, OpenMode};
use crate::{Error, IoBackend, Result, SequenceNumber, WalOptions};
use std::path::Path;

/// What recovery found: the report, and the highest segment number seen (0 when the
/// directory held none).
pub(super) struct Recovered {
    pub(super) report: RecoveryReport,
    pub(super) segment_highest: u64,
}

/// Reads every segment in order and hands each well-formed record to `replay` (sequence
/// number and payload, borrowed from the segment's mapping), in log order, then repairs the
/// damage found. Nothing is copied: a caller that only applies the records never holds the
/// whole log in memory. An error from `replay` stops recovery and is returned.
pub(super) fn recover(
    directory: &Path,
    options: &WalOptions,
    replay: &mut dyn FnMut(SequenceNumber, &[u8]) -> Result<()>,
) -> Result<Recovered> {
    let segments = segment::list(directory)?;
    let mut recovered = Recovered {
        report: RecoveryReport::default(),
        segment_highest: segments.last().map_or(0, |(number, _)| *number),
    };
    let mut directory_changed = false;
    for (index, (_, path)) in segments.iter().enumerate() {
        let is_last = index + 1 == segments.len();
        let mapped = map_segment(path)?;
        let bytes: &[u8] = mapped.as_deref().unwrap_or(&[]);
        let decoded = format::decode_segment(path, bytes)?;
        recovered.report.segments_read += 1;
        recovered.report.records += decoded.records.len() as u64;
        for record in &decoded.records {
            replay(record.seq, record.payload)?;
        }
        let SegmentEnd::Damaged {
            offset,
            error,
            tail_only,
            stale,
        } = decoded.end
        else {
            continue;
        };
        let dropped = bytes.len() as u64 - decoded.valid_length;
        let valid_length = decoded.valid_length;
        // Unmapped before the file may be cut below.
        drop(mapped);
        // Only the last segment can be torn: older ones were synced whole before the next
        // one was created, so damage there is damage at rest, whatever its shape.
        if tail_only && is_last {
            if stale {
                recovered.report.stale_bytes_dropped += dropped;
            } else {
                recovered.report.torn_tail_bytes_dropped += dropped;
            }
        } else if options.salvage {
            recovered
                .report
                .salvaged
                .push((path.clone(), offset, dropped));
        } else {
            return Err(error);
        }
        directory_changed |= cut(path, valid_length)?;
    }
    if directory_changed {
        sync_directory(directory)?;
    }
    Ok(recovered)
}

/// Maps segment `path` for reading (`None` when it is empty, which cannot be mapped). A
/// mapping rather than a read: a recycled segment file keeps the length of its earlier use,
/// and decoding a sealed one stops at its end marker, so only the pages up to it are read
/// (`cargo bench -p engine --bench wal_recovery`: opening a log whose last segment is a
/// sealed recycled 256 MiB file, 0.56 ms; reading that file whole and decoding it, 129 ms).
fn map_segment(path: &Path) -> Result<Option<memmap2::Mmap>> {
    let file = std::fs::File::open(path).map_err(|error| Error::io(path, error))?;
    let length = file
        .metadata()
        .map_err(|error| Error::io(path, error))?
        .len();
    if length == 0 {
        return Ok(None);
    }
    // SAFETY: nothing else writes a log's segments while `Wal::open` recovers them (a
    // database holds its directory's lock while its log is open), and the mapping is
    // dropped before recovery cuts the file.
    let mapped = unsafe { memmap2::Mmap::map(&file) }.map_err(|error| Error::io(path, error))?;
    Ok(Some(mapped))
}

/// Cuts the segment at `length` so the next open finds it clean, or removes it when not even
/// its header is intact (it then holds no records). Returns whether a file was removed.
fn cut(path: &Path, length: u64) -> Result<bool> {
    if length < format::SEGMENT_HEADER_BYTES as u64 {
        std::fs::remove_file(path).map_err(|error| Error::io(path, error))?;
        return Ok(true);
    }
    let file = LogFile::open(path, OpenMode::Existing, IoBackend::Std)?;
    file.truncate(length)?;
    file.sync_data()?;
    file.close()?;
    Ok(false)
}
