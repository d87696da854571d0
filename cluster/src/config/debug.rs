//! `Debug` for [`NodeConfig`] with the secrets redacted: a config is printed in errors, test
//! failures and logs (`{:?}`), and `requirepass` and `cluster_secret` must not be. Only
//! `Debug` hides them; `Serialize` keeps them, since the launcher writes each node's config
//! file with it.
//!
//! A field added to [`NodeConfig`] shows here once it is listed below; until then it is left
//! out (the output ends in `..`), never printed by accident.

use std::fmt;

use super::NodeConfig;

/// What `Debug` prints in place of a secret that is set.
pub const REDACTED: &str = "<redacted>";

/// A secret as `Debug` shows it: `None`, or `Some("<redacted>")` whatever the value.
pub(crate) struct Redacted<'a>(pub(crate) &'a Option<String>);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => formatter.debug_tuple("Some").field(&REDACTED).finish(),
            None => formatter.write_str("None"),
        }
    }
}

impl fmt::Debug for NodeConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("NodeConfig")
            .field("node_id", &self.node_id)
            .field("datacenter", &self.datacenter)
            .field("client_address", &self.client_address)
            .field("peer_address", &self.peer_address)
            .field("data_dir", &self.data_dir)
            .field("vnodes_per_weight", &self.vnodes_per_weight)
            .field("weight", &self.weight)
            .field("members", &self.members)
            .field("seeds", &self.seeds)
            .field("replication", &self.replication)
            .field("default_consistency", &self.default_consistency)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("versions", &self.versions)
            .field("engine", &self.engine)
            .field("limits", &self.limits)
            .field("links", &self.links)
            .field("client_connections_max", &self.client_connections_max)
            .field("requirepass", &Redacted(&self.requirepass))
            .field("cluster_secret", &Redacted(&self.cluster_secret))
            .field("handoff", &self.handoff)
            .field("hints", &self.hints)
            .field("read_repair", &self.read_repair)
            .field("read_fanout", &self.read_fanout)
            .field("read_digests", &self.read_digests)
            .field(
                "read_repairs_in_flight_max",
                &self.read_repairs_in_flight_max,
            )
            .field("membership", &self.membership)
            .field("joining", &self.joining)
            .field("antientropy", &self.antientropy)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_secrets() -> NodeConfig {
        NodeConfig {
            requirepass: Some("client-password-1".to_string()),
            cluster_secret: Some("correct horse battery".to_string()),
            ..NodeConfig::default()
        }
    }

    #[test]
    fn debug_output_does_not_contain_the_secrets() {
        let config = with_secrets();
        for text in [format!("{config:?}"), format!("{config:#?}")] {
            assert!(!text.contains("client-password-1"), "{text}");
            assert!(!text.contains("correct horse battery"), "{text}");
            assert_eq!(text.matches(REDACTED).count(), 2, "{text}");
            // The rest is still there to read.
            assert!(text.contains("node_id: \"n1\""), "{text}");
            assert!(text.contains("antientropy: "), "{text}");
        }
        let compact = format!("{config:?}");
        assert!(
            compact.contains(&format!("requirepass: Some({REDACTED:?})")),
            "{compact}"
        );
        let unset = format!("{:?}", NodeConfig::default());
        assert!(unset.contains("cluster_secret: None"), "{unset}");
    }

    #[test]
    fn serialize_keeps_the_secrets_for_the_launched_nodes_config_files() {
        let config = with_secrets();
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains("client-password-1"), "{text}");
        assert!(text.contains("correct horse battery"), "{text}");
        let back: NodeConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, config);
    }
}
