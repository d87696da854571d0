//! RESP2, the Redis serialization protocol, version 2: values, encoder and decoders.
//!
//! # Wire format (RESP2; no magic: the first byte of each value is its type)
//!
//! Every line ends in CRLF (`\r\n`). A value is one of:
//!
//! | first byte | type          | rest                                       | example                |
//! |------------|---------------|--------------------------------------------|------------------------|
//! | `+`        | simple string | text without CR/LF, CRLF                   | `+OK\r\n`              |
//! | `-`        | error         | `CODE message` without CR/LF, CRLF         | `-ERR syntax error\r\n`|
//! | `:`        | integer       | signed decimal i64, CRLF                   | `:42\r\n`              |
//! | `$`        | bulk string   | byte length, CRLF, the bytes, CRLF         | `$3\r\nfoo\r\n`        |
//! |            | null bulk     | length -1, CRLF                            | `$-1\r\n`              |
//! | `*`        | array         | element count, CRLF, the elements          | `*1\r\n:1\r\n`         |
//! |            | null array    | count -1, CRLF                             | `*-1\r\n`              |
//!
//! A client request is either a *multibulk* — an array of bulk strings, which every client
//! library sends: `*2\r\n$3\r\nGET\r\n$1\r\nk\r\n` — or an *inline* command, one line of
//! space-separated words as typed into telnet: `GET k\r\n` (a bare `\n` also ends the line;
//! words may be quoted as in Redis: `"a b\x41"` with escapes, or `'a b'`). Empty requests
//! (`*0\r\n`, `*-1\r\n`, a blank line) are skipped, as Redis does.
//!
//! Lengths are decimal with an optional leading `-`; only `-1` may be negative. All sizes
//! are bounded by [`Limits`](super::Limits).

mod encode;
mod reply;
mod request;

#[cfg(test)]
mod tests;

pub use encode::{
    encode, write_array_header, write_bulk, write_error, write_integer, write_null_array,
    write_null_bulk, write_ok, write_simple_string, write_versioned_reply,
};
pub use reply::decode_reply;
pub use request::{DataFrame, Decoder, RequestFrame};

/// One RESP2 value. Used for replies a client decodes and for replies too irregular to
/// write with the `write_*` helpers; the server's hot paths use the helpers instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RespValue {
    /// `+text`: short status replies such as `OK` and `PONG`. CR and LF are not allowed on
    /// the wire, so the encoder turns them into spaces.
    SimpleString(String),
    /// `-CODE message`: an error reply. CR and LF become spaces when encoded.
    Error(String),
    /// `:n`: a signed 64-bit integer.
    Integer(i64),
    /// `$len bytes` (binary safe), or `$-1`, the null bulk string (`None`).
    BulkString(Option<Vec<u8>>),
    /// `*count elements`, or `*-1`, the null array (`None`).
    Array(Option<Vec<RespValue>>),
}

impl RespValue {
    /// A non-null bulk string holding `bytes`.
    pub fn bulk(bytes: impl Into<Vec<u8>>) -> Self {
        Self::BulkString(Some(bytes.into()))
    }

    /// A non-null array holding `elements`.
    pub fn array(elements: Vec<RespValue>) -> Self {
        Self::Array(Some(elements))
    }
}
