//! `kvbench`: parse the command line, run it, report errors. The work is in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    // A failure schedule's embedded cluster runs nodes as `kvnode` symlinks to this binary.
    if loadgen::faults::node::invoked_as_node() {
        // A node process: its diagnostics as kvnode's own.
        cluster::diagnostics::init_stderr_logger(log::LevelFilter::Info);
        return loadgen::faults::node::node_main();
    }
    // The embedded clusters' nodes start and stop with every run: their warnings only.
    cluster::diagnostics::init_stderr_logger(log::LevelFilter::Warn);
    let cli = match loadgen::cli::parse(std::env::args()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kvbench: error: {}", message(&error));
            // `kvbench compare` distinguishes unusable input (2) from a regression (1).
            let code = error
                .downcast_ref::<loadgen::Error>()
                .map_or(1, loadgen::Error::exit_code);
            ExitCode::from(code)
        }
    }
}

/// The error and its causes, joined by ": ", leaving out a cause whose text the message
/// already holds: several errors name their source in their own message (`I/O error on
/// FILE: REASON`) and also report it as the source, which `{:#}` would print twice.
fn message(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn run(cli: loadgen::cli::Cli) -> anyhow::Result<()> {
    // Unlocked handles: each write takes the lock for itself. Holding stderr's lock for the
    // whole run would block the in-process nodes of an embedded cluster, which log to
    // stderr from their own threads, and their shutdown with them; the progress bar also
    // writes to stderr from the measurement thread.
    // No added context: each error names what failed ("4 regression(s) beyond tolerance",
    // "cannot connect to 127.0.0.1:6379: ..."), and "benchmark failed" misled for compare.
    Ok(loadgen::cli::run(
        cli,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )?)
}
