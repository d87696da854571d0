//! [`LocalCluster`]: one `kvnode` process per node, each with its configuration file, data
//! directory and log under the work directory. Dropping the cluster kills every process it
//! started.

use super::addresses::{address_block, io_error, ClusterLayout};
use super::readiness::wait_for_ready_line;
use crate::config::NodeConfig;
use crate::protocol::Consistency;
use crate::ring::Replication;
use crate::{Error, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// The `kvnode` executable.
    pub kvnode_binary: PathBuf,
    /// Where configs, data directories and logs go (one sub-directory per node).
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
    /// How long a node may take to print its ready line.
    pub start_timeout: Duration,
}

impl ClusterSpec {
    /// `datacenters` x `nodes_per_datacenter` nodes with the defaults of [`NodeConfig`].
    pub fn new(
        kvnode_binary: PathBuf,
        work_dir: PathBuf,
        datacenters: usize,
        nodes_per_datacenter: usize,
    ) -> ClusterSpec {
        ClusterSpec {
            kvnode_binary,
            work_dir,
            datacenters,
            nodes_per_datacenter,
            replication: Replication::default(),
            default_consistency: Consistency::Quorum,
            base: NodeConfig::default(),
            start_timeout: Duration::from_secs(30),
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

/// One node of a launched cluster.
#[derive(Debug)]
pub struct LaunchedNode {
    /// The node's configuration as written to `config_path`.
    pub config: NodeConfig,
    /// Its configuration file.
    pub config_path: PathBuf,
    /// Its standard error, appended across restarts.
    pub log_path: PathBuf,
    child: Option<Child>,
}

impl LaunchedNode {
    /// The node's name.
    pub fn id(&self) -> &str {
        &self.config.node_id
    }

    /// Where its clients connect.
    pub fn client_address(&self) -> SocketAddr {
        self.config.client_address
    }

    /// Its process id while the launcher holds a started process (for signals a test
    /// sends itself, such as SIGSTOP).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether its process is running (as far as this launcher knows).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }
}

/// A running cluster of `kvnode` processes.
#[derive(Debug)]
pub struct LocalCluster {
    nodes: Vec<LaunchedNode>,
    start_timeout: Duration,
    kvnode_binary: PathBuf,
}

impl LocalCluster {
    /// Writes every node's configuration, starts them all and waits for each ready line.
    pub fn start(spec: &ClusterSpec) -> Result<LocalCluster> {
        LocalCluster::start_holding_back(spec, 0)
    }

    /// Like [`LocalCluster::start`], but the last `spares` nodes of the layout itself are
    /// held back (unlike [`LocalCluster::start_with_spare_nodes`], which adds spares beyond
    /// the layout): left out of the others' member list and not started: each is configured to join
    /// (`joining = true`, its members the running ones and itself), to be started with
    /// [`LocalCluster::start_node`] and added with `CLUSTER.JOIN` (see [`crate::scaling`]).
    pub fn start_holding_back(spec: &ClusterSpec, spares: usize) -> Result<LocalCluster> {
        let layout = spec.layout();
        let count = layout.node_count()?;
        let mut configs = layout.node_configs(&address_block(count)?)?;
        if spares >= count {
            return Err(Error::InvalidConfig {
                field: "spares".into(),
                detail: format!("{spares} spares but the cluster has {count} nodes"),
            });
        }
        let running = count - spares;
        for (index, config) in configs.iter_mut().enumerate() {
            let own = config.members[index].clone();
            config.members.truncate(running);
            if index >= running {
                config.members.push(own);
                config.joining = true;
            }
            config.validate()?;
        }
        LocalCluster::launch(spec, configs, running)
    }

    /// Starts the layout's nodes, with `spares` more nodes configured (named after them,
    /// one per datacenter in turn) but not started: each joins with
    /// [`LocalCluster::start_node`] and `CLUSTER.JOIN`
    /// ([`ClusterLayout::node_configs_with_spares`]).
    pub fn start_with_spare_nodes(spec: &ClusterSpec, spares: usize) -> Result<LocalCluster> {
        let layout = spec.layout();
        let count = layout.node_count()?;
        let configs = layout.node_configs_with_spares(&address_block(count + spares)?, spares)?;
        LocalCluster::launch(spec, configs, count)
    }

    /// Writes every configuration and starts the first `running` nodes.
    fn launch(
        spec: &ClusterSpec,
        configs: Vec<NodeConfig>,
        running: usize,
    ) -> Result<LocalCluster> {
        let layout = spec.layout();
        let count = configs.len();
        let mut cluster = LocalCluster {
            nodes: Vec::with_capacity(count),
            start_timeout: spec.start_timeout,
            kvnode_binary: spec.kvnode_binary.clone(),
        };
        for config in configs {
            let node_dir = layout.node_dir(&config.node_id);
            std::fs::create_dir_all(&node_dir)
                .map_err(|error| io_error(&node_dir, "create", error))?;
            let config_path = node_dir.join("kvnode.toml");
            let text = toml::to_string(&config).map_err(|error| Error::InvalidConfig {
                field: "launcher".into(),
                detail: format!(
                    "cannot write the configuration of {}: {error}",
                    config.node_id
                ),
            })?;
            std::fs::write(&config_path, text)
                .map_err(|error| io_error(&config_path, "write", error))?;
            cluster.nodes.push(LaunchedNode {
                log_path: node_dir.join("kvnode.log"),
                config,
                config_path,
                child: None,
            });
        }
        // Start all first, then wait: nodes find each other while the others boot.
        for index in 0..running {
            cluster.spawn(index)?;
        }
        Ok(cluster)
    }

    /// The nodes, in the order of the member list.
    pub fn nodes(&self) -> &[LaunchedNode] {
        &self.nodes
    }

    /// Every node's client address.
    pub fn client_addresses(&self) -> Vec<SocketAddr> {
        self.nodes
            .iter()
            .map(LaunchedNode::client_address)
            .collect()
    }

    /// Kills node `index` with SIGKILL, as a crash would.
    pub fn kill(&mut self, index: usize) -> Result<()> {
        let node = self.node_mut(index)?;
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        Ok(())
    }

    /// Stops node `index` with SIGTERM and waits for it to exit (a clean shutdown).
    pub fn stop_node(&mut self, index: usize) -> Result<()> {
        let node = self.node_mut(index)?;
        if let Some(mut child) = node.child.take() {
            terminate(&mut child);
        }
        Ok(())
    }

    /// Starts node `index` (a spare, or a stopped node) and waits until it serves.
    pub fn start_node(&mut self, index: usize) -> Result<()> {
        self.restart(index)
    }

    /// Starts node `index` again on its data directory and waits until it serves.
    pub fn restart(&mut self, index: usize) -> Result<()> {
        self.kill(index)?;
        self.spawn(index)
    }

    /// Stops every node cleanly.
    pub fn stop(mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                terminate(&mut child);
            }
        }
    }

    fn node_mut(&mut self, index: usize) -> Result<&mut LaunchedNode> {
        let count = self.nodes.len();
        self.nodes
            .get_mut(index)
            .ok_or_else(|| Error::InvalidConfig {
                field: "node index".into(),
                detail: format!("{index} but the cluster has {count} nodes"),
            })
    }

    fn spawn(&mut self, index: usize) -> Result<()> {
        let timeout = self.start_timeout;
        let binary = self.kvnode_binary.clone();
        let node = self.node_mut(index)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .map_err(|error| io_error(&node.log_path, "open", error))?;
        let mut child = Command::new(&binary)
            .arg("--config")
            .arg(&node.config_path)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|error| io_error(&binary, "start", error))?;
        let stdout = child.stdout.take();
        node.child = Some(child);
        if wait_for_ready_line(stdout, timeout) {
            return Ok(());
        }
        let id = node.id().to_string();
        let log_path = node.log_path.clone();
        let _ = self.kill(index);
        let log_tail = std::fs::read_to_string(&log_path).unwrap_or_default();
        let log_tail: Vec<&str> = log_tail.lines().rev().take(5).collect();
        Err(Error::Stopped(format!(
            "node {id} did not become ready within {} s; its log ({}) ends: {}",
            timeout.as_secs(),
            log_path.display(),
            log_tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )))
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// SIGTERM, then SIGKILL if the process has not exited within ten seconds.
fn terminate(child: &mut Child) {
    // SAFETY: kill(2) on our own child's pid; the worst outcome is an error we ignore.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    for _ in 0..200 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
