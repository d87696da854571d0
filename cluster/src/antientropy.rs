//! Anti-entropy: replicas compare what they hold per key range and repair only the
//! differences.
//!
//! - [`partition`]: the ring cut into ranges of one replica set each; every node computes
//!   the same ranges and tree depth.
//! - [`merkle`]: a range's tree, `2^depth` buckets by ring position, updated per write.
//! - [`trees`]: this node's trees, built from the store at start and kept current by the
//!   store's write observer ([`crate::store::WriteObserver`]), O(depth) per write; rebuilt
//!   while writes go on when the ring reaches a new stable version.
//! - [`exchange`] (the initiator) and [`responder`]: roots, then the hashes of differing
//!   subtrees level by level, then the keys of differing buckets, then only the keys whose
//!   digests differ, merged with the version rules on both sides; [`wire`] is the peer
//!   payload (tags 80 to 89).
//! - [`service`]: rounds every `[antientropy] interval_ms` or on `ANTIENTROPY.RUN`, the
//!   counters of INFO's `# AntiEntropy`, and `ANTIENTROPY.ROOTS`; follows ring changes
//!   (rounds paused mid-change, trees rebuilt on a new stable ring).
//! - [`config`]: the `[antientropy]` section.

pub mod config;
mod digest;
pub mod exchange;
pub mod merkle;
pub mod partition;
pub mod responder;
pub mod service;
pub mod trees;
pub mod wire;

pub use config::AntiEntropyConfig;
pub use digest::{digest, wide_digest};
pub use merkle::{DiffStats, MerkleTree};
pub use responder::AntiEntropyHandler;
pub use service::AntiEntropy;

#[cfg(test)]
pub(crate) mod test_support {
    use crate::config::MemberConfig;
    use crate::scaling::{Phase, RingSpec, RingState};

    /// A stable ring of version `version` whose members are `ids`, all in dc1 (addresses
    /// that nothing listens on).
    pub fn ring_state(ids: &[&str], version: u64) -> RingState {
        let member = |id: &str| MemberConfig {
            id: id.into(),
            datacenter: "dc1".into(),
            weight: 1,
            client_address: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
            peer_address: std::net::SocketAddr::from(([127, 0, 0, 1], 2)),
        };
        let spec = RingSpec {
            version,
            phase: Phase::Stable,
            current: ids.iter().map(|id| member(id)).collect(),
            next: Vec::new(),
        };
        RingState::build(spec, 8).unwrap()
    }
}
