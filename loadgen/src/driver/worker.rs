//! One client: a YCSB client thread's worth of operations over one connection per target,
//! with up to `pipeline` requests in flight on each.
//!
//! The loop: start every operation that may start (closed loop: while the pipeline has
//! room; open loop: also only once its intended start time has come), send them in one
//! write per connection, then read replies and complete operations in order. A reply
//! completes the oldest request of its connection. A read-modify-write sends its SET when
//! its GET's reply arrives.

mod added;
mod failover;
mod replies;

use super::timer::PreciseTimer;
use super::{KeyRouter, Phase, Shared};
use crate::client::ops::{
    push_get, push_scan, push_set_fields, push_set_record, read_outcome, read_outcome_observed,
    scan_outcome, stamp_offset, write_outcome,
};
use crate::client::{connect_blocking, Connection, Reply, Target};
use crate::measure::staleness::{Observed, StalenessStats, ValueStamp, STAMP_LEN};
use crate::measure::{OperationKind, Outcome, Recorder, RunClock};
use crate::workload::{CoreWorkload, Operation};
use crate::{Error, Result};
use failover::Failover;
use rand::rngs::SmallRng;
use rand::Rng;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// What a request in flight is, and what its reply completes.
#[derive(Debug)]
enum Step {
    Read,
    Update,
    Insert {
        key_number: i64,
        acknowledge: bool,
    },
    Scan,
    /// The GET of a read-modify-write; its reply sends the SET.
    ReadModifyWriteRead {
        key: String,
    },
    /// The SET of a read-modify-write.
    ReadModifyWriteUpdate {
        read_outcome: Outcome,
    },
}

#[derive(Debug)]
struct Pending {
    step: Step,
    /// The operation's intended start (open loop).
    intended_micros: Option<u64>,
    /// When the operation's first request was sent.
    operation_start_micros: u64,
    /// When this request was sent.
    step_start_micros: u64,
    /// Staleness runs only: the key, and the stamp a write carries (`None` for a read).
    tracked: Option<(String, Option<ValueStamp>)>,
}

/// An operation drawn and routed, waiting for room on its connection.
#[derive(Debug)]
struct Prepared {
    connection: usize,
    operation: Operation,
    key: String,
    key_number: i64,
    intended_micros: Option<u64>,
}

/// One client's state.
pub(super) struct Worker {
    pub(super) phase: Phase,
    pub(super) workload: CoreWorkload,
    pub(super) rng: SmallRng,
    pub(super) connections: Vec<Connection>,
    pub(super) router: Box<dyn KeyRouter>,
    pub(super) recorder: Recorder,
    pub(super) shared: Arc<Shared>,
    pub(super) pipeline: usize,
    /// Open loop: microseconds between this client's intended starts.
    pub(super) period_micros: Option<f64>,
    pub(super) reply_timeout: Duration,
    /// Random printable bytes values are cut from when field lengths are constant.
    value_pool: Option<Arc<[u8]>>,
    in_flight: Vec<VecDeque<Pending>>,
    held: Option<Prepared>,
    next_intended_micros: f64,
    issuing_done: bool,
    clock: RunClock,
    /// Staleness: this client's writer id and last sequence, where the stamp sits in a
    /// value, and the counts of its reads' classifications.
    writer_id: u64,
    sequence: u64,
    stamp_offset: usize,
    staleness_stats: StalenessStats,
    /// Failure schedules: connections that fail are reconnected instead of ending the client.
    failover: Option<Failover>,
    /// When a connection to a target the router added may be tried again, after one failed.
    added_retry_at: Option<Instant>,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        phase: Phase,
        workload: CoreWorkload,
        rng: SmallRng,
        connections: Vec<Connection>,
        router: Box<dyn KeyRouter>,
        recorder: Recorder,
        shared: Arc<Shared>,
        pipeline: usize,
        period_micros: Option<f64>,
        reply_timeout: Duration,
        value_pool: Option<Arc<[u8]>>,
    ) -> Worker {
        let clock = recorder.clock();
        Worker {
            phase,
            workload,
            rng,
            in_flight: connections.iter().map(|_| VecDeque::new()).collect(),
            connections,
            router,
            recorder,
            shared,
            pipeline,
            period_micros,
            reply_timeout,
            value_pool,
            held: None,
            next_intended_micros: 0.0,
            issuing_done: false,
            clock,
            writer_id: 0,
            sequence: 0,
            stamp_offset: 0,
            staleness_stats: StalenessStats::default(),
            failover: None,
            added_retry_at: None,
        }
    }

    /// Sets the writer id stamped into this client's values (unique per client).
    pub(super) fn with_writer_id(mut self, writer_id: u64) -> Worker {
        self.writer_id = writer_id;
        self.stamp_offset = stamp_offset(self.workload.field_names());
        self
    }

    fn measures_staleness(&self) -> bool {
        self.shared.staleness.is_some()
    }

    /// Runs until the budget, the deadline or a stop ends it; a connection failure ends it
    /// with the failure, its requests in flight counted as errors.
    pub(super) async fn run(mut self) -> Result<()> {
        self.next_intended_micros = self.clock.now_micros() as f64;
        let result = self.run_loop().await;
        if result.is_err() {
            self.fail_in_flight();
        }
        if let Some(staleness) = &self.shared.staleness {
            staleness.stats.lock().merge(&self.staleness_stats);
        }
        result
    }

    async fn run_loop(&mut self) -> Result<()> {
        let mut timer = match self.period_micros {
            Some(_) => Some(PreciseTimer::new().map_err(|error| {
                Error::Unsupported(format!("open-loop timer (timerfd): {error}"))
            })?),
            None => None,
        };
        let mut last_progress = Instant::now();
        loop {
            self.reconnect_due();
            let now = self.clock.now_micros();
            self.start_operations(now)?;
            for index in 0..self.connections.len() {
                if self.is_down(index) {
                    continue;
                }
                if let Err(error) = self.connections[index].flush().await {
                    self.connection_failed(index, error)?;
                }
            }
            let in_flight: usize = self.in_flight.iter().map(VecDeque::len).sum();
            if self.issuing_done && in_flight == 0 && self.held.is_none() {
                return Ok(());
            }
            if in_flight > 0 && self.read_available()? {
                last_progress = Instant::now();
                continue;
            }
            // Nothing to read yet: wait for a reply, the next intended start, or a timeout.
            let due_in = self.next_due_in(now);
            if let (Some(timer), Some(due_in)) = (timer.as_mut(), due_in) {
                timer.arm(due_in).map_err(|error| {
                    Error::Unsupported(format!("open-loop timer (timerfd): {error}"))
                })?;
            }
            let waited_for_reply = last_progress.elapsed();
            let reply_deadline = if in_flight > 0 {
                self.reply_timeout.saturating_sub(waited_for_reply)
            } else {
                // Nothing expected: wake now and then to notice a stop or the deadline.
                Duration::from_millis(50)
            };
            if in_flight > 0 && reply_deadline.is_zero() {
                let connection = self.oldest_in_flight_connection();
                let error = self.connections[connection].error(format!(
                    "no reply within {} ms ({in_flight} requests in flight)",
                    self.reply_timeout.as_millis()
                ));
                self.connection_failed(connection, error)?;
                last_progress = Instant::now();
                continue;
            }
            let connections = &self.connections;
            let in_flight_queues = &self.in_flight;
            let any_readable = poll_fn(|context| {
                for (connection, queue) in connections.iter().zip(in_flight_queues) {
                    if queue.is_empty() {
                        continue;
                    }
                    if let Poll::Ready(result) = connection.poll_read_ready(context) {
                        return Poll::Ready(result);
                    }
                }
                Poll::Pending
            });
            let timer_fired = async {
                match (timer.as_mut(), due_in) {
                    (Some(timer), Some(_)) => timer.fired().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                readable = any_readable => if let Err(error) = readable {
                    // With failover the next read finds the failure and its connection.
                    if self.failover.is_none() {
                        return Err(error);
                    }
                },
                fired = timer_fired => fired.map_err(|error| {
                    Error::Unsupported(format!("open-loop timer (timerfd): {error}"))
                })?,
                _ = tokio::time::sleep(reply_deadline) => {}
            }
            if in_flight == 0 {
                last_progress = Instant::now();
            }
        }
    }

    /// How long until the next operation may start, in open loop, when one could start
    /// (room on its connection, budget and time left).
    fn next_due_in(&self, now_micros: u64) -> Option<Duration> {
        self.period_micros?;
        if self.issuing_done {
            return None;
        }
        if let Some(held) = &self.held {
            if self.in_flight[held.connection].len() >= self.pipeline
                || self.is_down(held.connection)
            {
                return None;
            }
        }
        let due = self.next_intended_micros.ceil() as u64;
        Some(Duration::from_micros(due.saturating_sub(now_micros)))
    }

    fn oldest_in_flight_connection(&self) -> usize {
        (0..self.in_flight.len())
            .filter(|&index| !self.in_flight[index].is_empty())
            .min_by_key(|&index| self.in_flight[index][0].step_start_micros)
            .unwrap_or(0)
    }

    /// Starts operations while they may start.
    fn start_operations(&mut self, now_micros: u64) -> Result<()> {
        loop {
            if let Some(mut held) = self.held.take() {
                match self.reroute(held.connection) {
                    Some(connection) => held.connection = connection,
                    None => {
                        // Every connection is down: wait for a reconnection.
                        self.held = Some(held);
                        return Ok(());
                    }
                }
                if self.in_flight[held.connection].len() >= self.pipeline {
                    self.held = Some(held);
                    return Ok(());
                }
                self.send(held, now_micros);
                continue;
            }
            if self.issuing_done {
                return Ok(());
            }
            if self.shared.stop.load(Ordering::Relaxed)
                || self
                    .shared
                    .deadline_micros
                    .is_some_and(|deadline| now_micros >= deadline)
            {
                self.issuing_done = true;
                return Ok(());
            }
            let intended_micros = match self.period_micros {
                Some(period) => {
                    if (now_micros as f64) < self.next_intended_micros {
                        return Ok(());
                    }
                    let intended = self.next_intended_micros as u64;
                    Some((intended, period))
                }
                None => None,
            };
            if !self.shared.claim_operation() {
                self.issuing_done = true;
                return Ok(());
            }
            if let Some((_, period)) = intended_micros {
                self.next_intended_micros += period;
            }
            let prepared = self.prepare(intended_micros.map(|(intended, _)| intended))?;
            self.held = Some(prepared);
        }
    }

    /// Draws the next operation and its key, and routes it.
    fn prepare(&mut self, intended_micros: Option<u64>) -> Result<Prepared> {
        let (operation, key_number) = match self.phase {
            Phase::Load => (Operation::Insert, self.workload.next_load_key_number()),
            Phase::Run => {
                let operation = self.workload.next_operation(&mut self.rng);
                let key_number = match operation {
                    Operation::Insert => self.workload.next_insert_key_number(),
                    _ => self.workload.next_transaction_key_number(&mut self.rng)?,
                };
                (operation, key_number)
            }
        };
        let key = self.workload.key_name(key_number);
        let chosen = self.router.route(key.as_bytes());
        let connection = self.connection_for(chosen);
        Ok(Prepared {
            connection,
            operation,
            key,
            key_number,
            intended_micros,
        })
    }

    /// Appends an operation's first request to its connection's write buffer.
    fn send(&mut self, prepared: Prepared, now_micros: u64) {
        let Prepared {
            connection,
            operation,
            key,
            key_number,
            intended_micros,
        } = prepared;
        let mut tracked = None;
        let step = match operation {
            Operation::Read => {
                push_get(self.connections[connection].write_buffer(), key.as_bytes());
                if self.measures_staleness() {
                    tracked = Some((key, None));
                }
                Step::Read
            }
            Operation::Update => {
                tracked = self.push_set(connection, &key, now_micros);
                Step::Update
            }
            Operation::Insert => {
                tracked = self.push_set(connection, &key, now_micros);
                Step::Insert {
                    key_number,
                    acknowledge: self.phase == Phase::Run,
                }
            }
            Operation::Scan => {
                let length = self.workload.next_scan_length(&mut self.rng);
                push_scan(
                    self.connections[connection].write_buffer(),
                    key.as_bytes(),
                    length,
                );
                Step::Scan
            }
            Operation::ReadModifyWrite => {
                push_get(self.connections[connection].write_buffer(), key.as_bytes());
                if self.measures_staleness() {
                    tracked = Some((key.clone(), None));
                }
                Step::ReadModifyWriteRead { key }
            }
        };
        self.in_flight[connection].push_back(Pending {
            step,
            intended_micros,
            operation_start_micros: now_micros,
            step_start_micros: now_micros,
            tracked,
        });
    }

    /// Appends `SET key record` with a new record. With constant field lengths each value
    /// is a window at a random offset of the shared pool of YCSB-random bytes (the same
    /// byte mix as a freshly drawn value, without drawing 1 KiB of random numbers per
    /// operation); otherwise the workload draws the record.
    ///
    /// In a staleness run the first field's value starts with a new [`ValueStamp`], recorded
    /// as issued before it is sent; returns the key and stamp for the reply to end.
    fn push_set(
        &mut self,
        connection: usize,
        key: &str,
        now_micros: u64,
    ) -> Option<(String, Option<ValueStamp>)> {
        let stamp = self.shared.staleness.as_ref().map(|staleness| {
            self.sequence += 1;
            let stamp = ValueStamp {
                writer: self.writer_id,
                sequence: self.sequence,
                issued_micros: now_micros,
            };
            staleness.tracker.write_issued(key.as_bytes(), &stamp);
            stamp
        });
        let out = self.connections[connection].write_buffer();
        match &self.value_pool {
            Some(pool) => {
                let length = self.workload.config().field_length_bytes as usize;
                let rng = &mut self.rng;
                let last_offset = pool.len() - length;
                // The stamped first field (the driver checked length >= STAMP_LEN).
                let mut stamped = Vec::new();
                if let Some(stamp) = &stamp {
                    let offset = rng.gen_range(0..=last_offset);
                    stamped.extend_from_slice(&stamp.encode());
                    stamped.extend_from_slice(&pool[offset + STAMP_LEN..offset + length]);
                }
                push_set_fields(
                    out,
                    key.as_bytes(),
                    self.workload.field_names(),
                    length,
                    |index| {
                        if index == 0 && !stamped.is_empty() {
                            return &stamped[..];
                        }
                        let offset = rng.gen_range(0..=last_offset);
                        &pool[offset..offset + length]
                    },
                );
            }
            None => {
                let mut values = self.workload.build_values(&mut self.rng);
                if let (Some(stamp), Some((_, first))) = (&stamp, values.first_mut()) {
                    // The driver checked constant lengths >= STAMP_LEN; a shorter value
                    // simply goes unstamped and reads back as such.
                    let _ = stamp.write_into(first);
                }
                push_set_record(out, key.as_bytes(), &values);
            }
        }
        stamp.map(|stamp| (key.to_string(), Some(stamp)))
    }
}
