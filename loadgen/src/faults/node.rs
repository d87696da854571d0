//! kvbench as a `kvnode`: invoked under the name `kvnode` (a symlink to the kvbench
//! executable) with `--config FILE`, it runs one node exactly as `kvnode` does: the same
//! [`RunningNode`], the same ready line on stdout, a clean stop on SIGTERM or SIGINT.
//!
//! This lets a failure schedule run the embedded cluster as separate processes that can be
//! SIGKILLed, when no `kvnode` executable sits beside kvbench (`cargo build` builds only
//! kvbench; `cargo test -p loadgen` no kvnode).

use cluster::config::NodeConfig;
use cluster::server::RunningNode;
use std::path::{Path, PathBuf};

/// The name under which kvbench runs a node.
pub const NODE_PROGRAM_NAME: &str = "kvnode";

/// Whether this process was started as `kvnode` (`argv[0]`'s file name).
pub fn invoked_as_node() -> bool {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|path| path.file_name().map(|name| name == NODE_PROGRAM_NAME))
        .unwrap_or(false)
}

/// Runs the node of `kvnode --config FILE` until SIGTERM or SIGINT; returns the exit code.
pub fn node_main() -> std::process::ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let config = match arguments.as_slice() {
        [flag, path] if flag == "--config" => Path::new(path).to_path_buf(),
        _ => {
            eprintln!("kvnode (kvbench): usage: kvnode --config FILE");
            return std::process::ExitCode::from(2);
        }
    };
    match run_node(&config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kvnode (kvbench): {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_node(path: &Path) -> Result<(), String> {
    let config = NodeConfig::load(path).map_err(|error| format!("{}: {error}", path.display()))?;
    config
        .validate()
        .map_err(|error| format!("{}: {error}", path.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("kvnode")
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    runtime.block_on(async move {
        let node_id = config.node_id.clone();
        let datacenter = config.datacenter.clone();
        // Handlers first: a SIGTERM right after the ready line must stop the node cleanly.
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())
            .map_err(|error| format!("cannot watch SIGTERM: {error}"))?;
        let mut interrupt = signal(SignalKind::interrupt())
            .map_err(|error| format!("cannot watch SIGINT: {error}"))?;
        let node = RunningNode::start(config)
            .await
            .map_err(|error| format!("kvnode {node_id} could not start: {error}"))?;
        // The ready line the launcher waits for (cluster::launcher::readiness::READY_MARKER).
        println!(
            "kvnode {node_id} ({datacenter}) {} {}",
            cluster::launcher::readiness::READY_MARKER,
            node.client_address()
        );
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        node.stop()
            .await
            .map_err(|error| format!("shutdown failed: {error}"))
    })
}
