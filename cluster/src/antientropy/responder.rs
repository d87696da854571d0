//! The answering side of an exchange: roots and hashes from this node's trees, keys of
//! buckets from a bounded scan of the store, rows fetched, rows pushed merged in.
//! [`AntiEntropyHandler`] puts it in the peer handler chain.

use std::collections::HashMap;
use std::sync::Arc;

use super::merkle::bucket_of_position;
use super::service::AntiEntropy;
use super::trees::Trees;
use super::wire::{AeMessage, RangeBuckets};
use crate::net::transport::{HandlerFuture, PeerHandler};
use crate::protocol::peer::PeerMessage;
use crate::ring::{NodeId, Ring, TokenRange};
use crate::store::LocalStore;
use crate::version::SiblingSet;
use crate::{Error, Result};

/// A key and the digest of its stored set.
pub type KeyDigest = (Vec<u8>, u64);

/// Rows read per engine scan page.
const SCAN_PAGE_ROWS: usize = 4096;

/// Which buckets of which ranges a scan looks for.
pub struct BucketFilter {
    depth: u8,
    wanted: HashMap<TokenRange, Vec<bool>>,
}

impl BucketFilter {
    /// A filter for `ranges` of trees of `depth`; fails on a bucket outside the tree.
    pub fn new(depth: u8, ranges: &[RangeBuckets]) -> Result<BucketFilter> {
        let leaves = 1usize << depth;
        let mut wanted = HashMap::new();
        for part in ranges {
            let flags = wanted
                .entry(part.range)
                .or_insert_with(|| vec![false; leaves]);
            for &bucket in &part.buckets {
                let slot = flags.get_mut(bucket as usize).ok_or_else(|| {
                    Error::PeerProtocol(format!("bucket {bucket} of a tree of depth {depth}"))
                })?;
                *slot = true;
            }
        }
        Ok(BucketFilter { depth, wanted })
    }

    /// Whether `key` is in one of the wanted buckets (`trees` places it in a range).
    pub fn matches(&self, trees: &Trees, key: &[u8]) -> bool {
        let position = Ring::position_of(key);
        let Some(tree) = trees.holding(position) else {
            return false;
        };
        let Some(flags) = self.wanted.get(&tree.range) else {
            return false;
        };
        bucket_of_position(tree.range, self.depth, position)
            .is_some_and(|bucket| flags.get(bucket).copied().unwrap_or(false))
    }
}

/// Scans `store` from `resume_key` for keys in `filter`'s buckets with their digests: at
/// most `keys_max` keys and `rows_max` rows scanned; returns where to resume, if the scan
/// stopped before the end.
pub fn scan_buckets(
    store: &LocalStore,
    trees: &Trees,
    filter: &BucketFilter,
    resume_key: &[u8],
    keys_max: usize,
    rows_max: usize,
) -> Result<(Vec<KeyDigest>, Option<Vec<u8>>)> {
    let mut start = resume_key.to_vec();
    let mut keys = Vec::new();
    let mut scanned = 0;
    loop {
        let page = SCAN_PAGE_ROWS.min(rows_max - scanned).max(1);
        let rows = store.scan_raw(&start, page)?;
        let full_page = rows.len() == page;
        for (key, bytes) in rows {
            scanned += 1;
            if filter.matches(trees, &key) {
                keys.push((key.clone(), super::digest(&bytes)));
            }
            start = key;
            start.push(0);
            if keys.len() >= keys_max || scanned >= rows_max {
                return Ok((keys, Some(start)));
            }
        }
        if !full_page {
            return Ok((keys, None));
        }
    }
}

/// Answers one anti-entropy request; runs on the blocking pool (it may scan the store).
pub fn answer(service: &AntiEntropy, request: AeMessage) -> Result<AeMessage> {
    let trees = service.trees()?;
    let trees = trees.as_ref();
    let store = service.store();
    let config = service.config();
    let check_depth = |depth: u8| {
        if depth == trees.depth() {
            Ok(())
        } else {
            Err(Error::PeerProtocol(format!(
                "anti-entropy trees differ in depth: {depth} asked, this node has {} \
                 (antientropy.depth_max and leaves_per_node_max must match on every node)",
                trees.depth()
            )))
        }
    };
    let tree_of = |range: &TokenRange| {
        trees.get(range).ok_or_else(|| {
            Error::PeerProtocol(format!(
                "no anti-entropy tree for range ({:#018x}, {:#018x}] (different rings?)",
                range.start_exclusive, range.end_inclusive
            ))
        })
    };
    match request {
        AeMessage::Roots {
            depth,
            ring_version,
            ranges,
        } => {
            // Trees of another ring are not compared (another partition, maybe another
            // depth): the asker sees the version and skips this node.
            if ring_version != trees.ring_version() {
                return Ok(AeMessage::RootsReply {
                    ring_version: trees.ring_version(),
                    roots: vec![None; ranges.len()],
                });
            }
            check_depth(depth)?;
            let roots = ranges
                .iter()
                .map(|range| trees.get(range).map(|tree| tree.lock().root()))
                .collect();
            Ok(AeMessage::RootsReply {
                ring_version,
                roots,
            })
        }
        AeMessage::Hashes {
            range,
            depth,
            level,
            indices,
        } => {
            check_depth(depth)?;
            let indices: Vec<usize> = indices.iter().map(|&index| index as usize).collect();
            let hashes = tree_of(&range)?
                .lock()
                .hashes_at(level, &indices)
                .ok_or_else(|| {
                    Error::PeerProtocol(format!("tree node index out of level {level}"))
                })?;
            Ok(AeMessage::HashesReply { hashes })
        }
        AeMessage::Keys {
            depth,
            ranges,
            resume_key,
        } => {
            check_depth(depth)?;
            for part in &ranges {
                tree_of(&part.range)?;
            }
            let filter = BucketFilter::new(depth, &ranges)?;
            let (keys, resume_key) = scan_buckets(
                store,
                trees,
                &filter,
                &resume_key,
                config.keys_per_message_max,
                config.rows_scanned_per_message_max,
            )?;
            Ok(AeMessage::KeysReply { keys, resume_key })
        }
        AeMessage::Fetch { keys } => {
            check_count(keys.len(), config.keys_per_message_max)?;
            let mut rows = Vec::with_capacity(keys.len());
            for key in keys {
                if let Some(set) = store.read(&key)? {
                    rows.push((key, set.encode()));
                }
            }
            Ok(AeMessage::Rows { rows })
        }
        AeMessage::Push { rows } => {
            check_count(rows.len(), config.keys_per_message_max)?;
            let mut changed = 0u32;
            for (key, siblings) in &rows {
                if store.merge_in(key, &SiblingSet::decode(siblings)?)? {
                    changed += 1;
                }
            }
            service.stats().add_repaired(u64::from(changed));
            Ok(AeMessage::PushReply {
                applied: rows.len() as u32,
                changed,
            })
        }
        other => Err(Error::PeerProtocol(format!(
            "{} is not an anti-entropy request",
            other.name()
        ))),
    }
}

fn check_count(count: usize, limit: usize) -> Result<()> {
    if count > limit {
        return Err(Error::LimitExceeded {
            what: "keys in an anti-entropy message",
            size: count,
            limit,
        });
    }
    Ok(())
}

/// Answers [`PeerMessage::AntiEntropy`] requests; passes everything else to `inner`.
pub struct AntiEntropyHandler {
    service: Arc<AntiEntropy>,
    inner: Arc<dyn PeerHandler>,
}

impl AntiEntropyHandler {
    /// Serves `service`'s trees; `inner` answers every other message.
    pub fn new(service: Arc<AntiEntropy>, inner: Arc<dyn PeerHandler>) -> Self {
        AntiEntropyHandler { service, inner }
    }
}

impl PeerHandler for AntiEntropyHandler {
    fn handle<'a>(&'a self, from: &'a NodeId, message: PeerMessage) -> HandlerFuture<'a> {
        let PeerMessage::AntiEntropy(request) = message else {
            return self.inner.handle(from, message);
        };
        Box::pin(async move {
            let stats = self.service.stats();
            stats.add_received(request.encoded_len());
            let service = Arc::clone(&self.service);
            let answered = tokio::task::spawn_blocking(move || answer(&service, request))
                .await
                .map_err(|error| Error::Stopped(format!("anti-entropy task failed: {error}")))
                .and_then(|result| result);
            Some(match answered {
                Ok(reply) => {
                    stats.add_sent(reply.encoded_len());
                    PeerMessage::AntiEntropy(reply)
                }
                Err(error) => PeerMessage::Error {
                    message: error.to_string(),
                },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::antientropy::partition::partition;
    use crate::ring::{Member, Replication};
    use crate::version::{VectorClock, VersionConfig};

    #[test]
    fn bounded_scans_resumed_find_exactly_the_keys_of_the_wanted_buckets() {
        let members = (1..=4).map(|i| Member::new(format!("n{i}").as_str(), "dc1"));
        let ring = Ring::new(members, 8).unwrap();
        let parts = partition(&ring, &Replication::Total(2)).unwrap();
        let trees = Trees::new(&parts, &NodeId::new("n1"), 3, 0).unwrap();
        let directory = tempfile::tempdir().unwrap();
        let store = LocalStore::open(
            directory.path(),
            engine::Options::default(),
            VersionConfig::default(),
        )
        .unwrap();
        for index in 0..300 {
            let key = format!("key{index:03}");
            let value = Some(vec![index as u8]);
            store
                .write_local(key.as_bytes(), &VectorClock::new(), value, "n1", 1)
                .unwrap();
        }
        // Buckets 1 and 6 of every range this node holds.
        let wanted: Vec<RangeBuckets> = trees
            .ranges()
            .iter()
            .map(|tree| RangeBuckets {
                range: tree.range,
                buckets: vec![1, 6],
            })
            .collect();
        let filter = BucketFilter::new(3, &wanted).unwrap();
        let (all, resume) =
            scan_buckets(&store, &trees, &filter, &[], usize::MAX, usize::MAX).unwrap();
        assert!(resume.is_none());
        let expected: Vec<Vec<u8>> = (0..300)
            .map(|index| format!("key{index:03}").into_bytes())
            .filter(|key| {
                let position = Ring::position_of(key);
                trees.holding(position).is_some_and(|tree| {
                    let bucket = bucket_of_position(tree.range, 3, position).unwrap();
                    bucket == 1 || bucket == 6
                })
            })
            .collect();
        assert!(expected.len() > 10, "{} keys", expected.len());
        assert_eq!(
            all.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            expected
        );
        for (keys_max, rows_max) in [(3, usize::MAX), (usize::MAX, 7), (2, 5)] {
            let mut pages = Vec::new();
            let mut resume = Some(Vec::new());
            let mut requests = 0;
            while let Some(start) = resume {
                let (keys, next) =
                    scan_buckets(&store, &trees, &filter, &start, keys_max, rows_max).unwrap();
                assert!(keys.len() <= keys_max);
                pages.extend(keys);
                resume = next;
                requests += 1;
                assert!(requests < 1000);
            }
            assert_eq!(pages, all, "keys_max {keys_max} rows_max {rows_max}");
        }
        assert!(BucketFilter::new(
            3,
            &[RangeBuckets {
                range: wanted[0].range,
                buckets: vec![8],
            }]
        )
        .is_err());
    }

    #[tokio::test]
    async fn roots_asked_for_another_ring_version_are_not_given() {
        let state = crate::antientropy::test_support::ring_state(&["n1", "n2", "n3", "n4"], 3);
        let directory = tempfile::tempdir().unwrap();
        let store = LocalStore::open(
            directory.path(),
            engine::Options::default(),
            VersionConfig::default(),
        )
        .unwrap();
        let service = AntiEntropy::open(
            NodeId::new("n1"),
            crate::antientropy::AntiEntropyConfig::default(),
            &state,
            &Replication::Total(3),
            Arc::new(store),
            std::time::Duration::from_secs(1),
        )
        .await
        .unwrap();
        let trees = service.trees().unwrap();
        assert_eq!(trees.ring_version(), 3);
        let ranges: Vec<TokenRange> = trees.ranges().iter().map(|tree| tree.range).collect();
        assert!(ranges.len() > 1);
        let ask = |ring_version| AeMessage::Roots {
            depth: trees.depth(),
            ring_version,
            ranges: ranges.clone(),
        };
        let AeMessage::RootsReply {
            ring_version,
            roots,
        } = answer(&service, ask(3)).unwrap()
        else {
            panic!("not a RootsReply");
        };
        assert_eq!(ring_version, 3);
        assert!(roots.iter().all(Option::is_some));
        // Another version: this node's version and no roots, whatever the depth asked.
        for (version, depth) in [(2, trees.depth()), (4, 0)] {
            let mut request = ask(version);
            if let AeMessage::Roots { depth: asked, .. } = &mut request {
                *asked = depth;
            }
            let reply = answer(&service, request).unwrap();
            assert_eq!(
                reply,
                AeMessage::RootsReply {
                    ring_version: 3,
                    roots: vec![None; ranges.len()],
                }
            );
        }
    }
}
