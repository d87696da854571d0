//! Little-endian fixed-width integers, LEB128 varints and a bounds-checked reader.
//!
//! Every read from disk goes through [`Reader`], so a malformed length can only ever turn
//! into a [`FormatError`], never an out-of-bounds panic.

use crate::error::Error;
use std::path::Path;

/// The longest a LEB128-encoded u64 can be.
pub const VARINT_LENGTH_MAX: usize = 10;

/// A structural problem found while decoding bytes that carry no path of their own (a
/// block, the footer). The table layer turns it into an [`Error::Corruption`] that names
/// the file and the offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// Offset of the problem inside the structure being decoded.
    pub offset: usize,
    /// What was wrong; static so that the success path never formats anything.
    pub detail: &'static str,
}

impl FormatError {
    pub fn new(offset: usize, detail: &'static str) -> FormatError {
        FormatError { offset, detail }
    }

    /// Names the file, and the structure's own offset within it.
    pub fn into_error(self, what: &'static str, path: &Path, structure_offset: u64) -> Error {
        Error::corruption(
            what,
            path,
            structure_offset,
            format!("{} (at byte {} of the {what})", self.detail, self.offset),
        )
    }
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} at byte {}", self.detail, self.offset)
    }
}

pub type FormatResult<T> = std::result::Result<T, FormatError>;

pub fn put_varint(buffer: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buffer.push((value as u8) | 0x80);
        value >>= 7;
    }
    buffer.push(value as u8);
}

pub fn varint_length(mut value: u64) -> usize {
    let mut length = 1;
    while value >= 0x80 {
        value >>= 7;
        length += 1;
    }
    length
}

pub fn put_u32(buffer: &mut Vec<u8>, value: u32) {
    buffer.extend_from_slice(&value.to_le_bytes());
}

pub fn put_u64(buffer: &mut Vec<u8>, value: u64) {
    buffer.extend_from_slice(&value.to_le_bytes());
}

/// Reads a u32 at `offset`, `None` if it does not fit.
#[inline]
pub fn read_u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    let array: [u8; 4] = bytes.get(offset..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(array))
}

/// Reads a u64 at `offset`, `None` if it does not fit.
#[inline]
pub fn read_u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    let end = offset.checked_add(8)?;
    let array: [u8; 8] = bytes.get(offset..end)?.try_into().ok()?;
    Some(u64::from_le_bytes(array))
}

/// A cursor over untrusted bytes. Every method checks bounds and reports the offset where
/// decoding failed.
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, position: 0 }
    }

    pub fn at(bytes: &'a [u8], position: usize) -> Reader<'a> {
        Reader { bytes, position }
    }

    pub fn position(&self) -> usize {
        self.position
    }

    pub fn is_empty(&self) -> bool {
        self.position >= self.bytes.len()
    }

    #[inline]
    pub fn varint(&mut self) -> FormatResult<u64> {
        let mut value: u64 = 0;
        for index in 0..VARINT_LENGTH_MAX {
            let Some(&byte) = self.bytes.get(self.position + index) else {
                return Err(FormatError::new(self.position, "truncated varint"));
            };
            // The tenth byte may only contribute the top bit of a u64.
            if index == VARINT_LENGTH_MAX - 1 && byte > 1 {
                return Err(FormatError::new(self.position, "varint overflows u64"));
            }
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte < 0x80 {
                self.position += index + 1;
                return Ok(value);
            }
        }
        Err(FormatError::new(
            self.position,
            "varint longer than 10 bytes",
        ))
    }

    /// A varint used as a length or an offset into memory.
    #[inline]
    pub fn varint_usize(&mut self) -> FormatResult<usize> {
        let start = self.position;
        let value = self.varint()?;
        usize::try_from(value).map_err(|_| FormatError::new(start, "length does not fit in memory"))
    }

    #[inline]
    pub fn bytes(&mut self, length: usize) -> FormatResult<&'a [u8]> {
        let end = self
            .position
            .checked_add(length)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(FormatError::new(self.position, "length runs past the end"))?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    #[inline]
    pub fn u8(&mut self) -> FormatResult<u8> {
        Ok(self.bytes(1)?[0])
    }

    #[inline]
    pub fn u32(&mut self) -> FormatResult<u32> {
        let value = read_u32_at(self.bytes, self.position)
            .ok_or(FormatError::new(self.position, "truncated u32"))?;
        self.position += 4;
        Ok(value)
    }

    #[inline]
    pub fn u64(&mut self) -> FormatResult<u64> {
        let value = read_u64_at(self.bytes, self.position)
            .ok_or(FormatError::new(self.position, "truncated u64"))?;
        self.position += 8;
        Ok(value)
    }

    /// A varint length followed by that many bytes.
    pub fn length_prefixed(&mut self) -> FormatResult<&'a [u8]> {
        let length = self.varint_usize()?;
        self.bytes(length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_golden_bytes() {
        let cases: [(u64, &[u8]); 5] = [
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for (value, expected) in cases {
            let mut buffer = Vec::new();
            put_varint(&mut buffer, value);
            assert_eq!(buffer, expected);
            assert_eq!(varint_length(value), expected.len());
            let mut reader = Reader::new(&buffer);
            assert_eq!(reader.varint(), Ok(value));
            assert!(reader.is_empty());
        }
    }

    #[test]
    fn malformed_varints_are_errors() {
        assert!(Reader::new(&[0x80]).varint().is_err());
        assert!(Reader::new(&[0xff; 10]).varint().is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .varint()
                .is_err()
        );
        assert!(Reader::new(&[0x05, 1, 2]).length_prefixed().is_err());
    }
}
