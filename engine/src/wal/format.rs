//! Encoding and decoding of segment files; the layout is documented on the parent module.

use crate::{Error, Result, SequenceNumber};
use std::path::Path;

/// First eight bytes of every segment: "LSMWAL" then 0x00 0x01, read as a little-endian u64.
pub const SEGMENT_MAGIC: u64 = u64::from_le_bytes(*b"LSMWAL\x00\x01");
/// Format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the segment header: magic and version.
pub const SEGMENT_HEADER_BYTES: usize = 12;
/// Bytes of a record header: length, sequence number and two checksums.
pub const RECORD_HEADER_BYTES: usize = 20;

/// The segment header as written at offset 0 of every segment.
pub fn segment_header() -> [u8; SEGMENT_HEADER_BYTES] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC.to_le_bytes());
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header
}

/// The header of a record carrying `seq` and `payload`. Computing it (both checksums) needs
/// no lock, so appenders do it before joining the queue.
///
/// # Panics
/// If `payload` is 4 GiB or longer; callers enforce a far smaller record limit first.
pub fn record_header(seq: SequenceNumber, payload: &[u8]) -> [u8; RECORD_HEADER_BYTES] {
    let length = u32::try_from(payload.len()).expect("record length checked against the limit");
    let mut header = [0u8; RECORD_HEADER_BYTES];
    header[0..4].copy_from_slice(&length.to_le_bytes());
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
    /// Decoding stopped at `offset`, the start of the first bad record (or of the header).
    Damaged {
        offset: u64,
        /// What was wrong there, naming the file and offset.
        error: Error,
        /// True when nothing but zeros follows the bad record: the shape an interrupted
        /// append leaves (a partial record, or a file extended but not yet written). False
        /// when real data follows, which no crash produces: the bytes were damaged at rest.
        tail_only: bool,
    },
}

/// The outcome of decoding one segment.
#[derive(Debug)]
pub struct DecodedSegment<'a> {
    /// The well-formed records before any damage, in file order.
    pub records: Vec<DecodedRecord<'a>>,
    /// Offset just past the last good record: where to cut the file to drop the damage.
    pub valid_length: u64,
    pub end: SegmentEnd,
}

/// Decodes the segment `bytes` read from `path`. Never panics on any input; damage is
/// reported in [`DecodedSegment::end`]. The only error is a segment of a format version this
/// build does not know, which no amount of salvaging can read.
pub fn decode_segment<'a>(path: &Path, bytes: &'a [u8]) -> Result<DecodedSegment<'a>> {
    let damaged = |error: Error, tail_only: bool| DecodedSegment {
        records: Vec::new(),
        valid_length: 0,
        end: SegmentEnd::Damaged {
            offset: 0,
            error,
            tail_only,
        },
    };
    let expected_header = segment_header();
    let Some(header) = bytes.get(..SEGMENT_HEADER_BYTES) else {
        // A crash while creating the segment leaves a prefix of its header, or zeros.
        let torn = expected_header.starts_with(bytes) || all_zero(bytes);
        let detail = format!("segment header cut short at {} bytes", bytes.len());
        return Ok(damaged(corruption(path, 0, detail), torn));
    };
    if header[0..8] != expected_header[0..8] {
        let detail = format!("bad magic {:02x?}", &header[0..8]);
        // An all-zero file is one the file system extended but whose header never landed.
        return Ok(damaged(corruption(path, 0, detail), all_zero(bytes)));
    }
    let version = read_u32(header, 8);
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    decode_records(path, bytes)
}

fn decode_records<'a>(path: &Path, bytes: &'a [u8]) -> Result<DecodedSegment<'a>> {
    let mut records = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES;
    let end = loop {
        let remaining = bytes.len() - offset;
        if remaining == 0 {
            break SegmentEnd::Clean;
        }
        match decode_record(path, bytes, offset) {
            Ok(record) => {
                offset += RECORD_HEADER_BYTES + record.payload.len();
                records.push(record);
            }
            Err((error, tail_start)) => {
                let tail = bytes.get(tail_start..).unwrap_or(&[]);
                break SegmentEnd::Damaged {
                    offset: offset as u64,
                    error,
                    tail_only: all_zero(tail),
                };
            }
        }
    };
    Ok(DecodedSegment {
        records,
        valid_length: offset as u64,
        end,
    })
}

/// Decodes the record at `offset`, or says what is wrong with it and where the bytes that
/// are not part of it begin (to tell a torn tail from damage with data after it).
fn decode_record<'a>(
    path: &Path,
    bytes: &'a [u8],
    offset: usize,
) -> std::result::Result<DecodedRecord<'a>, (Error, usize)> {
    let Some(header) = bytes.get(offset..offset + RECORD_HEADER_BYTES) else {
        let detail = format!(
            "record header cut short at {} of {RECORD_HEADER_BYTES} bytes",
            bytes.len() - offset
        );
        return Err((corruption(path, offset, detail), bytes.len()));
    };
    let header_end = offset + RECORD_HEADER_BYTES;
    let expected_header_checksum = read_u32(header, 12);
    let actual_header_checksum = crc32c::crc32c(&header[0..12]);
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
    let length = read_u32(header, 0) as usize;
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
    Ok(DecodedRecord {
        offset: offset as u64,
        seq,
        payload,
    })
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
