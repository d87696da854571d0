//! The node's `[links]` configuration section.
//!
//! ```toml
//! [links]
//! intra_datacenter = { delay = "uniform(0.1,0.5)" }
//! inter_datacenter = { delay = { type = "exponential", mean_ms = 20 }, loss = 0.001 }
//!
//! [[links.datacenter_links]]
//! from = "us-east"
//! to = "eu-west"
//! delay = "40+exp(5)"        # both directions unless symmetric = false
//!
//! [[links.node_links]]
//! from = "n1"
//! to = "n2"
//! symmetric = false
//! partitioned = true
//!
//! [[links.node_links]]               # the WARS legs of the PBS paper's validation
//! from = "n1"
//! to = "n2"
//! delay = "exp(10)"
//! kind_delays = { write_request = "exp(20)" }
//! ```

use serde::{Deserialize, Serialize};

use super::{KindDelays, LinkSpec, LinkTable, PairMap};
use crate::net::delay::DelayDistribution;
use crate::Result;

/// How the node emulates the network under peer (and client) messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// Links between two nodes of one datacenter, unless overridden. Default: no delay, no
    /// loss.
    pub intra_datacenter: LinkSpec,
    /// Links between nodes of different datacenters, unless overridden. Default: no delay,
    /// no loss.
    pub inter_datacenter: LinkSpec,
    /// Per datacenter-pair overrides; `from == to` overrides `intra_datacenter` for one
    /// datacenter. Default: none.
    pub datacenter_links: Vec<LinkOverride>,
    /// Per node-pair overrides, which win over datacenter pairs. Default: none.
    pub node_links: Vec<LinkOverride>,
}

/// One override: a link spec for the pair `from` → `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkOverride {
    /// The sending datacenter or node.
    pub from: String,
    /// The receiving datacenter or node.
    pub to: String,
    /// Apply to `to` → `from` as well. Default: true.
    #[serde(default = "default_symmetric")]
    pub symmetric: bool,
    /// One-way delay. Default: no delay.
    #[serde(default)]
    pub delay: DelayDistribution,
    /// Drop probability in `[0, 1]`. Default: 0.
    #[serde(default)]
    pub loss: f64,
    /// Drop everything. Default: false.
    #[serde(default)]
    pub partitioned: bool,
    /// Per-message-kind delays (see [`super::kinds`]). Default: none.
    #[serde(default, skip_serializing_if = "KindDelays::is_empty")]
    pub kind_delays: KindDelays,
}

fn default_symmetric() -> bool {
    true
}

impl LinkOverride {
    /// The override for `from` → `to` (and back, if `symmetric`) with `spec`.
    pub fn new(from: &str, to: &str, spec: LinkSpec, symmetric: bool) -> Self {
        LinkOverride {
            from: from.to_string(),
            to: to.to_string(),
            symmetric,
            delay: spec.delay,
            loss: spec.loss,
            partitioned: spec.partitioned,
            kind_delays: spec.kind_delays,
        }
    }

    /// The spec this override applies.
    pub fn spec(&self) -> LinkSpec {
        LinkSpec {
            delay: self.delay.clone(),
            loss: self.loss,
            partitioned: self.partitioned,
            kind_delays: self.kind_delays.clone(),
        }
    }
}

impl LinkConfig {
    /// Checks every spec and limit by building the table it describes.
    pub fn validate(&self) -> Result<()> {
        LinkTable::from_config(self).map(drop)
    }
}

impl LinkTable {
    /// The table a `[links]` section describes; later overrides of the same pair win.
    pub fn from_config(config: &LinkConfig) -> Result<Self> {
        let mut table = LinkTable::new(
            config.intra_datacenter.clone(),
            config.inter_datacenter.clone(),
        )?;
        for link in &config.datacenter_links {
            table.set_datacenter_link(&link.from, &link.to, link.spec(), link.symmetric)?;
        }
        for link in &config.node_links {
            table.set_node_link(&link.from, &link.to, link.spec(), link.symmetric)?;
        }
        Ok(table)
    }

    /// The configuration that rebuilds this table's specs (partitions are run-time state and
    /// are not included). Pairs set the same both ways come out as one symmetric override.
    pub fn to_config(&self) -> LinkConfig {
        LinkConfig {
            intra_datacenter: self.intra_datacenter.clone(),
            inter_datacenter: self.inter_datacenter.clone(),
            datacenter_links: overrides(&self.datacenter_links),
            node_links: overrides(&self.node_links),
        }
    }
}

fn overrides(links: &PairMap) -> Vec<LinkOverride> {
    let mut result = Vec::new();
    for (from, to, spec) in links.iter() {
        let symmetric = from != to && links.get(to, from) == Some(spec);
        // The pair's second direction was already emitted with the first.
        if symmetric && from > to {
            continue;
        }
        result.push(LinkOverride::new(from, to, spec.clone(), symmetric));
    }
    result
}
