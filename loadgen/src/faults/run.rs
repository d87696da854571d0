//! A YCSB run phase with a failure schedule beside it, and what the run leaves behind:
//! `events.csv`, `availability.csv`, and the lost-write check (`crate::verify`).

use super::exec::{check_schedule, events_text, write_events_csv, EventRecord, FaultTarget};
use super::{Schedule, ScheduleRunner};
use crate::driver::{run_phase, DriverConfig, Phase, PhaseResult, RunControl};
use crate::measure::IntervalRecord;
use crate::workload::CoreWorkloadConfig;
use crate::Result;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Runs the phase with `schedule` executed against `target` on a thread of its own, timed
/// by the driver's clock. Clients survive node failures ([`DriverConfig::failover`]).
pub fn run_phase_with_schedule(
    schedule: &Schedule,
    target: &mut dyn FaultTarget,
    workload: &CoreWorkloadConfig,
    driver: &DriverConfig,
    control: &RunControl,
    on_interval: &mut (dyn FnMut(&IntervalRecord) + Send),
) -> Result<(PhaseResult, Vec<EventRecord>)> {
    check_schedule(schedule, target)?;
    let mut runner = ScheduleRunner::default();
    let sender = Mutex::new(runner.clock_sender());
    let mut driver = driver.clone();
    driver.failover = true;
    driver.on_start = Some(Arc::new(move |clock| {
        if let Ok(sender) = sender.lock() {
            let _ = sender.send(clock);
        }
    }));
    let finish = runner.stop_flag();
    std::thread::scope(|scope| {
        let events = scope.spawn(|| runner.execute(schedule, target));
        let result = run_phase(Phase::Run, workload, &driver, control, on_interval);
        finish.store(true, std::sync::atomic::Ordering::Release);
        let events = events.join().unwrap_or_default();
        result.map(|result| (result, events))
    })
}

/// What a schedule run adds after the summary: the events (also `events.csv`), the
/// per-interval availability (`availability.csv`, written for every run phase) and, with
/// a staleness tracker, the lost-write check (`lost_writes.csv`, `lost_keys.csv`).
pub struct AfterRun<'a> {
    pub directory: &'a Path,
    pub result: &'a PhaseResult,
    pub events: Option<&'a [EventRecord]>,
    /// Run the lost-write check (needs `result.tracker`).
    pub check_lost_writes: bool,
    pub addresses: &'a [SocketAddr],
    pub field_names: &'a [String],
    pub conflict_policy: &'a str,
}

impl AfterRun<'_> {
    /// Writes the files and returns the text to print.
    pub fn finish(&self) -> Result<String> {
        let mut text = String::new();
        if let Some(events) = self.events {
            let path = write_events_csv(self.directory, events)?;
            text.push('\n');
            text.push_str(&events_text(events));
            text.push_str(&format!("events: {}\n", path.display()));
        }
        let availability = super::write_availability_csv(self.directory, &self.result.intervals)?;
        if self.events.is_some() {
            text.push_str(&availability_text(self.result));
            text.push_str(&format!("availability: {}\n", availability.display()));
        }
        if self.check_lost_writes {
            let Some(tracker) = &self.result.tracker else {
                text.push_str(
                    "lost-write check skipped: the run did not track writes (needs --staleness)\n",
                );
                return Ok(text);
            };
            let offset = crate::client::ops::stamp_offset(self.field_names);
            let report = crate::verify::check_lost_writes(
                self.addresses,
                tracker,
                offset,
                self.conflict_policy,
            )?;
            report.write_csv(self.directory)?;
            text.push('\n');
            text.push_str(&report.text());
            text.push_str(&format!(
                "lost writes: {}\n",
                self.directory.join("lost_writes.csv").display()
            ));
        }
        Ok(text)
    }
}

/// One line per interval: time, ops, errors, availability.
fn availability_text(result: &PhaseResult) -> String {
    let mut text = String::from("per interval (s: ops, errors, availability):\n ");
    for interval in &result.intervals {
        let ops: u64 = interval
            .kinds
            .iter()
            .filter(|kind| kind.kind != crate::measure::OperationKind::ReadModifyWrite)
            .map(|kind| kind.count)
            .sum();
        let errors: u64 = interval
            .kinds
            .iter()
            .filter(|kind| kind.kind != crate::measure::OperationKind::ReadModifyWrite)
            .map(|kind| kind.errors)
            .sum();
        let availability = if ops > 0 {
            100.0 * (1.0 - errors as f64 / ops as f64)
        } else {
            0.0
        };
        text.push_str(&format!(
            " {:.0}-{:.0}: {ops}/{errors}/{availability:.1}%",
            interval.start_offset.as_secs_f64(),
            interval.end_offset.as_secs_f64()
        ));
    }
    text.push('\n');
    text
}
