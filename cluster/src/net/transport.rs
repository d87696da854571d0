//! The peer transport: node-to-node messages over TCP, every one of them passed through the
//! [`LinkEmulator`].
//!
//! Connections are one-way. Each node keeps one persistent outbound connection per peer and
//! writes all its messages to that peer on it: requests, one-way messages and the replies
//! to that peer's requests. Inbound connections are only read. So a reply from B to A travels
//! on B's connection to A, which is why both must list each other as peers (a node refuses
//! connections from node ids not in its table). One-way connections keep the emulation
//! simple: every message a node sends leaves through one writer per link, where its verdict
//! is applied.
//!
//! Life of a message from this node to peer P:
//! 1. [`PeerTransport::call`] or [`PeerTransport::send`] encodes the frame (checking the
//!    frame limit), then asks the emulator for a verdict for the link (this node → P), drawn
//!    from this transport's seeded random stream. `Drop` means the message is counted and
//!    forgotten: a call then times out, as on a real lossy network.
//! 2. `Deliver { delay }` puts it on P's bounded outbound queue, due `delay` from now. A full
//!    queue fails the send at once with [`Error::PeerQueueFull`].
//! 3. P's writer task keeps queued messages ordered by due time and writes each when due,
//!    connecting first if needed (with bounded exponential backoff). A message still not
//!    written `request_timeout_ms` after it was due is discarded.
//!
//! Reordering: messages on one link are delivered in order of due time, not of sending, so
//! with a variable delay a later message may overtake an earlier one, as on a real network
//! whose packets take independent paths. Equal delays keep sending order. The protocol never
//! relies on order: requests are matched to replies by request id.
//!
//! The `Hello` that opens a connection and the refusal sent to a rejected one are part of
//! connecting, like a TCP handshake, and are not emulated.

mod auth;
mod config;
mod inbound;
mod outbound;
mod pending;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use config::TransportConfig;
use outbound::{FrameBytes, Outgoing, Writer};
use pending::{sweep_deadlines, ForgetPending, Pending, Reply, RequestIds};
pub use pending::{DeadlineCall, OnReply};

use super::{Endpoint, LinkEmulator, MessageKind, Verdict};
use crate::protocol::peer::{encode_frame, encode_message_frame, Frame, FrameKind, PeerMessage};
use crate::ring::NodeId;
use crate::{Error, Result};

/// A future returned by [`PeerHandler::handle`].
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Option<PeerMessage>> + Send + 'a>>;

/// What a node does with the messages peers send it. A boxed future rather than the
/// `async-trait` crate: one signature, no macro, no extra dependency.
pub trait PeerHandler: Send + Sync + 'static {
    /// Handles one request or one-way message from `from`. The returned message is the reply
    /// to a request (`None` replies with an `Error` message); it is ignored for one-way
    /// messages.
    fn handle<'a>(&'a self, from: &'a NodeId, message: PeerMessage) -> HandlerFuture<'a>;
}

/// Serves the frequent data requests (`Put`, `Get`, ...) right on the connection's reader,
/// without a task per request, for a whole batch of frames at once: every request the
/// reader finds buffered is served in turn, then [`InlineHandler::commit`] runs once, then
/// the replies are queued together. A replica then writes its commit log once per batch of
/// `Put`s instead of once per `Put`, and no task is spawned or woken per request.
///
/// Requests it does not take (and every request before it is set) go to the
/// [`PeerHandler`] as before.
pub trait InlineHandler: Send + Sync + 'static {
    /// Whether `message` is served inline. Only requests that never wait on anything but
    /// the local store (and not on an fsync) may be: the reader serves nothing else meanwhile.
    fn takes(&self, message: &PeerMessage) -> bool;

    /// Serves one request taken by [`InlineHandler::takes`]: the reply, and whether it
    /// acknowledges a write whose log record may still be deferred (it is sent only after
    /// [`InlineHandler::commit`] succeeds).
    fn serve(&self, from: &NodeId, message: PeerMessage) -> (PeerMessage, bool);

    /// Makes every deferred write served so far durable per the commit-log policy. On an
    /// error the batch's write acknowledgements become `Error` replies.
    fn commit(&self) -> Result<()>;
}

/// A request encoded once, for calls to several peers ([`PeerTransport::encode_request`]).
#[derive(Clone, Debug)]
pub struct EncodedRequest {
    /// The frame, shared by every call; each sends a header of its own with its request id.
    bytes: Arc<Vec<u8>>,
    kind: MessageKind,
    bypasses_emulator: bool,
}

/// This node, as its peers and the link emulator see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalIdentity {
    /// This node's id.
    pub node: NodeId,
    /// The datacenter this node runs in.
    pub datacenter: String,
}

/// Counters for tests, admin commands and traces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStatistics {
    /// Messages the link emulator dropped.
    pub messages_dropped: u64,
    /// Messages queued for delivery.
    pub messages_queued: u64,
}

/// A running peer transport. Stop it with [`PeerTransport::shutdown`]; dropping it also
/// stops every task, without waiting for them.
pub struct PeerTransport {
    shared: Arc<Shared>,
    local_address: SocketAddr,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    /// Fails calls past their deadline ([`PeerTransport::start_call`]).
    sweeper: Mutex<Option<JoinHandle<()>>>,
}

/// State shared by the handle, the acceptor, connection readers and peer writers.
struct Shared {
    config: TransportConfig,
    local: LocalIdentity,
    emulator: Arc<LinkEmulator>,
    handler: Arc<dyn PeerHandler>,
    /// Set once, right after binding (see [`PeerTransport::set_inline_handler`]).
    inline: OnceLock<Arc<dyn InlineHandler>>,
    peers: Mutex<HashMap<NodeId, Peer>>,
    /// Peers whose `unreachable` flag is set: while 0 (nearly always), a request asks no
    /// peer's flag (no lock on the peer map per request).
    unreachable_peers: AtomicUsize,
    pending: Mutex<HashMap<u64, Pending, RequestIds>>,
    next_request_id: AtomicU64,
    next_sequence: AtomicU64,
    rng: Mutex<StdRng>,
    messages_dropped: AtomicU64,
    messages_queued: AtomicU64,
    /// While the transport lives, messages to this node sent in this process are timed
    /// (`LINK.STATS` transit).
    _in_process: crate::net::links::stats::LocalNode,
}

struct Peer {
    datacenter: String,
    queue: mpsc::UnboundedSender<Outgoing>,
    /// Messages queued or waiting out their delay; bounds the otherwise unbounded channel.
    queued: Arc<AtomicUsize>,
    /// Set by the writer while the peer, once connected, refuses new connections (see
    /// [`PeerTransport::unreachable`]).
    unreachable: Arc<AtomicBool>,
    writer: JoinHandle<()>,
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves the maps valid.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// FNV-1a: a stable hash of the node id for the verdict seed (std's hasher may change).
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl PeerTransport {
    /// Starts listening on `config.listen_address`. Peers are added with
    /// [`PeerTransport::add_peer`]; connections from nodes not added are refused.
    pub async fn bind(
        config: TransportConfig,
        local: LocalIdentity,
        emulator: Arc<LinkEmulator>,
        handler: Arc<dyn PeerHandler>,
    ) -> Result<PeerTransport> {
        config.validate()?;
        let listener = tokio::net::TcpListener::bind(config.listen_address)
            .await
            .map_err(|source| Error::Network {
                what: format!("binding {}", config.listen_address),
                source,
            })?;
        let local_address = listener.local_addr().map_err(|source| Error::Network {
            what: "reading the listen address".to_string(),
            source,
        })?;
        let seed = config.rng_seed ^ stable_hash(local.node.as_str());
        let in_process = crate::net::links::stats::register_local(local.node.as_str());
        let shared = Arc::new(Shared {
            config,
            local,
            emulator,
            handler,
            inline: OnceLock::new(),
            peers: Mutex::new(HashMap::new()),
            // Room for the calls of many pipelined clients: fewer rehashes of a busy table.
            pending: Mutex::new(HashMap::with_capacity_and_hasher(4096, RequestIds)),
            next_request_id: AtomicU64::new(1),
            next_sequence: AtomicU64::new(0),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            messages_dropped: AtomicU64::new(0),
            messages_queued: AtomicU64::new(0),
            unreachable_peers: AtomicUsize::new(0),
            _in_process: in_process,
        });
        let acceptor = tokio::spawn(inbound::accept_loop(Arc::clone(&shared), listener));
        let sweeper = tokio::spawn(sweep_deadlines(Arc::downgrade(&shared)));
        Ok(PeerTransport {
            shared,
            local_address,
            acceptor: Mutex::new(Some(acceptor)),
            sweeper: Mutex::new(Some(sweeper)),
        })
    }

    /// Serves the requests `inline` takes on the connection readers from now on (see
    /// [`InlineHandler`]). Set once; later calls are ignored and return `false`.
    pub fn set_inline_handler(&self, inline: Arc<dyn InlineHandler>) -> bool {
        self.shared.inline.set(inline).is_ok()
    }

    /// The address the transport listens on (with the OS-chosen port filled in).
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// This node's identity.
    pub fn local(&self) -> &LocalIdentity {
        &self.shared.local
    }

    /// Adds `node` (or replaces it, dropping what was queued for it) and starts its writer;
    /// the connection is made when the first message is due.
    pub fn add_peer(&self, node: NodeId, datacenter: impl Into<String>, address: SocketAddr) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let unreachable = Arc::new(AtomicBool::new(false));
        let writer = Writer::new(
            Arc::clone(&self.shared),
            node.clone(),
            address,
            Arc::clone(&queued),
            Arc::clone(&unreachable),
        );
        let peer = Peer {
            datacenter: datacenter.into(),
            queue,
            queued,
            unreachable,
            writer: tokio::spawn(writer.run(receiver)),
        };
        let replaced = lock(&self.shared.peers).insert(node, peer);
        if let Some(old) = replaced {
            old.writer.abort();
            self.forget_unreachable(&old);
        }
    }

    /// Removes `node`: its queue is dropped and its connection closed. Returns whether it was
    /// a peer.
    pub fn remove_peer(&self, node: &NodeId) -> bool {
        let removed = lock(&self.shared.peers).remove(node);
        match removed {
            Some(peer) => {
                peer.writer.abort();
                self.forget_unreachable(&peer);
                true
            }
            None => false,
        }
    }

    /// Whether any peer is [`PeerTransport::unreachable`]: one atomic load, so a request
    /// asks about its replicas only while some peer is.
    pub fn any_unreachable(&self) -> bool {
        self.shared.unreachable_peers.load(Ordering::Relaxed) > 0
    }

    /// Takes a peer that is no longer served out of the count of unreachable ones.
    fn forget_unreachable(&self, peer: &Peer) {
        if peer.unreachable.swap(false, Ordering::Relaxed) {
            self.shared
                .unreachable_peers
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether `node` was connected once and its last connection attempt since failed (its
    /// process is gone: connection refused or no answer): a firmer sign than gossip's, and
    /// an earlier one, that a request to it now would wait out its timeout. Cleared by the
    /// next connection that succeeds (the writer keeps trying while anything is sent to
    /// it, gossip included). Unknown peers are not reported.
    pub fn unreachable(&self, node: &NodeId) -> bool {
        if !self.any_unreachable() {
            return false;
        }
        lock(&self.shared.peers)
            .get(node)
            .is_some_and(|peer| peer.unreachable.load(Ordering::Relaxed))
    }

    /// The peers' ids, sorted.
    pub fn peers(&self) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = lock(&self.shared.peers).keys().cloned().collect();
        peers.sort();
        peers
    }

    /// Sends a request and waits up to `timeout` for its reply. A remote failure arrives as
    /// an `Ok(PeerMessage::Error { .. })`; the `Err` cases are the transport's own: unknown
    /// peer, full queue, refusal, timeout.
    pub async fn call(
        &self,
        to: &NodeId,
        message: PeerMessage,
        timeout: Duration,
    ) -> Result<PeerMessage> {
        match tokio::time::timeout(timeout, self.call_unbounded(to, message)).await {
            Ok(result) => result,
            Err(_) => Err(Error::PeerTimeout {
                peer: to.to_string(),
                after_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// [`PeerTransport::call`] without a timeout of its own, for callers that bound the
    /// wait themselves (a quorum read waits for all its calls until one deadline): one
    /// timer fewer per message. The call is forgotten when the future is dropped.
    pub async fn call_unbounded(&self, to: &NodeId, message: PeerMessage) -> Result<PeerMessage> {
        self.await_reply(to, |shared, request_id| {
            shared.enqueue(to, FrameKind::Request, request_id, message)
        })
        .await
    }

    /// The largest frame payload this transport sends or accepts (`frame_size_bytes_max`).
    pub fn frame_size_bytes_max(&self) -> usize {
        self.shared.config.frame_size_bytes_max
    }

    /// Encodes a request once for several calls ([`PeerTransport::call_encoded`]): a
    /// write's `Put` carries the same bytes to every replica. Fails as a call would when
    /// the frame exceeds `frame_size_bytes_max`.
    pub fn encode_request(&self, message: &PeerMessage) -> Result<EncodedRequest> {
        Ok(EncodedRequest {
            bytes: Arc::new(encode_message_frame(
                FrameKind::Request,
                0,
                message,
                self.shared.config.frame_size_bytes_max,
            )?),
            kind: MessageKind::of(message),
            bypasses_emulator: message.bypasses_link_emulator(),
        })
    }

    /// [`PeerTransport::call`] of a request encoded beforehand: the same verdict from the
    /// link emulator, queue and timeout; only the encoding is skipped.
    pub async fn call_encoded(
        &self,
        to: &NodeId,
        request: &EncodedRequest,
        timeout: Duration,
    ) -> Result<PeerMessage> {
        let call = self.await_reply(to, |shared, request_id| {
            shared.enqueue_request(to, request_id, request)
        });
        match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(Error::PeerTimeout {
                peer: to.to_string(),
                after_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Sends a request whose wait ends at `deadline` without a timer of its own: the
    /// transport's sweep (every 20 ms) fails it with [`Error::PeerTimeout`] (reporting
    /// `timeout`) once the deadline has passed. The returned call can be awaited, or
    /// detached ([`DeadlineCall::detach`]) to hand its reply to a function instead.
    /// Enqueue failures (unknown peer, full queue) are returned at once.
    pub fn start_call(
        &self,
        to: &NodeId,
        message: PeerMessage,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<DeadlineCall> {
        self.start(to, deadline, timeout, |shared, request_id| {
            shared.enqueue(to, FrameKind::Request, request_id, message)
        })
    }

    /// [`PeerTransport::start_call`] of a request encoded beforehand.
    pub fn start_call_encoded(
        &self,
        to: &NodeId,
        request: &EncodedRequest,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<DeadlineCall> {
        self.start(to, deadline, timeout, |shared, request_id| {
            shared.enqueue_request(to, request_id, request)
        })
    }

    fn start(
        &self,
        to: &NodeId,
        deadline: Instant,
        timeout: Duration,
        enqueue: impl FnOnce(&Shared, u64) -> Result<()>,
    ) -> Result<DeadlineCall> {
        let request_id = self.shared.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (reply, receiver) = oneshot::channel();
        let after_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let pending = Pending {
            peer: to.clone(),
            reply: Reply::Waiting(reply),
            deadline: Some((deadline, after_ms)),
        };
        lock(&self.shared.pending).insert(request_id, pending);
        let call = DeadlineCall {
            shared: Arc::clone(&self.shared),
            peer: to.clone(),
            request_id,
            receiver: Some(receiver),
        };
        // On an error the call is dropped, which forgets the pending entry.
        enqueue(&self.shared, request_id)?;
        Ok(call)
    }

    async fn await_reply(
        &self,
        to: &NodeId,
        enqueue: impl FnOnce(&Shared, u64) -> Result<()>,
    ) -> Result<PeerMessage> {
        let request_id = self.shared.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (reply, receiver) = oneshot::channel();
        let pending = Pending {
            peer: to.clone(),
            reply: Reply::Waiting(reply),
            deadline: None,
        };
        lock(&self.shared.pending).insert(request_id, pending);
        // Removes the entry however this future ends: error, timeout, or the caller dropping it.
        let _forget = ForgetPending {
            shared: &self.shared,
            request_id,
        };
        enqueue(&self.shared, request_id)?;
        match receiver.await {
            Ok(result) => result,
            Err(_) => Err(Error::PeerUnavailable {
                peer: to.to_string(),
                detail: "the transport shut down".to_string(),
            }),
        }
    }

    /// [`PeerTransport::call`] with the configured `request_timeout_ms`.
    pub async fn call_default(&self, to: &NodeId, message: PeerMessage) -> Result<PeerMessage> {
        self.call(to, message, self.shared.config.request_timeout())
            .await
    }

    /// Sends a one-way message. `Ok` means queued (or dropped by the emulator), not received.
    pub fn send(&self, to: &NodeId, message: PeerMessage) -> Result<()> {
        self.shared.enqueue(to, FrameKind::OneWay, 0, message)
    }

    /// Counters since the transport started.
    pub fn statistics(&self) -> TransportStatistics {
        TransportStatistics {
            messages_dropped: self.shared.messages_dropped.load(Ordering::Relaxed),
            messages_queued: self.shared.messages_queued.load(Ordering::Relaxed),
        }
    }

    /// Stops listening, closes every connection, stops every task and fails pending calls;
    /// returns once all tasks have ended.
    pub async fn shutdown(&self) {
        let acceptor = lock(&self.acceptor).take();
        if let Some(acceptor) = acceptor {
            acceptor.abort();
            // Aborting the acceptor drops its set of connection tasks, which aborts them.
            let _ = acceptor.await;
        }
        let sweeper = lock(&self.sweeper).take();
        if let Some(sweeper) = sweeper {
            sweeper.abort();
            let _ = sweeper.await;
        }
        let peers: Vec<Peer> = lock(&self.shared.peers)
            .drain()
            .map(|(_, peer)| peer)
            .collect();
        for peer in peers {
            peer.writer.abort();
            let _ = peer.writer.await;
        }
        // Waiting calls see their sender dropped; detached ones are forgotten (a node
        // shutting down hands nothing off any more).
        let pending: Vec<Pending> = lock(&self.shared.pending)
            .drain()
            .map(|(_, pending)| pending)
            .collect();
        drop(pending);
    }
}

impl Drop for PeerTransport {
    fn drop(&mut self) {
        if let Some(acceptor) = lock(&self.acceptor).take() {
            acceptor.abort();
        }
        if let Some(sweeper) = lock(&self.sweeper).take() {
            sweeper.abort();
        }
        for (_, peer) in lock(&self.shared.peers).drain() {
            peer.writer.abort();
        }
    }
}

impl Shared {
    /// Encodes a frame, draws its verdict and queues it for `to` (see the module docs).
    fn enqueue(
        &self,
        to: &NodeId,
        kind: FrameKind,
        request_id: u64,
        message: PeerMessage,
    ) -> Result<()> {
        // Taken by value: cloning a message to encode it copied every value once more.
        let bypasses_emulator = message.bypasses_link_emulator();
        let message_kind = MessageKind::of(&message);
        let frame = Frame {
            kind,
            request_id,
            message,
        };
        let bytes = encode_frame(&frame, self.config.frame_size_bytes_max)?;
        self.enqueue_bytes(
            to,
            request_id,
            FrameBytes::Owned(bytes),
            message_kind,
            bypasses_emulator,
        )
    }

    /// Queues a request encoded beforehand for `to` under `request_id` (its payload
    /// shared, only the header written for this call).
    fn enqueue_request(
        &self,
        to: &NodeId,
        request_id: u64,
        request: &EncodedRequest,
    ) -> Result<()> {
        self.enqueue_bytes(
            to,
            request_id,
            FrameBytes::for_call(&request.bytes, request_id),
            request.kind,
            request.bypasses_emulator,
        )
    }

    /// Draws an encoded frame's verdict and queues it for `to`.
    fn enqueue_bytes(
        &self,
        to: &NodeId,
        request_id: u64,
        bytes: FrameBytes,
        message_kind: MessageKind,
        bypasses_emulator: bool,
    ) -> Result<()> {
        let peers = lock(&self.peers);
        let peer = peers.get(to).ok_or_else(|| Error::UnknownPeer {
            peer: to.to_string(),
        })?;
        if peer.queued.load(Ordering::Acquire) >= self.config.queue_length_max {
            return Err(Error::PeerQueueFull {
                peer: to.to_string(),
                capacity: self.config.queue_length_max,
            });
        }
        let from = Endpoint::new(self.local.node.as_str(), &self.local.datacenter);
        let destination = Endpoint::new(to.as_str(), &peer.datacenter);
        let verdict = if bypasses_emulator {
            Verdict::Deliver {
                delay: Duration::ZERO,
            }
        } else {
            self.emulator
                .verdict_for(from, destination, message_kind, &mut *lock(&self.rng))
        };
        let delay = match verdict {
            Verdict::Deliver { delay } => delay,
            Verdict::Drop(_) => {
                self.messages_dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        };
        self.emulator
            .note_sent(from, destination, request_id, message_kind);
        let due = Instant::now() + delay;
        let outgoing = Outgoing {
            due,
            sequence: self.next_sequence.fetch_add(1, Ordering::Relaxed),
            bytes,
        };
        // Counted under the peers lock, so two senders cannot both take the last slot.
        peer.queued.fetch_add(1, Ordering::AcqRel);
        if peer.queue.send(outgoing).is_err() {
            peer.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::PeerUnavailable {
                peer: to.to_string(),
                detail: "its writer has stopped".to_string(),
            });
        }
        self.messages_queued.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Whether `node` in `datacenter` may connect to us.
    fn check_hello(&self, node: &str, datacenter: &str, cluster_name: &str) -> Result<NodeId> {
        if cluster_name != self.config.cluster_name {
            return Err(Error::PeerProtocol(format!(
                "node {node} belongs to cluster {cluster_name:?}, this node to {:?}",
                self.config.cluster_name
            )));
        }
        let node = NodeId::new(node);
        match lock(&self.peers).get(&node) {
            None => Err(Error::PeerProtocol(format!(
                "node {node} is not a known peer of {}",
                self.local.node
            ))),
            Some(peer) if peer.datacenter != datacenter => Err(Error::PeerProtocol(format!(
                "node {node} says it is in datacenter {datacenter}, its peer entry says {}",
                peer.datacenter
            ))),
            Some(_) => Ok(node),
        }
    }
}
