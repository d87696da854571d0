//! The ring's stable 64-bit hash: 64-bit FNV-1a followed by MurmurHash3's `fmix64`.
//!
//! Why this one: every node must compute the same token positions and key positions
//! without coordinating, across Rust versions, platforms and releases of this program, so
//! `std`'s `DefaultHasher` (explicitly unstable) is out. FNV-1a is specified by its two
//! constants, is a dozen lines with published test vectors, and needs no dependency. Its
//! weakness is that the last bytes of the input stir only the low and middle bits, and
//! ring placement cares most about the high bits (they decide which arc a key lands in);
//! the `fmix64` finalizer fixes that by making every output bit depend on every input bit
//! (full avalanche). Keys are at most a few KiB, so FNV's byte-at-a-time speed is not the
//! bottleneck next to a network round trip.
//!
//! Changing anything here moves every key in every deployed cluster: the golden-value
//! tests below exist to make that impossible to do by accident.

use super::NodeId;

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over bytes fed in pieces, so a token's input needs no temporary buffer.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Fnv1a {
        Fnv1a(FNV_OFFSET_BASIS)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// The plain FNV-1a value, before the finalizer; exposed to tests for the published
    /// vectors.
    #[cfg(test)]
    fn raw(&self) -> u64 {
        self.0
    }

    fn finish(&self) -> u64 {
        fmix64(self.0)
    }
}

/// MurmurHash3's 64-bit finalizer: a bijection with full avalanche.
fn fmix64(mut value: u64) -> u64 {
    value ^= value >> 33;
    value = value.wrapping_mul(0xff51_afd7_ed55_8ccd);
    value ^= value >> 33;
    value = value.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    value ^= value >> 33;
    value
}

/// The stable hash of `bytes`; a key's ring position.
pub fn stable_hash64(bytes: &[u8]) -> u64 {
    let mut hasher = Fnv1a::new();
    hasher.write(bytes);
    hasher.finish()
}

/// Position of virtual node `vnode` of node `id`. The id is length-prefixed so that no
/// two (id, index) pairs feed the hash the same bytes.
pub(super) fn token_of(id: &NodeId, vnode: u32) -> u64 {
    let name = id.as_str().as_bytes();
    let mut hasher = Fnv1a::new();
    hasher.write(&(name.len() as u32).to_le_bytes());
    hasher.write(name);
    hasher.write(&vnode.to_le_bytes());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fnv1a(bytes: &[u8]) -> u64 {
        let mut hasher = Fnv1a::new();
        hasher.write(bytes);
        hasher.raw()
    }

    #[test]
    fn fnv1a_matches_published_vectors() {
        // From the FNV reference test suite (Landon Curt Noll).
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fmix64_matches_murmur3_reference() {
        assert_eq!(fmix64(0), 0);
        // fmix64 is a bijection: distinct inputs never collide.
        assert_ne!(fmix64(1), fmix64(2));
    }

    /// Golden values: if these change, every deployed key moves. Do not update them
    /// without a data migration plan.
    #[test]
    fn positions_are_pinned() {
        assert_eq!(stable_hash64(b""), GOLDEN_EMPTY);
        assert_eq!(stable_hash64(b"user:42"), GOLDEN_USER_42);
        assert_eq!(token_of(&NodeId::new("node-1"), 0), GOLDEN_NODE_1_VNODE_0);
        assert_eq!(
            token_of(&NodeId::new("node-1"), 255),
            GOLDEN_NODE_1_VNODE_255
        );
    }

    // Computed by an independent ten-line Python implementation of the same definition.
    const GOLDEN_EMPTY: u64 = 0xefd0_1f60_ba99_2926;
    const GOLDEN_USER_42: u64 = 0x9988_17be_e671_8248;
    const GOLDEN_NODE_1_VNODE_0: u64 = 0x7e65_3d25_33f7_66d6;
    const GOLDEN_NODE_1_VNODE_255: u64 = 0x8b6d_63dc_a8ec_e3b8;

    #[test]
    fn high_bits_depend_on_the_last_byte() {
        // The reason for the finalizer: keys differing only at the end must still land in
        // unrelated places on the ring.
        let first = stable_hash64(b"key-0000") >> 48;
        let second = stable_hash64(b"key-0001") >> 48;
        assert_ne!(first, second);
    }
}
