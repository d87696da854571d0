use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::version::VersionConfig;

fn clock_of(entries: &[(&str, u64, u64)]) -> VectorClock {
    let mut clock = VectorClock::new();
    for &(node, counter, last_update_ms) in entries {
        clock
            .advance_past(node, counter - 1, last_update_ms)
            .unwrap();
    }
    clock
}

fn golden_set() -> SiblingSet {
    let config = VersionConfig::default();
    let mut set = SiblingSet::default();
    // Reconciled in the "wrong" order to show the stored order is canonical.
    for (node, timestamp_ms, value) in [("Sy", 8, None), ("Sx", 7, Some(b"hi".to_vec()))] {
        let version = Version {
            clock: clock_of(&[(node, 1, timestamp_ms)]),
            timestamp_ms,
            writer: node.to_owned(),
            value,
        };
        set.reconcile(version, &config).unwrap();
    }
    set
}

#[test]
fn clock_golden_bytes() {
    let clock = clock_of(&[("Sy", 1, 300), ("Sx", 2, 5)]);
    let expected: &[u8] = &[
        b'V', b'C', 0x01, // magic, format version
        0x02, // two entries
        0x02, b'S', b'x', 0x02, 0x05, // Sx: counter 2, updated at 5 ms
        0x02, b'S', b'y', 0x01, 0xac, 0x02, // Sy: counter 1, updated at 300 ms
    ];
    assert_eq!(clock.encode(), expected);
    assert_eq!(VectorClock::decode(expected).unwrap(), clock);
    assert_eq!(VectorClock::new().encode(), [b'V', b'C', 0x01, 0x00]);
}

#[test]
fn sibling_set_golden_bytes() {
    let expected: &[u8] = &[
        b'V', b'S', 0x01, // magic, format version
        0x02, // two versions
        0x01, 0x02, b'S', b'x', 0x01, 0x07, // clock [Sx,1] updated at 7 ms
        0x07, // timestamp 7 ms
        0x02, b'S', b'x', // writer
        0x01, 0x02, b'h', b'i', // value "hi"
        0x01, 0x02, b'S', b'y', 0x01, 0x08, // clock [Sy,1] updated at 8 ms
        0x08, // timestamp 8 ms
        0x02, b'S', b'y', // writer
        0x00, // tombstone
    ];
    let set = golden_set();
    assert_eq!(set.encode(), expected);
    assert_eq!(SiblingSet::decode(expected).unwrap(), set);
    assert_eq!(SiblingSet::default().encode(), [b'V', b'S', 0x01, 0x00]);
}

fn random_set(rng: &mut SmallRng) -> SiblingSet {
    let count = rng.gen_range(0..6);
    let versions = (0..count)
        .map(|_| {
            let mut clock = VectorClock::new();
            for _ in 0..rng.gen_range(0..5) {
                let node = format!("node-{}", rng.gen_range(0..8));
                let floor = if rng.gen_bool(0.1) {
                    u64::MAX - 10
                } else {
                    rng.gen_range(0..1000)
                };
                clock.advance_past(&node, floor, rng.gen()).unwrap();
            }
            let value = match rng.gen_range(0..3) {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some((0..rng.gen_range(0..40)).map(|_| rng.gen()).collect()),
            };
            Version {
                clock,
                timestamp_ms: rng.gen(),
                writer: "ü-writer".repeat(rng.gen_range(0..3)),
                value,
            }
        })
        .collect();
    SiblingSet { versions }
}

#[test]
fn round_trip_random_sets_and_clocks() {
    let mut rng = SmallRng::seed_from_u64(31);
    for _ in 0..2000 {
        let set = random_set(&mut rng);
        let bytes = set.encode();
        assert_eq!(SiblingSet::decode(&bytes).unwrap(), set);
        let context = set.context();
        assert_eq!(VectorClock::decode(&context.encode()).unwrap(), context);
    }
}

fn assert_corrupt(result: crate::Result<impl std::fmt::Debug>, needle: &str) {
    match result {
        Err(crate::Error::CorruptVersion(message)) => {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}")
        }
        other => panic!("expected CorruptVersion({needle}), got {other:?}"),
    }
}

#[test]
fn malformed_input_is_a_clear_error() {
    assert_corrupt(VectorClock::decode(b""), "magic");
    assert_corrupt(VectorClock::decode(b"VS\x01\x00"), "not a vector clock");
    assert_corrupt(VectorClock::decode(b"VC\x02\x00"), "format version 2");
    assert_corrupt(VectorClock::decode(b"VC\x01\x00\x00"), "1 trailing bytes");
    assert_corrupt(
        VectorClock::decode(b"VC\x01\x02\x01b\x01\x00\x01a\x01\x00"),
        "not after",
    );
    assert_corrupt(
        VectorClock::decode(b"VC\x01\x02\x01a\x01\x00\x01a\x01\x00"),
        "not after",
    );
    assert_corrupt(VectorClock::decode(b"VC\x01\x01\x01a\x00\x00"), "counter 0");
    assert_corrupt(VectorClock::decode(b"VC\x01\x01\x00"), "empty");
    assert_corrupt(VectorClock::decode(b"VC\x01\x01\x01\xff\x01\x00"), "UTF-8");
    assert_corrupt(VectorClock::decode(b"VC\x01\x81\x00"), "shortest form");
    assert_corrupt(
        VectorClock::decode(b"VC\x01\x81\x08"),
        "exceeds the limit 1024",
    );
    let overflow = b"VC\x01\x01\x01a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02\x00";
    assert_corrupt(VectorClock::decode(overflow), "overflows");
    assert_corrupt(
        SiblingSet::decode(b"VS\x01\x01\x00\x00\x00\x07"),
        "value tag 7",
    );
    assert_corrupt(
        SiblingSet::decode(b"VS\x01\x01\x00\x00\x00\x01\x05ab"),
        "needs 5 bytes",
    );
    assert_corrupt(
        SiblingSet::decode(b"VS\x01\x81\x08"),
        "exceeds the limit 1024",
    );
    // Every strict prefix of a valid encoding is refused.
    let bytes = golden_set().encode();
    for length in 0..bytes.len() {
        assert!(
            SiblingSet::decode(&bytes[..length]).is_err(),
            "prefix {length}"
        );
    }
}

#[test]
fn random_and_mutated_bytes_never_panic() {
    let mut rng = SmallRng::seed_from_u64(37);
    let seeds: Vec<Vec<u8>> = (0..50)
        .flat_map(|_| {
            let set = random_set(&mut rng);
            [set.encode(), set.context().encode()]
        })
        .collect();
    for round in 0..20_000 {
        let mut bytes = if round % 4 == 0 {
            (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect()
        } else {
            seeds[rng.gen_range(0..seeds.len())].clone()
        };
        for _ in 0..rng.gen_range(1..4) {
            if bytes.is_empty() {
                break;
            }
            let index = rng.gen_range(0..bytes.len());
            match rng.gen_range(0..4) {
                0 => bytes[index] = rng.gen(),
                1 => bytes[index] ^= 1 << rng.gen_range(0..8),
                2 => bytes.truncate(index),
                _ => bytes.insert(index, rng.gen()),
            }
        }
        // Whatever decodes is canonical: it encodes back to the same bytes.
        if let Ok(set) = SiblingSet::decode(&bytes) {
            assert_eq!(set.encode(), bytes);
        }
        if let Ok(clock) = VectorClock::decode(&bytes) {
            assert_eq!(clock.encode(), bytes);
        }
    }
}

/// The views a replica compares encoded versions by agree with the decoded versions:
/// the same bytes accepted and refused (random sets, then each damaged by a changed byte or
/// a cut), the same clock comparisons and last-write-wins order for every pair.
#[test]
fn version_views_agree_with_decoded_versions() {
    let mut rng = SmallRng::seed_from_u64(47);
    for round in 0..1000 {
        let mut set = random_set(&mut rng);
        if round % 2 == 1 {
            // Last-write-wins ties, left to the clocks to break.
            for version in &mut set.versions {
                version.timestamp_ms = 7;
                version.writer = "n1".to_string();
                version.value =
                    [None, Some(Vec::new()), Some(b"a".to_vec())][rng.gen_range(0..3)].clone();
            }
        }
        let bytes = set.encode();
        let views = version_views(&bytes).unwrap();
        assert_eq!(views.len(), set.versions.len());
        for (left, left_view) in set.versions.iter().zip(&views) {
            assert_eq!(left.value.as_deref(), left_view.value);
            for (right, right_view) in set.versions.iter().zip(&views) {
                assert_eq!(
                    left.clock.compare(&right.clock),
                    left_view.compare_clocks(right_view)
                );
                assert_eq!(
                    crate::version::siblings::last_write_order(left, right),
                    left_view.last_write_order(right_view)
                );
            }
        }
        let mut damaged = bytes.clone();
        if !damaged.is_empty() {
            let index = rng.gen_range(0..damaged.len());
            damaged[index] = rng.gen();
            damaged.truncate(rng.gen_range(index..=damaged.len()));
        }
        let decoded = SiblingSet::decode(&damaged);
        let viewed = version_views(&damaged);
        assert_eq!(decoded.is_ok(), viewed.is_ok(), "{decoded:?} {viewed:?}");
        // The coordinator checks read replies with `latest_value`: what it accepts decodes.
        let latest = latest_value(&damaged);
        assert_eq!(decoded.is_ok(), latest.is_ok(), "{decoded:?} {latest:?}");
        if let (Err(decoded), Err(viewed)) = (decoded, viewed) {
            assert!(
                matches!(viewed, crate::Error::CorruptVersion(_)),
                "{viewed}"
            );
            assert!(
                matches!(decoded, crate::Error::CorruptVersion(_)),
                "{decoded}"
            );
        }
    }
}

#[test]
fn version_views_and_latest_value_refuse_what_decoding_refuses() {
    // A clock naming one node twice; a counter of 0; a writer that is not UTF-8.
    let damaged: [&[u8]; 3] = [
        b"VS\x01\x01\x02\x01a\x01\x00\x01a\x01\x00\x00\x00\x00",
        b"VS\x01\x01\x01\x01a\x00\x00\x00\x00\x00",
        b"VS\x01\x01\x01\x01a\x01\x00\x00\x01\xff\x00",
    ];
    for (bytes, needle) in damaged
        .into_iter()
        .zip(["not after", "counter 0", "not UTF-8"])
    {
        assert_corrupt(SiblingSet::decode(bytes), needle);
        assert_corrupt(version_views(bytes), needle);
        assert_corrupt(latest_value(bytes), needle);
    }
}
