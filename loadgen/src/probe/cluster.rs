//! The embedded cluster a probe runs against when no `--hosts` are given: one datacenter of
//! `cluster.nodes` in-process nodes, `cluster.replicas` replicas per key, read repair off
//! by default, and every link (same datacenter included) delayed per message kind, so the
//! cluster is the WARS model's setup and [`PbsClusterOptions::wars_model`] the prediction
//! for it.
//!
//! Properties (defaults are the PBS paper's validation: N = 3, W = exp(20), A = R = S =
//! exp(10), read repair off; two more nodes than replicas so a probe writes and reads
//! through two nodes that hold no replica, as the paper sent its requests through a node
//! that did not store the data):
//!
//! | name | default |
//! |---|---|
//! | `cluster.nodes` | 5 |
//! | `cluster.replicas` | 3 |
//! | `cluster.delay` | `0` (messages that are none of the four kinds: gossip, pings) |
//! | `cluster.write_request_delay` | `exp(20)` |
//! | `cluster.write_ack_delay` | `exp(10)` |
//! | `cluster.read_request_delay` | `exp(10)` |
//! | `cluster.read_response_delay` | `exp(10)` |
//! | `cluster.read_repair` | `false` |
//! | `cluster.worker_threads` | 2 |

use std::net::SocketAddr;

use cluster::coordinator::ReadFanout;
use cluster::launcher::{InProcessCluster, InProcessSpec};
use cluster::net::{DelayDistribution, LinkSpec, MessageKind};
use cluster::protocol::Consistency;
use cluster::ring::Replication;

use crate::predict::{parse_delay, Delay, ReplicaDelays, WarsModel};
use crate::workload::Properties;
use crate::{Error, Result};

/// The property names [`PbsClusterOptions::from_properties`] reads.
pub const CLUSTER_PROPERTIES: [&str; 9] = [
    "cluster.nodes",
    "cluster.replicas",
    "cluster.delay",
    "cluster.write_request_delay",
    "cluster.write_ack_delay",
    "cluster.read_request_delay",
    "cluster.read_response_delay",
    "cluster.read_repair",
    "cluster.worker_threads",
];

/// The embedded probe cluster's shape and links.
#[derive(Debug, Clone, PartialEq)]
pub struct PbsClusterOptions {
    /// Nodes, all in `dc1`.
    pub nodes: usize,
    /// Replicas per key (N).
    pub replicas: usize,
    /// Every link's spec: a base delay and the four per-kind delays.
    pub link: LinkSpec,
    /// Whether reads repair stale replicas (off: WARS has no read repair).
    pub read_repair: bool,
    /// Worker threads of the nodes' shared runtime.
    pub worker_threads: usize,
}

impl Default for PbsClusterOptions {
    fn default() -> Self {
        let exp = |mean_ms| DelayDistribution::Exponential { mean_ms };
        PbsClusterOptions {
            nodes: 5,
            replicas: 3,
            link: LinkSpec::default()
                .kind_delay(MessageKind::WriteRequest, exp(20.0))
                .kind_delay(MessageKind::WriteAck, exp(10.0))
                .kind_delay(MessageKind::ReadRequest, exp(10.0))
                .kind_delay(MessageKind::ReadResponse, exp(10.0)),
            read_repair: false,
            worker_threads: 2,
        }
    }
}

fn invalid(field: &str, detail: String) -> Error {
    Error::InvalidOption {
        field: field.to_string(),
        detail,
    }
}

fn distribution(name: &'static str, text: &str) -> Result<DelayDistribution> {
    match parse_delay(name, text)? {
        Delay::Model(distribution) => Ok(distribution),
        Delay::Empirical(_) => Err(invalid(
            name,
            "an empirical delay cannot be emulated".into(),
        )),
    }
}

impl PbsClusterOptions {
    /// Reads the `cluster.*` properties over the defaults, and checks them.
    pub fn from_properties(properties: &Properties) -> Result<PbsClusterOptions> {
        let mut options = PbsClusterOptions::default();
        let count = |name: &str, default: usize| -> Result<usize> {
            properties.get(name).map_or(Ok(default), |text| {
                text.trim()
                    .parse()
                    .map_err(|_| invalid(name, format!("'{text}' is not a count")))
            })
        };
        options.nodes = count("cluster.nodes", options.nodes)?;
        options.replicas = count("cluster.replicas", options.replicas)?;
        options.worker_threads = count("cluster.worker_threads", options.worker_threads)?;
        if let Some(text) = properties.get("cluster.delay") {
            options.link.delay = distribution("cluster.delay", text)?;
        }
        let kinds: [(&'static str, MessageKind); 4] = [
            ("cluster.write_request_delay", MessageKind::WriteRequest),
            ("cluster.write_ack_delay", MessageKind::WriteAck),
            ("cluster.read_request_delay", MessageKind::ReadRequest),
            ("cluster.read_response_delay", MessageKind::ReadResponse),
        ];
        for (name, kind) in kinds {
            if let Some(text) = properties.get(name) {
                options
                    .link
                    .kind_delays
                    .set(kind, Some(distribution(name, text)?));
            }
        }
        if let Some(text) = properties.get("cluster.read_repair") {
            options.read_repair = match text.trim() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(invalid(
                        "cluster.read_repair",
                        format!("'{other}': expected true or false"),
                    ))
                }
            };
        }
        options.validate()?;
        Ok(options)
    }

    /// Checks the shape and the delays.
    pub fn validate(&self) -> Result<()> {
        if self.replicas == 0 || self.replicas > self.nodes {
            return Err(invalid(
                "cluster.replicas",
                format!("{} replicas but {} nodes", self.replicas, self.nodes),
            ));
        }
        if !(2..=cluster::launcher::NODES_MAX).contains(&self.nodes) {
            return Err(invalid(
                "cluster.nodes",
                format!(
                    "{} is not between 2 and {}",
                    self.nodes,
                    cluster::launcher::NODES_MAX
                ),
            ));
        }
        self.link
            .validate()
            .map_err(|error| invalid("cluster delays", error.to_string()))
    }

    /// The four WARS delays the links are configured with.
    pub fn replica_delays(&self) -> ReplicaDelays {
        let leg = |kind| Delay::Model(self.link.delay_for(kind).clone());
        ReplicaDelays {
            write: leg(MessageKind::WriteRequest),
            ack: leg(MessageKind::WriteAck),
            read: leg(MessageKind::ReadRequest),
            response: leg(MessageKind::ReadResponse),
        }
    }

    /// The paper's WARS model for these links: all N replicas alike.
    pub fn wars_model(&self, read_quorum: usize, write_quorum: usize) -> WarsModel {
        WarsModel::uniform(
            self.replicas,
            read_quorum,
            write_quorum,
            self.replica_delays(),
        )
    }

    /// WARS for this store's write path. A version is minted on one replica first (locally
    /// when the coordinator is a replica, else by a `Mint` request) and only then sent to
    /// the other replicas, so measured from the moment the minting replica has it, that
    /// replica has W = A = 0 and the others the configured W and A; reads are unchanged.
    /// Staleness is relative to the commit, so this shift of the time origin is exact.
    pub fn store_model(&self, read_quorum: usize, write_quorum: usize) -> WarsModel {
        let configured = self.replica_delays();
        let zero = Delay::Model(DelayDistribution::Constant { ms: 0.0 });
        let mut delays = vec![configured.clone(); self.replicas];
        delays[0].write = zero.clone();
        delays[0].ack = zero;
        WarsModel {
            replicas: self.replicas,
            read_quorum,
            write_quorum,
            delays,
            read_coordinator_random: false,
        }
    }
}

/// A running embedded probe cluster; dropping it stops the nodes and removes their data.
#[derive(Debug)]
pub struct PbsCluster {
    nodes: Option<InProcessCluster>,
    /// Removed after the nodes stop.
    _work_dir: tempfile::TempDir,
}

impl PbsCluster {
    /// Starts the nodes and waits until each serves.
    pub fn start(options: &PbsClusterOptions) -> Result<PbsCluster> {
        options.validate()?;
        let work_dir = tempfile::Builder::new()
            .prefix("kvbench-probe-")
            .tempdir()
            .map_err(|source| Error::Io {
                context: "creating the probe cluster's data directory".into(),
                source,
            })?;
        let mut spec = InProcessSpec::new(work_dir.path().to_path_buf(), 1, options.nodes);
        spec.replication = Replication::Total(options.replicas);
        spec.default_consistency = Consistency::One;
        spec.worker_threads = options.worker_threads;
        spec.base.read_repair = options.read_repair;
        // The WARS model (and the paper's setup) sends every read to all N replicas and
        // counts the first R replies; the node's default asks only as many as R needs.
        spec.base.read_fanout = ReadFanout::All;
        spec.base.links.intra_datacenter = options.link.clone();
        spec.base.links.inter_datacenter = options.link.clone();
        let nodes = InProcessCluster::start(&spec)?;
        Ok(PbsCluster {
            nodes: Some(nodes),
            _work_dir: work_dir,
        })
    }

    /// Every node's client address, `n1` first.
    pub fn client_addresses(&self) -> Vec<SocketAddr> {
        self.nodes
            .as_ref()
            .map(InProcessCluster::client_addresses)
            .unwrap_or_default()
    }
}

impl Drop for PbsCluster {
    fn drop(&mut self) {
        if let Some(nodes) = self.nodes.take() {
            let _ = nodes.stop();
        }
    }
}
