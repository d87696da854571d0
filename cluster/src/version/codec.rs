//! Byte formats of vector clocks (the opaque causal context a client gets with a read and
//! sends back with a write) and sibling sets (what a replica stores as the engine value and
//! what peers exchange). Format version 1.
//!
//! `varint` is unsigned LEB128, at most 10 bytes, shortest form only (so every value has one
//! encoding and equal data encodes to equal bytes). `string` is a varint byte length then
//! that many UTF-8 bytes.
//!
//! ```text
//! clock       = "VC" 0x01 clock_body
//! clock_body  = varint entry_count            ; <= CLOCK_ENTRIES_MAX (1024)
//!               entry_count * entry           ; node names strictly ascending (bytes)
//! entry       = string node                   ; 1..=255 bytes
//!               varint counter                ; >= 1
//!               varint last_update_ms
//!
//! sibling_set = "VS" 0x01
//!               varint version_count          ; <= SIBLINGS_STORED_MAX (1024)
//!               version_count * version
//! version     = clock_body
//!               varint timestamp_ms
//!               string writer                 ; 0..=255 bytes
//!               u8 value_tag                  ; 0 = tombstone, 1 = value
//!               [varint length, bytes]        ; only for tag 1; <= VALUE_BYTES_MAX
//! ```
//!
//! Nothing may follow the last field. Decoding checks structure and limits, not that the
//! versions are mutually concurrent: the next reconcile or merge restores that.

use super::{
    ClockEntry, SiblingSet, VectorClock, Version, CLOCK_ENTRIES_MAX, NODE_NAME_BYTES_MAX,
    SIBLINGS_STORED_MAX, VALUE_BYTES_MAX,
};
use crate::{Error, Result};

/// Magic of an encoded vector clock.
pub const CLOCK_MAGIC: [u8; 2] = *b"VC";
/// Magic of an encoded sibling set.
pub const SIBLINGS_MAGIC: [u8; 2] = *b"VS";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u8 = 1;

const VALUE_TAG_TOMBSTONE: u8 = 0;
const VALUE_TAG_PRESENT: u8 = 1;

impl VectorClock {
    /// The clock's bytes (format above).
    ///
    /// # Panics
    /// If the clock holds more than [`CLOCK_ENTRIES_MAX`] entries: clocks of stored versions
    /// are pruned far below that and [`SiblingSet::context`] prunes to it, so only a clock
    /// assembled by hand can, and writing bytes the decoder refuses would be worse.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.len() * 16);
        out.extend_from_slice(&CLOCK_MAGIC);
        out.push(FORMAT_VERSION);
        encode_clock_body(self, &mut out);
        out
    }

    /// Parses a clock; any malformed input is [`Error::CorruptVersion`].
    pub fn decode(bytes: &[u8]) -> Result<VectorClock> {
        let mut reader = Reader::new(bytes);
        reader.header(CLOCK_MAGIC, "vector clock")?;
        let clock = decode_clock_body(&mut reader)?;
        reader.finish()?;
        Ok(clock)
    }
}

impl SiblingSet {
    /// The set's bytes (format above).
    ///
    /// # Panics
    /// If a limit of the format is exceeded (more than [`SIBLINGS_STORED_MAX`] versions, a
    /// name over 255 bytes, a value over [`VALUE_BYTES_MAX`]): the set's operations refuse
    /// to build such sets, and storing bytes that cannot be read back would lose data.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with_values(|index| self.versions[index].value.as_deref())
    }

    /// [`SiblingSet::encode`] with version `index`'s value (`None`: a tombstone) given by
    /// `value_of(index)` rather than read from the version, so values still lying in other
    /// bytes (see [`SiblingSet::decode_lending`]) are copied once, into the output.
    pub(crate) fn encode_with_values<'v>(
        &'v self,
        value_of: impl Fn(usize) -> Option<&'v [u8]>,
    ) -> Vec<u8> {
        assert!(
            self.versions.len() <= SIBLINGS_STORED_MAX,
            "sibling set of {} versions exceeds the format's {SIBLINGS_STORED_MAX}",
            self.versions.len()
        );
        // Sized up front: growing from empty reallocated and copied a 1 KiB value ~8 times.
        let values: usize = (0..self.versions.len())
            .map(|index| value_of(index).map_or(0, <[u8]>::len))
            .sum();
        let mut out = Vec::with_capacity(16 + values + self.versions.len() * 64);
        out.extend_from_slice(&SIBLINGS_MAGIC);
        out.push(FORMAT_VERSION);
        put_varint(&mut out, self.versions.len() as u64);
        for (index, version) in self.versions.iter().enumerate() {
            encode_clock_body(&version.clock, &mut out);
            put_varint(&mut out, version.timestamp_ms);
            put_string(&mut out, &version.writer);
            match value_of(index) {
                None => out.push(VALUE_TAG_TOMBSTONE),
                Some(value) => {
                    assert!(
                        value.len() <= VALUE_BYTES_MAX,
                        "value over the format's limit"
                    );
                    out.push(VALUE_TAG_PRESENT);
                    put_varint(&mut out, value.len() as u64);
                    out.extend_from_slice(value);
                }
            }
        }
        out
    }

    /// Parses a set; any malformed input is [`Error::CorruptVersion`].
    pub fn decode(bytes: &[u8]) -> Result<SiblingSet> {
        Self::decode_values(bytes, true).map(|(set, _)| set)
    }

    /// [`SiblingSet::decode`] leaving the values in `bytes`: each version holding a value
    /// gets an empty one, and the second vector has every version's real value (`None`: a
    /// tombstone) by index. For a write that rewrites the stored set, where copying each
    /// old value out only to drop it (superseded) or copy it into the new encoding was
    /// most of the decoding's cost; see [`SiblingSet::encode_with_values`].
    pub(crate) fn decode_lending(bytes: &[u8]) -> Result<(SiblingSet, Vec<Option<&[u8]>>)> {
        Self::decode_values(bytes, false)
    }

    fn decode_values(bytes: &[u8], copy: bool) -> Result<(SiblingSet, Vec<Option<&[u8]>>)> {
        let mut reader = Reader::new(bytes);
        reader.header(SIBLINGS_MAGIC, "sibling set")?;
        let count = reader.length(SIBLINGS_STORED_MAX, "version count")?;
        // Each version takes at least 4 bytes; do not trust the count for the allocation.
        let mut versions = Vec::with_capacity(count.min(reader.remaining() / 4));
        let mut lent = Vec::with_capacity(if copy { 0 } else { versions.capacity() });
        for _ in 0..count {
            let clock = decode_clock_body(&mut reader)?;
            let timestamp_ms = reader.varint("timestamp")?;
            let writer = reader.string(0, "writer")?;
            let value = reader.value()?;
            let value = if copy {
                value.map(<[u8]>::to_vec)
            } else {
                lent.push(value);
                value.map(|_| Vec::new())
            };
            versions.push(Version {
                clock,
                timestamp_ms,
                writer,
                value,
            });
        }
        reader.finish()?;
        Ok((SiblingSet { versions }, lent))
    }
}

fn encode_clock_body(clock: &VectorClock, out: &mut Vec<u8>) {
    assert!(
        clock.len() <= CLOCK_ENTRIES_MAX,
        "vector clock of {} entries exceeds the format's {CLOCK_ENTRIES_MAX}",
        clock.len()
    );
    put_varint(out, clock.len() as u64);
    for entry in clock.entries() {
        put_string(out, &entry.node);
        put_varint(out, entry.counter);
        put_varint(out, entry.last_update_ms);
    }
}

fn decode_clock_body(reader: &mut Reader<'_>) -> Result<VectorClock> {
    let count = reader.length(CLOCK_ENTRIES_MAX, "clock entry count")?;
    // Each entry takes at least 4 bytes; do not trust the count for the allocation.
    let mut entries: Vec<ClockEntry> = Vec::with_capacity(count.min(reader.remaining() / 4));
    for _ in 0..count {
        let node = reader.string(1, "clock node")?;
        if let Some(previous) = entries.last() {
            if previous.node >= node {
                return Err(reader.corrupt(&format!(
                    "clock node {node:?} not after {:?}",
                    previous.node
                )));
            }
        }
        let counter = reader.varint("clock counter")?;
        if counter == 0 {
            return Err(reader.corrupt(&format!("clock node {node:?} has counter 0")));
        }
        let last_update_ms = reader.varint("clock last update")?;
        entries.push(ClockEntry {
            node,
            counter,
            last_update_ms,
        });
    }
    Ok(VectorClock::from_sorted_entries(entries))
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    assert!(
        text.len() <= NODE_NAME_BYTES_MAX,
        "name of {} bytes exceeds the format's {NODE_NAME_BYTES_MAX}",
        text.len()
    );
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// A cursor over untrusted bytes; every read is bounds-checked and errors name the offset.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, offset: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    fn corrupt(&self, detail: &str) -> Error {
        Error::CorruptVersion(format!("{detail} (at byte {})", self.offset))
    }

    fn header(&mut self, magic: [u8; 2], what: &str) -> Result<()> {
        let found = self.take(2, "magic")?;
        if found != magic {
            self.offset -= 2;
            return Err(self.corrupt(&format!("not a {what}: magic {found:02x?}")));
        }
        match self.byte("format version")? {
            FORMAT_VERSION => Ok(()),
            other => Err(self.corrupt(&format!("{what} format version {other} is unknown"))),
        }
    }

    fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(self.corrupt(&format!("{extra} trailing bytes"))),
        }
    }

    fn take(&mut self, length: usize, what: &str) -> Result<&'a [u8]> {
        if length > self.remaining() {
            return Err(self.corrupt(&format!(
                "{what} needs {length} bytes, {} left",
                self.remaining()
            )));
        }
        let slice = &self.bytes[self.offset..self.offset + length];
        self.offset += length;
        Ok(slice)
    }

    fn byte(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn varint(&mut self, what: &str) -> Result<u64> {
        let mut value: u64 = 0;
        for index in 0..10 {
            let byte = self.byte(what)?;
            let bits = u64::from(byte & 0x7f);
            if index == 9 && byte > 1 {
                return Err(self.corrupt(&format!("{what} overflows 64 bits")));
            }
            value |= bits << (7 * index);
            if byte & 0x80 == 0 {
                if byte == 0 && index > 0 {
                    return Err(self.corrupt(&format!("{what} is not in shortest form")));
                }
                return Ok(value);
            }
        }
        Err(self.corrupt(&format!("{what} is longer than 10 bytes")))
    }

    fn length(&mut self, limit: usize, what: &str) -> Result<usize> {
        let length = self.varint(what)?;
        match usize::try_from(length) {
            Ok(length) if length <= limit => Ok(length),
            _ => Err(self.corrupt(&format!("{what} {length} exceeds the limit {limit}"))),
        }
    }

    fn string(&mut self, minimum: usize, what: &str) -> Result<String> {
        let length = self.length(NODE_NAME_BYTES_MAX, what)?;
        if length < minimum {
            return Err(self.corrupt(&format!("{what} is empty")));
        }
        let bytes = self.take(length, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.corrupt(&format!("{what} is not UTF-8")))
    }
}

/// The value a plain read shows from an encoded sibling set, without decoding the set:
/// the value of the last-write-wins winner by `(timestamp_ms, writer)` (among equals, the
/// last in stored order, as `Iterator::max_by` picks), `None` when that winner is a
/// tombstone or the set is empty. Borrows from `bytes`; allocates nothing. Checks the
/// structure as [`SiblingSet::decode`] does: an error here is an error there, and bytes
/// accepted here decode.
pub fn latest_value(bytes: &[u8]) -> Result<Option<&[u8]>> {
    let mut reader = Reader::new(bytes);
    reader.header(SIBLINGS_MAGIC, "sibling set")?;
    let count = reader.length(SIBLINGS_STORED_MAX, "version count")?;
    // The winner so far: its (timestamp, writer) and value; none before the first version.
    let mut winner_order: Option<(u64, &[u8])> = None;
    let mut winner_value: Option<&[u8]> = None;
    for _ in 0..count {
        skip_clock_body(&mut reader)?;
        let timestamp_ms = reader.varint("timestamp")?;
        let writer = reader.name(0, "writer")?;
        let value = reader.value()?;
        if winner_order.is_none_or(|best| (timestamp_ms, writer) >= best) {
            winner_order = Some((timestamp_ms, writer));
            winner_value = value;
        }
    }
    reader.finish()?;
    Ok(winner_value)
}

/// One version of an encoded set as it lies in the bytes: the clock body undecoded (its
/// entries read again for each comparison), nothing copied or allocated. See
/// [`version_views`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct VersionView<'a> {
    /// The clock body's entries (after the entry count), checked when the view was made.
    clock: &'a [u8],
    clock_entries: usize,
    timestamp_ms: u64,
    writer: &'a [u8],
    /// `None`: a tombstone.
    pub(crate) value: Option<&'a [u8]>,
}

/// The versions of an encoded set, checked as [`SiblingSet::decode`] checks them (same
/// errors), without copying anything out of `bytes`: for a replica deciding whether a
/// replicated set replaces the stored one (see
/// [`crate::version::siblings::replaces_all`]), where decoding both sets was allocations
/// per clock entry, writer and version.
pub(crate) fn version_views(bytes: &[u8]) -> Result<Vec<VersionView<'_>>> {
    let mut reader = Reader::new(bytes);
    reader.header(SIBLINGS_MAGIC, "sibling set")?;
    let count = reader.length(SIBLINGS_STORED_MAX, "version count")?;
    let mut views = Vec::with_capacity(count.min(reader.remaining() / 4));
    for _ in 0..count {
        let clock_entries = reader.length(CLOCK_ENTRIES_MAX, "clock entry count")?;
        let start = reader.offset;
        let mut previous: Option<&[u8]> = None;
        for _ in 0..clock_entries {
            let node = reader.name(1, "clock node")?;
            if let Some(previous) = previous {
                if previous >= node {
                    return Err(reader.corrupt(&format!(
                        "clock node {:?} not after {:?}",
                        String::from_utf8_lossy(node),
                        String::from_utf8_lossy(previous)
                    )));
                }
            }
            previous = Some(node);
            if reader.varint("clock counter")? == 0 {
                return Err(reader.corrupt(&format!(
                    "clock node {:?} has counter 0",
                    String::from_utf8_lossy(node)
                )));
            }
            reader.varint("clock last update")?;
        }
        let clock = &bytes[start..reader.offset];
        let timestamp_ms = reader.varint("timestamp")?;
        let writer = reader.name(0, "writer")?;
        let value = reader.value()?;
        views.push(VersionView {
            clock,
            clock_entries,
            timestamp_ms,
            writer,
            value,
        });
    }
    reader.finish()?;
    Ok(views)
}

/// A checked clock body's entries: node, counter, last update.
fn clock_entries<'a>(view: &VersionView<'a>) -> impl Iterator<Item = (&'a [u8], u64, u64)> + 'a {
    let mut reader = Reader::new(view.clock);
    (0..view.clock_entries).map_while(move |_| {
        // Checked by `version_views`: these reads cannot fail.
        let node = reader.name(1, "clock node").ok()?;
        let counter = reader.varint("clock counter").ok()?;
        let last_update_ms = reader.varint("clock last update").ok()?;
        Some((node, counter, last_update_ms))
    })
}

impl VersionView<'_> {
    /// [`crate::version::VectorClock::compare`] of the two versions' clocks.
    pub(crate) fn compare_clocks(&self, other: &VersionView<'_>) -> crate::version::Causality {
        use std::cmp::Ordering;
        let (mut self_ahead, mut other_ahead) = (false, false);
        let mut left = clock_entries(self).peekable();
        let mut right = clock_entries(other).peekable();
        loop {
            let order = match (left.peek(), right.peek()) {
                (None, None) => break,
                (Some(mine), Some(theirs)) => mine.0.cmp(theirs.0),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
            };
            // A node missing on one side counts as counter 0 there.
            let (mine, theirs) = match order {
                Ordering::Less => (left.next().map_or(0, |entry| entry.1), 0),
                Ordering::Greater => (0, right.next().map_or(0, |entry| entry.1)),
                Ordering::Equal => (
                    left.next().map_or(0, |entry| entry.1),
                    right.next().map_or(0, |entry| entry.1),
                ),
            };
            self_ahead |= mine > theirs;
            other_ahead |= theirs > mine;
        }
        match (self_ahead, other_ahead) {
            (false, false) => crate::version::Causality::Equal,
            (false, true) => crate::version::Causality::Before,
            (true, false) => crate::version::Causality::After,
            (true, true) => crate::version::Causality::Concurrent,
        }
    }

    /// [`crate::version::siblings::last_write_order`] of the two versions: `(timestamp,
    /// writer, value)`, then the clocks' entries.
    pub(crate) fn last_write_order(&self, other: &VersionView<'_>) -> std::cmp::Ordering {
        (self.timestamp_ms, self.writer, self.value)
            .cmp(&(other.timestamp_ms, other.writer, other.value))
            .then_with(|| clock_entries(self).cmp(clock_entries(other)))
    }
}

/// Reads past a clock body, checking it as [`decode_clock_body`] does (node names in
/// strictly increasing order, counters above 0) without decoding it.
fn skip_clock_body(reader: &mut Reader<'_>) -> Result<()> {
    let count = reader.length(CLOCK_ENTRIES_MAX, "clock entry count")?;
    let mut previous: Option<&[u8]> = None;
    for _ in 0..count {
        let node = reader.name(1, "clock node")?;
        if previous.is_some_and(|previous| previous >= node) {
            return Err(reader.corrupt(&format!(
                "clock node {:?} not after {:?}",
                String::from_utf8_lossy(node),
                String::from_utf8_lossy(previous.unwrap_or_default())
            )));
        }
        previous = Some(node);
        if reader.varint("clock counter")? == 0 {
            return Err(reader.corrupt("clock counter 0"));
        }
        reader.varint("clock last update")?;
    }
    Ok(())
}

impl<'a> Reader<'a> {
    /// A version's value as stored: a tag, then for a present value its length and bytes
    /// (not copied); `None` for a tombstone.
    fn value(&mut self) -> Result<Option<&'a [u8]>> {
        match self.byte("value tag")? {
            VALUE_TAG_TOMBSTONE => Ok(None),
            VALUE_TAG_PRESENT => {
                let length = self.length(VALUE_BYTES_MAX, "value length")?;
                Ok(Some(self.take(length, "value")?))
            }
            tag => Err(self.corrupt(&format!("unknown value tag {tag}"))),
        }
    }

    /// A string's bytes, checked to be UTF-8 but not copied.
    fn name(&mut self, minimum: usize, what: &str) -> Result<&'a [u8]> {
        let length = self.length(NODE_NAME_BYTES_MAX, what)?;
        if length < minimum {
            return Err(self.corrupt(&format!("{what} is empty")));
        }
        let bytes = self.take(length, what)?;
        std::str::from_utf8(bytes).map_err(|_| self.corrupt(&format!("{what} is not UTF-8")))?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests;
