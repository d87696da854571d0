//! What both launchers share: the block of loopback addresses a cluster uses and every
//! node's configuration (identity, datacenter, addresses, member list, data directory).
//!
//! Nodes are named `n1`, `n2`, ... in member-list order and fill the datacenters `dc1`,
//! `dc2`, ... in turn, `nodes_per_datacenter` each: node index `i` (from 0) is in
//! `dc{i / nodes_per_datacenter + 1}`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::config::{MemberConfig, NodeConfig};
use crate::protocol::Consistency;
use crate::ring::Replication;
use crate::{Error, Result};

/// Most nodes one launcher starts: one loopback address each, out of a /24's worth.
pub const NODES_MAX: usize = 64;
/// Port every node's clients connect to (on the node's own address).
pub const CLIENT_PORT: u16 = 7379;
/// Port every node's peers connect to.
pub const PEER_PORT: u16 = 7380;

/// Address blocks tried before giving up on finding one whose ports are all free.
const BLOCK_ATTEMPTS: u32 = 16;

/// Clusters launched by this process so far, to give each a different address block.
static CLUSTERS_LAUNCHED: AtomicU32 = AtomicU32::new(0);

/// The shape of a local cluster, borrowed from a launcher's spec.
#[derive(Debug, Clone, Copy)]
pub struct ClusterLayout<'a> {
    /// Where each node's sub-directory (`n1/`, `n2/`, ...) goes.
    pub work_dir: &'a Path,
    /// Number of datacenters, named `dc1`, `dc2`, ...
    pub datacenters: usize,
    /// Nodes in each datacenter.
    pub nodes_per_datacenter: usize,
    /// Replication of every key.
    pub replication: &'a Replication,
    /// Consistency used when a client does not say.
    pub default_consistency: Consistency,
    /// Settings every node shares; identity, addresses, members and data directory are
    /// filled in per node.
    pub base: &'a NodeConfig,
}

impl ClusterLayout<'_> {
    /// Number of nodes, checked to be between 1 and [`NODES_MAX`].
    pub fn node_count(&self) -> Result<usize> {
        if self.datacenters == 0 {
            return invalid("datacenters", "must be at least 1".into());
        }
        if self.nodes_per_datacenter == 0 {
            return invalid("nodes_per_datacenter", "must be at least 1".into());
        }
        let count = self.datacenters.saturating_mul(self.nodes_per_datacenter);
        if count > NODES_MAX {
            return invalid(
                "nodes",
                format!("{count} nodes; a local cluster has 1 to {NODES_MAX}"),
            );
        }
        Ok(count)
    }

    /// The datacenter name of node `index` (from 0).
    pub fn datacenter_of(&self, index: usize) -> String {
        datacenter_name(index / self.nodes_per_datacenter.max(1))
    }

    /// The directory of node `id` (its configuration, log and `data/`).
    pub fn node_dir(&self, id: &str) -> PathBuf {
        self.work_dir.join(id)
    }

    /// Every node's configuration, one per address, each validated.
    pub fn node_configs(&self, addresses: &[IpAddr]) -> Result<Vec<NodeConfig>> {
        let members: Vec<MemberConfig> = addresses
            .iter()
            .enumerate()
            .map(|(index, address)| MemberConfig {
                id: format!("n{}", index + 1),
                datacenter: self.datacenter_of(index),
                weight: 1,
                client_address: SocketAddr::new(*address, CLIENT_PORT),
                peer_address: SocketAddr::new(*address, PEER_PORT),
            })
            .collect();
        members
            .iter()
            .map(|member| {
                let config = NodeConfig {
                    node_id: member.id.clone(),
                    datacenter: member.datacenter.clone(),
                    client_address: member.client_address,
                    peer_address: member.peer_address,
                    data_dir: self.node_dir(&member.id).join("data"),
                    members: members.clone(),
                    replication: self.replication.clone(),
                    default_consistency: self.default_consistency,
                    ..self.base.clone()
                };
                config.validate()?;
                Ok(config)
            })
            .collect()
    }
}

impl ClusterLayout<'_> {
    /// The configurations of the layout's nodes plus `spares` nodes configured to join
    /// later: `addresses` holds one address per node, the layout's first. The layout's
    /// nodes list only each other as members; spare `i` (from 0) is named after them
    /// (`n{count + i + 1}`), sits in datacenter `dc{i % datacenters + 1}`, lists the
    /// layout's nodes and itself, and has `joining = true`: it is started later and added
    /// with `CLUSTER.JOIN` (see [`crate::scaling`]).
    pub fn node_configs_with_spares(
        &self,
        addresses: &[IpAddr],
        spares: usize,
    ) -> Result<Vec<NodeConfig>> {
        let count = self.node_count()?;
        if addresses.len() != count + spares {
            return invalid(
                "spares",
                format!(
                    "{} addresses for {count} nodes and {spares} spares",
                    addresses.len()
                ),
            );
        }
        let mut configs = self.node_configs(&addresses[..count])?;
        let running: Vec<MemberConfig> = configs
            .first()
            .map(|config| config.members.clone())
            .unwrap_or_default();
        for (spare, address) in addresses[count..].iter().enumerate() {
            let id = format!("n{}", count + spare + 1);
            let member = MemberConfig {
                id: id.clone(),
                datacenter: datacenter_name(spare % self.datacenters.max(1)),
                weight: 1,
                client_address: SocketAddr::new(*address, CLIENT_PORT),
                peer_address: SocketAddr::new(*address, PEER_PORT),
            };
            let mut members = running.clone();
            members.push(member.clone());
            let config = NodeConfig {
                node_id: id.clone(),
                datacenter: member.datacenter.clone(),
                client_address: member.client_address,
                peer_address: member.peer_address,
                data_dir: self.node_dir(&id).join("data"),
                members,
                joining: true,
                replication: self.replication.clone(),
                default_consistency: self.default_consistency,
                ..self.base.clone()
            };
            config.validate()?;
            configs.push(config);
        }
        Ok(configs)
    }
}

/// The name of datacenter `index` (from 0): `dc1`, `dc2`, ...
pub fn datacenter_name(index: usize) -> String {
    format!("dc{}", index + 1)
}

/// `count` consecutive loopback addresses 127.0.B.1 onwards. The block B (1 to 250) is
/// chosen from the process id and the clusters this process launched; a block where one
/// of the client or peer ports is already bound is skipped, up to 16 blocks.
pub fn address_block(count: usize) -> Result<Vec<IpAddr>> {
    if count == 0 || count > NODES_MAX {
        return invalid(
            "nodes",
            format!("{count} nodes; a local cluster has 1 to {NODES_MAX}"),
        );
    }
    let mut last_busy = None;
    for _ in 0..BLOCK_ATTEMPTS {
        let launched = CLUSTERS_LAUNCHED.fetch_add(1, Ordering::Relaxed);
        let mixed = std::process::id()
            .wrapping_mul(7919)
            .wrapping_add(launched.wrapping_mul(31));
        let block = 1 + (mixed % 250) as u8;
        let addresses: Vec<IpAddr> = (0..count)
            .map(|index| IpAddr::V4(Ipv4Addr::new(127, 0, block, 1 + index as u8)))
            .collect();
        match first_busy(&addresses) {
            None => return Ok(addresses),
            Some(busy) => last_busy = Some(busy),
        }
    }
    Err(Error::Stopped(format!(
        "no free block of {count} loopback addresses found in {BLOCK_ATTEMPTS} tries (last busy: {})",
        last_busy.map_or_else(String::new, |address| address.to_string())
    )))
}

/// The first client or peer address of `addresses` that cannot be bound now.
fn first_busy(addresses: &[IpAddr]) -> Option<SocketAddr> {
    let mut probes = Vec::with_capacity(addresses.len() * 2);
    for address in addresses {
        for port in [CLIENT_PORT, PEER_PORT] {
            let socket = SocketAddr::new(*address, port);
            match std::net::TcpListener::bind(socket) {
                // Held until every port is checked, then released for the node to bind.
                Ok(listener) => probes.push(listener),
                Err(_) => return Some(socket),
            }
        }
    }
    None
}

pub(super) fn io_error(path: &Path, what: &str, error: std::io::Error) -> Error {
    Error::Io {
        context: format!("cannot {what} {}", path.display()),
        error,
    }
}

fn invalid<T>(field: &str, detail: String) -> Result<T> {
    Err(Error::InvalidConfig {
        field: field.into(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout<'a>(
        work_dir: &'a Path,
        replication: &'a Replication,
        base: &'a NodeConfig,
    ) -> ClusterLayout<'a> {
        ClusterLayout {
            work_dir,
            datacenters: 2,
            nodes_per_datacenter: 2,
            replication,
            default_consistency: Consistency::Quorum,
            base,
        }
    }

    #[test]
    fn names_nodes_and_fills_datacenters_in_turn() {
        let replication = Replication::Total(3);
        let base = NodeConfig::default();
        let layout = layout(Path::new("/tmp/x"), &replication, &base);
        let addresses = address_block(layout.node_count().unwrap()).unwrap();
        assert_eq!(addresses.len(), 4);
        let configs = layout.node_configs(&addresses).unwrap();
        let placed: Vec<(&str, &str)> = configs
            .iter()
            .map(|config| (config.node_id.as_str(), config.datacenter.as_str()))
            .collect();
        assert_eq!(
            placed,
            [("n1", "dc1"), ("n2", "dc1"), ("n3", "dc2"), ("n4", "dc2")]
        );
        assert_eq!(configs[2].data_dir, Path::new("/tmp/x/n3/data"));
        assert_eq!(configs[0].members.len(), 4);
        assert_eq!(configs[3].client_address.port(), CLIENT_PORT);
        assert_ne!(
            configs[0].client_address.ip(),
            configs[1].client_address.ip()
        );
    }

    #[test]
    fn spares_join_later_in_the_datacenters_in_turn() {
        let replication = Replication::Total(3);
        let base = NodeConfig::default();
        let layout = layout(Path::new("/tmp/x"), &replication, &base);
        let addresses = address_block(6).unwrap();
        let configs = layout.node_configs_with_spares(&addresses, 2).unwrap();
        let placed: Vec<(&str, &str, bool, usize)> = configs
            .iter()
            .map(|c| {
                (
                    c.node_id.as_str(),
                    c.datacenter.as_str(),
                    c.joining,
                    c.members.len(),
                )
            })
            .collect();
        assert_eq!(
            placed,
            [
                ("n1", "dc1", false, 4),
                ("n2", "dc1", false, 4),
                ("n3", "dc2", false, 4),
                ("n4", "dc2", false, 4),
                ("n5", "dc1", true, 5),
                ("n6", "dc2", true, 5),
            ]
        );
        assert_eq!(configs[5].members[4].id, "n6");
        assert_eq!(configs[4].client_address.ip(), addresses[4]);
        assert!(layout.node_configs_with_spares(&addresses, 1).is_err());
    }

    #[test]
    fn refuses_shapes_it_cannot_start_naming_the_field() {
        let replication = Replication::Total(5);
        let base = NodeConfig::default();
        let mut layout = layout(Path::new("/tmp/x"), &replication, &base);
        let error = layout.node_configs(&address_block(4).unwrap()).unwrap_err();
        assert!(error.to_string().contains("replication"), "{error}");
        layout.datacenters = 0;
        let error = layout.node_count().unwrap_err();
        assert!(error.to_string().contains("datacenters"), "{error}");
        layout.datacenters = 65;
        layout.nodes_per_datacenter = 1;
        let error = layout.node_count().unwrap_err();
        assert!(error.to_string().contains("65 nodes"), "{error}");
        assert!(address_block(0).is_err());
    }
}
