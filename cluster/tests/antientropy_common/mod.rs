//! Helpers shared by the anti-entropy process tests: a RESP client that reads any reply,
//! INFO fields, Merkle roots per range, waits with bounds.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use cluster::handoff::HandoffMode;
use cluster::launcher::ClusterSpec;
use cluster::ring::{Member, Ring};

/// Bound on any one client reply (an `ANTIENTROPY.RUN` over 10k keys included).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Bound on waiting for background work (hint delivery, repair rounds, convergence).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// A decoded RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<String>),
    Array(Vec<Reply>),
}

impl Reply {
    /// The bulk strings of an array reply; panics (with the reply) on anything else.
    pub fn lines(self) -> Vec<String> {
        match self {
            Reply::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Reply::Bulk(Some(text)) => text,
                    other => panic!("expected bulk strings, got {other:?}"),
                })
                .collect(),
            other => panic!("expected an array, got {other:?}"),
        }
    }
}

/// One client connection.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(address: SocketAddr) -> Client {
        let stream = TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    pub fn command(&mut self, arguments: &[&str]) -> Reply {
        let request = super::common::encode_command(arguments);
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
        self.reply()
    }

    /// A command expected to succeed with `+OK`.
    pub fn ok(&mut self, arguments: &[&str]) {
        let reply = self.command(arguments);
        assert_eq!(reply, Reply::Simple("OK".into()), "{arguments:?}");
    }

    fn reply(&mut self) -> Reply {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("reply");
        let line = line.trim_end();
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Integer(rest.parse().expect("integer")),
            "$" if rest == "-1" => Reply::Bulk(None),
            "$" => {
                let length: usize = rest.parse().expect("bulk length");
                let mut payload = vec![0; length + 2];
                self.reader.read_exact(&mut payload).expect("bulk payload");
                payload.truncate(length);
                Reply::Bulk(Some(String::from_utf8_lossy(&payload).into_owned()))
            }
            "*" if rest == "-1" => Reply::Array(Vec::new()),
            "*" => {
                let count: usize = rest.parse().expect("array length");
                Reply::Array((0..count).map(|_| self.reply()).collect())
            }
            other => panic!("unknown reply type {other}: {line}"),
        }
    }
}

/// An INFO field of the node at `address`, as a number.
pub fn info_field(address: SocketAddr, field: &str) -> u64 {
    let Reply::Bulk(Some(text)) = Client::connect(address).command(&["INFO"]) else {
        panic!("INFO is a bulk string");
    };
    super::common::info_number(&text, field)
}

/// The node's Merkle roots: `"START END"` to `"root R keys K"`.
pub fn roots(address: SocketAddr) -> BTreeMap<String, String> {
    let lines = Client::connect(address)
        .command(&["ANTIENTROPY.ROOTS"])
        .lines();
    lines[1..]
        .iter()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            (
                format!("{} {}", words[0], words[1]),
                format!("{} {} {} {}", words[2], words[3], words[4], words[5]),
            )
        })
        .collect()
}

/// Ranges held by more than one of `addresses` whose roots differ: `[]` when converged.
pub fn differing_ranges(addresses: &[SocketAddr]) -> Vec<String> {
    let all: Vec<BTreeMap<String, String>> = addresses.iter().map(|a| roots(*a)).collect();
    let mut differing = Vec::new();
    for (index, node) in all.iter().enumerate() {
        for (range, root) in node {
            for other in &all[index + 1..] {
                if other.get(range).is_some_and(|theirs| theirs != root) {
                    differing.push(format!("{range}: {root} vs {}", other[range]));
                }
            }
        }
    }
    differing
}

/// `ANTIENTROPY.RUN` on the node at `address`: its summary lines.
pub fn run_round(address: SocketAddr) -> Vec<String> {
    Client::connect(address)
        .command(&["ANTIENTROPY.RUN"])
        .lines()
}

/// Waits (bounded) until `done`, polling every 100 ms; returns how long it took.
pub fn wait_until(what: &str, done: impl FnMut() -> bool) -> Duration {
    super::common::wait_until_within(what, SETTLE_TIMEOUT, Duration::from_millis(100), done)
}

/// A cluster of `datacenters` x `per_datacenter` nodes, N=3 unless changed, quorum,
/// anti-entropy on with background rounds every `interval_ms` (0: only on demand).
pub fn spec(
    directory: &std::path::Path,
    datacenters: usize,
    per_datacenter: usize,
    interval_ms: u64,
) -> ClusterSpec {
    let mut spec =
        super::common::hinted_spec(directory, datacenters, per_datacenter, HandoffMode::Sloppy);
    spec.base.antientropy.interval_ms = interval_ms;
    spec
}

/// Writes `keys` keys (`{prefix}{i}` = `v{i}`) through `address` on `writers` connections.
pub fn write_keys(address: &[SocketAddr], prefix: &str, keys: usize, writers: usize) {
    std::thread::scope(|scope| {
        for writer in 0..writers {
            let address = address[writer % address.len()];
            scope.spawn(move || {
                let mut client = Client::connect(address);
                for index in (writer..keys).step_by(writers) {
                    let key = format!("{prefix}{index}");
                    client.ok(&["SET", &key, &format!("v{index}")]);
                }
            });
        }
    });
}

/// The ring of nodes n1-n4 in dc1, placed as `spec`'s nodes place keys: the ring after n4
/// joins the three nodes `spec(..., 1, 4, ...)` starts.
pub fn four_node_ring(spec: &ClusterSpec) -> Ring {
    Ring::new(
        ["n1", "n2", "n3", "n4"]
            .iter()
            .map(|id| Member::new(*id, "dc1")),
        spec.base.vnodes_per_weight,
    )
    .expect("four members make a ring")
}
