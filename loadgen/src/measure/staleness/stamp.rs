//! The value stamp, format version 1: the first [`STAMP_LEN`] bytes of every value kvbench
//! writes.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "KVst"
//!      4     1  version, 1
//!      5     3  reserved, zero
//!      8     8  writer id, u64 little-endian (one per load thread and process)
//!     16     8  sequence, u64 little-endian (unique per writer, increasing)
//!     24     8  issue time, microseconds of the run clock, u64 little-endian
//! ```
//!
//! The stamp holds the time the write was *issued*: the acknowledgement time is only known
//! after the value was sent, so the tracker records it. A value without the magic (loaded by
//! another tool, or shorter than a stamp) is unstamped, not an error; one with the magic but
//! an unknown version or non-zero reserved bytes is reported as corrupt.

use crate::{Error, Result};

/// Bytes a stamp occupies at the start of a value.
pub const STAMP_LEN: usize = 32;
/// First four bytes of a stamped value.
pub const STAMP_MAGIC: [u8; 4] = *b"KVst";
/// The format version written and understood.
pub const STAMP_VERSION: u8 = 1;

/// Which write a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueStamp {
    /// The writing thread (unique within the run).
    pub writer: u64,
    /// The writer's sequence number: (writer, sequence) identifies one write.
    pub sequence: u64,
    /// When the write was issued, in microseconds of the run clock.
    pub issued_micros: u64,
}

/// What a read returned, as far as staleness is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// A value kvbench wrote.
    Stamp(ValueStamp),
    /// A value without a stamp (or with a corrupt one): written by someone else, e.g. a
    /// load phase that did not stamp. Classified as older than every tracked write.
    Unstamped,
}

impl Observed {
    /// What a returned value's bytes say.
    pub fn of_value(value: &[u8]) -> Observed {
        match ValueStamp::decode(value) {
            Ok(Some(stamp)) => Observed::Stamp(stamp),
            Ok(None) | Err(_) => Observed::Unstamped,
        }
    }
}

impl ValueStamp {
    /// The 32 stamp bytes.
    pub fn encode(&self) -> [u8; STAMP_LEN] {
        let mut bytes = [0u8; STAMP_LEN];
        bytes[..4].copy_from_slice(&STAMP_MAGIC);
        bytes[4] = STAMP_VERSION;
        bytes[8..16].copy_from_slice(&self.writer.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.sequence.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.issued_micros.to_le_bytes());
        bytes
    }

    /// Overwrites the start of `value` with the stamp; `value` must hold at least
    /// [`STAMP_LEN`] bytes (a staleness run needs `fieldlength` >= 32).
    pub fn write_into(&self, value: &mut [u8]) -> Result<()> {
        match value.get_mut(..STAMP_LEN) {
            Some(head) => {
                head.copy_from_slice(&self.encode());
                Ok(())
            }
            None => Err(Error::ValueStamp {
                detail: format!(
                    "a {}-byte value cannot hold the {STAMP_LEN}-byte staleness stamp",
                    value.len()
                ),
            }),
        }
    }

    /// The stamp at the start of `value`: `Ok(None)` if the value is not stamped (no magic
    /// or too short), an error if it has the magic but not a valid version-1 stamp.
    pub fn decode(value: &[u8]) -> Result<Option<ValueStamp>> {
        if value.len() < STAMP_LEN || value[..4] != STAMP_MAGIC {
            return Ok(None);
        }
        if value[4] != STAMP_VERSION {
            return Err(Error::ValueStamp {
                detail: format!(
                    "unknown stamp version {} (expected {STAMP_VERSION})",
                    value[4]
                ),
            });
        }
        if value[5..8] != [0, 0, 0] {
            return Err(Error::ValueStamp {
                detail: format!("reserved stamp bytes are {:?}, expected zero", &value[5..8]),
            });
        }
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&value[at..at + 8]);
            u64::from_le_bytes(bytes)
        };
        Ok(Some(ValueStamp {
            writer: word(8),
            sequence: word(16),
            issued_micros: word(24),
        }))
    }
}
