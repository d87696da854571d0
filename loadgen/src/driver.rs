//! Runs a YCSB phase (load or run) against RESP servers and measures it.
//!
//! - Clients: `threads` OS threads, each a current-thread tokio runtime with
//!   `connections_per_thread` clients. A client is what YCSB calls a client thread: it
//!   draws operations from its own [`CoreWorkload`] (sharing the insert counters with the
//!   others), and holds one connection per target with up to `pipeline` requests in
//!   flight on each. YCSB's `threadcount` is `threads` with one connection per thread.
//! - Which target serves a key: a [`KeyRouter`] per client, made by a [`RouterFactory`]
//!   (default: round robin over the targets, [`RoundRobin`]).
//! - Closed loop (`target` 0): each client keeps its pipelines full. Open loop (`target`
//!   ops/s): each client has a schedule of intended start times, `target / clients` per
//!   second; an operation's *intended* latency runs from its intended start, so a stall of
//!   the server shows in the `Intended-` figures even though the requests queued behind it
//!   were sent late (coordinated omission, as YCSB's `measurement.interval=both`).
//! - Stops when the operation budget is spent (load: `insertcount`; run:
//!   `operationcount`), at `maxexecutiontime`, or when [`RunControl::stop`] is set.
//! - A run that did not do what was asked (interrupted, a connection failed) is
//!   [`PhaseResult::partial`]; callers must not present it as complete.

mod timer;
mod worker;

use crate::client::{command_blocking, connect_blocking, Connection, Target, TargetKind};
use crate::measure::staleness::{StalenessStats, StalenessTracker, TrackerConfig, STAMP_LEN};
use crate::measure::{
    Collector, CollectorConfig, HistogramSet, IntervalRecord, IntervalSnapshot, RunClock,
};
use crate::workload::core::FieldLengthDistribution;
use crate::workload::record::random_printable_bytes;
use crate::workload::{CoreWorkload, CoreWorkloadConfig};
use crate::{Error, Result};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::net::TcpStream as StdTcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use worker::Worker;

/// Chooses the target (an index into [`DriverConfig::targets`]) that serves a key.
pub trait KeyRouter: Send {
    /// The index of the target for `key`: one of [`DriverConfig::targets`], or one this
    /// router added (see [`KeyRouter::added_target`]); any other index is taken modulo the
    /// target count.
    fn route(&mut self, key: &[u8]) -> usize;

    /// The address of target `index` when it lies past [`DriverConfig::targets`]: a router
    /// that follows the ring adds the members that join it
    /// ([`crate::routing::TopologyWatch`]), and the client connects to one when it first
    /// routes a key there. `None` (the default) for every index a router never returns.
    fn added_target(&self, _index: usize) -> Option<std::net::SocketAddr> {
        None
    }
}

/// Makes each client's router: given (client index, target count).
pub type RouterFactory = Arc<dyn Fn(usize, usize) -> Box<dyn KeyRouter> + Send + Sync>;

/// The default router: each client takes the targets in turn, starting at its own index,
/// so clients spread evenly even with one operation each.
#[derive(Debug, Clone)]
pub struct RoundRobin {
    next: usize,
    targets: usize,
}

impl RoundRobin {
    /// A router for client `client` over `targets` targets.
    pub fn new(client: usize, targets: usize) -> RoundRobin {
        let targets = targets.max(1);
        RoundRobin {
            next: client % targets,
            targets,
        }
    }

    /// The factory of [`RoundRobin`] routers.
    pub fn factory() -> RouterFactory {
        Arc::new(|client, targets| Box::new(RoundRobin::new(client, targets)))
    }
}

impl KeyRouter for RoundRobin {
    fn route(&mut self, _key: &[u8]) -> usize {
        let chosen = self.next;
        self.next = (self.next + 1) % self.targets;
        chosen
    }
}

/// Which YCSB phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `-load`: insert `insertcount` records from `insertstart`.
    Load,
    /// `-t`: the transaction mix, `operationcount` operations.
    Run,
}

impl Phase {
    /// `load` or `run`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Load => "load",
            Phase::Run => "run",
        }
    }
}

/// How to drive the targets; the workload itself comes from a [`CoreWorkloadConfig`].
#[derive(Clone)]
pub struct DriverConfig {
    /// The servers, each reached by every client.
    pub targets: Vec<Target>,
    /// The servers' kind; `None` detects it from the first target's INFO.
    pub target_kind: Option<TargetKind>,
    /// OS threads.
    pub threads: usize,
    /// Clients per thread.
    pub connections_per_thread: usize,
    /// Requests in flight per connection (1: no pipelining).
    pub pipeline: usize,
    /// Total operations per second, 0 for closed loop.
    pub target_operations_per_second: f64,
    /// Time from the start during which samples count in no figure.
    pub warmup: Duration,
    /// The status / interval-log period.
    pub interval: Duration,
    /// A connection with requests in flight and no reply this long has failed.
    pub reply_timeout: Duration,
    /// Longest wait for a TCP connection.
    pub connect_timeout: Duration,
    /// Makes each client's key router.
    pub router: RouterFactory,
    /// Seed of client `i`'s random numbers is `seed + i`.
    pub seed: u64,
    /// Run phase only: stamp every written value (writer = client index, per-client
    /// sequence, issue time) and classify every read as fresh or stale
    /// ([`crate::measure::staleness`]). Needs constant field lengths of at least 32 bytes.
    pub staleness: bool,
    /// Failure schedules: a client whose connection fails goes on (requests in flight count
    /// as errors, its operations go to another node, the connection is retried) instead of
    /// ending the run as partial.
    pub failover: bool,
    /// Called once with the run clock when it starts (a failure schedule times its events
    /// on it, so `events.csv` and `intervals.csv` share one time axis).
    pub on_start: Option<Arc<dyn Fn(RunClock) + Send + Sync>>,
}

impl std::fmt::Debug for DriverConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DriverConfig")
            .field("targets", &self.targets)
            .field("target_kind", &self.target_kind)
            .field("threads", &self.threads)
            .field("connections_per_thread", &self.connections_per_thread)
            .field("pipeline", &self.pipeline)
            .field(
                "target_operations_per_second",
                &self.target_operations_per_second,
            )
            .field("warmup", &self.warmup)
            .finish_non_exhaustive()
    }
}

impl DriverConfig {
    /// Defaults for these targets: one thread, one connection, no pipelining, closed loop.
    pub fn new(targets: Vec<Target>) -> DriverConfig {
        DriverConfig {
            targets,
            target_kind: None,
            threads: 1,
            connections_per_thread: 1,
            pipeline: 1,
            target_operations_per_second: 0.0,
            warmup: Duration::ZERO,
            interval: Duration::from_secs(1),
            reply_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            router: RoundRobin::factory(),
            seed: 0x006b_7662_656e_6368,
            staleness: false,
            failover: false,
            on_start: None,
        }
    }

    /// Clients in all threads.
    pub fn clients(&self) -> usize {
        self.threads * self.connections_per_thread
    }
}

/// Lets another thread stop a run (Ctrl-C): operations stop starting, those in flight end.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    pub stop: Arc<AtomicBool>,
}

impl RunControl {
    /// Asks the run to stop; it will be partial.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// What a phase measured.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    pub phase: Phase,
    pub target_kind: TargetKind,
    /// Clients that ran.
    pub clients: usize,
    /// Operations the phase was asked for (`None`: until `maxexecutiontime`).
    pub operations_requested: Option<u64>,
    /// The measured part (warm-up excluded).
    pub run: IntervalSnapshot,
    /// The histograms `run` comes from.
    pub totals: HistogramSet,
    /// The warm-up's histograms.
    pub warmup_totals: HistogramSet,
    /// Every interval, warm-up included (flagged).
    pub intervals: Vec<IntervalSnapshot>,
    /// Wall-clock time of the run clock's start.
    pub start_time: SystemTime,
    /// Why the run is partial; `None` when it did what was asked.
    pub partial: Option<String>,
    /// With [`DriverConfig::staleness`] in the run phase: every read's classification.
    pub staleness: Option<StalenessStats>,
    /// With staleness: every key's write history (the lost-write check reads it).
    pub tracker: Option<Arc<StalenessTracker>>,
}

impl PhaseResult {
    /// Operations measured and in the warm-up, successful or not.
    pub fn operations_done(&self) -> u64 {
        self.totals.operations() + self.warmup_totals.operations()
    }
}

/// State every client of a phase shares.
#[derive(Debug)]
struct Shared {
    /// Operations started so far (may pass `budget` by the number of clients).
    claimed: AtomicU64,
    budget: u64,
    deadline_micros: Option<u64>,
    stop: Arc<AtomicBool>,
    /// With staleness measurement: the write histories, and the clients' merged counts.
    staleness: Option<SharedStaleness>,
}

/// What the clients of a staleness run share.
#[derive(Debug)]
struct SharedStaleness {
    tracker: Arc<StalenessTracker>,
    stats: parking_lot::Mutex<StalenessStats>,
}

impl Shared {
    fn claim_operation(&self) -> bool {
        self.claimed.fetch_add(1, Ordering::Relaxed) < self.budget
    }
}

/// Opens a connection to each target and, without a configured kind, asks the first one.
fn connect_and_detect(config: &DriverConfig) -> Result<(TargetKind, Vec<Vec<StdTcpStream>>)> {
    let first = &config.targets[0];
    let mut probe = connect_blocking(first, config.connect_timeout)?;
    let kind = match config.target_kind {
        Some(kind) => kind,
        None => {
            match command_blocking(&mut probe, first, &[b"INFO"], config.reply_timeout)? {
                Ok(info) => TargetKind::from_info(&info),
                // A server without INFO is no kvnode.
                Err(_) => TargetKind::Redis,
            }
        }
    };
    drop(probe);
    let mut clients = Vec::with_capacity(config.clients());
    for _ in 0..config.clients() {
        let streams = config
            .targets
            .iter()
            .map(|target| connect_blocking(target, config.connect_timeout))
            .collect::<Result<Vec<_>>>()?;
        clients.push(streams);
    }
    Ok((kind, clients))
}

fn check(phase: Phase, workload: &CoreWorkloadConfig, config: &DriverConfig) -> Result<()> {
    if config.targets.is_empty() {
        return Err(Error::NoHosts);
    }
    let invalid = |flag: &'static str, detail: &str| Error::InvalidFlag {
        flag,
        detail: detail.to_string(),
    };
    if config.threads == 0 {
        return Err(invalid("threads", "must be at least 1"));
    }
    if config.connections_per_thread == 0 {
        return Err(invalid("connections", "must be at least 1"));
    }
    if config.pipeline == 0 {
        return Err(invalid("pipeline", "must be at least 1"));
    }
    if !(config.target_operations_per_second >= 0.0
        && config.target_operations_per_second.is_finite())
    {
        return Err(invalid("target", "must be a non-negative number"));
    }
    if phase == Phase::Run
        && workload.operation_count == 0
        && workload.max_execution_time_seconds == 0
    {
        return Err(Error::Unsupported(
            "operationcount=0 with no maxexecutiontime would run forever; set one of them"
                .to_string(),
        ));
    }
    if config.staleness && phase == Phase::Run {
        check_staleness(workload)?;
    }
    Ok(())
}

/// Whether the workload's values can carry the staleness stamp: constant field lengths of
/// at least [`STAMP_LEN`] bytes.
pub fn check_staleness(workload: &CoreWorkloadConfig) -> Result<()> {
    if workload.field_length_distribution != FieldLengthDistribution::Constant {
        return Err(Error::InvalidFlag {
            flag: "staleness",
            detail:
                "needs fieldlengthdistribution=constant: every value must hold the 32-byte stamp"
                    .to_string(),
        });
    }
    if (workload.field_length_bytes as usize) < STAMP_LEN {
        return Err(Error::InvalidFlag {
            flag: "staleness",
            detail: format!(
                "needs fieldlength >= {STAMP_LEN} (the value stamp's size), \
                 the workload has fieldlength={}",
                workload.field_length_bytes
            ),
        });
    }
    Ok(())
}

/// Runs one phase. `on_interval` sees every interval as it is cut (on the collector's
/// thread), e.g. to print a status line or append to an interval log.
pub fn run_phase(
    phase: Phase,
    workload: &CoreWorkloadConfig,
    config: &DriverConfig,
    control: &RunControl,
    on_interval: &mut (dyn FnMut(&IntervalRecord) + Send),
) -> Result<PhaseResult> {
    check(phase, workload, config)?;
    // Set up before the clock starts: none of it is the servers' time.
    let value_pool = value_pool(phase, workload, config.seed);
    let (target_kind, streams) = connect_and_detect(config)?;
    if phase == Phase::Run && workload.proportions.scan > 0.0 && !target_kind.supports_scan() {
        return Err(Error::Unsupported(format!(
            "the workload has scanproportion={} but the target is a plain Redis-compatible \
             server, which has no ordered scan; set scanproportion=0, or use --target-kind \
             kvnode against a kvnode",
            workload.proportions.scan
        )));
    }
    let budget = match phase {
        Phase::Load => Some(workload.insert_count),
        Phase::Run => (workload.operation_count > 0).then_some(workload.operation_count),
    };
    let clients = config.clients();
    let start_time = SystemTime::now();
    let clock = RunClock::start();
    let collector_config = CollectorConfig {
        interval: config.interval,
        warmup: config.warmup,
    };
    let mut collector = Collector::new(collector_config, clock);
    if let Some(on_start) = &config.on_start {
        on_start(clock);
    }
    let shared = Arc::new(Shared {
        claimed: AtomicU64::new(0),
        budget: budget.unwrap_or(u64::MAX),
        deadline_micros: (workload.max_execution_time_seconds > 0).then(|| {
            workload
                .max_execution_time_seconds
                .saturating_mul(1_000_000)
        }),
        stop: Arc::clone(&control.stop),
        staleness: (config.staleness && phase == Phase::Run).then(|| SharedStaleness {
            tracker: Arc::new(StalenessTracker::new(TrackerConfig::default())),
            stats: parking_lot::Mutex::new(StalenessStats::default()),
        }),
    });
    let period_micros = (config.target_operations_per_second > 0.0)
        .then(|| 1e6 * clients as f64 / config.target_operations_per_second);
    let first_workload = CoreWorkload::new(workload.clone());
    // Per thread: its clients' parts, assembled into workers inside its runtime.
    let mut per_thread: Vec<Vec<WorkerParts>> = (0..config.threads).map(|_| Vec::new()).collect();
    for (index, streams) in streams.into_iter().enumerate() {
        per_thread[index / config.connections_per_thread].push(WorkerParts {
            client: index,
            workload: first_workload.for_another_thread(),
            rng: SmallRng::seed_from_u64(config.seed.wrapping_add(index as u64)),
            streams,
            router: (config.router)(index, config.targets.len()),
            recorder: collector.recorder(),
        });
    }
    drop(first_workload);
    let collector_stop = AtomicBool::new(false);
    let mut intervals = Vec::new();
    let failures: Vec<Error> = std::thread::scope(|scope| {
        let collector_thread = scope.spawn(|| {
            collector.run(&collector_stop, |record| {
                intervals.push(record.snapshot.clone());
                on_interval(record);
            });
        });
        let threads: Vec<_> = per_thread
            .into_iter()
            .map(|parts| {
                let shared = Arc::clone(&shared);
                let value_pool = value_pool.clone();
                scope.spawn(move || {
                    run_thread(phase, parts, shared, config, period_micros, value_pool)
                })
            })
            .collect();
        let mut failures = Vec::new();
        for thread in threads {
            match thread.join() {
                Ok(errors) => failures.extend(errors),
                Err(_) => failures.push(Error::ThreadPanicked),
            }
        }
        collector_stop.store(true, Ordering::Release);
        if collector_thread.join().is_err() {
            failures.push(Error::ThreadPanicked);
        }
        failures
    });
    let partial = partial_reason(control, &failures, clients);
    let staleness = shared
        .staleness
        .as_ref()
        .map(|staleness| staleness.stats.lock().clone());
    let tracker = shared
        .staleness
        .as_ref()
        .map(|staleness| Arc::clone(&staleness.tracker));
    Ok(PhaseResult {
        phase,
        target_kind,
        clients,
        operations_requested: budget,
        run: collector.run_snapshot(),
        totals: collector.totals().clone(),
        warmup_totals: collector.warmup_totals().clone(),
        intervals,
        start_time,
        partial,
        staleness,
        tracker,
    })
}

/// Bytes of the shared value pool: large enough that two values rarely share bytes.
pub const VALUE_POOL_BYTES: usize = 4 * 1024 * 1024;

/// With constant field lengths and a workload that writes, a pool of YCSB-random printable bytes that values are cut
/// from; `None` for other length distributions, whose records the workload draws.
fn value_pool(phase: Phase, workload: &CoreWorkloadConfig, seed: u64) -> Option<Arc<[u8]>> {
    let proportions = workload.proportions;
    let writes = phase == Phase::Load
        || proportions.update + proportions.insert + proportions.read_modify_write > 0.0;
    if !writes || workload.field_length_distribution != FieldLengthDistribution::Constant {
        return None;
    }
    let length = workload.field_length_bytes as usize;
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_0f7a_10e5);
    Some(random_printable_bytes(VALUE_POOL_BYTES.max(4 * length), &mut rng).into())
}

fn partial_reason(control: &RunControl, failures: &[Error], clients: usize) -> Option<String> {
    let mut reasons = Vec::new();
    if control.stop.load(Ordering::Acquire) {
        reasons.push("interrupted before the end".to_string());
    }
    if let Some(first) = failures.first() {
        reasons.push(format!(
            "{} of {clients} clients failed (first: {first})",
            failures.len()
        ));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// What one client needs, made on the calling thread.
struct WorkerParts {
    client: usize,
    workload: CoreWorkload,
    rng: SmallRng,
    streams: Vec<StdTcpStream>,
    router: Box<dyn KeyRouter>,
    recorder: crate::measure::Recorder,
}

/// One load thread: a current-thread runtime running its clients to the end; returns the
/// clients' failures.
fn run_thread(
    phase: Phase,
    parts: Vec<WorkerParts>,
    shared: Arc<Shared>,
    config: &DriverConfig,
    period_micros: Option<f64>,
    value_pool: Option<Arc<[u8]>>,
) -> Vec<Error> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(source) => {
            return vec![Error::Io {
                context: "load thread runtime".to_string(),
                source,
            }]
        }
    };
    runtime.block_on(async {
        let mut handles = Vec::new();
        let mut failures = Vec::new();
        for part in parts {
            let client = part.client;
            let connections: Result<Vec<Connection>> = part
                .streams
                .into_iter()
                .zip(&config.targets)
                .map(|(stream, target)| Connection::from_std(stream, target))
                .collect();
            let connections = match connections {
                Ok(connections) => connections,
                Err(error) => {
                    failures.push(error);
                    continue;
                }
            };
            let worker = Worker::new(
                phase,
                part.workload,
                part.rng,
                connections,
                part.router,
                part.recorder,
                Arc::clone(&shared),
                config.pipeline,
                period_micros,
                config.reply_timeout,
                value_pool.clone(),
            )
            .with_writer_id(client as u64);
            let worker = if config.failover {
                worker.with_failover(config.targets.clone())
            } else {
                worker
            };
            handles.push(tokio::spawn(worker.run()));
        }
        for handle in handles {
            match handle.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => failures.push(error),
                Err(_) => failures.push(Error::ThreadPanicked),
            }
        }
        failures
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_starts_at_the_client_and_cycles() {
        let factory = RoundRobin::factory();
        let mut router = factory(4, 3);
        let routes: Vec<usize> = (0..4).map(|_| router.route(b"k")).collect();
        assert_eq!(routes, vec![1, 2, 0, 1]);
        let mut single = factory(7, 1);
        assert_eq!(single.route(b"k"), 0);
    }

    #[test]
    fn no_targets_is_a_clear_error() {
        let config = DriverConfig::new(Vec::new());
        let error = run_phase(
            Phase::Load,
            &CoreWorkloadConfig::default(),
            &config,
            &RunControl::default(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(error.to_string().contains("no --hosts given"), "{error}");
    }
}
