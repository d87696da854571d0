//! The payload of a peer frame: one [`PeerMessage`], format version 1.
//!
//! A tag byte names the message, then its fields in declaration order:
//!
//! ```text
//! tag message    fields
//!   1 Hello      string node, string datacenter, string cluster_name
//!   2 Ping       -
//!   3 Pong       -
//!   4 Put        bytes key, bytes siblings
//!   5 PutAck     -
//!   6 Get        bytes key
//!   7 GetReply   optional bytes siblings
//!   8 Scan       bytes start, optional bytes end, u32 limit
//!   9 ScanReply  u32 row count, then per row: bytes key, bytes siblings
//!  10 Error      string message
//!  11 Mint       bytes key, bytes context, optional bytes value
//!  12 GetDigest  u32 key count, then that many bytes
//!  13 DigestReply  u32 digest count, then per digest: u8 0 (absent) or 1 followed by a
//!                u128
//!  14 PutMany    u32 put count, then per put: bytes key, bytes siblings
//!  15 PutManyAck u32 failure count, then per failure: u32 index, string error
//!  40 LinkUpdate       u32 word count, then that many strings
//!  41 LinkUpdateReply  string summary
//!  50 HintedPut  string owner, bytes key, bytes siblings
//!  60 AuthChallenge  bytes nonce
//!  61 AuthProof      bytes proof
//!  70 Gossip     string from, u32 entry count, then per entry: string id, u64 generation,
//!                u64 heartbeat, u8 status (0 alive, 1 suspect, 2 down, 3 left)
//!  90 RingUpdate u64 version, u8 phase (0 stable, 1 streaming, 2 read_new), members
//!                current, members next
//!  91 RingAck    u64 version
//!  92 StreamPull u64 version, bytes cursor, u32 scan_limit
//!  93 StreamBatch  u32 row count, then per row: bytes key, bytes siblings; optional
//!                bytes next_cursor
//!  94 Rebalance  u64 version, u32 skipped member count, then that many strings
//!  95 RebalanceReply  u64 rows, u64 keys_new, u64 bytes, string failures
//!  96 StreamPullDigests  u64 version, bytes cursor, u32 scan_limit, u32 source count,
//!                then that many strings
//!  97 StreamDigestBatch  rows as StreamBatch; u32 digest count, then per digest: bytes
//!                key, u128 digest; optional bytes next_cursor
//!  98 StreamFetch  u64 version, u32 key count, then that many bytes
//!  99 DrainWrites  u64 version, u64 wait_ms
//!
//! members = u32 count, then per member: string id, string datacenter, u32 weight,
//!           string client_address, string peer_address
//!  80-89 AntiEntropy  roots, hashes, keys and rows (see `antientropy/wire.rs`)
//!
//! Tags 40 to 49 are the link emulator's admin messages; 50 to 59 are hinted handoff and
//! repair; 60 to 69 are peer authentication; 70 to 79 are membership; 80 to 89 are
//! anti-entropy; 90 to 99 are ring changes (scaling).
//!
//! bytes    = u32 length, then that many bytes
//! u128     = u64 high half, then u64 low half
//! string   = bytes holding UTF-8
//! optional = u8 0 (absent) or 1 (present, followed by the value)
//! ```
//!
//! Integers are big-endian. Every length is checked against the bytes that remain before
//! anything is allocated, so the frame limit bounds memory; trailing bytes are an error, so
//! one payload has exactly one meaning.
//!
//! Hand-written rather than a serde format: the bytes are the contract between releases, and
//! here they are spelled out and pinned by golden tests instead of depending on how a
//! serialization crate chooses to encode an enum.

mod scaling;

use super::{PeerMessage, ScanRow};
use crate::antientropy::wire::{AeMessage, TAGS as AE_TAGS};
use crate::membership::{Gossip, GossipEntry, Status};
use crate::ring::NodeId;
use crate::{Error, Result};

const TAG_HELLO: u8 = 1;
const TAG_PING: u8 = 2;
const TAG_PONG: u8 = 3;
const TAG_PUT: u8 = 4;
const TAG_PUT_ACK: u8 = 5;
const TAG_GET: u8 = 6;
const TAG_GET_REPLY: u8 = 7;
const TAG_SCAN: u8 = 8;
const TAG_SCAN_REPLY: u8 = 9;
const TAG_ERROR: u8 = 10;
const TAG_MINT: u8 = 11;
const TAG_GET_DIGEST: u8 = 12;
const TAG_DIGEST_REPLY: u8 = 13;
const TAG_PUT_MANY: u8 = 14;
const TAG_PUT_MANY_ACK: u8 = 15;
const TAG_LINK_UPDATE: u8 = 40;
const TAG_LINK_UPDATE_REPLY: u8 = 41;
const TAG_HINTED_PUT: u8 = 50;
const TAG_AUTH_CHALLENGE: u8 = 60;
const TAG_AUTH_PROOF: u8 = 61;
const TAG_GOSSIP: u8 = 70;

/// Smallest encoded gossip entry (empty id, two u64, status), used to bound the count.
const GOSSIP_ENTRY_SIZE_BYTES_MIN: usize = 4 + 8 + 8 + 1;

/// Most words in a `LinkUpdate`: a link change is a handful of words.
const LINK_UPDATE_WORDS_MAX: usize = 256;

/// Smallest encoded scan row (two empty byte strings), used to bound the row count.
const SCAN_ROW_SIZE_BYTES_MIN: usize = 8;

/// The payload bytes [`encode`] appends for `message`: exact for the messages of the data
/// path (`Put`, `Get`, `GetReply`, `Mint`, `HintedPut`, `ScanReply`, `Error`, and those
/// without fields), a small guess for the rest. A frame's buffer is allocated at this size
/// once: grown from empty, a `GetReply` of a 1 KiB set was reallocated and copied 7 times.
pub(super) fn size_hint(message: &PeerMessage) -> usize {
    let bytes = |bytes: &[u8]| 4 + bytes.len();
    let optional = |value: Option<&[u8]>| 1 + value.map_or(0, bytes);
    1 + match message {
        PeerMessage::Ping | PeerMessage::Pong | PeerMessage::PutAck => 0,
        PeerMessage::Put { key, siblings } => bytes(key) + bytes(siblings),
        PeerMessage::Get { key } => bytes(key),
        PeerMessage::GetReply { siblings } => optional(siblings.as_deref()),
        PeerMessage::GetDigest { keys } => 4 + keys.iter().map(|key| bytes(key)).sum::<usize>(),
        PeerMessage::PutMany { puts } => {
            4 + puts
                .iter()
                .map(|(key, siblings)| bytes(key) + bytes(siblings))
                .sum::<usize>()
        }
        PeerMessage::PutManyAck { failed } => {
            4 + failed
                .iter()
                .map(|(_, error)| 4 + bytes(error.as_bytes()))
                .sum::<usize>()
        }
        PeerMessage::DigestReply { digests } => {
            4 + digests
                .iter()
                .map(|digest| 1 + digest.map_or(0, |_| 16))
                .sum::<usize>()
        }
        PeerMessage::Mint {
            key,
            context,
            value,
        } => bytes(key) + bytes(context) + optional(value.as_deref()),
        PeerMessage::HintedPut {
            owner,
            key,
            siblings,
        } => bytes(owner.as_bytes()) + bytes(key) + bytes(siblings),
        PeerMessage::ScanReply { rows } => {
            4 + rows
                .iter()
                .map(|row| bytes(&row.key) + bytes(&row.siblings))
                .sum::<usize>()
        }
        PeerMessage::Error { message } => bytes(message.as_bytes()),
        _ => 63,
    }
}

/// Appends `message`'s payload to `out`.
pub(super) fn encode(message: &PeerMessage, out: &mut Vec<u8>) {
    match message {
        PeerMessage::Hello {
            node,
            datacenter,
            cluster_name,
        } => {
            out.push(TAG_HELLO);
            put_bytes(out, node.as_bytes());
            put_bytes(out, datacenter.as_bytes());
            put_bytes(out, cluster_name.as_bytes());
        }
        PeerMessage::Ping => out.push(TAG_PING),
        PeerMessage::Pong => out.push(TAG_PONG),
        PeerMessage::Put { key, siblings } => {
            out.push(TAG_PUT);
            put_bytes(out, key);
            put_bytes(out, siblings);
        }
        PeerMessage::PutAck => out.push(TAG_PUT_ACK),
        PeerMessage::Get { key } => {
            out.push(TAG_GET);
            put_bytes(out, key);
        }
        PeerMessage::GetReply { siblings } => {
            out.push(TAG_GET_REPLY);
            put_optional(out, siblings.as_deref());
        }
        PeerMessage::GetDigest { keys } => {
            out.push(TAG_GET_DIGEST);
            out.extend_from_slice(&length_u32(keys.len()).to_be_bytes());
            for key in keys {
                put_bytes(out, key);
            }
        }
        PeerMessage::PutMany { puts } => {
            out.push(TAG_PUT_MANY);
            out.extend_from_slice(&length_u32(puts.len()).to_be_bytes());
            for (key, siblings) in puts {
                put_bytes(out, key);
                put_bytes(out, siblings);
            }
        }
        PeerMessage::PutManyAck { failed } => {
            out.push(TAG_PUT_MANY_ACK);
            out.extend_from_slice(&length_u32(failed.len()).to_be_bytes());
            for (index, error) in failed {
                out.extend_from_slice(&index.to_be_bytes());
                put_bytes(out, error.as_bytes());
            }
        }
        PeerMessage::DigestReply { digests } => {
            out.push(TAG_DIGEST_REPLY);
            out.extend_from_slice(&length_u32(digests.len()).to_be_bytes());
            for digest in digests {
                match digest {
                    None => out.push(0),
                    Some(digest) => {
                        out.push(1);
                        out.extend_from_slice(&digest.to_be_bytes());
                    }
                }
            }
        }
        PeerMessage::Scan { start, end, limit } => {
            out.push(TAG_SCAN);
            put_bytes(out, start);
            put_optional(out, end.as_deref());
            out.extend_from_slice(&limit.to_be_bytes());
        }
        PeerMessage::ScanReply { rows } => {
            out.push(TAG_SCAN_REPLY);
            out.extend_from_slice(&length_u32(rows.len()).to_be_bytes());
            for row in rows {
                put_bytes(out, &row.key);
                put_bytes(out, &row.siblings);
            }
        }
        PeerMessage::Mint {
            key,
            context,
            value,
        } => {
            out.push(TAG_MINT);
            put_bytes(out, key);
            put_bytes(out, context);
            put_optional(out, value.as_deref());
        }
        PeerMessage::Error { message } => {
            out.push(TAG_ERROR);
            put_bytes(out, message.as_bytes());
        }
        PeerMessage::LinkUpdate { words } => {
            out.push(TAG_LINK_UPDATE);
            out.extend_from_slice(&length_u32(words.len()).to_be_bytes());
            for word in words {
                put_bytes(out, word.as_bytes());
            }
        }
        PeerMessage::LinkUpdateReply { summary } => {
            out.push(TAG_LINK_UPDATE_REPLY);
            put_bytes(out, summary.as_bytes());
        }
        PeerMessage::HintedPut {
            owner,
            key,
            siblings,
        } => {
            out.push(TAG_HINTED_PUT);
            put_bytes(out, owner.as_bytes());
            put_bytes(out, key);
            put_bytes(out, siblings);
        }
        PeerMessage::AuthChallenge { nonce } => {
            out.push(TAG_AUTH_CHALLENGE);
            put_bytes(out, nonce);
        }
        PeerMessage::AuthProof { proof } => {
            out.push(TAG_AUTH_PROOF);
            put_bytes(out, proof);
        }
        PeerMessage::Gossip { table } => {
            out.push(TAG_GOSSIP);
            put_bytes(out, table.from.as_str().as_bytes());
            out.extend_from_slice(&length_u32(table.entries.len()).to_be_bytes());
            for entry in &table.entries {
                put_bytes(out, entry.id.as_str().as_bytes());
                out.extend_from_slice(&entry.generation.to_be_bytes());
                out.extend_from_slice(&entry.heartbeat.to_be_bytes());
                out.push(status_byte(entry.status));
            }
        }
        PeerMessage::AntiEntropy(message) => message.encode(out),
        other => scaling::encode(other, out),
    }
}

fn status_byte(status: Status) -> u8 {
    match status {
        Status::Alive => 0,
        Status::Suspect => 1,
        Status::Down => 2,
        Status::Left => 3,
    }
}

fn decode_gossip(reader: &mut Reader<'_>) -> Result<PeerMessage> {
    let from = NodeId::new(reader.string("Gossip.from")?);
    let count = reader.u32("Gossip entry count")? as usize;
    if count > reader.rest.len() / GOSSIP_ENTRY_SIZE_BYTES_MIN {
        return Err(corrupt(format!(
            "Gossip claims {count} entries in {} bytes",
            reader.rest.len()
        )));
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let id = NodeId::new(reader.string("Gossip.id")?);
        let generation = reader.u64("Gossip.generation")?;
        let heartbeat = reader.u64("Gossip.heartbeat")?;
        let status = match reader.u8("Gossip.status")? {
            0 => Status::Alive,
            1 => Status::Suspect,
            2 => Status::Down,
            3 => Status::Left,
            other => return Err(corrupt(format!("Gossip.status {other} is unknown"))),
        };
        entries.push(GossipEntry {
            id,
            generation,
            heartbeat,
            status,
        });
    }
    Ok(PeerMessage::Gossip {
        table: Gossip { from, entries },
    })
}

/// Decodes one whole payload.
pub(super) fn decode(payload: &[u8]) -> Result<PeerMessage> {
    let mut reader = Reader { rest: payload };
    let message = match reader.u8("message tag")? {
        TAG_HELLO => PeerMessage::Hello {
            node: reader.string("Hello.node")?,
            datacenter: reader.string("Hello.datacenter")?,
            cluster_name: reader.string("Hello.cluster_name")?,
        },
        TAG_PING => PeerMessage::Ping,
        TAG_PONG => PeerMessage::Pong,
        TAG_PUT => PeerMessage::Put {
            key: reader.bytes("Put.key")?,
            siblings: reader.bytes("Put.siblings")?,
        },
        TAG_PUT_ACK => PeerMessage::PutAck,
        TAG_GET => PeerMessage::Get {
            key: reader.bytes("Get.key")?,
        },
        TAG_GET_REPLY => PeerMessage::GetReply {
            siblings: reader.optional("GetReply.siblings")?,
        },
        TAG_GET_DIGEST => {
            // Every key takes at least its 4-byte length: a count past that is corrupt, and
            // checking it first keeps a forged count from reserving memory.
            let count = reader.u32("GetDigest key count")? as usize;
            if count > reader.rest.len() / 4 {
                return Err(corrupt(format!(
                    "GetDigest claims {count} keys in {} bytes",
                    reader.rest.len()
                )));
            }
            let mut keys = Vec::with_capacity(count);
            for _ in 0..count {
                keys.push(reader.bytes("GetDigest.keys")?);
            }
            PeerMessage::GetDigest { keys }
        }
        TAG_PUT_MANY => {
            // Every put takes at least its two 4-byte lengths.
            let count = reader.u32("PutMany put count")? as usize;
            if count > reader.rest.len() / 8 {
                return Err(corrupt(format!(
                    "PutMany claims {count} puts in {} bytes",
                    reader.rest.len()
                )));
            }
            let mut puts = Vec::with_capacity(count);
            for _ in 0..count {
                let key = reader.bytes("PutMany.key")?;
                let siblings = reader.bytes("PutMany.siblings")?;
                puts.push((key, siblings));
            }
            PeerMessage::PutMany { puts }
        }
        TAG_PUT_MANY_ACK => {
            let count = reader.u32("PutManyAck failure count")? as usize;
            if count > reader.rest.len() / 8 {
                return Err(corrupt(format!(
                    "PutManyAck claims {count} failures in {} bytes",
                    reader.rest.len()
                )));
            }
            let mut failed = Vec::with_capacity(count);
            for _ in 0..count {
                let index = reader.u32("PutManyAck.index")?;
                failed.push((index, reader.string("PutManyAck.error")?));
            }
            PeerMessage::PutManyAck { failed }
        }
        TAG_DIGEST_REPLY => {
            let count = reader.u32("DigestReply digest count")? as usize;
            if count > reader.rest.len() {
                return Err(corrupt(format!(
                    "DigestReply claims {count} digests in {} bytes",
                    reader.rest.len()
                )));
            }
            let mut digests = Vec::with_capacity(count);
            for _ in 0..count {
                digests.push(match reader.u8("DigestReply.digests")? {
                    0 => None,
                    1 => Some(reader.u128("DigestReply.digests")?),
                    other => {
                        return Err(corrupt(format!(
                            "DigestReply.digests has presence byte {other}"
                        )))
                    }
                });
            }
            PeerMessage::DigestReply { digests }
        }
        TAG_SCAN => PeerMessage::Scan {
            start: reader.bytes("Scan.start")?,
            end: reader.optional("Scan.end")?,
            limit: reader.u32("Scan.limit")?,
        },
        TAG_SCAN_REPLY => {
            let count = reader.u32("ScanReply row count")? as usize;
            // A count larger than the remaining bytes could hold is corrupt; checking it
            // first keeps a forged count from reserving gigabytes.
            if count > reader.rest.len() / SCAN_ROW_SIZE_BYTES_MIN {
                return Err(corrupt(format!(
                    "ScanReply claims {count} rows in {} bytes",
                    reader.rest.len()
                )));
            }
            let mut rows = Vec::with_capacity(count);
            for _ in 0..count {
                rows.push(ScanRow {
                    key: reader.bytes("ScanReply.key")?,
                    siblings: reader.bytes("ScanReply.siblings")?,
                });
            }
            PeerMessage::ScanReply { rows }
        }
        TAG_ERROR => PeerMessage::Error {
            message: reader.string("Error.message")?,
        },
        TAG_MINT => PeerMessage::Mint {
            key: reader.bytes("Mint.key")?,
            context: reader.bytes("Mint.context")?,
            value: reader.optional("Mint.value")?,
        },
        TAG_LINK_UPDATE => {
            let count = reader.u32("LinkUpdate word count")? as usize;
            if count > LINK_UPDATE_WORDS_MAX {
                return Err(corrupt(format!(
                    "LinkUpdate claims {count} words, at most {LINK_UPDATE_WORDS_MAX}"
                )));
            }
            let mut words = Vec::with_capacity(count);
            for _ in 0..count {
                words.push(reader.string("LinkUpdate.word")?);
            }
            PeerMessage::LinkUpdate { words }
        }
        TAG_LINK_UPDATE_REPLY => PeerMessage::LinkUpdateReply {
            summary: reader.string("LinkUpdateReply.summary")?,
        },
        TAG_HINTED_PUT => PeerMessage::HintedPut {
            owner: reader.string("HintedPut.owner")?,
            key: reader.bytes("HintedPut.key")?,
            siblings: reader.bytes("HintedPut.siblings")?,
        },
        TAG_AUTH_CHALLENGE => PeerMessage::AuthChallenge {
            nonce: reader.bytes("AuthChallenge.nonce")?,
        },
        TAG_AUTH_PROOF => PeerMessage::AuthProof {
            proof: reader.bytes("AuthProof.proof")?,
        },
        TAG_GOSSIP => decode_gossip(&mut reader)?,
        tag if AE_TAGS.contains(&tag) => {
            let message = AeMessage::decode(tag, reader.rest)?;
            reader.rest = &[];
            PeerMessage::AntiEntropy(message)
        }
        other => scaling::decode(other, &mut reader)?,
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

fn corrupt(detail: String) -> Error {
    Error::PeerProtocol(format!("bad peer payload: {detail}"))
}

/// Lengths are u32 on the wire; the frame limit (itself at most `u32::MAX`) is checked after
/// encoding, so saturating here only turns an impossible size into a limit error there.
fn length_u32(length: usize) -> u32 {
    u32::try_from(length).unwrap_or(u32::MAX)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&length_u32(bytes.len()).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_optional(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            put_bytes(out, bytes);
        }
    }
}

/// A cursor over a payload; every read checks what remains.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize, field: &str) -> Result<&'a [u8]> {
        if count > self.rest.len() {
            return Err(corrupt(format!(
                "{field} needs {count} bytes, {} remain",
                self.rest.len()
            )));
        }
        let (taken, rest) = self.rest.split_at(count);
        self.rest = rest;
        Ok(taken)
    }

    fn u8(&mut self, field: &str) -> Result<u8> {
        Ok(self.take(1, field)?[0])
    }

    fn u32(&mut self, field: &str) -> Result<u32> {
        let bytes = self.take(4, field)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn u64(&mut self, field: &str) -> Result<u64> {
        let bytes = self.take(8, field)?;
        let mut array = [0; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_be_bytes(array))
    }

    fn u128(&mut self, field: &str) -> Result<u128> {
        let high = self.u64(field)?;
        let low = self.u64(field)?;
        Ok((u128::from(high) << 64) | u128::from(low))
    }

    fn bytes(&mut self, field: &str) -> Result<Vec<u8>> {
        let length = self.u32(field)? as usize;
        Ok(self.take(length, field)?.to_vec())
    }

    fn string(&mut self, field: &str) -> Result<String> {
        String::from_utf8(self.bytes(field)?)
            .map_err(|_| corrupt(format!("{field} is not valid UTF-8")))
    }

    fn optional(&mut self, field: &str) -> Result<Option<Vec<u8>>> {
        match self.u8(field)? {
            0 => Ok(None),
            1 => self.bytes(field).map(Some),
            other => Err(corrupt(format!("{field} has presence byte {other}"))),
        }
    }
}
