//! Anti-entropy's peer messages, carried as [`crate::protocol::peer::PeerMessage::AntiEntropy`]
//! with payload tags 80 to 89 (format version 1 of the peer payload).
//!
//! ```text
//! tag message      fields
//!  80 Roots        u8 depth, u64 ring_version, u32 count, then per range: u64
//!                  start_exclusive, u64 end_inclusive
//!  81 RootsReply   u64 ring_version (of the answering node's trees), u32 count, then per
//!                  range: u8 0 (no such tree) or 1 and u64 root
//!  82 Hashes       u64 start, u64 end, u8 depth, u8 level, u32 count, count x u32 index
//!  83 HashesReply  u32 count, count x u64 hash
//!  84 Keys         u8 depth, u32 range count, then per range: u64 start, u64 end,
//!                  u32 bucket count, that many u32 buckets; then bytes resume_key
//!  85 KeysReply    u32 count, then per key: bytes key, u64 digest; then optional bytes
//!                  resume_key (present: more rows remain to scan from it)
//!  86 Fetch        u32 count, then that many bytes keys
//!  87 Rows         u32 count, then per row: bytes key, bytes siblings
//!  88 Push         u32 count, then per row: bytes key, bytes siblings
//!  89 PushReply    u32 applied, u32 changed
//! ```
//! Integers are big-endian, `bytes` is a u32 length then the bytes, as in
//! the rest of the peer payload. Counts are checked against the bytes that remain before
//! anything is allocated.

use serde::{Deserialize, Serialize};

use crate::ring::TokenRange;
use crate::{Error, Result};

/// First and last payload tags of anti-entropy.
pub const TAGS: std::ops::RangeInclusive<u8> = 80..=89;

const TAG_ROOTS: u8 = 80;
const TAG_ROOTS_REPLY: u8 = 81;
const TAG_HASHES: u8 = 82;
const TAG_HASHES_REPLY: u8 = 83;
const TAG_KEYS: u8 = 84;
const TAG_KEYS_REPLY: u8 = 85;
const TAG_FETCH: u8 = 86;
const TAG_ROWS: u8 = 87;
const TAG_PUSH: u8 = 88;
const TAG_PUSH_REPLY: u8 = 89;

/// One key with its encoded sibling set.
pub type Row = (Vec<u8>, Vec<u8>);

/// The buckets of one range whose keys are asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeBuckets {
    /// The range.
    pub range: TokenRange,
    /// Bucket indices, ascending.
    pub buckets: Vec<u32>,
}

/// An anti-entropy request or reply (see the module documentation for the bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AeMessage {
    /// The roots of these ranges' trees of `depth`, built from the ring at `ring_version`,
    /// please.
    Roots {
        depth: u8,
        ring_version: u64,
        ranges: Vec<TokenRange>,
    },
    /// The ring version of the node's trees and one root per asked range, `None` when the
    /// node has no such tree (all `None` when the versions differ).
    RootsReply {
        ring_version: u64,
        roots: Vec<Option<u64>>,
    },
    /// The hashes of these nodes of the tree of `range`, at `level` (0 is the root).
    Hashes {
        range: TokenRange,
        depth: u8,
        level: u8,
        indices: Vec<u32>,
    },
    /// The asked hashes, in order.
    HashesReply { hashes: Vec<u64> },
    /// The keys (with digests) in these buckets, scanning from `resume_key`.
    Keys {
        depth: u8,
        ranges: Vec<RangeBuckets>,
        resume_key: Vec<u8>,
    },
    /// Keys found, and where to resume if the scan stopped early.
    KeysReply {
        keys: Vec<(Vec<u8>, u64)>,
        resume_key: Option<Vec<u8>>,
    },
    /// These keys' sets, please.
    Fetch { keys: Vec<Vec<u8>> },
    /// The sets of the fetched keys the node has.
    Rows { rows: Vec<Row> },
    /// Merge these sets into your store.
    Push { rows: Vec<Row> },
    /// How many pushed rows were applied, and how many changed the store.
    PushReply { applied: u32, changed: u32 },
}

impl AeMessage {
    /// The message's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            AeMessage::Roots { .. } => "AeRoots",
            AeMessage::RootsReply { .. } => "AeRootsReply",
            AeMessage::Hashes { .. } => "AeHashes",
            AeMessage::HashesReply { .. } => "AeHashesReply",
            AeMessage::Keys { .. } => "AeKeys",
            AeMessage::KeysReply { .. } => "AeKeysReply",
            AeMessage::Fetch { .. } => "AeFetch",
            AeMessage::Rows { .. } => "AeRows",
            AeMessage::Push { .. } => "AePush",
            AeMessage::PushReply { .. } => "AePushReply",
        }
    }

    /// Appends the tag and fields to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            AeMessage::Roots {
                depth,
                ring_version,
                ranges,
            } => {
                out.push(TAG_ROOTS);
                out.push(*depth);
                out.extend_from_slice(&ring_version.to_be_bytes());
                put_u32(out, ranges.len());
                ranges.iter().for_each(|range| put_range(out, range));
            }
            AeMessage::RootsReply {
                ring_version,
                roots,
            } => {
                out.push(TAG_ROOTS_REPLY);
                out.extend_from_slice(&ring_version.to_be_bytes());
                put_u32(out, roots.len());
                for root in roots {
                    match root {
                        None => out.push(0),
                        Some(root) => {
                            out.push(1);
                            out.extend_from_slice(&root.to_be_bytes());
                        }
                    }
                }
            }
            AeMessage::Hashes {
                range,
                depth,
                level,
                indices,
            } => {
                out.push(TAG_HASHES);
                put_range(out, range);
                out.extend_from_slice(&[*depth, *level]);
                put_u32(out, indices.len());
                indices
                    .iter()
                    .for_each(|index| out.extend_from_slice(&index.to_be_bytes()));
            }
            AeMessage::HashesReply { hashes } => {
                out.push(TAG_HASHES_REPLY);
                put_u32(out, hashes.len());
                hashes
                    .iter()
                    .for_each(|hash| out.extend_from_slice(&hash.to_be_bytes()));
            }
            AeMessage::Keys {
                depth,
                ranges,
                resume_key,
            } => {
                out.push(TAG_KEYS);
                out.push(*depth);
                put_u32(out, ranges.len());
                for part in ranges {
                    put_range(out, &part.range);
                    put_u32(out, part.buckets.len());
                    part.buckets
                        .iter()
                        .for_each(|bucket| out.extend_from_slice(&bucket.to_be_bytes()));
                }
                put_bytes(out, resume_key);
            }
            AeMessage::KeysReply { keys, resume_key } => {
                out.push(TAG_KEYS_REPLY);
                put_u32(out, keys.len());
                for (key, digest) in keys {
                    put_bytes(out, key);
                    out.extend_from_slice(&digest.to_be_bytes());
                }
                match resume_key {
                    None => out.push(0),
                    Some(key) => {
                        out.push(1);
                        put_bytes(out, key);
                    }
                }
            }
            AeMessage::Fetch { keys } => {
                out.push(TAG_FETCH);
                put_u32(out, keys.len());
                keys.iter().for_each(|key| put_bytes(out, key));
            }
            AeMessage::Rows { rows } | AeMessage::Push { rows } => {
                out.push(if matches!(self, AeMessage::Rows { .. }) {
                    TAG_ROWS
                } else {
                    TAG_PUSH
                });
                put_u32(out, rows.len());
                for (key, siblings) in rows {
                    put_bytes(out, key);
                    put_bytes(out, siblings);
                }
            }
            AeMessage::PushReply { applied, changed } => {
                out.push(TAG_PUSH_REPLY);
                out.extend_from_slice(&applied.to_be_bytes());
                out.extend_from_slice(&changed.to_be_bytes());
            }
        }
    }

    /// The encoded size in bytes (what the peer payload carries).
    pub fn encoded_len(&self) -> usize {
        let mut out = Vec::new();
        self.encode(&mut out);
        out.len()
    }

    /// Decodes the fields after `tag` (one of [`TAGS`]); all of `bytes` must be used.
    pub fn decode(tag: u8, bytes: &[u8]) -> Result<AeMessage> {
        let mut reader = Reader { rest: bytes };
        let r = &mut reader;
        let message = match tag {
            TAG_ROOTS => {
                let depth = r.u8()?;
                let ring_version = r.u64()?;
                let count = r.count(16)?;
                let ranges = (0..count).map(|_| r.range()).collect::<Result<_>>()?;
                AeMessage::Roots {
                    depth,
                    ring_version,
                    ranges,
                }
            }
            TAG_ROOTS_REPLY => {
                let ring_version = r.u64()?;
                let count = r.count(1)?;
                let roots = (0..count)
                    .map(|_| match r.u8()? {
                        0 => Ok(None),
                        1 => r.u64().map(Some),
                        other => Err(corrupt(format!("root presence byte {other}"))),
                    })
                    .collect::<Result<_>>()?;
                AeMessage::RootsReply {
                    ring_version,
                    roots,
                }
            }
            TAG_HASHES => {
                let range = r.range()?;
                let (depth, level) = (r.u8()?, r.u8()?);
                let count = r.count(4)?;
                let indices = (0..count).map(|_| r.u32()).collect::<Result<_>>()?;
                AeMessage::Hashes {
                    range,
                    depth,
                    level,
                    indices,
                }
            }
            TAG_HASHES_REPLY => {
                let count = r.count(8)?;
                let hashes = (0..count).map(|_| r.u64()).collect::<Result<_>>()?;
                AeMessage::HashesReply { hashes }
            }
            TAG_KEYS => {
                let depth = r.u8()?;
                let count = r.count(20)?;
                let mut ranges = Vec::with_capacity(count);
                for _ in 0..count {
                    let range = r.range()?;
                    let buckets = r.count(4)?;
                    let buckets = (0..buckets).map(|_| r.u32()).collect::<Result<_>>()?;
                    ranges.push(RangeBuckets { range, buckets });
                }
                let resume_key = r.bytes()?;
                AeMessage::Keys {
                    depth,
                    ranges,
                    resume_key,
                }
            }
            TAG_KEYS_REPLY => {
                let count = r.count(12)?;
                let keys = (0..count)
                    .map(|_| Ok((r.bytes()?, r.u64()?)))
                    .collect::<Result<_>>()?;
                let resume_key = match r.u8()? {
                    0 => None,
                    1 => Some(r.bytes()?),
                    other => return Err(corrupt(format!("resume presence byte {other}"))),
                };
                AeMessage::KeysReply { keys, resume_key }
            }
            TAG_FETCH => {
                let count = r.count(4)?;
                let keys = (0..count).map(|_| r.bytes()).collect::<Result<_>>()?;
                AeMessage::Fetch { keys }
            }
            TAG_ROWS | TAG_PUSH => {
                let count = r.count(8)?;
                let rows = (0..count)
                    .map(|_| Ok((r.bytes()?, r.bytes()?)))
                    .collect::<Result<_>>()?;
                if tag == TAG_ROWS {
                    AeMessage::Rows { rows }
                } else {
                    AeMessage::Push { rows }
                }
            }
            TAG_PUSH_REPLY => AeMessage::PushReply {
                applied: r.u32()?,
                changed: r.u32()?,
            },
            other => return Err(corrupt(format!("tag {other} is not anti-entropy's"))),
        };
        if !reader.rest.is_empty() {
            return Err(corrupt(format!(
                "{} trailing bytes after {}",
                reader.rest.len(),
                message.name()
            )));
        }
        Ok(message)
    }
}

fn corrupt(detail: String) -> Error {
    Error::PeerProtocol(format!("bad anti-entropy payload: {detail}"))
}

fn put_u32(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&u32::try_from(value).unwrap_or(u32::MAX).to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn put_range(out: &mut Vec<u8>, range: &TokenRange) {
    out.extend_from_slice(&range.start_exclusive.to_be_bytes());
    out.extend_from_slice(&range.end_inclusive.to_be_bytes());
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8]> {
        if count > self.rest.len() {
            return Err(corrupt(format!(
                "needs {count} bytes, {} remain",
                self.rest.len()
            )));
        }
        let (taken, rest) = self.rest.split_at(count);
        self.rest = rest;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let mut array = [0; 8];
        array.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(array))
    }

    /// A count of items each at least `item_bytes_min` long, checked against what remains.
    fn count(&mut self, item_bytes_min: usize) -> Result<usize> {
        let count = self.u32()? as usize;
        if count > self.rest.len() / item_bytes_min {
            return Err(corrupt(format!(
                "claims {count} items in {} bytes",
                self.rest.len()
            )));
        }
        Ok(count)
    }

    fn bytes(&mut self) -> Result<Vec<u8>> {
        let length = self.u32()? as usize;
        Ok(self.take(length)?.to_vec())
    }

    fn range(&mut self) -> Result<TokenRange> {
        Ok(TokenRange {
            start_exclusive: self.u64()?,
            end_inclusive: self.u64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> TokenRange {
        TokenRange {
            start_exclusive: 5,
            end_inclusive: 9,
        }
    }

    fn every_message() -> Vec<AeMessage> {
        vec![
            AeMessage::Roots {
                depth: 10,
                ring_version: 7,
                ranges: vec![range(), range()],
            },
            AeMessage::RootsReply {
                ring_version: 7,
                roots: vec![None, Some(u64::MAX)],
            },
            AeMessage::Hashes {
                range: range(),
                depth: 10,
                level: 4,
                indices: vec![0, 15],
            },
            AeMessage::HashesReply { hashes: vec![1, 2] },
            AeMessage::Keys {
                depth: 10,
                ranges: vec![RangeBuckets {
                    range: range(),
                    buckets: vec![3, 4],
                }],
                resume_key: b"k".to_vec(),
            },
            AeMessage::KeysReply {
                keys: vec![(b"a".to_vec(), 7)],
                resume_key: Some(b"b".to_vec()),
            },
            AeMessage::Fetch {
                keys: vec![b"a".to_vec(), Vec::new()],
            },
            AeMessage::Rows {
                rows: vec![(b"a".to_vec(), b"VS".to_vec())],
            },
            AeMessage::Push { rows: Vec::new() },
            AeMessage::PushReply {
                applied: 3,
                changed: 1,
            },
        ]
    }

    #[test]
    fn every_message_round_trips_and_uses_its_own_tag() {
        let mut tags = Vec::new();
        for message in every_message() {
            let mut bytes = Vec::new();
            message.encode(&mut bytes);
            assert!(TAGS.contains(&bytes[0]));
            tags.push(bytes[0]);
            assert_eq!(AeMessage::decode(bytes[0], &bytes[1..]).unwrap(), message);
            assert_eq!(message.encoded_len(), bytes.len());
            for cut in 1..bytes.len() {
                assert!(AeMessage::decode(bytes[0], &bytes[1..cut]).is_err());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(AeMessage::decode(bytes[0], &longer[1..]).is_err());
        }
        assert_eq!(tags, TAGS.collect::<Vec<_>>());
    }

    #[test]
    fn golden_bytes_of_a_roots_request() {
        let mut bytes = Vec::new();
        AeMessage::Roots {
            depth: 3,
            ring_version: 2,
            ranges: vec![range()],
        }
        .encode(&mut bytes);
        assert_eq!(
            bytes,
            [
                80, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0,
                0, 0, 9
            ]
        );
    }

    #[test]
    fn a_forged_count_is_refused_before_allocating() {
        let bytes = [0xff, 0xff, 0xff, 0xff];
        let error = AeMessage::decode(TAG_HASHES_REPLY, &bytes).unwrap_err();
        assert!(error.to_string().contains("claims"), "{error}");
    }
}
