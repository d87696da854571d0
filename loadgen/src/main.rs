//! `kvbench`: parse the command line, run it, report errors. The work is in the library.

use anyhow::Context;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match loadgen::cli::parse(std::env::args()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kvbench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: loadgen::cli::Cli) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    // stderr is locked per write, not for the whole run: the progress bar writes to it
    // from the measurement thread while the run goes.
    loadgen::cli::run(cli, &mut stdout.lock(), &mut std::io::stderr()).context("benchmark failed")
}
