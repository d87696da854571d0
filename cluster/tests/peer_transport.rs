//! Two (or three) peer transports on loopback, with the link emulator between them: calls,
//! emulated delay, partitions, loss, correlation under concurrency, refusals, back-pressure
//! and reconnection. Every test is bounded by a timeout and shuts its transports down.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::net::transport::{
    HandlerFuture, LocalIdentity, PeerHandler, PeerTransport, TransportConfig,
};
use cluster::net::{DelayDistribution, LinkEmulator, LinkSpec, LinkTable, PartitionGroup};
use cluster::protocol::peer::PeerMessage;
use cluster::ring::NodeId;
use cluster::Error;

/// Upper bound on any one test, so a hang fails instead of stalling the suite.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Answers `Ping` with `Pong`, `Get` with the key itself, `Put` with `PutAck`.
struct Echo;

impl PeerHandler for Echo {
    fn handle<'a>(&'a self, _from: &'a NodeId, message: PeerMessage) -> HandlerFuture<'a> {
        Box::pin(async move {
            match message {
                PeerMessage::Ping => Some(PeerMessage::Pong),
                PeerMessage::Get { key } => Some(PeerMessage::GetReply {
                    siblings: Some(key),
                }),
                PeerMessage::Put { .. } => Some(PeerMessage::PutAck),
                _ => None,
            }
        })
    }
}

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("test exceeded its time bound")
}

fn emulator(spec: LinkSpec) -> Arc<LinkEmulator> {
    Arc::new(LinkEmulator::new(
        LinkTable::new(spec.clone(), spec).unwrap(),
    ))
}

fn test_config() -> TransportConfig {
    TransportConfig {
        cluster_name: "test".to_string(),
        connect_timeout_ms: 500,
        request_timeout_ms: 1000,
        backoff_initial_ms: 10,
        backoff_max_ms: 100,
        ..TransportConfig::default()
    }
}

async fn start(name: &str, config: TransportConfig, links: &Arc<LinkEmulator>) -> PeerTransport {
    let local = LocalIdentity {
        node: NodeId::new(name),
        datacenter: "dc1".to_string(),
    };
    PeerTransport::bind(config, local, Arc::clone(links), Arc::new(Echo))
        .await
        .unwrap()
}

fn introduce(a: &PeerTransport, b: &PeerTransport) {
    a.add_peer(b.local().node.clone(), "dc1", b.local_address());
    b.add_peer(a.local().node.clone(), "dc1", a.local_address());
}

async fn pair(links: &Arc<LinkEmulator>) -> (PeerTransport, PeerTransport) {
    let a = start("a", test_config(), links).await;
    let b = start("b", test_config(), links).await;
    introduce(&a, &b);
    (a, b)
}

fn b() -> NodeId {
    NodeId::new("b")
}

const LONG: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(200);

#[tokio::test]
async fn call_gets_the_reply() {
    bounded(async {
        let links = emulator(LinkSpec::default());
        let (a, b_node) = pair(&links).await;
        assert_eq!(
            a.call(&b(), PeerMessage::Ping, LONG).await.unwrap(),
            PeerMessage::Pong
        );
        let put = PeerMessage::Put {
            key: b"k".to_vec(),
            siblings: vec![1, 2, 3],
        };
        assert_eq!(a.call(&b(), put, LONG).await.unwrap(), PeerMessage::PutAck);
        // No reply from the handler becomes an Error message, not a hang.
        let reply = a.call(&b(), PeerMessage::PutAck, LONG).await.unwrap();
        assert!(matches!(reply, PeerMessage::Error { .. }), "{reply:?}");
        a.send(&b(), PeerMessage::Ping).unwrap();
        assert!(matches!(
            a.call(&NodeId::new("nobody"), PeerMessage::Ping, LONG)
                .await,
            Err(Error::UnknownPeer { .. })
        ));
        a.shutdown().await;
        b_node.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn constant_delay_applies_to_request_and_reply() {
    bounded(async {
        let links = emulator(LinkSpec::with_delay(DelayDistribution::Constant {
            ms: 50.0,
        }));
        let (a, b_node) = pair(&links).await;
        let started = Instant::now();
        assert_eq!(
            a.call(&b(), PeerMessage::Ping, LONG).await.unwrap(),
            PeerMessage::Pong
        );
        // Lower bound only: the delay is applied once each way. Timing above it is the host's.
        assert!(started.elapsed() >= Duration::from_millis(100));
        a.shutdown().await;
        b_node.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn partition_times_out_and_healing_restores() {
    bounded(async {
        let links = emulator(LinkSpec::default());
        let (a, b_node) = pair(&links).await;
        a.call(&b(), PeerMessage::Ping, LONG).await.unwrap();
        let cut = links
            .partition(PartitionGroup::nodes(["a"]), PartitionGroup::nodes(["b"]))
            .unwrap();
        let error = a.call(&b(), PeerMessage::Ping, SHORT).await.unwrap_err();
        assert!(matches!(error, Error::PeerTimeout { ref peer, after_ms: 200 } if peer == "b"));
        assert!(error.to_string().contains("did not reply within 200 ms"));
        assert!(links.heal(cut));
        assert_eq!(
            a.call(&b(), PeerMessage::Ping, LONG).await.unwrap(),
            PeerMessage::Pong
        );
        a.shutdown().await;
        b_node.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn total_loss_times_out() {
    bounded(async {
        let links = emulator(LinkSpec::default().loss(1.0));
        let (a, b_node) = pair(&links).await;
        let error = a.call(&b(), PeerMessage::Ping, SHORT).await.unwrap_err();
        assert!(matches!(error, Error::PeerTimeout { .. }), "{error}");
        assert_eq!(a.statistics().messages_dropped, 1);
        a.shutdown().await;
        b_node.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_calls_get_their_own_replies() {
    bounded(async {
        // A spread of delays reorders replies, so only request ids can pair them up.
        let spread = DelayDistribution::Uniform {
            min_ms: 0.0,
            max_ms: 20.0,
        };
        let links = emulator(LinkSpec::with_delay(spread));
        let (a, b_node) = pair(&links).await;
        let a = Arc::new(a);
        let mut calls = tokio::task::JoinSet::new();
        for index in 0..200u32 {
            let a = Arc::clone(&a);
            calls.spawn(async move {
                let key = index.to_be_bytes().to_vec();
                let reply = a
                    .call(&b(), PeerMessage::Get { key: key.clone() }, LONG)
                    .await;
                assert_eq!(
                    reply.unwrap(),
                    PeerMessage::GetReply {
                        siblings: Some(key)
                    }
                );
            });
        }
        while let Some(result) = calls.join_next().await {
            result.unwrap();
        }
        a.shutdown().await;
        b_node.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn unknown_node_and_wrong_cluster_are_refused() {
    bounded(async {
        let links = emulator(LinkSpec::default());
        let a = start("a", test_config(), &links).await;
        let b_node = start("b", test_config(), &links).await;
        // b does not know a.
        a.add_peer(b(), "dc1", b_node.local_address());
        let error = a.call(&b(), PeerMessage::Ping, LONG).await.unwrap_err();
        assert!(matches!(error, Error::PeerUnavailable { .. }), "{error}");
        assert!(error.to_string().contains("not a known peer"), "{error}");

        let other_cluster = TransportConfig {
            cluster_name: "other".to_string(),
            ..test_config()
        };
        let c = start("c", other_cluster, &links).await;
        introduce(&c, &b_node);
        let error = c.call(&b(), PeerMessage::Ping, LONG).await.unwrap_err();
        assert!(error.to_string().contains("belongs to cluster"), "{error}");
        for transport in [a, b_node, c] {
            transport.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn full_queue_fails_fast() {
    bounded(async {
        // Messages wait out a long delay, so the queue fills and stays full.
        let links = emulator(LinkSpec::with_delay(DelayDistribution::Constant {
            ms: 10_000.0,
        }));
        let config = TransportConfig {
            queue_length_max: 4,
            ..test_config()
        };
        let a = start("a", config, &links).await;
        let b_node = start("b", test_config(), &links).await;
        introduce(&a, &b_node);
        for _ in 0..4 {
            a.send(&b(), PeerMessage::Ping).unwrap();
        }
        let error = a.send(&b(), PeerMessage::Ping).unwrap_err();
        assert!(
            matches!(error, Error::PeerQueueFull { capacity: 4, .. }),
            "{error}"
        );
        let started = Instant::now();
        let error = a.call(&b(), PeerMessage::Ping, LONG).await.unwrap_err();
        assert!(matches!(error, Error::PeerQueueFull { .. }), "{error}");
        assert!(
            started.elapsed() < LONG,
            "a full queue must not wait for the timeout"
        );
        a.shutdown().await;
        b_node.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_peer_that_comes_back_is_reconnected() {
    bounded(async {
        let links = emulator(LinkSpec::default());
        let (a, b_node) = pair(&links).await;
        a.call(&b(), PeerMessage::Ping, LONG).await.unwrap();
        let address = b_node.local_address();
        b_node.shutdown().await;
        drop(b_node);
        let error = a.call(&b(), PeerMessage::Ping, SHORT).await.unwrap_err();
        assert!(matches!(error, Error::PeerTimeout { .. }), "{error}");

        let config = TransportConfig {
            listen_address: address,
            ..test_config()
        };
        let b_again = start("b", config, &links).await;
        b_again.add_peer(NodeId::new("a"), "dc1", a.local_address());
        // Bounded retries: the first attempts may land on the dead connection or wait out
        // the backoff.
        let mut reply = None;
        for _ in 0..20 {
            if let Ok(message) = a.call(&b(), PeerMessage::Ping, SHORT).await {
                reply = Some(message);
                break;
            }
        }
        assert_eq!(reply, Some(PeerMessage::Pong));
        a.shutdown().await;
        b_again.shutdown().await;
    })
    .await;
}

fn with_secret(secret: Option<&str>) -> TransportConfig {
    TransportConfig {
        cluster_secret: secret.map(str::to_string),
        ..test_config()
    }
}

async fn secret_pair(
    links: &Arc<LinkEmulator>,
    a_secret: Option<&str>,
    b_secret: Option<&str>,
) -> (PeerTransport, PeerTransport) {
    let a = start("a", with_secret(a_secret), links).await;
    let b_node = start("b", with_secret(b_secret), links).await;
    introduce(&a, &b_node);
    (a, b_node)
}

#[tokio::test]
async fn peers_with_the_cluster_secret_exchange_messages() {
    bounded(async {
        let links = emulator(LinkSpec::default());
        let (a, b_node) = secret_pair(&links, Some("s3cret"), Some("s3cret")).await;
        assert_eq!(
            a.call(&b(), PeerMessage::Ping, LONG).await.unwrap(),
            PeerMessage::Pong
        );
        // Both directions, each with its own challenge.
        assert_eq!(
            b_node
                .call(&NodeId::new("a"), PeerMessage::Ping, LONG)
                .await
                .unwrap(),
            PeerMessage::Pong
        );
        a.shutdown().await;
        b_node.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_peer_with_the_wrong_secret_is_refused() {
    bounded(async {
        let links = emulator(LinkSpec::default());
        let (a, b_node) = secret_pair(&links, Some("guess"), Some("s3cret")).await;
        let error = a.call(&b(), PeerMessage::Ping, LONG).await.unwrap_err();
        assert!(matches!(error, Error::PeerUnavailable { .. }), "{error}");
        assert!(
            error.to_string().contains("authentication failed"),
            "{error}"
        );
        a.shutdown().await;
        b_node.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_peer_without_a_secret_is_refused_by_one_that_requires_it() {
    bounded(async {
        let links = emulator(LinkSpec::default());
        let (a, b_node) = secret_pair(&links, None, Some("s3cret")).await;
        let error = a.call(&b(), PeerMessage::Ping, LONG).await.unwrap_err();
        assert!(
            error.to_string().contains("requires a cluster secret"),
            "{error}"
        );
        a.shutdown().await;
        b_node.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_node_with_a_secret_does_not_talk_to_a_peer_without_one() {
    bounded(async {
        let links = emulator(LinkSpec::default());
        let (a, b_node) = secret_pair(&links, Some("s3cret"), None).await;
        let error = a.call(&b(), PeerMessage::Ping, LONG).await.unwrap_err();
        assert!(error.to_string().contains("no AuthChallenge"), "{error}");
        a.shutdown().await;
        b_node.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_unknown_node_is_refused_even_with_the_right_secret() {
    bounded(async {
        let links = emulator(LinkSpec::default());
        let a = start("a", with_secret(Some("s3cret")), &links).await;
        let b_node = start("b", with_secret(Some("s3cret")), &links).await;
        // b does not know a.
        a.add_peer(b(), "dc1", b_node.local_address());
        let error = a.call(&b(), PeerMessage::Ping, LONG).await.unwrap_err();
        assert!(error.to_string().contains("not a known peer"), "{error}");
        a.shutdown().await;
        b_node.shutdown().await;
    })
    .await;
}

/// Reads frames off `stream` into `buffer` until one is whole; `None` on end of stream or
/// after `wait` with nothing whole.
async fn next_frame(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
    wait: Duration,
) -> Option<cluster::protocol::peer::Frame> {
    use tokio::io::AsyncReadExt;
    let limit = 1 << 20;
    loop {
        if let Some((frame, used)) = cluster::protocol::peer::decode_frame(buffer, limit).unwrap() {
            buffer.drain(..used);
            return Some(frame);
        }
        match tokio::time::timeout(wait, stream.read_buf(buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_listener_without_the_secret_gets_no_data_from_a_caller() {
    use cluster::protocol::peer::{encode_frame, Frame, FrameKind};
    use tokio::io::AsyncWriteExt;
    bounded(async {
        let links = emulator(LinkSpec::default());
        let a = start("a", with_secret(Some("s3cret")), &links).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        a.add_peer(b(), "dc1", listener.local_addr().unwrap());
        // An impostor at b's address: it challenges, then answers a's challenge with a guess.
        let impostor = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = Vec::new();
            let mut seen = Vec::new();
            let hello = next_frame(&mut stream, &mut buffer, LONG).await.unwrap();
            seen.push(hello.message.name());
            let send = |message| {
                encode_frame(
                    &Frame {
                        kind: FrameKind::OneWay,
                        request_id: 0,
                        message,
                    },
                    1 << 20,
                )
                .unwrap()
            };
            let challenge = send(PeerMessage::AuthChallenge { nonce: vec![0; 32] });
            stream.write_all(&challenge).await.unwrap();
            for _ in 0..2 {
                let frame = next_frame(&mut stream, &mut buffer, LONG).await.unwrap();
                seen.push(frame.message.name());
            }
            let guess = send(PeerMessage::AuthProof { proof: vec![0; 32] });
            stream.write_all(&guess).await.unwrap();
            while let Some(frame) = next_frame(&mut stream, &mut buffer, SHORT * 2).await {
                seen.push(frame.message.name());
            }
            seen
        });
        let error = a.call(&b(), PeerMessage::Ping, LONG).await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("failed the cluster secret check"),
            "{error}"
        );
        let seen = impostor.await.unwrap();
        assert_eq!(seen, ["Hello", "AuthProof", "AuthChallenge"]);
        a.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn deadline_calls_are_answered_or_failed_by_the_sweep() {
    bounded(async {
        let links = emulator(LinkSpec::default());
        let (a, b_node) = pair(&links).await;
        let deadline = tokio::time::Instant::now() + LONG;
        let call = a
            .start_call(&b(), PeerMessage::Ping, deadline, LONG)
            .unwrap();
        assert_eq!(call.await.unwrap(), PeerMessage::Pong);
        assert!(matches!(
            a.start_call(&NodeId::new("nobody"), PeerMessage::Ping, deadline, LONG),
            Err(Error::UnknownPeer { .. })
        ));

        let lossy = emulator(LinkSpec {
            loss: 1.0,
            ..LinkSpec::default()
        });
        let (c, d) = (
            start("c", test_config(), &lossy).await,
            start("d", test_config(), &lossy).await,
        );
        introduce(&c, &d);
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + SHORT;
        let call = c
            .start_call(&NodeId::new("d"), PeerMessage::Ping, deadline, SHORT)
            .unwrap();
        match call.await {
            Err(Error::PeerTimeout { peer, after_ms }) => {
                assert_eq!((peer.as_str(), after_ms), ("d", 200));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(started.elapsed() >= SHORT, "{:?}", started.elapsed());
        for transport in [a, b_node, c, d] {
            transport.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn detached_calls_hand_their_reply_or_their_timeout_to_a_function() {
    bounded(async {
        let detach = |call: cluster::net::transport::DeadlineCall| {
            let (sender, receiver) = tokio::sync::oneshot::channel();
            call.detach(Box::new(move |result| {
                let _ = sender.send(result);
            }));
            receiver
        };
        let links = emulator(LinkSpec::default());
        let (a, b_node) = pair(&links).await;
        let deadline = tokio::time::Instant::now() + LONG;
        let call = a
            .start_call(&b(), PeerMessage::Ping, deadline, LONG)
            .unwrap();
        let reply = detach(call).await.expect("the function ran");
        assert_eq!(reply.unwrap(), PeerMessage::Pong);

        let lossy = emulator(LinkSpec {
            loss: 1.0,
            ..LinkSpec::default()
        });
        let (c, d) = (
            start("c", test_config(), &lossy).await,
            start("d", test_config(), &lossy).await,
        );
        introduce(&c, &d);
        let deadline = tokio::time::Instant::now() + SHORT;
        let call = c
            .start_call(&NodeId::new("d"), PeerMessage::Ping, deadline, SHORT)
            .unwrap();
        let reply = detach(call).await.expect("the function ran");
        assert!(matches!(reply, Err(Error::PeerTimeout { .. })), "{reply:?}");
        for transport in [a, b_node, c, d] {
            transport.shutdown().await;
        }
    })
    .await;
}
