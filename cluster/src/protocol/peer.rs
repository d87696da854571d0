//! The node-to-node protocol: one message enum ([`PeerMessage`]) carried in checksummed frames.
//!
//! # Frame format, version 1
//!
//! Every integer is big-endian. A frame is a 20-byte header and a payload:
//!
//! ```text
//! offset size field
//!      0    2 magic            0x4B 0x50 ("KP", kv peer)
//!      2    1 format version   1
//!      3    1 kind             1 request, 2 response, 3 one-way
//!      4    8 request id       pairs a response with its request; 0 for one-way frames
//!     12    4 payload length   bytes after the header; at most the configured frame limit
//!     16    4 crc32c           CRC-32C (Castagnoli) of the payload bytes
//!     20    n payload          one encoded PeerMessage (format in `peer/payload.rs`)
//! ```
//!
//! The magic and version come first so a node that connects to the wrong port, or a node of
//! an incompatible release, is rejected on its first bytes rather than after a large
//! allocation. The length is checked against the limit before any payload is buffered, and
//! the checksum before the payload is parsed, so a corrupt frame is never half-applied.
//!
//! Any decoding error leaves the stream unsynchronised: the connection must be closed.
//!
//! Extending the protocol: a new message gets a new payload tag (see `peer/payload.rs`); an older
//! node rejects it as an unknown tag. A change to an existing message's fields, or to the
//! header, bumps [`FORMAT_VERSION`].

mod payload;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The first two bytes of every frame: "KP".
pub const MAGIC: u16 = 0x4B50;

/// The frame and payload format this build speaks.
pub const FORMAT_VERSION: u8 = 1;

/// Size of the fixed frame header.
pub const HEADER_SIZE_BYTES: usize = 20;

/// Default largest payload: 64 MiB, the client protocol's frame limit, so whatever a client
/// may send (a `KV.SCAN` page of large values) fits in one peer frame too.
pub const DEFAULT_FRAME_SIZE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// What a frame is for, which decides whether a reply is expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrameKind {
    /// Expects exactly one [`FrameKind::Response`] with the same request id.
    Request,
    /// Answers the request with the same id.
    Response,
    /// Expects nothing back (`Hello`, gossip, hints).
    OneWay,
}

impl FrameKind {
    fn to_byte(self) -> u8 {
        match self {
            FrameKind::Request => 1,
            FrameKind::Response => 2,
            FrameKind::OneWay => 3,
        }
    }

    fn from_byte(byte: u8) -> Result<Self> {
        match byte {
            1 => Ok(FrameKind::Request),
            2 => Ok(FrameKind::Response),
            3 => Ok(FrameKind::OneWay),
            other => Err(Error::PeerProtocol(format!("unknown frame kind {other}"))),
        }
    }
}

/// One row of a [`PeerMessage::ScanReply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRow {
    /// The row's key.
    pub key: Vec<u8>,
    /// The row's encoded [`crate::version::SiblingSet`].
    pub siblings: Vec<u8>,
}

/// Everything one node says to another. Values travel as encoded
/// [`crate::version::SiblingSet`] bytes, so replicas exchange exactly what they store and the
/// transport never needs to understand versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// The first frame on every connection: who is calling, from where, for which cluster.
    Hello {
        /// The caller's node id.
        node: String,
        /// The caller's datacenter.
        datacenter: String,
        /// The cluster the caller belongs to; a mismatch is refused, so two clusters on one
        /// network never exchange data by a misconfigured seed list.
        cluster_name: String,
    },
    /// Liveness probe; answered with `Pong`.
    Ping,
    /// Answer to `Ping`.
    Pong,
    /// Store these siblings for `key` (merged with what the replica already has).
    Put {
        /// The key.
        key: Vec<u8>,
        /// Encoded sibling set.
        siblings: Vec<u8>,
    },
    /// The replica has durably stored a `Put`.
    PutAck,
    /// Read `key`'s siblings.
    Get {
        /// The key.
        key: Vec<u8>,
    },
    /// Answer to `Get`: the encoded sibling set, or `None` if the replica has nothing.
    GetReply {
        /// Encoded sibling set.
        siblings: Option<Vec<u8>>,
    },
    /// Read the digests of `keys`: [`crate::antientropy::wide_digest`] of each stored set,
    /// what a quorum read asks of the replicas besides its coordinator's own copy, for one
    /// key or for the GETs of a pipelined client batch together (see [`crate::coordinator`],
    /// "Digest reads").
    GetDigest {
        /// The keys.
        keys: Vec<Vec<u8>>,
    },
    /// Answer to `GetDigest`: one digest per key, in order; `None` where the replica has
    /// nothing.
    DigestReply {
        /// The stored sets' digests.
        digests: Vec<Option<u128>>,
    },
    /// Store each of these sets (as `Put` does), for the SETs of a pipelined client batch
    /// (see [`crate::coordinator`], "Batched writes"); answered with `PutManyAck` once
    /// every one that succeeded is durable.
    PutMany {
        /// `(key, encoded sibling set)` pairs.
        puts: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// Answer to `PutMany`: the puts that failed (their index in the request and why);
    /// every other one is stored.
    PutManyAck {
        /// `(index, error)` of each failed put.
        failed: Vec<(u32, String)>,
    },
    /// Rows with `start <= key < end` (no upper bound when `end` is `None`), at most `limit`.
    Scan {
        /// First key (inclusive).
        start: Vec<u8>,
        /// Last key (exclusive).
        end: Option<Vec<u8>>,
        /// Most rows to return.
        limit: u32,
    },
    /// Answer to `Scan`, in key order.
    ScanReply {
        /// The rows found.
        rows: Vec<ScanRow>,
    },
    /// Make a new version of `key` as a client write coordinated by a node that is not one
    /// of the key's replicas: the receiving replica folds it into its store under its own
    /// vector-clock entry (the counter rule in [`crate::version`] needs the minting node to
    /// be a replica) and answers with a `GetReply` holding the new version alone.
    Mint {
        /// The key.
        key: Vec<u8>,
        /// The client's encoded [`crate::version::VectorClock`] context.
        context: Vec<u8>,
        /// The value; `None` writes a tombstone.
        value: Option<Vec<u8>>,
    },
    /// The request failed on the remote node.
    Error {
        /// What went wrong, for logs and the client's error reply.
        message: String,
    },
    /// Apply this change to your link emulator (an admin's `LINK.*` command made on another
    /// node), answered with `LinkUpdateReply`. Never emulated itself, nor is its reply:
    /// otherwise a partition would cut off the command that heals it.
    LinkUpdate {
        /// The change as command words (`SET dc1 dc2 const(50) LOSS 0`), see
        /// [`crate::net::LinkChange::to_words`].
        words: Vec<String>,
    },
    /// The change was applied; what it did, in words.
    LinkUpdateReply {
        /// A short description for the admin reply.
        summary: String,
    },
    /// Sloppy quorum: keep these siblings for `owner` (a replica of `key` that the
    /// coordinator could not reach) and deliver them when it is back; answered with
    /// `PutAck` once the hint is durable (see [`crate::handoff`]).
    HintedPut {
        /// The intended replica's node id.
        owner: String,
        /// The key.
        key: Vec<u8>,
        /// Encoded sibling set.
        siblings: Vec<u8>,
    },
    /// Sent by the accepting side after a valid `Hello` when it has a cluster secret: a
    /// fresh random nonce the caller must answer with `AuthProof`.
    AuthChallenge {
        /// 32 random bytes.
        nonce: Vec<u8>,
    },
    /// The caller's answer to `AuthChallenge`: HMAC-SHA256 over the nonce, both node ids
    /// and the cluster name, keyed by the cluster secret (see `net::transport::auth`). The
    /// secret itself never goes on the wire.
    AuthProof {
        /// The 32-byte MAC.
        proof: Vec<u8>,
    },
    /// One-way: the sender's gossip membership table (see [`crate::membership`]). Goes
    /// through the link emulator like data, so a partition makes members Suspect, then Down.
    Gossip {
        /// The sender's whole table.
        table: crate::membership::Gossip,
    },
    /// Take this ring version (see [`crate::scaling`]); answered with `RingAck`.
    RingUpdate {
        /// The version, phase and member lists.
        spec: crate::scaling::RingSpec,
    },
    /// The receiver now serves with a ring at least as new as `version`.
    RingAck {
        /// The receiver's ring version.
        version: u64,
    },
    /// A node gaining ranges in a ring change asks for the keys it gains, scanning at most
    /// `scan_limit` keys from `cursor`; answered with `StreamBatch`. Refused unless the
    /// source is at ring `version`.
    StreamPull {
        /// The ring version of the change.
        version: u64,
        /// First key to scan (inclusive).
        cursor: Vec<u8>,
        /// Most keys the source scans for this batch.
        scan_limit: u32,
    },
    /// Answer to `StreamPull`: the gained keys among those scanned, and where to go on
    /// (`None` when the source's keys are exhausted).
    StreamBatch {
        /// The rows the requester gains.
        rows: Vec<ScanRow>,
        /// The next cursor.
        next_cursor: Option<Vec<u8>>,
    },
    /// Like `StreamPull`, but a gained key that one of `pulled` (the sources before this one
    /// in the requester's order) also replicates in the current ring comes as its digest,
    /// not its set: that source sends the set, so the requester fetches (`StreamFetch`)
    /// only the keys whose digest differs from what it holds. Answered with
    /// `StreamDigestBatch`.
    StreamPullDigests {
        /// The ring version of the change.
        version: u64,
        /// First key to scan (inclusive).
        cursor: Vec<u8>,
        /// Most keys the source scans for this batch.
        scan_limit: u32,
        /// The sources before this one, which send the sets of the keys they replicate.
        pulled: Vec<String>,
    },
    /// Answer to `StreamPullDigests`: the gained keys among those scanned, each as its set
    /// (`rows`) or as the [`crate::antientropy::wide_digest`] of its stored set
    /// (`digests`), and where to go on (`None` when the source's keys are exhausted).
    StreamDigestBatch {
        /// The rows no earlier source has sent.
        rows: Vec<ScanRow>,
        /// The keys an earlier source has sent, with this source's digest of each.
        digests: Vec<(Vec<u8>, u128)>,
        /// The next cursor.
        next_cursor: Option<Vec<u8>>,
    },
    /// The requester of a `StreamPullDigests` asks for the sets of `keys` (those whose digest
    /// differed from its own copy, or that it lacks); answered with `StreamBatch` (the keys
    /// the source still holds, no cursor). Refused unless the source is at ring `version`.
    StreamFetch {
        /// The ring version of the change.
        version: u64,
        /// The keys.
        keys: Vec<Vec<u8>>,
    },
    /// Sent by the node driving a ring change to each node of the next ring: stream the
    /// keys you gain at ring `version` from every member of the current ring but `skip`,
    /// then answer with `RebalanceReply`.
    Rebalance {
        /// The ring version of the change.
        version: u64,
        /// Members not to pull from: a node being removed because it is gone.
        skip: Vec<String>,
    },
    /// Answer once no write this node coordinated under a ring older than `version` is
    /// unanswered, waiting at most `wait_ms`; answered with `RingAck` (see
    /// [`crate::scaling::Scaling::drain_writes`]), or an error naming how many are left.
    DrainWrites {
        /// The ring version whose predecessors' writes are waited for.
        version: u64,
        /// Longest wait, in milliseconds.
        wait_ms: u64,
    },
    /// What one node streamed.
    RebalanceReply {
        /// Rows received (a key held by several sources comes once from each).
        rows: u64,
        /// Keys this node did not hold before the stream.
        keys_new: u64,
        /// Bytes of keys and sibling sets received.
        bytes: u64,
        /// Sources that could not be streamed from, with why; empty when all were.
        failures: String,
    },
    /// Anti-entropy between replicas: tree roots and hashes, keys of differing buckets,
    /// their sets (payload tags 80 to 89, see [`crate::antientropy::wire`]).
    AntiEntropy(crate::antientropy::wire::AeMessage),
}

impl PeerMessage {
    /// The message's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            PeerMessage::Hello { .. } => "Hello",
            PeerMessage::Ping => "Ping",
            PeerMessage::Pong => "Pong",
            PeerMessage::Put { .. } => "Put",
            PeerMessage::PutAck => "PutAck",
            PeerMessage::Get { .. } => "Get",
            PeerMessage::GetReply { .. } => "GetReply",
            PeerMessage::GetDigest { .. } => "GetDigest",
            PeerMessage::PutMany { .. } => "PutMany",
            PeerMessage::PutManyAck { .. } => "PutManyAck",
            PeerMessage::DigestReply { .. } => "DigestReply",
            PeerMessage::Scan { .. } => "Scan",
            PeerMessage::ScanReply { .. } => "ScanReply",
            PeerMessage::Mint { .. } => "Mint",
            PeerMessage::Error { .. } => "Error",
            PeerMessage::LinkUpdate { .. } => "LinkUpdate",
            PeerMessage::LinkUpdateReply { .. } => "LinkUpdateReply",
            PeerMessage::HintedPut { .. } => "HintedPut",
            PeerMessage::AuthChallenge { .. } => "AuthChallenge",
            PeerMessage::AuthProof { .. } => "AuthProof",
            PeerMessage::Gossip { .. } => "Gossip",
            PeerMessage::RingUpdate { .. } => "RingUpdate",
            PeerMessage::RingAck { .. } => "RingAck",
            PeerMessage::StreamPull { .. } => "StreamPull",
            PeerMessage::StreamBatch { .. } => "StreamBatch",
            PeerMessage::StreamPullDigests { .. } => "StreamPullDigests",
            PeerMessage::StreamDigestBatch { .. } => "StreamDigestBatch",
            PeerMessage::StreamFetch { .. } => "StreamFetch",
            PeerMessage::Rebalance { .. } => "Rebalance",
            PeerMessage::DrainWrites { .. } => "DrainWrites",
            PeerMessage::RebalanceReply { .. } => "RebalanceReply",
            PeerMessage::AntiEntropy(message) => message.name(),
        }
    }

    /// Whether the link emulator lets this message through untouched: the admin messages
    /// that change the emulator itself, so a partition can always be healed.
    pub fn bypasses_link_emulator(&self) -> bool {
        matches!(
            self,
            PeerMessage::LinkUpdate { .. } | PeerMessage::LinkUpdateReply { .. }
        )
    }
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Request, response or one-way.
    pub kind: FrameKind,
    /// Pairs a response with its request; 0 for one-way frames.
    pub request_id: u64,
    /// The message carried.
    pub message: PeerMessage,
}

/// Encodes `frame`; fails if its payload would exceed `frame_size_bytes_max`, so a node never
/// sends what its peer must refuse.
pub fn encode_frame(frame: &Frame, frame_size_bytes_max: usize) -> Result<Vec<u8>> {
    encode_message_frame(
        frame.kind,
        frame.request_id,
        &frame.message,
        frame_size_bytes_max,
    )
}

/// [`encode_frame`] of a borrowed message.
pub fn encode_message_frame(
    kind: FrameKind,
    request_id: u64,
    message: &PeerMessage,
    frame_size_bytes_max: usize,
) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(HEADER_SIZE_BYTES + payload::size_hint(message));
    bytes.resize(HEADER_SIZE_BYTES, 0);
    payload::encode(message, &mut bytes);
    let payload_length = bytes.len() - HEADER_SIZE_BYTES;
    let limit = frame_size_bytes_max.min(u32::MAX as usize);
    if payload_length > limit {
        return Err(Error::LimitExceeded {
            what: "peer frame payload",
            size: payload_length,
            limit,
        });
    }
    let checksum = crc32c::crc32c(&bytes[HEADER_SIZE_BYTES..]);
    bytes[0..2].copy_from_slice(&MAGIC.to_be_bytes());
    bytes[2] = FORMAT_VERSION;
    bytes[3] = kind.to_byte();
    bytes[4..12].copy_from_slice(&request_id.to_be_bytes());
    bytes[12..16].copy_from_slice(&(payload_length as u32).to_be_bytes());
    bytes[16..20].copy_from_slice(&checksum.to_be_bytes());
    Ok(bytes)
}

/// Writes `request_id` into the header of a frame `encode_frame` made (the checksum covers
/// only the payload), so one encoding of a request goes to several peers, each call with an
/// id of its own. Too short a buffer is left alone.
pub fn set_frame_request_id(bytes: &mut [u8], request_id: u64) {
    if let Some(field) = bytes.get_mut(4..12) {
        field.copy_from_slice(&request_id.to_be_bytes());
    }
}

/// Decodes the frame at the front of `buffer`: `Ok(None)` when more bytes are needed,
/// `Ok(Some((frame, consumed)))` when one is complete. Header fields are checked as soon as
/// their bytes arrive, so garbage is rejected early; never panics on any input.
pub fn decode_frame(buffer: &[u8], frame_size_bytes_max: usize) -> Result<Option<(Frame, usize)>> {
    if buffer.len() >= 2 {
        let magic = u16::from_be_bytes([buffer[0], buffer[1]]);
        if magic != MAGIC {
            return Err(Error::PeerProtocol(format!(
                "bad frame magic {magic:#06x}, expected {MAGIC:#06x} (not a peer connection?)"
            )));
        }
    }
    if let Some(&version) = buffer.get(2) {
        if version != FORMAT_VERSION {
            return Err(Error::PeerProtocol(format!(
                "unsupported frame format version {version}, this node speaks {FORMAT_VERSION}"
            )));
        }
    }
    if let Some(&kind) = buffer.get(3) {
        FrameKind::from_byte(kind)?;
    }
    if buffer.len() < HEADER_SIZE_BYTES {
        return Ok(None);
    }
    let header = &buffer[..HEADER_SIZE_BYTES];
    let kind = FrameKind::from_byte(header[3])?;
    let request_id = u64::from_be_bytes(array(&header[4..12]));
    let payload_length = u32::from_be_bytes(array(&header[12..16])) as usize;
    let expected_checksum = u32::from_be_bytes(array(&header[16..20]));
    if payload_length > frame_size_bytes_max {
        return Err(Error::LimitExceeded {
            what: "peer frame payload",
            size: payload_length,
            limit: frame_size_bytes_max,
        });
    }
    let Some(payload_bytes) = buffer[HEADER_SIZE_BYTES..].get(..payload_length) else {
        return Ok(None);
    };
    let actual_checksum = crc32c::crc32c(payload_bytes);
    if actual_checksum != expected_checksum {
        return Err(Error::PeerProtocol(format!(
            "frame checksum mismatch: header says {expected_checksum:#010x}, payload has \
             {actual_checksum:#010x}"
        )));
    }
    let message = payload::decode(payload_bytes)?;
    let frame = Frame {
        kind,
        request_id,
        message,
    };
    Ok(Some((frame, HEADER_SIZE_BYTES + payload_length)))
}

/// Copies a slice of known length into an array; callers slice exactly `N` bytes.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests;
