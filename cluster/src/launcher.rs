//! Starts an emulated multi-datacenter cluster of `kvnode` processes on this host, for
//! tests and for the load generator.
//!
//! Every node gets a loopback address of its own (127.0.0.x) with the same two ports, so
//! the member list can be written before any node starts and no two nodes race for a
//! port. A cluster picks its block of addresses from the process id and a counter, so
//! several clusters (tests in parallel, or several test binaries) rarely meet; when they
//! do, a node fails to bind and the launch reports it.
//!
//! The launcher owns the processes: dropping a [`LocalCluster`] kills every node it
//! started, whatever path the caller took.

use crate::config::{MemberConfig, NodeConfig};
use crate::protocol::Consistency;
use crate::ring::Replication;
use crate::{Error, Result};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Most nodes one launcher starts: one loopback address each, out of a /24's worth.
pub const NODES_MAX: usize = 64;
/// Port every node's clients connect to (on the node's own address).
pub const CLIENT_PORT: u16 = 7379;
/// Port every node's peers connect to.
pub const PEER_PORT: u16 = 7380;

/// Clusters launched by this process so far, to give each a different address block.
static CLUSTERS_LAUNCHED: AtomicU32 = AtomicU32::new(0);

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
        let count = spec.datacenters * spec.nodes_per_datacenter;
        if count == 0 || count > NODES_MAX {
            return Err(Error::InvalidConfig {
                field: "nodes".into(),
                detail: format!("{count} nodes; a local cluster has 1 to {NODES_MAX}"),
            });
        }
        let configs = node_configs(spec, address_block(count));
        let mut cluster = LocalCluster {
            nodes: Vec::with_capacity(count),
            start_timeout: spec.start_timeout,
            kvnode_binary: spec.kvnode_binary.clone(),
        };
        for config in configs {
            let node_dir = spec.work_dir.join(&config.node_id);
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
        for index in 0..count {
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
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            if let Some(stdout) = stdout {
                let mut reader = BufReader::new(stdout);
                let _ = reader.read_line(&mut line);
                let _ = sender.send(line);
                // Keep draining: a later line on a closed pipe would fail the node's print.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            } else {
                let _ = sender.send(line);
            }
        });
        let ready = receiver.recv_timeout(timeout).unwrap_or_default();
        if ready.contains("serving clients on") {
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

/// `count` consecutive loopback addresses 127.0.B.1 onwards, with the block B chosen from
/// the process id and the clusters this process launched (1 to 250).
fn address_block(count: usize) -> Vec<IpAddr> {
    let launched = CLUSTERS_LAUNCHED.fetch_add(1, Ordering::Relaxed);
    let mixed = std::process::id()
        .wrapping_mul(7919)
        .wrapping_add(launched.wrapping_mul(31));
    let block = 1 + (mixed % 250) as u8;
    (0..count)
        .map(|index| IpAddr::V4(Ipv4Addr::new(127, 0, block, 1 + index as u8)))
        .collect()
}

fn node_configs(spec: &ClusterSpec, addresses: Vec<IpAddr>) -> Vec<NodeConfig> {
    let members: Vec<MemberConfig> = addresses
        .iter()
        .enumerate()
        .map(|(index, address)| MemberConfig {
            id: format!("n{}", index + 1),
            datacenter: format!("dc{}", index / spec.nodes_per_datacenter + 1),
            weight: 1,
            client_address: SocketAddr::new(*address, CLIENT_PORT),
            peer_address: SocketAddr::new(*address, PEER_PORT),
        })
        .collect();
    members
        .iter()
        .map(|member| NodeConfig {
            node_id: member.id.clone(),
            datacenter: member.datacenter.clone(),
            client_address: member.client_address,
            peer_address: member.peer_address,
            data_dir: spec.work_dir.join(&member.id).join("data"),
            members: members.clone(),
            replication: spec.replication.clone(),
            default_consistency: spec.default_consistency,
            ..spec.base.clone()
        })
        .collect()
}

fn io_error(path: &Path, what: &str, error: std::io::Error) -> Error {
    Error::Io {
        context: format!("cannot {what} {}", path.display()),
        error,
    }
}
