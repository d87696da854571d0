//! Writing RESP2: a tree encoder and allocation-free helpers for the hot replies.

use super::RespValue;

/// Appends the RESP2 encoding of `value` to `output`.
pub fn encode(value: &RespValue, output: &mut Vec<u8>) {
    match value {
        RespValue::SimpleString(text) => write_simple_string(output, text),
        RespValue::Error(text) => write_error(output, text),
        RespValue::Integer(number) => write_integer(output, *number),
        RespValue::BulkString(Some(bytes)) => write_bulk(output, bytes),
        RespValue::BulkString(None) => write_null_bulk(output),
        RespValue::Array(Some(elements)) => {
            write_array_header(output, elements.len());
            for element in elements {
                encode(element, output);
            }
        }
        RespValue::Array(None) => write_null_array(output),
    }
}

/// `+OK\r\n`, the most common reply.
pub fn write_ok(output: &mut Vec<u8>) {
    output.extend_from_slice(b"+OK\r\n");
}

/// `+text\r\n`. CR and LF in `text` become spaces: a line break would end the value early
/// and desynchronise the client.
pub fn write_simple_string(output: &mut Vec<u8>, text: &str) {
    write_line(output, b'+', text);
}

/// `-text\r\n`; `text` starts with its code word (`ERR ...`). CR/LF become spaces, as Redis
/// does for error replies.
pub fn write_error(output: &mut Vec<u8>, text: &str) {
    write_line(output, b'-', text);
}

/// `:number\r\n`.
pub fn write_integer(output: &mut Vec<u8>, number: i64) {
    output.push(b':');
    write_decimal(output, number);
    output.extend_from_slice(b"\r\n");
}

/// `$len\r\nbytes\r\n`.
pub fn write_bulk(output: &mut Vec<u8>, bytes: &[u8]) {
    output.reserve(bytes.len() + 16);
    output.push(b'$');
    write_decimal(output, bytes.len() as i64);
    output.extend_from_slice(b"\r\n");
    output.extend_from_slice(bytes);
    output.extend_from_slice(b"\r\n");
}

/// `$-1\r\n`: a missing value.
pub fn write_null_bulk(output: &mut Vec<u8>) {
    output.extend_from_slice(b"$-1\r\n");
}

/// `*count\r\n`; the caller then writes exactly `count` values.
pub fn write_array_header(output: &mut Vec<u8>, count: usize) {
    output.push(b'*');
    write_decimal(output, count as i64);
    output.extend_from_slice(b"\r\n");
}

/// `*-1\r\n`.
pub fn write_null_array(output: &mut Vec<u8>) {
    output.extend_from_slice(b"*-1\r\n");
}

/// The `KV.GET` reply: `[context, [sibling, ...]]`, a tombstone sibling (`None`) written
/// as a null bulk so a client sees that a delete is concurrent with the other siblings.
pub fn write_versioned_reply<'a>(
    output: &mut Vec<u8>,
    context: &[u8],
    siblings: impl ExactSizeIterator<Item = Option<&'a [u8]>>,
) {
    write_array_header(output, 2);
    write_bulk(output, context);
    write_array_header(output, siblings.len());
    for sibling in siblings {
        match sibling {
            Some(value) => write_bulk(output, value),
            None => write_null_bulk(output),
        }
    }
}

fn write_line(output: &mut Vec<u8>, type_byte: u8, text: &str) {
    output.reserve(text.len() + 3);
    output.push(type_byte);
    output.extend(text.bytes().map(|byte| {
        if byte == b'\r' || byte == b'\n' {
            b' '
        } else {
            byte
        }
    }));
    output.extend_from_slice(b"\r\n");
}

/// Formats without `format!` so hot replies allocate nothing beyond `output`.
fn write_decimal(output: &mut Vec<u8>, number: i64) {
    let mut digits = [0u8; 20];
    let mut position = digits.len();
    // unsigned_abs keeps i64::MIN correct, where negation would overflow.
    let mut remaining = number.unsigned_abs();
    loop {
        position -= 1;
        digits[position] = b'0' + (remaining % 10) as u8;
        remaining /= 10;
        if remaining == 0 {
            break;
        }
    }
    if number < 0 {
        output.push(b'-');
    }
    output.extend_from_slice(&digits[position..]);
}
