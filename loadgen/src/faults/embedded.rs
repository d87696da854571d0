//! The embedded cluster as a failure schedule's target.
//!
//! - In process ([`EmbeddedCluster`], the default): `stop` and `restart` stop a node
//!   cleanly and start it again on its data directory. An in-process node cannot crash on
//!   its own (its tasks share the runtime; a clean stop lets in-flight commands finish and
//!   syncs the store), so a schedule that **kills** runs the cluster as processes instead.
//! - As processes ([`ProcessNodes`]): one `kvnode` per node through
//!   [`cluster::launcher::LocalCluster`]; `kill` is SIGKILL, `stop` SIGTERM, `restart`
//!   starts it again on the same data directory and waits for its ready line. The
//!   executable is the `kvnode` beside kvbench when there is one, else kvbench itself
//!   through a `kvnode` symlink ([`super::node`]).

use super::exec::FaultTarget;
use crate::local::{EmbeddedCluster, LocalClusterOptions};
use crate::{Error, Result};
use cluster::launcher::{ClusterSpec, LocalCluster};
use cluster::net::LinkSpec;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A cluster kvbench started and a schedule may act on.
pub trait EmbeddedNodes: FaultTarget {
    /// Every node's client address, in node order (`n1`, `n2`, ...).
    fn client_addresses(&self) -> Vec<SocketAddr>;
    /// How the nodes run, for the run's header line.
    fn describe(&self) -> String;
    /// Stops every node and removes the data.
    fn shutdown(self: Box<Self>) -> Result<()>;
    /// Itself as a schedule's target.
    fn as_target(&mut self) -> &mut dyn FaultTarget;
}

/// Starts the embedded cluster: as processes when `processes`, else in process.
pub fn start(options: &LocalClusterOptions, processes: bool) -> Result<Box<dyn EmbeddedNodes>> {
    if processes {
        Ok(Box::new(ProcessNodes::start(options)?))
    } else {
        Ok(Box::new(EmbeddedCluster::start(options)?))
    }
}

/// Checks a schedule's node events against the cluster `options` describe, before it
/// starts (names `n1` to `nK`; no membership changes yet).
pub fn check_schedule(schedule: &super::Schedule, options: &LocalClusterOptions) -> Result<()> {
    for event in &schedule.events {
        check_node_action(&event.action, options.node_count()).map_err(|error| {
            Error::InvalidOption {
                field: format!("schedule entry {:?}", event.text),
                detail: error.to_string(),
            }
        })?;
    }
    Ok(())
}

/// `n3` -> 2, checked against the node count.
fn node_index(node: &str, count: usize) -> Result<usize> {
    let number = node
        .strip_prefix('n')
        .and_then(|digits| digits.parse::<usize>().ok())
        .filter(|&number| number >= 1 && number <= count);
    number
        .map(|number| number - 1)
        .ok_or_else(|| Error::InvalidOption {
            field: format!("schedule node {node:?}"),
            detail: format!("the embedded cluster's nodes are n1 to n{count}"),
        })
}

fn check_node_action(action: &super::Action, count: usize) -> Result<()> {
    match action {
        super::Action::Add(_) | super::Action::Remove(_) => Err(Error::Unsupported(format!(
            "{} {}: {}",
            action.name(),
            action.target(),
            super::exec::MEMBERSHIP_NOT_SUPPORTED
        ))),
        _ => action
            .node()
            .map_or(Ok(()), |node| node_index(node, count).map(drop)),
    }
}

impl FaultTarget for EmbeddedCluster {
    fn check(&self, action: &super::Action) -> Result<()> {
        check_node_action(action, EmbeddedCluster::client_addresses(self).len())
    }
    fn kill(&mut self, node: &str) -> Result<String> {
        self.stop(node)
            .map(|_| "in process: a clean stop, not a crash".to_string())
    }
    fn stop(&mut self, node: &str) -> Result<String> {
        let index = node_index(node, EmbeddedCluster::client_addresses(self).len())?;
        self.stop_node(index)?;
        Ok(String::new())
    }
    fn restart(&mut self, node: &str) -> Result<String> {
        let index = node_index(node, EmbeddedCluster::client_addresses(self).len())?;
        self.restart_node(index)?;
        Ok(String::new())
    }
    fn admin_addresses(&self) -> Vec<SocketAddr> {
        EmbeddedCluster::client_addresses(self)
    }
}

impl EmbeddedNodes for EmbeddedCluster {
    fn client_addresses(&self) -> Vec<SocketAddr> {
        EmbeddedCluster::client_addresses(self)
    }
    fn describe(&self) -> String {
        "in process".to_string()
    }
    fn shutdown(self: Box<Self>) -> Result<()> {
        self.stop()
    }
    fn as_target(&mut self) -> &mut dyn FaultTarget {
        self
    }
}

/// The embedded cluster as `kvnode` processes (for schedules that kill).
pub struct ProcessNodes {
    /// Dropped before `work_dir`: every process is killed first.
    cluster: Option<LocalCluster>,
    work_dir: Option<tempfile::TempDir>,
    binary: PathBuf,
}

impl ProcessNodes {
    /// Starts one process per node and waits until each prints its ready line.
    pub fn start(options: &LocalClusterOptions) -> Result<ProcessNodes> {
        options.validate()?;
        let builder = {
            let mut builder = tempfile::Builder::new();
            builder.prefix("kvbench-processes-");
            builder
        };
        let work_dir = match &options.parent_dir {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .map_err(|source| Error::Io {
            context: "creating the embedded cluster's data directory".into(),
            source,
        })?;
        let binary = node_binary(work_dir.path())?;
        let mut spec = ClusterSpec::new(
            binary.clone(),
            work_dir.path().join("nodes"),
            options.datacenters,
            options.nodes_per_datacenter,
        );
        spec.replication = options.replication.clone();
        spec.default_consistency = options.consistency;
        spec.base.links.inter_datacenter = LinkSpec::with_delay(options.inter_dc_delay()?);
        spec.base.versions.policy = options.conflict_policy;
        let cluster = LocalCluster::start(&spec)?;
        Ok(ProcessNodes {
            cluster: Some(cluster),
            work_dir: Some(work_dir),
            binary,
        })
    }

    fn running(&mut self) -> Result<&mut LocalCluster> {
        self.cluster.as_mut().ok_or_else(|| Error::InvalidOption {
            field: "embedded cluster".into(),
            detail: "already stopped".into(),
        })
    }

    fn index(&self, node: &str) -> Result<usize> {
        node_index(node, self.client_addresses().len())
    }
}

/// The `kvnode` beside this executable, else a `kvnode` symlink to it in `directory`.
fn node_binary(directory: &std::path::Path) -> Result<PathBuf> {
    let own = std::env::current_exe().map_err(|source| Error::Io {
        context: "finding the kvbench executable".into(),
        source,
    })?;
    if let Some(beside) = own
        .parent()
        .map(|parent| parent.join(super::node::NODE_PROGRAM_NAME))
    {
        if beside.is_file() {
            return Ok(beside);
        }
    }
    let link = directory.join(super::node::NODE_PROGRAM_NAME);
    std::os::unix::fs::symlink(&own, &link).map_err(|source| Error::Io {
        context: format!("linking {} to {}", link.display(), own.display()),
        source,
    })?;
    Ok(link)
}

impl FaultTarget for ProcessNodes {
    fn check(&self, action: &super::Action) -> Result<()> {
        check_node_action(action, self.client_addresses().len())
    }
    fn kill(&mut self, node: &str) -> Result<String> {
        let index = self.index(node)?;
        self.running()?.kill(index)?;
        Ok("SIGKILL".to_string())
    }
    fn stop(&mut self, node: &str) -> Result<String> {
        let index = self.index(node)?;
        self.running()?.stop_node(index)?;
        Ok("SIGTERM".to_string())
    }
    fn restart(&mut self, node: &str) -> Result<String> {
        let index = self.index(node)?;
        self.running()?.restart(index)?;
        Ok(String::new())
    }
    fn admin_addresses(&self) -> Vec<SocketAddr> {
        self.client_addresses()
    }
}

impl EmbeddedNodes for ProcessNodes {
    fn client_addresses(&self) -> Vec<SocketAddr> {
        self.cluster
            .as_ref()
            .map(LocalCluster::client_addresses)
            .unwrap_or_default()
    }
    fn describe(&self) -> String {
        format!("as processes of {}", self.binary.display())
    }
    fn as_target(&mut self) -> &mut dyn FaultTarget {
        self
    }
    fn shutdown(mut self: Box<Self>) -> Result<()> {
        if let Some(cluster) = self.cluster.take() {
            cluster.stop();
        }
        match self.work_dir.take() {
            Some(directory) => directory.close().map_err(|source| Error::Io {
                context: "removing the embedded cluster's data directory".into(),
                source,
            }),
            None => Ok(()),
        }
    }
}
