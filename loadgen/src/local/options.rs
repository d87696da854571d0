//! [`LocalClusterOptions`]: the shape of the embedded cluster, as a workload or sweep file
//! spells it, checked before anything starts.
//!
//! ```toml
//! datacenters = 2
//! nodes_per_datacenter = 3
//! replication = { dc1 = 2, dc2 = 1 }   # or a total: replication = 3
//! consistency = "QUORUM"               # or { COUNTS = { read = 1, write = 3 } }
//! inter_dc_delay = "30+preset:linkedin-ssd"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use cluster::launcher::addresses::datacenter_name;
use cluster::launcher::NODES_MAX;
use cluster::net::DelayDistribution;
use cluster::protocol::Consistency;
use cluster::ring::Replication;
use cluster::version::ConflictPolicy;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The default one-way delay between two emulated datacenters, in the link emulator's text
/// syntax.
///
/// 30 ms constant: half of a US east–west round trip between cloud regions, e.g. AWS
/// us-east-1 (Virginia) to us-west-2 (Oregon), measured at about 55 ms over a private VPC
/// peering (<https://dev.to/juanhcode/aws-multi-region-networking-what-actually-happens-between-regions-58g9>)
/// and about 60–70 ms on public inter-region ping tables such as cloudping.co. On top of
/// it, `preset:linkedin-ssd` (the PBS paper's fit of one-way delays inside a LinkedIn
/// datacenter, mean 0.29 ms with a Pareto tail; see `cluster::net::presets`) adds the
/// jitter of the hops at both ends. The PBS paper models a WAN the same way, as a
/// constant plus that fit (`75+preset:linkedin-ssd` for its 75 ms scenario).
pub const DEFAULT_INTER_DC_DELAY: &str = "30+preset:linkedin-ssd";

/// How the embedded cluster is laid out. Every field has a default; unknown fields are
/// refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalClusterOptions {
    /// Emulated datacenters, named `dc1`, `dc2`, ... Default 2.
    pub datacenters: usize,
    /// Nodes in each datacenter. Default 3.
    pub nodes_per_datacenter: usize,
    /// Replicas of each key, in total or per datacenter. Default `{ dc1 = 2, dc2 = 1 }`
    /// (N = 3, two copies near the clients of dc1 and one remote copy).
    pub replication: Replication,
    /// The consistency level a request gets when the client does not name one. Default
    /// `QUORUM` (W = R = 2 with N = 3).
    pub consistency: Consistency,
    /// One-way delay of every message between two datacenters (both directions), in the
    /// link emulator's syntax (`"40"`, `"40+exp(5)"`, `"75+preset:linkedin-ssd"`).
    /// Default [`DEFAULT_INTER_DC_DELAY`].
    pub inter_dc_delay: String,
    /// Where the temporary data directory is created. Default: the system's temporary
    /// directory.
    pub parent_dir: Option<PathBuf>,
    /// Worker threads of the runtime all nodes share; 0 means one per CPU. Default 0.
    pub worker_threads: usize,
    /// How concurrent writes are resolved: `"siblings"` (default) or `"lww"`.
    pub conflict_policy: ConflictPolicy,
    /// Nodes configured but not started, for a failure schedule's `add`: named after the
    /// others (`n7`, `n8`, ... for 6 nodes), one per datacenter in turn (`dc1`, `dc2`,
    /// ...). Default 0; a schedule that adds nodes implies as many as it needs.
    #[serde(skip_serializing_if = "is_zero")]
    pub spare_nodes: usize,
}

fn is_zero(value: &usize) -> bool {
    *value == 0
}

impl Default for LocalClusterOptions {
    fn default() -> Self {
        LocalClusterOptions {
            datacenters: 2,
            nodes_per_datacenter: 3,
            replication: Replication::PerDatacenter(BTreeMap::from([
                ("dc1".to_string(), 2),
                ("dc2".to_string(), 1),
            ])),
            consistency: Consistency::Quorum,
            inter_dc_delay: DEFAULT_INTER_DC_DELAY.to_string(),
            parent_dir: None,
            worker_threads: 0,
            conflict_policy: ConflictPolicy::default(),
            spare_nodes: 0,
        }
    }
}

impl LocalClusterOptions {
    /// Total number of nodes.
    pub fn node_count(&self) -> usize {
        self.datacenters.saturating_mul(self.nodes_per_datacenter)
    }

    /// The inter-datacenter delay, parsed.
    pub fn inter_dc_delay(&self) -> Result<DelayDistribution> {
        self.inter_dc_delay
            .parse()
            .map_err(|error: cluster::Error| match error {
                cluster::Error::InvalidConfig { detail, .. } => invalid("inter_dc_delay", detail),
                other => invalid("inter_dc_delay", other.to_string()),
            })
    }

    /// Checks everything a start would trip on, naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.datacenters == 0 {
            return Err(invalid("datacenters", "must be at least 1".into()));
        }
        if self.nodes_per_datacenter == 0 {
            return Err(invalid("nodes_per_datacenter", "must be at least 1".into()));
        }
        let nodes = self.node_count();
        if nodes > NODES_MAX {
            return Err(invalid(
                "nodes_per_datacenter",
                format!(
                    "{} datacenters x {} nodes is {nodes} nodes; at most {NODES_MAX}",
                    self.datacenters, self.nodes_per_datacenter
                ),
            ));
        }
        if nodes + self.spare_nodes > NODES_MAX {
            return Err(invalid(
                "spare_nodes",
                format!(
                    "{nodes} nodes and {} spares; at most {NODES_MAX} in all",
                    self.spare_nodes
                ),
            ));
        }
        self.validate_replication(nodes)?;
        if let Consistency::Counts { read, write } = self.consistency {
            let replicas = self.replication.total();
            for (side, count) in [("R", read), ("W", write)] {
                if let Some(count) = count {
                    if count == 0 || count as usize > replicas {
                        return Err(invalid(
                            "consistency",
                            format!("{side} {count} but {replicas} replicas"),
                        ));
                    }
                }
            }
        }
        self.inter_dc_delay()?;
        Ok(())
    }

    fn validate_replication(&self, nodes: usize) -> Result<()> {
        let total = self.replication.total();
        if total == 0 {
            return Err(invalid(
                "replication",
                "must keep at least 1 replica".into(),
            ));
        }
        if total > nodes {
            return Err(invalid(
                "replication",
                format!("{total} replicas but {nodes} nodes"),
            ));
        }
        if let Replication::PerDatacenter(counts) = &self.replication {
            let names: Vec<String> = (0..self.datacenters).map(datacenter_name).collect();
            for (datacenter, &count) in counts {
                if !names.contains(datacenter) {
                    return Err(invalid(
                        "replication",
                        format!(
                            "names datacenter {datacenter} but the cluster has {}",
                            names.join(", ")
                        ),
                    ));
                }
                if count > self.nodes_per_datacenter {
                    return Err(invalid(
                        "replication",
                        format!(
                            "{count} replicas in {datacenter} but {} nodes there",
                            self.nodes_per_datacenter
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn invalid(field: &str, detail: String) -> Error {
    Error::InvalidOption {
        field: format!("cluster option {field}"),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(json: &str) -> LocalClusterOptions {
        serde_json::from_str(json).unwrap()
    }

    fn error_of(options: &LocalClusterOptions) -> String {
        options.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_two_datacenters_of_three_with_n3_quorum_and_a_wan_delay() {
        let options = parsed("{}");
        assert_eq!(options, LocalClusterOptions::default());
        assert_eq!(options.node_count(), 6);
        assert_eq!(options.replication.total(), 3);
        assert_eq!(options.consistency, Consistency::Quorum);
        options.validate().unwrap();
        let mean = options.inter_dc_delay().unwrap().mean_ms().unwrap();
        assert!((30.0..31.0).contains(&mean), "{mean}");
    }

    #[test]
    fn reads_every_field() {
        let options = parsed(
            r#"{"datacenters": 3, "nodes_per_datacenter": 1, "replication": 2,
                "consistency": "ONE", "inter_dc_delay": "5", "worker_threads": 2}"#,
        );
        assert_eq!(options.replication, Replication::Total(2));
        assert_eq!(options.consistency, Consistency::One);
        options.validate().unwrap();
        assert!(serde_json::from_str::<LocalClusterOptions>(r#"{"nodes": 3}"#).is_err());
    }

    #[test]
    fn errors_name_the_field() {
        let mut options = LocalClusterOptions {
            datacenters: 0,
            ..LocalClusterOptions::default()
        };
        assert!(error_of(&options).contains("datacenters"));
        options.datacenters = 1;
        let error = error_of(&options);
        assert!(
            error.contains("replication") && error.contains("dc2"),
            "{error}"
        );
        options = LocalClusterOptions {
            nodes_per_datacenter: 40,
            ..LocalClusterOptions::default()
        };
        assert!(error_of(&options).contains("nodes_per_datacenter"));
        options = LocalClusterOptions {
            nodes_per_datacenter: 1,
            ..LocalClusterOptions::default()
        };
        assert!(error_of(&options).contains("3 replicas but 2 nodes"));
        options.datacenters = 3;
        let error = error_of(&options);
        assert!(error.contains("2 replicas in dc1 but 1 nodes"), "{error}");
        options = LocalClusterOptions {
            consistency: Consistency::Counts {
                read: Some(4),
                write: None,
            },
            ..LocalClusterOptions::default()
        };
        assert!(error_of(&options).contains("consistency: R 4 but 3 replicas"));
        options = LocalClusterOptions {
            inter_dc_delay: "fast".into(),
            ..LocalClusterOptions::default()
        };
        let error = error_of(&options);
        assert!(
            error.contains("inter_dc_delay") && error.contains("fast"),
            "{error}"
        );
    }
}
