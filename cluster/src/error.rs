//! The cluster crate's one error type.

/// Everything the node's library can fail with. Variants are structured so a client or an
/// operator can tell what was needed and what came back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A storage engine error on this node.
    #[error("storage: {0}")]
    Engine(#[from] engine::Error),

    /// Malformed client protocol input; the connection gets a RESP error.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// A frame, array, bulk string or inline command over its configured limit.
    #[error("{what} of {size} exceeds the limit of {limit}")]
    LimitExceeded {
        what: &'static str,
        size: usize,
        limit: usize,
    },

    /// A ring or placement request that cannot be satisfied (e.g. more replicas than nodes).
    #[error("placement: {0}")]
    Placement(String),

    /// Fewer replicas answered than the request needed.
    #[error("quorum not reached: needed {needed} {what}, got {got}")]
    QuorumNotReached {
        what: &'static str,
        needed: usize,
        got: usize,
    },

    /// Bytes that should hold an encoded version (vector clock, sibling set) do not.
    #[error("corrupt version data: {0}")]
    CorruptVersion(String),

    /// A configuration value that makes no sense, named by field.
    #[error("invalid configuration {field}: {detail}")]
    InvalidConfig { field: String, detail: String },

    /// A well-formed request the node refuses (unknown command, wrong arity, bad option).
    /// The text is the complete Redis-style error reply, code word first (`ERR ...`,
    /// `NOPROTO ...`); unlike [`Error::Protocol`] the connection stays open.
    #[error("{0}")]
    Command(String),

    /// Malformed or unexpected node-to-node protocol input; the connection is closed.
    #[error("peer protocol error: {0}")]
    PeerProtocol(String),

    /// A peer call got no reply in time (the request or reply was lost, delayed, or the peer
    /// is down or partitioned away).
    #[error("peer {peer} did not reply within {after_ms} ms")]
    PeerTimeout { peer: String, after_ms: u64 },

    /// The outbound queue to a peer is full; the message was not queued.
    #[error("outbound queue to peer {peer} is full ({capacity} messages)")]
    PeerQueueFull { peer: String, capacity: usize },

    /// A peer that is not in the transport's peer table.
    #[error("unknown peer {peer}")]
    UnknownPeer { peer: String },

    /// The peer cannot be reached or refused the connection; `detail` says why.
    #[error("peer {peer} unavailable: {detail}")]
    PeerUnavailable { peer: String, detail: String },

    /// A network I/O error outside any one peer (binding the listen address).
    #[error("network {what}: {source}")]
    Network {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// An operating-system I/O failure outside the engine (binding a socket, accepting),
    /// with what the node was doing.
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },

    /// The node is shutting down or a background task it needed has stopped.
    #[error("node stopped: {0}")]
    Stopped(String),

    /// A coordinated request got fewer replica answers than its consistency level needs;
    /// `failures` says what each replica that did not count answered (error, timeout).
    #[error("quorum not reached: needed {needed} {what}, got {got} ({failures})")]
    QuorumFailed {
        what: &'static str,
        needed: usize,
        got: usize,
        failures: String,
    },
}

/// The cluster crate's result alias.
pub type Result<T> = std::result::Result<T, Error>;
