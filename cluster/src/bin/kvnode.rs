//! `kvnode`: one node of the Dynamo-style store, serving RESP clients.
//!
//! `kvnode --config node.toml [overrides]`, or with no config a single node with defaults
//! and its data in `./kvnode-data`. Prints one line when ready; exits non-zero with a
//! message naming the problem on a bad config or a busy port; stops cleanly on SIGINT or
//! SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

use cluster::config::NodeConfig;
use cluster::server::{RunningNode, ServeOptions};

/// mimalloc rather than glibc malloc: under redis-benchmark glibc's `_int_malloc` alone
/// was 10-19% of kvnode's CPU (per-request buffers, values copied into the memtable and
/// freed by the flush thread).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the 16th option of `mi_option_e` in mimalloc.h;
/// libmimalloc-sys names no constant for it). The test below checks it reads the option's
/// default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long memory mimalloc has freed stays mapped before it is returned to the OS: 30 s
/// instead of mimalloc's 1 s, unless `MIMALLOC_PURGE_DELAY` is set. A memtable freed by its
/// flush is otherwise returned after a second, and the next one faults fresh pages back in
/// as it grows over the following seconds; on the development VM a fresh page costs far
/// more than the copy into it. Page faults per SET on the coordinator under redis-benchmark
/// SET -P 16 (`TEST=set P=16 REQUESTS=2000000 scripts/cluster-perf.sh syscalls`):
/// 0.017-0.021 with the default, none with 30 s. An idle node still gives its freed memory
/// back after 30 s.
fn retain_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options, a plain integer it reads when it purges.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 30_000) };
    }
}

// No Debug: the arguments hold `requirepass`.
#[derive(Parser)]
#[command(
    name = "kvnode",
    version,
    about = "A Dynamo-style key-value node speaking RESP"
)]
struct Arguments {
    /// The node's TOML configuration; without it every field takes its default.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides `node_id`.
    #[arg(long)]
    node_id: Option<String>,
    /// Overrides `datacenter`.
    #[arg(long)]
    datacenter: Option<String>,
    /// Overrides `client_address`.
    #[arg(long)]
    client_address: Option<SocketAddr>,
    /// Overrides `peer_address`.
    #[arg(long)]
    peer_address: Option<SocketAddr>,
    /// Overrides `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Overrides `requirepass`.
    #[arg(long)]
    requirepass: Option<String>,
    /// Overrides `client_connections_max`.
    #[arg(long)]
    client_connections_max: Option<usize>,
    /// Threads running connections and peer traffic; 0 (the default) means one per CPU.
    /// With 1 every task runs on one thread, with no wake-ups across threads.
    #[arg(long, default_value_t = 0)]
    worker_threads: usize,
    /// Event-loop threads for client connections, each holding its connections for life
    /// (Redis-like, no wake-ups across threads); 0 serves them on the worker threads. The
    /// default: 1 on a node serving alone (as Redis, one event loop: its connections'
    /// commits share one log write), 0 with other members (a request waits for peer replies
    /// that arrive on the worker threads).
    #[arg(long)]
    connection_threads: Option<usize>,
}

fn main() -> std::process::ExitCode {
    retain_freed_memory();
    cluster::diagnostics::init_stderr_logger(log::LevelFilter::Info);
    let arguments = Arguments::parse();
    match start(&arguments) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One line with the whole cause chain: an operator reads it, not a backtrace.
            eprintln!("kvnode: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start(arguments: &Arguments) -> anyhow::Result<()> {
    let config = load_config(arguments)?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if arguments.worker_threads > 0 {
        builder.worker_threads(arguments.worker_threads);
    }
    let runtime = builder
        .enable_all()
        .thread_name("kvnode")
        .build()
        .context("cannot start the async runtime")?;
    let alone = config.members.len() <= 1;
    let options = ServeOptions {
        connection_threads: arguments
            .connection_threads
            .unwrap_or(if alone { 1 } else { 0 }),
    };
    runtime.block_on(run(config, options))
}

fn load_config(arguments: &Arguments) -> anyhow::Result<NodeConfig> {
    let mut config = match &arguments.config {
        Some(path) => NodeConfig::load(path)
            .with_context(|| format!("bad configuration in {}", path.display()))?,
        None => NodeConfig::default(),
    };
    if let Some(node_id) = &arguments.node_id {
        config.node_id = node_id.clone();
    }
    if let Some(datacenter) = &arguments.datacenter {
        config.datacenter = datacenter.clone();
    }
    if let Some(address) = arguments.client_address {
        config.client_address = address;
    }
    if let Some(address) = arguments.peer_address {
        config.peer_address = address;
    }
    if let Some(directory) = &arguments.data_dir {
        config.data_dir = directory.clone();
    }
    if config.cluster_secret.is_none() {
        config.cluster_secret = std::env::var("KVNODE_CLUSTER_SECRET").ok();
    }
    if let Some(password) = &arguments.requirepass {
        config.requirepass = Some(password.clone());
    }
    if let Some(connections) = arguments.client_connections_max {
        config.client_connections_max = connections;
    }
    config.validate().context("bad configuration")?;
    Ok(config)
}

async fn run(config: NodeConfig, options: ServeOptions) -> anyhow::Result<()> {
    let node_id = config.node_id.clone();
    let datacenter = config.datacenter.clone();
    let data_dir = config.data_dir.clone();
    // With other members the server coordinates over the ring (see `cluster::coordinator`).
    let cluster = (config.members.len() > 1).then(|| {
        format!(
            "kvnode {node_id}: coordinating over {} members on peer address {}, {} replicas per key",
            config.members.len(),
            config.peer_address,
            config.replication.total()
        )
    });
    // The handlers go in before the node serves anyone: a SIGTERM sent right after the ready
    // line (or after the first reply) must stop the node cleanly, not kill it by default action.
    let signals = Signals::install()?;
    let node = RunningNode::start_with(config, options)
        .await
        .with_context(|| {
            format!(
                "kvnode {node_id} could not start (data in {})",
                data_dir.display()
            )
        })?;
    println!(
        "kvnode {node_id} ({datacenter}) serving clients on {}",
        node.client_address()
    );
    // On stderr: scripts read stdout's one ready line and may close the pipe after it.
    if let Some(cluster) = cluster {
        eprintln!("{cluster}");
    }
    let stats = node.backend().engine_stats();
    if stats.log_records_recovered > 0
        || stats.log_torn_tail_bytes_dropped > 0
        || stats.log_stale_bytes_dropped > 0
        || stats.log_segments_salvaged > 0
    {
        eprintln!(
            "kvnode {node_id}: commit log replayed {} records; cut off {} bytes of an \
             interrupted append and {} bytes of recycled segments' earlier use; {} segments \
             salvaged past damage",
            stats.log_records_recovered,
            stats.log_torn_tail_bytes_dropped,
            stats.log_stale_bytes_dropped,
            stats.log_segments_salvaged
        );
    }
    signals.wait().await;
    eprintln!("kvnode {node_id}: shutting down");
    node.stop().await.context("shutdown failed")?;
    Ok(())
}

/// SIGTERM and SIGINT handlers, installed before the node starts serving.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            terminate: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option number is mimalloc's purge delay: it reads that option's default in the
    /// mimalloc libmimalloc-sys builds (v3: 1000 ms; unless the environment sets it).
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads one of mimalloc's options.
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) },
            1000
        );
        retain_freed_memory();
        // SAFETY: as above.
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) },
            30_000
        );
    }
}
