//! The incremental request decoder: multibulk and inline commands from a growable buffer.

use crate::protocol::Limits;
use crate::{Error, Result};

/// One request as sent: the command name followed by its arguments, each binary safe.
/// Never empty: empty requests are skipped by the decoder.
pub type RequestFrame = Vec<Vec<u8>>;

/// Longest decimal count or length line: `-9223372036854775808` is 20 bytes. Anything
/// longer is garbage, and bounding it keeps the search for CRLF from scanning far.
pub(super) const NUMBER_LINE_LENGTH_MAX: usize = 20;

/// A plain `GET key` or `SET key value` recognised in place by [`Decoder::decode_data`]:
/// byte ranges of the buffer, so the hot path allocates nothing to read its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataFrame {
    /// `GET key`.
    Get {
        /// The key's bytes in the buffer.
        key: std::ops::Range<usize>,
    },
    /// `SET key value`, with no options.
    Set {
        /// The key's bytes in the buffer.
        key: std::ops::Range<usize>,
        /// The value's bytes in the buffer.
        value: std::ops::Range<usize>,
    },
}

/// Decodes requests from the front of a connection's input buffer.
///
/// Contract: call [`Decoder::decode`] with the whole unconsumed input. On `Ok(None)` nothing
/// was consumed; append more bytes and call again with the same buffer, grown. On
/// `Ok(Some((frame, consumed)))` drop the first `consumed` bytes. On an error the stream is
/// unusable: reply and close. The decoder remembers how far it got through a partial
/// multibulk, so a large request arriving in many reads is not re-scanned from the start.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    partial: Option<PartialMultibulk>,
}

/// A multibulk whose header and some arguments have been read; offsets are from the start
/// of the buffer passed to `decode`, which does not move until the frame completes.
#[derive(Debug)]
struct PartialMultibulk {
    frame_start: usize,
    argument_count: usize,
    arguments: Vec<Vec<u8>>,
    /// Where the next `$len` header starts.
    position: usize,
}

impl Decoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            partial: None,
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes the first request in `buffer`: `Ok(None)` when more bytes are needed, else
    /// the request and how many bytes of `buffer` it (and any empty requests before it) used.
    pub fn decode(&mut self, buffer: &[u8]) -> Result<Option<(RequestFrame, usize)>> {
        let result = self.decode_from_start(buffer);
        if !matches!(result, Ok(None)) {
            self.partial = None;
        }
        result
    }

    /// The first request in `buffer` when it is a complete multibulk `GET key` or
    /// `SET key value` (command name in any case) within the limits, with the bytes it
    /// used; `None` for anything else, incomplete or invalid input included, which
    /// [`Decoder::decode`] then handles (and reports) as usual. Consumes nothing and
    /// changes no state: what it accepts, `decode` would decode to the same arguments.
    pub fn decode_data(&self, buffer: &[u8]) -> Option<(DataFrame, usize)> {
        if self.partial.is_some() {
            return None;
        }
        let (count, position) = match buffer {
            [b'*', b'2', b'\r', b'\n', ..] => (2, 4),
            [b'*', b'3', b'\r', b'\n', ..] => (3, 4),
            _ => return None,
        };
        let name = self.data_argument(buffer, position)?;
        let command = buffer.get(name.clone())?;
        let (key, value) = match count {
            2 if command.eq_ignore_ascii_case(b"GET") => {
                (self.data_argument(buffer, name.end + 2)?, None)
            }
            3 if command.eq_ignore_ascii_case(b"SET") => {
                let key = self.data_argument(buffer, name.end + 2)?;
                let value = self.data_argument(buffer, key.end + 2)?;
                (key, Some(value))
            }
            _ => return None,
        };
        let end = value.as_ref().map_or(key.end, |value| value.end) + 2;
        if end > self.limits.frame_size_bytes_max {
            return None;
        }
        let frame = match value {
            None => DataFrame::Get { key },
            Some(value) => DataFrame::Set { key, value },
        };
        Some((frame, end))
    }

    /// The body of the complete `$len\r\nbody\r\n` at `position`, within the bulk limit.
    fn data_argument(&self, buffer: &[u8], position: usize) -> Option<std::ops::Range<usize>> {
        if buffer.get(position) != Some(&b'$') {
            return None;
        }
        let (length_end, body_start) =
            find_line(buffer, position + 1, NUMBER_LINE_LENGTH_MAX, "bulk length").ok()??;
        let length = parse_integer(&buffer[position + 1..length_end])
            .and_then(|length| usize::try_from(length).ok())?;
        if length > self.limits.bulk_length_bytes_max {
            return None;
        }
        let body_end = body_start + length;
        (buffer.get(body_end..body_end + 2)? == b"\r\n").then_some(body_start..body_end)
    }

    fn decode_from_start(&mut self, buffer: &[u8]) -> Result<Option<(RequestFrame, usize)>> {
        if let Some(partial) = self.partial.take() {
            // A shorter buffer means the caller broke the contract; start over rather than
            // index out of bounds.
            if partial.position <= buffer.len() {
                return self.continue_multibulk(buffer, partial);
            }
        }
        let mut start = 0;
        while let Some(&first) = buffer.get(start) {
            let skipped_to = if first == b'*' {
                match self.start_multibulk(buffer, start)? {
                    Step::Frame(frame, end) => return Ok(Some((frame, end))),
                    Step::NeedMore => return Ok(None),
                    Step::Empty(end) => end,
                }
            } else {
                match self.inline(buffer, start)? {
                    Step::Frame(frame, end) => return Ok(Some((frame, end))),
                    Step::NeedMore => return Ok(None),
                    Step::Empty(end) => end,
                }
            };
            // Every empty request consumes at least its line ending, so this loop ends.
            debug_assert!(skipped_to > start);
            start = skipped_to;
        }
        Ok(None)
    }

    fn start_multibulk(&mut self, buffer: &[u8], start: usize) -> Result<Step> {
        let Some((content_end, next)) = find_line(
            buffer,
            start + 1,
            NUMBER_LINE_LENGTH_MAX,
            "multibulk length",
        )?
        else {
            return Ok(Step::NeedMore);
        };
        let count = parse_integer(&buffer[start + 1..content_end])
            .ok_or_else(|| Error::Protocol("invalid multibulk length".into()))?;
        if count == 0 || count == -1 {
            return Ok(Step::Empty(next));
        }
        let count = usize::try_from(count)
            .map_err(|_| Error::Protocol("invalid multibulk length".into()))?;
        check_limit(
            "multibulk argument count",
            count,
            self.limits.array_length_max,
        )?;
        let partial = PartialMultibulk {
            frame_start: start,
            argument_count: count,
            // Capped: the count is a claim, memory is spent only as arguments arrive.
            arguments: Vec::with_capacity(count.min(64)),
            position: next,
        };
        self.continue_multibulk(buffer, partial)
            .map(|decoded| match decoded {
                Some((frame, end)) => Step::Frame(frame, end),
                None => Step::NeedMore,
            })
    }

    fn continue_multibulk(
        &mut self,
        buffer: &[u8],
        mut partial: PartialMultibulk,
    ) -> Result<Option<(RequestFrame, usize)>> {
        while partial.arguments.len() < partial.argument_count {
            let position = partial.position;
            let Some(&type_byte) = buffer.get(position) else {
                self.partial = Some(partial);
                return Ok(None);
            };
            if type_byte != b'$' {
                return Err(Error::Protocol(format!(
                    "expected '$', got '{}'",
                    char::from(type_byte).escape_default()
                )));
            }
            let Some((length_end, body_start)) =
                find_line(buffer, position + 1, NUMBER_LINE_LENGTH_MAX, "bulk length")?
            else {
                self.partial = Some(partial);
                return Ok(None);
            };
            let length = parse_integer(&buffer[position + 1..length_end])
                .and_then(|length| usize::try_from(length).ok())
                .ok_or_else(|| Error::Protocol("invalid bulk length".into()))?;
            check_limit(
                "bulk string length",
                length,
                self.limits.bulk_length_bytes_max,
            )?;
            let body_end = body_start + length;
            check_limit(
                "request frame size",
                body_end + 2 - partial.frame_start,
                self.limits.frame_size_bytes_max,
            )?;
            if buffer.len() < body_end + 2 {
                self.partial = Some(partial);
                return Ok(None);
            }
            if &buffer[body_end..body_end + 2] != b"\r\n" {
                return Err(Error::Protocol("expected CRLF after bulk string".into()));
            }
            partial
                .arguments
                .push(buffer[body_start..body_end].to_vec());
            partial.position = body_end + 2;
        }
        Ok(Some((partial.arguments, partial.position)))
    }

    fn inline(&self, buffer: &[u8], start: usize) -> Result<Step> {
        let line_max = self.limits.inline_length_bytes_max;
        let window_end = buffer.len().min(start.saturating_add(line_max));
        let Some(offset) = buffer[start..window_end].iter().position(|&b| b == b'\n') else {
            let pending = buffer.len() - start;
            if pending >= line_max {
                return Err(Error::LimitExceeded {
                    what: "inline command length",
                    size: pending,
                    limit: line_max,
                });
            }
            return Ok(Step::NeedMore);
        };
        let mut line = &buffer[start..start + offset];
        if let Some(without_carriage_return) = line.strip_suffix(b"\r") {
            line = without_carriage_return;
        }
        let end = start + offset + 1;
        let arguments = split_inline(line)?;
        check_limit(
            "inline argument count",
            arguments.len(),
            self.limits.array_length_max,
        )?;
        Ok(if arguments.is_empty() {
            Step::Empty(end)
        } else {
            Step::Frame(arguments, end)
        })
    }
}

enum Step {
    Frame(RequestFrame, usize),
    NeedMore,
    /// An empty request ending at this offset, skipped as Redis does.
    Empty(usize),
}

/// Splits an inline line into words the way Redis's `sdssplitargs` does: whitespace
/// separates, `"..."` takes `\n \r \t \b \a \\ \" \xHH` escapes, `'...'` takes `\'`, and a
/// closing quote must be followed by whitespace or the end of the line.
fn split_inline(line: &[u8]) -> Result<Vec<Vec<u8>>> {
    let unbalanced = || Error::Protocol("unbalanced quotes in inline request".into());
    let mut words = Vec::new();
    let mut position = 0;
    loop {
        while line.get(position).is_some_and(u8::is_ascii_whitespace) {
            position += 1;
        }
        let Some(&first) = line.get(position) else {
            return Ok(words);
        };
        let mut word = Vec::new();
        match first {
            b'"' | b'\'' => {
                position += 1;
                loop {
                    let byte = *line.get(position).ok_or_else(unbalanced)?;
                    position += 1;
                    if byte == first {
                        break;
                    }
                    if byte != b'\\' {
                        word.push(byte);
                        continue;
                    }
                    let escaped = *line.get(position).ok_or_else(unbalanced)?;
                    position += 1;
                    word.push(match (first, escaped) {
                        (b'\'', b'\'') => b'\'',
                        (b'\'', _) => {
                            // Only \' is an escape inside single quotes.
                            position -= 1;
                            b'\\'
                        }
                        (_, b'x') => match hex_byte(line.get(position..position + 2)) {
                            Some(value) => {
                                position += 2;
                                value
                            }
                            None => b'x',
                        },
                        (_, b'n') => b'\n',
                        (_, b'r') => b'\r',
                        (_, b't') => b'\t',
                        (_, b'b') => 0x08,
                        (_, b'a') => 0x07,
                        (_, other) => other,
                    });
                }
                if line.get(position).is_some_and(|b| !b.is_ascii_whitespace()) {
                    return Err(unbalanced());
                }
            }
            _ => {
                while let Some(&byte) = line.get(position) {
                    if byte.is_ascii_whitespace() {
                        break;
                    }
                    word.push(byte);
                    position += 1;
                }
            }
        }
        words.push(word);
    }
}

fn hex_byte(digits: Option<&[u8]>) -> Option<u8> {
    let digits = std::str::from_utf8(digits?).ok()?;
    u8::from_str_radix(digits, 16).ok()
}

/// Finds the CRLF ending the line that starts at `start`, whose content may be at most
/// `content_length_max` bytes: `Ok(Some((content_end, next_line_start)))`, or `Ok(None)`
/// when the line is incomplete. A lone LF or an over-long line is a protocol error.
pub(super) fn find_line(
    buffer: &[u8],
    start: usize,
    content_length_max: usize,
    what: &str,
) -> Result<Option<(usize, usize)>> {
    let window_end = buffer
        .len()
        .min(start.saturating_add(content_length_max + 2));
    let window = buffer.get(start..window_end).unwrap_or_default();
    match window.iter().position(|&byte| byte == b'\n') {
        Some(offset) if offset > 0 && window[offset - 1] == b'\r' => {
            Ok(Some((start + offset - 1, start + offset + 1)))
        }
        Some(_) => Err(Error::Protocol(format!(
            "expected CRLF at the end of the {what}"
        ))),
        None if window.len() >= content_length_max + 2 => {
            Err(Error::Protocol(format!("too big {what} line")))
        }
        None => Ok(None),
    }
}

/// A strict decimal i64: optional `-`, then digits only, no overflow.
pub(super) fn parse_integer(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(digit - b'0');
        // Accumulating negatively reaches i64::MIN without overflowing.
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    Some(value)
}

pub(super) fn check_limit(what: &'static str, size: usize, limit: usize) -> Result<()> {
    if size > limit {
        return Err(Error::LimitExceeded { what, size, limit });
    }
    Ok(())
}
