use super::*;

#[test]
fn hash_is_pinned() {
    // The hash is part of the file format: these values must never change.
    let hashes: Vec<u64> = [
        &b""[..],
        b"a",
        b"abcd",
        b"user000000000001",
        b"a key longer than sixteen bytes",
    ]
    .iter()
    .map(|key| hash64(key))
    .collect();
    assert_eq!(hashes, PINNED_HASHES);
}

const PINNED_HASHES: [u64; 5] = [
    290873116282709081,
    2941419223392617777,
    5251164938674970899,
    1560165627561080987,
    15376036541729319641,
];

#[test]
fn no_false_negatives_and_few_false_positives() {
    let key_count = 100_000u32;
    let mut builder = BloomBuilder::new(10, key_count as usize);
    for number in 0..key_count {
        builder.add_key(format!("user{number:012}").as_bytes());
    }
    let contents = builder.finish();
    let filter = BloomFilter::decode(&contents)
        .expect("decodes")
        .expect("enabled");
    for number in 0..key_count {
        assert!(filter.may_contain(format!("user{number:012}").as_bytes()));
    }
    let false_positives = (key_count..2 * key_count)
        .filter(|number| filter.may_contain(format!("user{number:012}").as_bytes()))
        .count();
    let rate = false_positives as f64 / f64::from(key_count);
    assert!(rate < 0.02, "false-positive rate {rate}");
}

#[test]
fn disabled_and_empty_filters() {
    let disabled = BloomBuilder::new(0, 10);
    assert!(disabled.finish().is_empty());
    assert!(BloomFilter::decode(&[]).expect("decodes").is_none());
    let empty = BloomBuilder::new(10, 0).finish();
    let filter = BloomFilter::decode(&empty)
        .expect("decodes")
        .expect("enabled");
    assert!(!filter.may_contain(b"anything"));
}

#[test]
fn malformed_filters_are_errors() {
    let mut builder = BloomBuilder::new(10, 100);
    builder.add_key(b"key");
    let contents = builder.finish();
    assert!(BloomFilter::decode(&contents[..contents.len() - 1]).is_err());
    assert!(BloomFilter::decode(&contents[1..]).is_err());
    let mut zero_probes = contents.clone();
    zero_probes[contents.len() - 5] = 0;
    assert!(BloomFilter::decode(&zero_probes).is_err());
    assert!(BloomFilter::decode(&[1, 2, 3]).is_err());
}
