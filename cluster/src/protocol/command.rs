//! Typed client requests parsed from a [`RequestFrame`](super::RequestFrame).
//!
//! Command names are case-insensitive. Errors are [`Error::Command`] carrying Redis's exact
//! reply text where Redis has one (`ERR wrong number of arguments for 'get' command`,
//! `ERR unknown command 'foo', with args beginning with: 'a' `), so client libraries and
//! people who know Redis read them as usual.
//!
//! Beyond the Redis subset the node speaks its own commands:
//!
//! ```text
//! CONSISTENCY <level> | R <n> [W <n>] | W <n> [R <n>]     connection default
//! KV.GET  key [CL <level> | R <n>]                        -> [context, [value|nil, ...]]
//! KV.PUT  key value [CONTEXT ctx] [CL <level> | W <n>]
//! KV.DEL  key [CONTEXT ctx] [CL <level> | W <n>]
//! KV.SCAN start_key count [END end_key] [CL <level> | R <n>]
//! CLUSTER.TOPOLOGY
//! CLUSTER.MEMBERS                                          gossip membership, one line each
//! CLUSTER.JOIN id dc client_addr peer_addr [WEIGHT w] | CLUSTER.LEAVE | CLUSTER.REMOVE id
//! LINK.GET | LINK.SET ... | LINK.PARTITION ... | LINK.HEAL ... | LINK.RESET  (see `link`)
//! ANTIENTROPY.RUN                                          one repair round now
//! ANTIENTROPY.ROOTS                                        Merkle roots, one line per range
//! ```
//! where `<level>` is ONE, QUORUM, ALL, LOCAL_QUORUM or EACH_QUORUM.

mod consistency;
mod custom;
pub mod link;
mod redis;
mod scaling;

#[cfg(test)]
mod tests;

pub use consistency::Consistency;

use crate::net::LinkChange;
use crate::protocol::Limits;
use crate::{Error, Result};

/// A client request, keys and values as raw bytes (binary safe).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `PING [message]`: `+PONG`, or the message as a bulk string.
    Ping { message: Option<Vec<u8>> },
    /// `ECHO message`.
    Echo { message: Vec<u8> },
    /// `GET key`: the Redis view of a key (siblings resolved by last-write-wins).
    Get { key: Vec<u8> },
    /// `SET key value` without options (TTL and conditional options are refused).
    Set { key: Vec<u8>, value: Vec<u8> },
    /// `DEL key [key ...]`.
    Delete { keys: Vec<Vec<u8>> },
    /// `EXISTS key [key ...]`.
    Exists { keys: Vec<Vec<u8>> },
    /// `MGET key [key ...]`.
    MultiGet { keys: Vec<Vec<u8>> },
    /// `INFO [section ...]`.
    Info { sections: Vec<String> },
    /// `COMMAND [COUNT | DOCS name... | INFO name... | LIST]`.
    Command(CommandQuery),
    /// `CONFIG GET pattern [pattern ...]`, sent by redis-benchmark at startup.
    ConfigGet { patterns: Vec<String> },
    /// `CLIENT <subcommand>`.
    Client(ClientRequest),
    /// `SELECT 0`; any other database is refused at parse time.
    Select,
    /// `HELLO [2 [AUTH user password] [SETNAME name]]`; protocol 3 is refused with
    /// `NOPROTO` at parse time, so clients fall back to RESP2.
    Hello {
        protocol_version: Option<u32>,
        credentials: Option<Credentials>,
        client_name: Option<Vec<u8>>,
    },
    /// `QUIT`: reply `+OK`, then close.
    Quit,
    /// `AUTH [username] password`.
    Auth(Credentials),
    /// `CONSISTENCY ...`: sets the connection's default consistency.
    SetConsistency(Consistency),
    /// `KV.GET`: every sibling plus the causal context to write back with.
    KvGet {
        key: Vec<u8>,
        consistency: Option<Consistency>,
    },
    /// `KV.PUT`: a write that supersedes the versions named by `context`.
    KvPut {
        key: Vec<u8>,
        value: Vec<u8>,
        context: Option<Vec<u8>>,
        consistency: Option<Consistency>,
    },
    /// `KV.DEL`: writes a tombstone superseding the versions named by `context`.
    KvDelete {
        key: Vec<u8>,
        context: Option<Vec<u8>>,
        consistency: Option<Consistency>,
    },
    /// `KV.SCAN`: up to `count` keys from `start_key` (inclusive) to `end_key` (exclusive).
    KvScan {
        start_key: Vec<u8>,
        count: u32,
        end_key: Option<Vec<u8>>,
        consistency: Option<Consistency>,
    },
    /// `CLUSTER.TOPOLOGY`: nodes, datacenters and tokens.
    ClusterTopology,
    /// `CLUSTER.MEMBERS`: the gossip membership table as this node sees it.
    ClusterMembers,
    /// `LINK.GET`: the link emulator's settings on this node, one line per default,
    /// datacenter-pair and node-pair override, then the partitions.
    LinkGet,
    /// `LINK.SET`, `LINK.PARTITION`, `LINK.HEAL`, `LINK.RESET`: a change to the link emulator,
    /// applied on every member unless `local` (a trailing `LOCAL`). Syntax in
    /// [`link`].
    LinkUpdate { change: LinkChange, local: bool },
    /// `LINK.STATS` (`reset` false): the delays this node's link emulator saw of the WARS
    /// messages, one line per kind, scope and measure (see [`crate::net::links::stats`]);
    /// `LINK.STATS RESET` forgets them.
    LinkStats { reset: bool },
    /// `CLUSTER.JOIN`, `CLUSTER.LEAVE`, `CLUSTER.REMOVE`: a ring change driven by this
    /// node (see [`crate::scaling`]); `CLUSTER.CLEANUP [COMPACT]`: this node drops the keys
    /// it no longer replicates ([`crate::scaling::cleanup`]).
    ClusterChange(crate::scaling::ScalingRequest),
    /// `ANTIENTROPY.RUN` (`run` true: a round now, its summary) or `ANTIENTROPY.ROOTS`
    /// (this node's Merkle roots per range).
    AntiEntropy { run: bool },
}

/// `AUTH` / `HELLO AUTH` credentials; no username means Redis's `default` user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: Option<Vec<u8>>,
    pub password: Vec<u8>,
}

/// The forms of `COMMAND` clients send; redis-cli 7 sends `COMMAND DOCS` at startup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandQuery {
    /// Bare `COMMAND`.
    All,
    /// `COMMAND COUNT`.
    Count,
    /// `COMMAND DOCS [name ...]`.
    Docs { names: Vec<String> },
    /// `COMMAND INFO [name ...]`.
    Info { names: Vec<String> },
    /// `COMMAND LIST`.
    List,
}

/// `CLIENT` subcommands; redis-py sends `CLIENT SETINFO` on connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRequest {
    /// `CLIENT SETNAME name` (empty clears it).
    SetName { name: Vec<u8> },
    /// `CLIENT GETNAME`.
    GetName,
    /// `CLIENT SETINFO LIB-NAME|LIB-VER value`; `attribute` is upper-cased.
    SetInfo { attribute: String, value: Vec<u8> },
    /// `CLIENT ID`.
    Id,
}

impl Request {
    /// Parses a decoded frame, checking arity and options against Redis's rules and
    /// numeric options against `limits`.
    pub fn parse(frame: Vec<Vec<u8>>, limits: &Limits) -> Result<Request> {
        let Some(name) = frame.first() else {
            return Err(Error::Command("ERR empty command".into()));
        };
        let upper = name.to_ascii_uppercase();
        let Some(&(canonical, minimum, maximum)) = ARITY
            .iter()
            .find(|(canonical, ..)| canonical.as_bytes().eq_ignore_ascii_case(&upper))
        else {
            return Err(unknown_command(&frame));
        };
        if frame.len() < minimum || frame.len() > maximum {
            return Err(arity_error(canonical));
        }
        let mut arguments = frame.into_iter();
        arguments.next();
        match canonical {
            "kv.get" | "kv.put" | "kv.del" | "kv.scan" | "consistency" | "cluster.topology"
            | "cluster.members" | "link.get" => custom::parse(canonical, arguments, limits),
            "link.stats" => match arguments.next() {
                None => Ok(Request::LinkStats { reset: false }),
                Some(word) if word.eq_ignore_ascii_case(b"reset") => {
                    Ok(Request::LinkStats { reset: true })
                }
                Some(word) => Err(Error::Command(format!(
                    "ERR LINK.STATS takes nothing or RESET, got '{}'",
                    String::from_utf8_lossy(&word)
                ))),
            },
            "antientropy.run" => Ok(Request::AntiEntropy { run: true }),
            "antientropy.roots" => Ok(Request::AntiEntropy { run: false }),
            "link.set" | "link.partition" | "link.heal" | "link.reset" => {
                link::parse(canonical, arguments.map(text).collect::<Result<_>>()?)
            }
            "cluster.join" | "cluster.leave" | "cluster.remove" | "cluster.cleanup" => {
                scaling::parse(canonical, arguments)
            }
            _ => redis::parse(canonical, arguments),
        }
    }

    /// The command's canonical lower-case name, for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ping { .. } => "ping",
            Self::Echo { .. } => "echo",
            Self::Get { .. } => "get",
            Self::Set { .. } => "set",
            Self::Delete { .. } => "del",
            Self::Exists { .. } => "exists",
            Self::MultiGet { .. } => "mget",
            Self::Info { .. } => "info",
            Self::Command(_) => "command",
            Self::ConfigGet { .. } => "config",
            Self::Client(_) => "client",
            Self::Select => "select",
            Self::Hello { .. } => "hello",
            Self::Quit => "quit",
            Self::Auth(_) => "auth",
            Self::SetConsistency(_) => "consistency",
            Self::KvGet { .. } => "kv.get",
            Self::KvPut { .. } => "kv.put",
            Self::KvDelete { .. } => "kv.del",
            Self::KvScan { .. } => "kv.scan",
            Self::ClusterTopology => "cluster.topology",
            Self::ClusterMembers => "cluster.members",
            Self::LinkGet => "link.get",
            Self::LinkStats { .. } => "link.stats",
            Self::LinkUpdate { change, .. } => change.command_name(),
            Self::ClusterChange(crate::scaling::ScalingRequest::Join(_)) => "cluster.join",
            Self::ClusterChange(crate::scaling::ScalingRequest::Leave) => "cluster.leave",
            Self::ClusterChange(crate::scaling::ScalingRequest::Remove(_)) => "cluster.remove",
            Self::ClusterChange(crate::scaling::ScalingRequest::Cleanup { .. }) => {
                "cluster.cleanup"
            }
            Self::AntiEntropy { run: true } => "antientropy.run",
            Self::AntiEntropy { run: false } => "antientropy.roots",
        }
    }
}

/// Canonical name, fewest and most arguments counting the name, as Redis's arity table.
const ARITY: &[(&str, usize, usize)] = &[
    ("get", 2, 2),
    ("set", 3, usize::MAX),
    ("mget", 2, usize::MAX),
    ("del", 2, usize::MAX),
    ("exists", 2, usize::MAX),
    ("ping", 1, 2),
    ("echo", 2, 2),
    ("info", 1, usize::MAX),
    ("command", 1, usize::MAX),
    ("config", 2, usize::MAX),
    ("client", 2, usize::MAX),
    ("select", 2, 2),
    ("hello", 1, usize::MAX),
    ("quit", 1, usize::MAX),
    ("auth", 2, usize::MAX),
    ("consistency", 2, 5),
    ("kv.get", 2, usize::MAX),
    ("kv.put", 3, usize::MAX),
    ("kv.del", 2, usize::MAX),
    ("kv.scan", 3, usize::MAX),
    ("cluster.topology", 1, 1),
    ("cluster.members", 1, 1),
    ("link.get", 1, 1),
    ("link.stats", 1, 2),
    ("link.set", 4, usize::MAX),
    ("link.partition", 3, usize::MAX),
    ("link.heal", 1, usize::MAX),
    ("link.reset", 1, 2),
    ("cluster.join", 5, 7),
    ("cluster.leave", 1, 1),
    ("cluster.remove", 2, 2),
    ("cluster.cleanup", 1, 2),
    ("antientropy.run", 1, 1),
    ("antientropy.roots", 1, 1),
];

/// Redis's text: `ERR wrong number of arguments for 'get' command` (subcommands as
/// `config|get`).
pub(crate) fn arity_error(canonical: &str) -> Error {
    Error::Command(format!(
        "ERR wrong number of arguments for '{canonical}' command"
    ))
}

pub(crate) fn syntax_error(detail: &str) -> Error {
    if detail.is_empty() {
        Error::Command("ERR syntax error".into())
    } else {
        Error::Command(format!("ERR syntax error: {detail}"))
    }
}

pub(crate) fn not_an_integer() -> Error {
    Error::Command("ERR value is not an integer or out of range".into())
}

/// Redis's text: `ERR unknown subcommand 'foo'. Try CONFIG HELP.`
pub(crate) fn unknown_subcommand(subcommand: &[u8], container: &str) -> Error {
    Error::Command(format!(
        "ERR unknown subcommand '{}'. Try {container} HELP.",
        lossy_prefix(subcommand, 128)
    ))
}

/// Redis's text: each argument quoted and followed by a space, until 128 bytes are shown.
fn unknown_command(frame: &[Vec<u8>]) -> Error {
    let mut shown = String::new();
    for argument in frame.iter().skip(1) {
        if shown.len() >= 128 {
            break;
        }
        let room = 128 - shown.len();
        shown.push('\'');
        shown.push_str(&lossy_prefix(argument, room));
        shown.push_str("' ");
    }
    let name = frame.first().map(Vec::as_slice).unwrap_or_default();
    Error::Command(format!(
        "ERR unknown command '{}', with args beginning with: {shown}",
        lossy_prefix(name, 128)
    ))
}

/// The first `length_max` bytes as text, invalid UTF-8 replaced, CR/LF as spaces (Redis
/// sanitises error replies the same way).
pub(crate) fn lossy_prefix(bytes: &[u8], length_max: usize) -> String {
    let prefix = &bytes[..bytes.len().min(length_max)];
    String::from_utf8_lossy(prefix).replace(['\r', '\n'], " ")
}

/// Argument text for words the node interprets (section names, datacenter names).
pub(crate) fn text(argument: Vec<u8>) -> Result<String> {
    String::from_utf8(argument).map_err(|_| syntax_error("argument is not valid UTF-8"))
}
