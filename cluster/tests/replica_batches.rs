//! The replica's inline batches (see `cluster::net::transport::InlineHandler`): a batch of
//! `Put`s is answered only after one commit of the commit log, a failed commit turns the
//! batch's write acknowledgements into errors, and what a replica acknowledged survives a
//! crash (a copy of its files taken while it runs, as the OS holds them).

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::coordinator::ReplicaHandler;
use cluster::net::transport::{
    HandlerFuture, InlineHandler, LocalIdentity, PeerHandler, PeerTransport, TransportConfig,
};
use cluster::net::{LinkEmulator, LinkSpec, LinkTable, SystemClock};
use cluster::protocol::peer::PeerMessage;
use cluster::ring::NodeId;
use cluster::store::LocalStore;
use cluster::version::{SiblingSet, VectorClock, VersionConfig};

const TEST_TIMEOUT: Duration = Duration::from_secs(30);

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("test exceeded its time bound")
}

/// Answers nothing: every request the inline handler takes must not reach it.
struct Nothing;

impl PeerHandler for Nothing {
    fn handle<'a>(&'a self, _from: &'a NodeId, _message: PeerMessage) -> HandlerFuture<'a> {
        Box::pin(async { None })
    }
}

/// Takes `Put` and `Get`; records which written keys were committed, and fails its commits
/// while `failing` is set.
#[derive(Default)]
struct Recorder {
    uncommitted: Mutex<Vec<Vec<u8>>>,
    committed: Mutex<HashSet<Vec<u8>>>,
    commits: AtomicUsize,
    failing: AtomicBool,
}

impl InlineHandler for Recorder {
    fn takes(&self, message: &PeerMessage) -> bool {
        matches!(message, PeerMessage::Put { .. } | PeerMessage::Get { .. })
    }

    fn serve(&self, _from: &NodeId, message: PeerMessage) -> (PeerMessage, bool) {
        match message {
            PeerMessage::Put { key, .. } => {
                self.uncommitted.lock().unwrap().push(key);
                (PeerMessage::PutAck, true)
            }
            PeerMessage::Get { key } => (
                PeerMessage::GetReply {
                    siblings: Some(key),
                },
                false,
            ),
            other => (
                PeerMessage::Error {
                    message: format!("unexpected {}", other.name()),
                },
                false,
            ),
        }
    }

    fn commit(&self) -> cluster::Result<()> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        let keys: Vec<Vec<u8>> = self.uncommitted.lock().unwrap().drain(..).collect();
        if self.failing.load(Ordering::SeqCst) {
            return Err(cluster::Error::Stopped("injected log failure".to_string()));
        }
        self.committed.lock().unwrap().extend(keys);
        Ok(())
    }
}

fn emulator() -> Arc<LinkEmulator> {
    let spec = LinkSpec::default();
    Arc::new(LinkEmulator::new(
        LinkTable::new(spec.clone(), spec).unwrap(),
    ))
}

async fn start(name: &str, handler: Arc<dyn PeerHandler>) -> PeerTransport {
    let config = TransportConfig {
        cluster_name: "test".to_string(),
        connect_timeout_ms: 2000,
        request_timeout_ms: 10_000,
        ..TransportConfig::default()
    };
    let local = LocalIdentity {
        node: NodeId::new(name),
        datacenter: "dc1".to_string(),
    };
    PeerTransport::bind(config, local, emulator(), handler)
        .await
        .unwrap()
}

async fn pair(inline: Arc<dyn InlineHandler>) -> (Arc<PeerTransport>, Arc<PeerTransport>) {
    let a = Arc::new(start("a", Arc::new(Nothing)).await);
    let b = Arc::new(start("b", Arc::new(Nothing)).await);
    assert!(b.set_inline_handler(inline));
    a.add_peer(NodeId::new("b"), "dc1", b.local_address());
    b.add_peer(NodeId::new("a"), "dc1", a.local_address());
    (a, b)
}

/// Sends `count` concurrent `Put`s (keys `k0`..) from `a` to `b`; the replies in key order.
async fn put_many(a: &Arc<PeerTransport>, count: usize) -> Vec<(Vec<u8>, PeerMessage)> {
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let a = Arc::clone(a);
        tasks.spawn(async move {
            let key = format!("k{index}").into_bytes();
            let message = PeerMessage::Put {
                key: key.clone(),
                siblings: vec![1; 1024],
            };
            let reply = a
                .call(&NodeId::new("b"), message, Duration::from_secs(10))
                .await
                .unwrap();
            (index, key, reply)
        });
    }
    let mut replies = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        replies.push(joined.unwrap());
    }
    replies.sort_by_key(|(index, _, _)| *index);
    replies
        .into_iter()
        .map(|(_, key, reply)| (key, reply))
        .collect()
}

#[tokio::test]
async fn write_acknowledgements_leave_only_after_their_commit() {
    bounded(async {
        let recorder = Arc::new(Recorder::default());
        let (a, b) = pair(Arc::clone(&recorder) as Arc<dyn InlineHandler>).await;
        let count = 200;
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..count {
            let (a, recorder) = (Arc::clone(&a), Arc::clone(&recorder));
            tasks.spawn(async move {
                let key = format!("k{index}").into_bytes();
                let message = PeerMessage::Put {
                    key: key.clone(),
                    siblings: vec![1; 1024],
                };
                let reply = a
                    .call(&NodeId::new("b"), message, Duration::from_secs(10))
                    .await
                    .unwrap();
                assert_eq!(reply, PeerMessage::PutAck);
                // The acknowledgement was queued after a commit that covered this write.
                assert!(
                    recorder.committed.lock().unwrap().contains(&key),
                    "k{index} was acknowledged before its commit"
                );
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap();
        }
        let commits = recorder.commits.load(Ordering::SeqCst);
        assert!((1..=count).contains(&commits), "{commits} commits");
        eprintln!("{count} concurrent Puts, {commits} commits");
        // A request the inline handler does not take still reaches the handler chain.
        let reply = a
            .call(
                &NodeId::new("b"),
                PeerMessage::Ping,
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert!(
            matches!(reply, PeerMessage::Error { .. }),
            "Ping went to the handler chain, which answers nothing: {reply:?}"
        );
        a.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_failed_commit_acknowledges_no_write_but_reads_are_answered() {
    bounded(async {
        let recorder = Arc::new(Recorder::default());
        recorder.failing.store(true, Ordering::SeqCst);
        let (a, b) = pair(Arc::clone(&recorder) as Arc<dyn InlineHandler>).await;
        for (key, reply) in put_many(&a, 20).await {
            match reply {
                PeerMessage::Error { message } => assert!(
                    message.contains("commit log failed") && message.contains("injected"),
                    "{message}"
                ),
                other => panic!("{key:?} was acknowledged despite the failed commit: {other:?}"),
            }
        }
        let reply = a
            .call(
                &NodeId::new("b"),
                PeerMessage::Get { key: b"r".to_vec() },
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(
            reply,
            PeerMessage::GetReply {
                siblings: Some(b"r".to_vec())
            }
        );
        recorder.failing.store(false, Ordering::SeqCst);
        for (key, reply) in put_many(&a, 5).await {
            assert_eq!(reply, PeerMessage::PutAck, "{key:?}");
        }
        a.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

/// Copies `from` (recursively) into `to`: the files as the OS holds them now, which is what
/// a restart after a crash of the process would find.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn open(directory: &Path) -> Arc<LocalStore> {
    Arc::new(
        LocalStore::open(
            directory,
            engine::Options::default(),
            VersionConfig::default(),
        )
        .unwrap(),
    )
}

#[test]
fn a_replica_batch_is_durable_once_committed() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path());
    assert!(store.defers_commits(), "the default log policy is lazy");
    let replica = ReplicaHandler::new(Arc::clone(&store), "b", Arc::new(SystemClock::new()));
    let source = tempfile::tempdir().unwrap();
    let minter = open(source.path());
    let from = NodeId::new("a");
    let count = 50;
    for index in 0..count {
        let key = format!("k{index}").into_bytes();
        let version = minter
            .write_local(
                &key,
                &VectorClock::new(),
                Some(vec![index as u8; 1024]),
                "a",
                1,
            )
            .unwrap();
        let message = PeerMessage::Put {
            key,
            siblings: SiblingSet::single(version).encode(),
        };
        assert!(replica.takes(&message));
        let (reply, writes) = replica.serve(&from, message);
        assert_eq!(reply, PeerMessage::PutAck);
        assert!(writes);
    }
    // Served but not committed: the records are still queued in the process.
    let before = tempfile::tempdir().unwrap();
    copy_tree(directory.path(), before.path());
    let crashed = open(before.path());
    assert!(crashed.read(b"k0").unwrap().is_none());
    drop(crashed);
    replica.commit().unwrap();
    let after = tempfile::tempdir().unwrap();
    copy_tree(directory.path(), after.path());
    let recovered = open(after.path());
    for index in 0..count {
        let key = format!("k{index}").into_bytes();
        let set = recovered
            .read(&key)
            .unwrap()
            .expect("a committed write was lost");
        assert_eq!(set.versions[0].value, Some(vec![index as u8; 1024]));
    }
    // A `Get` is served inline too and acknowledges no write.
    let (reply, writes) = replica.serve(
        &from,
        PeerMessage::Get {
            key: b"k1".to_vec(),
        },
    );
    assert!(matches!(reply, PeerMessage::GetReply { siblings: Some(_) }));
    assert!(!writes);
}
