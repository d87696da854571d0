//! How many copies of a key to keep, and where.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The replication setting placement honours.
///
/// Untagged so a config reads naturally: `replication = 3` is [`Replication::Total`] and
/// `replication = { dc1 = 2, dc2 = 1 }` is [`Replication::PerDatacenter`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Replication {
    /// N distinct physical nodes, clockwise from the key, whatever their datacenters:
    /// Dynamo's preference list.
    Total(usize),
    /// For each named datacenter, that many distinct nodes of it, each the first ones met
    /// walking clockwise from the key (Cassandra's NetworkTopologyStrategy). Datacenters
    /// not named get no replica.
    PerDatacenter(BTreeMap<String, usize>),
}

impl Replication {
    /// Total number of replicas a preference list will hold.
    pub fn total(&self) -> usize {
        match self {
            Replication::Total(count) => *count,
            Replication::PerDatacenter(counts) => counts.values().sum(),
        }
    }
}

/// Three copies, as Dynamo and most of its descendants default to.
impl Default for Replication {
    fn default() -> Replication {
        Replication::Total(3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Config {
        replication: Replication,
    }

    #[test]
    fn reads_a_plain_count_from_toml() {
        let config: Config = toml::from_str("replication = 3").unwrap();
        assert_eq!(config.replication, Replication::Total(3));
        assert_eq!(config.replication.total(), 3);
    }

    #[test]
    fn reads_per_datacenter_counts_from_toml() {
        let config: Config = toml::from_str("replication = { dc1 = 2, dc2 = 1 }").unwrap();
        let expected = BTreeMap::from([("dc1".to_string(), 2), ("dc2".to_string(), 1)]);
        assert_eq!(config.replication, Replication::PerDatacenter(expected));
        assert_eq!(config.replication.total(), 3);
    }

    #[test]
    fn round_trips_through_toml() {
        for replication in [
            Replication::Total(5),
            Replication::PerDatacenter(BTreeMap::from([("east".to_string(), 3)])),
        ] {
            let config = Config { replication };
            let text = toml::to_string(&config).unwrap();
            assert_eq!(toml::from_str::<Config>(&text).unwrap(), config);
        }
    }

    #[test]
    fn rejects_nonsense() {
        assert!(toml::from_str::<Config>("replication = \"three\"").is_err());
        assert!(toml::from_str::<Config>("replication = -1").is_err());
    }
}
