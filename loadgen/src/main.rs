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
            // `kvbench compare` distinguishes unusable input (2) from a regression (1).
            let code = error
                .downcast_ref::<loadgen::Error>()
                .map_or(1, loadgen::Error::exit_code);
            ExitCode::from(code)
        }
    }
}

fn run(cli: loadgen::cli::Cli) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    loadgen::cli::run(cli, &mut stdout.lock(), &mut stderr.lock()).context("benchmark failed")
}
