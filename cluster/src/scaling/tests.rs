use std::net::SocketAddr;

use super::*;
use crate::config::MemberConfig;
use crate::protocol::peer::{decode_frame, encode_frame, Frame, FrameKind, ScanRow};

fn member(id: &str, port: u16) -> MemberConfig {
    MemberConfig {
        id: id.into(),
        datacenter: "dc1".into(),
        weight: 2,
        client_address: SocketAddr::from(([127, 0, 0, 3], port)),
        peer_address: SocketAddr::from(([127, 0, 0, 3], port + 1)),
    }
}

fn scaling_messages() -> Vec<PeerMessage> {
    vec![
        PeerMessage::RingUpdate {
            spec: RingSpec {
                version: 7,
                phase: Phase::ReadNew,
                current: vec![member("a", 10), member("b", 20)],
                next: vec![member("a", 10)],
            },
        },
        PeerMessage::RingAck { version: 9 },
        PeerMessage::StreamPull {
            version: 3,
            cursor: b"key\0".to_vec(),
            scan_limit: 512,
        },
        PeerMessage::StreamBatch {
            rows: vec![ScanRow {
                key: b"k".to_vec(),
                siblings: vec![1, 2, 3],
            }],
            next_cursor: Some(b"l".to_vec()),
        },
        PeerMessage::StreamBatch {
            rows: Vec::new(),
            next_cursor: None,
        },
        PeerMessage::StreamPullDigests {
            version: 5,
            cursor: Vec::new(),
            scan_limit: 512,
            pulled: vec!["n1".into(), "n2".into()],
        },
        PeerMessage::StreamDigestBatch {
            rows: vec![ScanRow {
                key: b"k".to_vec(),
                siblings: vec![4, 5],
            }],
            digests: vec![(b"m".to_vec(), u128::MAX - 7), (Vec::new(), 0)],
            next_cursor: Some(b"n".to_vec()),
        },
        PeerMessage::StreamDigestBatch {
            rows: Vec::new(),
            digests: Vec::new(),
            next_cursor: None,
        },
        PeerMessage::StreamFetch {
            version: 5,
            keys: vec![b"m".to_vec(), Vec::new()],
        },
        PeerMessage::Rebalance {
            version: 4,
            skip: Vec::new(),
        },
        PeerMessage::Rebalance {
            version: 4,
            skip: vec!["n9".into()],
        },
        PeerMessage::DrainWrites {
            version: 6,
            wait_ms: 20_000,
        },
        PeerMessage::RebalanceReply {
            rows: 10,
            keys_new: 5,
            bytes: 1000,
            failures: "n3: timeout".into(),
        },
    ]
}

#[test]
fn ring_change_messages_round_trip() {
    for message in scaling_messages() {
        let frame = Frame {
            kind: FrameKind::Request,
            request_id: 1,
            message: message.clone(),
        };
        let bytes = encode_frame(&frame, 1 << 20).unwrap();
        let (decoded, used) = decode_frame(&bytes, 1 << 20).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(decoded.message, message, "{}", message.name());
    }
}

#[test]
fn ring_update_tag_and_corrupt_fields_are_checked() {
    let frame = Frame {
        kind: FrameKind::OneWay,
        request_id: 0,
        message: PeerMessage::RingAck { version: 1 },
    };
    let bytes = encode_frame(&frame, 1 << 20).unwrap();
    assert_eq!(bytes[20], 91, "RingAck is tag 91");
    assert_eq!(&bytes[21..29], &1u64.to_be_bytes());

    let spec = RingSpec {
        version: 1,
        phase: Phase::Stable,
        current: vec![member("a", 10)],
        next: Vec::new(),
    };
    let frame = Frame {
        message: PeerMessage::RingUpdate { spec },
        ..frame
    };
    let mut bytes = encode_frame(&frame, 1 << 20).unwrap();
    // The phase byte follows the tag and the version.
    bytes[29] = 7;
    let checksum = crc32c::crc32c(&bytes[20..]);
    bytes[16..20].copy_from_slice(&checksum.to_be_bytes());
    let error = decode_frame(&bytes, 1 << 20).unwrap_err().to_string();
    assert!(error.contains("RingUpdate.phase 7"), "{error}");
}

/// A node `a` of a stable ring `a`, `b` (N=1, 16 vnodes per weight) with `keys` keys in its
/// store, none of them written through the ring.
pub(super) fn lone_scaling(directory: &std::path::Path, keys: usize) -> Arc<Scaling> {
    let members = |ids: &[&str]| -> String {
        ids.iter()
            .enumerate()
            .map(|(index, id)| {
                format!(
                    "[[members]]\nid = \"{id}\"\ndatacenter = \"dc1\"\n\
                     client_address = \"127.0.0.3:{}\"\npeer_address = \"127.0.0.3:{}\"\n",
                    40000 + index * 2,
                    40001 + index * 2
                )
            })
            .collect()
    };
    let text = format!(
        "node_id = \"a\"\ndatacenter = \"dc1\"\nreplication = 1\nvnodes_per_weight = 16\n\
         data_dir = {:?}\n{}",
        directory.display().to_string(),
        members(&["a", "b"])
    );
    let config = NodeConfig::parse(&text).unwrap();
    config.validate().unwrap();
    let store = Arc::new(
        LocalStore::open(
            &directory.join("store"),
            config.engine.clone(),
            config.versions.clone(),
        )
        .unwrap(),
    );
    for index in 0..keys {
        store
            .write_local(
                format!("key{index:05}").as_bytes(),
                &crate::version::VectorClock::new(),
                Some(b"v".to_vec()),
                "a",
                index as u64 + 1,
            )
            .unwrap();
    }
    Scaling::new(&config, store).unwrap()
}

/// The error `CLUSTER.CLEANUP` (without COMPACT) gets on `scaling`.
async fn cleanup_refusal(scaling: &Scaling) -> String {
    scaling
        .execute(ScalingRequest::Cleanup { compact: false })
        .await
        .unwrap_err()
        .to_string()
}

#[tokio::test]
async fn cleanup_keeps_exactly_the_keys_the_node_replicates_and_refuses_off_the_ring() {
    let directory = tempfile::tempdir().unwrap();
    // More keys than one step scans, so the sweep goes on from its cursor.
    let keys = cleanup::CLEANUP_SCAN_KEYS * 2 + 100;
    let scaling = lone_scaling(directory.path(), keys);
    let replication = Replication::Total(1);
    let me = NodeId::new("a");
    let state = scaling.snapshot();
    let mine = |key: &[u8]| {
        state
            .read_replicas(key, &replication)
            .unwrap()
            .contains(&me)
    };
    let kept: Vec<Vec<u8>> = (0..keys)
        .map(|index| format!("key{index:05}").into_bytes())
        .filter(|key| mine(key))
        .collect();
    assert!(
        kept.len() > keys / 4 && kept.len() < keys * 3 / 4,
        "{}",
        kept.len()
    );

    let lines = scaling
        .execute(ScalingRequest::Cleanup { compact: true })
        .await
        .unwrap();
    let field = |name: &str| -> u64 {
        lines
            .iter()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {lines:?}"))
    };
    assert_eq!(field("keys_scanned"), keys as u64, "{lines:?}");
    assert_eq!(
        field("keys_removed"),
        (keys - kept.len()) as u64,
        "{lines:?}"
    );
    assert_eq!(field("keys_kept_written"), 0, "{lines:?}");
    assert!(
        lines.iter().any(|line| line.starts_with("compact_ms ")),
        "{lines:?}"
    );
    let held: Vec<Vec<u8>> = scaling
        .store
        .scan_raw(b"", usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(held, kept);
    let info: std::collections::HashMap<_, _> = scaling.info().into_iter().collect();
    assert_eq!(info["cleanups"], 1);
    assert_eq!(info["cleanup_keys_removed"], (keys - kept.len()) as u64);

    // A ring without this node (it left): refused, nothing dropped.
    let spec = RingSpec {
        version: state.spec.version + 1,
        phase: Phase::Stable,
        current: vec![state.member("b").unwrap().clone()],
        next: Vec::new(),
    };
    scaling.apply(spec).unwrap();
    let error = cleanup_refusal(&scaling).await;
    assert!(
        error.ends_with("node a is not a member of the ring (version 1): nothing to clean up"),
        "{error}"
    );
    assert_eq!(
        scaling.store.scan_raw(b"", usize::MAX).unwrap().len(),
        kept.len()
    );

    // A ring that is changing: refused.
    let spec = RingSpec {
        version: state.spec.version + 2,
        phase: Phase::Streaming,
        current: vec![state.member("b").unwrap().clone()],
        next: state.spec.current.clone(),
    };
    scaling.apply(spec).unwrap();
    let error = cleanup_refusal(&scaling).await;
    assert!(error.contains("the ring is changing"), "{error}");
}

fn open_store(directory: &std::path::Path) -> LocalStore {
    LocalStore::open(
        directory,
        engine::Options::default(),
        crate::version::VersionConfig::default(),
    )
    .unwrap()
}

#[test]
fn streamed_rows_that_change_nothing_are_not_written_again() {
    let directory = tempfile::tempdir().unwrap();
    let store = open_store(directory.path());
    let source_directory = tempfile::tempdir().unwrap();
    let source = open_store(source_directory.path());
    let empty = crate::version::VectorClock::new();
    source
        .write_local(b"k", &empty, Some(b"v1".to_vec()), "n1", 1)
        .unwrap();
    let row = |store: &LocalStore| ScanRow {
        key: b"k".to_vec(),
        siblings: store.read(b"k").unwrap().unwrap().encode(),
    };
    // The same set from three replicas: one new key, one write.
    let before = store.stats().last_seq;
    let new = stream::fold_rows(&store, vec![row(&source), row(&source), row(&source)]).unwrap();
    assert_eq!(new, 1);
    assert_eq!(store.stats().last_seq, before + 1);
    // A newer version from one of them is merged in and written.
    let set = source.read(b"k").unwrap().unwrap();
    source
        .write_local(b"k", &set.context(), Some(b"v2".to_vec()), "n1", 2)
        .unwrap();
    let new = stream::fold_rows(&store, vec![row(&source), row(&source)]).unwrap();
    assert_eq!(new, 0);
    assert_eq!(store.stats().last_seq, before + 2);
    let stored = store.read(b"k").unwrap().unwrap();
    assert_eq!(stored.versions.len(), 1);
    assert_eq!(stored.versions[0].value.as_deref(), Some(&b"v2"[..]));
}

#[test]
fn digest_batches_with_forged_counts_are_refused() {
    let frame = Frame {
        kind: FrameKind::Response,
        request_id: 3,
        message: PeerMessage::StreamDigestBatch {
            rows: Vec::new(),
            digests: vec![(b"k".to_vec(), 1)],
            next_cursor: None,
        },
    };
    let mut bytes = encode_frame(&frame, 1 << 20).unwrap();
    assert_eq!(bytes[20], 97, "StreamDigestBatch is tag 97");
    // The digest count follows the tag and the empty row count: claim a million.
    bytes[25..29].copy_from_slice(&1_000_000u32.to_be_bytes());
    let checksum = crc32c::crc32c(&bytes[20..]);
    bytes[16..20].copy_from_slice(&checksum.to_be_bytes());
    let error = decode_frame(&bytes, 1 << 20).unwrap_err().to_string();
    assert!(
        error.contains("StreamDigestBatch digests claims 1000000 entries"),
        "{error}"
    );
}

/// A streaming ring: `current` with `added` joining.
fn streaming_state(current: &[&str], added: &str) -> RingState {
    let members: Vec<MemberConfig> = current
        .iter()
        .enumerate()
        .map(|(index, id)| member(id, 41000 + 2 * index as u16))
        .collect();
    let mut next = members.clone();
    next.push(member(added, 42000));
    let spec = RingSpec {
        version: 2,
        phase: Phase::Streaming,
        current: members,
        next,
    };
    RingState::build(spec, 16).unwrap()
}

#[test]
fn each_gained_key_is_sent_whole_by_the_first_source_pulled_that_replicates_it() {
    let sources = ["n1", "n2", "n3", "n5", "n6"];
    let state = streaming_state(&sources, "n4");
    let replication = Replication::Total(3);
    let gainer = NodeId::new("n4");
    let (mut gained, mut digests) = (0, 0);
    for index in 0..3000 {
        let key = format!("user{index}");
        let current = state
            .current
            .preference_list(key.as_bytes(), &replication)
            .unwrap();
        let gains = state.gains(&gainer, key.as_bytes(), &replication).unwrap();
        // The sources pulled in ring order, each told who went before it.
        let mut pulled = Vec::new();
        let mut sets = Vec::new();
        for source in sources.map(NodeId::new) {
            let role = state
                .stream_role(&source, &gainer, key.as_bytes(), &replication, &pulled)
                .unwrap();
            assert_eq!(
                role.is_some(),
                gains && current.contains(&source),
                "{key} from {source}"
            );
            match role {
                Some(StreamRole::Set) => sets.push(source.clone()),
                Some(StreamRole::Digest) => digests += 1,
                None => {}
            }
            pulled.push(source);
        }
        if gains {
            gained += 1;
            // Exactly one set, from the first of the key's current replicas in pull order.
            let first = sources
                .map(NodeId::new)
                .into_iter()
                .find(|source| current.contains(source))
                .unwrap();
            assert_eq!(sets, vec![first], "{key}");
        } else {
            assert!(sets.is_empty(), "{key}");
        }
    }
    // With N=3 of six nodes the new one replicates about half the keys, every one of them
    // gained; each has two more current replicas.
    assert!(
        (1200..=1800).contains(&gained),
        "{gained} of 3000 keys gained"
    );
    assert_eq!(digests, 2 * gained);

    // A source that failed is not among `pulled`: the next replica sends the set.
    let key = (0..3000)
        .map(|index| format!("user{index}"))
        .find(|key| state.gains(&gainer, key.as_bytes(), &replication).unwrap())
        .unwrap();
    let current = state
        .current
        .preference_list(key.as_bytes(), &replication)
        .unwrap();
    let role = |source: &NodeId, pulled: &[NodeId]| {
        state
            .stream_role(source, &gainer, key.as_bytes(), &replication, pulled)
            .unwrap()
    };
    assert_eq!(role(&current[1], &[]), Some(StreamRole::Set));
    assert_eq!(
        role(&current[1], &[current[0].clone()]),
        Some(StreamRole::Digest)
    );
}

#[test]
fn a_digest_pull_fetches_only_keys_whose_copy_differs_or_is_missing() {
    let directory = tempfile::tempdir().unwrap();
    let store = open_store(directory.path());
    let source_directory = tempfile::tempdir().unwrap();
    let source = open_store(source_directory.path());
    let empty = crate::version::VectorClock::new();
    for (key, value) in [("same", "v1"), ("differs", "v1"), ("missing", "v1")] {
        source
            .write_local(
                key.as_bytes(),
                &empty,
                Some(value.as_bytes().to_vec()),
                "n1",
                1,
            )
            .unwrap();
    }
    // This node got `same` and `differs` from an earlier source; `differs` has since
    // changed on this source (a write the earlier one missed).
    let copy = |key: &str| ScanRow {
        key: key.as_bytes().to_vec(),
        siblings: source.read_encoded(key.as_bytes()).unwrap().unwrap(),
    };
    stream::fold_rows(&store, vec![copy("same"), copy("differs")]).unwrap();
    let set = source.read(b"differs").unwrap().unwrap();
    source
        .write_local(b"differs", &set.context(), Some(b"v2".to_vec()), "n2", 2)
        .unwrap();
    let digest = |key: &str| {
        let bytes = source.read_encoded(key.as_bytes()).unwrap().unwrap();
        (
            key.as_bytes().to_vec(),
            crate::antientropy::wide_digest(&bytes),
        )
    };
    let stale = stream::stale_keys(
        &store,
        vec![digest("same"), digest("differs"), digest("missing")],
    )
    .unwrap();
    assert_eq!(stale, vec![b"differs".to_vec(), b"missing".to_vec()]);
    // The digest a source sends is what this node keeps for an equal copy.
    assert_eq!(store.read_digest(b"same").unwrap(), Some(digest("same").1));
    // Fetched and folded, nothing is stale any more.
    stream::fold_rows(&store, vec![copy("differs"), copy("missing")]).unwrap();
    assert!(stream::stale_keys(
        &store,
        vec![digest("same"), digest("differs"), digest("missing")]
    )
    .unwrap()
    .is_empty());
    let stored = store.read(b"differs").unwrap().unwrap();
    assert_eq!(stored.versions.len(), 1);
    assert_eq!(stored.versions[0].value.as_deref(), Some(&b"v2"[..]));
}

#[tokio::test]
async fn a_source_sends_gained_keys_as_sets_or_digests_and_serves_fetches_of_them() {
    let directory = tempfile::tempdir().unwrap();
    let scaling = lone_scaling(directory.path(), 400);
    // Fewer keys than one batch scans. c joins a and b (N=1): a streams c the keys it replicates and c will.
    let spec = RingSpec {
        version: 1,
        phase: Phase::Streaming,
        current: vec![member("a", 40000), member("b", 40002)],
        next: vec![member("a", 40000), member("b", 40002), member("c", 40004)],
    };
    assert_eq!(scaling.apply(spec).unwrap(), 1);
    let (c, a) = (NodeId::new("c"), NodeId::new("a"));
    let state = scaling.snapshot();
    let replication = Replication::Total(1);
    let gained: Vec<Vec<u8>> = (0..400)
        .map(|index| format!("key{index:05}").into_bytes())
        .filter(|key| state.streams(&a, &c, key, &replication).unwrap())
        .collect();
    assert!(gained.len() > 50, "{} keys gained", gained.len());

    // Nothing pulled before: every gained key as its stored set, the same for a gainer of
    // an earlier release. A key a replicates and c does not is not sent.
    let legacy = scaling.serve_pull(&c, 1, Vec::new(), 1000).await.unwrap();
    let PeerMessage::StreamBatch { rows, next_cursor } = legacy else {
        panic!("{legacy:?}");
    };
    assert_eq!(next_cursor, None);
    let keys: Vec<Vec<u8>> = rows.iter().map(|row| row.key.clone()).collect();
    assert_eq!(keys, gained);
    for row in &rows {
        let stored = scaling.store.read_encoded(&row.key).unwrap().unwrap();
        assert_eq!(row.siblings, stored);
    }
    let first = scaling
        .serve_pull_digests(&c, 1, Vec::new(), 1000, Vec::new())
        .await
        .unwrap();
    assert_eq!(
        first,
        PeerMessage::StreamDigestBatch {
            rows: rows.clone(),
            digests: Vec::new(),
            next_cursor: None
        }
    );

    // After a source that replicates them (here a itself stands for it): digests only.
    let later = scaling
        .serve_pull_digests(&c, 1, Vec::new(), 1000, vec!["a".into()])
        .await
        .unwrap();
    let PeerMessage::StreamDigestBatch {
        rows: none,
        digests,
        ..
    } = later
    else {
        panic!("{later:?}");
    };
    assert!(none.is_empty());
    let expected: Vec<(Vec<u8>, u128)> = rows
        .iter()
        .map(|row| {
            (
                row.key.clone(),
                crate::antientropy::wide_digest(&row.siblings),
            )
        })
        .collect();
    assert_eq!(digests, expected);

    // A fetch returns the sets asked for that c gains and a holds, nothing else.
    let not_gained = (0..400)
        .map(|index| format!("key{index:05}").into_bytes())
        .find(|key| !gained.contains(key))
        .unwrap();
    let asked = vec![
        gained[0].clone(),
        not_gained,
        b"absent".to_vec(),
        gained[1].clone(),
    ];
    let fetched = scaling.serve_fetch(&c, 1, asked).await.unwrap();
    assert_eq!(
        fetched,
        PeerMessage::StreamBatch {
            rows: vec![rows[0].clone(), rows[1].clone()],
            next_cursor: None
        }
    );
    // Another ring version is refused, and so is a fetch of more than a batch.
    let error = scaling
        .serve_pull_digests(&c, 2, Vec::new(), 1000, Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("ring version 2, this node is at 1"),
        "{error}"
    );
    let too_many = vec![b"k".to_vec(); STREAM_SCAN_KEYS as usize + 1];
    let error = scaling
        .serve_fetch(&c, 1, too_many)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("at most 512"), "{error}");
    assert_eq!(
        scaling.counters.digests_sent.load(Ordering::Relaxed),
        rows.len() as u64
    );
}

#[tokio::test]
async fn a_digest_check_waits_until_every_source_before_it_is_past_the_key() {
    use std::time::Duration;
    let progress = stream::Progress::new(3);
    async fn pending(progress: &stream::Progress) -> bool {
        tokio::time::timeout(Duration::from_millis(50), progress.wait_past(2, b"key5"))
            .await
            .is_err()
    }
    // The first source never waits.
    tokio::time::timeout(Duration::from_millis(50), progress.wait_past(0, b"zzz"))
        .await
        .expect("the first source does not wait");
    assert!(
        pending(&progress).await,
        "both sources before it are at the start"
    );
    // Source 0 has folded every key before "key5\0" (so key5 too); source 1 not yet.
    progress.advance(0, Some(b"key5\0".to_vec()));
    assert!(pending(&progress).await, "source 1 is not past key5");
    // A cursor at the key itself is not past it.
    progress.advance(1, Some(b"key5".to_vec()));
    assert!(pending(&progress).await, "source 1 is at key5, not past it");
    // An advance while waiting wakes the wait; a source done (finished or failed) counts
    // as past everything.
    let wait = progress.wait_past(2, b"key5");
    let (waited, ()) = tokio::join!(tokio::time::timeout(Duration::from_secs(5), wait), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        progress.advance(1, None);
    });
    waited.expect("the wait ends once source 1 is done");
}
