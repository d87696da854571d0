//! [`InProcessCluster`]: every node a [`RunningNode`] inside the calling process, on one
//! multi-threaded tokio runtime the cluster owns, each with its own data directory and
//! 127.0.x.y addresses, so peers still talk over real sockets through the link emulator.
//!
//! The methods block the calling thread until the nodes have started or stopped. They
//! may be called from plain threads and from inside another tokio runtime alike (the
//! work runs on the cluster's own runtime; the caller only waits on a channel), although
//! from async code they hold up one worker of the caller's runtime while they wait.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use tokio::runtime::Runtime;

use super::addresses::{address_block, io_error, ClusterLayout};
use super::readiness::wait_until_serving;
use crate::config::NodeConfig;
use crate::protocol::Consistency;
use crate::ring::Replication;
use crate::server::RunningNode;
use crate::{Error, Result};

/// How long stopping the runtime waits for stray blocking tasks once every node stopped.
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// What to start in process.
#[derive(Debug, Clone)]
pub struct InProcessSpec {
    /// Where data directories go (`n1/data`, `n2/data`, ...).
    pub work_dir: PathBuf,
    /// Number of emulated datacenters, named `dc1`, `dc2`, ...
    pub datacenters: usize,
    /// Nodes in each datacenter, named `n1`, `n2`, ... across the cluster.
    pub nodes_per_datacenter: usize,
    /// Replication of every key.
    pub replication: Replication,
    /// Consistency used when a client does not say.
    pub default_consistency: Consistency,
    /// Settings every node shares (engine options, links, timeouts); identity, addresses,
    /// members and data directory are filled in per node.
    pub base: NodeConfig,
    /// How long a node may take to answer `PING` once started.
    pub start_timeout: Duration,
    /// Worker threads of the runtime all nodes share; 0 means one per CPU.
    pub worker_threads: usize,
}

impl InProcessSpec {
    /// `datacenters` x `nodes_per_datacenter` nodes with the defaults of [`NodeConfig`].
    pub fn new(work_dir: PathBuf, datacenters: usize, nodes_per_datacenter: usize) -> Self {
        InProcessSpec {
            work_dir,
            datacenters,
            nodes_per_datacenter,
            replication: Replication::default(),
            default_consistency: Consistency::Quorum,
            base: NodeConfig::default(),
            start_timeout: Duration::from_secs(30),
            worker_threads: 0,
        }
    }

    /// The cluster's shape, as both launchers build it.
    pub fn layout(&self) -> ClusterLayout<'_> {
        ClusterLayout {
            work_dir: &self.work_dir,
            datacenters: self.datacenters,
            nodes_per_datacenter: self.nodes_per_datacenter,
            replication: &self.replication,
            default_consistency: self.default_consistency,
            base: &self.base,
        }
    }
}

/// A running cluster of in-process nodes.
pub struct InProcessCluster {
    configs: Vec<NodeConfig>,
    nodes: Vec<Option<RunningNode>>,
    start_timeout: Duration,
    /// `None` only once stopped.
    runtime: Option<Runtime>,
}

impl std::fmt::Debug for InProcessCluster {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("InProcessCluster")
            .field("nodes", &self.configs.len())
            .field(
                "running",
                &self.nodes.iter().filter(|n| n.is_some()).count(),
            )
            .finish()
    }
}

impl InProcessCluster {
    /// Builds every node's configuration, starts them all and waits until each answers
    /// `PING` on its client address. On any failure the nodes already started are stopped.
    pub fn start(spec: &InProcessSpec) -> Result<InProcessCluster> {
        InProcessCluster::start_with_spare_nodes(spec, 0)
    }

    /// Like [`InProcessCluster::start`], with `spares` more nodes configured (named after
    /// the layout's, one per datacenter in turn, `joining = true`) but not started: each
    /// is started with [`InProcessCluster::start_node`] and added with `CLUSTER.JOIN`
    /// ([`ClusterLayout::node_configs_with_spares`]).
    pub fn start_with_spare_nodes(spec: &InProcessSpec, spares: usize) -> Result<InProcessCluster> {
        let layout = spec.layout();
        let count = layout.node_count()?;
        let configs = layout.node_configs_with_spares(&address_block(count + spares)?, spares)?;
        for config in &configs {
            std::fs::create_dir_all(&config.data_dir)
                .map_err(|error| io_error(&config.data_dir, "create", error))?;
        }
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.enable_all().thread_name("kvnode-in-process");
        if spec.worker_threads > 0 {
            builder.worker_threads(spec.worker_threads);
        }
        let runtime = builder.build().map_err(|error| Error::Io {
            context: "cannot start the in-process cluster's runtime".into(),
            error,
        })?;
        let mut cluster = InProcessCluster {
            nodes: configs.iter().map(|_| None).collect(),
            configs,
            start_timeout: spec.start_timeout,
            runtime: Some(runtime),
        };
        // Start all first, then wait: peers connect lazily, so order does not matter.
        for index in 0..count {
            cluster.launch(index)?;
        }
        for config in &cluster.configs[..count] {
            wait_until_serving(config.client_address, cluster.start_timeout)?;
        }
        Ok(cluster)
    }

    /// Every node's configuration, in member-list order.
    pub fn configs(&self) -> &[NodeConfig] {
        &self.configs
    }

    /// Number of nodes, running or not.
    pub fn len(&self) -> usize {
        self.configs.len()
    }

    /// Whether the cluster has no nodes (never true for a started cluster).
    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }

    /// Every node's client address.
    pub fn client_addresses(&self) -> Vec<SocketAddr> {
        self.configs
            .iter()
            .map(|config| config.client_address)
            .collect()
    }

    /// The datacenter of node `index`.
    pub fn datacenter_of(&self, index: usize) -> Result<&str> {
        Ok(self.config(index)?.datacenter.as_str())
    }

    /// Whether node `index` is running.
    pub fn is_running(&self, index: usize) -> bool {
        matches!(self.nodes.get(index), Some(Some(_)))
    }

    /// Stops node `index` cleanly (listeners closed, in-flight commands finished, store
    /// closed); a stopped node stays stopped. Its data directory is kept.
    pub fn stop_node(&mut self, index: usize) -> Result<()> {
        self.config(index)?;
        match self.nodes[index].take() {
            Some(node) => self.block_on(node.stop())?,
            None => Ok(()),
        }
    }

    /// Starts node `index` again on its data directory (stopping it first if it runs) and
    /// waits until it answers `PING`.
    pub fn restart(&mut self, index: usize) -> Result<()> {
        self.stop_node(index)?;
        self.start_node(index)
    }

    /// Starts node `index` (a spare, or a stopped node) on its data directory and waits
    /// until it answers `PING`; a running node is left alone.
    pub fn start_node(&mut self, index: usize) -> Result<()> {
        if !self.is_running(index) {
            self.launch(index)?;
        }
        wait_until_serving(self.configs[index].client_address, self.start_timeout)
    }

    /// Stops every node cleanly, then the runtime; reports the first node that failed to
    /// stop cleanly (the others are still stopped).
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let mut first_error = None;
        for index in 0..self.nodes.len() {
            if let Err(error) = self.stop_node(index) {
                first_error.get_or_insert(error);
            }
        }
        if let Some(runtime) = self.runtime.take() {
            // Blocking on shutdown is refused inside another runtime; the nodes are stopped
            // already, so only idle worker threads are left to go.
            if tokio::runtime::Handle::try_current().is_ok() {
                runtime.shutdown_background();
            } else {
                runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn config(&self, index: usize) -> Result<&NodeConfig> {
        let count = self.configs.len();
        self.configs.get(index).ok_or_else(|| Error::InvalidConfig {
            field: "node index".into(),
            detail: format!("{index} but the cluster has {count} nodes"),
        })
    }

    fn launch(&mut self, index: usize) -> Result<()> {
        let config = self.config(index)?.clone();
        let id = config.node_id.clone();
        let node = self
            .block_on(RunningNode::start(config))?
            .map_err(|error| {
                Error::Stopped(format!("in-process node {id} could not start: {error}"))
            })?;
        self.nodes[index] = Some(node);
        Ok(())
    }

    /// Runs `future` on the cluster's runtime and waits for its output on this thread.
    fn block_on<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| Error::Stopped("the in-process cluster was stopped".into()))?;
        let (sender, receiver) = mpsc::channel();
        runtime.spawn(async move {
            let _ = sender.send(future.await);
        });
        receiver
            .recv()
            .map_err(|_| Error::Stopped("an in-process cluster task panicked".into()))
    }
}

impl Drop for InProcessCluster {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
