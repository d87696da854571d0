//! The embedded cluster as a failure schedule's target.
//!
//! - In process ([`EmbeddedCluster`], the default): link events and `remove`. An
//!   in-process node cannot crash on its own (its tasks share the runtime; a clean stop
//!   lets in-flight commands finish and syncs the store), so a schedule that kills, stops
//!   or restarts a node runs the cluster as processes instead. (Their `stop` and `restart`
//!   below still work in process for callers that use them.)
//! - As processes ([`ProcessNodes`]): one `kvnode` per node through
//!   [`cluster::launcher::LocalCluster`]; `kill` is SIGKILL, `stop` SIGTERM, `restart`
//!   starts it again on the same data directory and waits for its ready line. The
//!   executable is kvbench itself through a `kvnode` symlink ([`super::node`]), or
//!   `$KVBENCH_KVNODE` when set (e.g. a release `kvnode`).

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
/// starts (names `n1` to `nK`, spares after them; `add` names a spare).
pub fn check_schedule(schedule: &super::Schedule, options: &LocalClusterOptions) -> Result<()> {
    for event in &schedule.events {
        check_node_action(&event.action, options.node_count(), options.spare_nodes).map_err(
            |error| Error::InvalidOption {
                field: format!("schedule entry {:?}", event.text),
                detail: error.to_string(),
            },
        )?;
    }
    Ok(())
}

/// The spare nodes a schedule implies: one per node it adds (`add n4; add n5` on 3 nodes:
/// n4 and n5). The check then refuses an `add` that does not name the next spare.
pub fn spares_needed(schedule: &super::Schedule) -> usize {
    let added: std::collections::BTreeSet<&str> = schedule
        .events
        .iter()
        .filter_map(|event| match &event.action {
            super::Action::Add(node) => Some(node.as_str()),
            _ => None,
        })
        .collect();
    added.len()
}

fn node_number(node: &str) -> Option<usize> {
    node.strip_prefix('n')
        .and_then(|digits| digits.parse::<usize>().ok())
}

/// `n3` -> 2, checked against the node count.
fn node_index(node: &str, count: usize) -> Result<usize> {
    let number = node_number(node).filter(|&number| number >= 1 && number <= count);
    number
        .map(|number| number - 1)
        .ok_or_else(|| Error::InvalidOption {
            field: format!("schedule node {node:?}"),
            detail: format!("the embedded cluster's nodes are n1 to n{count}"),
        })
}

/// `add n5` -> 4 when n5 is one of the `spares` after the `count` started nodes.
fn spare_index(node: &str, count: usize, spares: usize) -> Result<usize> {
    node_number(node)
        .filter(|&number| number > count && number <= count + spares)
        .map(|number| number - 1)
        .ok_or_else(|| {
            let spares_text = match spares {
                0 => "it has no spare node".to_string(),
                1 => format!("its spare node is n{}", count + 1),
                _ => format!("its spare nodes are n{} to n{}", count + 1, count + spares),
            };
            Error::InvalidOption {
                field: format!("schedule node {node:?}"),
                detail: format!(
                    "`add` starts a spare node and joins it to the ring; the embedded cluster \
                     runs n1 to n{count} and {spares_text} (spare_nodes in --local-config, \
                     or one implied by each node the schedule adds)"
                ),
            }
        })
}

fn check_node_action(action: &super::Action, count: usize, spares: usize) -> Result<()> {
    match action {
        super::Action::Add(node) => spare_index(node, count, spares).map(drop),
        _ => action
            .node()
            .map_or(Ok(()), |node| node_index(node, count + spares).map(drop)),
    }
}

/// Sends `CLUSTER.JOIN` for the node `config` describes to the first of `running` that
/// answers: that node drives the change (streaming, then the new ring) and replies when
/// it is done.
fn join_node(config: &cluster::config::NodeConfig, running: &[SocketAddr]) -> Result<String> {
    let words = [
        "CLUSTER.JOIN".to_string(),
        config.node_id.clone(),
        config.datacenter.clone(),
        config.client_address.to_string(),
        config.peer_address.to_string(),
    ];
    let reply = super::exec::send_admin(running, &words, super::exec::RING_CHANGE_TIMEOUT)?;
    // The reply's lines (`joined n4 ring_version 3`, then the figures) on one CSV cell.
    Ok(reply.split_whitespace().collect::<Vec<_>>().join(" "))
}

impl EmbeddedCluster {
    fn spare_count(&self) -> usize {
        self.all_client_addresses().len() - EmbeddedCluster::client_addresses(self).len()
    }
}

impl FaultTarget for EmbeddedCluster {
    fn check(&self, action: &super::Action) -> Result<()> {
        check_node_action(
            action,
            EmbeddedCluster::client_addresses(self).len(),
            self.spare_count(),
        )
    }
    fn add(&mut self, node: &str) -> Result<String> {
        let running = EmbeddedCluster::client_addresses(self);
        let index = spare_index(node, running.len(), self.spare_count())?;
        self.start_node(index)?;
        let config = self
            .node_config(index)
            .cloned()
            .ok_or_else(|| Error::InvalidOption {
                field: format!("schedule node {node:?}"),
                detail: "no such node".into(),
            })?;
        join_node(&config, &running)
    }
    fn kill(&mut self, node: &str) -> Result<String> {
        self.stop(node)
            .map(|_| "in process: a clean stop, not a crash".to_string())
    }
    fn stop(&mut self, node: &str) -> Result<String> {
        let index = node_index(node, self.all_client_addresses().len())?;
        self.stop_node(index)?;
        Ok(String::new())
    }
    fn restart(&mut self, node: &str) -> Result<String> {
        let index = node_index(node, self.all_client_addresses().len())?;
        self.restart_node(index)?;
        Ok(String::new())
    }
    fn remove(&mut self, node: &str) -> Result<String> {
        let all = self.all_client_addresses();
        let index = node_index(node, all.len())?;
        super::exec::remove_node(node, all[index], &all)
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
    /// The nodes started first (the others are spares).
    started: usize,
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
        let cluster = LocalCluster::start_with_spare_nodes(&spec, options.spare_nodes)?;
        Ok(ProcessNodes {
            started: options.node_count(),
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
        node_index(node, self.all_client_addresses().len())
    }

    /// Every node's client address, spares included.
    fn all_client_addresses(&self) -> Vec<SocketAddr> {
        self.cluster
            .as_ref()
            .map(LocalCluster::client_addresses)
            .unwrap_or_default()
    }
}

/// `$KVBENCH_KVNODE` when set, else a `kvnode` symlink in `directory` to this executable:
/// kvbench runs the node itself (built from the same sources; a `kvnode` lying beside it
/// may be older).
fn node_binary(directory: &std::path::Path) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("KVBENCH_KVNODE") {
        return Ok(PathBuf::from(path));
    }
    let own = std::env::current_exe().map_err(|source| Error::Io {
        context: "finding the kvbench executable".into(),
        source,
    })?;
    let link = directory.join(super::node::NODE_PROGRAM_NAME);
    std::os::unix::fs::symlink(&own, &link).map_err(|source| Error::Io {
        context: format!("linking {} to {}", link.display(), own.display()),
        source,
    })?;
    Ok(link)
}

impl FaultTarget for ProcessNodes {
    fn check(&self, action: &super::Action) -> Result<()> {
        let all = self.all_client_addresses().len();
        check_node_action(action, self.started, all - self.started)
    }
    fn add(&mut self, node: &str) -> Result<String> {
        let running = self.client_addresses();
        let spares = self.all_client_addresses().len() - self.started;
        let index = spare_index(node, self.started, spares)?;
        let cluster = self.running()?;
        cluster.start_node(index)?;
        let config = cluster.nodes()[index].config.clone();
        join_node(&config, &running)
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
    fn remove(&mut self, node: &str) -> Result<String> {
        let all = self.all_client_addresses();
        let index = node_index(node, all.len())?;
        super::exec::remove_node(node, all[index], &all)
    }
    fn admin_addresses(&self) -> Vec<SocketAddr> {
        self.client_addresses()
    }
}

impl EmbeddedNodes for ProcessNodes {
    fn client_addresses(&self) -> Vec<SocketAddr> {
        let mut addresses = self.all_client_addresses();
        addresses.truncate(self.started);
        addresses
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
