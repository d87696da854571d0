//! The engine's one error type.

use std::path::PathBuf;

/// Everything the engine can fail with. Variants carry enough context (file, offset, sizes)
/// that the message alone tells an operator what broke and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error, with the file it happened on.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A checksum did not match: the bytes on disk are not the bytes that were written.
    #[error("checksum mismatch in {path} at offset {offset}: expected {expected:#010x}, found {actual:#010x}")]
    ChecksumMismatch {
        path: PathBuf,
        offset: u64,
        expected: u32,
        actual: u32,
    },

    /// A structure on disk is malformed in a way a checksum does not cover (bad magic,
    /// impossible length, unknown version, out-of-order keys...).
    #[error("corrupt {what} in {path} at offset {offset}: {detail}")]
    Corruption {
        what: &'static str,
        path: PathBuf,
        offset: u64,
        detail: String,
    },

    /// The file was written by a format version this build does not read.
    #[error("{path}: unsupported format version {found} (this build reads {supported})")]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// A key longer than the configured limit.
    #[error("key of {size_bytes} bytes exceeds the limit of {size_bytes_max} bytes")]
    KeyTooLarge {
        size_bytes: usize,
        size_bytes_max: usize,
    },

    /// A value longer than the configured limit.
    #[error("value of {size_bytes} bytes exceeds the limit of {size_bytes_max} bytes")]
    ValueTooLarge {
        size_bytes: usize,
        size_bytes_max: usize,
    },

    /// Caller metadata longer than the configured limit.
    #[error("metadata of {size_bytes} bytes exceeds the limit of {size_bytes_max} bytes")]
    MetadataTooLarge {
        size_bytes: usize,
        size_bytes_max: usize,
    },

    /// An empty key: keys must have at least one byte.
    #[error("empty key")]
    EmptyKey,

    /// An option value that makes no sense, named by field.
    #[error("invalid option {field}: {detail}")]
    InvalidOption { field: &'static str, detail: String },

    /// The requested I/O backend cannot run here (e.g. io_uring blocked by seccomp).
    #[error("I/O backend {backend} unavailable: {detail}")]
    BackendUnavailable {
        backend: &'static str,
        detail: String,
    },

    /// The database directory is locked by another process.
    #[error("database {path} is locked by another process")]
    Locked { path: PathBuf },

    /// A background task (flush, compaction, log writer) failed earlier; the database
    /// refuses writes rather than acknowledge what it may not persist.
    #[error("database is read-only after a background error: {0}")]
    Poisoned(String),

    /// The database was closed.
    #[error("database is closed")]
    Closed,

    /// A commit log record (one write batch) longer than `WalOptions::record_size_bytes_max`.
    #[error("log record of {size_bytes} bytes exceeds the limit of {size_bytes_max} bytes")]
    RecordTooLarge {
        size_bytes: usize,
        size_bytes_max: usize,
    },
}

impl Error {
    /// Wraps an `std::io::Error` with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for a [`Error::Corruption`].
    pub fn corruption(
        what: &'static str,
        path: impl Into<PathBuf>,
        offset: u64,
        detail: impl Into<String>,
    ) -> Self {
        Error::Corruption {
            what,
            path: path.into(),
            offset,
            detail: detail.into(),
        }
    }
}

/// The engine's result alias.
pub type Result<T> = std::result::Result<T, Error>;
