//! Calls still in flight when a quorum is met or missed: a write's `Put`s after W (detached
//! calls, see `Coordinator::detach_puts`), and a quorum read whose asked replica never
//! answers (it hedges to the replica held in reserve). In-process nodes on loopback, the
//! link emulator slowing or cutting the link from the coordinator to one replica. Every test
//! is bounded and stops its nodes.

use cluster::launcher::addresses::address_block;
use cluster::launcher::{CLIENT_PORT, PEER_PORT};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cluster::config::{MemberConfig, NodeConfig};
use cluster::net::{DelayDistribution, LinkConfig, LinkOverride, LinkSpec};
use cluster::protocol::Consistency;
use cluster::ring::{NodeId, Replication, Ring};
use cluster::server::{Backend, RunningNode};
use cluster::version::VectorClock;

const TEST_TIMEOUT: Duration = Duration::from_secs(60);

const W2: Consistency = Consistency::Counts {
    read: Some(1),
    write: Some(2),
};

const ONE: Consistency = Consistency::Counts {
    read: Some(1),
    write: Some(1),
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

struct Cluster {
    nodes: Vec<RunningNode>,
    members: Vec<MemberConfig>,
    _directories: Vec<tempfile::TempDir>,
}

impl Cluster {
    /// `ids` in dc1, N=3, the given request timeout and links.
    async fn start(ids: &[&str], request_timeout_ms: u64, links: LinkConfig) -> Cluster {
        let addresses = address_block(ids.len()).unwrap();
        let members: Vec<MemberConfig> = ids
            .iter()
            .zip(&addresses)
            .map(|(id, &ip)| MemberConfig {
                id: id.to_string(),
                datacenter: "dc1".to_string(),
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
                replication: Replication::Total(3),
                request_timeout_ms,
                links: links.clone(),
                ..NodeConfig::default()
            };
            config.validate().unwrap();
            nodes.push(RunningNode::start(config).await.unwrap());
            directories.push(directory);
        }
        Cluster {
            nodes,
            members,
            _directories: directories,
        }
    }

    fn backend(&self, index: usize) -> Arc<dyn Backend> {
        self.nodes[index].backend()
    }

    /// A key whose three replicas are exactly `wanted`.
    fn key_on(&self, wanted: &[&str]) -> Vec<u8> {
        self.key_where(|list| wanted.iter().all(|node| list.contains(&NodeId::new(*node))))
    }

    /// A key whose preference list (N=3) satisfies `wanted`.
    fn key_where(&self, wanted: impl Fn(&[NodeId]) -> bool) -> Vec<u8> {
        let config = NodeConfig {
            members: self.members.clone(),
            vnodes_per_weight: 16,
            ..NodeConfig::default()
        };
        let ring = Ring::new(config.ring_members(), 16).unwrap();
        (0..100_000)
            .map(|index| format!("key{index}").into_bytes())
            .find(|key| wanted(&ring.preference_list(key, &Replication::Total(3)).unwrap()))
            .expect("some key has those replicas")
    }

    async fn stop(self) {
        for node in self.nodes {
            node.stop().await.unwrap();
        }
    }
}

fn one_way(from: &str, to: &str, spec: LinkSpec) -> LinkConfig {
    LinkConfig {
        node_links: vec![LinkOverride::new(from, to, spec, false)],
        ..LinkConfig::default()
    }
}

async fn local_value(backend: &Arc<dyn Backend>, key: &[u8]) -> Option<Vec<u8>> {
    let set = backend.read(key.to_vec(), ONE).await.unwrap()?;
    set.versions
        .iter()
        .find_map(|version| version.value.clone())
}

fn info(backend: &Arc<dyn Backend>, field: &str) -> u64 {
    backend
        .repair_info()
        .into_iter()
        .find(|(name, _)| *name == field)
        .unwrap_or_else(|| panic!("no INFO field {field}"))
        .1
}

/// W=2 is met by the coordinator and n2; the `Put` to n3 (1.5 s on its way) is still in
/// flight when the client is answered, and still arrives.
#[test]
fn a_put_still_in_flight_after_w_is_delivered() {
    run(async {
        let slow = LinkSpec::with_delay(DelayDistribution::Constant { ms: 1500.0 });
        let cluster = Cluster::start(&["n1", "n2", "n3"], 8000, one_way("n1", "n3", slow)).await;
        let key = cluster.key_on(&["n1", "n2", "n3"]);
        let coordinator = cluster.backend(0);
        coordinator
            .write(key.clone(), VectorClock::new(), Some(b"late".to_vec()), W2)
            .await
            .unwrap();
        let n3 = cluster.backend(2);
        assert_eq!(
            local_value(&n3, &key).await,
            None,
            "n3 had the write before the client was answered"
        );
        let mut delivered = false;
        for _ in 0..200 {
            if local_value(&n3, &key).await.as_deref() == Some(b"late".as_slice()) {
                delivered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(delivered, "the Put in flight after W never reached n3");
        assert_eq!(info(&coordinator, "hinted_writes"), 0);
        cluster.stop().await;
    });
}

/// The `Put` to n3 is lost (the link drops everything): W=2 is met without it, and once its
/// half of the request timeout has passed the write goes to the fallback n4 with a hint.
#[test]
fn a_put_lost_after_w_is_hinted_to_a_fallback() {
    run(async {
        let cut = LinkSpec {
            loss: 1.0,
            ..LinkSpec::default()
        };
        let cluster =
            Cluster::start(&["n1", "n2", "n3", "n4"], 2000, one_way("n1", "n3", cut)).await;
        let key = cluster.key_on(&["n1", "n2", "n3"]);
        let coordinator = cluster.backend(0);
        coordinator
            .write(key.clone(), VectorClock::new(), Some(b"v".to_vec()), W2)
            .await
            .unwrap();
        let mut hinted = false;
        for _ in 0..200 {
            if info(&coordinator, "hinted_writes") == 1 {
                hinted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(hinted, "the lost Put was never hinted");
        assert_eq!(info(&cluster.backend(3), "hints_stored"), 1);
        cluster.stop().await;
    });
}

/// N=3 R=2 with the default `read_fanout = quorum`: n1 asks its own copy and the first other
/// replica, n2, whose link drops everything; after a quarter of the request timeout it asks
/// n3, held in reserve, and the read succeeds.
#[test]
fn a_quorum_read_hedges_to_the_reserve_replica_when_the_asked_one_is_silent() {
    run(async {
        let cut = LinkSpec {
            loss: 1.0,
            ..LinkSpec::default()
        };
        let cluster = Cluster::start(&["n1", "n2", "n3"], 2000, one_way("n1", "n2", cut)).await;
        let (n2, n3) = (NodeId::new("n2"), NodeId::new("n3"));
        let key = cluster.key_where(|list| {
            let position = |node: &NodeId| list.iter().position(|n| n == node);
            position(&n2) < position(&n3)
        });
        // Written through n3, which reaches everyone, at ALL.
        let all = Consistency::Counts {
            read: Some(3),
            write: Some(3),
        };
        cluster
            .backend(2)
            .write(key.clone(), VectorClock::new(), Some(b"v".to_vec()), all)
            .await
            .unwrap();
        let r2 = Consistency::Counts {
            read: Some(2),
            write: Some(2),
        };
        let started = std::time::Instant::now();
        let set = cluster
            .backend(0)
            .read(key.clone(), r2)
            .await
            .unwrap()
            .expect("the key was written");
        let waited = started.elapsed();
        let values: Vec<Vec<u8>> = set
            .versions
            .iter()
            .filter_map(|v| v.value.clone())
            .collect();
        assert_eq!(values, vec![b"v".to_vec()]);
        // n2 never answers: only the hedge, a quarter of the 2 s timeout in, reaches n3.
        assert!(
            waited >= Duration::from_millis(500),
            "answered after {waited:?}, before the hedge"
        );
        cluster.stop().await;
    });
}
