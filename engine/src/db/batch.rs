//! Write batches and their encoding as commit-log payloads.
//!
//! A batch is applied atomically: it is one log record, so recovery replays all of it or
//! none of it. Operation `i` of a batch whose record carries sequence number `s` gets
//! sequence number `s + i`.
//!
//! Payload format version 1, little-endian:
//!
//! ```text
//! format_version  u8    1
//! operation_count u32
//! operation_count times:
//!   kind          u8    0 delete, 1 put
//!   key_length    u32
//!   meta_length   u32
//!   value_length  u32
//!   key, meta, value bytes
//! ```

use crate::{Error, Result, ValueKind};
use std::path::Path;

const FORMAT_VERSION: u8 = 1;
const OPERATION_HEADER_SIZE_BYTES: usize = 1 + 4 + 4 + 4;

/// One operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub kind: ValueKind,
    pub key: Vec<u8>,
    pub meta: Vec<u8>,
    pub value: Vec<u8>,
}

/// One operation of a batch, borrowed from the payload it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationRef<'a> {
    pub kind: ValueKind,
    pub key: &'a [u8],
    pub meta: &'a [u8],
    pub value: &'a [u8],
}

/// Writes applied together: all survive a crash or none do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    operations: Vec<Operation>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Adds a put of `key` with caller metadata and value.
    pub fn put(&mut self, key: &[u8], meta: &[u8], value: &[u8]) -> &mut Self {
        self.operations.push(Operation {
            kind: ValueKind::Put,
            key: key.to_vec(),
            meta: meta.to_vec(),
            value: value.to_vec(),
        });
        self
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.operations.push(Operation {
            kind: ValueKind::Delete,
            key: key.to_vec(),
            meta: Vec::new(),
            value: Vec::new(),
        });
        self
    }

    /// The operations, in order.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// The log payload of this batch.
    pub fn encode(&self) -> Vec<u8> {
        encode_operations(self.operations.iter().map(|operation| {
            (
                operation.kind,
                &operation.key[..],
                &operation.meta[..],
                &operation.value[..],
            )
        }))
    }
}

/// Encodes operations given as (kind, key, meta, value), so a single put needs no batch.
pub fn encode_operations<'a>(
    operations: impl Iterator<Item = (ValueKind, &'a [u8], &'a [u8], &'a [u8])> + Clone,
) -> Vec<u8> {
    let mut payload = Vec::with_capacity(encoded_size(operations.clone()));
    encode_operations_into(&mut payload, operations);
    payload
}

/// Bytes [`encode_operations`] produces for `operations`.
pub fn encoded_size<'a>(
    operations: impl Iterator<Item = (ValueKind, &'a [u8], &'a [u8], &'a [u8])>,
) -> usize {
    let operations_bytes: usize = operations
        .map(|(_, key, meta, value)| {
            OPERATION_HEADER_SIZE_BYTES + key.len() + meta.len() + value.len()
        })
        .sum();
    5 + operations_bytes
}

/// Appends the encoding of `operations` to `payload` (for a commit-log record written in
/// place in the log's queue).
pub fn encode_operations_into<'a>(
    payload: &mut Vec<u8>,
    operations: impl Iterator<Item = (ValueKind, &'a [u8], &'a [u8], &'a [u8])> + Clone,
) {
    payload.push(FORMAT_VERSION);
    payload.extend_from_slice(&(operations.clone().count() as u32).to_le_bytes());
    for (kind, key, meta, value) in operations {
        payload.push(kind as u8);
        payload.extend_from_slice(&(key.len() as u32).to_le_bytes());
        payload.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        payload.extend_from_slice(&(value.len() as u32).to_le_bytes());
        payload.extend_from_slice(key);
        payload.extend_from_slice(meta);
        payload.extend_from_slice(value);
    }
}

/// Decodes a log payload into owned operations (the tests' view; recovery borrows).
#[cfg(test)]
pub fn decode(payload: &[u8], path: &Path, seq: u64) -> Result<Vec<Operation>> {
    Ok(decode_borrowed(payload, path, seq)?
        .into_iter()
        .map(|operation| Operation {
            kind: operation.kind,
            key: operation.key.to_vec(),
            meta: operation.meta.to_vec(),
            value: operation.value.to_vec(),
        })
        .collect())
}

/// Decodes a log payload; the operations borrow `payload`'s bytes. `path` and `seq` only
/// locate the record in errors. The whole payload is checked before anything is returned,
/// so a damaged record yields no operation at all.
pub fn decode_borrowed<'a>(
    payload: &'a [u8],
    path: &Path,
    seq: u64,
) -> Result<Vec<OperationRef<'a>>> {
    let corrupt = |detail: String| {
        Error::corruption(
            "log record payload",
            path,
            0,
            format!("record with seq {seq}: {detail}"),
        )
    };
    let mut reader = Reader {
        bytes: payload,
        position: 0,
    };
    let version = reader
        .take(1)
        .ok_or_else(|| corrupt("empty payload".into()))?[0];
    if version != FORMAT_VERSION {
        return Err(corrupt(format!("unknown payload version {version}")));
    }
    let count = reader
        .u32()
        .ok_or_else(|| corrupt("truncated operation count".into()))?;
    // Each operation takes at least its header, which bounds a lying count.
    if count as usize > payload.len() / OPERATION_HEADER_SIZE_BYTES {
        return Err(corrupt(format!(
            "operation count {count} cannot fit in {} bytes",
            payload.len()
        )));
    }
    let mut operations = Vec::with_capacity(count as usize);
    for index in 0..count {
        let truncated = || corrupt(format!("operation {index} truncated"));
        let kind_byte = reader.take(1).ok_or_else(truncated)?[0];
        let kind = ValueKind::from_byte(kind_byte)
            .ok_or_else(|| corrupt(format!("operation {index} has unknown kind {kind_byte}")))?;
        let key_length = reader.u32().ok_or_else(truncated)? as usize;
        let meta_length = reader.u32().ok_or_else(truncated)? as usize;
        let value_length = reader.u32().ok_or_else(truncated)? as usize;
        let key = reader.take(key_length).ok_or_else(truncated)?;
        let meta = reader.take(meta_length).ok_or_else(truncated)?;
        let value = reader.take(value_length).ok_or_else(truncated)?;
        operations.push(OperationRef {
            kind,
            key,
            meta,
            value,
        });
    }
    if reader.position != payload.len() {
        return Err(corrupt(format!(
            "{} trailing bytes",
            payload.len() - reader.position
        )));
    }
    Ok(operations)
}

struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Option<&'a [u8]> {
        let end = self.position.checked_add(length)?;
        let slice = self.bytes.get(self.position..end)?;
        self.position = end;
        Some(slice)
    }

    fn u32(&mut self) -> Option<u32> {
        let bytes = self.take(4)?;
        Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes_and_round_trip() {
        let mut batch = WriteBatch::new();
        batch.put(b"k", b"m", b"vv").delete(b"d");
        let payload = batch.encode();
        let expected: Vec<u8> = [
            &[1u8][..],
            &[2, 0, 0, 0],
            &[1, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0],
            b"kmvv",
            &[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            b"d",
        ]
        .concat();
        assert_eq!(payload, expected);
        assert_eq!(
            decode(&payload, Path::new("x.log"), 7).unwrap(),
            batch.operations
        );
    }

    #[test]
    fn damaged_payloads_are_errors_not_panics() {
        let mut batch = WriteBatch::new();
        batch.put(b"key", b"meta", b"value");
        let payload = batch.encode();
        for length in 0..payload.len() {
            assert!(decode(&payload[..length], Path::new("x.log"), 1).is_err());
        }
        let mut lying = payload.clone();
        lying[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&lying, Path::new("x.log"), 1).is_err());
        let mut bad_kind = payload;
        bad_kind[5] = 9;
        assert!(decode(&bad_kind, Path::new("x.log"), 1).is_err());
    }
}
