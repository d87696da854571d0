//! Helpers shared by the process tests: the RESP request encoding, a text client, the
//! launcher spec they start from, fast gossip settings, INFO fields, bounded waits and a
//! stopped node's store.
//!
//! Each test file compiles this module on its own and uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cluster::config::NodeConfig;
use cluster::handoff::HandoffMode;
use cluster::launcher::ClusterSpec;
use cluster::membership::MembershipConfig;
use cluster::protocol::Consistency;
use cluster::ring::Replication;
use cluster::store::LocalStore;

/// Bound on any one client reply unless a test says otherwise.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// One command as a RESP array of bulk strings, the form every client sends.
pub fn encode_command(arguments: &[&str]) -> String {
    let mut request = format!("*{}\r\n", arguments.len());
    for argument in arguments {
        request.push_str(&format!("${}\r\n{argument}\r\n", argument.len()));
    }
    request
}

/// How a reply that is an array reads as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrays {
    /// Its header line (`*4`); its elements are left unread.
    Header,
    /// Its elements, each read as a reply, joined by newlines.
    Joined,
}

/// Reads one reply as text: simple replies and errors as their line (with the type byte),
/// a bulk string's payload bare, `(nil)` for a null bulk, an array as `arrays` says.
pub fn read_reply(reader: &mut impl BufRead, arrays: Arrays) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("reply");
    let line = line.trim_end().to_string();
    if let (Arrays::Joined, Some(count)) = (arrays, line.strip_prefix('*')) {
        let count: usize = count.parse().expect("array length");
        return (0..count)
            .map(|_| read_reply(reader, arrays))
            .collect::<Vec<_>>()
            .join("\n");
    }
    match line.strip_prefix('$') {
        Some("-1") => "(nil)".to_string(),
        Some(length) => {
            let length: usize = length.parse().expect("bulk length");
            let mut payload = vec![0; length + 2];
            reader.read_exact(&mut payload).expect("bulk payload");
            payload.truncate(length);
            String::from_utf8(payload).expect("utf-8 value")
        }
        None => line,
    }
}

/// Sends one command on a new connection (replies bounded by [`REPLY_TIMEOUT`]) and reads
/// its reply as text, arrays as `arrays` says.
pub fn command_with(address: SocketAddr, arguments: &[&str], arrays: Arrays) -> String {
    Client::connect(address).command_with(arguments, arrays)
}

/// Sends one command on a new connection and reads its reply as text, arrays joined.
pub fn command(address: SocketAddr, arguments: &[&str]) -> String {
    command_with(address, arguments, Arrays::Joined)
}

/// One client connection reading replies as text.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects with replies bounded by [`REPLY_TIMEOUT`].
    pub fn connect(address: SocketAddr) -> Client {
        Client::connect_with_timeout(address, REPLY_TIMEOUT)
    }

    /// Connects with replies bounded by `timeout`.
    pub fn connect_with_timeout(address: SocketAddr, timeout: Duration) -> Client {
        let stream = TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(timeout)).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    /// One command; its reply as text (see [`read_reply`]), arrays joined.
    pub fn command(&mut self, arguments: &[&str]) -> String {
        self.command_with(arguments, Arrays::Joined)
    }

    /// One command; its reply as text, arrays as `arrays` says.
    pub fn command_with(&mut self, arguments: &[&str], arrays: Arrays) -> String {
        let request = encode_command(arguments);
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
        read_reply(&mut self.reader, arrays)
    }
}

impl Client {
    /// Several commands sent in one write (a pipeline, as redis-benchmark -P sends them);
    /// their replies as text, in order, arrays joined.
    pub fn pipeline(&mut self, commands: &[Vec<String>]) -> Vec<String> {
        let request: String = commands
            .iter()
            .map(|arguments| {
                let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
                encode_command(&arguments)
            })
            .collect();
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
        commands
            .iter()
            .map(|_| read_reply(&mut self.reader, Arrays::Joined))
            .collect()
    }
}

/// `GET key{index}` for each index, as [`Client::pipeline`] takes them.
pub fn gets(indices: impl IntoIterator<Item = usize>) -> Vec<Vec<String>> {
    indices
        .into_iter()
        .map(|index| vec!["GET".to_string(), format!("key{index}")])
        .collect()
}

/// `name value` from a ring change's reply lines (`CLUSTER.JOIN` and the like); panics
/// naming the figure when it is missing.
pub fn figure(reply: &str, name: &str) -> u64 {
    reply
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {reply}"))
        .trim()
        .parse()
        .expect("a number")
}

/// `field:value` of an INFO text, as a number; panics naming the field when it is missing.
pub fn info_number(text: &str, field: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO has no {field}: {text}"))
        .trim()
        .parse()
        .expect("a number")
}

/// The launcher spec of `datacenters` x `per_datacenter` `kvnode` processes under
/// `directory` with `replication` and `consistency`, 16 vnodes per weight and a 1 s
/// request timeout.
pub fn process_spec(
    directory: &std::path::Path,
    datacenters: usize,
    per_datacenter: usize,
    replication: Replication,
    consistency: Consistency,
) -> ClusterSpec {
    let mut spec = ClusterSpec::new(
        env!("CARGO_BIN_EXE_kvnode").into(),
        directory.to_path_buf(),
        datacenters,
        per_datacenter,
    );
    spec.replication = replication;
    spec.default_consistency = consistency;
    spec.base.vnodes_per_weight = 16;
    spec.base.request_timeout_ms = 1000;
    spec
}

/// [`process_spec`] at N=3, QUORUM, with hinted handoff in `mode`: hints delivered every
/// 200 ms, a stopped node retried directly every 5 s (fewer direct attempts, each costing
/// half a request timeout).
pub fn hinted_spec(
    directory: &std::path::Path,
    datacenters: usize,
    per_datacenter: usize,
    mode: HandoffMode,
) -> ClusterSpec {
    let mut spec = process_spec(
        directory,
        datacenters,
        per_datacenter,
        Replication::Total(3),
        Consistency::Quorum,
    );
    spec.base.handoff = mode;
    spec.base.hints.delivery_interval_ms = 200;
    spec.base.hints.down_recheck_ms = 5000;
    spec
}

/// Gossip every 100 ms to `fanout` peers; suspect after 500 ms, down after 1 s, a leaver
/// forgotten after 1 s.
pub fn fast_gossip(fanout: usize) -> MembershipConfig {
    MembershipConfig {
        interval_ms: 100,
        fanout,
        suspect_after_ms: 500,
        down_after_ms: 1000,
        left_grace_ms: 1000,
    }
}

/// Waits until `done`, polling every `poll`; fails naming `what` after `bound`. Returns
/// how long it took.
pub fn wait_until_within(
    what: &str,
    bound: Duration,
    poll: Duration,
    mut done: impl FnMut() -> bool,
) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < bound,
            "{what} did not happen within {bound:?}"
        );
        std::thread::sleep(poll);
    }
    started.elapsed()
}

/// Opens a stopped node's data directory as its store.
pub fn open_store(config: &NodeConfig) -> LocalStore {
    LocalStore::open(
        &config.data_dir,
        config.engine.clone(),
        config.versions.clone(),
    )
    .expect("open the stopped node's store")
}
