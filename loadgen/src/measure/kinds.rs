//! What an operation was and how it ended, named as YCSB names them so that reports line up.

use std::fmt;

/// The kind of a measured operation; [`OperationKind::name`] is YCSB's measurement name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OperationKind {
    Read,
    Update,
    Insert,
    Scan,
    ReadModifyWrite,
    Delete,
    Cleanup,
}

impl OperationKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [OperationKind; 7] = [
        OperationKind::Read,
        OperationKind::Update,
        OperationKind::Insert,
        OperationKind::Scan,
        OperationKind::ReadModifyWrite,
        OperationKind::Delete,
        OperationKind::Cleanup,
    ];

    /// Number of kinds, the length of per-kind arrays.
    pub const COUNT: usize = OperationKind::ALL.len();

    /// YCSB's name for the measurement (`DBWrapper` passes these strings to `Measurements`).
    pub fn name(self) -> &'static str {
        match self {
            OperationKind::Read => "READ",
            OperationKind::Update => "UPDATE",
            OperationKind::Insert => "INSERT",
            OperationKind::Scan => "SCAN",
            OperationKind::ReadModifyWrite => "READ-MODIFY-WRITE",
            OperationKind::Delete => "DELETE",
            OperationKind::Cleanup => "CLEANUP",
        }
    }

    /// The kind with this YCSB name, if any.
    pub fn from_name(name: &str) -> Option<OperationKind> {
        OperationKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
    }

    /// Position in [`OperationKind::ALL`], for indexing per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// How an operation ended; [`Outcome::name`] is the name YCSB's `Status` prints in
/// `Return=NAME` lines, plus `TIMEOUT`, which YCSB has no status for but a network load
/// generator must tell apart from other errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Ok,
    Error,
    NotFound,
    Timeout,
    /// The server refused the request (YCSB's `SERVICE_UNAVAILABLE`): overloaded, no quorum.
    Unavailable,
}

impl Outcome {
    /// Every outcome, in the order reports list them.
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::NotFound,
        Outcome::Timeout,
        Outcome::Unavailable,
    ];

    /// Number of outcomes, the length of per-outcome count arrays.
    pub const COUNT: usize = Outcome::ALL.len();

    /// The name in YCSB's `Return=` lines.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "OK",
            Outcome::Error => "ERROR",
            Outcome::NotFound => "NOT_FOUND",
            Outcome::Timeout => "TIMEOUT",
            Outcome::Unavailable => "SERVICE_UNAVAILABLE",
        }
    }

    /// Whether the operation counts as a success. As YCSB's `Status.isOk()`, only `OK` does:
    /// a read of a key the workload inserted that comes back missing is a failure.
    pub fn is_ok(self) -> bool {
        self == Outcome::Ok
    }

    /// Position in [`Outcome::ALL`], for indexing per-outcome arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_the_all_arrays() {
        for (position, kind) in OperationKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), position);
            assert_eq!(OperationKind::from_name(kind.name()), Some(kind));
        }
        for (position, outcome) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome.index(), position);
        }
        assert_eq!(OperationKind::from_name("READ-FAILED"), None);
    }
}
