//! Plain data shared by every layer: entry kinds and decoded entries.

/// Sequence number: assigned by the commit log, strictly increasing across the life of a
/// database (it survives restarts through the manifest). A higher sequence number is a
/// newer write of the same key.
pub type SequenceNumber = u64;

/// What an entry records about its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ValueKind {
    /// The key was deleted; the entry is a tombstone shadowing older values.
    Delete = 0,
    /// The key holds a value.
    Put = 1,
}

impl ValueKind {
    /// Decodes the on-disk byte, `None` for an unknown kind.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            _ => None,
        }
    }
}

/// One version of one key, as stored in the memtable and in SSTables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Vec<u8>,
    pub seq: SequenceNumber,
    pub kind: ValueKind,
    /// Caller-supplied opaque bytes (the cluster keeps vector clocks here). Empty for tombstones.
    pub meta: Vec<u8>,
    /// The value. Empty for tombstones.
    pub value: Vec<u8>,
}

/// What a point read returns for a live key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Value {
    pub meta: Vec<u8>,
    pub value: Vec<u8>,
}
