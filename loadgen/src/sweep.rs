//! `kvbench sweep`: a benchmark run for every cell of a grid (consistency levels or N/W/R,
//! conflict policy, workloads, target rates, inter-datacenter delays, failure schedules),
//! one result row per cell in `sweep.csv`, resumable.
//!
//! A sweep directory holds:
//!
//! - `sweep.json`: the grid ([`SweepSpec`]) it was started with; rerunning into the same
//!   directory with another grid is refused rather than mixing two sweeps;
//! - `sweep.csv`: one row per finished cell ([`results`]); it is also the sweep's state:
//!   a cell with a `complete` row is skipped when the sweep is run again, so an interrupted
//!   sweep picks up where it stopped. Failed cells are run again;
//! - `cells/<cell>/`: each cell's run directory (and `<cell>-load/` on the embedded
//!   cluster), `cells/<cell>.log` its printed output. A cell's leftovers from an
//!   interrupted attempt are removed before it runs again.
//!
//! How a cell is run is the caller's ([`CellRunner`]): `cli/sweep.rs` runs `kvbench run`
//! in-process, tests plant results.

pub mod grid;
pub mod results;
pub mod table;

pub use grid::{Cell, SweepSpec};
pub use results::{Row, SWEEP_CSV_NAME};

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The grid's file in a sweep directory.
pub const SWEEP_SPEC_NAME: &str = "sweep.json";

/// How one attempt at a cell ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CellOutcome {
    /// The cell ran; its run directory is the path given.
    Done(PathBuf),
    /// The cell ran and failed; the sweep records it and goes on.
    Failed(String),
    /// The sweep was asked to stop (Ctrl-C): nothing is recorded for this cell.
    Interrupted,
}

/// Runs one cell, given the directory its run should go into (`cells/`).
pub type CellRunner<'a> = dyn FnMut(&Cell, &Path) -> CellOutcome + 'a;

/// What the sweep driver tells its caller as it goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress<'a> {
    /// The sweep starts: `total` cells, `skipped` of them finished earlier.
    Start { total: usize, skipped: usize },
    /// A cell starts.
    Cell(&'a Cell),
    /// A cell ended (recorded or not).
    CellEnded(&'a Cell),
}

/// How a sweep ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepSummary {
    pub cells: usize,
    /// Finished in an earlier run of the sweep.
    pub skipped: usize,
    pub completed: usize,
    pub failed: usize,
    pub interrupted: bool,
    /// Every row of `sweep.csv`, in grid order.
    pub rows: Vec<Row>,
}

/// Runs every cell of `spec` not finished yet into `directory`.
pub fn run_sweep(
    directory: &Path,
    spec: &SweepSpec,
    runner: &mut CellRunner<'_>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<SweepSummary> {
    let cells = spec.cells()?;
    let io_error = |path: &Path| {
        let context = path.display().to_string();
        move |source| Error::Io { context, source }
    };
    let cells_dir = directory.join("cells");
    std::fs::create_dir_all(&cells_dir).map_err(io_error(&cells_dir))?;
    check_spec(directory, spec)?;
    let csv_path = directory.join(SWEEP_CSV_NAME);
    let mut rows: Vec<Row> = if csv_path.is_file() {
        results::read_rows(&csv_path)?
            .into_iter()
            .filter(|row| row.get("status").map(String::as_str) == Some("complete"))
            .collect()
    } else {
        Vec::new()
    };
    // Failed rows of an earlier run are dropped: those cells run again.
    results::write_sweep_csv(&csv_path, &rows)?;
    let is_done = |rows: &[Row], cell: &Cell| {
        rows.iter()
            .any(|row| row.get("cell").map(String::as_str) == Some(cell.key().as_str()))
    };
    let skipped = cells.iter().filter(|cell| is_done(&rows, cell)).count();
    let mut summary = SweepSummary {
        cells: cells.len(),
        skipped,
        ..SweepSummary::default()
    };
    progress(Progress::Start {
        total: cells.len(),
        skipped,
    });
    for cell in &cells {
        if is_done(&rows, cell) {
            continue;
        }
        for leftover in [cell.dir_name(), format!("{}-load", cell.dir_name())] {
            let path = cells_dir.join(leftover);
            if path.exists() {
                std::fs::remove_dir_all(&path).map_err(io_error(&path))?;
            }
        }
        progress(Progress::Cell(cell));
        let outcome = runner(cell, &cells_dir);
        progress(Progress::CellEnded(cell));
        let row = match outcome {
            CellOutcome::Interrupted => {
                summary.interrupted = true;
                break;
            }
            CellOutcome::Done(run_dir) => match results::run_figures(&run_dir) {
                Ok(figures) => {
                    summary.completed += 1;
                    results::cell_row(cell, "complete", &figures)
                }
                Err(error) => {
                    summary.failed += 1;
                    results::cell_row(cell, &format!("failed: {error}"), &Row::new())
                }
            },
            CellOutcome::Failed(reason) => {
                summary.failed += 1;
                results::cell_row(cell, &format!("failed: {reason}"), &Row::new())
            }
        };
        rows.push(row);
        results::write_sweep_csv(&csv_path, &rows)?;
    }
    let index = |row: &Row| {
        row.get("index")
            .and_then(|i| i.parse::<usize>().ok())
            .unwrap_or(usize::MAX)
    };
    rows.sort_by_key(index);
    summary.rows = rows;
    Ok(summary)
}

/// Writes `sweep.json`, or checks that the one there describes the same grid.
fn check_spec(directory: &Path, spec: &SweepSpec) -> Result<()> {
    let path = directory.join(SWEEP_SPEC_NAME);
    let text = serde_json::to_string_pretty(spec).expect("a sweep spec serializes");
    if path.is_file() {
        let previous = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            context: path.display().to_string(),
            source,
        })?;
        let same = serde_json::from_str::<SweepSpec>(&previous).is_ok_and(|old| &old == spec);
        if !same {
            return Err(Error::InvalidOption {
                field: "sweep directory".to_string(),
                detail: format!(
                    "{} holds another sweep (its grid is in {}); give another --name, or \
                     remove the directory to start over",
                    directory.display(),
                    path.display()
                ),
            });
        }
        return Ok(());
    }
    std::fs::write(&path, text).map_err(|source| Error::Io {
        context: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
pub(crate) mod tests;
