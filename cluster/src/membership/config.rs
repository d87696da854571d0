//! The `[membership]` settings: intervals, fanout and timeouts, and their checks.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The most peers one round may push to.
pub const FANOUT_MAX: usize = 64;
/// The longest interval or timeout accepted, one day, so sums of them cannot overflow.
pub const DURATION_MAX_MS: u64 = 86_400_000;

/// Intervals, fanout and timeouts. Every field defaults; unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MembershipConfig {
    /// How often a node increments its heartbeat and gossips. Default 1000 ms.
    pub interval_ms: u64,
    /// How many peers each round pushes the table to. Default 3.
    pub fanout: usize,
    /// A member whose heartbeat has not advanced for this long (this node's clock) is
    /// Suspect. Default 5000 ms. Must exceed `interval_ms`; give it several times the
    /// dissemination time (about log2(N) rounds) to avoid false suspicion.
    pub suspect_after_ms: u64,
    /// ... and Down after this long. Default 10000 ms; must exceed `suspect_after_ms`.
    pub down_after_ms: u64,
    /// A member that announced it left is removed this long after this node learnt of
    /// it. Default 60000 ms; must be at least `interval_ms`.
    pub left_grace_ms: u64,
}

impl Default for MembershipConfig {
    fn default() -> MembershipConfig {
        MembershipConfig {
            interval_ms: 1000,
            fanout: 3,
            suspect_after_ms: 5000,
            down_after_ms: 10_000,
            left_grace_ms: 60_000,
        }
    }
}

impl MembershipConfig {
    /// Checks what the types cannot; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &str, detail: String| {
            Err(Error::InvalidConfig {
                field: field.to_string(),
                detail,
            })
        };
        for (field, value) in [
            ("interval_ms", self.interval_ms),
            ("suspect_after_ms", self.suspect_after_ms),
            ("down_after_ms", self.down_after_ms),
            ("left_grace_ms", self.left_grace_ms),
        ] {
            if value == 0 {
                return invalid(field, "must be at least 1".into());
            }
            if value > DURATION_MAX_MS {
                return invalid(
                    field,
                    format!("{value} ms is over the limit of {DURATION_MAX_MS} ms (one day)"),
                );
            }
        }
        if self.fanout == 0 || self.fanout > FANOUT_MAX {
            return invalid(
                "fanout",
                format!("{} peers, must be between 1 and {FANOUT_MAX}", self.fanout),
            );
        }
        if self.suspect_after_ms <= self.interval_ms {
            return invalid(
                "suspect_after_ms",
                format!(
                    "{} ms must exceed interval_ms ({} ms), or members are suspected between \
                     two heartbeats",
                    self.suspect_after_ms, self.interval_ms
                ),
            );
        }
        if self.down_after_ms <= self.suspect_after_ms {
            return invalid(
                "down_after_ms",
                format!(
                    "{} ms must exceed suspect_after_ms ({} ms)",
                    self.down_after_ms, self.suspect_after_ms
                ),
            );
        }
        if self.left_grace_ms < self.interval_ms {
            return invalid(
                "left_grace_ms",
                format!(
                    "{} ms must be at least interval_ms ({} ms)",
                    self.left_grace_ms, self.interval_ms
                ),
            );
        }
        Ok(())
    }
}
