//! A Merkle tree over one ring range, split into `2^depth` fixed buckets.
//!
//! A key goes to the bucket given by its ring position ([`Ring::position_of`]) within
//! the range: the range's arc is cut into `2^depth` equal slices, so two replicas of the
//! same range put every key in the same bucket without talking. A leaf's hash is the
//! wrapping **sum** of its items' hashes, an item being `(key, version digest)`: adding,
//! removing or changing one key is a `+`/`-` on its leaf, and the ancestors (a real hash
//! of their two children) are recomputed, `O(depth)` in all, so the tree is kept current
//! on every write instead of rebuilt. (A sum rather than XOR: the same item counted twice
//! does not cancel out.) The caller supplies the version digest (e.g.
//! [`digest`] of the stored, encoded version) and must remove an item with the digest it
//! was inserted with; [`MerkleTree::build`] from the data gives the same tree.
//!
//! [`MerkleTree::diff`] walks both trees from the root and descends only into nodes whose
//! hashes differ, so it compares `O(differing buckets * depth)` nodes, and returns the
//! differing buckets; [`MerkleTree::bucket_range`] gives each one's arc, whose keys are
//! all that needs to be exchanged.
//!
//! [`Ring::position_of`]: crate::ring::Ring::position_of

#[cfg(test)]
mod tests;

use crate::ring::{stable_hash64, TokenRange};
use crate::{Error, Result};

/// The deepest tree accepted: 2^20 leaves is 8 MiB of hashes per range.
pub const DEPTH_MAX: u8 = 20;

/// Counters of diff work, summed over calls (`+=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Pairs of trees (ranges) compared.
    pub ranges_compared: u64,
    /// Tree nodes whose hashes were compared; in a remote exchange, the hashes one side
    /// sends the other.
    pub nodes_compared: u64,
    /// Leaves found different.
    pub buckets_differing: u64,
}

impl std::ops::AddAssign for DiffStats {
    fn add_assign(&mut self, other: DiffStats) {
        self.ranges_compared += other.ranges_compared;
        self.nodes_compared += other.nodes_compared;
        self.buckets_differing += other.buckets_differing;
    }
}

pub use super::digest::digest;

/// The bucket of ring position `position` in a tree of `2^depth` buckets over `range`,
/// `None` if the position is outside the range: [`MerkleTree::bucket_of`] without a tree.
pub fn bucket_of_position(range: TokenRange, depth: u8, position: u64) -> Option<usize> {
    if !range.contains(position) || depth > DEPTH_MAX {
        return None;
    }
    // Offset within the arc, 0 for the first position after start_exclusive.
    let offset = u128::from(position.wrapping_sub(range.start_exclusive).wrapping_sub(1));
    let leaves = 1u128 << depth;
    Some((offset * leaves / span_of(range)) as usize)
}

/// Number of positions in `range` (2^64 for the whole ring).
fn span_of(range: TokenRange) -> u128 {
    if range.is_full() {
        1u128 << 64
    } else {
        u128::from(range.end_inclusive.wrapping_sub(range.start_exclusive))
    }
}

/// An item's hash: the key (length-prefixed) and its version digest.
fn item_hash(key: &[u8], version_digest: u64) -> u64 {
    let mut bytes = Vec::with_capacity(key.len() + 16);
    bytes.extend_from_slice(&(key.len() as u64).to_le_bytes());
    bytes.extend_from_slice(key);
    bytes.extend_from_slice(&version_digest.to_le_bytes());
    stable_hash64(&bytes)
}

/// An inner node's hash. Two empty children give an empty (0) node, so empty subtrees
/// cost nothing to compare and a fresh tree is all zeros.
fn combine(left: u64, right: u64) -> u64 {
    if left == 0 && right == 0 {
        return 0;
    }
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&left.to_le_bytes());
    bytes[8..].copy_from_slice(&right.to_le_bytes());
    stable_hash64(&bytes) | 1
}

/// See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    range: TokenRange,
    depth: u8,
    /// Heap layout: `nodes[1]` is the root, node `i` has children `2i` and `2i + 1`, and
    /// the leaves are `nodes[2^depth .. 2^(depth+1)]`. `nodes[0]` is unused.
    nodes: Vec<u64>,
    /// Items per leaf.
    counts: Vec<u64>,
}

impl MerkleTree {
    /// An empty tree over `range` with `2^depth` buckets.
    pub fn new(range: TokenRange, depth: u8) -> Result<MerkleTree> {
        if depth > DEPTH_MAX {
            return Err(Error::InvalidConfig {
                field: "depth".into(),
                detail: format!("{depth} is over the limit of {DEPTH_MAX}"),
            });
        }
        let leaves = 1usize << depth;
        Ok(MerkleTree {
            range,
            depth,
            nodes: vec![0; 2 * leaves],
            counts: vec![0; leaves],
        })
    }

    /// A tree holding `items` (key, version digest), keys in `range`.
    pub fn build<'a>(
        range: TokenRange,
        depth: u8,
        items: impl IntoIterator<Item = (&'a [u8], u64)>,
    ) -> Result<MerkleTree> {
        let mut tree = MerkleTree::new(range, depth)?;
        let leaves = tree.leaves();
        for (key, version_digest) in items {
            let bucket = tree.bucket_of(key)?;
            tree.nodes[leaves + bucket] =
                tree.nodes[leaves + bucket].wrapping_add(item_hash(key, version_digest));
            tree.counts[bucket] += 1;
        }
        for index in (1..leaves).rev() {
            tree.nodes[index] = combine(tree.nodes[2 * index], tree.nodes[2 * index + 1]);
        }
        Ok(tree)
    }

    pub fn range(&self) -> TokenRange {
        self.range
    }

    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// Number of buckets, `2^depth`.
    pub fn leaves(&self) -> usize {
        1 << self.depth
    }

    pub fn root(&self) -> u64 {
        self.nodes[1]
    }

    /// Items in the tree.
    pub fn len(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bucket `bucket`'s hash and item count.
    pub fn bucket(&self, bucket: usize) -> Option<(u64, u64)> {
        let count = *self.counts.get(bucket)?;
        Some((self.nodes[self.leaves() + bucket], count))
    }

    /// The bucket `key` belongs to, or an error if its position is outside the range.
    pub fn bucket_of(&self, key: &[u8]) -> Result<usize> {
        self.bucket_of_position(stable_hash64(key))
    }

    fn bucket_of_position(&self, position: u64) -> Result<usize> {
        bucket_of_position(self.range, self.depth, position).ok_or_else(|| {
            Error::Placement(format!(
                "position {position:#018x} is outside the tree's range ({:#018x}, {:#018x}]",
                self.range.start_exclusive, self.range.end_inclusive
            ))
        })
    }

    /// Number of positions in the range (2^64 for the whole ring).
    fn span(&self) -> u128 {
        span_of(self.range)
    }

    /// The arc of bucket `bucket`: exactly the positions [`MerkleTree::bucket_of`] maps
    /// to it. `None` if there is no such bucket or it holds no positions (a range
    /// narrower than `2^depth` positions).
    pub fn bucket_range(&self, bucket: usize) -> Option<TokenRange> {
        if bucket >= self.leaves() {
            return None;
        }
        let span = self.span();
        let leaves = self.leaves() as u128;
        // The first offset o with o * leaves / span >= b is ceil(b * span / leaves).
        let first = |b: u128| (b * span).div_ceil(leaves);
        let start_offset = first(bucket as u128);
        let end_offset = first(bucket as u128 + 1); // exclusive
        if start_offset == end_offset {
            return None;
        }
        let start = self.range.start_exclusive;
        Some(TokenRange {
            start_exclusive: start.wrapping_add(start_offset as u64),
            end_inclusive: start.wrapping_add(end_offset as u64),
        })
    }

    /// Adds `key` with `version_digest`: O(depth).
    pub fn insert(&mut self, key: &[u8], version_digest: u64) -> Result<()> {
        let bucket = self.bucket_of(key)?;
        self.counts[bucket] += 1;
        self.apply(bucket, |leaf| {
            leaf.wrapping_add(item_hash(key, version_digest))
        });
        Ok(())
    }

    /// Removes `key` as inserted with `version_digest`: O(depth).
    pub fn remove(&mut self, key: &[u8], version_digest: u64) -> Result<()> {
        let bucket = self.bucket_of(key)?;
        if self.counts[bucket] == 0 {
            return Err(Error::Placement(format!(
                "remove from empty Merkle bucket {bucket}: the key was never inserted"
            )));
        }
        self.counts[bucket] -= 1;
        self.apply(bucket, |leaf| {
            leaf.wrapping_sub(item_hash(key, version_digest))
        });
        Ok(())
    }

    /// Replaces `key`'s version: `remove(old)` then `insert(new)`, one leaf-to-root pass.
    pub fn update(&mut self, key: &[u8], old_digest: u64, new_digest: u64) -> Result<()> {
        let bucket = self.bucket_of(key)?;
        if self.counts[bucket] == 0 {
            return Err(Error::Placement(format!(
                "update in empty Merkle bucket {bucket}: the key was never inserted"
            )));
        }
        self.apply(bucket, |leaf| {
            leaf.wrapping_sub(item_hash(key, old_digest))
                .wrapping_add(item_hash(key, new_digest))
        });
        Ok(())
    }

    fn apply(&mut self, bucket: usize, change: impl FnOnce(u64) -> u64) {
        let mut index = self.leaves() + bucket;
        self.nodes[index] = change(self.nodes[index]);
        while index > 1 {
            index /= 2;
            self.nodes[index] = combine(self.nodes[2 * index], self.nodes[2 * index + 1]);
        }
    }

    /// The hashes of the nodes at `level` (0 = root, `depth` = leaves) with the given
    /// indices: what one side of a remote exchange sends the other. `None` for an index
    /// outside the level.
    pub fn hashes_at(&self, level: u8, indices: &[usize]) -> Option<Vec<u64>> {
        if level > self.depth {
            return None;
        }
        let first = 1usize << level;
        indices
            .iter()
            .map(|&index| (index < first).then(|| self.nodes[first + index]))
            .collect()
    }

    /// The buckets whose contents differ between `self` and `other` (same range and
    /// depth, else an error), ascending; only subtrees with differing hashes are visited.
    /// The work done is added to `stats`.
    pub fn diff(&self, other: &MerkleTree, stats: &mut DiffStats) -> Result<Vec<usize>> {
        if self.range != other.range || self.depth != other.depth {
            return Err(Error::Placement(format!(
                "cannot diff Merkle trees of different shapes: range {:?} depth {} vs range \
                 {:?} depth {}",
                self.range, self.depth, other.range, other.depth
            )));
        }
        stats.ranges_compared += 1;
        let leaves = self.leaves();
        let mut differing = Vec::new();
        let mut stack = vec![1usize];
        while let Some(index) = stack.pop() {
            stats.nodes_compared += 1;
            if self.nodes[index] == other.nodes[index] {
                continue;
            }
            if index >= leaves {
                differing.push(index - leaves);
            } else {
                // Right first so the left subtree pops first: buckets come out ascending.
                stack.push(2 * index + 1);
                stack.push(2 * index);
            }
        }
        stats.buckets_differing += differing.len() as u64;
        Ok(differing)
    }
}
