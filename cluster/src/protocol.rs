//! The client protocol: RESP2 framing ([`resp`]) and typed commands ([`command`]).
//!
//! RESP2 is spoken so that `redis-cli`, `redis-benchmark` and `redis-py` work unchanged.
//! The wire format is documented at the top of [`resp`]. A connection's life:
//!
//! 1. bytes arrive and are appended to the connection's input buffer;
//! 2. [`Decoder::decode`] turns the front of the buffer into one request frame (a list of
//!    binary-safe arguments) or asks for more bytes;
//! 3. [`Request::parse`] turns the frame into a typed [`Request`];
//! 4. the reply is written with the helpers in [`resp`] (`write_ok`, `write_bulk`, ...).
//!
//! Two kinds of failure, told apart by [`closes_connection`]: a framing error
//! ([`Error::Protocol`], [`Error::LimitExceeded`]) leaves the stream unsynchronised, so the
//! server sends `-ERR Protocol error: ...` and closes, as Redis does; a command error
//! ([`Error::Command`]) is an ordinary error reply and the connection carries on.

pub mod command;
pub mod peer;
pub mod resp;

pub use command::{Consistency, Request};
pub use resp::{decode_reply, Decoder, RequestFrame, RespValue};

use crate::Error;
use serde::{Deserialize, Serialize};

/// Bounds on what one client may make the node buffer or allocate. Every decoder and parser
/// in this module checks them before allocating, so a hostile or buggy client costs at most
/// about `frame_size_bytes_max` of memory per connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest bulk string (one argument, or one value in a reply). Default 512 KiB: fifty
    /// times the node's 10 KiB value limit, so a raised value limit, a large vector-clock
    /// context or a long `LINK.SET` spec still fits, while one argument can never pin
    /// megabytes. (Redis allows 512 MiB; this store's values are small by design, and
    /// the value-size limit proper is enforced above the codec with a clearer error.)
    pub bulk_length_bytes_max: usize,
    /// Most elements in one array (arguments of a request, elements of a reply array).
    /// Default 1 Mi, Redis's historical multibulk cap: enough for an `MGET` of a million keys.
    pub array_length_max: usize,
    /// Longest inline command line (telnet style, `PING\r\n`), newline included.
    /// Default 64 KiB, Redis's `PROTO_INLINE_MAX_SIZE`.
    pub inline_length_bytes_max: usize,
    /// Largest whole frame (request or reply) in bytes, headers included. Default 64 MiB:
    /// bounds the memory one connection can make the node hold before a command runs,
    /// which the per-element limits alone do not (1 Mi elements of 512 KiB each).
    pub frame_size_bytes_max: usize,
    /// Deepest nesting of arrays in a decoded reply; requests are always flat. Default 32:
    /// the node's deepest reply (`KV.GET`) has depth 2, and the bound keeps the recursive
    /// reply decoder's stack small.
    pub reply_depth_max: usize,
    /// Largest `count` a `KV.SCAN` may ask for. Default 10 000: one reply stays near a
    /// hundred MiB at worst with 10 KiB values, and clients page with `END`/start keys.
    pub scan_count_max: u32,
    /// Largest replica count accepted in `R <n>` / `W <n>`. Default 64; the coordinator
    /// further checks the count against the key's replication factor.
    pub replica_count_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            bulk_length_bytes_max: 512 * 1024,
            array_length_max: 1024 * 1024,
            inline_length_bytes_max: 64 * 1024,
            frame_size_bytes_max: 64 * 1024 * 1024,
            reply_depth_max: 32,
            scan_count_max: 10_000,
            replica_count_max: 64,
        }
    }
}

/// Whether the server must close the connection after replying with this error: true for
/// framing errors, after which the rest of the stream cannot be trusted.
pub fn closes_connection(error: &Error) -> bool {
    matches!(error, Error::Protocol(_) | Error::LimitExceeded { .. })
}

/// The text of the RESP error reply for `error`, without the leading `-` and trailing CRLF
/// (write it with [`resp::write_error`], which also strips any CR/LF inside).
pub fn error_reply_text(error: &Error) -> String {
    match error {
        Error::Command(text) => text.clone(),
        // Redis's own wording, so client libraries that match on it behave the same.
        Error::Protocol(detail) => format!("ERR Protocol error: {detail}"),
        Error::LimitExceeded { .. } => format!("ERR Protocol error: {error}"),
        other => format!("ERR {other}"),
    }
}
