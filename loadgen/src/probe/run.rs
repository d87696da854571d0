//! The probe driver: `concurrency` workers on one current-thread runtime, each writing a
//! probe key and reading it back at every delay on connections of its own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use cluster::protocol::resp::{decode_reply, encode, RespValue};
use cluster::protocol::Limits;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{classify, Coordinators, Observation, ProbeOptions, ProbeReport};
use crate::routing::{fetch_topology, Topology};
use crate::{Error, Result};

/// Most candidate names tried to find a key that neither coordinator replicates.
const KEY_ATTEMPTS_MAX: usize = 10_000;

/// One probe: its key, value, and the node indexes (into the address list) of its writer
/// and reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProbePlan {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub writer: usize,
    pub reader: usize,
    /// Whether writer or reader is a replica of the key.
    pub replica_coordinated: bool,
}

/// Plans every probe from the cluster's ring: `replicas_of(key)` gives the key's replica
/// node indexes.
pub(crate) fn plan(
    options: &ProbeOptions,
    nodes: usize,
    replicas_of: &dyn Fn(&[u8]) -> Vec<usize>,
) -> Result<Vec<ProbePlan>> {
    if nodes < 2 {
        return Err(Error::InvalidOption {
            field: "hosts".into(),
            detail: "the probe needs two nodes: it reads through a different coordinator".into(),
        });
    }
    let mut rng = StdRng::seed_from_u64(options.seed);
    let all: Vec<usize> = (0..nodes).collect();
    let mut plans = Vec::with_capacity(options.count);
    for index in 0..options.count {
        let mut chosen = None;
        for attempt in 0..KEY_ATTEMPTS_MAX {
            let key = format!("probe:{}:{index}:{attempt}", options.seed).into_bytes();
            let replicas = replicas_of(&key);
            let outside: Vec<usize> = all
                .iter()
                .copied()
                .filter(|node| !replicas.contains(node))
                .collect();
            if options.coordinators == Coordinators::NonReplica && outside.len() >= 2 {
                let pair: Vec<usize> = outside.choose_multiple(&mut rng, 2).copied().collect();
                chosen = Some((key, pair[0], pair[1], false));
                break;
            }
            if options.coordinators == Coordinators::Any || nodes < replicas.len() + 2 {
                let pair: Vec<usize> = all.choose_multiple(&mut rng, 2).copied().collect();
                let replica = replicas.contains(&pair[0]) || replicas.contains(&pair[1]);
                chosen = Some((key, pair[0], pair[1], replica));
                break;
            }
        }
        let Some((key, writer, reader, replica_coordinated)) = chosen else {
            return Err(Error::InvalidOption {
                field: "probe.coordinators".into(),
                detail: "found no key that two nodes do not replicate".into(),
            });
        };
        let mut value = format!("probe {} {index} ", options.seed).into_bytes();
        value.resize(options.value_bytes.max(value.len()), b'x');
        plans.push(ProbePlan {
            key,
            value,
            writer,
            reader,
            replica_coordinated,
        });
    }
    Ok(plans)
}

/// Runs the probes against nodes at `addresses` (each node's client address), reading the
/// ring from the first.
pub fn run_probes(addresses: &[SocketAddr], options: &ProbeOptions) -> Result<ProbeReport> {
    options.validate()?;
    let first = *addresses.first().ok_or_else(|| Error::InvalidOption {
        field: "hosts".into(),
        detail: "no node address given".into(),
    })?;
    let topology = fetch_topology(first)?;
    let index_of = node_indexes(&topology, addresses);
    let replicas_of = |key: &[u8]| -> Vec<usize> {
        topology
            .replicas(key)
            .iter()
            .filter_map(|node| index_of.get(node.as_str()).copied())
            .collect()
    };
    let plans = plan(options, addresses.len(), &replicas_of)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            context: "starting the probe's runtime".into(),
            source,
        })?;
    runtime.block_on(drive(addresses.to_vec(), plans, options.clone()))
}

/// Node id -> index into `addresses`, from the members' client addresses; members without
/// one are matched by position.
fn node_indexes(topology: &Topology, addresses: &[SocketAddr]) -> HashMap<String, usize> {
    let mut map = HashMap::new();
    for (position, member) in topology.members().iter().enumerate() {
        let index = member
            .client_address
            .and_then(|address| addresses.iter().position(|a| *a == address))
            .or((position < addresses.len()).then_some(position));
        if let Some(index) = index {
            map.insert(member.id.clone(), index);
        }
    }
    map
}

async fn drive(
    addresses: Vec<SocketAddr>,
    plans: Vec<ProbePlan>,
    options: ProbeOptions,
) -> Result<ProbeReport> {
    let start = Instant::now();
    let workers = options.concurrency.min(plans.len());
    let mut tasks = JoinSet::new();
    for worker in 0..workers {
        let mine: Vec<(usize, ProbePlan)> = plans
            .iter()
            .enumerate()
            .skip(worker)
            .step_by(workers)
            .map(|(index, plan)| (index, plan.clone()))
            .collect();
        let (addresses, options) = (addresses.clone(), options.clone());
        tasks.spawn(worker_loop(addresses, mine, options, start));
    }
    let mut report = ProbeReport::new(&options.delays_ms);
    while let Some(joined) = tasks.join_next().await {
        let worker = joined.map_err(|error| Error::InvalidOption {
            field: "probe".into(),
            detail: format!("a probe worker failed: {error}"),
        })?;
        report.merge(&worker);
    }
    Ok(report)
}

async fn worker_loop(
    addresses: Vec<SocketAddr>,
    plans: Vec<(usize, ProbePlan)>,
    options: ProbeOptions,
    start: Instant,
) -> ProbeReport {
    let timeout = Duration::from_millis(options.timeout_ms);
    let mut report = ProbeReport::new(&options.delays_ms);
    // (node, slot) -> connection; slot 0 writes, slot 1 + i reads at delay i.
    let mut connections: HashMap<(usize, usize), Connection> = HashMap::new();
    for (index, plan) in plans {
        if options.rate > 0.0 {
            tokio::time::sleep_until(start + Duration::from_secs_f64(index as f64 / options.rate))
                .await;
        }
        report.replica_coordinated += u64::from(plan.replica_coordinated);
        let write_quorum = options.write_quorum.to_string();
        let arguments: [&[u8]; 5] = [
            b"KV.PUT",
            &plan.key,
            &plan.value,
            b"W",
            write_quorum.as_bytes(),
        ];
        let sent = Instant::now();
        let written = call_on(
            &mut connections,
            &addresses,
            (plan.writer, 0),
            &arguments,
            timeout,
        )
        .await
        .and_then(|reply| match reply {
            RespValue::SimpleString(_) => Ok(()),
            RespValue::Error(text) => Err(text),
            other => Err(format!("unexpected reply {other:?}")),
        });
        let acknowledged = Instant::now();
        if written.is_err() {
            report.record_write(None);
            continue;
        }
        report.record_write(Some((acknowledged - sent).as_secs_f64() * 1000.0));
        let mut reads = JoinSet::new();
        for (delay_index, delay_ms) in options.delays_ms.iter().enumerate() {
            let slot = (plan.reader, 1 + delay_index);
            let connection = connections.remove(&slot);
            let (address, key, value) =
                (addresses[plan.reader], plan.key.clone(), plan.value.clone());
            let due = acknowledged + Duration::from_secs_f64(delay_ms / 1000.0);
            let read_quorum = options.read_quorum.to_string();
            reads.spawn(async move {
                let connection = match connection {
                    Some(connection) => Ok(connection),
                    None => Connection::open(address, timeout).await,
                };
                tokio::time::sleep_until(due).await;
                let started = Instant::now();
                let (connection, reply) = match connection {
                    Ok(mut connection) => {
                        let arguments: [&[u8]; 4] = [b"KV.GET", &key, b"R", read_quorum.as_bytes()];
                        let reply = connection.call(&arguments, timeout).await;
                        let keep = reply.is_ok();
                        (keep.then_some(connection), reply.and_then(read_values))
                    }
                    Err(error) => (None, Err(error)),
                };
                let observation = Observation {
                    delay_index,
                    started_ms: (started - acknowledged).as_secs_f64() * 1000.0,
                    outcome: classify(&value, &reply),
                };
                (slot, connection, observation)
            });
        }
        while let Some(Ok((slot, connection, observation))) = reads.join_next().await {
            if let Some(connection) = connection {
                connections.insert(slot, connection);
            }
            report.record(&observation);
        }
    }
    report
}

async fn call_on(
    connections: &mut HashMap<(usize, usize), Connection>,
    addresses: &[SocketAddr],
    slot: (usize, usize),
    arguments: &[&[u8]],
    timeout: Duration,
) -> std::result::Result<RespValue, String> {
    let mut connection = match connections.remove(&slot) {
        Some(connection) => connection,
        None => Connection::open(addresses[slot.0], timeout).await?,
    };
    let reply = connection.call(arguments, timeout).await;
    if reply.is_ok() {
        connections.insert(slot, connection);
    }
    reply
}

/// The values of a `KV.GET` reply (`[context, [value, ...]]`); an error reply is `Err`.
pub(crate) fn read_values(reply: RespValue) -> std::result::Result<Vec<Vec<u8>>, String> {
    match reply {
        RespValue::Error(text) => Err(text),
        RespValue::Array(Some(mut elements)) if elements.len() == 2 => match elements.pop() {
            Some(RespValue::Array(values)) => Ok(values
                .unwrap_or_default()
                .into_iter()
                .filter_map(|value| match value {
                    RespValue::BulkString(bytes) => bytes,
                    _ => None,
                })
                .collect()),
            other => Err(format!("unexpected KV.GET values {other:?}")),
        },
        RespValue::BulkString(None) => Ok(Vec::new()),
        other => Err(format!("unexpected KV.GET reply {other:?}")),
    }
}

/// One RESP connection; a call that fails leaves it unusable (the caller drops it).
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
    limits: Limits,
}

impl Connection {
    async fn open(address: SocketAddr, timeout: Duration) -> std::result::Result<Self, String> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| format!("connecting to {address} timed out"))?
            .map_err(|error| format!("connecting to {address}: {error}"))?;
        stream
            .set_nodelay(true)
            .map_err(|error| format!("{address}: {error}"))?;
        Ok(Connection {
            stream,
            buffer: Vec::new(),
            limits: Limits::default(),
        })
    }

    async fn call(
        &mut self,
        arguments: &[&[u8]],
        timeout: Duration,
    ) -> std::result::Result<RespValue, String> {
        let request = RespValue::array(arguments.iter().map(|a| RespValue::bulk(*a)).collect());
        let mut bytes = Vec::new();
        encode(&request, &mut bytes);
        let exchange = async {
            self.stream
                .write_all(&bytes)
                .await
                .map_err(|error| format!("write: {error}"))?;
            let mut chunk = [0u8; 16 * 1024];
            loop {
                match decode_reply(&self.buffer, &self.limits) {
                    Ok(Some((value, used))) => {
                        self.buffer.drain(..used);
                        return Ok(value);
                    }
                    Ok(None) => {}
                    Err(error) => return Err(format!("undecodable reply: {error}")),
                }
                let read = self
                    .stream
                    .read(&mut chunk)
                    .await
                    .map_err(|error| format!("read: {error}"))?;
                if read == 0 {
                    return Err("the server closed the connection".to_string());
                }
                self.buffer.extend_from_slice(&chunk[..read]);
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("no reply within {} ms", timeout.as_millis()))?
    }
}

/// Kept for tests: a read outcome from a raw reply.
#[cfg(test)]
pub(crate) fn outcome_of(written: &[u8], reply: RespValue) -> super::ReadOutcome {
    classify(written, &read_values(reply))
}
