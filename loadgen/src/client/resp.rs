//! RESP2 on the client side: commands encoded as arrays of bulk strings, replies parsed
//! from a byte buffer without copying.
//!
//! A reply is parsed only once it is complete in the buffer; [`parse_reply`] returns
//! `Ok(None)` until then. Nested arrays (KV.SCAN's rows) are validated and skipped: the
//! driver needs the top-level shape only. Every length has a limit, so a corrupt or hostile
//! server gets a clear error instead of an allocation of its choosing.

use std::fmt;

/// Longest status, error or length line (Redis's inline limit is 64 KiB too).
pub const LINE_BYTES_MAX: usize = 64 * 1024;
/// Largest bulk string accepted (Redis's default `proto-max-bulk-len`).
pub const BULK_BYTES_MAX: usize = 512 * 1024 * 1024;
/// Most elements in one array.
pub const ARRAY_LENGTH_MAX: usize = 1 << 24;
/// Deepest array nesting accepted (KV.SCAN replies are 4 deep).
pub const NESTING_DEPTH_MAX: usize = 16;

/// A top-level reply, borrowing from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+OK`: the text after `+`.
    Status(&'a [u8]),
    /// `-ERR ...`: the text after `-`.
    Error(&'a [u8]),
    /// `:n`.
    Integer(i64),
    /// `$n` with its bytes.
    Bulk(&'a [u8]),
    /// `$-1` or `*-1`.
    Nil,
    /// `*n`: the element count (elements are checked and skipped).
    Array(usize),
}

/// A reply that breaks the protocol or a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "RESP protocol error: {}", self.0)
    }
}

type Parsed<'a> = Result<Option<(Reply<'a>, usize)>, ProtocolError>;

/// Parses one complete reply at the start of `buffer`: the reply and the bytes it took, or
/// `None` if more bytes are needed.
pub fn parse_reply(buffer: &[u8]) -> Parsed<'_> {
    parse_at(buffer, 0, 0)
}

fn parse_at(buffer: &[u8], position: usize, depth: usize) -> Parsed<'_> {
    let Some(&type_byte) = buffer.get(position) else {
        return Ok(None);
    };
    let Some((line, after_line)) = line_at(buffer, position + 1)? else {
        return Ok(None);
    };
    let reply = match type_byte {
        b'+' => Reply::Status(line),
        b'-' => Reply::Error(line),
        b':' => Reply::Integer(integer(line)?),
        b'$' => {
            let length = integer(line)?;
            if length == -1 {
                return Ok(Some((Reply::Nil, after_line)));
            }
            let length = checked_length(length, BULK_BYTES_MAX, "bulk string")?;
            let end = after_line + length;
            if buffer.len() < end + 2 {
                return Ok(None);
            }
            if &buffer[end..end + 2] != b"\r\n" {
                return Err(ProtocolError(format!(
                    "bulk string of {length} bytes not followed by CRLF"
                )));
            }
            return Ok(Some((Reply::Bulk(&buffer[after_line..end]), end + 2)));
        }
        b'*' => {
            let length = integer(line)?;
            if length == -1 {
                return Ok(Some((Reply::Nil, after_line)));
            }
            let length = checked_length(length, ARRAY_LENGTH_MAX, "array")?;
            if depth + 1 > NESTING_DEPTH_MAX {
                return Err(ProtocolError(format!(
                    "arrays nested deeper than {NESTING_DEPTH_MAX}"
                )));
            }
            let mut next = after_line;
            for _ in 0..length {
                match parse_at(buffer, next, depth + 1)? {
                    Some((_, end)) => next = end,
                    None => return Ok(None),
                }
            }
            return Ok(Some((Reply::Array(length), next)));
        }
        other => {
            return Err(ProtocolError(format!(
                "unexpected reply type byte {:?} (0x{other:02x})",
                char::from(other)
            )))
        }
    };
    Ok(Some((reply, after_line)))
}

/// The line starting at `start` without its CRLF, and the position after the CRLF.
fn line_at(buffer: &[u8], start: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let window = &buffer[start.min(buffer.len())..];
    let searched = &window[..window.len().min(LINE_BYTES_MAX + 2)];
    match searched.iter().position(|&byte| byte == b'\n') {
        Some(newline) => {
            if newline == 0 || searched[newline - 1] != b'\r' {
                return Err(ProtocolError("line ends in LF without CR".to_string()));
            }
            Ok(Some((&window[..newline - 1], start + newline + 1)))
        }
        None if searched.len() > LINE_BYTES_MAX => Err(ProtocolError(format!(
            "line longer than {LINE_BYTES_MAX} bytes"
        ))),
        None => Ok(None),
    }
}

fn integer(text: &[u8]) -> Result<i64, ProtocolError> {
    let invalid = || {
        ProtocolError(format!(
            "invalid integer {:?}",
            String::from_utf8_lossy(&text[..text.len().min(32)])
        ))
    };
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 {
        return Err(invalid());
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return Err(invalid());
        }
        value = value
            .checked_mul(10)
            .and_then(|value| value.checked_add(i64::from(digit - b'0')))
            .ok_or_else(invalid)?;
    }
    Ok(if negative { -value } else { value })
}

fn checked_length(length: i64, maximum: usize, what: &str) -> Result<usize, ProtocolError> {
    match usize::try_from(length) {
        Ok(length) if length <= maximum => Ok(length),
        Ok(_) => Err(ProtocolError(format!(
            "{what} of {length} elements or bytes exceeds the limit of {maximum}"
        ))),
        Err(_) => Err(ProtocolError(format!("negative {what} length {length}"))),
    }
}

/// Appends `value` in decimal.
#[inline]
pub fn push_decimal(out: &mut Vec<u8>, value: usize) {
    let mut digits = [0u8; 20];
    let mut position = digits.len();
    let mut remaining = value;
    loop {
        position -= 1;
        digits[position] = b'0' + (remaining % 10) as u8;
        remaining /= 10;
        if remaining == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[position..]);
}

/// Appends the array header of a command of `count` arguments.
#[inline]
pub fn push_command_header(out: &mut Vec<u8>, count: usize) {
    out.push(b'*');
    push_decimal(out, count);
    out.extend_from_slice(b"\r\n");
}

/// Appends the header of a bulk string of `length` bytes; the caller appends the bytes and
/// then [`push_bulk_end`].
#[inline]
pub fn push_bulk_header(out: &mut Vec<u8>, length: usize) {
    out.push(b'$');
    push_decimal(out, length);
    out.extend_from_slice(b"\r\n");
}

/// Ends a bulk string.
#[inline]
pub fn push_bulk_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// Appends one whole bulk string.
#[inline]
pub fn push_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    push_bulk_header(out, bytes.len());
    out.extend_from_slice(bytes);
    push_bulk_end(out);
}

/// Appends a command of plain arguments.
pub fn push_command(out: &mut Vec<u8>, arguments: &[&[u8]]) {
    push_command_header(out, arguments.len());
    for argument in arguments {
        push_bulk(out, argument);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(bytes: &[u8]) -> (Reply<'_>, usize) {
        parse_reply(bytes).unwrap().unwrap()
    }

    #[test]
    fn every_reply_type_parses() {
        assert_eq!(parsed(b"+OK\r\n"), (Reply::Status(b"OK"), 5));
        assert_eq!(parsed(b"-ERR no\r\n"), (Reply::Error(b"ERR no"), 9));
        assert_eq!(parsed(b":-42\r\n"), (Reply::Integer(-42), 6));
        assert_eq!(parsed(b"$3\r\nabc\r\n+x"), (Reply::Bulk(b"abc"), 9));
        assert_eq!(parsed(b"$0\r\n\r\n"), (Reply::Bulk(b""), 6));
        assert_eq!(parsed(b"$-1\r\n"), (Reply::Nil, 5));
        assert_eq!(parsed(b"*-1\r\n"), (Reply::Nil, 5));
        let scan = b"*2\r\n*2\r\n$1\r\na\r\n*2\r\n$0\r\n\r\n*1\r\n$1\r\nv\r\n*0\r\n";
        assert_eq!(parsed(scan), (Reply::Array(2), scan.len()));
    }

    #[test]
    fn incomplete_replies_wait_for_more_bytes() {
        let whole = b"*2\r\n$3\r\nabc\r\n:7\r\n";
        for cut in 0..whole.len() {
            assert_eq!(parse_reply(&whole[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert!(parse_reply(whole).unwrap().is_some());
    }

    #[test]
    fn broken_replies_are_errors() {
        for bad in [
            &b"?x\r\n"[..],
            b":12a\r\n",
            b"$3\r\nabcde\r\n",
            b"$-5\r\n",
            b"+ok\n",
            b":99999999999999999999\r\n",
            b"$600000000\r\n",
        ] {
            assert!(
                parse_reply(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long_line = [b"+".as_slice(), &vec![b'a'; LINE_BYTES_MAX + 10]].concat();
        assert!(parse_reply(&long_line).unwrap_err().0.contains("longer"));
        let deep = b"*1\r\n".repeat(NESTING_DEPTH_MAX + 1);
        assert!(parse_reply(&deep).unwrap_err().0.contains("nested"));
    }

    #[test]
    fn commands_encode_as_bulk_arrays() {
        let mut out = Vec::new();
        push_command(&mut out, &[b"SET", b"k", b""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
        out.clear();
        push_decimal(&mut out, 0);
        push_decimal(&mut out, 1234567890);
        assert_eq!(out, b"01234567890");
    }
}
