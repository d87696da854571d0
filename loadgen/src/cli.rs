//! `kvbench`'s command line: the subcommands and what running each one means. `main.rs`
//! only parses and reports errors; adding a subcommand is a variant here and an arm in
//! [`run`].

pub mod ycsb;

use crate::engine_bench::{self, flags::normalize_gflags_args, EngineFlags};
use crate::Result;
use clap::{Parser, Subcommand};
use std::io::Write;

pub mod compare;
pub mod predict;
pub mod probe;
pub mod report;
pub mod sweep;
pub mod targets;

/// kvbench: benchmarks for the storage engine (and, later, the cluster).
#[derive(Debug, Parser)]
#[command(name = "kvbench", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Benchmark the storage engine with db_bench's flags and output
    /// (e.g. --benchmarks=fillrandom,readrandom --num=500000 --value_size=1024).
    /// A repeated flag takes its last value, as with gflags.
    #[command(args_override_self = true)]
    Engine(EngineFlags),
    /// YCSB load phase against RESP servers (-P workload -p name=value --hosts ...).
    Load(ycsb::YcsbArgs),
    /// YCSB run (transaction) phase against RESP servers.
    Run(ycsb::YcsbArgs),
    /// Predict t-visibility and latency with the WARS model of PBS (Bailis et al., VLDB 2012).
    Predict(predict::PredictArgs),
    /// Compare two summary.csv files with a tolerance per metric; exit 1 on a regression,
    /// 2 on unusable input.
    Compare(compare::CompareArgs),
    /// Staleness probe: write a key, read it back through another coordinator after chosen
    /// delays; P(fresh | t) per delay beside the WARS prediction (-P workloads/probe-pbs).
    Probe(probe::ProbeArgs),
    /// Run `kvbench run` for every cell of a grid (consistency, N/W/R, conflict policy,
    /// workloads, target rates, inter-DC delays, failure schedules); resumable.
    Sweep(sweep::SweepArgs),
    /// Tables and plots (SVG, PNG, one HTML page) of run and sweep directories.
    Report(report::ReportArgs),
}

/// The line printed when `kvbench` runs without a subcommand.
pub const DEFAULT_RUN_NOTICE: &str =
    "kvbench: no subcommand given; running a short sweep of YCSB workload A over the \
consistency levels ONE, QUORUM and ALL, each on a fresh embedded 2-datacenter cluster \
(kvbench sweep --help and kvbench run --help for the flags, kvbench --help for the rest)";

/// YCSB's workload A, compiled in so the default run needs no file beside the binary.
pub const DEFAULT_WORKLOAD: &str = include_str!("../../workloads/workloada");

/// The consistency levels the default run sweeps: R = W = 1, majority, every replica.
pub const DEFAULT_SWEEP_CONSISTENCY: &str = "ONE,QUORUM,ALL";

/// What each cell of the default run adds to workload A: 3000 records (ALL loads them at
/// a few hundred inserts per second, a WAN round trip each), then 15 s of operations, the
/// first 2 s excluded as warm-up, with 2 threads x 8 connections. Three cells take about a
/// minute here.
pub const DEFAULT_RUN_ARGS: [&str; 12] = [
    "-p",
    "recordcount=3000",
    "-p",
    "operationcount=10000000",
    "-p",
    "maxexecutiontime=15",
    "--threads",
    "2",
    "--connections",
    "8",
    "--warmup",
    "2",
];

/// Calls `stop` once when Ctrl-C arrives, from a thread named `name` with its own small
/// runtime. Without that thread (it could not start) Ctrl-C kills the process, which ends
/// the run as partial anyway.
fn on_ctrl_c(name: &str, stop: impl FnOnce() + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    stop();
                }
            });
        });
    drop(spawned);
}

/// The command line of the default run: `kvbench sweep` over
/// [`DEFAULT_SWEEP_CONSISTENCY`] into `results/defaults-<UTC time>/`, each cell
/// `kvbench run` with workload A's properties as `-p` overrides, then [`DEFAULT_RUN_ARGS`].
pub fn default_run_args() -> Vec<String> {
    let time: String = crate::measure::utc_timestamp(std::time::SystemTime::now())
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let mut args: Vec<String> = [
        "kvbench",
        "sweep",
        "--consistency",
        DEFAULT_SWEEP_CONSISTENCY,
        "--name",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    args.push(format!("defaults-{time}Z"));
    args.push("--".to_string());
    for (name, value) in crate::workload::Properties::parse(DEFAULT_WORKLOAD).iter() {
        args.push("-p".to_string());
        args.push(format!("{name}={value}"));
    }
    args.extend(DEFAULT_RUN_ARGS.iter().map(|arg| arg.to_string()));
    args
}

/// Parses the process arguments (gflags spellings accepted after `engine`).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> std::result::Result<Cli, clap::Error> {
    let args: Vec<String> = args.into_iter().collect();
    let normalized = match args.iter().position(|arg| arg == "engine") {
        Some(at) => {
            let mut head = args[..=at].to_vec();
            head.extend(normalize_gflags_args(args[at + 1..].iter().cloned()));
            head
        }
        None => args,
    };
    Cli::try_parse_from(normalized)
}

/// Runs what the command line asks for.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    match cli.command {
        Some(Command::Engine(flags)) => engine_bench::run(&flags, out, err).map(drop),
        Some(Command::Load(args)) => ycsb::run(crate::driver::Phase::Load, &args, out, err),
        Some(Command::Run(args)) => ycsb::run(crate::driver::Phase::Run, &args, out, err),
        Some(Command::Predict(args)) => predict::run(&args, out),
        Some(Command::Compare(args)) => compare::run(&args, out),
        Some(Command::Probe(args)) => probe::run(&args, out),
        Some(Command::Sweep(args)) => sweep::run(&args, out, err),
        Some(Command::Report(args)) => report::run(&args, out),
        None => {
            writeln!(out, "{DEFAULT_RUN_NOTICE}").map_err(|source| crate::Error::Io {
                context: "stdout".to_string(),
                source,
            })?;
            let defaults = parse(default_run_args()).expect("default run arguments parse");
            run(defaults, out, err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn engine_subcommand_takes_db_bench_flags() {
        let cli = parse(args(&[
            "kvbench",
            "engine",
            "-num=500000",
            "--nosync",
            "--sync=true",
        ]))
        .unwrap();
        let Some(Command::Engine(flags)) = cli.command else {
            panic!("expected engine subcommand");
        };
        assert_eq!(flags.num, 500_000);
        assert!(flags.sync);
    }

    #[test]
    fn the_default_run_is_a_consistency_sweep_whose_flags_parse() {
        let Some(Command::Sweep(sweep)) = parse(default_run_args()).unwrap().command else {
            panic!("the default run is a sweep");
        };
        let spec = sweep.spec().unwrap();
        assert_eq!(spec.consistency, ["ONE", "QUORUM", "ALL"]);
        assert_eq!(spec.cells().unwrap().len(), 3);
        assert!(sweep.name.starts_with("defaults-"));
        let run = parse(
            ["kvbench", "run"]
                .iter()
                .map(|s| s.to_string())
                .chain(spec.args.iter().cloned()),
        )
        .unwrap();
        assert!(matches!(run.command, Some(Command::Run(_))));
    }

    #[test]
    fn no_subcommand_is_accepted() {
        assert!(parse(args(&["kvbench"])).unwrap().command.is_none());
    }

    #[test]
    fn unknown_engine_flag_is_rejected() {
        let error = parse(args(&["kvbench", "engine", "--num=5", "--bogus=1"])).unwrap_err();
        assert!(error.to_string().contains("--bogus"));
    }
}
