//! `kvbench sweep`: `kvbench run` for every cell of a grid (see [`crate::sweep`]).
//!
//! ```text
//! kvbench sweep --consistency ONE,QUORUM,ALL --conflict siblings,lww -- \
//!     -P workloads/workloada -p recordcount=5000 -p maxexecutiontime=20 --warmup 2
//! kvbench sweep --file sweeps/consistency.toml --name consistency
//! ```
//!
//! Without `--hosts` (in the run flags) each cell starts its own embedded cluster shaped by
//! `--local-config` (if given) and the cell's consistency, replication, conflict policy and
//! inter-datacenter delay, loads it and runs the workload. With `--hosts` each cell runs
//! the workload against those servers, and axes that reshape a cluster are refused.
//! Results go to `<results>/<name>/`; the same command again resumes an interrupted sweep.
//! At the end it prints the trade-off table and writes the report (`report/index.html`).

use super::targets;
use super::ycsb::{self, YcsbArgs};
use crate::driver::Phase;
use crate::local::LocalClusterOptions;
use crate::sweep::grid::{parse_conflict, parse_consistency, parse_replication};
use crate::sweep::table::tradeoff_table;
use crate::sweep::{run_sweep, Cell, CellOutcome, Progress, SweepSpec, SweepSummary};
use crate::{Error, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Flags of `kvbench sweep`. An axis flag replaces the same axis of `--file`.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// A TOML sweep file: the axes below and `args` (see crate::sweep::grid).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Consistency levels: ONE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM or `R<r>W<w>` (R1W3).
    #[arg(long, value_delimiter = ',', value_name = "LEVEL,...")]
    pub consistency: Vec<String>,
    /// Replication: N in total (3) or per datacenter (dc1=2/dc2=1).
    #[arg(long, value_delimiter = ',', value_name = "N,...")]
    pub replication: Vec<String>,
    /// Conflict policies: siblings, lww.
    #[arg(long, value_delimiter = ',', value_name = "POLICY,...")]
    pub conflict: Vec<String>,
    /// Workload files, one cell each (added after the run flags' -P files).
    #[arg(long = "workload", value_delimiter = ',', value_name = "FILE,...")]
    pub workloads: Vec<String>,
    /// Target rates in ops/s (0: closed loop).
    #[arg(long = "target", value_delimiter = ',', value_name = "OPS,...")]
    pub targets: Vec<f64>,
    /// One-way inter-datacenter delays in the link emulator's syntax; repeat the flag
    /// (delays may hold commas).
    #[arg(long = "inter-dc-delay", value_name = "DELAY")]
    pub delays: Vec<String>,
    /// Failure schedule files, one cell each (repeat the flag).
    #[arg(long = "schedule", value_name = "FILE")]
    pub schedules: Vec<String>,
    /// Runs of each cell.
    #[arg(long)]
    pub repeat: Option<u32>,
    /// Where the sweep's directory goes.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
    /// The sweep's directory name under --results; rerunning with the same name resumes.
    #[arg(long, default_value = "sweep")]
    pub name: String,
    /// Do not write the report at the end.
    #[arg(long)]
    pub no_report: bool,
    /// `kvbench run` flags every cell starts from (after `--`).
    #[arg(last = true, value_name = "RUN FLAGS")]
    pub run_args: Vec<String>,
}

impl SweepArgs {
    /// The grid: `--file`, with each axis flag given replacing the file's axis.
    pub fn spec(&self) -> Result<SweepSpec> {
        let mut spec = match &self.file {
            Some(path) => SweepSpec::from_file(path)?,
            None => SweepSpec::default(),
        };
        fn replace<T: Clone>(axis: &mut Vec<T>, flag: &[T]) {
            if !flag.is_empty() {
                *axis = flag.to_vec();
            }
        }
        replace(&mut spec.consistency, &self.consistency);
        replace(&mut spec.replication, &self.replication);
        replace(&mut spec.conflict, &self.conflict);
        replace(&mut spec.workload, &self.workloads);
        replace(&mut spec.target, &self.targets);
        replace(&mut spec.inter_dc_delay, &self.delays);
        replace(&mut spec.schedule, &self.schedules);
        if let Some(repeat) = self.repeat {
            spec.repeat = repeat;
        }
        spec.args.extend(self.run_args.iter().cloned());
        Ok(spec)
    }
}

/// The `kvbench run` flags of the grid, parsed.
fn base_args(spec: &SweepSpec) -> Result<YcsbArgs> {
    let mut argv = vec!["kvbench".to_string(), "run".to_string()];
    argv.extend(spec.args.iter().cloned());
    match super::parse(argv) {
        Ok(super::Cli {
            command: Some(super::Command::Run(args)),
        }) => Ok(args),
        Ok(_) => unreachable!("`kvbench run ...` parses as run"),
        Err(error) => Err(Error::InvalidFlag {
            flag: "run flags",
            detail: error.to_string().lines().next().unwrap_or("").to_string(),
        }),
    }
}

/// The failure-schedule axis: the cell's schedule file as the workload property
/// `schedule.file` (read by `kvbench run`'s failure schedules). A kvbench without failure
/// schedules refuses the property as unknown, naming it.
pub fn apply_schedule(args: &mut YcsbArgs, schedule: &str) {
    args.properties.push(format!("schedule.file={schedule}"));
}

/// The embedded cluster of a cell: the base `--local-config` with the cell's values.
fn cell_cluster(base: &LocalClusterOptions, cell: &Cell) -> Result<LocalClusterOptions> {
    let mut options = base.clone();
    if let Some(level) = &cell.consistency {
        options.consistency = parse_consistency(level)?;
    }
    if let Some(replication) = &cell.replication {
        options.replication = parse_replication(replication)?;
    }
    if let Some(policy) = &cell.conflict {
        options.conflict_policy = parse_conflict(policy)?;
    }
    if let Some(delay) = &cell.inter_dc_delay {
        options.inter_dc_delay = delay.clone();
    }
    options.validate()?;
    Ok(options)
}

/// The run flags of a cell whose run goes to `cells_dir/<cell>/`.
fn cell_args(base: &YcsbArgs, cell: &Cell, cells_dir: &Path) -> Result<YcsbArgs> {
    let mut args = base.clone();
    args.results = cells_dir.to_path_buf();
    args.run_name = Some(cell.dir_name());
    args.no_progress = true;
    if let Some(target) = cell.target {
        args.target = Some(target);
    }
    if let Some(workload) = &cell.workload {
        args.workload_files.push(PathBuf::from(workload));
    }
    if let Some(schedule) = &cell.schedule {
        apply_schedule(&mut args, schedule);
    }
    if args.hosts.is_empty() {
        let options = cell_cluster(&targets::local_options(base)?, cell)?;
        let path = cells_dir.join(format!("{}.cluster.toml", cell.dir_name()));
        let text = toml::to_string(&options).map_err(|error| Error::InvalidOption {
            field: "sweep cluster options".to_string(),
            detail: error.to_string(),
        })?;
        std::fs::write(&path, text).map_err(|source| Error::Io {
            context: path.display().to_string(),
            source,
        })?;
        args.local_config = Some(path);
    }
    Ok(args)
}

fn run_cell(base: &YcsbArgs, cell: &Cell, cells_dir: &Path) -> Result<PathBuf> {
    let args = cell_args(base, cell, cells_dir)?;
    let log_path = cells_dir.join(format!("{}.log", cell.dir_name()));
    let mut log = std::fs::File::create(&log_path).map_err(|source| Error::Io {
        context: log_path.display().to_string(),
        source,
    })?;
    let mut log_err = log.try_clone().map_err(|source| Error::Io {
        context: log_path.display().to_string(),
        source,
    })?;
    ycsb::run(Phase::Run, &args, &mut log, &mut log_err)?;
    Ok(cells_dir.join(cell.dir_name()))
}

/// Runs `kvbench sweep`.
pub fn run(args: &SweepArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    let spec = args.spec()?;
    let cells = spec.cells()?;
    let base = base_args(&spec)?;
    if !base.hosts.is_empty() && spec.sweeps_cluster() {
        return Err(Error::InvalidFlag {
            flag: "hosts",
            detail: "consistency, replication, conflict and inter_dc_delay axes reshape the \
                     embedded cluster; with --hosts sweep workloads and targets only"
                .to_string(),
        });
    }
    // Each cell's flags and cluster are checked before the first cell runs.
    let scratch = tempfile::tempdir().map_err(|source| Error::Io {
        context: "temporary directory".to_string(),
        source,
    })?;
    for cell in &cells {
        cell_args(&base, cell, scratch.path())?;
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if args.name.is_empty() || args.name.starts_with('.') || !args.name.chars().all(plain) {
        return Err(Error::InvalidFlag {
            flag: "name",
            detail: format!(
                "{:?}: a directory name of ASCII letters, digits, '-', '_' and '.', not \
                 starting with '.'",
                args.name
            ),
        });
    }
    let directory = args.results.join(&args.name);
    let stop = Arc::new(AtomicBool::new(false));
    watch_ctrl_c(&stop);
    let bar = ProgressBar::new(cells.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} cells ({eta} left) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    let mut runner = |cell: &Cell, cells_dir: &Path| {
        if stop.load(Ordering::SeqCst) {
            return CellOutcome::Interrupted;
        }
        let outcome = run_cell(&base, cell, cells_dir);
        if stop.load(Ordering::SeqCst) {
            return CellOutcome::Interrupted;
        }
        match outcome {
            Ok(dir) => CellOutcome::Done(dir),
            Err(error) => CellOutcome::Failed(error.to_string()),
        }
    };
    let total = cells.len();
    let mut progress = |event: Progress<'_>| match event {
        Progress::Start { skipped, .. } => {
            bar.set_position(skipped as u64);
            if skipped > 0 {
                bar.println(format!(
                    "{skipped} of {total} cells finished earlier: skipped"
                ));
            }
        }
        Progress::Cell(cell) => {
            bar.set_message(format!("cell {}/{total}: {}", cell.index + 1, cell.label()))
        }
        Progress::CellEnded(_) => bar.inc(1),
    };
    let summary = run_sweep(&directory, &spec, &mut runner, &mut progress);
    bar.finish_and_clear();
    let summary = summary?;
    finish(args, &directory, &summary, out, err)
}

fn finish(
    args: &SweepArgs,
    directory: &Path,
    summary: &SweepSummary,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let io = |source| Error::Io {
        context: "output".to_string(),
        source,
    };
    let mut text = format!(
        "\nsweep {}: {} cells, {} run now, {} finished earlier, {} failed{}\n\n",
        directory.display(),
        summary.cells,
        summary.completed + summary.failed,
        summary.skipped,
        summary.failed,
        if summary.interrupted {
            " (interrupted: run the same command again to resume)"
        } else {
            ""
        }
    );
    text.push_str(&tradeoff_table(&summary.rows));
    text.push_str(&format!(
        "\nrows: {}; each cell's output: {}/cells/<cell>.log\n",
        directory.join(crate::sweep::SWEEP_CSV_NAME).display(),
        directory.display()
    ));
    out.write_all(text.as_bytes()).map_err(io)?;
    if !args.no_report && !summary.rows.is_empty() {
        let report_dir = directory.join("report");
        match crate::report::html::write_report(&[directory.to_path_buf()], &report_dir) {
            Ok(written) => writeln!(
                out,
                "report: {} (plots as SVG and PNG beside it)",
                written.index.display()
            )
            .map_err(io)?,
            Err(error) => writeln!(err, "kvbench: warning: no report: {error}").map_err(io)?,
        }
    }
    if summary.interrupted {
        return Err(Error::PartialRun("sweep interrupted".to_string()));
    }
    let failed = summary
        .rows
        .iter()
        .filter(|row| row.get("status").map(String::as_str) != Some("complete"))
        .count();
    if failed > 0 {
        // Scripts see it; the same command again runs the failed cells only.
        return Err(Error::PartialRun(format!(
            "{failed} cell(s) failed (their rows in sweep.csv say why); run the same command \
             again to retry them"
        )));
    }
    Ok(())
}

/// Sets `stop` on Ctrl-C (the running cell stops through its own handler).
fn watch_ctrl_c(stop: &Arc<AtomicBool>) {
    let stop = Arc::clone(stop);
    super::on_ctrl_c("sweep-ctrl-c", move || stop.store(true, Ordering::SeqCst));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_flags_and_cluster_follow_the_cell() {
        let spec = SweepSpec {
            consistency: vec!["R1W3".into()],
            conflict: vec!["lww".into()],
            target: vec![100.0],
            inter_dc_delay: vec!["5".into()],
            args: vec!["-p".into(), "recordcount=10".into()],
            ..SweepSpec::default()
        };
        let base = base_args(&spec).unwrap();
        let cells = spec.cells().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let args = cell_args(&base, &cells[0], dir.path()).unwrap();
        assert_eq!(args.target, Some(100.0));
        assert_eq!(args.run_name.as_deref(), Some(cells[0].dir_name().as_str()));
        let options = targets::local_options(&args).unwrap();
        assert_eq!(options.inter_dc_delay, "5");
        assert_eq!(
            options.conflict_policy,
            cluster::version::ConflictPolicy::LastWriteWins
        );
        assert!(matches!(
            options.consistency,
            cluster::protocol::Consistency::Counts {
                read: Some(1),
                write: Some(3)
            }
        ));
        let bad = SweepSpec {
            replication: vec!["7".into()],
            ..SweepSpec::default()
        };
        let cell = &bad.cells().unwrap()[0];
        let error = cell_args(&base, cell, dir.path()).unwrap_err().to_string();
        assert!(error.contains("replication"), "{error}");
        let mut cell = cells[0].clone();
        cell.schedule = Some("s.toml".into());
        let args = cell_args(&base, &cell, dir.path()).unwrap();
        assert!(args
            .properties
            .contains(&"schedule.file=s.toml".to_string()));
    }
}
