//! One run-time change to the link table, as the `LINK.*` admin commands make it and as nodes
//! pass it to each other ([`crate::protocol::peer::PeerMessage::LinkUpdate`]).
//!
//! A change travels between nodes as its command words ([`LinkChange::to_words`]), the same
//! text an operator types, so the admin syntax is the one contract; the receiving node
//! parses them with the client command parser (`protocol::command::link`).

use std::fmt;

use super::{LinkSpec, LinkTable, PartitionGroup};
use crate::Result;

/// Whether a pair names two datacenters or two nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairKind {
    /// Every node of each datacenter.
    Datacenter,
    /// Two single nodes (wins over their datacenters' settings).
    Node,
}

/// The two ends a change is about, `from` the sending side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPair {
    /// Datacenters or nodes.
    pub kind: PairKind,
    /// The sending datacenter or node.
    pub from: String,
    /// The receiving datacenter or node.
    pub to: String,
}

impl LinkPair {
    /// The pair `from` → `to` of datacenters.
    pub fn datacenters(from: &str, to: &str) -> Self {
        LinkPair {
            kind: PairKind::Datacenter,
            from: from.to_string(),
            to: to.to_string(),
        }
    }

    /// The pair `from` → `to` of nodes.
    pub fn nodes(from: &str, to: &str) -> Self {
        LinkPair {
            kind: PairKind::Node,
            ..Self::datacenters(from, to)
        }
    }

    fn group(&self, name: &str) -> PartitionGroup {
        match self.kind {
            PairKind::Datacenter => PartitionGroup::datacenter(name),
            PairKind::Node => PartitionGroup::nodes([name]),
        }
    }

    /// The words naming the pair: `dc1 dc2` or `NODE n1 n2`.
    fn words(&self) -> Vec<String> {
        let mut words = Vec::with_capacity(3);
        if self.kind == PairKind::Node {
            words.push("NODE".to_string());
        }
        words.push(self.from.clone());
        words.push(self.to.clone());
        words
    }
}

impl fmt::Display for LinkPair {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            PairKind::Datacenter => "dc",
            PairKind::Node => "node",
        };
        write!(formatter, "{what} {} and {what} {}", self.from, self.to)
    }
}

/// A change to the link table.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkChange {
    /// `LINK.SET`: the pair's whole spec (delay, loss) is replaced, both directions unless
    /// `symmetric` is false.
    Set {
        /// Which link.
        pair: LinkPair,
        /// Its new behaviour.
        spec: LinkSpec,
        /// Also `to` → `from`.
        symmetric: bool,
    },
    /// `LINK.PARTITION`: cut every message between the two, both ways, until healed.
    Partition {
        /// The two sides.
        pair: LinkPair,
    },
    /// `LINK.HEAL`: heal the partitions between the pair (either orientation), or every
    /// partition when `None`.
    Heal {
        /// The two sides, or all partitions.
        pair: Option<LinkPair>,
    },
    /// `LINK.RESET`: every link back to the node's configured `[links]`, partitions healed.
    Reset,
}

// Specs are validated (loss is a probability, delays finite), so no NaN ever sits in a change.
impl Eq for LinkChange {}

impl LinkChange {
    /// The admin command that makes this change, lower case (`link.set`).
    pub fn command_name(&self) -> &'static str {
        match self {
            LinkChange::Set { .. } => "link.set",
            LinkChange::Partition { .. } => "link.partition",
            LinkChange::Heal { .. } => "link.heal",
            LinkChange::Reset => "link.reset",
        }
    }

    /// The change as command words after `LINK.`: `SET dc1 dc2 const(50) LOSS 0.01`.
    /// Parsing them gives back an equal change (the delay prints in its canonical form).
    pub fn to_words(&self) -> Vec<String> {
        let mut words = Vec::new();
        match self {
            LinkChange::Set {
                pair,
                spec,
                symmetric,
            } => {
                words.push("SET".to_string());
                words.extend(pair.words());
                words.push(spec.delay.to_string());
                for (kind, delay) in spec.kind_delays.iter() {
                    words.push(format!("{kind}={delay}"));
                }
                words.push("LOSS".to_string());
                words.push(spec.loss.to_string());
                if spec.partitioned {
                    words.push("DOWN".to_string());
                }
                if !symmetric {
                    words.push("ONEWAY".to_string());
                }
            }
            LinkChange::Partition { pair } => {
                words.push("PARTITION".to_string());
                words.extend(pair.words());
            }
            LinkChange::Heal { pair } => {
                words.push("HEAL".to_string());
                if let Some(pair) = pair {
                    words.extend(pair.words());
                }
            }
            LinkChange::Reset => words.push("RESET".to_string()),
        }
        words
    }

    /// Applies the change to `table`; `configured` is what `Reset` restores. Returns a short
    /// description of what was done, for the admin reply.
    pub fn apply(&self, table: &mut LinkTable, configured: &LinkTable) -> Result<String> {
        match self {
            LinkChange::Set {
                pair,
                spec,
                symmetric,
            } => {
                match pair.kind {
                    PairKind::Datacenter => {
                        table.set_datacenter_link(&pair.from, &pair.to, spec.clone(), *symmetric)?
                    }
                    PairKind::Node => {
                        table.set_node_link(&pair.from, &pair.to, spec.clone(), *symmetric)?
                    }
                }
                let arrow = if *symmetric { "<->" } else { "->" };
                Ok(format!(
                    "{} {arrow} {}: delay {}, loss {}%{}",
                    pair.from,
                    pair.to,
                    spec.delay_summary(),
                    spec.loss * 100.0,
                    if spec.partitioned { ", down" } else { "" }
                ))
            }
            LinkChange::Partition { pair } => {
                let id = table.partition(pair.group(&pair.from), pair.group(&pair.to))?;
                Ok(format!("partition #{} cuts {pair} both ways", id.0))
            }
            LinkChange::Heal { pair: Some(pair) } => {
                let healed = table.heal_between(&pair.group(&pair.from), &pair.group(&pair.to));
                Ok(format!("healed {healed} partition(s) between {pair}"))
            }
            LinkChange::Heal { pair: None } => {
                Ok(format!("healed {} partition(s)", table.heal_all()))
            }
            LinkChange::Reset => {
                *table = configured.clone();
                Ok("links reset to the configured settings, no partitions".to_string())
            }
        }
    }
}
