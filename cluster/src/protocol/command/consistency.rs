//! Consistency levels: how many replicas a read or a write waits for.

use serde::{Deserialize, Serialize};

/// How many replicas a request waits for, per request (`CL <level>`, `R <n>`, `W <n>`) or
/// as a connection's default (`CONSISTENCY ...`). Named levels are resolved against the
/// key's replication factor (per datacenter for the `LOCAL_` and `EACH_` levels) by the
/// coordinator; explicit counts are checked against it there too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Consistency {
    /// One replica anywhere.
    One,
    /// A majority of all replicas.
    Quorum,
    /// Every replica.
    All,
    /// A majority of the replicas in the coordinator's datacenter.
    LocalQuorum,
    /// A majority of the replicas in every datacenter.
    EachQuorum,
    /// Explicit replica counts; a side left `None` keeps the connection's (or node's)
    /// default for that side.
    Counts {
        /// Replicas a read waits for (R).
        read: Option<u32>,
        /// Replicas a write waits for (W).
        write: Option<u32>,
    },
}

impl Consistency {
    /// The named level `word` spells, case-insensitively (`ONE`, `local_quorum`, ...).
    pub fn from_level_name(word: &[u8]) -> Option<Self> {
        let level = match word.to_ascii_uppercase().as_slice() {
            b"ONE" => Self::One,
            b"QUORUM" => Self::Quorum,
            b"ALL" => Self::All,
            b"LOCAL_QUORUM" => Self::LocalQuorum,
            b"EACH_QUORUM" => Self::EachQuorum,
            _ => return None,
        };
        Some(level)
    }

    /// The name as clients spell it, or `R <n> W <n>` for explicit counts.
    pub fn describe(&self) -> String {
        match self {
            Self::One => "ONE".into(),
            Self::Quorum => "QUORUM".into(),
            Self::All => "ALL".into(),
            Self::LocalQuorum => "LOCAL_QUORUM".into(),
            Self::EachQuorum => "EACH_QUORUM".into(),
            Self::Counts { read, write } => {
                let mut parts = Vec::new();
                if let Some(read) = read {
                    parts.push(format!("R {read}"));
                }
                if let Some(write) = write {
                    parts.push(format!("W {write}"));
                }
                parts.join(" ")
            }
        }
    }
}
