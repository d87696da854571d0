//! Per-link behaviour (delay, loss, partitions), looked up by endpoint pair, changeable at run
//! time.
//!
//! Lookup precedence for a message from `from` to `to`:
//! 1. a message from a node to itself is delivered at once (it never touches the network);
//! 2. a partition that separates the two endpoints drops it;
//! 3. otherwise the link's [`LinkSpec`] is the first of: the (from node, to node) override,
//!    the (from datacenter, to datacenter) override, the `intra_datacenter` default when
//!    both are in one datacenter, else the `inter_datacenter` default;
//! 4. that spec's `partitioned` flag drops it, then `loss` drops it with that probability,
//!    else it is delivered after a draw from the spec's delay for the message's kind
//!    ([`kinds`]: write request, write ack, read request, read response), or from `delay`
//!    when that kind has none (or the caller does not say what the message is).
//!
//! Overrides are directional (links can be asymmetric); the helpers and the configuration
//! default to setting both directions.

mod change;
mod config;
mod describe;
mod emulator;
pub mod kinds;
mod pairs;
pub mod stats;

use std::collections::BTreeSet;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

pub use change::{LinkChange, LinkPair, PairKind};
pub use config::{LinkConfig, LinkOverride};
pub use emulator::LinkEmulator;
pub use kinds::{KindDelays, MessageKind};
use pairs::PairMap;

use super::delay::DelayDistribution;
use crate::{Error, Result};

/// Most per-pair overrides (datacenter and node pairs each). A full mesh of 64 nodes is 4032
/// directed pairs; beyond that an override table is a misconfiguration or a leak.
pub const MAX_LINK_OVERRIDES: usize = 4096;

/// Most simultaneous partitions; fault scripts rarely hold more than a handful.
pub const MAX_PARTITIONS: usize = 256;

/// How one direction of a link behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkSpec {
    /// One-way delay of each delivered message; a table (`{ type = "exponential",
    /// mean_ms = 20 }`) or a text spec (`"40+exp(5)"`). Default: no delay.
    pub delay: DelayDistribution,
    /// Probability in `[0, 1]` that a message is dropped. Default: 0.
    pub loss: f64,
    /// Drop every message, as a cable cut would. Default: false. Run-time partitions are
    /// kept separately (see [`LinkTable::partition`]) so healing them restores this flag.
    pub partitioned: bool,
    /// Delays of their own for write requests, write acks, read requests and read
    /// responses (the WARS legs; see [`kinds`]), e.g. `{ write_request = "exp(20)" }`.
    /// Default: none, every message takes `delay`.
    #[serde(skip_serializing_if = "KindDelays::is_empty")]
    pub kind_delays: KindDelays,
}

impl Default for LinkSpec {
    fn default() -> Self {
        LinkSpec {
            delay: DelayDistribution::default(),
            loss: 0.0,
            partitioned: false,
            kind_delays: KindDelays::default(),
        }
    }
}

impl LinkSpec {
    /// A link with this delay, no loss, up.
    pub fn with_delay(delay: DelayDistribution) -> Self {
        LinkSpec {
            delay,
            ..LinkSpec::default()
        }
    }

    /// The same link with `loss` probability of dropping each message.
    pub fn loss(mut self, loss: f64) -> Self {
        self.loss = loss;
        self
    }

    /// The same link, cut.
    pub fn cut(mut self) -> Self {
        self.partitioned = true;
        self
    }

    /// The same link with `kind` messages delayed by `delay` instead of the link's delay.
    pub fn kind_delay(mut self, kind: MessageKind, delay: DelayDistribution) -> Self {
        self.kind_delays.set(kind, Some(delay));
        self
    }

    /// The delay distribution a `kind` message is drawn from on this link.
    pub fn delay_for(&self, kind: MessageKind) -> &DelayDistribution {
        self.kind_delays.get(kind).unwrap_or(&self.delay)
    }

    /// `delay`, then any per-kind delays: `exp(10) (mean 10.000 ms) write_request=exp(20)`.
    pub fn delay_summary(&self) -> String {
        let kinds = self.kind_delays.summary();
        if kinds.is_empty() {
            self.delay.summary()
        } else {
            format!("{} {kinds}", self.delay.summary())
        }
    }

    /// Checks the delay and that loss is a probability.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.loss) {
            return Err(Error::InvalidConfig {
                field: "loss".to_string(),
                detail: format!("{} is not a probability between 0 and 1", self.loss),
            });
        }
        self.delay.validate()?;
        self.kind_delays.validate()
    }
}

/// One end of a message: a node and the datacenter it runs in. A client is an endpoint too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint<'a> {
    /// The node's (or client's) name.
    pub node: &'a str,
    /// The datacenter it runs in.
    pub datacenter: &'a str,
}

impl<'a> Endpoint<'a> {
    /// The endpoint `node` in `datacenter`.
    pub fn new(node: &'a str, datacenter: &'a str) -> Self {
        Endpoint { node, datacenter }
    }
}

/// What happens to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver after `delay`.
    Deliver {
        /// The one-way delay to apply.
        delay: Duration,
    },
    /// Drop, and why (for counters and traces).
    Drop(DropReason),
}

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A run-time partition separates the endpoints.
    Partitioned(PartitionId),
    /// The link's spec says `partitioned = true`.
    LinkDown,
    /// Random loss.
    Lost,
}

/// Names a run-time partition so it can be healed alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId(pub u64);

/// One side of a partition: whole datacenters and individual nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionGroup {
    /// Every node in these datacenters is in the group.
    pub datacenters: BTreeSet<String>,
    /// These nodes are in the group wherever they run.
    pub nodes: BTreeSet<String>,
}

impl PartitionGroup {
    /// Every node of one datacenter.
    pub fn datacenter(name: &str) -> Self {
        Self::datacenters([name])
    }

    /// Every node of these datacenters.
    pub fn datacenters<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        PartitionGroup {
            datacenters: names.into_iter().map(str::to_string).collect(),
            nodes: BTreeSet::new(),
        }
    }

    /// These nodes.
    pub fn nodes<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        PartitionGroup {
            datacenters: BTreeSet::new(),
            nodes: names.into_iter().map(str::to_string).collect(),
        }
    }

    /// Whether `endpoint` belongs to the group.
    pub fn contains(&self, endpoint: Endpoint<'_>) -> bool {
        self.datacenters.contains(endpoint.datacenter) || self.nodes.contains(endpoint.node)
    }

    fn is_empty(&self) -> bool {
        self.datacenters.is_empty() && self.nodes.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Partition {
    id: PartitionId,
    side_a: PartitionGroup,
    side_b: PartitionGroup,
    /// When false only messages from `side_a` to `side_b` are dropped.
    symmetric: bool,
}

impl Partition {
    fn separates(&self, from: Endpoint<'_>, to: Endpoint<'_>) -> bool {
        (self.side_a.contains(from) && self.side_b.contains(to))
            || (self.symmetric && self.side_b.contains(from) && self.side_a.contains(to))
    }
}

/// Which rule supplied a link's spec, for `describe` and debugging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkScope {
    /// A (from node, to node) override.
    NodePair,
    /// A (from datacenter, to datacenter) override.
    DatacenterPair,
    /// The same-datacenter default.
    IntraDatacenter,
    /// The cross-datacenter default.
    InterDatacenter,
}

/// Every link's spec and the current partitions. Plain data; [`LinkEmulator`] shares it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkTable {
    intra_datacenter: LinkSpec,
    inter_datacenter: LinkSpec,
    datacenter_links: PairMap,
    node_links: PairMap,
    partitions: Vec<Partition>,
    next_partition: u64,
}

impl LinkTable {
    /// A table with these defaults and no overrides or partitions.
    pub fn new(intra_datacenter: LinkSpec, inter_datacenter: LinkSpec) -> Result<Self> {
        intra_datacenter.validate()?;
        inter_datacenter.validate()?;
        Ok(LinkTable {
            intra_datacenter,
            inter_datacenter,
            ..LinkTable::default()
        })
    }

    /// Replaces the same-datacenter default.
    pub fn set_intra_datacenter(&mut self, spec: LinkSpec) -> Result<()> {
        spec.validate()?;
        self.intra_datacenter = spec;
        Ok(())
    }

    /// Replaces the cross-datacenter default.
    pub fn set_inter_datacenter(&mut self, spec: LinkSpec) -> Result<()> {
        spec.validate()?;
        self.inter_datacenter = spec;
        Ok(())
    }

    /// Overrides datacenter `from` to datacenter `to` (and back, if `symmetric`). `from ==
    /// to` overrides the same-datacenter default for that one datacenter.
    pub fn set_datacenter_link(
        &mut self,
        from: &str,
        to: &str,
        spec: LinkSpec,
        symmetric: bool,
    ) -> Result<()> {
        self.datacenter_links
            .set("datacenter", from, to, spec, symmetric)
    }

    /// Overrides node `from` to node `to` (and back, if `symmetric`).
    pub fn set_node_link(
        &mut self,
        from: &str,
        to: &str,
        spec: LinkSpec,
        symmetric: bool,
    ) -> Result<()> {
        self.node_links.set("node", from, to, spec, symmetric)
    }

    /// Removes a datacenter-pair override (both directions if `symmetric`); returns how many
    /// directions were removed.
    pub fn clear_datacenter_link(&mut self, from: &str, to: &str, symmetric: bool) -> usize {
        self.datacenter_links.clear(from, to, symmetric)
    }

    /// Removes a node-pair override (both directions if `symmetric`); returns how many
    /// directions were removed.
    pub fn clear_node_link(&mut self, from: &str, to: &str, symmetric: bool) -> usize {
        self.node_links.clear(from, to, symmetric)
    }

    /// The spec governing messages from `from` to `to`, and which rule supplied it.
    pub fn spec(&self, from: Endpoint<'_>, to: Endpoint<'_>) -> (&LinkSpec, LinkScope) {
        if let Some(spec) = self.node_links.get(from.node, to.node) {
            return (spec, LinkScope::NodePair);
        }
        if let Some(spec) = self.datacenter_links.get(from.datacenter, to.datacenter) {
            return (spec, LinkScope::DatacenterPair);
        }
        if from.datacenter == to.datacenter {
            (&self.intra_datacenter, LinkScope::IntraDatacenter)
        } else {
            (&self.inter_datacenter, LinkScope::InterDatacenter)
        }
    }

    /// Cuts every message between the two groups, both ways, until healed.
    pub fn partition(&mut self, a: PartitionGroup, b: PartitionGroup) -> Result<PartitionId> {
        self.add_partition(a, b, true)
    }

    /// Cuts messages from `from` to `to` only: replies still flow, as with a one-way
    /// firewall rule or a saturated uplink.
    pub fn partition_one_way(
        &mut self,
        from: PartitionGroup,
        to: PartitionGroup,
    ) -> Result<PartitionId> {
        self.add_partition(from, to, false)
    }

    fn add_partition(
        &mut self,
        side_a: PartitionGroup,
        side_b: PartitionGroup,
        symmetric: bool,
    ) -> Result<PartitionId> {
        if side_a.is_empty() || side_b.is_empty() {
            return Err(Error::InvalidConfig {
                field: "partition".to_string(),
                detail: "each side needs at least one datacenter or node".to_string(),
            });
        }
        if self.partitions.len() >= MAX_PARTITIONS {
            return Err(Error::LimitExceeded {
                what: "partitions",
                size: self.partitions.len() + 1,
                limit: MAX_PARTITIONS,
            });
        }
        self.next_partition += 1;
        let id = PartitionId(self.next_partition);
        self.partitions.push(Partition {
            id,
            side_a,
            side_b,
            symmetric,
        });
        Ok(id)
    }

    /// Heals one partition; false if there was none with that id.
    pub fn heal(&mut self, id: PartitionId) -> bool {
        let before = self.partitions.len();
        self.partitions.retain(|partition| partition.id != id);
        self.partitions.len() != before
    }

    /// Heals the partitions whose sides are exactly `a` and `b`, in either orientation;
    /// returns how many there were.
    pub fn heal_between(&mut self, a: &PartitionGroup, b: &PartitionGroup) -> usize {
        let before = self.partitions.len();
        self.partitions.retain(|partition| {
            let forward = partition.side_a == *a && partition.side_b == *b;
            let backward = partition.side_a == *b && partition.side_b == *a;
            !(forward || backward)
        });
        before - self.partitions.len()
    }

    /// Heals every run-time partition (static `partitioned = true` links stay cut); returns
    /// how many there were.
    pub fn heal_all(&mut self) -> usize {
        std::mem::take(&mut self.partitions).len()
    }

    /// The partition cutting messages from `from` to `to`, if any.
    pub fn partitioned_by(&self, from: Endpoint<'_>, to: Endpoint<'_>) -> Option<PartitionId> {
        self.partitions
            .iter()
            .find(|partition| partition.separates(from, to))
            .map(|partition| partition.id)
    }

    /// Decides the fate of a message of unknown kind: per-kind delays do not apply (see
    /// [`LinkTable::verdict_for`]).
    pub fn verdict<R: Rng + ?Sized>(
        &self,
        from: Endpoint<'_>,
        to: Endpoint<'_>,
        rng: &mut R,
    ) -> Verdict {
        self.verdict_for(from, to, MessageKind::Other, rng)
    }

    /// Decides one `kind` message's fate (see the module documentation for the order of
    /// rules).
    pub fn verdict_for<R: Rng + ?Sized>(
        &self,
        from: Endpoint<'_>,
        to: Endpoint<'_>,
        kind: MessageKind,
        rng: &mut R,
    ) -> Verdict {
        if from == to {
            return Verdict::Deliver {
                delay: Duration::ZERO,
            };
        }
        if let Some(id) = self.partitioned_by(from, to) {
            return Verdict::Drop(DropReason::Partitioned(id));
        }
        let (spec, _) = self.spec(from, to);
        if spec.partitioned {
            return Verdict::Drop(DropReason::LinkDown);
        }
        // Skipping the draw at zero loss keeps a lossless table's random stream identical
        // to one that never heard of loss, so adding loss elsewhere changes nothing here.
        if spec.loss > 0.0 && rng.gen::<f64>() < spec.loss {
            return Verdict::Drop(DropReason::Lost);
        }
        Verdict::Deliver {
            delay: spec.delay_for(kind).sample(rng),
        }
    }
}

#[cfg(test)]
mod tests;
