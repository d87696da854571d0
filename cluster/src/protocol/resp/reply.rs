//! The reply decoder, for clients of the node (the load generator, tests).

use super::request::{check_limit, find_line, parse_integer, NUMBER_LINE_LENGTH_MAX};
use super::RespValue;
use crate::protocol::Limits;
use crate::{Error, Result};

/// Decodes the first reply in `buffer`: `Ok(None)` when more bytes are needed, else the
/// value and how many bytes it used. Stateless: an incomplete reply is parsed again from
/// its start on the next call, which is cheap for the node's replies (small, and bounded by
/// `limits.frame_size_bytes_max`). Nested arrays deeper than `limits.reply_depth_max`,
/// and any element over its limit, are errors.
pub fn decode_reply(buffer: &[u8], limits: &Limits) -> Result<Option<(RespValue, usize)>> {
    ReplyDecoder { buffer, limits }.value(0, 0)
}

struct ReplyDecoder<'a> {
    buffer: &'a [u8],
    limits: &'a Limits,
}

impl ReplyDecoder<'_> {
    fn value(&self, start: usize, depth: usize) -> Result<Option<(RespValue, usize)>> {
        check_limit("reply frame size", start, self.limits.frame_size_bytes_max)?;
        let Some(&type_byte) = self.buffer.get(start) else {
            return Ok(None);
        };
        let line_max = match type_byte {
            b'+' | b'-' => self.limits.inline_length_bytes_max,
            _ => NUMBER_LINE_LENGTH_MAX,
        };
        let what = match type_byte {
            b'+' => "simple string",
            b'-' => "error",
            b':' => "integer",
            b'$' => "bulk length",
            b'*' => "array length",
            other => {
                return Err(Error::Protocol(format!(
                    "invalid reply type byte '{}'",
                    char::from(other).escape_default()
                )))
            }
        };
        let Some((content_end, next)) = find_line(self.buffer, start + 1, line_max, what)? else {
            return Ok(None);
        };
        let content = &self.buffer[start + 1..content_end];
        let text = || String::from_utf8_lossy(content).into_owned();
        let number =
            || parse_integer(content).ok_or_else(|| Error::Protocol(format!("invalid {what}")));
        match type_byte {
            b'+' => Ok(Some((RespValue::SimpleString(text()), next))),
            b'-' => Ok(Some((RespValue::Error(text()), next))),
            b':' => Ok(Some((RespValue::Integer(number()?), next))),
            b'$' => self.bulk(number()?, next),
            _ => self.array(number()?, next, depth),
        }
    }

    fn bulk(&self, length: i64, body_start: usize) -> Result<Option<(RespValue, usize)>> {
        if length == -1 {
            return Ok(Some((RespValue::BulkString(None), body_start)));
        }
        let length =
            usize::try_from(length).map_err(|_| Error::Protocol("invalid bulk length".into()))?;
        check_limit(
            "bulk string length",
            length,
            self.limits.bulk_length_bytes_max,
        )?;
        let body_end = body_start + length;
        // The reply starts at offset 0, so an end offset is the frame's size so far.
        check_limit(
            "reply frame size",
            body_end + 2,
            self.limits.frame_size_bytes_max,
        )?;
        if self.buffer.len() < body_end + 2 {
            return Ok(None);
        }
        if &self.buffer[body_end..body_end + 2] != b"\r\n" {
            return Err(Error::Protocol("expected CRLF after bulk string".into()));
        }
        let body = self.buffer[body_start..body_end].to_vec();
        Ok(Some((RespValue::BulkString(Some(body)), body_end + 2)))
    }

    fn array(
        &self,
        count: i64,
        mut position: usize,
        depth: usize,
    ) -> Result<Option<(RespValue, usize)>> {
        if count == -1 {
            return Ok(Some((RespValue::Array(None), position)));
        }
        let count =
            usize::try_from(count).map_err(|_| Error::Protocol("invalid array length".into()))?;
        check_limit("array length", count, self.limits.array_length_max)?;
        check_limit(
            "reply nesting depth",
            depth + 1,
            self.limits.reply_depth_max,
        )?;
        // Capped: the count is a claim, memory is spent only as elements arrive.
        let mut elements = Vec::with_capacity(count.min(64));
        while elements.len() < count {
            let Some((element, next)) = self.value(position, depth + 1)? else {
                return Ok(None);
            };
            elements.push(element);
            position = next;
        }
        Ok(Some((RespValue::Array(Some(elements)), position)))
    }
}
