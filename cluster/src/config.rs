//! The node's configuration: one TOML file ([`NodeConfig::load`]), every field defaulted so
//! an empty file (or none at all) is a working single node.
//!
//! Parsing rejects unknown fields (toml's error names the field and the line), and
//! [`NodeConfig::validate`] checks what the types cannot, naming the field:
//! `replication: 3 replicas but 2 members`, `default_consistency: W 4 but 3 replicas`.
//!
//! ```toml
//! node_id = "n1"
//! datacenter = "dc1"
//! client_address = "127.0.0.1:7379"
//! peer_address = "127.0.0.1:7380"
//! data_dir = "kvnode-data"
//! replication = 3                      # or { dc1 = 2, dc2 = 1 }
//! default_consistency = "QUORUM"
//! [[members]]
//! id = "n1"
//! datacenter = "dc1"
//! client_address = "127.0.0.1:7379"
//! peer_address = "127.0.0.1:7380"
//! [engine.wal.sync]
//! policy = "always"
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::antientropy::AntiEntropyConfig;
use crate::handoff::{HandoffMode, HintConfig};
use crate::membership::MembershipConfig;
use crate::net::LinkConfig;
use crate::protocol::{Consistency, Limits};
use crate::ring::{Member, Replication, MEMBERS_MAX, NAME_LENGTH_MAX, VNODES_PER_MEMBER_MAX};
use crate::version::VersionConfig;
use crate::{Error, Result};

/// Most seed addresses: seeds only bootstrap gossip, a handful is plenty.
pub const SEEDS_MAX: usize = 64;

/// Everything a `kvnode` process is told at start.
///
/// `Debug` redacts `requirepass` and `cluster_secret` (see [`debug`]); `Serialize` keeps them.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's unique name on the ring and in vector clocks. Default `n1`.
    pub node_id: String,
    /// The datacenter this node is in. Default `dc1`.
    pub datacenter: String,
    /// Where RESP clients connect. Default `127.0.0.1:7379`.
    pub client_address: SocketAddr,
    /// Where peers connect (node-to-node protocol). Default `127.0.0.1:7380`.
    pub peer_address: SocketAddr,
    /// The storage engine's directory. Default `kvnode-data` (relative to the working
    /// directory).
    pub data_dir: PathBuf,
    /// Virtual nodes per unit of weight on the ring. Default 256.
    pub vnodes_per_weight: u32,
    /// This node's capacity multiplier on the ring. Default 1.
    pub weight: u32,
    /// The static member list, this node included. Default empty: with no members and no
    /// seeds the node runs alone and keeps one replica of each key, whatever `replication`
    /// says (a node alone cannot keep more).
    pub members: Vec<MemberConfig>,
    /// Peer addresses to learn the members from by gossip, instead of `members`. Default
    /// empty.
    pub seeds: Vec<SocketAddr>,
    /// How many replicas of each key, in total or per datacenter. Default 3.
    pub replication: Replication,
    /// The consistency a request gets when neither it nor its connection names one.
    /// Default `QUORUM`.
    pub default_consistency: Consistency,
    /// How long a coordinator waits for replicas before failing a request, in
    /// milliseconds. Default 2000.
    pub request_timeout_ms: u64,
    /// Conflict policy (`siblings` or `lww`) and version bounds.
    pub versions: VersionConfig,
    /// Storage engine options. `engine.value_size_bytes_max` is also the largest value a
    /// client may write (default 10 KiB); see [`crate::store`] for how the stored form is
    /// sized.
    pub engine: engine::Options,
    /// Client protocol limits (frame, array and bulk sizes).
    pub limits: Limits,
    /// The link emulator's settings.
    pub links: LinkConfig,
    /// Most client connections served at once; further connections wait in the accept
    /// queue until one closes. Default 10 000.
    pub client_connections_max: usize,
    /// When set, clients must `AUTH` with this password before any other command.
    /// Default: none (no authentication).
    pub requirepass: Option<String>,
    /// Shared secret peers prove to each other on connecting (challenge-response with
    /// HMAC-SHA256; the secret never goes on the wire). When unset here, the `kvnode` binary
    /// takes it from the environment variable `KVNODE_CLUSTER_SECRET`. Default: none (peers
    /// are only checked for a known node id and the cluster name).
    pub cluster_secret: Option<String>,
    /// `sloppy` (default): when a replica is unreachable a fallback node takes the write
    /// with a hint and counts toward W; `strict`: only the preference list counts. See
    /// [`crate::handoff`].
    pub handoff: HandoffMode,
    /// Hint storage limits and delivery pacing.
    pub hints: HintConfig,
    /// Whether a read whose replies disagree writes the merged versions back to the stale
    /// replicas (after answering). Default true; off for staleness measurements.
    pub read_repair: bool,
    /// Which replicas a read asks: `quorum` (default) only as many as R needs, the others
    /// as a fallback; `all` every replica, the first R replies counting. See
    /// [`crate::coordinator::ReadFanout`].
    pub read_fanout: crate::coordinator::ReadFanout,
    /// Digest reads: with `read_fanout = "quorum"` on a node holding a copy of the key,
    /// the other replicas a read asks answer with a digest of their set rather than the set
    /// (fetched only when the digests differ). Default true; false sends every replica's
    /// whole set, as `read_fanout = "all"` always does. See [`crate::coordinator`].
    pub read_digests: bool,
    /// Most read repairs in flight; a repair beyond it is skipped and counted
    /// (`read_repairs_dropped`). Default 64.
    pub read_repairs_in_flight_max: usize,
    /// Gossip membership and failure detection (`[membership]`, only with members);
    /// defaults as [`MembershipConfig::default`].
    pub membership: MembershipConfig,
    /// Whether this node is being added to a running cluster: it starts with the ring of
    /// the other members (its own entry in `members` gives only its addresses) and owns no
    /// data until a member runs `CLUSTER.JOIN` for it (see [`crate::scaling`]). Default
    /// false.
    pub joining: bool,
    /// Merkle-tree anti-entropy between replicas (`[antientropy]`, only with members);
    /// defaults as [`AntiEntropyConfig::default`].
    pub antientropy: AntiEntropyConfig,
}

/// One node of the static member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// The node's unique name.
    pub id: String,
    /// Its datacenter.
    pub datacenter: String,
    /// Its capacity multiplier on the ring. Default 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Where its RESP clients connect.
    pub client_address: SocketAddr,
    /// Where its peers connect.
    pub peer_address: SocketAddr,
}

fn default_weight() -> u32 {
    1
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node_id: "n1".into(),
            datacenter: "dc1".into(),
            client_address: SocketAddr::from(([127, 0, 0, 1], 7379)),
            peer_address: SocketAddr::from(([127, 0, 0, 1], 7380)),
            data_dir: PathBuf::from("kvnode-data"),
            vnodes_per_weight: 256,
            weight: 1,
            members: Vec::new(),
            seeds: Vec::new(),
            replication: Replication::default(),
            default_consistency: Consistency::Quorum,
            request_timeout_ms: 2000,
            versions: VersionConfig::default(),
            engine: engine::Options::default(),
            limits: Limits::default(),
            links: LinkConfig::default(),
            client_connections_max: 10_000,
            requirepass: None,
            cluster_secret: None,
            handoff: HandoffMode::default(),
            hints: HintConfig::default(),
            read_repair: true,
            read_fanout: Default::default(),
            read_digests: true,
            read_repairs_in_flight_max: 64,
            membership: MembershipConfig::default(),
            joining: false,
            antientropy: AntiEntropyConfig::default(),
        }
    }
}

impl NodeConfig {
    /// Reads and parses `path`. Does not validate: the binary applies command-line
    /// overrides first, then calls [`NodeConfig::validate`].
    pub fn load(path: &Path) -> Result<NodeConfig> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::InvalidConfig {
            field: path.display().to_string(),
            detail: format!("cannot read: {error}"),
        })?;
        Self::parse(&text)
    }

    /// Parses TOML text; an unknown or mistyped field is an error naming it and its line.
    pub fn parse(text: &str) -> Result<NodeConfig> {
        toml::from_str(text).map_err(|error| Error::InvalidConfig {
            field: "config".into(),
            detail: error.to_string(),
        })
    }

    /// True when the node runs alone: no member list and no seeds.
    pub fn is_single_node(&self) -> bool {
        self.members.is_empty() && self.seeds.is_empty()
    }

    /// Replicas per key this node can actually keep: `replication` in a cluster, 1 alone.
    pub fn effective_replicas(&self) -> usize {
        if self.is_single_node() {
            1
        } else {
            self.replication.total()
        }
    }

    /// The ring members: the member list, or this node alone.
    pub fn ring_members(&self) -> Vec<Member> {
        if self.members.is_empty() {
            return vec![Member::new(self.node_id.as_str(), self.datacenter.as_str())
                .with_weight(self.weight)];
        }
        self.members
            .iter()
            .map(|member| {
                Member::new(member.id.as_str(), member.datacenter.as_str())
                    .with_weight(member.weight)
            })
            .collect()
    }

    /// Semantic checks, each error naming the field.
    pub fn validate(&self) -> Result<()> {
        check_name("node_id", &self.node_id)?;
        check_name("datacenter", &self.datacenter)?;
        if self.vnodes_per_weight == 0 {
            return invalid("vnodes_per_weight", "must be at least 1");
        }
        if self.weight == 0 {
            return invalid("weight", "must be at least 1");
        }
        if u64::from(self.weight) * u64::from(self.vnodes_per_weight) > VNODES_PER_MEMBER_MAX {
            return invalid(
                "vnodes_per_weight",
                &format!("weight x vnodes_per_weight is over {VNODES_PER_MEMBER_MAX}"),
            );
        }
        if self.seeds.len() > SEEDS_MAX {
            return invalid(
                "seeds",
                &format!("{} seeds, at most {SEEDS_MAX}", self.seeds.len()),
            );
        }
        self.validate_members()?;
        self.validate_replication()?;
        if self.joining && self.members.len() < 2 {
            return invalid(
                "joining",
                "a joining node needs the running members in `members`",
            );
        }
        if self.request_timeout_ms == 0 {
            return invalid("request_timeout_ms", "must be at least 1");
        }
        if self.client_connections_max == 0 {
            return invalid("client_connections_max", "must be at least 1");
        }
        self.hints.validate()?;
        if self.read_repairs_in_flight_max == 0 {
            return invalid("read_repairs_in_flight_max", "must be at least 1");
        }
        if self.requirepass.as_deref() == Some("") {
            return invalid("requirepass", "must not be empty (leave it out instead)");
        }
        if self.cluster_secret.as_deref() == Some("") {
            return invalid("cluster_secret", "must not be empty (leave it out instead)");
        }
        self.versions
            .validate()
            .map_err(|error| prefixed("versions", error))?;
        self.membership
            .validate()
            .map_err(|error| prefixed("membership", error))?;
        self.antientropy
            .validate()
            .map_err(|error| prefixed("antientropy", error))?;
        self.engine.validate().map_err(|error| match error {
            engine::Error::InvalidOption { field, detail } => Error::InvalidConfig {
                field: format!("engine.{field}"),
                detail,
            },
            other => Error::InvalidConfig {
                field: "engine".into(),
                detail: other.to_string(),
            },
        })?;
        self.links
            .validate()
            .map_err(|error| Error::InvalidConfig {
                field: "links".into(),
                detail: error.to_string(),
            })?;
        Ok(())
    }

    fn validate_members(&self) -> Result<()> {
        if self.members.is_empty() {
            return Ok(());
        }
        if self.members.len() > MEMBERS_MAX {
            return invalid(
                "members",
                &format!("{} members, at most {MEMBERS_MAX}", self.members.len()),
            );
        }
        let mut ids = BTreeSet::new();
        for member in &self.members {
            check_name("members.id", &member.id)?;
            check_name("members.datacenter", &member.datacenter)?;
            if member.weight == 0 {
                return invalid("members.weight", &format!("{} has weight 0", member.id));
            }
            if !ids.insert(member.id.as_str()) {
                return invalid("members", &format!("{} is listed twice", member.id));
            }
        }
        match self.members.iter().find(|member| member.id == self.node_id) {
            None => invalid(
                "members",
                &format!("this node ({}) is not in the member list", self.node_id),
            ),
            Some(me) if me.datacenter != self.datacenter => invalid(
                "members",
                &format!(
                    "this node is in datacenter {} but its member entry says {}",
                    self.datacenter, me.datacenter
                ),
            ),
            Some(_) => Ok(()),
        }
    }

    fn validate_replication(&self) -> Result<()> {
        let total = self.replication.total();
        if total == 0 {
            return invalid("replication", "must keep at least 1 replica");
        }
        if !self.members.is_empty() {
            if total > self.members.len() {
                return invalid(
                    "replication",
                    &format!("{total} replicas but {} members", self.members.len()),
                );
            }
            if let Replication::PerDatacenter(counts) = &self.replication {
                let mut per_datacenter: BTreeMap<&str, usize> = BTreeMap::new();
                for member in &self.members {
                    *per_datacenter
                        .entry(member.datacenter.as_str())
                        .or_default() += 1;
                }
                for (datacenter, &count) in counts {
                    let available = per_datacenter
                        .get(datacenter.as_str())
                        .copied()
                        .unwrap_or(0);
                    if count > available {
                        return invalid(
                            "replication",
                            &format!(
                                "{count} replicas in {datacenter} but {available} members there"
                            ),
                        );
                    }
                }
            }
        }
        let replicas = self.effective_replicas();
        if let Consistency::Counts { read, write } = self.default_consistency {
            for (side, count) in [("R", read), ("W", write)] {
                if let Some(count) = count {
                    if count == 0 || count as usize > replicas {
                        return invalid(
                            "default_consistency",
                            &format!("{side} {count} but {replicas} replicas"),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return invalid(field, "must not be empty");
    }
    if name.len() > NAME_LENGTH_MAX {
        return invalid(field, &format!("longer than {NAME_LENGTH_MAX} bytes"));
    }
    Ok(())
}

fn invalid<T>(field: &str, detail: &str) -> Result<T> {
    Err(Error::InvalidConfig {
        field: field.into(),
        detail: detail.into(),
    })
}

/// Qualifies a nested section's field name with the section (`versions.siblings_max`).
fn prefixed(section: &str, error: Error) -> Error {
    match error {
        Error::InvalidConfig { field, detail } => Error::InvalidConfig {
            field: format!("{section}.{field}"),
            detail,
        },
        other => other,
    }
}

pub mod debug;
#[cfg(test)]
mod tests;
