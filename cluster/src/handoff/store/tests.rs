use super::*;
use crate::version::VectorClock;

fn version_set(writer: &str, value: &[u8], now_ms: u64) -> SiblingSet {
    let mut set = SiblingSet::default();
    set.write_with_context(
        &VectorClock::new(),
        writer,
        now_ms,
        Some(value.to_vec()),
        &VersionConfig::default(),
    )
    .unwrap();
    set
}

fn open(directory: &Path, config: HintConfig) -> HintStore {
    HintStore::open(
        directory,
        engine::Options::default(),
        config,
        VersionConfig::default(),
    )
    .unwrap()
}

#[test]
fn key_and_meta_encodings_have_golden_bytes_and_round_trip() {
    let key = encode_key("n2", b"user:1").unwrap();
    assert_eq!(key, b"\x02n2user:1");
    assert_eq!(
        decode_key(&key).unwrap(),
        (NodeId::new("n2"), b"user:1".to_vec())
    );
    // An empty user key is still a key.
    assert_eq!(
        decode_key(b"\x01a").unwrap(),
        (NodeId::new("a"), Vec::new())
    );
    let meta = encode_meta(0x0102_0304_0506_0708);
    assert_eq!(meta, *b"HN\x01\x01\x02\x03\x04\x05\x06\x07\x08");
    assert_eq!(decode_meta(&meta).unwrap(), 0x0102_0304_0506_0708);
    assert!(decode_key(b"").is_err());
    assert!(decode_key(b"\x05ab").is_err());
    assert!(decode_meta(b"HN\x01").is_err());
    let mut wrong_version = meta;
    wrong_version[2] = 9;
    let error = decode_meta(&wrong_version).unwrap_err().to_string();
    assert!(error.contains("format version 9"), "{error}");
    let long_owner = "x".repeat(300);
    assert!(encode_key(&long_owner, b"k").is_err());
}

#[test]
fn count_bound_refuses_new_pairs_but_merges_existing_ones() {
    let directory = tempfile::tempdir().unwrap();
    let config = HintConfig {
        count_max: 3,
        ..HintConfig::default()
    };
    let store = open(directory.path(), config.clone());
    for index in 0..3 {
        let key = format!("k{index}");
        store
            .store("n2", key.as_bytes(), &version_set("n1", b"v", 10), 10)
            .unwrap();
    }
    assert_eq!(store.pending(), 3);
    let error = store
        .store("n2", b"k3", &version_set("n1", b"v", 11), 11)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("hint store full") && error.contains("count_max is 3"),
        "{error}"
    );
    assert_eq!(HintCounters::get(&store.counters.dropped), 1);
    // The same (owner, key) merges: no new hint, so not refused.
    store
        .store("n2", b"k0", &version_set("n3", b"w", 12), 12)
        .unwrap();
    assert_eq!(store.pending(), 3);
    let hints = store.batch(10).unwrap();
    assert_eq!(hints.len(), 3);
    let merged = hints.iter().find(|hint| hint.key == b"k0").unwrap();
    assert_eq!(
        merged.siblings.versions.len(),
        2,
        "concurrent versions both kept"
    );
    assert_eq!(merged.stored_at_ms, 10, "the first store's time is kept");
    // Reopening counts what is on disk.
    drop(hints);
    store.close().unwrap();
    let store = open(directory.path(), config);
    assert_eq!(store.pending(), 3);
}

#[test]
fn age_bound_and_delete_if_unchanged() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(
        directory.path(),
        HintConfig {
            age_ms_max: 1000,
            ..HintConfig::default()
        },
    );
    store
        .store("n3", b"old", &version_set("n1", b"a", 100), 100)
        .unwrap();
    store
        .store("n2", b"new", &version_set("n1", b"b", 900), 900)
        .unwrap();
    let hints = store.batch(10).unwrap();
    // Owners sort first: n2's hint comes before n3's.
    assert_eq!(hints[0].owner, NodeId::new("n2"));
    let (new, old) = (&hints[0], &hints[1]);
    assert!(!store.is_expired(old, 1100));
    assert!(store.is_expired(old, 1101));
    assert!(!store.is_expired(new, 1101));
    // A hint changed since it was read is kept.
    store
        .store("n2", b"new", &version_set("n4", b"c", 950), 950)
        .unwrap();
    assert!(!store.remove_if_unchanged(new).unwrap());
    assert!(store.remove_if_unchanged(old).unwrap());
    assert_eq!(store.pending(), 1);
    let left = store.batch(10).unwrap();
    assert_eq!(left.len(), 1);
    assert!(store.remove_if_unchanged(&left[0]).unwrap());
    assert_eq!(store.pending(), 0);
    assert!(store.batch(10).unwrap().is_empty());
}

#[test]
fn hinted_put_frame_has_golden_bytes() {
    use crate::protocol::peer::{decode_frame, encode_frame, Frame, FrameKind};
    let message = PeerMessage::HintedPut {
        owner: "n2".into(),
        key: b"k".to_vec(),
        siblings: vec![0xAB],
    };
    let frame = Frame {
        kind: FrameKind::Request,
        request_id: 1,
        message: message.clone(),
    };
    let bytes = encode_frame(&frame, 1 << 20).unwrap();
    let payload = &bytes[crate::protocol::peer::HEADER_SIZE_BYTES..];
    assert_eq!(
        payload,
        b"\x32\x00\x00\x00\x02n2\x00\x00\x00\x01k\x00\x00\x00\x01\xAB"
    );
    let (decoded, used) = decode_frame(&bytes, 1 << 20).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(decoded.message, message);
    assert_eq!(message.name(), "HintedPut");
}

use crate::protocol::peer::PeerMessage;
