//! The crate's one error type.

use std::path::PathBuf;

/// Everything `loadgen` can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage engine refused an operation.
    #[error("engine: {0}")]
    Engine(#[from] engine::Error),

    /// The cluster library refused (an embedded node failed to start or stop).
    #[error("cluster: {0}")]
    Cluster(#[from] cluster::Error),

    /// An option of the embedded cluster or the routing policy that cannot be used.
    #[error("{field}: {detail}")]
    InvalidOption { field: String, detail: String },

    /// A node's `CLUSTER.TOPOLOGY` could not be fetched or read.
    #[error("cluster topology from {address}: {detail}")]
    Topology { address: String, detail: String },

    /// An operating-system I/O error, with what it happened on.
    #[error("I/O error on {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// A flag has a value that cannot be used.
    #[error("--{flag}: {detail}")]
    InvalidFlag { flag: &'static str, detail: String },

    /// A benchmark name this tool does not implement.
    #[error("unknown benchmark '{0}' (known: fillseq, fillrandom, overwrite, readrandom, readmissing, seekrandom, readseq, deleterandom)")]
    UnknownBenchmark(String),

    /// `--db` names a non-empty directory this tool did not create; it will not destroy it.
    #[error("refusing to destroy {path}: it is not empty and was not created by kvbench; remove it, pick another --db, or pass --use_existing_db")]
    NotOurDatabase { path: PathBuf },

    /// A benchmark thread panicked.
    #[error("a benchmark thread panicked")]
    ThreadPanicked,

    /// A workload property has a value that cannot be used (YCSB would throw or misbehave).
    #[error("workload property {name}={value:?}: {detail}")]
    InvalidProperty {
        name: String,
        value: String,
        detail: String,
    },

    /// A `-p` override is not of the form `name=value`.
    #[error("-p {0:?}: expected name=value")]
    MalformedPropertyOverride(String),

    /// All operation proportions are zero (or absent and overridden to zero): nothing to run.
    #[error("the operation proportions (readproportion, updateproportion, insertproportion, scanproportion, readmodifywriteproportion) sum to {sum}; at least one must be positive")]
    NoOperations { sum: f64 },

    /// More inserts are in flight than the acknowledgement window holds.
    #[error(
        "too many unacknowledged insert keys (window of {window_size} keys is full at key {key})"
    )]
    TooManyUnacknowledgedInserts { key: i64, window_size: usize },

    /// The key chooser kept drawing keys that have not been inserted yet.
    #[error("no inserted key drawn in {attempts} attempts (highest acknowledged key: {highest_acknowledged})")]
    KeyChooserStalled {
        attempts: u32,
        highest_acknowledged: i64,
    },

    /// An HdrHistogram interval log (`.hlog`) that cannot be written or read back.
    #[error("histogram log {context}: {detail}")]
    HistogramLog { context: String, detail: String },

    /// A CSV result file that cannot be written.
    #[error("CSV file {path}: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },

    /// A run name that cannot name a results directory.
    #[error("run name '{name}': {detail}")]
    InvalidRunName { name: String, detail: &'static str },

    /// A `--hosts` entry that is not a usable address.
    #[error("target {target}: {detail}")]
    InvalidTarget { target: String, detail: String },

    /// A target that cannot be connected to.
    // The I/O error is in the message, not a `source`, so `{:#}` does not print it twice.
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        target: String,
        reason: std::io::Error,
    },

    /// A connection that failed during a run: closed by the server, a protocol error, no
    /// reply in time.
    #[error("connection to {target}: {detail}")]
    Connection { target: String, detail: String },

    /// A workload the target cannot run (scans on plain Redis), or a run setting that
    /// cannot work.
    #[error("{0}")]
    Unsupported(String),

    /// Workload properties refused in strict mode (`--lenient` lets them through).
    #[error("{0} (pass --lenient to run anyway)")]
    StrictWorkload(String),

    /// No target given, and no other way to get one.
    #[error("no --hosts given")]
    NoHosts,

    /// The run stopped before doing what was asked: its figures are partial.
    #[error("partial run: {0}")]
    PartialRun(String),

    /// A staleness stamp that cannot be written into a value or read back from one.
    #[error("value stamp: {detail}")]
    ValueStamp { detail: String },

    /// `kvbench compare` was given a file it cannot use (exit status 2).
    #[error("{path}: {detail}")]
    CompareInput { path: PathBuf, detail: String },

    /// `kvbench compare` found regressions (exit status 1); the diff is on stdout.
    #[error("{count} regression(s) beyond tolerance")]
    Regressions { count: usize },
}

impl Error {
    /// The process exit status for this error: 2 for unusable input to `kvbench compare`
    /// (as for command-line errors), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::CompareInput { .. } => 2,
            _ => 1,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
