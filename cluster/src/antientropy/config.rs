//! `[antientropy]`: whether and how often replicas compare their trees, and the bounds on
//! one round.

use serde::{Deserialize, Serialize};

use super::merkle::DEPTH_MAX;
use crate::{Error, Result};

/// Anti-entropy settings. Every node of a cluster must use the same `depth_max` and
/// `leaves_per_node_max` (they decide the trees' shape); the rest may differ per node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AntiEntropyConfig {
    /// Whether the node keeps trees and runs rounds. When off it still answers peers'
    /// requests with an error, and `ANTIENTROPY.RUN` is refused. Default true.
    pub enabled: bool,
    /// Time between the starts of two background rounds, in milliseconds; 0 runs rounds
    /// only on `ANTIENTROPY.RUN`. Default 60 000.
    pub interval_ms: u64,
    /// Deepest tree (2^depth buckets per range). Default 12.
    pub depth_max: u8,
    /// Leaves a node keeps over all its ranges, about (a tree costs 24 bytes per leaf); the
    /// depth is lowered when the ring has many ranges. Default 65 536.
    pub leaves_per_node_max: u64,
    /// Most keys (or key digests) in one message. Default 1000.
    pub keys_per_message_max: usize,
    /// Most tree hashes in one message. Default 16 384.
    pub hashes_per_message_max: usize,
    /// Most bytes one round sends and receives in key digests and values; what is left is
    /// repaired by the next round. Default 64 MiB.
    pub bytes_per_round_max: u64,
    /// Most stored rows a peer scans to answer one request for the keys of differing
    /// buckets. Default 100 000.
    pub rows_scanned_per_message_max: usize,
    /// Levels descended per round trip when walking down differing subtrees. Default 4.
    pub levels_per_step: u8,
    /// How long a starting node waits for its trees to be built (a scan of everything it
    /// stores) before it serves anyway, building on, in milliseconds; 0 does not wait.
    /// Default 2 000.
    pub startup_build_wait_ms: u64,
}

impl Default for AntiEntropyConfig {
    fn default() -> Self {
        AntiEntropyConfig {
            enabled: true,
            interval_ms: 60_000,
            depth_max: 12,
            leaves_per_node_max: 1 << 16,
            keys_per_message_max: 1000,
            hashes_per_message_max: 16_384,
            bytes_per_round_max: 64 << 20,
            rows_scanned_per_message_max: 100_000,
            levels_per_step: 4,
            startup_build_wait_ms: 2_000,
        }
    }
}

impl AntiEntropyConfig {
    /// Range checks, each error naming the field.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &str, detail: String| {
            Err(Error::InvalidConfig {
                field: field.into(),
                detail,
            })
        };
        if self.depth_max > DEPTH_MAX {
            return invalid(
                "depth_max",
                format!("{} is over the limit of {DEPTH_MAX}", self.depth_max),
            );
        }
        if self.leaves_per_node_max == 0 || self.leaves_per_node_max > 1 << 24 {
            return invalid(
                "leaves_per_node_max",
                format!("{} is not in 1..=16777216", self.leaves_per_node_max),
            );
        }
        for (field, value) in [
            ("keys_per_message_max", self.keys_per_message_max),
            ("hashes_per_message_max", self.hashes_per_message_max),
            (
                "rows_scanned_per_message_max",
                self.rows_scanned_per_message_max,
            ),
        ] {
            if value == 0 || value > 1 << 20 {
                return invalid(field, format!("{value} is not in 1..=1048576"));
            }
        }
        if self.bytes_per_round_max == 0 {
            return invalid("bytes_per_round_max", "must be at least 1".into());
        }
        if self.levels_per_step == 0 || self.levels_per_step > 16 {
            return invalid(
                "levels_per_step",
                format!("{} is not in 1..=16", self.levels_per_step),
            );
        }
        if self.startup_build_wait_ms > 3_600_000 {
            return invalid(
                "startup_build_wait_ms",
                format!(
                    "{} is over an hour (3600000); a node would not serve meanwhile",
                    self.startup_build_wait_ms
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        AntiEntropyConfig::default().validate().unwrap();
        let config = AntiEntropyConfig {
            depth_max: 30,
            ..AntiEntropyConfig::default()
        };
        let text = config.validate().unwrap_err().to_string();
        assert!(text.contains("depth_max"), "{text}");
        let config = AntiEntropyConfig {
            keys_per_message_max: 0,
            ..AntiEntropyConfig::default()
        };
        let text = config.validate().unwrap_err().to_string();
        assert!(text.contains("keys_per_message_max"), "{text}");
        let config = AntiEntropyConfig {
            startup_build_wait_ms: 3_600_001,
            ..AntiEntropyConfig::default()
        };
        let text = config.validate().unwrap_err().to_string();
        assert!(text.contains("startup_build_wait_ms"), "{text}");
    }
}
