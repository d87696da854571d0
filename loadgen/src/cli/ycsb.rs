//! `kvbench load` and `kvbench run`: YCSB's `-load` and `-t` against RESP servers.
//!
//! ```text
//! kvbench load -P workloads/workloada -p recordcount=100000 --hosts 127.0.0.1:6379
//! kvbench run  -P workloads/workloada --hosts 127.0.0.1:6379 --threads 2 --connections 25 \
//!              --pipeline 16 --target 50000 --warmup 5 --results results
//! ```
//!
//! Workload files are read as YCSB reads them; unlike YCSB, an unknown property or
//! proportions that do not sum to 1 are errors unless `--lenient` is given (a typo would
//! otherwise run another workload than intended).

use crate::client::{Target, TargetKind};
use crate::driver::{run_phase, DriverConfig, Phase, PhaseResult, RunControl};
use crate::measure::histogram_log::HistogramLogWriter;
use crate::measure::{utc_timestamp, IntervalRecord};
use crate::report::staleness_csv::write_staleness_csv_file;
use crate::report::{
    status_line, summary_table, ycsb_text, ResultsDirectory, RunMetadata, RunResults,
    YCSB_DEFAULT_PERCENTILES,
};
use crate::workload::core::{KNOWN_PROPERTY_NAMES, PROPORTION_SUM_TOLERANCE};
use crate::workload::{workload_warnings, CoreWorkloadConfig, Properties};
use crate::{Error, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// `--target-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetKindArg {
    /// Ask the first host (INFO): kvnode if it reports `kvnode_version:`, else redis.
    Auto,
    /// A plain Redis-compatible server: GET/SET; no scans.
    Redis,
    /// A kvnode: GET/SET and KV.SCAN.
    Kvnode,
}

/// Flags of `kvbench load` and `kvbench run`.
#[derive(Debug, Clone, Args)]
pub struct YcsbArgs {
    /// Workload file, as YCSB's -P (repeatable; a later file wins).
    #[arg(short = 'P', value_name = "FILE")]
    pub workload_files: Vec<PathBuf>,
    /// Workload property, as YCSB's -p (repeatable; wins over every file).
    #[arg(short = 'p', value_name = "NAME=VALUE")]
    pub properties: Vec<String>,
    /// Servers as host:port, comma separated.
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT,...")]
    pub hosts: Vec<String>,
    /// Which server serves each key: round-robin (default with --hosts), same-dc:DC,
    /// token-aware or token-aware:DC (asks the first host for CLUSTER.TOPOLOGY).
    /// Without --hosts the default is token-aware:dc1.
    #[arg(long, value_name = "POLICY")]
    pub routing: Option<String>,
    /// Without --hosts: the embedded cluster's shape, a TOML file (datacenters,
    /// nodes_per_datacenter, replication, consistency, inter_dc_delay).
    #[arg(long, value_name = "FILE")]
    pub local_config: Option<PathBuf>,
    /// What the servers are.
    #[arg(long, value_enum, default_value_t = TargetKindArg::Auto)]
    pub target_kind: TargetKindArg,
    /// Load threads (default: the threadcount property, YCSB's default 1).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Clients (connections to each host) per thread.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Total operations per second, open loop (default: the target property; 0 = closed loop).
    #[arg(long)]
    pub target: Option<f64>,
    /// Seconds from the start excluded from every figure.
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub warmup: f64,
    /// Where `results/<run>/` directories go.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
    /// The run's directory name (default: `<phase>-<workload>-<UTC time>`).
    #[arg(long)]
    pub run_name: Option<String>,
    /// Let unknown properties and proportions not summing to 1 through, with a warning.
    #[arg(long)]
    pub lenient: bool,
    /// No progress bar, even on a terminal (`kvbench sweep` draws its own).
    #[arg(long)]
    pub no_progress: bool,
    /// A connection with requests in flight and no reply this long has failed.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub reply_timeout_ms: u64,
    /// Seed of the clients' random numbers.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run phase: stamp every written value and classify every read as fresh or stale;
    /// prints the stale fraction, k distribution and t-visibility after the summary and
    /// writes staleness.csv. Needs fieldlength >= 32 with constant field lengths. On by
    /// default without --hosts when the values can hold the stamp.
    #[arg(long)]
    pub staleness: bool,
    /// Run phase: a failure schedule, entries `TIME ACTION` separated by `;`, e.g.
    /// "1s kill n2; 3s restart n2; 5s partition dc1 dc2; 7s heal; 8s link dc1 dc2
    /// delay=50ms loss=0.01" (README: failure schedules). Also the workload properties
    /// schedule= and schedule.file=. Writes events.csv and availability.csv, then checks
    /// for lost writes.
    #[arg(long, value_name = "ENTRIES")]
    pub schedule: Option<String>,
    /// The failure schedule from a file: one entry per line, or `.toml` with `[[event]]`
    /// tables (`at = "1s"`, `do = "kill n2"`).
    #[arg(long, value_name = "FILE")]
    pub schedule_file: Option<PathBuf>,
    /// After the run, read every acknowledged write back at ALL and count the lost ones
    /// (lost_writes.csv). On by default with a schedule when writes are tracked
    /// (staleness).
    #[arg(long)]
    pub check_lost_writes: bool,
}

/// The workload configuration of a command line, strict unless `--lenient`.
pub fn workload_config(args: &YcsbArgs, err: &mut dyn Write) -> Result<CoreWorkloadConfig> {
    let files: Vec<&Path> = args.workload_files.iter().map(PathBuf::as_path).collect();
    let overrides: Vec<&str> = args.properties.iter().map(String::as_str).collect();
    let properties = Properties::from_command_line(&files, &overrides)?;
    let unknown = properties.unknown(KNOWN_PROPERTY_NAMES);
    if !args.lenient && !unknown.is_empty() {
        let names: Vec<String> = unknown.iter().map(|name| format!("{name:?}")).collect();
        return Err(Error::StrictWorkload(format!(
            "unknown workload propert{} {}",
            if names.len() == 1 { "y" } else { "ies" },
            names.join(", ")
        )));
    }
    let config = CoreWorkloadConfig::from_properties(&properties)?;
    let sum = config.proportions.sum();
    if !args.lenient && (sum - 1.0).abs() > PROPORTION_SUM_TOLERANCE {
        return Err(Error::StrictWorkload(format!(
            "the operation proportions (readproportion, updateproportion, insertproportion, \
             scanproportion, readmodifywriteproportion) sum to {sum}, not 1"
        )));
    }
    for warning in workload_warnings(&properties, &config) {
        writeln!(err, "kvbench: warning: {warning}").map_err(stdio_error)?;
    }
    Ok(config)
}

/// The driver settings of a command line: the one place that decides what the targets
/// are. Without `--hosts` this is where an embedded local cluster would be started.
pub fn driver_config(args: &YcsbArgs, workload: &CoreWorkloadConfig) -> Result<DriverConfig> {
    if args.hosts.is_empty() {
        return Err(Error::NoHosts);
    }
    let targets = args
        .hosts
        .iter()
        .map(|host| Target::resolve(host.trim()))
        .collect::<Result<Vec<_>>>()?;
    let mut config = DriverConfig::new(targets);
    config.target_kind = match args.target_kind {
        TargetKindArg::Auto => None,
        TargetKindArg::Redis => Some(TargetKind::Redis),
        TargetKindArg::Kvnode => Some(TargetKind::Kvnode),
    };
    config.threads = args.threads.unwrap_or(workload.thread_count as usize);
    config.connections_per_thread = args.connections;
    config.pipeline = args.pipeline;
    config.target_operations_per_second =
        args.target.unwrap_or(workload.target_operations_per_second);
    if !(args.warmup >= 0.0 && args.warmup.is_finite()) {
        return Err(Error::InvalidFlag {
            flag: "warmup",
            detail: format!("{} is not a non-negative number of seconds", args.warmup),
        });
    }
    config.warmup = Duration::from_secs_f64(args.warmup);
    config.reply_timeout = Duration::from_millis(args.reply_timeout_ms.max(1));
    config.router = super::targets::router_factory(args.routing.as_deref(), &config.targets)?;
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    config.staleness = args.staleness;
    Ok(config)
}

fn stdio_error(source: std::io::Error) -> Error {
    Error::Io {
        context: "output".to_string(),
        source,
    }
}

pub(crate) fn default_run_name(phase: Phase, args: &YcsbArgs, start: SystemTime) -> String {
    let workload = args
        .workload_files
        .last()
        .and_then(|path| path.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "defaults".to_string());
    let time: String = utc_timestamp(start)
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let name = format!("{}-{workload}-{time}Z", phase.name());
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Runs `kvbench load` or `kvbench run`.
pub fn run(phase: Phase, args: &YcsbArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    if args.hosts.is_empty() {
        return super::targets::run_embedded(phase, args, out, err);
    }
    run_with_faults(phase, args, None, out, err)
}

/// Nodes kvbench started, which a failure schedule may kill and restart, and their
/// conflict policy (for the lost-write report).
pub struct Faults<'a> {
    pub target: &'a mut dyn crate::faults::FaultTarget,
    pub conflict_policy: String,
}

/// [`run`] against `--hosts`, with `faults` the nodes a schedule acts on (without them a
/// schedule may only change links).
pub fn run_with_faults(
    phase: Phase,
    args: &YcsbArgs,
    faults: Option<Faults<'_>>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let workload = workload_config(args, err)?;
    let driver = driver_config(args, &workload)?;
    if driver.staleness && phase == Phase::Run {
        // Before anything is created or connected.
        crate::driver::check_staleness(&workload)?;
    }
    let schedule = match phase {
        Phase::Run => crate::faults::schedule_from_command_line(
            args.schedule.as_deref(),
            args.schedule_file.as_deref(),
            &args.workload_files,
            &args.properties,
        )?,
        Phase::Load => None,
    };
    if args.check_lost_writes && phase == Phase::Run && !driver.staleness {
        return Err(Error::InvalidFlag {
            flag: "check-lost-writes",
            detail: "needs --staleness: the check reads back the writes the staleness tracker \
                     saw acknowledged"
                .to_string(),
        });
    }
    let addresses: Vec<std::net::SocketAddr> =
        driver.targets.iter().map(|target| target.address).collect();
    let mut remote = crate::faults::RemoteNodes {
        addresses: addresses.clone(),
    };
    let (target, conflict_policy): (&mut dyn crate::faults::FaultTarget, String) = match faults {
        Some(faults) => (faults.target, faults.conflict_policy),
        None => (&mut remote, "unknown".to_string()),
    };
    if let Some(schedule) = &schedule {
        crate::faults::exec::check_schedule(schedule, target)?;
    }
    let run_name = args
        .run_name
        .clone()
        .unwrap_or_else(|| default_run_name(phase, args, SystemTime::now()));
    let directory = ResultsDirectory::create(&args.results, &run_name)?;
    let log_path = directory.histogram_log_path();
    let log_file = std::fs::File::create(&log_path).map_err(|source| Error::Io {
        context: log_path.display().to_string(),
        source,
    })?;
    let control = RunControl::default();
    stop_on_ctrl_c(&control);
    let progress = progress_bar(phase, &workload).filter(|_| !args.no_progress);
    let mut log: Option<HistogramLogWriter<std::io::BufWriter<std::fs::File>>> = None;
    let mut log_error: Option<Error> = None;
    let mut log_file = Some(log_file);
    let started = SystemTime::now();
    let mut on_interval = |record: &IntervalRecord| {
        if log.is_none() && log_error.is_none() {
            if let Some(file) = log_file.take() {
                match HistogramLogWriter::new(std::io::BufWriter::new(file), started) {
                    Ok(writer) => log = Some(writer),
                    Err(error) => log_error = Some(error),
                }
            }
        }
        if let Some(writer) = log.as_mut() {
            let snapshot = &record.snapshot;
            if let Err(error) = writer.write_interval(
                snapshot.start_offset,
                snapshot.end_offset,
                &record.histograms,
            ) {
                log_error.get_or_insert(error);
            }
        }
        if let Some(bar) = &progress {
            bar.println(status_line(&record.snapshot));
            bar.inc(record.snapshot.count());
        }
    };
    let (result, events) = match &schedule {
        Some(schedule) => match crate::faults::run_phase_with_schedule(
            schedule,
            target,
            &workload,
            &driver,
            &control,
            &mut on_interval,
        ) {
            Ok((result, events)) => (Ok(result), Some(events)),
            Err(error) => (Err(error), None),
        },
        None => (
            run_phase(phase, &workload, &driver, &control, &mut on_interval),
            None,
        ),
    };
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let result = result?;
    if let Some(writer) = log {
        writer.finish()?;
    }
    if let Some(error) = log_error {
        return Err(error);
    }
    report(
        phase, args, &workload, &driver, &result, &directory, &run_name, out,
    )?;
    if phase == Phase::Run {
        let field_names =
            crate::workload::record::field_names(&workload.field_name_prefix, workload.field_count);
        let after = crate::faults::AfterRun {
            directory: directory.path(),
            result: &result,
            events: events.as_deref(),
            check_lost_writes: args.check_lost_writes
                || (schedule.is_some() && result.tracker.is_some()),
            addresses: &addresses,
            field_names: &field_names,
            conflict_policy: &conflict_policy,
        };
        out.write_all(after.finish()?.as_bytes())
            .map_err(stdio_error)?;
    }
    match result.partial {
        Some(reason) => Err(Error::PartialRun(reason)),
        None => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    phase: Phase,
    args: &YcsbArgs,
    workload: &CoreWorkloadConfig,
    driver: &DriverConfig,
    result: &PhaseResult,
    directory: &ResultsDirectory,
    run_name: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let status = match &result.partial {
        Some(reason) => format!("partial: {reason}"),
        None => "complete".to_string(),
    };
    let mut config = vec![
        ("status".to_string(), status.clone()),
        ("phase".to_string(), phase.name().to_string()),
        ("hosts".to_string(), args.hosts.join(",")),
        ("target_kind".to_string(), result.target_kind.to_string()),
        ("threads".to_string(), driver.threads.to_string()),
        (
            "connections_per_thread".to_string(),
            driver.connections_per_thread.to_string(),
        ),
        ("pipeline".to_string(), driver.pipeline.to_string()),
        (
            "target_ops_per_second".to_string(),
            driver.target_operations_per_second.to_string(),
        ),
        ("warmup_seconds".to_string(), args.warmup.to_string()),
        ("staleness".to_string(), driver.staleness.to_string()),
        (
            "workload_files".to_string(),
            args.workload_files
                .iter()
                .map(|path| path.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("recordcount".to_string(), workload.record_count.to_string()),
        (
            "operationcount".to_string(),
            workload.operation_count.to_string(),
        ),
    ];
    config.extend(args.properties.iter().filter_map(|property| {
        property
            .split_once('=')
            .map(|(name, value)| (format!("p.{name}"), value.to_string()))
    }));
    let source_directory = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let metadata = RunMetadata::collect(run_name, config, result.start_time, &source_directory);
    let results = RunResults {
        metadata: &metadata,
        run: &result.run,
        totals: &result.totals,
        intervals: &result.intervals,
    };
    directory.write(&results)?;
    let runtime = result
        .run
        .end_offset
        .saturating_sub(result.run.start_offset);
    let mut text = String::new();
    if let Some(reason) = &result.partial {
        text.push_str(&format!(
            "*** PARTIAL RUN, figures are incomplete: {reason} ***\n"
        ));
    }
    text.push_str(&ycsb_text(
        runtime,
        &result.totals,
        &YCSB_DEFAULT_PERCENTILES,
    ));
    if let Some(stats) = &result.staleness {
        let path = write_staleness_csv_file(directory.path(), stats)?;
        let per_interval =
            crate::measure::staleness::intervals::write_staleness_intervals_csv_file(
                directory.path(),
                &stats.intervals,
            )?;
        text.push('\n');
        text.push_str(&stats.report(None, 0));
        text.push_str(&format!("staleness table: {}\n", path.display()));
        text.push_str(&format!(
            "staleness per interval: {}\n",
            per_interval.display()
        ));
    }
    text.push('\n');
    text.push_str(&summary_table(&result.run));
    let achieved = result.run.throughput_per_second();
    let target = driver.target_operations_per_second;
    if target > 0.0 && achieved < 0.9 * target {
        text.push_str(&format!(
            "\nnote: the target of {target} ops/s was not reached ({achieved:.0} ops/s): \
             requests queued behind the schedule, and the Intended- latencies include that wait\n"
        ));
    }
    text.push_str(&format!(
        "\n{} {} against {} ({}, {} clients): {} operations measured, {} in warm-up; results in {}\n",
        phase.name(),
        status,
        args.hosts.join(","),
        result.target_kind,
        result.clients,
        result.totals.operations(),
        result.warmup_totals.operations(),
        directory.path().display()
    ));
    out.write_all(text.as_bytes()).map_err(stdio_error)
}

/// A progress bar on a terminal (stderr), nothing otherwise.
fn progress_bar(phase: Phase, workload: &CoreWorkloadConfig) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let total = match phase {
        Phase::Load => Some(workload.insert_count),
        Phase::Run => (workload.operation_count > 0).then_some(workload.operation_count),
    };
    let (bar, template) = match total {
        Some(total) => (
            ProgressBar::new(total),
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} ops ({eta} left)",
        ),
        // Bounded by maxexecutiontime only: a count, no bar.
        None => (
            ProgressBar::new_spinner(),
            "{spinner} [{elapsed_precise}] {pos} ops",
        ),
    };
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// Ctrl-C asks the run to stop; the run then ends as partial.
fn stop_on_ctrl_c(control: &RunControl) {
    let control = control.clone();
    super::on_ctrl_c("ctrl-c", move || control.request_stop());
}
