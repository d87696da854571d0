//! Executing a [`Schedule`] while the driver runs, and `events.csv`.
//!
//! Node events (kill, stop, restart, add, remove) go to a [`FaultTarget`], which knows how
//! the nodes were started; link events are `LINK.*` admin commands sent to the first node
//! that answers (a change applies on every member), so they work against any kvnode
//! cluster, `--hosts` included.

use super::{Action, Schedule};
use crate::client::{command_blocking, connect_blocking, Target};
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

/// The message of a membership change this cluster cannot do yet.
pub const MEMBERSHIP_NOT_SUPPORTED: &str =
    "not supported yet: kvnode has no join/leave on this build";

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
    /// A node joins (needs kvnode's join; see [`MEMBERSHIP_NOT_SUPPORTED`]).
    fn add(&mut self, node: &str) -> Result<String> {
        Err(Error::Unsupported(format!(
            "add {node}: {MEMBERSHIP_NOT_SUPPORTED}"
        )))
    }
    /// A node leaves (needs kvnode's leave).
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
        _ => {
            let words = action.link_command().unwrap_or_default();
            send_admin(&target.admin_addresses(), &words)
        }
    }
}

/// Sends an admin command to the first address that answers; returns the node's reply.
pub fn send_admin(addresses: &[SocketAddr], words: &[String]) -> Result<String> {
    let arguments: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
    let mut last_error = None;
    for address in addresses {
        let target = Target {
            name: address.to_string(),
            address: *address,
        };
        let reply = connect_blocking(&target, Duration::from_millis(500)).and_then(|mut stream| {
            command_blocking(&mut stream, &target, &arguments, ADMIN_TIMEOUT)
        });
        match reply {
            Ok(Ok(_)) => return Ok(format!("{} via {address}", words.join(" "))),
            // The node answered: its refusal is the answer, another node would refuse too.
            Ok(Err(text)) => {
                return Err(Error::Unsupported(format!("{}: {text}", words.join(" "))))
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or(Error::NoHosts))
}

/// Writes `events.csv`: `time_s,event,target,result` (the columns the plots read), then
/// `took_s`.
pub fn write_events_csv(directory: &Path, records: &[EventRecord]) -> Result<PathBuf> {
    let path = directory.join("events.csv");
    crate::report::csv_files::write_csv_file(&path, |out| {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record(["time_s", "event", "target", "result", "took_s"])?;
        for record in records {
            writer.write_record([
                format!("{:.3}", record.time_s),
                record.event.clone(),
                record.target.clone(),
                record.result.clone(),
                format!("{:.3}", record.took_s),
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
