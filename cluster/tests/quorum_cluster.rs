//! Quorum coordination across in-process nodes on loopback: each node is a whole
//! `RunningNode` (store, peer transport, coordinator) with its own temporary data directory,
//! driven through its `Backend`. Every test is bounded and stops its nodes.

use cluster::launcher::addresses::address_block;
use cluster::launcher::{CLIENT_PORT, PEER_PORT};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::config::{MemberConfig, NodeConfig};
use cluster::net::{DelayDistribution, LinkConfig, LinkSpec};
use cluster::protocol::Consistency;
use cluster::ring::{NodeId, Replication, Ring};
use cluster::server::{Backend, ReadReply, RunningNode};
use cluster::version::codec::latest_value;
use cluster::version::{SiblingSet, VectorClock};
use cluster::Error;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);

const QUORUM: Consistency = Consistency::Counts {
    read: Some(2),
    write: Some(2),
};

fn run<F: Future<Output = ()>>(test: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, test)
            .await
            .expect("test exceeded its time bound")
    });
}

/// A running cluster; nodes are `None` once stopped.
struct Cluster {
    nodes: Vec<Option<RunningNode>>,
    _directories: Vec<tempfile::TempDir>,
}

impl Cluster {
    /// Starts one node per `(id, datacenter)` with the same member list.
    async fn start(
        layout: &[(&str, &str)],
        replication: Replication,
        links: LinkConfig,
    ) -> Cluster {
        // One loopback address per node with the launcher's fixed ports: a port picked by
        // binding port 0 and releasing it could be taken, before the node binds it, by
        // another test or by one of the nodes' own outgoing connections.
        let addresses = address_block(layout.len()).unwrap();
        let members: Vec<MemberConfig> = layout
            .iter()
            .zip(&addresses)
            .map(|((id, datacenter), &ip)| MemberConfig {
                id: id.to_string(),
                datacenter: datacenter.to_string(),
                weight: 1,
                client_address: std::net::SocketAddr::new(ip, CLIENT_PORT),
                peer_address: std::net::SocketAddr::new(ip, PEER_PORT),
            })
            .collect();
        let mut nodes = Vec::new();
        let mut directories = Vec::new();
        for member in &members {
            let directory = tempfile::tempdir().unwrap();
            let config = NodeConfig {
                node_id: member.id.clone(),
                datacenter: member.datacenter.clone(),
                client_address: member.client_address,
                peer_address: member.peer_address,
                data_dir: directory.path().to_path_buf(),
                vnodes_per_weight: 16,
                members: members.clone(),
                replication: replication.clone(),
                request_timeout_ms: 1000,
                links: links.clone(),
                ..NodeConfig::default()
            };
            config.validate().unwrap();
            nodes.push(Some(RunningNode::start(config).await.unwrap()));
            directories.push(directory);
        }
        Cluster {
            nodes,
            _directories: directories,
        }
    }

    fn backend(&self, index: usize) -> Arc<dyn Backend> {
        self.nodes[index].as_ref().expect("node stopped").backend()
    }

    async fn stop(&mut self, index: usize) {
        if let Some(node) = self.nodes[index].take() {
            node.stop().await.unwrap();
        }
    }

    async fn stop_all(&mut self) {
        for index in 0..self.nodes.len() {
            self.stop(index).await;
        }
    }
}

fn values(set: &SiblingSet) -> Vec<Vec<u8>> {
    let mut values: Vec<Vec<u8>> = set
        .versions
        .iter()
        .filter_map(|version| version.value.clone())
        .collect();
    values.sort();
    values
}

async fn write(backend: &Arc<dyn Backend>, key: &[u8], value: &[u8], level: Consistency) {
    backend
        .write(
            key.to_vec(),
            VectorClock::new(),
            Some(value.to_vec()),
            level,
        )
        .await
        .unwrap();
}

async fn read(backend: &Arc<dyn Backend>, key: &[u8], level: Consistency) -> SiblingSet {
    backend
        .read(key.to_vec(), level)
        .await
        .unwrap()
        .expect("key not found")
}

/// The ring the nodes of `layout` build (16 vnodes per weight, as [`Cluster::start`]).
fn ring_of(layout: &[(&str, &str)]) -> Ring {
    Ring::new(
        layout
            .iter()
            .map(|(id, dc)| cluster::ring::Member::new(*id, *dc)),
        16,
    )
    .unwrap()
}

fn three_nodes() -> [(&'static str, &'static str); 3] {
    [("n1", "dc1"), ("n2", "dc1"), ("n3", "dc1")]
}

#[test]
fn quorum_reads_and_writes_survive_one_node_down_and_fail_with_two_down() {
    run(async {
        let mut cluster =
            Cluster::start(&three_nodes(), Replication::Total(3), LinkConfig::default()).await;
        write(&cluster.backend(0), b"k", b"v1", QUORUM).await;
        for index in 0..3 {
            let set = read(&cluster.backend(index), b"k", QUORUM).await;
            assert_eq!(
                values(&set),
                vec![b"v1".to_vec()],
                "read through node {index}"
            );
        }
        let rows = cluster
            .backend(1)
            .scan(Vec::new(), None, 10, QUORUM)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);

        cluster.stop(2).await;
        write(&cluster.backend(0), b"k2", b"v2", QUORUM).await;
        let set = read(&cluster.backend(1), b"k2", QUORUM).await;
        assert_eq!(values(&set), vec![b"v2".to_vec()]);
        let rows = cluster
            .backend(0)
            .scan(Vec::new(), None, 10, Consistency::One)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);

        cluster.stop(1).await;
        let backend = cluster.backend(0);
        let error = backend
            .write(
                b"k3".to_vec(),
                VectorClock::new(),
                Some(b"v3".to_vec()),
                QUORUM,
            )
            .await
            .unwrap_err();
        match &error {
            Error::QuorumFailed {
                what, needed, got, ..
            } => {
                assert_eq!((*what, *needed, *got), ("write acknowledgements", 2, 1));
            }
            other => panic!("expected a quorum error, got {other}"),
        }
        let text = error.to_string();
        assert!(
            text.contains("needed 2") && text.contains("got 1"),
            "{text}"
        );
        let error = backend.read(b"k".to_vec(), QUORUM).await.unwrap_err();
        assert!(
            matches!(
                error,
                Error::QuorumFailed {
                    what: "read replies",
                    needed: 2,
                    got: 1,
                    ..
                }
            ),
            "{error}"
        );
        // ONE is still met by the coordinator alone.
        let set = read(&backend, b"k", Consistency::One).await;
        assert_eq!(values(&set), vec![b"v1".to_vec()]);
        let too_many = Consistency::Counts {
            read: Some(4),
            write: None,
        };
        assert!(backend.check_consistency(too_many).is_err());
        cluster.stop_all().await;
    });
}

#[test]
fn blind_writes_through_two_coordinators_are_siblings_until_a_context_write() {
    run(async {
        let mut cluster =
            Cluster::start(&three_nodes(), Replication::Total(3), LinkConfig::default()).await;
        write(&cluster.backend(0), b"k", b"a", QUORUM).await;
        write(&cluster.backend(1), b"k", b"b", QUORUM).await;
        let set = read(&cluster.backend(2), b"k", QUORUM).await;
        assert_eq!(values(&set), vec![b"a".to_vec(), b"b".to_vec()]);
        cluster
            .backend(2)
            .write(b"k".to_vec(), set.context(), Some(b"c".to_vec()), QUORUM)
            .await
            .unwrap();
        for index in 0..3 {
            let set = read(&cluster.backend(index), b"k", Consistency::All).await;
            assert_eq!(
                values(&set),
                vec![b"c".to_vec()],
                "read through node {index}"
            );
        }
        cluster.stop_all().await;
    });
}

#[test]
fn a_coordinator_outside_the_preference_list_has_a_replica_mint_the_version() {
    run(async {
        let layout = three_nodes();
        let replication = Replication::Total(2);
        let mut cluster = Cluster::start(&layout, replication.clone(), LinkConfig::default()).await;
        let ring = ring_of(&layout);
        let key = (0..1000)
            .map(|index| format!("key{index}").into_bytes())
            .find(|key| {
                let list = ring.preference_list(key, &replication).unwrap();
                !list.contains(&NodeId::new("n1"))
            })
            .expect("some key is not on n1");
        let list = ring.preference_list(&key, &replication).unwrap();
        write(&cluster.backend(0), &key, b"v", Consistency::All).await;
        let set = read(&cluster.backend(0), &key, Consistency::All).await;
        assert_eq!(values(&set), vec![b"v".to_vec()]);
        assert_eq!(set.versions[0].writer, list[0].as_str());
        cluster.stop_all().await;
    });
}

#[test]
fn a_coordinator_outside_the_preference_list_has_a_replica_of_its_datacenter_mint() {
    run(async {
        let layout = [("n1", "dc1"), ("n2", "dc1"), ("n3", "dc1"), ("n4", "dc2")];
        let replication =
            Replication::PerDatacenter(BTreeMap::from([("dc1".into(), 2), ("dc2".into(), 1)]));
        let links = LinkConfig {
            inter_datacenter: LinkSpec::with_delay(DelayDistribution::Constant { ms: 50.0 }),
            ..LinkConfig::default()
        };
        let mut cluster = Cluster::start(&layout, replication.clone(), links).await;
        let ring = ring_of(&layout);
        // A key n1 does not replicate whose preference list starts in dc2: minting at the
        // list's first replica would cross to dc2 and back before any put went out.
        let key = (0..10_000)
            .map(|index| format!("key{index}").into_bytes())
            .find(|key| {
                let list = ring.preference_list(key, &replication).unwrap();
                !list.contains(&NodeId::new("n1")) && list[0] == NodeId::new("n4")
            })
            .expect("some key starts in dc2 and is not on n1");
        let list = ring.preference_list(&key, &replication).unwrap();
        let backend = cluster.backend(0);
        // Warm the connections up so the timing below holds no TCP handshakes.
        write(&backend, b"warm", b"w", Consistency::All).await;

        let started = Instant::now();
        write(&backend, &key, b"v", Consistency::LocalQuorum).await;
        let took = started.elapsed();
        // Two 50 ms crossings if dc2 had minted; none when dc1 does.
        assert!(took < Duration::from_millis(100), "the write took {took:?}");
        let set = read(&backend, &key, Consistency::All).await;
        assert_eq!(values(&set), vec![b"v".to_vec()]);
        assert_eq!(set.versions[0].writer, list[1].as_str(), "{list:?}");
        cluster.stop_all().await;
    });
}

#[test]
fn each_quorum_waits_for_the_remote_datacenter() {
    run(async {
        let layout = [("n1", "dc1"), ("n2", "dc1"), ("n3", "dc2")];
        let replication =
            Replication::PerDatacenter(BTreeMap::from([("dc1".into(), 2), ("dc2".into(), 1)]));
        let links = LinkConfig {
            inter_datacenter: LinkSpec::with_delay(DelayDistribution::Constant { ms: 50.0 }),
            ..LinkConfig::default()
        };
        let mut cluster = Cluster::start(&layout, replication, links).await;
        let backend = cluster.backend(0);
        // Warm the connections up so the timings below hold no TCP handshakes.
        write(&backend, b"warm", b"w", Consistency::All).await;

        write(&backend, b"local", b"v", Consistency::LocalQuorum).await;

        // A lower bound is robust: the remote acknowledgement needs two 50 ms crossings.
        let started = Instant::now();
        write(&backend, b"each", b"v", Consistency::EachQuorum).await;
        let each = started.elapsed();
        assert!(
            each >= Duration::from_millis(100),
            "EACH_QUORUM took {each:?}"
        );

        let set = read(&cluster.backend(2), b"local", Consistency::All).await;
        assert_eq!(values(&set), vec![b"v".to_vec()]);
        cluster.stop_all().await;
    });
}

#[test]
fn local_quorum_does_not_need_the_remote_datacenter_and_each_quorum_does() {
    run(async {
        let layout = [("n1", "dc1"), ("n2", "dc1"), ("n3", "dc2")];
        let replication =
            Replication::PerDatacenter(BTreeMap::from([("dc1".into(), 2), ("dc2".into(), 1)]));
        // dc2 is cut off: nothing it would acknowledge ever arrives, so a LOCAL_QUORUM
        // write that succeeds (well before the 1 s timeout) did not wait for it.
        let links = LinkConfig {
            inter_datacenter: LinkSpec::default().cut(),
            ..LinkConfig::default()
        };
        let mut cluster = Cluster::start(&layout, replication, links).await;
        let backend = cluster.backend(0);
        let started = Instant::now();
        write(&backend, b"k", b"v", Consistency::LocalQuorum).await;
        let local = started.elapsed();
        assert!(
            local < Duration::from_millis(900),
            "LOCAL_QUORUM took {local:?}"
        );
        let set = read(&cluster.backend(1), b"k", Consistency::LocalQuorum).await;
        assert_eq!(values(&set), vec![b"v".to_vec()]);

        let error = backend
            .write(
                b"k".to_vec(),
                VectorClock::new(),
                Some(b"w".to_vec()),
                Consistency::EachQuorum,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::QuorumFailed {
                    needed: 3,
                    got: 2,
                    ..
                }
            ),
            "{error}"
        );
        // n3 (dc2) alone cannot meet QUORUM, which needs two of the three replicas.
        let error = cluster
            .backend(2)
            .read(b"k".to_vec(), Consistency::Quorum)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::QuorumFailed {
                    needed: 2,
                    got: 1,
                    ..
                }
            ),
            "{error}"
        );
        cluster.stop_all().await;
    });
}

/// The value a plain GET shows through `read_for_get`, whichever shape it came in, and
/// whether it came as the replicas' stored bytes.
async fn get_value(
    backend: &Arc<dyn Backend>,
    key: &[u8],
    level: Consistency,
) -> (Option<Vec<u8>>, bool) {
    match backend.read_for_get(key.to_vec(), level).await.unwrap() {
        ReadReply::Decoded(set) => (set.as_ref().and_then(newest_value), false),
        ReadReply::Encoded(bytes) => {
            let value = bytes
                .as_deref()
                .and_then(|bytes| latest_value(bytes).unwrap().map(<[u8]>::to_vec));
            (value, true)
        }
    }
}

/// The last-write-wins winner's value of a decoded set (`None`: a tombstone or no version).
fn newest_value(set: &SiblingSet) -> Option<Vec<u8>> {
    set.versions
        .iter()
        .max_by(|left, right| {
            (left.timestamp_ms, &left.writer).cmp(&(right.timestamp_ms, &right.writer))
        })
        .and_then(|version| version.value.clone())
}

#[test]
fn a_get_shows_what_the_decoded_read_shows_whether_or_not_replies_agree() {
    run(async {
        let mut cluster =
            Cluster::start(&three_nodes(), Replication::Total(3), LinkConfig::default()).await;
        // Siblings (two coordinators' blind writes), a plain value, a tombstone, a missing key.
        write(&cluster.backend(0), b"siblings", b"a", Consistency::All).await;
        write(&cluster.backend(1), b"siblings", b"b", Consistency::All).await;
        write(&cluster.backend(0), b"plain", b"v", Consistency::All).await;
        write(&cluster.backend(0), b"deleted", b"gone", Consistency::All).await;
        cluster
            .backend(1)
            .write(
                b"deleted".to_vec(),
                VectorClock::new(),
                None,
                Consistency::All,
            )
            .await
            .unwrap();
        let mut encoded = 0;
        for key in [&b"siblings"[..], b"plain", b"deleted", b"missing"] {
            for index in 0..3 {
                let backend = cluster.backend(index);
                for level in [Consistency::One, QUORUM, Consistency::All] {
                    let expected = backend
                        .read(key.to_vec(), level)
                        .await
                        .unwrap()
                        .as_ref()
                        .and_then(newest_value);
                    let (value, came_encoded) = get_value(&backend, key, level).await;
                    encoded += usize::from(came_encoded);
                    assert_eq!(
                        value,
                        expected,
                        "key {} through node {index} at {level:?}",
                        String::from_utf8_lossy(key)
                    );
                }
            }
        }
        // A pipeline's SETs written as a batch: read back through every node.
        let writes: Vec<(Vec<u8>, Vec<u8>)> = (0..5u8)
            .map(|index| (vec![b'w', index], vec![b'v', index]))
            .collect();
        let results = cluster.backend(1).write_many(writes.clone(), QUORUM).await;
        assert_eq!(results.len(), writes.len());
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        for index in 0..3 {
            for (key, value) in &writes {
                let set = read(&cluster.backend(index), key, Consistency::All).await;
                assert_eq!(values(&set), vec![value.clone()], "through node {index}");
            }
        }
        // The batched read of a pipeline's GETs answers each key as the single read does.
        let keys: Vec<Vec<u8>> = [&b"siblings"[..], b"plain", b"deleted", b"missing", b"plain"]
            .iter()
            .map(|key| key.to_vec())
            .collect();
        for index in 0..3 {
            let backend = cluster.backend(index);
            for level in [Consistency::One, QUORUM, Consistency::All] {
                let batched = backend.read_many_for_get(keys.clone(), level).await;
                assert_eq!(batched.len(), keys.len());
                for (key, reply) in keys.iter().zip(batched) {
                    let value = match reply.unwrap() {
                        ReadReply::Decoded(set) => set.as_ref().and_then(newest_value),
                        ReadReply::Encoded(bytes) => bytes
                            .as_deref()
                            .and_then(|bytes| latest_value(bytes).unwrap().map(<[u8]>::to_vec)),
                    };
                    assert_eq!(
                        value,
                        get_value(&backend, key, level).await.0,
                        "key {} through node {index} at {level:?}",
                        String::from_utf8_lossy(key)
                    );
                }
            }
        }
        assert_eq!(
            get_value(&cluster.backend(2), b"siblings", QUORUM).await.0,
            Some(b"b".to_vec()),
            "the later blind write wins a plain GET"
        );
        // Every replica holds the same bytes after writes at ALL, so the raw path answers.
        assert!(encoded > 0, "no GET took the agreeing-replies path");
        cluster.stop_all().await;
    });
}
