//! Sloppy quorum and hinted handoff.
//!
//! # Writes in sloppy mode
//!
//! The coordinator sends a write's `Put` to each of the key's replicas (the preference
//! list). When a replica is unreachable (connection refused, no reply in time, marked
//! down by a recent such failure, or held Down by the gossip failure detector, see
//! [`crate::membership`]) the write goes instead to a *fallback*: the next node on
//! the ring walk past the preference list that is not a replica of the key, preferring the
//! failed replica's datacenter. The fallback receives a [`PeerMessage::HintedPut`] naming
//! the intended owner, stores it as a hint and acknowledges; that acknowledgement counts
//! toward W (and toward the owner's datacenter for per-datacenter levels, even when no
//! node of that datacenter could take it and the fallback is elsewhere). In `strict`
//! mode only preference-list nodes count.
//!
//! # Where hints live
//!
//! In a separate engine instance in `data_dir/hints` ([`store::HintStore`]), not under a
//! key prefix of the main store: user keys can never collide with hints, client scans and
//! anti-entropy never see them, and a node's hint backlog can be inspected or discarded on
//! its own. Hints are durable under the same commit-log sync policy as user data.
//!
//! # Bounds
//!
//! At most `hints.count_max` distinct (owner, key) hints (a second hint for the same pair
//! merges into the first); a hint older than `hints.age_ms_max` is dropped instead of
//! delivered. A refused or expired hint counts in `hints_dropped`; a refused one also does
//! not acknowledge, so the write does not count it toward W.
//!
//! # Delivery
//!
//! A background task ([`delivery`]) wakes every `hints.delivery_interval_ms`, reads up to
//! `hints.delivery_batch_max` hints, and sends each to its owner as a normal `Put` (the
//! owner merges it like any replicated write). A hint is deleted once the owner
//! acknowledges, unless it changed meanwhile (a newer hint merged into it: kept for the
//! next pass). An owner that fails, or that gossip holds Down, is skipped for the rest of
//! the pass. Each pass that
//! delivered or dropped something logs one line.
//!
//! # The trade-off
//!
//! Sloppy mode keeps writes available while up to N - W replicas (and more, given enough
//! fallbacks) are down, but a hinted write is not on its owner until delivery: a read at
//! R, even with R + W > N, may miss it until then. Strict mode refuses such writes instead.
//!
//! [`PeerMessage::HintedPut`]: crate::protocol::peer::PeerMessage::HintedPut

pub mod delivery;
pub mod handler;
pub mod sloppy;
pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub use handler::HandoffHandler;
pub use sloppy::Handoff;
pub use store::HintStore;

/// Which nodes' acknowledgements count toward W.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HandoffMode {
    /// Fallback nodes holding a hint count when a replica is unreachable. Default.
    #[default]
    Sloppy,
    /// Only the key's preference list counts; no hints are written.
    Strict,
}

/// Hint storage limits and delivery pacing (`[hints]` in the node's config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HintConfig {
    /// Most hints (distinct owner and key pairs) this node stores. Default 100 000.
    pub count_max: u64,
    /// Hints older than this are dropped, not delivered, in milliseconds. Default 3 hours.
    pub age_ms_max: u64,
    /// How often the delivery task tries owners, in milliseconds. Default 1000.
    pub delivery_interval_ms: u64,
    /// Most hints read per delivery pass. Default 1000.
    pub delivery_batch_max: usize,
    /// After a replica fails, how long writes go straight to a fallback without trying
    /// it, in milliseconds. Default 1000.
    pub down_recheck_ms: u64,
}

impl Default for HintConfig {
    fn default() -> Self {
        HintConfig {
            count_max: 100_000,
            age_ms_max: 3 * 3600 * 1000,
            delivery_interval_ms: 1000,
            delivery_batch_max: 1000,
            down_recheck_ms: 1000,
        }
    }
}

impl HintConfig {
    /// Checks each field, naming it (`hints.count_max: must be at least 1`).
    pub fn validate(&self) -> Result<()> {
        let checks = [
            ("hints.count_max", self.count_max == 0),
            ("hints.age_ms_max", self.age_ms_max == 0),
            ("hints.delivery_interval_ms", self.delivery_interval_ms == 0),
            ("hints.delivery_batch_max", self.delivery_batch_max == 0),
        ];
        for (field, bad) in checks {
            if bad {
                return Err(Error::InvalidConfig {
                    field: field.into(),
                    detail: "must be at least 1".into(),
                });
            }
        }
        Ok(())
    }
}

/// Counters for INFO, updated with relaxed atomics.
#[derive(Debug, Default)]
pub struct HintCounters {
    /// Hints accepted by this node as a fallback.
    pub stored: AtomicU64,
    /// Hints delivered to their owner and deleted.
    pub delivered: AtomicU64,
    /// Hints refused (store full) or expired before delivery.
    pub dropped: AtomicU64,
    /// Writes this node coordinated that went to a fallback with a hint.
    pub hinted_writes: AtomicU64,
}

impl HintCounters {
    pub(crate) fn add(counter: &AtomicU64, count: u64) {
        counter.fetch_add(count, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::NodeConfig;

    use super::*;

    #[test]
    fn config_parses_modes_and_names_bad_limits() {
        let config = NodeConfig::parse("").unwrap();
        assert_eq!(config.handoff, HandoffMode::Sloppy);
        assert!(config.read_repair);
        let config = NodeConfig::parse(
            "handoff = \"strict\"\nread_repair = false\n[hints]\ncount_max = 5\n",
        )
        .unwrap();
        assert_eq!(config.handoff, HandoffMode::Strict);
        assert!(!config.read_repair);
        assert_eq!(config.hints.count_max, 5);
        assert_eq!(config.hints.age_ms_max, HintConfig::default().age_ms_max);
        let error = NodeConfig::parse("handoff = \"lazy\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("lazy"), "{error}");
        let config = NodeConfig::parse("[hints]\ncount_max = 0\n").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("hints.count_max"), "{error}");
        let config = NodeConfig::parse("read_repairs_in_flight_max = 0").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("read_repairs_in_flight_max"), "{error}");
    }
}
