use super::*;

const FULL: TokenRange = TokenRange {
    start_exclusive: 0,
    end_inclusive: 0,
};

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:06}").into_bytes()
}

fn data(count: usize) -> Vec<(Vec<u8>, u64)> {
    (0..count)
        .map(|i| (key(i), digest(&[i as u8, 1])))
        .collect()
}

fn tree(range: TokenRange, depth: u8, items: &[(Vec<u8>, u64)]) -> MerkleTree {
    MerkleTree::build(range, depth, items.iter().map(|(k, d)| (k.as_slice(), *d))).unwrap()
}

#[test]
fn identical_data_gives_equal_roots_in_any_order() {
    let items = data(2000);
    let a = tree(FULL, 8, &items);
    let mut reversed = items.clone();
    reversed.reverse();
    let b = tree(FULL, 8, &reversed);
    assert_eq!(a.root(), b.root());
    assert_ne!(a.root(), 0);
    assert_eq!(a.len(), 2000);
    let mut stats = DiffStats::default();
    assert!(a.diff(&b, &mut stats).unwrap().is_empty());
    assert_eq!(stats.nodes_compared, 1, "equal roots stop the walk at once");
    // An empty tree is all zeros.
    assert_eq!(MerkleTree::new(FULL, 8).unwrap().root(), 0);
}

#[test]
fn one_differing_key_is_found_in_exactly_its_bucket() {
    let items = data(5000);
    let a = tree(FULL, 10, &items);
    for changed in [0, 17, 4999] {
        let mut other = items.clone();
        other[changed].1 = digest(b"a newer version");
        let b = tree(FULL, 10, &other);
        assert_ne!(a.root(), b.root());
        let mut stats = DiffStats::default();
        let buckets = a.diff(&b, &mut stats).unwrap();
        let expected = a.bucket_of(&key(changed)).unwrap();
        assert_eq!(buckets, vec![expected]);
        // One root-to-leaf path, plus each node's sibling.
        assert_eq!(stats.nodes_compared, 1 + 2 * 10);
        assert_eq!(stats.buckets_differing, 1);
        // The bucket's arc holds the key, and only keys of that bucket.
        let arc = a.bucket_range(expected).unwrap();
        assert!(arc.contains(stable_hash64(&key(changed))));
        for (k, _) in items.iter().take(500) {
            assert_eq!(
                arc.contains(stable_hash64(k)),
                a.bucket_of(k).unwrap() == expected
            );
        }
    }
    // A missing key is a difference too.
    let b = tree(FULL, 10, &items[1..]);
    let buckets = a.diff(&b, &mut DiffStats::default()).unwrap();
    assert_eq!(buckets, vec![a.bucket_of(&key(0)).unwrap()]);
}

#[test]
fn incremental_updates_equal_a_rebuild() {
    let items = data(3000);
    let mut live = tree(FULL, 9, &items[..1000]);
    for (k, d) in &items[1000..] {
        live.insert(k, *d).unwrap();
    }
    assert_eq!(live, tree(FULL, 9, &items));
    let mut expected = items.clone();
    for i in (0..3000).step_by(7) {
        let new = digest(format!("v2 {i}").as_bytes());
        live.update(&key(i), items[i].1, new).unwrap();
        expected[i].1 = new;
    }
    for i in (0..3000).step_by(11) {
        live.remove(&key(i), expected[i].1).unwrap();
    }
    let kept: Vec<_> = expected
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 11 != 0)
        .map(|(_, item)| item)
        .collect();
    let rebuilt = tree(FULL, 9, &kept);
    assert_eq!(live.root(), rebuilt.root());
    assert_eq!(live, rebuilt);
    // Removing everything gives the empty tree back.
    for (k, d) in &kept {
        live.remove(k, *d).unwrap();
    }
    assert_eq!(live, MerkleTree::new(FULL, 9).unwrap());
}

#[test]
fn diff_cost_grows_with_differences_times_depth_not_with_size() {
    let depth = 12;
    let items = data(20_000);
    let a = tree(FULL, depth, &items);
    for differences in [1usize, 4, 16, 64] {
        let mut other = items.clone();
        for i in 0..differences {
            let at = (i * 7919) % items.len();
            other[at].1 ^= 0xdead_beef;
        }
        let b = tree(FULL, depth, &other);
        let mut stats = DiffStats::default();
        let buckets = a.diff(&b, &mut stats).unwrap();
        assert!(!buckets.is_empty() && buckets.len() <= differences);
        assert!(buckets.windows(2).all(|w| w[0] < w[1]), "ascending");
        let bound = 1 + 2 * differences as u64 * u64::from(depth);
        assert!(
            stats.nodes_compared <= bound,
            "{differences} differences compared {} nodes, bound {bound}",
            stats.nodes_compared
        );
        // Far below comparing all 2^13 - 1 nodes.
        assert!(stats.nodes_compared < (1 << (depth + 1)) / 4);
    }
}

#[test]
fn a_partial_wrapping_range_buckets_its_own_keys_and_rejects_others() {
    // The arc from 3/4 of the ring around past zero to 1/4.
    let range = TokenRange {
        start_exclusive: 3 << 62,
        end_inclusive: 1 << 62,
    };
    let items: Vec<_> = data(4000)
        .into_iter()
        .filter(|(k, _)| range.contains(stable_hash64(k)))
        .collect();
    assert!(items.len() > 1500);
    let t = tree(range, 4, &items);
    let mut per_bucket = [0u64; 16];
    for (k, _) in &items {
        let bucket = t.bucket_of(k).unwrap();
        assert!(t.bucket_range(bucket).unwrap().contains(stable_hash64(k)));
        per_bucket[bucket] += 1;
    }
    for (bucket, count) in per_bucket.iter().enumerate() {
        assert_eq!(t.bucket(bucket).unwrap().1, *count);
        assert!(
            *count > 40,
            "bucket {bucket} got {count}: buckets must split the arc"
        );
    }
    // Bucket arcs tile the range exactly.
    assert_eq!(
        t.bucket_range(0).unwrap().start_exclusive,
        range.start_exclusive
    );
    assert_eq!(
        t.bucket_range(15).unwrap().end_inclusive,
        range.end_inclusive
    );
    for b in 0..15 {
        assert_eq!(
            t.bucket_range(b).unwrap().end_inclusive,
            t.bucket_range(b + 1).unwrap().start_exclusive
        );
    }
    let outside = data(100)
        .into_iter()
        .find(|(k, _)| !range.contains(stable_hash64(k)))
        .unwrap();
    let mut t = t;
    let error = t.insert(&outside.0, outside.1).unwrap_err();
    assert!(
        error.to_string().contains("outside the tree's range"),
        "{error}"
    );
}

#[test]
fn shapes_limits_and_misuse_are_errors_not_panics() {
    let error = MerkleTree::new(FULL, DEPTH_MAX + 1).unwrap_err();
    assert!(error.to_string().contains("depth"), "{error}");
    let a = MerkleTree::new(FULL, 4).unwrap();
    let b = MerkleTree::new(FULL, 5).unwrap();
    assert!(a.diff(&b, &mut DiffStats::default()).is_err());
    let mut a = a;
    assert!(a.remove(b"never inserted", 1).is_err());
    assert!(a.update(b"never inserted", 1, 2).is_err());
    assert_eq!(a.bucket_range(16), None);
    assert_eq!(a.hashes_at(5, &[0]), None);
    assert_eq!(a.hashes_at(1, &[0, 1]), Some(vec![0, 0]));
    assert_eq!(a.hashes_at(1, &[2]), None);
    // A range narrower than the bucket count has empty buckets.
    let tiny = MerkleTree::new(
        TokenRange {
            start_exclusive: 10,
            end_inclusive: 12,
        },
        3,
    )
    .unwrap();
    assert_eq!(tiny.bucket_of_position(11).unwrap(), 0);
    assert_eq!(tiny.bucket_of_position(12).unwrap(), 4);
    assert!(tiny.bucket_range(1).is_none());
    let mut stats = DiffStats::default();
    stats += DiffStats {
        ranges_compared: 1,
        nodes_compared: 3,
        buckets_differing: 1,
    };
    assert_eq!(stats.nodes_compared, 3);
}
