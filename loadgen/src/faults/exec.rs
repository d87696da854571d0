//! Executing a [`Schedule`] while the driver runs, and `events.csv`.
//!
//! Node events (kill, stop, restart, add, remove) go to a [`FaultTarget`], which knows how
//! the nodes were started; link events are `LINK.*` admin commands sent to the first node
//! that answers (a change applies on every member), so they work against any kvnode
//! cluster, `--hosts` included.

use super::{Action, Schedule};
use crate::measure::RunClock;
use crate::{Error, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a link admin command may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a ring change (`CLUSTER.LEAVE`, `CLUSTER.REMOVE`) may take: it streams ranges.
pub(crate) const RING_CHANGE_TIMEOUT: Duration = Duration::from_secs(300);

/// The message of a membership change this target cannot do.
pub const MEMBERSHIP_NOT_SUPPORTED: &str = "not supported yet against --hosts (kvbench \
     adds and removes only nodes of the embedded cluster it started)";

/// What a schedule acts on.
pub trait FaultTarget: Send {
    /// Checks, before the run starts, that `action` (a node event) can be executed.
    fn check(&self, action: &Action) -> Result<()>;
    /// SIGKILLs the node (or the closest thing); returns what was done.
    fn kill(&mut self, node: &str) -> Result<String>;
    /// Stops the node cleanly.
    fn stop(&mut self, node: &str) -> Result<String>;
    /// Starts the node again on its data and waits until it serves.
    fn restart(&mut self, node: &str) -> Result<String>;
    /// A node joins the ring.
    fn add(&mut self, node: &str) -> Result<String> {
        Err(Error::Unsupported(format!(
            "add {node}: {MEMBERSHIP_NOT_SUPPORTED}"
        )))
    }
    /// A node leaves the ring.
    fn remove(&mut self, node: &str) -> Result<String> {
        Err(Error::Unsupported(format!(
            "remove {node}: {MEMBERSHIP_NOT_SUPPORTED}"
        )))
    }
    /// Client addresses of the nodes, to send link admin commands to.
    fn admin_addresses(&self) -> Vec<SocketAddr>;
}

/// Servers named by `--hosts`: link events only; kvbench did not start them, so it cannot
/// kill or restart them.
#[derive(Debug, Clone)]
pub struct RemoteNodes {
    pub addresses: Vec<SocketAddr>,
}

impl FaultTarget for RemoteNodes {
    fn check(&self, action: &Action) -> Result<()> {
        match action {
            Action::Add(_) | Action::Remove(_) => Err(Error::Unsupported(format!(
                "schedule: {} {}: {MEMBERSHIP_NOT_SUPPORTED}",
                action.name(),
                action.target()
            ))),
            _ => Err(Error::Unsupported(format!(
                "schedule: {} {}: kvbench can kill, stop and restart only the nodes it started \
                 (run without --hosts); against --hosts a schedule may partition, heal and \
                 change links",
                action.name(),
                action.target()
            ))),
        }
    }
    fn kill(&mut self, node: &str) -> Result<String> {
        self.check(&Action::Kill(node.to_string()))
            .map(|()| String::new())
    }
    fn stop(&mut self, node: &str) -> Result<String> {
        self.check(&Action::Stop(node.to_string()))
            .map(|()| String::new())
    }
    fn restart(&mut self, node: &str) -> Result<String> {
        self.check(&Action::Restart(node.to_string()))
            .map(|()| String::new())
    }
    fn admin_addresses(&self) -> Vec<SocketAddr> {
        self.addresses.clone()
    }
}

/// One executed (or skipped) event, a row of `events.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Seconds from the run's start (the clock of `intervals.csv`) when it was executed.
    pub time_s: f64,
    /// `kill`, `restart`, `partition`, ...
    pub event: String,
    /// The node or the pair (`dc1-dc2`), `all` for a heal of everything.
    pub target: String,
    /// `ok ...` or `error: ...` or `skipped: ...`.
    pub result: String,
    /// How long the event took to execute (a restart waits until the node serves).
    pub took_s: f64,
}

/// Checks every event against the target before anything runs.
pub fn check_schedule(schedule: &Schedule, target: &dyn FaultTarget) -> Result<()> {
    for event in &schedule.events {
        if event.action.node().is_some() {
            target
                .check(&event.action)
                .map_err(|error| Error::InvalidOption {
                    field: format!("schedule entry {:?}", event.text),
                    detail: error.to_string(),
                })?;
        }
    }
    Ok(())
}

/// Runs a schedule on its own thread, timed by the driver's run clock.
pub struct ScheduleRunner {
    clock: mpsc::Sender<RunClock>,
    clock_receiver: Option<mpsc::Receiver<RunClock>>,
    stop: Arc<AtomicBool>,
}

impl Default for ScheduleRunner {
    fn default() -> Self {
        let (clock, receiver) = mpsc::channel();
        ScheduleRunner {
            clock,
            clock_receiver: Some(receiver),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl ScheduleRunner {
    /// What the driver calls once its clock starts (`DriverConfig::on_start`).
    pub fn clock_sender(&self) -> mpsc::Sender<RunClock> {
        self.clock.clone()
    }

    /// Set it to tell [`ScheduleRunner::execute`] the run has ended: events not yet due
    /// are skipped.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Waits for the run clock, then executes each event at its time; returns once every
    /// event ran or the stop flag was set. Call on a thread of its own.
    pub fn execute(
        &mut self,
        schedule: &Schedule,
        target: &mut dyn FaultTarget,
    ) -> Vec<EventRecord> {
        let mut records = Vec::new();
        let receiver = self.clock_receiver.take();
        let clock = loop {
            if let Some(Ok(clock)) = receiver
                .as_ref()
                .map(|receiver| receiver.recv_timeout(Duration::from_millis(20)))
            {
                break Some(clock);
            }
            if receiver.is_none() || self.stop.load(Ordering::Acquire) {
                break None;
            }
        };
        for event in &schedule.events {
            let skipped = |reason: &str, time_s: f64| EventRecord {
                time_s,
                event: event.action.name().to_string(),
                target: event.action.target(),
                result: format!("skipped: {reason}"),
                took_s: 0.0,
            };
            let Some(clock) = clock else {
                records.push(skipped("the run did not start", 0.0));
                continue;
            };
            let due = clock.epoch() + event.at;
            let mut ended = false;
            while Instant::now() < due {
                if self.stop.load(Ordering::Acquire) {
                    ended = true;
                    break;
                }
                let left = due.saturating_duration_since(Instant::now());
                std::thread::sleep(left.min(Duration::from_millis(20)));
            }
            if ended {
                let now = clock.now_micros() as f64 / 1e6;
                records.push(skipped("the run ended first", now));
                continue;
            }
            let started = Instant::now();
            let time_s = clock.micros_at(started) as f64 / 1e6;
            let outcome = execute_one(&event.action, target);
            records.push(EventRecord {
                time_s,
                event: event.action.name().to_string(),
                target: event.action.target(),
                result: match outcome {
                    Ok(detail) if detail.is_empty() => "ok".to_string(),
                    Ok(detail) => format!("ok: {detail}"),
                    Err(error) => format!("error: {error}"),
                },
                took_s: started.elapsed().as_secs_f64(),
            });
        }
        records
    }
}

fn execute_one(action: &Action, target: &mut dyn FaultTarget) -> Result<String> {
    match action {
        Action::Kill(node) => target.kill(node),
        Action::Stop(node) => target.stop(node),
        Action::Restart(node) => target.restart(node),
        Action::Add(node) => target.add(node),
        Action::Remove(node) => target.remove(node),
        Action::Cleanup { compact } => cleanup_nodes(&target.admin_addresses(), *compact),
        _ => {
            let words = action.link_command().unwrap_or_default();
            send_admin(&target.admin_addresses(), &words, ADMIN_TIMEOUT)
        }
    }
}

/// Sends an admin command to the first address that answers; returns what was done and
/// the node's reply.
pub fn send_admin(addresses: &[SocketAddr], words: &[String], timeout: Duration) -> Result<String> {
    let mut last_error = None;
    for address in addresses {
        match crate::verify::command_text(*address, words, timeout) {
            Ok(Ok(reply)) if reply == "OK" || reply.is_empty() => {
                return Ok(format!("{} via {address}", words.join(" ")))
            }
            Ok(Ok(reply)) => return Ok(format!("{} via {address}: {reply}", words.join(" "))),
            // The node answered: its refusal is the answer, another node would refuse too.
            Ok(Err(text)) => {
                return Err(Error::Unsupported(format!("{}: {text}", words.join(" "))))
            }
            Err(detail) => {
                last_error = Some(Error::Connection {
                    target: address.to_string(),
                    detail,
                })
            }
        }
    }
    Err(last_error.unwrap_or(Error::NoHosts))
}

/// `CLUSTER.CLEANUP [COMPACT]` on each of `addresses` in turn (a node drops the keys it no
/// longer replicates; see kvnode's `cluster::scaling::cleanup`). The result has one part
/// per node: its keys removed and scanned and how long it took, or its refusal, or that it
/// did not answer (a node killed by the schedule); an error only if no node cleaned.
pub fn cleanup_nodes(addresses: &[SocketAddr], compact: bool) -> Result<String> {
    let mut words = vec!["CLUSTER.CLEANUP".to_string()];
    if compact {
        words.push("COMPACT".to_string());
    }
    let mut parts = Vec::new();
    let mut cleaned = 0;
    for address in addresses {
        match crate::verify::command_text(*address, &words, RING_CHANGE_TIMEOUT) {
            Ok(Ok(reply)) => {
                cleaned += 1;
                // `cleaned ring_version 3; keys_scanned 10; keys_removed 3; ...`
                let field = |name: &str| {
                    reply
                        .split("; ")
                        .find_map(|part| part.strip_prefix(name)?.strip_prefix(' '))
                        .unwrap_or("?")
                        .to_string()
                };
                let compacted = if compact {
                    format!(" + {} ms compacting", field("compact_ms"))
                } else {
                    String::new()
                };
                parts.push(format!(
                    "{address} removed {} of {} keys ({} bytes) in {} ms{compacted}",
                    field("keys_removed"),
                    field("keys_scanned"),
                    field("bytes_removed"),
                    field("duration_ms"),
                ));
            }
            Ok(Err(text)) => parts.push(format!("{address} refused: {text}")),
            Err(detail) => parts.push(format!("{address} did not answer: {detail}")),
        }
    }
    let text = format!("{}: {}", words.join(" "), parts.join("; "));
    if cleaned == 0 {
        return Err(Error::Unsupported(text));
    }
    Ok(text)
}

/// Takes node `node` (at `own`, the nodes' client addresses `all`) out of the ring: a
/// node that answers leaves by itself (`CLUSTER.LEAVE`, its ranges streamed to their new
/// owners first); one that does not is removed by another (`CLUSTER.REMOVE`, its ranges
/// come from the other replicas).
pub fn remove_node(node: &str, own: SocketAddr, all: &[SocketAddr]) -> Result<String> {
    let up = std::net::TcpStream::connect_timeout(&own, Duration::from_millis(300)).is_ok();
    if up {
        return send_admin(&[own], &["CLUSTER.LEAVE".to_string()], RING_CHANGE_TIMEOUT);
    }
    let others: Vec<SocketAddr> = all.iter().copied().filter(|a| *a != own).collect();
    send_admin(
        &others,
        &["CLUSTER.REMOVE".to_string(), node.to_string()],
        RING_CHANGE_TIMEOUT,
    )
}

/// Writes `events.csv`: `time_s,event,target,result` (the columns the plots read), then
/// `end_s`, when the event was done (a restart once the node serves, an `add` once the
/// node has joined).
pub fn write_events_csv(directory: &Path, records: &[EventRecord]) -> Result<PathBuf> {
    let path = directory.join("events.csv");
    crate::report::csv_files::write_csv_file(&path, |out| {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record(["time_s", "event", "target", "result", "end_s"])?;
        for record in records {
            writer.write_record([
                format!("{:.3}", record.time_s),
                record.event.clone(),
                record.target.clone(),
                record.result.clone(),
                format!("{:.3}", record.time_s + record.took_s),
            ])?;
        }
        writer.flush()?;
        Ok(())
    })?;
    Ok(path)
}

/// The events as text lines for the run's output.
pub fn events_text(records: &[EventRecord]) -> String {
    let mut text = String::from("failure schedule:\n");
    for record in records {
        text.push_str(&format!(
            "  {:>8.3} s  {:<10} {:<10} {} ({:.2} s)\n",
            record.time_s, record.event, record.target, record.result, record.took_s
        ));
    }
    text
}
