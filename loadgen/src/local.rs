//! An emulated multi-datacenter cluster started inside this process, so `kvbench` can
//! measure the store with nothing else installed.
//!
//! [`EmbeddedCluster::start`] runs every node as a [`cluster::server::RunningNode`] on a
//! runtime of its own ([`cluster::launcher::InProcessCluster`]): each node has its own
//! data directory and 127.0.x.y address, and peers talk over real loopback sockets through
//! the link emulator, which delays every message between datacenters by
//! [`LocalClusterOptions::inter_dc_delay`]. The data lives in a temporary directory that
//! is removed when the cluster stops or is dropped.

mod options;

pub use options::{LocalClusterOptions, DEFAULT_INTER_DC_DELAY};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use cluster::launcher::{InProcessCluster, InProcessSpec};
use cluster::net::LinkSpec;

use crate::{Error, Result};

/// A running embedded cluster. Dropping it stops every node and removes its data.
#[derive(Debug)]
pub struct EmbeddedCluster {
    /// `None` once stopped; dropped before `work_dir` so nodes close their files first.
    nodes: Option<InProcessCluster>,
    /// `None` once removed by [`EmbeddedCluster::stop`].
    work_dir: Option<tempfile::TempDir>,
    work_path: PathBuf,
    options: LocalClusterOptions,
}

impl EmbeddedCluster {
    /// Validates `options`, creates the temporary data directory and starts every node;
    /// returns once each answers `PING`.
    pub fn start(options: &LocalClusterOptions) -> Result<EmbeddedCluster> {
        options.validate()?;
        let work_dir = match &options.parent_dir {
            Some(parent) => tempfile::Builder::new()
                .prefix("kvbench-cluster-")
                .tempdir_in(parent),
            None => tempfile::Builder::new()
                .prefix("kvbench-cluster-")
                .tempdir(),
        }
        .map_err(|source| Error::Io {
            context: "creating the embedded cluster's data directory".into(),
            source,
        })?;
        let mut spec = InProcessSpec::new(
            work_dir.path().to_path_buf(),
            options.datacenters,
            options.nodes_per_datacenter,
        );
        spec.replication = options.replication.clone();
        spec.default_consistency = options.consistency;
        spec.worker_threads = options.worker_threads;
        spec.base.versions.policy = options.conflict_policy;
        spec.base.links.inter_datacenter = LinkSpec::with_delay(options.inter_dc_delay()?);
        let nodes = InProcessCluster::start_with_spare_nodes(&spec, options.spare_nodes)?;
        Ok(EmbeddedCluster {
            nodes: Some(nodes),
            work_path: work_dir.path().to_path_buf(),
            work_dir: Some(work_dir),
            options: options.clone(),
        })
    }

    /// The options it was started with.
    pub fn options(&self) -> &LocalClusterOptions {
        &self.options
    }

    /// Every node's client (RESP) address, in node order (`n1`, `n2`, ...): the
    /// datacenters' nodes one after another.
    /// Spare nodes ([`LocalClusterOptions::spare_nodes`]) are not among them.
    pub fn client_addresses(&self) -> Vec<SocketAddr> {
        let mut addresses = self.all_client_addresses();
        addresses.truncate(self.options.node_count());
        addresses
    }

    /// Every node's client address, spare nodes (started or not) included.
    pub fn all_client_addresses(&self) -> Vec<SocketAddr> {
        self.nodes
            .as_ref()
            .map(InProcessCluster::client_addresses)
            .unwrap_or_default()
    }

    /// The configuration of node `index` (spares included), or `None` past the end.
    pub fn node_config(&self, index: usize) -> Option<&cluster::config::NodeConfig> {
        self.nodes.as_ref()?.configs().get(index)
    }

    /// Starts node `index` (a spare, or a stopped node) and waits until it serves.
    pub fn start_node(&mut self, index: usize) -> Result<()> {
        Ok(self.running()?.start_node(index)?)
    }

    /// The datacenter (`dc1`, `dc2`, ...) of node `index` in
    /// [`EmbeddedCluster::client_addresses`], or `None` past the end.
    pub fn datacenter_of(&self, index: usize) -> Option<&str> {
        self.nodes.as_ref()?.datacenter_of(index).ok()
    }

    /// Where the nodes keep their data (removed on stop).
    pub fn work_dir(&self) -> &Path {
        &self.work_path
    }

    /// Stops node `index` cleanly, keeping its data (for fault injection).
    pub fn stop_node(&mut self, index: usize) -> Result<()> {
        Ok(self.running()?.stop_node(index)?)
    }

    /// Starts node `index` again on its data and waits until it serves.
    pub fn restart_node(&mut self, index: usize) -> Result<()> {
        Ok(self.running()?.restart(index)?)
    }

    /// Stops every node, then removes the data directory.
    pub fn stop(mut self) -> Result<()> {
        let stopped = match self.nodes.take() {
            Some(nodes) => nodes.stop().map_err(Error::from),
            None => Ok(()),
        };
        let removed = match self.work_dir.take() {
            Some(directory) => directory.close().map_err(|source| Error::Io {
                context: format!("removing {}", self.work_path.display()),
                source,
            }),
            None => Ok(()),
        };
        stopped.and(removed)
    }

    fn running(&mut self) -> Result<&mut InProcessCluster> {
        self.nodes.as_mut().ok_or_else(|| Error::InvalidOption {
            field: "embedded cluster".into(),
            detail: "already stopped".into(),
        })
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        // Nodes first, so no file is open when the TempDir removes the directory.
        if let Some(nodes) = self.nodes.take() {
            let _ = nodes.stop();
        }
    }
}
