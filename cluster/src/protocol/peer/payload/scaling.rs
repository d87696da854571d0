//! The ring-change messages' payloads (tags 90 to 99, see [`crate::scaling`]); the format
//! is in the parent module's table.

use super::{corrupt, length_u32, put_bytes, put_optional, Reader, SCAN_ROW_SIZE_BYTES_MIN};
use crate::config::MemberConfig;
use crate::protocol::peer::{PeerMessage, ScanRow};
use crate::scaling::{Phase, RingSpec};
use crate::Result;

const TAG_RING_UPDATE: u8 = 90;
const TAG_RING_ACK: u8 = 91;
const TAG_STREAM_PULL: u8 = 92;
const TAG_STREAM_BATCH: u8 = 93;
const TAG_REBALANCE: u8 = 94;
const TAG_REBALANCE_REPLY: u8 = 95;
const TAG_STREAM_PULL_DIGESTS: u8 = 96;
const TAG_STREAM_DIGEST_BATCH: u8 = 97;
const TAG_STREAM_FETCH: u8 = 98;
const TAG_DRAIN_WRITES: u8 = 99;

/// Smallest encoded digest entry (an empty key and the digest).
const DIGEST_ENTRY_SIZE_BYTES_MIN: usize = 4 + 16;

fn put_rows(out: &mut Vec<u8>, rows: &[ScanRow]) {
    out.extend_from_slice(&length_u32(rows.len()).to_be_bytes());
    for row in rows {
        put_bytes(out, &row.key);
        put_bytes(out, &row.siblings);
    }
}

fn put_members(out: &mut Vec<u8>, members: &[MemberConfig]) {
    out.extend_from_slice(&length_u32(members.len()).to_be_bytes());
    for member in members {
        put_bytes(out, member.id.as_bytes());
        put_bytes(out, member.datacenter.as_bytes());
        out.extend_from_slice(&member.weight.to_be_bytes());
        put_bytes(out, member.client_address.to_string().as_bytes());
        put_bytes(out, member.peer_address.to_string().as_bytes());
    }
}

/// The ring-change messages (tags 90 to 99).
pub(super) fn encode(message: &PeerMessage, out: &mut Vec<u8>) {
    match message {
        PeerMessage::RingUpdate { spec } => {
            out.push(TAG_RING_UPDATE);
            out.extend_from_slice(&spec.version.to_be_bytes());
            out.push(spec.phase.to_byte());
            put_members(out, &spec.current);
            put_members(out, &spec.next);
        }
        PeerMessage::RingAck { version } => {
            out.push(TAG_RING_ACK);
            out.extend_from_slice(&version.to_be_bytes());
        }
        PeerMessage::StreamPull {
            version,
            cursor,
            scan_limit,
        } => {
            out.push(TAG_STREAM_PULL);
            out.extend_from_slice(&version.to_be_bytes());
            put_bytes(out, cursor);
            out.extend_from_slice(&scan_limit.to_be_bytes());
        }
        PeerMessage::StreamBatch { rows, next_cursor } => {
            out.push(TAG_STREAM_BATCH);
            put_rows(out, rows);
            put_optional(out, next_cursor.as_deref());
        }
        PeerMessage::StreamPullDigests {
            version,
            cursor,
            scan_limit,
            pulled,
        } => {
            out.push(TAG_STREAM_PULL_DIGESTS);
            out.extend_from_slice(&version.to_be_bytes());
            put_bytes(out, cursor);
            out.extend_from_slice(&scan_limit.to_be_bytes());
            out.extend_from_slice(&length_u32(pulled.len()).to_be_bytes());
            for source in pulled {
                put_bytes(out, source.as_bytes());
            }
        }
        PeerMessage::StreamDigestBatch {
            rows,
            digests,
            next_cursor,
        } => {
            out.push(TAG_STREAM_DIGEST_BATCH);
            put_rows(out, rows);
            out.extend_from_slice(&length_u32(digests.len()).to_be_bytes());
            for (key, digest) in digests {
                put_bytes(out, key);
                out.extend_from_slice(&digest.to_be_bytes());
            }
            put_optional(out, next_cursor.as_deref());
        }
        PeerMessage::StreamFetch { version, keys } => {
            out.push(TAG_STREAM_FETCH);
            out.extend_from_slice(&version.to_be_bytes());
            out.extend_from_slice(&length_u32(keys.len()).to_be_bytes());
            for key in keys {
                put_bytes(out, key);
            }
        }
        PeerMessage::Rebalance { version, skip } => {
            out.push(TAG_REBALANCE);
            out.extend_from_slice(&version.to_be_bytes());
            out.extend_from_slice(&length_u32(skip.len()).to_be_bytes());
            for member in skip {
                put_bytes(out, member.as_bytes());
            }
        }
        PeerMessage::DrainWrites { version, wait_ms } => {
            out.push(TAG_DRAIN_WRITES);
            out.extend_from_slice(&version.to_be_bytes());
            out.extend_from_slice(&wait_ms.to_be_bytes());
        }
        PeerMessage::RebalanceReply {
            rows,
            keys_new,
            bytes,
            failures,
        } => {
            out.push(TAG_REBALANCE_REPLY);
            for count in [rows, keys_new, bytes] {
                out.extend_from_slice(&count.to_be_bytes());
            }
            put_bytes(out, failures.as_bytes());
        }
        other => unreachable!("{} is encoded by `encode`", other.name()),
    }
}

/// Smallest encoded member (empty strings and the weight).
const MEMBER_SIZE_BYTES_MIN: usize = 4 * 4 + 4;

fn decode_rows(reader: &mut Reader<'_>, what: &str) -> Result<Vec<ScanRow>> {
    decode_list(reader, SCAN_ROW_SIZE_BYTES_MIN, what, |reader| {
        Ok(ScanRow {
            key: reader.bytes(what)?,
            siblings: reader.bytes(what)?,
        })
    })
}

/// A u32 count, then that many items of at least `size_min` bytes each, read by `item`. A
/// count larger than the remaining bytes could hold is corrupt; checking it first keeps a
/// forged count from reserving gigabytes.
fn decode_list<T>(
    reader: &mut Reader<'_>,
    size_min: usize,
    what: &str,
    mut item: impl FnMut(&mut Reader<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let count = reader.u32(what)? as usize;
    if count > reader.rest.len() / size_min {
        return Err(corrupt(format!(
            "{what} claims {count} entries in {} bytes",
            reader.rest.len()
        )));
    }
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(item(reader)?);
    }
    Ok(items)
}

fn decode_members(reader: &mut Reader<'_>, what: &str) -> Result<Vec<MemberConfig>> {
    let address = |reader: &mut Reader<'_>, field: &str| -> Result<std::net::SocketAddr> {
        let text = reader.string(field)?;
        text.parse()
            .map_err(|_| corrupt(format!("{field} {text:?} is not an address")))
    };
    decode_list(reader, MEMBER_SIZE_BYTES_MIN, what, |reader| {
        Ok(MemberConfig {
            id: reader.string(what)?,
            datacenter: reader.string(what)?,
            weight: reader.u32(what)?,
            client_address: address(reader, "RingUpdate.client_address")?,
            peer_address: address(reader, "RingUpdate.peer_address")?,
        })
    })
}

pub(super) fn decode(tag: u8, reader: &mut Reader<'_>) -> Result<PeerMessage> {
    Ok(match tag {
        TAG_RING_UPDATE => {
            let version = reader.u64("RingUpdate.version")?;
            let byte = reader.u8("RingUpdate.phase")?;
            let phase = Phase::from_byte(byte)
                .ok_or_else(|| corrupt(format!("RingUpdate.phase {byte} is unknown")))?;
            PeerMessage::RingUpdate {
                spec: RingSpec {
                    version,
                    phase,
                    current: decode_members(reader, "RingUpdate.current")?,
                    next: decode_members(reader, "RingUpdate.next")?,
                },
            }
        }
        TAG_RING_ACK => PeerMessage::RingAck {
            version: reader.u64("RingAck.version")?,
        },
        TAG_STREAM_PULL => PeerMessage::StreamPull {
            version: reader.u64("StreamPull.version")?,
            cursor: reader.bytes("StreamPull.cursor")?,
            scan_limit: reader.u32("StreamPull.scan_limit")?,
        },
        TAG_STREAM_BATCH => PeerMessage::StreamBatch {
            rows: decode_rows(reader, "StreamBatch rows")?,
            next_cursor: reader.optional("StreamBatch.next_cursor")?,
        },
        TAG_STREAM_PULL_DIGESTS => PeerMessage::StreamPullDigests {
            version: reader.u64("StreamPullDigests.version")?,
            cursor: reader.bytes("StreamPullDigests.cursor")?,
            scan_limit: reader.u32("StreamPullDigests.scan_limit")?,
            pulled: decode_list(reader, 4, "StreamPullDigests.pulled", |reader| {
                reader.string("StreamPullDigests.pulled")
            })?,
        },
        TAG_STREAM_DIGEST_BATCH => PeerMessage::StreamDigestBatch {
            rows: decode_rows(reader, "StreamDigestBatch rows")?,
            digests: {
                let what = "StreamDigestBatch digests";
                decode_list(reader, DIGEST_ENTRY_SIZE_BYTES_MIN, what, |reader| {
                    Ok((reader.bytes(what)?, reader.u128(what)?))
                })?
            },
            next_cursor: reader.optional("StreamDigestBatch.next_cursor")?,
        },
        TAG_STREAM_FETCH => PeerMessage::StreamFetch {
            version: reader.u64("StreamFetch.version")?,
            keys: decode_list(reader, 4, "StreamFetch.keys", |reader| {
                reader.bytes("StreamFetch.keys")
            })?,
        },
        TAG_REBALANCE => PeerMessage::Rebalance {
            version: reader.u64("Rebalance.version")?,
            skip: decode_list(reader, 4, "Rebalance.skip", |reader| {
                reader.string("Rebalance.skip")
            })?,
        },
        TAG_DRAIN_WRITES => PeerMessage::DrainWrites {
            version: reader.u64("DrainWrites.version")?,
            wait_ms: reader.u64("DrainWrites.wait_ms")?,
        },
        TAG_REBALANCE_REPLY => PeerMessage::RebalanceReply {
            rows: reader.u64("RebalanceReply.rows")?,
            keys_new: reader.u64("RebalanceReply.keys_new")?,
            bytes: reader.u64("RebalanceReply.bytes")?,
            failures: reader.string("RebalanceReply.failures")?,
        },
        other => return Err(corrupt(format!("unknown message tag {other}"))),
    })
}
