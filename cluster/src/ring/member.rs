//! Who is on the ring: node ids and members.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A node's name, unique in the cluster (e.g. `"dc1-node-07"`).
///
/// An `Arc<str>` so that preference lists, hints and gossip state can copy ids around by
/// bumping a counter instead of allocating. Ordered by the name's bytes, which is what
/// makes ring construction independent of member order.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// Wraps a name. Length and emptiness are checked when the id joins a [`super::Ring`].
    pub fn new(name: impl AsRef<str>) -> NodeId {
        NodeId(Arc::from(name.as_ref()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, formatter)
    }
}

impl From<&str> for NodeId {
    fn from(name: &str) -> NodeId {
        NodeId::new(name)
    }
}

impl From<String> for NodeId {
    fn from(name: String) -> NodeId {
        NodeId(Arc::from(name))
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Serialised as a plain string, so configs and gossip say `id = "node-1"`.
impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<NodeId, D::Error> {
        String::deserialize(deserializer).map(NodeId::from)
    }
}

/// One physical node as the ring sees it. Unknown fields are rejected so a misspelt
/// `wieght` in a config is an error rather than a silently weight-1 node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The node's unique name; its tokens are derived from it.
    pub id: NodeId,
    /// The datacenter the node is in; per-datacenter replication counts are taken over it.
    pub datacenter: String,
    /// Capacity multiplier: the node gets `weight * vnodes_per_weight` virtual nodes and so
    /// about `weight` times the keys of a weight-1 node. At least 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

impl Member {
    /// A member of weight 1.
    pub fn new(id: impl Into<NodeId>, datacenter: impl Into<String>) -> Member {
        Member {
            id: id.into(),
            datacenter: datacenter.into(),
            weight: 1,
        }
    }

    /// The same member with another weight.
    pub fn with_weight(self, weight: u32) -> Member {
        Member { weight, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_displays_and_orders_by_name() {
        let a = NodeId::new("a");
        let b = NodeId::from("b".to_string());
        assert!(a < b);
        assert_eq!(a.to_string(), "a");
        assert_eq!(format!("{b:?}"), "\"b\"");
    }

    #[test]
    fn member_reads_from_toml_with_default_weight() {
        let member: Member = toml::from_str("id = \"n1\"\ndatacenter = \"dc1\"\n").unwrap();
        assert_eq!(member, Member::new("n1", "dc1"));
        let weighted: Member =
            toml::from_str("id = \"n2\"\ndatacenter = \"dc2\"\nweight = 3\n").unwrap();
        assert_eq!(weighted, Member::new("n2", "dc2").with_weight(3));
        assert!(toml::from_str::<Member>("id = \"n\"\ndatacenter = \"d\"\nwieght = 2\n").is_err());
        let text = toml::to_string(&weighted).unwrap();
        assert_eq!(toml::from_str::<Member>(&text).unwrap(), weighted);
    }
}
