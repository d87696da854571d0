//! What the link emulator saw of the WARS messages (`LINK.STATS`): per message kind (write
//! request, write ack, read request, read response) and per scope (the two ends in one
//! datacenter or not), a bounded uniform sample of one-way delays, so a run can feed the
//! WARS model (`kvbench predict --from-run`) the delays it actually had.
//!
//! Two measures:
//!
//! - **applied**: the delay the emulator drew for each delivered message (on the sending
//!   node). Only the emulated part: nothing of the machine.
//! - **transit**: from the moment the sending node's transport took the message (after the
//!   verdict, before its outbound queue) to the moment the receiving node's transport
//!   decoded it, on the receiving node. It includes the applied delay, the wait in the
//!   sender's outbound queue and timer, the loopback socket, and the receiver's read and
//!   decode. It does not include what happens before the transport (the coordinator's
//!   work before sending) or after the decode (the handler's queueing, the store's write
//!   or read), nor the coordinator's handling of a reply. Both ends must run in one
//!   process (the in-process cluster): the send time is kept in a process-wide table keyed
//!   by (sender, receiver, request id, kind), since the wire format carries no timestamp.
//!   Nodes in separate processes record no transit: a send is remembered only when its
//!   receiver's transport runs in this process ([`register_local`]), so a node talking to
//!   other processes never fills the table with messages nobody here will receive.
//!
//! Each of the 16 samples (4 kinds x 2 scopes x 2 measures) is a reservoir of
//! [`RESERVOIR_SAMPLES`] delays (Algorithm R), with the count and sum of every delay seen;
//! the send-time table holds at most [`IN_FLIGHT_MAX`] messages: when it fills, the ones
//! older than [`IN_FLIGHT_TTL`] are forgotten, and all of them if it is still half full
//! (the receivers are in other processes), so a send never scans it more than once per
//! [`IN_FLIGHT_MAX`] / 2 sends.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::{Endpoint, MessageKind};

/// Delays each reservoir keeps.
pub const RESERVOIR_SAMPLES: usize = 4096;
/// Most messages whose send time is remembered at once (process-wide).
pub const IN_FLIGHT_MAX: usize = 200_000;
/// How long a send time is kept for a message not received (lost, or sent to a process
/// that does not share the table).
pub const IN_FLIGHT_TTL: Duration = Duration::from_secs(30);

/// Whether a message's two ends are in one datacenter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Same datacenter.
    Intra,
    /// Different datacenters.
    Inter,
}

impl Scope {
    /// Both scopes.
    pub const ALL: [Scope; 2] = [Scope::Intra, Scope::Inter];

    /// `intra` or `inter`.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Intra => "intra",
            Scope::Inter => "inter",
        }
    }

    /// The scope of a message between these datacenters.
    pub fn of(from_datacenter: &str, to_datacenter: &str) -> Scope {
        if from_datacenter == to_datacenter {
            Scope::Intra
        } else {
            Scope::Inter
        }
    }
}

/// Which delay a sample holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    /// The emulator's draw.
    Applied,
    /// Sender's transport to receiver's decode.
    Transit,
}

impl Measure {
    /// Both measures.
    pub const ALL: [Measure; 2] = [Measure::Applied, Measure::Transit];

    /// `applied` or `transit`.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Applied => "applied",
            Measure::Transit => "transit",
        }
    }
}

/// A uniform sample of a stream of delays, with its count and sum.
#[derive(Debug, Clone, Default)]
pub struct Reservoir {
    /// Delays seen.
    pub count: u64,
    /// Their sum, in ms.
    pub sum_ms: f64,
    /// At most [`RESERVOIR_SAMPLES`] of them, in ms, each delay seen equally likely kept.
    pub samples: Vec<f64>,
    random: u64,
}

impl Reservoir {
    /// Adds one delay.
    pub fn record(&mut self, ms: f64) {
        self.count += 1;
        self.sum_ms += ms;
        if self.samples.len() < RESERVOIR_SAMPLES {
            self.samples.push(ms);
            return;
        }
        // xorshift64*: enough for choosing which slot to replace.
        if self.random == 0 {
            self.random = 0x9E37_79B9_7F4A_7C15;
        }
        self.random ^= self.random >> 12;
        self.random ^= self.random << 25;
        self.random ^= self.random >> 27;
        let draw = self.random.wrapping_mul(0x2545_F491_4F6C_DD1D) % self.count;
        if (draw as usize) < RESERVOIR_SAMPLES {
            self.samples[draw as usize] = ms;
        }
    }

    /// The mean delay seen, ms (0 when none).
    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_ms / self.count as f64
        }
    }
}

/// The emulator's delay samples; every method takes a short lock of one sample's own (one
/// lock per message sent; a map keyed by kind, scope and measure under one lock cost a
/// hash and contention on every message).
#[derive(Debug, Default)]
pub struct LinkStats {
    reservoirs: [Mutex<Reservoir>; 16],
}

/// The slot of one sample in [`LinkStats`]; `None` for [`MessageKind::Other`].
fn slot(kind: MessageKind, scope: Scope, measure: Measure) -> Option<usize> {
    let kind = match kind {
        MessageKind::WriteRequest => 0,
        MessageKind::WriteAck => 1,
        MessageKind::ReadRequest => 2,
        MessageKind::ReadResponse => 3,
        MessageKind::Other => return None,
    };
    let scope = match scope {
        Scope::Intra => 0,
        Scope::Inter => 1,
    };
    let measure = match measure {
        Measure::Applied => 0,
        Measure::Transit => 1,
    };
    Some(kind * 4 + scope * 2 + measure)
}

impl LinkStats {
    /// Adds one delay of a WARS `kind` message (other kinds are ignored).
    pub fn record(&self, kind: MessageKind, scope: Scope, measure: Measure, delay: Duration) {
        let Some(slot) = slot(kind, scope, measure) else {
            return;
        };
        self.reservoirs[slot]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(delay.as_secs_f64() * 1000.0);
    }

    /// A copy of one reservoir (empty when nothing was seen).
    pub fn reservoir(&self, kind: MessageKind, scope: Scope, measure: Measure) -> Reservoir {
        match slot(kind, scope, measure) {
            Some(slot) => self.reservoirs[slot]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            None => Reservoir::default(),
        }
    }

    /// Forgets everything seen.
    pub fn reset(&self) {
        for reservoir in &self.reservoirs {
            *reservoir.lock().unwrap_or_else(PoisonError::into_inner) = Reservoir::default();
        }
    }

    /// `LINK.STATS`: one line per sample that saw anything, in WARS order:
    /// `write_request intra transit count 1234 mean_ms 0.512 samples 0.100,0.731,...`.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for kind in MessageKind::ALL {
            for scope in Scope::ALL {
                for measure in Measure::ALL {
                    let reservoir = self.reservoir(kind, scope, measure);
                    if reservoir.count == 0 {
                        continue;
                    }
                    let samples: Vec<String> = reservoir
                        .samples
                        .iter()
                        .map(|ms| format!("{ms:.4}"))
                        .collect();
                    lines.push(format!(
                        "{} {} {} count {} mean_ms {:.4} samples {}",
                        kind.name(),
                        scope.name(),
                        measure.name(),
                        reservoir.count,
                        reservoir.mean_ms(),
                        samples.join(",")
                    ));
                }
            }
        }
        lines
    }
}

/// Send times of messages in flight, shared by every node of this process.
#[derive(Default)]
struct InFlight {
    sent: HashMap<(u64, u64, u64, MessageKind), (Instant, Scope)>,
}

fn in_flight() -> &'static Mutex<InFlight> {
    static TABLE: OnceLock<Mutex<InFlight>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(InFlight::default()))
}

/// FNV-1a of a node name.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Nodes (by name hash) whose transports run in this process, with how many of each.
fn local_nodes() -> &'static RwLock<HashMap<u64, usize>> {
    static NODES: OnceLock<RwLock<HashMap<u64, usize>>> = OnceLock::new();
    NODES.get_or_init(|| RwLock::new(HashMap::new()))
}

fn is_local(hash: u64) -> bool {
    local_nodes()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key(&hash)
}

/// A node's transport running in this process: messages to it are timed (transit) while
/// this is held.
#[derive(Debug)]
pub struct LocalNode {
    hash: u64,
}

/// Says that `node`'s transport runs in this process, until the returned value is dropped.
pub fn register_local(node: &str) -> LocalNode {
    let hash = name_hash(node);
    *local_nodes()
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(hash)
        .or_default() += 1;
    LocalNode { hash }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        let mut nodes = local_nodes()
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = nodes.get_mut(&self.hash) {
            *count -= 1;
            if *count == 0 {
                nodes.remove(&self.hash);
            }
        }
    }
}

/// Remembers when a WARS message left `from`'s transport for `to`, when `to` runs in this
/// process (see [`register_local`]).
pub fn note_sent(from: Endpoint<'_>, to: Endpoint<'_>, request_id: u64, kind: MessageKind) {
    if kind == MessageKind::Other || from == to {
        return;
    }
    let to_hash = name_hash(to.node);
    if !is_local(to_hash) {
        return;
    }
    let now = Instant::now();
    let key = (name_hash(from.node), to_hash, request_id, kind);
    let scope = Scope::of(from.datacenter, to.datacenter);
    let mut table = in_flight().lock().unwrap_or_else(PoisonError::into_inner);
    if table.sent.len() >= IN_FLIGHT_MAX {
        table
            .sent
            .retain(|_, (sent, _)| now.duration_since(*sent) < IN_FLIGHT_TTL);
        // Still mostly full: the receivers are not in this process (nodes as processes),
        // or they fell far behind. Start over rather than scan the table on every send.
        if table.sent.len() > IN_FLIGHT_MAX / 2 {
            table.sent.clear();
        }
    }
    table.sent.insert(key, (now, scope));
}

/// The transit of a message `to` just decoded from `from`, if its sender noted it in this
/// process: the time since it was sent, and the scope.
pub fn note_received(
    from: &str,
    to: &str,
    request_id: u64,
    kind: MessageKind,
) -> Option<(Duration, Scope)> {
    if kind == MessageKind::Other {
        return None;
    }
    let from_hash = name_hash(from);
    // A sender in another process noted nothing here.
    if !is_local(from_hash) {
        return None;
    }
    let key = (from_hash, name_hash(to), request_id, kind);
    let (sent, scope) = in_flight()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .sent
        .remove(&key)?;
    Some((sent.elapsed(), scope))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservoir_keeps_a_bounded_uniform_sample_with_the_exact_count_and_mean() {
        let mut reservoir = Reservoir::default();
        let total = RESERVOIR_SAMPLES * 10;
        for index in 0..total {
            reservoir.record(index as f64);
        }
        assert_eq!(reservoir.count, total as u64);
        assert_eq!(reservoir.samples.len(), RESERVOIR_SAMPLES);
        let mean = reservoir.mean_ms();
        assert!((mean - (total - 1) as f64 / 2.0).abs() < 1e-6, "{mean}");
        // Uniform: the sample's mean is near the stream's, and late values made it in.
        let sample_mean: f64 =
            reservoir.samples.iter().sum::<f64>() / reservoir.samples.len() as f64;
        assert!(
            (sample_mean - mean).abs() < 0.05 * total as f64,
            "{sample_mean} vs {mean}"
        );
        let late = reservoir
            .samples
            .iter()
            .filter(|ms| **ms >= (total / 2) as f64)
            .count();
        assert!(late > RESERVOIR_SAMPLES / 3, "{late}");
    }

    #[test]
    fn stats_lines_name_kind_scope_and_measure_and_skip_other_messages() {
        let stats = LinkStats::default();
        stats.record(
            MessageKind::WriteRequest,
            Scope::Intra,
            Measure::Applied,
            Duration::from_millis(2),
        );
        stats.record(
            MessageKind::Other,
            Scope::Intra,
            Measure::Applied,
            Duration::from_millis(9),
        );
        let lines = stats.lines();
        assert_eq!(
            lines,
            ["write_request intra applied count 1 mean_ms 2.0000 samples 2.0000"]
        );
        stats.reset();
        assert!(stats.lines().is_empty());
    }

    #[test]
    fn transit_is_the_time_from_send_to_receipt_of_the_same_message() {
        let a = Endpoint::new("stats-test-a", "dc1");
        let b = Endpoint::new("stats-test-b", "dc2");
        let (_a, _b) = (register_local(a.node), register_local(b.node));
        note_sent(a, b, 77, MessageKind::ReadRequest);
        std::thread::sleep(Duration::from_millis(5));
        // Another kind, direction or id is another message.
        assert!(note_received("stats-test-a", "stats-test-b", 77, MessageKind::WriteAck).is_none());
        assert!(
            note_received("stats-test-b", "stats-test-a", 77, MessageKind::ReadRequest).is_none()
        );
        let (transit, scope) =
            note_received("stats-test-a", "stats-test-b", 77, MessageKind::ReadRequest).unwrap();
        assert!(transit >= Duration::from_millis(5), "{transit:?}");
        assert_eq!(scope, Scope::Inter);
        // Received once.
        assert!(
            note_received("stats-test-a", "stats-test-b", 77, MessageKind::ReadRequest).is_none()
        );
    }

    #[test]
    fn messages_to_nodes_of_other_processes_are_not_remembered() {
        let a = Endpoint::new("stats-test-here", "dc1");
        let b = Endpoint::new("stats-test-elsewhere", "dc1");
        let _a = register_local(a.node);
        note_sent(a, b, 5, MessageKind::WriteRequest);
        // b is not in this process: nothing was kept for it, even once it registers.
        let b_here = register_local(b.node);
        assert!(note_received(b.node, a.node, 5, MessageKind::WriteRequest).is_none());
        assert!(note_received(a.node, b.node, 5, MessageKind::WriteRequest).is_none());
        note_sent(a, b, 6, MessageKind::WriteRequest);
        assert!(note_received(a.node, b.node, 6, MessageKind::WriteRequest).is_some());
        drop(b_here);
        note_sent(a, b, 7, MessageKind::WriteRequest);
        assert!(note_received(a.node, b.node, 7, MessageKind::WriteRequest).is_none());
    }
}
