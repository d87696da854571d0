//! YCSB's operations as RESP commands, and replies as YCSB return codes.
//!
//! A record is stored whole as one value (`SET key record`, `GET key`), so any
//! Redis-compatible server can be measured:
//!
//! - one field (`fieldcount=1`): the value is the field's bytes, nothing added, so a run
//!   with `fieldlength=1024` writes 1024-byte values as redis-benchmark `-d 1024` does;
//! - several fields: for each field, its name length (u16 LE), name, value length (u32 LE),
//!   value. A record is binary-safe and self-describing.
//!
//! An update writes a whole record: a single value cannot be patched without reading it
//! first, which would turn every update into a read-modify-write.
//!
//! Scans need ordered keys: kvnode's `KV.SCAN start count`; a plain Redis server has none,
//! so a workload with scans is refused up front against it (see [`TargetKind::supports_scan`]).

use super::resp::{push_bulk, push_bulk_end, push_bulk_header, push_command_header, Reply};
use crate::measure::staleness::Observed;
use crate::measure::Outcome;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of server the targets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A plain Redis-compatible server: GET/SET/DEL only.
    Redis,
    /// A kvnode: GET/SET/DEL plus `KV.SCAN`.
    Kvnode,
}

impl TargetKind {
    /// The kind named in an INFO reply: kvnode's INFO has a `kvnode_version:` line.
    pub fn from_info(info: &[u8]) -> TargetKind {
        let marker = b"kvnode_version:";
        if info.windows(marker.len()).any(|window| window == marker) {
            TargetKind::Kvnode
        } else {
            TargetKind::Redis
        }
    }

    /// Whether YCSB's scan operation can run against this kind.
    pub fn supports_scan(self) -> bool {
        self == TargetKind::Kvnode
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Redis => "redis",
            TargetKind::Kvnode => "kvnode",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// The encoded length of a record of these fields.
pub fn record_length(fields: &[(String, Vec<u8>)]) -> usize {
    match fields {
        [(_, value)] => value.len(),
        _ => fields
            .iter()
            .map(|(name, value)| 2 + name.len() + 4 + value.len())
            .sum(),
    }
}

/// Appends the record encoding of `fields` (see the module docs).
pub fn push_record(out: &mut Vec<u8>, fields: &[(String, Vec<u8>)]) {
    if let [(_, value)] = fields {
        out.extend_from_slice(value);
        return;
    }
    for (name, value) in fields {
        // Field names are short (the config bounds the prefix by the properties file size,
        // and names over 64 KiB are cut rather than wrapping the length).
        let name = &name.as_bytes()[..name.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
}

/// Decodes a multi-field record into its fields; `None` if the bytes are not one.
pub fn decode_record(mut bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let name_length = u16::from_le_bytes(bytes.get(..2)?.try_into().ok()?) as usize;
        let name = bytes.get(2..2 + name_length)?;
        bytes = &bytes[2 + name_length..];
        let value_length = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let value = bytes.get(4..4 + value_length)?;
        fields.push((name.to_vec(), value.to_vec()));
        bytes = &bytes[4 + value_length..];
    }
    Some(fields)
}

/// `GET key`.
pub fn push_get(out: &mut Vec<u8>, key: &[u8]) {
    push_command_header(out, 2);
    push_bulk(out, b"GET");
    push_bulk(out, key);
}

/// `SET key record`.
pub fn push_set_record(out: &mut Vec<u8>, key: &[u8], fields: &[(String, Vec<u8>)]) {
    push_command_header(out, 3);
    push_bulk(out, b"SET");
    push_bulk(out, key);
    push_bulk_header(out, record_length(fields));
    push_record(out, fields);
    push_bulk_end(out);
}

/// `SET key record` for a record of `names.len()` fields of `length` bytes each, the
/// values given by `value` (field index -> bytes of `length`): the same encoding as
/// [`push_set_record`], without building the fields first.
pub fn push_set_fields<'a>(
    out: &mut Vec<u8>,
    key: &[u8],
    names: &[String],
    length: usize,
    mut value: impl FnMut(usize) -> &'a [u8],
) {
    push_command_header(out, 3);
    push_bulk(out, b"SET");
    push_bulk(out, key);
    if names.len() == 1 {
        push_bulk(out, value(0));
        return;
    }
    let name_length = |name: &String| name.len().min(u16::MAX as usize);
    let total: usize = names
        .iter()
        .map(|name| 2 + name_length(name) + 4 + length)
        .sum();
    push_bulk_header(out, total);
    for (index, name) in names.iter().enumerate() {
        let name = &name.as_bytes()[..name_length(name)];
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&(length as u32).to_le_bytes());
        out.extend_from_slice(value(index));
    }
    push_bulk_end(out);
}

/// `DEL key`.
pub fn push_delete(out: &mut Vec<u8>, key: &[u8]) {
    push_command_header(out, 2);
    push_bulk(out, b"DEL");
    push_bulk(out, key);
}

/// `KV.SCAN start_key count` (kvnode only).
pub fn push_scan(out: &mut Vec<u8>, start_key: &[u8], count: u64) {
    push_command_header(out, 3);
    push_bulk(out, b"KV.SCAN");
    push_bulk(out, start_key);
    let mut digits = Vec::with_capacity(20);
    super::resp::push_decimal(&mut digits, count as usize);
    push_bulk(out, &digits);
}

/// An error reply as a return code: refusals that mean "try later" (no quorum, busy,
/// loading) are `SERVICE_UNAVAILABLE`, anything else `ERROR`.
pub fn error_outcome(text: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(text).to_ascii_lowercase();
    let unavailable = ["tryagain", "busy", "loading", "unavailable", "masterdown"]
        .iter()
        .any(|prefix| text.starts_with(prefix))
        || text.contains("quorum");
    if unavailable {
        Outcome::Unavailable
    } else {
        Outcome::Error
    }
}

/// A read (`GET`): a value is OK, nil is NOT_FOUND.
pub fn read_outcome(reply: &Reply<'_>) -> Outcome {
    match reply {
        Reply::Bulk(_) => Outcome::Ok,
        Reply::Nil => Outcome::NotFound,
        Reply::Error(text) => error_outcome(text),
        _ => Outcome::Error,
    }
}

/// A read's outcome and, for staleness, what it returned: `Some(None)` for a missing key,
/// `Some(Some(value stamp))` for a value (its stamp starts `stamp_offset` bytes in: 0 for a
/// one-field record, past the first field's header otherwise), `None` for an error.
pub fn read_outcome_observed(
    reply: &Reply<'_>,
    stamp_offset: usize,
) -> (Outcome, Option<Option<Observed>>) {
    let observed = match reply {
        Reply::Bulk(value) => Some(Some(
            value
                .get(stamp_offset..)
                .map_or(Observed::Unstamped, Observed::of_value),
        )),
        Reply::Nil => Some(None),
        _ => None,
    };
    (read_outcome(reply), observed)
}

/// Where the value stamp sits in a record of fields `names`: at the start of the first
/// field's value (see the module docs for the record encoding).
pub fn stamp_offset(names: &[String]) -> usize {
    match names {
        [] | [_] => 0,
        [first, ..] => 2 + first.len().min(u16::MAX as usize) + 4,
    }
}

/// A write (`SET`): `+OK` is OK.
pub fn write_outcome(reply: &Reply<'_>) -> Outcome {
    match reply {
        Reply::Status(_) => Outcome::Ok,
        Reply::Error(text) => error_outcome(text),
        _ => Outcome::Error,
    }
}

/// A delete (`DEL`): one key removed is OK, none is NOT_FOUND.
pub fn delete_outcome(reply: &Reply<'_>) -> Outcome {
    match reply {
        Reply::Integer(removed) if *removed > 0 => Outcome::Ok,
        Reply::Integer(_) => Outcome::NotFound,
        Reply::Error(text) => error_outcome(text),
        _ => Outcome::Error,
    }
}

/// A scan (`KV.SCAN`): an array of rows is OK (YCSB counts an empty scan OK too).
pub fn scan_outcome(reply: &Reply<'_>) -> Outcome {
    match reply {
        Reply::Array(_) => Outcome::Ok,
        Reply::Error(text) => error_outcome(text),
        _ => Outcome::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(name, value)| (name.to_string(), value.to_vec()))
            .collect()
    }

    #[test]
    fn one_field_records_are_the_raw_value() {
        let record = fields(&[("field0", b"abc")]);
        let mut out = Vec::new();
        push_set_record(&mut out, b"k", &record);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nabc\r\n");
    }

    #[test]
    fn multi_field_records_round_trip() {
        let record = fields(&[("field0", b"abc"), ("field1", b""), ("f2", b"xyz!")]);
        let mut out = Vec::new();
        push_record(&mut out, &record);
        assert_eq!(out.len(), record_length(&record));
        let decoded = decode_record(&out).unwrap();
        assert_eq!(decoded.len(), 3);
        assert_eq!(decoded[2], (b"f2".to_vec(), b"xyz!".to_vec()));
        assert_eq!(decode_record(&out[..out.len() - 1]), None);
    }

    #[test]
    fn field_by_field_encoding_matches_whole_records() {
        for record in [
            fields(&[("field0", b"abcd")]),
            fields(&[("field0", b"abcd"), ("field1", b"wxyz")]),
        ] {
            let names: Vec<String> = record.iter().map(|(name, _)| name.clone()).collect();
            let (mut whole, mut parts) = (Vec::new(), Vec::new());
            push_set_record(&mut whole, b"key", &record);
            push_set_fields(&mut parts, b"key", &names, 4, |index| &record[index].1);
            assert_eq!(whole, parts);
        }
    }

    #[test]
    fn replies_map_to_ycsb_return_codes() {
        assert_eq!(read_outcome(&Reply::Bulk(b"v")), Outcome::Ok);
        assert_eq!(read_outcome(&Reply::Nil), Outcome::NotFound);
        assert_eq!(write_outcome(&Reply::Status(b"OK")), Outcome::Ok);
        assert_eq!(
            write_outcome(&Reply::Error(b"ERR quorum not reached: 1 of 2")),
            Outcome::Unavailable
        );
        assert_eq!(write_outcome(&Reply::Error(b"ERR wrong")), Outcome::Error);
        assert_eq!(delete_outcome(&Reply::Integer(0)), Outcome::NotFound);
        assert_eq!(scan_outcome(&Reply::Array(0)), Outcome::Ok);
        assert_eq!(scan_outcome(&Reply::Integer(1)), Outcome::Error);
    }

    #[test]
    fn stamps_are_found_in_one_and_multi_field_records() {
        use crate::measure::staleness::ValueStamp;
        let stamp = ValueStamp {
            writer: 3,
            sequence: 9,
            issued_micros: 77,
        };
        let mut value = vec![b'x'; 40];
        stamp.write_into(&mut value).unwrap();
        let names = vec!["field0".to_string(), "field1".to_string()];
        let record = fields(&[("field0", &value), ("field1", b"abc")]);
        let mut encoded = Vec::new();
        push_record(&mut encoded, &record);
        for (bytes, offset) in [(&value[..], 0), (&encoded[..], stamp_offset(&names))] {
            let (outcome, observed) = read_outcome_observed(&Reply::Bulk(bytes), offset);
            assert_eq!(outcome, Outcome::Ok);
            assert_eq!(observed, Some(Some(Observed::Stamp(stamp))));
        }
        assert_eq!(stamp_offset(&names[..1]), 0);
        assert_eq!(
            read_outcome_observed(&Reply::Bulk(b"short"), 0).1,
            Some(Some(Observed::Unstamped))
        );
        assert_eq!(read_outcome_observed(&Reply::Nil, 0).1, Some(None));
        assert_eq!(read_outcome_observed(&Reply::Error(b"ERR x"), 0).1, None);
    }

    #[test]
    fn kvnode_is_detected_from_info() {
        let info = b"# Server\r\nredis_version:7.2.0\r\nkvnode_version:0.1.0\r\n";
        assert_eq!(TargetKind::from_info(info), TargetKind::Kvnode);
        assert_eq!(
            TargetKind::from_info(b"redis_version:7.0.15\r\n"),
            TargetKind::Redis
        );
    }
}
