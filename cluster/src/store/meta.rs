//! The engine metadata the store keeps beside a set: its digest (see the store's module
//! docs, "Layout").

/// The first byte of metadata holding a digest.
const DIGEST_META_TAG: u8 = 1;

/// The metadata stored beside a set of digest `digest`.
pub(super) fn digest_meta(digest: u128) -> [u8; 17] {
    let mut meta = [0; 17];
    meta[0] = DIGEST_META_TAG;
    meta[1..].copy_from_slice(&digest.to_le_bytes());
    meta
}

/// The wide digest of a stored set: read from its metadata when that holds one, hashed
/// from its bytes otherwise.
pub(super) fn stored_digest(meta: &[u8], bytes: &[u8]) -> u128 {
    match meta.split_first() {
        Some((&DIGEST_META_TAG, digest)) if digest.len() == 16 => {
            let mut array = [0; 16];
            array.copy_from_slice(digest);
            u128::from_le_bytes(array)
        }
        _ => crate::antientropy::wide_digest(bytes),
    }
}
