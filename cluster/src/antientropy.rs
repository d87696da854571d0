//! Anti-entropy: replicas compare what they hold per key range and repair only the
//! differences.
//!
//! Built so far: the [`merkle`] tree (per range, kept current incrementally, diffed by
//! walking only differing subtrees). The exchange between replicas (roots, then children
//! of differing nodes, then the keys of differing buckets) is still to be wired into the
//! peer protocol.

pub mod merkle;

pub use merkle::{DiffStats, MerkleTree};
