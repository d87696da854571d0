//! What `kvbench report` reads: run directories (`summary.csv`, `intervals.csv`,
//! `staleness.csv`, `events.csv`, `*.hlog`) and sweep directories (`sweep.csv` and the run
//! directories of its cells).
//!
//! `events.csv` is what a failure schedule leaves in a run directory: a header, then one
//! row per event, `time_s` (seconds from the run's start, the clock of `intervals.csv`)
//! and `event` (`kill`, `partition`, ...), optionally `target` and `result`. Other columns
//! are ignored.

use crate::sweep::results::{read_rows, Row};
use crate::sweep::SWEEP_CSV_NAME;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The events file of a run directory.
pub const EVENTS_CSV_NAME: &str = "events.csv";

/// One run directory, read.
#[derive(Debug, Clone, Default)]
pub struct RunInput {
    /// The setting's name in tables and legends: the cell's label, or the directory name.
    pub label: String,
    pub dir: PathBuf,
    pub summary: Vec<Row>,
    pub intervals: Vec<Row>,
    /// `staleness.csv` rows, empty without one.
    pub staleness: Vec<Row>,
    /// `(seconds from the start, what happened)`.
    pub events: Vec<(f64, String)>,
    /// Every `.hlog` file in the directory.
    pub hlogs: Vec<PathBuf>,
    /// The sweep row of the cell this run is, if any.
    pub cell: Option<Row>,
}

/// One sweep directory, read.
#[derive(Debug, Clone, Default)]
pub struct SweepInput {
    pub label: String,
    pub dir: PathBuf,
    pub rows: Vec<Row>,
}

/// Everything a report is made from.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub runs: Vec<RunInput>,
    pub sweeps: Vec<SweepInput>,
}

fn name_of(dir: &Path) -> String {
    dir.file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into())
}

/// Reads every directory given.
pub fn load(dirs: &[PathBuf]) -> Result<Inputs> {
    let mut inputs = Inputs::default();
    for dir in dirs {
        if dir.join(SWEEP_CSV_NAME).is_file() {
            let rows = read_rows(&dir.join(SWEEP_CSV_NAME))?;
            for row in rows.iter().filter(|row| row["status"] == "complete") {
                // The row names the directory as it was when the sweep ran; the cell's
                // directory is found under this sweep's cells/ wherever it is now.
                let name = row
                    .get("run_dir")
                    .map(|path| name_of(Path::new(path)))
                    .unwrap_or_default();
                let run_dir = dir.join("cells").join(name);
                if run_dir.join("summary.csv").is_file() {
                    let mut run = load_run(&run_dir)?;
                    run.label = row.get("label").cloned().unwrap_or(run.label);
                    run.cell = Some(row.clone());
                    inputs.runs.push(run);
                }
            }
            inputs.sweeps.push(SweepInput {
                label: name_of(dir),
                dir: dir.clone(),
                rows,
            });
        } else if dir.join("summary.csv").is_file() {
            inputs.runs.push(load_run(dir)?);
        } else {
            return Err(Error::InvalidOption {
                field: "report directory".to_string(),
                detail: format!(
                    "{}: neither a run directory (summary.csv) nor a sweep directory \
                     ({SWEEP_CSV_NAME})",
                    dir.display()
                ),
            });
        }
    }
    Ok(inputs)
}

/// Reads one run directory.
pub fn load_run(dir: &Path) -> Result<RunInput> {
    let optional = |name: &str| -> Result<Vec<Row>> {
        let path = dir.join(name);
        if path.is_file() {
            read_rows(&path)
        } else {
            Ok(Vec::new())
        }
    };
    let mut hlogs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::Io {
            context: dir.display().to_string(),
            source,
        })?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "hlog"))
        .collect();
    hlogs.sort();
    Ok(RunInput {
        label: name_of(dir),
        dir: dir.to_path_buf(),
        summary: read_rows(&dir.join("summary.csv"))?,
        intervals: optional("intervals.csv")?,
        staleness: optional("staleness.csv")?,
        events: read_events(&dir.join(EVENTS_CSV_NAME))?,
        hlogs,
        cell: None,
    })
}

/// Reads `events.csv` (nothing when the file is absent); a row without a number in
/// `time_s` is an error naming the file.
pub fn read_events(path: &Path) -> Result<Vec<(f64, String)>> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let mut events = Vec::new();
    for (line, row) in read_rows(path)?.into_iter().enumerate() {
        let time = row.get("time_s").and_then(|t| t.trim().parse::<f64>().ok());
        let Some(time) = time.filter(|t| t.is_finite()) else {
            return Err(Error::InvalidOption {
                field: format!("{} row {}", path.display(), line + 1),
                detail: "time_s must be a number of seconds".to_string(),
            });
        };
        let mut what = row.get("event").cloned().unwrap_or_default();
        if let Some(target) = row.get("target").filter(|t| !t.is_empty()) {
            what = format!("{what} {target}");
        }
        events.push((time, what));
    }
    Ok(events)
}

/// A number from a row, if the column holds one.
pub fn number(row: &Row, column: &str) -> Option<f64> {
    row.get(column).and_then(|value| value.parse::<f64>().ok())
}
