//! `kvbench report DIR...`: tables and plots of run and sweep directories (see
//! [`crate::report::html`]).
//!
//! ```text
//! kvbench report results/sweep                         # a sweep: results/sweep/report/
//! kvbench report results/run-a results/run-b --out cmp # settings side by side
//! kvbench report host1/run host2/run --merge-hlogs      # one run from several client hosts
//! ```

use crate::report::html::{write_report_with, ReportOptions};
use crate::{Error, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// Flags of `kvbench report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Run directories (with summary.csv) and sweep directories (with sweep.csv).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where index.html and the plots go (default: DIR/report for the first DIR).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The directories are one run from several kvbench processes: merge their .hlog
    /// files by tag into one latency table.
    #[arg(long)]
    pub merge_hlogs: bool,
}

/// Runs `kvbench report`.
pub fn run(args: &ReportArgs, out: &mut dyn Write) -> Result<()> {
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| args.dirs[0].join("report"));
    let options = ReportOptions {
        merge_hlogs: args.merge_hlogs,
    };
    let written = write_report_with(&args.dirs, &out_dir, options)?;
    writeln!(
        out,
        "report: {} ({} plots, each as SVG and PNG in {})",
        written.index.display(),
        written.plots.len(),
        out_dir.display()
    )
    .map_err(|source| Error::Io {
        context: "stdout".to_string(),
        source,
    })
}
