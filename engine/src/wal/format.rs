//! Encoding and decoding of segment files; the layout is documented on the parent module.

use crate::{Error, Result, SequenceNumber};
use std::path::Path;

/// First eight bytes of every segment: "LSMWAL" then 0x00 0x01, read as a little-endian u64.
pub const SEGMENT_MAGIC: u64 = u64::from_le_bytes(*b"LSMWAL\x00\x01");
/// Format version this build writes. It reads this one and [`LEGACY_FORMAT_VERSION`].
pub const FORMAT_VERSION: u32 = 2;
/// Version 1: no segment number, unseeded record checksums, no end marker. Read, never
/// written.
pub const LEGACY_FORMAT_VERSION: u32 = 1;
/// Bytes of the segment header this build writes: magic, version, segment number and the
/// header's checksum.
pub const SEGMENT_HEADER_BYTES: usize = 24;
/// Bytes of a version 1 segment header: magic and version.
pub const LEGACY_SEGMENT_HEADER_BYTES: usize = 12;
/// Bytes of a record header: length, sequence number and two checksums. Also the whole size
/// of an end marker.
pub const RECORD_HEADER_BYTES: usize = 20;
/// The length field of an end marker (no record is this long: the record limit is below it).
pub const END_MARKER_LENGTH: u32 = u32::MAX;

/// The header written at offset 0 of segment `number`.
pub fn segment_header(number: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC.to_le_bytes());
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&number.to_le_bytes());
    let checksum = crc32c::crc32c(&header[0..20]);
    header[20..24].copy_from_slice(&checksum.to_le_bytes());
    header
}

/// The header of a record carrying `seq` and `payload` in segment `segment`. Computing it
/// (both checksums) needs no lock, so appenders do it before joining the queue.
///
/// # Panics
/// If `payload` is 4 GiB less one byte or longer; callers enforce a far smaller record limit
/// first.
pub fn record_header(
    segment: u64,
    seq: SequenceNumber,
    payload: &[u8],
) -> [u8; RECORD_HEADER_BYTES] {
    let length = u32::try_from(payload.len())
        .ok()
        .filter(|&length| length != END_MARKER_LENGTH)
        .expect("record length checked against the limit");
    let mut header = [0u8; RECORD_HEADER_BYTES];
    header[0..4].copy_from_slice(&length.to_le_bytes());
    header[4..12].copy_from_slice(&seq.to_le_bytes());
    let header_checksum = seeded_header_checksum(segment, &header[0..12]);
    header[12..16].copy_from_slice(&header_checksum.to_le_bytes());
    header[16..20].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    header
}

/// Rewrites the header checksums of the records encoded back to back in `records` (as a
/// writer queues them) for segment `segment`: records queued for one segment that are to be
/// written to the next.
pub(crate) fn reseal(records: &mut [u8], segment: u64) {
    let mut offset = 0;
    while offset + RECORD_HEADER_BYTES <= records.len() {
        let checksum = seeded_header_checksum(segment, &records[offset..offset + 12]);
        records[offset + 12..offset + 16].copy_from_slice(&checksum.to_le_bytes());
        offset += RECORD_HEADER_BYTES + read_u32(records, offset) as usize;
    }
}

/// The end marker of segment `segment`: its writer wrote nothing after it. A recycled
/// segment file holds its earlier use's records after the marker.
pub fn end_marker(segment: u64) -> [u8; RECORD_HEADER_BYTES] {
    let mut marker = [0u8; RECORD_HEADER_BYTES];
    marker[0..4].copy_from_slice(&END_MARKER_LENGTH.to_le_bytes());
    let header_checksum = seeded_header_checksum(segment, &marker[0..12]);
    marker[12..16].copy_from_slice(&header_checksum.to_le_bytes());
    marker
}

/// crc32c of the segment number followed by a record's length and seq: a record checks out
/// only in the segment it was written to, so the records a recycled file held in its
/// earlier use read as foreign bytes, never as records.
fn seeded_header_checksum(segment: u64, length_and_seq: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&segment.to_le_bytes()), length_and_seq)
}

/// A version 1 segment header, for tests of reading old logs.
#[cfg(test)]
pub(crate) fn legacy_segment_header() -> [u8; LEGACY_SEGMENT_HEADER_BYTES] {
    let mut header = [0u8; LEGACY_SEGMENT_HEADER_BYTES];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC.to_le_bytes());
    header[8..12].copy_from_slice(&LEGACY_FORMAT_VERSION.to_le_bytes());
    header
}

/// A version 1 record header, for tests of reading old logs.
#[cfg(test)]
pub(crate) fn legacy_record_header(
    seq: SequenceNumber,
    payload: &[u8],
) -> [u8; RECORD_HEADER_BYTES] {
    let mut header = [0u8; RECORD_HEADER_BYTES];
    header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4..12].copy_from_slice(&seq.to_le_bytes());
    let header_checksum = crc32c::crc32c(&header[0..12]);
    header[12..16].copy_from_slice(&header_checksum.to_le_bytes());
    header[16..20].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    header
}

/// One record found in a segment, borrowing its payload from the segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord<'a> {
    /// Offset of the record's header in the segment.
    pub offset: u64,
    pub seq: SequenceNumber,
    pub payload: &'a [u8],
}

/// How decoding a segment ended.
#[derive(Debug)]
pub enum SegmentEnd {
    /// Every byte belonged to a well-formed record.
    Clean,
    /// An end marker (version 2): the segment was closed or rotated away from, and nothing
    /// was written after the marker. A recycled file's earlier bytes may follow it.
    Sealed,
    /// Decoding stopped at `offset`, the start of the first bad record (or of the header).
    Damaged {
        offset: u64,
        /// What was wrong there, naming the file and offset.
        error: Error,
        /// True when nothing written in this segment's life follows the bad record: only
        /// zeros, or (see `stale`) a recycled file's earlier bytes. The shape an
        /// interrupted append leaves (a partial record, or a file extended but not yet
        /// written). False when data of this segment follows, which no crash produces:
        /// the bytes were damaged at rest.
        tail_only: bool,
        /// True when what follows is not zeros but bytes no record of this segment can be
        /// found in: what a recycled segment file (version 2) held before its reuse.
        stale: bool,
    },
}

/// The outcome of decoding one segment.
#[derive(Debug)]
pub struct DecodedSegment<'a> {
    /// The well-formed records before any damage, in file order.
    pub records: Vec<DecodedRecord<'a>>,
    /// Offset just past the last good record (or the end marker): where to cut the file to
    /// drop the damage.
    pub valid_length: u64,
    pub end: SegmentEnd,
}

/// Decodes the segment `bytes` read from `path` (either format version). Never panics on
/// any input; damage is reported in [`DecodedSegment::end`]. The only error is a segment of
/// a format version this build does not know, which no amount of salvaging can read.
pub fn decode_segment<'a>(path: &Path, bytes: &'a [u8]) -> Result<DecodedSegment<'a>> {
    let damaged = |error: Error, tail_only: bool| DecodedSegment {
        records: Vec::new(),
        valid_length: 0,
        end: SegmentEnd::Damaged {
            offset: 0,
            error,
            tail_only,
            stale: false,
        },
    };
    let cut_short = |length: usize| {
        corruption(
            path,
            0,
            format!("segment header cut short at {length} bytes"),
        )
    };
    let magic = SEGMENT_MAGIC.to_le_bytes();
    if bytes.len() < LEGACY_SEGMENT_HEADER_BYTES {
        // A crash while creating the segment leaves a prefix of its header, or zeros.
        let known_prefix = [FORMAT_VERSION, LEGACY_FORMAT_VERSION]
            .iter()
            .any(|version| {
                let mut prefix = [0u8; LEGACY_SEGMENT_HEADER_BYTES];
                prefix[0..8].copy_from_slice(&magic);
                prefix[8..12].copy_from_slice(&version.to_le_bytes());
                prefix.starts_with(bytes)
            });
        return Ok(damaged(
            cut_short(bytes.len()),
            known_prefix || all_zero(bytes),
        ));
    }
    if bytes[0..8] != magic {
        let detail = format!("bad magic {:02x?}", &bytes[0..8]);
        // An all-zero file is one the file system extended but whose header never landed.
        return Ok(damaged(corruption(path, 0, detail), all_zero(bytes)));
    }
    match read_u32(bytes, 8) {
        LEGACY_FORMAT_VERSION => Ok(decode_records(path, bytes, None)),
        FORMAT_VERSION => {
            let Some(header) = bytes.get(..SEGMENT_HEADER_BYTES) else {
                return Ok(damaged(cut_short(bytes.len()), true));
            };
            let expected = read_u32(header, 20);
            let actual = crc32c::crc32c(&header[0..20]);
            if expected != actual {
                return Ok(damaged(mismatch(path, 0, expected, actual), false));
            }
            let number = u64::from_le_bytes(header[12..20].try_into().unwrap_or_default());
            Ok(decode_records(path, bytes, Some(number)))
        }
        version => Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        }),
    }
}

/// Decodes the records after the header. `segment` is the number from a version 2 header
/// (the records' checksum seed), `None` for version 1.
fn decode_records<'a>(path: &Path, bytes: &'a [u8], segment: Option<u64>) -> DecodedSegment<'a> {
    let mut records = Vec::new();
    let mut offset = match segment {
        Some(_) => SEGMENT_HEADER_BYTES,
        None => LEGACY_SEGMENT_HEADER_BYTES,
    };
    let end = loop {
        let remaining = bytes.len() - offset;
        if remaining == 0 {
            break SegmentEnd::Clean;
        }
        match decode_record(path, bytes, offset, segment) {
            Ok(Some(record)) => {
                offset += RECORD_HEADER_BYTES + record.payload.len();
                records.push(record);
            }
            Ok(None) => {
                offset += RECORD_HEADER_BYTES;
                break SegmentEnd::Sealed;
            }
            Err((error, tail_start)) => {
                let tail = bytes.get(tail_start..).unwrap_or(&[]);
                let zeros = all_zero(tail);
                // A recycled file holds its earlier use's bytes after the last record
                // written in this one. They are the end of the log, like zeros, unless a
                // record of this segment follows somewhere: then this is damage at rest.
                let stale = !zeros
                    && segment.is_some_and(|number| !record_follows(bytes, offset + 1, number));
                break SegmentEnd::Damaged {
                    offset: offset as u64,
                    error,
                    tail_only: zeros || stale,
                    stale,
                };
            }
        }
    };
    DecodedSegment {
        records,
        valid_length: offset as u64,
        end,
    }
}

/// Whether a whole record (or end marker) of segment `segment` starts anywhere at or after
/// `from`. Every offset is tried, since damage may have shifted record boundaries; a length
/// running past the end rules an offset out before any checksum is computed, and runs of
/// zeros are checked against one precomputed checksum. `cargo bench -p engine --bench
/// wal_recovery` (64 MiB of a recycled file's earlier records) measured about 1.7 ns per
/// byte with varied payloads and 1.8 with all-zero ones (about 8 before the zero shortcut,
/// in a throwaway test), so a crash in a 1 GiB recycled segment adds about 2 s to the next
/// open at worst.
fn record_follows(bytes: &[u8], from: usize, segment: u64) -> bool {
    let seed = crc32c::crc32c(&segment.to_le_bytes());
    let zero_header_checksum = crc32c::crc32c_append(seed, &[0u8; 12]);
    let last_start = bytes.len().saturating_sub(RECORD_HEADER_BYTES);
    (from..=last_start).any(|at| {
        let header = &bytes[at..at + RECORD_HEADER_BYTES];
        let length = read_u32(header, 0);
        let available = bytes.len() - at - RECORD_HEADER_BYTES;
        if length != END_MARKER_LENGTH && length as usize > available {
            return false;
        }
        let expected = if header[0..12] == [0u8; 12] {
            zero_header_checksum
        } else {
            crc32c::crc32c_append(seed, &header[0..12])
        };
        if expected != read_u32(header, 12) {
            return false;
        }
        length == END_MARKER_LENGTH || {
            let payload =
                &bytes[at + RECORD_HEADER_BYTES..at + RECORD_HEADER_BYTES + length as usize];
            crc32c::crc32c(payload) == read_u32(header, 16)
        }
    })
}

/// Decodes the record at `offset`: `Ok(None)` for an end marker (version 2 only), or what is
/// wrong with it and where the bytes that are not part of it begin (to tell a torn tail
/// from damage with data after it). `segment` seeds the header checksum (version 2).
fn decode_record<'a>(
    path: &Path,
    bytes: &'a [u8],
    offset: usize,
    segment: Option<u64>,
) -> std::result::Result<Option<DecodedRecord<'a>>, (Error, usize)> {
    let Some(header) = bytes.get(offset..offset + RECORD_HEADER_BYTES) else {
        let detail = format!(
            "record header cut short at {} of {RECORD_HEADER_BYTES} bytes",
            bytes.len() - offset
        );
        return Err((corruption(path, offset, detail), bytes.len()));
    };
    let header_end = offset + RECORD_HEADER_BYTES;
    let expected_header_checksum = read_u32(header, 12);
    let actual_header_checksum = match segment {
        Some(number) => seeded_header_checksum(number, &header[0..12]),
        None => crc32c::crc32c(&header[0..12]),
    };
    if expected_header_checksum != actual_header_checksum {
        let error = mismatch(
            path,
            offset,
            expected_header_checksum,
            actual_header_checksum,
        );
        return Err((error, header_end));
    }
    // The length is trustworthy from here on: its checksum matched.
    let length = read_u32(header, 0);
    if segment.is_some() && length == END_MARKER_LENGTH {
        return Ok(None);
    }
    let length = length as usize;
    let seq = u64::from_le_bytes(header[4..12].try_into().unwrap_or_default());
    let Some(payload) = bytes.get(header_end..header_end + length) else {
        let detail = format!(
            "record payload cut short at {} of {length} bytes",
            bytes.len() - header_end
        );
        return Err((corruption(path, offset, detail), bytes.len()));
    };
    let expected_payload_checksum = read_u32(header, 16);
    let actual_payload_checksum = crc32c::crc32c(payload);
    if expected_payload_checksum != actual_payload_checksum {
        let error = mismatch(
            path,
            offset,
            expected_payload_checksum,
            actual_payload_checksum,
        );
        return Err((error, header_end + length));
    }
    Ok(Some(DecodedRecord {
        offset: offset as u64,
        seq,
        payload,
    }))
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&byte| byte == 0)
}

fn corruption(path: &Path, offset: usize, detail: String) -> Error {
    Error::corruption("log record", path, offset as u64, detail)
}

fn mismatch(path: &Path, offset: usize, expected: u32, actual: u32) -> Error {
    Error::ChecksumMismatch {
        path: path.to_path_buf(),
        offset: offset as u64,
        expected,
        actual,
    }
}

#[cfg(test)]
mod tests;
