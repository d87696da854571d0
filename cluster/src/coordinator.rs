//! The quorum coordinator: any node coordinates a client request by fanning it out to the
//! key's preference list over the peer protocol and answering after W acknowledgements or
//! R replies ([`quorum`] says how W and R follow from the consistency level).
//!
//! # Writes: where versions are minted
//!
//! The vector-clock counter rule (see [`crate::version`]) needs the node that mints a
//! version to be a replica of the key that stores it before anyone sees it. So:
//! - if this node is in the key's preference list it mints locally
//!   ([`LocalStore::write_local`], under its own id), which is also its acknowledgement;
//!   with a lazily synced log the record is only queued, and the client connection commits
//!   it (one log write per pipelined batch, [`Backend::commit`]) before replying;
//! - otherwise it asks the key's replicas, in preference order, to mint
//!   ([`PeerMessage::Mint`]) until one does; that replica's store is its acknowledgement.
//!
//! The new version then goes as `Put` (a one-version encoded set, which replicas fold in
//! with [`LocalStore::apply`]) to every other replica in parallel; the client is answered
//! once the acknowledgements meet W. Puts still in flight then complete in the background:
//! each is a transport call with a deadline (no task, future or timer of its own; the
//! transport's sweep fails it when overdue) whose reply is handled where it is read, and a
//! lost one goes to a fallback with a hint (`detach_puts`).
//! Replicas acknowledge a `Put` only once its log record is written (see [`replica`]: one
//! log write per batch of frames).
//!
//! Peer calls are futures polled by the request's own task (`calls.rs`), not a task and a
//! channel each.
//!
//! # Reads
//!
//! `Get` to every replica (this node's own copy read locally), answer once R replies have
//! come, with the replies merged ([`SiblingSet::merge`]). Replies travel and are compared
//! as the stored bytes: replies that are byte for byte the same (the common case) are
//! decoded once, with no merge and no repair. Replicas whose reply lacked part
//! of the merged result are then repaired in the background ([`repair`]).
//!
//! ## Digest reads
//!
//! With `read_fanout = "quorum"` and `read_digests = true` (the defaults), a coordinator
//! that is a replica of the key reads its own copy first and asks the other replicas R needs
//! for a `GetDigest`: 16 bytes back instead of the stored set (Cassandra's digest requests).
//! A digest equal to that of its own copy counts as that copy; one that differs has the
//! replica's set fetched with a `Get` (the second round trip only a divergent replica
//! costs, counted in INFO `read_digest_mismatches`), and the read goes on as above. Replicas
//! held in reserve are asked for their sets. A late digest that differs has its set fetched
//! by the repair task. The digest is [`crate::antientropy::wide_digest`], 128 bits: a chance
//! collision would hide a newer version from one read, a 2^-128 event.
//!
//! The plain GETs of one pipelined client batch are read together ([`batch`]): one
//! `GetDigest` per replica for all of them; a key that does not come back clean (a digest
//! differs, a replica fails or is slow) is read again on its own as above.
//!
//! ## Batched writes
//!
//! The SETs of one pipelined client batch are written together ([`write_batch`]): each is
//! minted here as above, then every other replica gets one `PutMany` with all of the
//! batch's versions it replicates, and each key is answered once its acknowledgements meet
//! W. Unreachable replicas' keys go to fallbacks with hints as single writes' do.
//!
//! # Sloppy quorum
//!
//! A write's `Put` to an unreachable replica goes to a fallback node with a hint
//! ([`crate::handoff`]) when `handoff = "sloppy"`.
//!
//! # Scans
//!
//! Every node is asked for the range (this node locally), rows are merged by key and the
//! first `limit` keys returned. A scan succeeds when at most `N - R` nodes failed to answer,
//! so every key's replicas answered at least R times: R semantics per key (only when the
//! replication is uniform; per-datacenter levels use their total).
//!
//! # Failures
//!
//! Too few answers before `request_timeout_ms` is [`Error::QuorumFailed`], naming what was
//! needed, what counted, and what every other replica said (error or timeout).

mod backend;
mod batch;
mod calls;
pub mod links;
pub mod quorum;
mod read;
pub mod repair;
pub mod replica;
mod scan;
mod write_batch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::antientropy::{AntiEntropy, AntiEntropyHandler};
use crate::config::NodeConfig;
use crate::handoff::sloppy::{is_unreachable, FailureDetector, Fallbacks, ReplicaWrite};
use crate::handoff::{Handoff, HandoffHandler, HandoffMode, HintStore};
use crate::membership::node::{MembershipHandler, MembershipService};
use crate::net::transport::{DeadlineCall, LocalIdentity, PeerTransport, TransportConfig};
use crate::net::{Clock, SystemClock};
use crate::protocol::peer::PeerMessage;
use crate::protocol::Consistency;
use crate::ring::{NodeId, Replication};
use crate::scaling::{RingState, Scaling, ScalingHandler, ScalingRequest};
use crate::server::{Backend, BoxFuture, ReadReply, ScanRows};
use crate::store::LocalStore;
use crate::version::{SiblingSet, VectorClock, VersionConfig};
use crate::{Error, Result};

pub use links::{LinkControl, LinkHandler};
pub use quorum::{Need, Side};
pub use repair::ReadRepair;
pub use replica::ReplicaHandler;

use calls::Calls;

/// Which replicas a read asks (`read_fanout` in the node's config).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFanout {
    /// Every replica of the key; the first R replies count and the later ones only feed
    /// read repair. What staleness measurements (PBS) assume.
    All,
    /// Only as many replicas as R needs, this node's own copy first; the others are asked
    /// when one of them fails, when they answered without meeting R, or after a quarter of
    /// the request timeout. Half the peer messages of `all` for N=3 R=2; read repair only
    /// compares the replicas asked.
    #[default]
    Quorum,
}

/// Asks up to the given number of replicas held in reserve (pushing their calls); returns
/// how many it asked.
type Reserve<'a, T> = dyn FnMut(&mut Calls<T>, usize) -> usize + Send + 'a;

/// One replica's answer: who, in which datacenter, and what came back.
struct Answer<T> {
    node: NodeId,
    datacenter: String,
    result: Result<T>,
}

/// A key's replicas with their datacenters.
type Replicas = Vec<(NodeId, String)>;

/// One write's `Put` to one replica, while the write waits for W.
enum PutCall {
    /// Straight to the replica ([`Coordinator::start_put`]).
    Direct {
        node: NodeId,
        datacenter: String,
        call: DeadlineCall,
    },
    /// Through [`Handoff::put`]: to a fallback when the replica is unreachable.
    Handoff(calls::Call<()>),
}

/// What one of a write's [`PutCall`]s came back with.
enum PutOutcome {
    Direct {
        node: NodeId,
        datacenter: String,
        result: Result<PeerMessage>,
    },
    Handoff(Answer<()>),
}

/// The first of `puts` to answer, taken out of it.
async fn next_put(puts: &mut Vec<PutCall>) -> PutOutcome {
    std::future::poll_fn(|cx| {
        for index in 0..puts.len() {
            let ready = match &mut puts[index] {
                PutCall::Direct { call, .. } => match std::pin::Pin::new(call).poll(cx) {
                    std::task::Poll::Ready(result) => Some(Ok(result)),
                    std::task::Poll::Pending => None,
                },
                PutCall::Handoff(call) => match call.as_mut().poll(cx) {
                    std::task::Poll::Ready(answer) => Some(Err(answer)),
                    std::task::Poll::Pending => None,
                },
            };
            let Some(ready) = ready else {
                continue;
            };
            let put = puts.swap_remove(index);
            return std::task::Poll::Ready(match (put, ready) {
                (
                    PutCall::Direct {
                        node, datacenter, ..
                    },
                    Ok(result),
                ) => PutOutcome::Direct {
                    node,
                    datacenter,
                    result,
                },
                (_, Err(answer)) => PutOutcome::Handoff(answer),
                (PutCall::Handoff(_), Ok(_)) => unreachable!("a handoff call answers as one"),
            });
        }
        std::task::Poll::Pending
    })
    .await
}

/// A [`Backend`] that replicates every key over the ring.
pub struct Coordinator {
    node: NodeId,
    datacenter: String,
    /// The versioned ring (and ring changes): each request takes a snapshot.
    scaling: Arc<Scaling>,
    replication: Replication,
    store: Arc<LocalStore>,
    transport: Arc<PeerTransport>,
    timeout: Duration,
    /// Which replicas a read asks first.
    read_fanout: ReadFanout,
    /// Whether replicas besides this node's copy answer a quorum read with a digest.
    read_digests: bool,
    versions: VersionConfig,
    default_consistency: Consistency,
    clock: Arc<dyn Clock>,
    links: Arc<LinkControl>,
    /// Sloppy quorum and hint delivery.
    handoff: Arc<Handoff>,
    /// Read repair settings and counters.
    repair: Arc<ReadRepair>,
    /// Gossip membership and failure detection (`CLUSTER.MEMBERS`).
    membership: Arc<MembershipService>,
    /// Merkle-tree anti-entropy (`ANTIENTROPY.*`, INFO `# AntiEntropy`).
    antientropy: Arc<AntiEntropy>,
}

impl Coordinator {
    /// Starts a cluster node's data layer from `config` (with members): binds the peer
    /// transport on `peer_address` with the `links` emulator, adds every other member as a
    /// peer and returns the coordinator over `store`.
    pub async fn start(config: &NodeConfig, store: Arc<LocalStore>) -> Result<Arc<Coordinator>> {
        let scaling = Scaling::new(config, Arc::clone(&store))?;
        // Trees are built before the transport binds: no write can race the scan.
        let antientropy = AntiEntropy::open(
            NodeId::new(&config.node_id),
            config.antientropy.clone(),
            &scaling.snapshot(),
            &config.replication,
            Arc::clone(&store),
            Duration::from_millis(config.request_timeout_ms),
        )
        .await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
        let replica = Arc::new(ReplicaHandler::new(
            Arc::clone(&store),
            config.node_id.clone(),
            Arc::clone(&clock),
        ));
        let handler = Arc::clone(&replica);
        let links = Arc::new(LinkControl::new(
            &config.node_id,
            &config.datacenter,
            &config.links,
        )?);
        let hints = open_hints(config).await?;
        let handler = Arc::new(HandoffHandler::new(
            Arc::clone(&hints),
            Arc::clone(&clock),
            handler,
        ));
        let handler = Arc::new(AntiEntropyHandler::new(Arc::clone(&antientropy), handler));
        let handler = Arc::new(LinkHandler::new(Arc::clone(&links), handler));
        let membership = MembershipService::new(config)?;
        let handler = Arc::new(MembershipHandler::new(Arc::clone(&membership), handler));
        let handler = Arc::new(ScalingHandler::new(Arc::clone(&scaling), handler));
        let emulator = links.emulator();
        let transport_config = TransportConfig {
            listen_address: config.peer_address,
            request_timeout_ms: config.request_timeout_ms,
            cluster_secret: config.cluster_secret.clone(),
            // Gossip keeps sending to a dead peer, so its reconnect backoff reaches the
            // maximum; capped at half a request timeout, a restarted peer is reached again
            // before a request to it times out.
            backoff_max_ms: reconnect_backoff_max_ms(config.request_timeout_ms),
            ..TransportConfig::default()
        };
        let local = LocalIdentity {
            node: NodeId::new(&config.node_id),
            datacenter: config.datacenter.clone(),
        };
        let transport =
            Arc::new(PeerTransport::bind(transport_config, local, emulator, handler).await?);
        // `Put`, `Get` and `Mint` skip the handler chain (none of its layers acts on them).
        transport.set_inline_handler(replica);
        links.attach(&transport, Duration::from_millis(config.request_timeout_ms));
        for member in &config.members {
            if member.id != config.node_id {
                transport.add_peer(
                    NodeId::new(&member.id),
                    member.datacenter.clone(),
                    member.peer_address,
                );
            }
        }
        scaling.attach(Arc::clone(&transport));
        let handoff = Arc::new(Handoff::new(
            NodeId::new(&config.node_id),
            config.handoff,
            hints,
            Arc::clone(&clock),
            Duration::from_millis(config.request_timeout_ms),
        ));
        let detector = Arc::clone(&membership);
        let detector: FailureDetector = Arc::new(move |node: &NodeId| detector.is_down(node));
        handoff.set_failure_detector(Arc::clone(&detector));
        antientropy.set_failure_detector(detector);
        handoff.start_delivery(Arc::clone(&transport));
        membership.start(Arc::clone(&transport));
        antientropy.start(Arc::clone(&transport));
        antientropy.follow_ring(scaling.watch_ring(), config.replication.clone());
        Ok(Arc::new(Coordinator {
            antientropy,
            membership,
            handoff,
            repair: Arc::new(ReadRepair::new(
                config.read_repair,
                config.read_repairs_in_flight_max,
            )),
            node: NodeId::new(&config.node_id),
            datacenter: config.datacenter.clone(),
            scaling,
            replication: config.replication.clone(),
            store,
            transport,
            timeout: Duration::from_millis(config.request_timeout_ms),
            read_fanout: config.read_fanout,
            read_digests: config.read_digests,
            versions: config.versions.clone(),
            default_consistency: config.default_consistency,
            clock,
            links,
        }))
    }

    /// The peer transport (for tests and admin commands).
    pub fn transport(&self) -> &PeerTransport {
        &self.transport
    }

    /// The link emulator's admin side (`LINK.*` commands).
    pub fn links(&self) -> Arc<LinkControl> {
        Arc::clone(&self.links)
    }

    /// Stops the peer transport: this node no longer answers or reaches peers.
    pub async fn shutdown(&self) {
        self.membership.stop();
        self.antientropy.stop();
        self.handoff.stop().await;
        self.transport.shutdown().await;
    }

    /// The replicas a read of `key` asks, with their datacenters, coordinator-first order.
    fn replicas(&self, key: &[u8]) -> Result<Vec<(NodeId, String)>> {
        let state = self.scaling.snapshot();
        with_datacenters(&state, state.read_replicas(key, &self.replication)?)
    }

    /// The replicas a write of `key` goes to: the read replicas, and during a ring change
    /// also the other ring's (see [`crate::scaling`]).
    /// Returns the ring snapshot it used as well.
    fn write_replicas(&self, key: &[u8]) -> Result<(Arc<RingState>, Replicas)> {
        let state = self.scaling.snapshot();
        let replicas = with_datacenters(&state, state.write_replicas(key, &self.replication)?)?;
        Ok((state, replicas))
    }

    fn need(
        &self,
        consistency: Consistency,
        side: Side,
        replicas: &[(NodeId, String)],
    ) -> Result<Need> {
        let datacenters: Vec<&str> = replicas.iter().map(|(_, dc)| dc.as_str()).collect();
        Need::new(
            consistency,
            self.default_consistency,
            side,
            &datacenters,
            &self.datacenter,
        )
    }

    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&LocalStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.store.run(call).await
    }

    /// Sends `message` to `node`, as a call for [`Calls`].
    fn call<T: Send + 'static>(
        &self,
        node: NodeId,
        datacenter: String,
        message: PeerMessage,
        interpret: fn(PeerMessage) -> Result<T>,
    ) -> calls::Call<T> {
        let transport = Arc::clone(&self.transport);
        let timeout = self.timeout;
        Box::pin(async move {
            let result = transport
                .call(&node, message, timeout)
                .await
                .and_then(interpret);
            Answer {
                node,
                datacenter,
                result,
            }
        })
    }

    /// Waits for answers until `need` is met, all `expected` answers are in, or the
    /// timeout; returns the successful ones or the quorum error.
    #[allow(clippy::too_many_arguments)] // the read fallback made it eight
    async fn gather<T: Send + 'static>(
        &self,
        answers: &mut Calls<T>,
        mut received: Vec<Answer<T>>,
        expected: usize,
        need: &Need,
        what: &'static str,
        wait_for_all: bool,
        mut reserve: Option<&mut Reserve<'_, T>>,
    ) -> Result<Vec<T>> {
        let started = tokio::time::Instant::now();
        let deadline = started + self.timeout;
        // Replicas held in reserve are asked when an answer fails, when every asked replica
        // answered without meeting the need, or when this much time has passed.
        let mut hedge_at = reserve.as_ref().map(|_| started + self.timeout / 4);
        let mut expected = expected;
        let mut good: Vec<T> = Vec::new();
        let mut good_datacenters: Vec<String> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        let mut count = 0;
        loop {
            let mut failed = 0;
            for answer in received.drain(..) {
                count += 1;
                match answer.result {
                    Ok(value) => {
                        good.push(value);
                        good_datacenters.push(answer.datacenter);
                    }
                    Err(error) => {
                        failed += 1;
                        failures.push(format!("{}: {error}", answer.node));
                    }
                }
            }
            if !wait_for_all && need.met(&good_datacenters) {
                return Ok(good);
            }
            if let Some(ask) = reserve.as_mut() {
                if failed > 0 {
                    expected += ask(answers, failed);
                }
                if count >= expected {
                    expected += ask(answers, usize::MAX);
                }
            }
            if count >= expected {
                break;
            }
            let wake = match hedge_at {
                Some(hedge) if hedge < deadline => hedge,
                _ => deadline,
            };
            match tokio::time::timeout_at(wake, answers.next()).await {
                Ok(Some(answer)) => received.push(answer),
                Ok(None) => break,
                Err(_) if wake < deadline => {
                    hedge_at = None;
                    if let Some(ask) = reserve.as_mut() {
                        expected += ask(answers, usize::MAX);
                    }
                }
                Err(_) => {
                    failures.push(format!(
                        "{} replicas did not answer within {} ms",
                        expected - count,
                        self.timeout.as_millis()
                    ));
                    break;
                }
            }
        }
        if need.met(&good_datacenters) {
            return Ok(good);
        }
        Err(need.failed(what, &good_datacenters, &failures))
    }

    async fn coordinate_write(
        &self,
        key: Vec<u8>,
        context: VectorClock,
        value: Option<Vec<u8>>,
        consistency: Consistency,
    ) -> Result<()> {
        let (ring, replicas) = self.write_replicas(&key)?;
        let need = self.need(consistency, Side::Write, &replicas)?;
        // Every node has the same limit: refuse here with the store's wording rather than
        // as a replica's error.
        let length = value.as_ref().map_or(0, Vec::len);
        if length > self.store.value_bytes_max() {
            return Err(Error::Command(format!(
                "ERR value of {length} bytes exceeds the limit of {} bytes",
                self.store.value_bytes_max()
            )));
        }
        let (minted, minter, failures) = self.mint(&key, &context, value, &replicas).await?;
        let minter_datacenter = replicas
            .iter()
            .find(|(node, _)| *node == minter)
            .map(|(_, dc)| dc.clone())
            .unwrap_or_default();
        let received = vec![Answer {
            node: minter.clone(),
            datacenter: minter_datacenter,
            result: Ok(()),
        }];
        // Encoded once, the `Put` frame too, for every replica.
        let write = Arc::new(ReplicaWrite::new(&self.transport, key, minted.encode())?);
        let key = &write.key;
        let fallbacks = Arc::new(Fallbacks::new(
            key,
            replicas.iter().map(|(node, _)| node.clone()).collect(),
            ring,
        ));
        let failed: Vec<NodeId> = failures.iter().map(|answer| answer.node.clone()).collect();
        let started = tokio::time::Instant::now();
        let mut puts = Vec::with_capacity(replicas.len());
        // Replicas that could not mint are known unreachable: straight to a fallback.
        for failure in failures {
            let error = failure.result.err();
            puts.push(PutCall::Handoff(self.put_call(
                failure.node,
                failure.datacenter,
                &write,
                &fallbacks,
                error,
            )));
        }
        for (node, datacenter) in replicas {
            if node == minter || failed.contains(&node) {
                continue;
            }
            puts.push(self.start_put(node, datacenter, &write, &fallbacks, started));
        }
        self.gather_writes(puts, received, &need, &write, &fallbacks, started)
            .await
    }

    /// A write's `Put` to replica `node`: sent straight to it, without a task, future or
    /// timer of its own (the transport's sweep bounds it), unless it is known to be down
    /// (then through [`Handoff::put`], to a fallback). In sloppy mode the replica gets
    /// half the request timeout, so a fallback still has time.
    fn start_put(
        &self,
        node: NodeId,
        datacenter: String,
        write: &Arc<ReplicaWrite>,
        fallbacks: &Arc<Fallbacks>,
        started: tokio::time::Instant,
    ) -> PutCall {
        let sloppy = self.handoff.mode() == HandoffMode::Sloppy;
        if sloppy && self.handoff.is_down(&node) {
            return PutCall::Handoff(self.put_call(node, datacenter, write, fallbacks, None));
        }
        let budget = if sloppy {
            self.timeout / 2
        } else {
            self.timeout
        };
        let call = write.put(&self.transport).and_then(|put| {
            self.transport
                .start_call_encoded(&node, put, started + budget, budget)
        });
        match call {
            Ok(call) => PutCall::Direct {
                node,
                datacenter,
                call,
            },
            Err(error) => {
                PutCall::Handoff(self.put_call(node, datacenter, write, fallbacks, Some(error)))
            }
        }
    }

    /// Waits for the `Put`s until the acknowledgements (`received` so far) meet `need`, all
    /// of them answered, or the timeout. A direct `Put` whose replica turned out
    /// unreachable goes on through [`Handoff::put`] (to a fallback, in sloppy mode). The
    /// `Put`s still in flight at the end go on without this task: direct ones as detached
    /// calls ([`DeadlineCall::detach`]), the others on a task of their own.
    async fn gather_writes(
        &self,
        mut puts: Vec<PutCall>,
        received: Vec<Answer<()>>,
        need: &Need,
        write: &Arc<ReplicaWrite>,
        fallbacks: &Arc<Fallbacks>,
        started: tokio::time::Instant,
    ) -> Result<()> {
        let deadline = started + self.timeout;
        let mut good_datacenters: Vec<String> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        for answer in received {
            match answer.result {
                Ok(()) => good_datacenters.push(answer.datacenter),
                Err(error) => failures.push(format!("{}: {error}", answer.node)),
            }
        }
        loop {
            if need.met(&good_datacenters) {
                self.detach_puts(puts, write, fallbacks, deadline);
                return Ok(());
            }
            if puts.is_empty() {
                break;
            }
            // Direct calls end by their deadline (the sweep); only the handoff path,
            // which waits on fallbacks, needs the request's own timer.
            let through_handoff = puts.iter().any(|put| matches!(put, PutCall::Handoff(_)));
            let next = next_put(&mut puts);
            let outcome = if through_handoff {
                // Boxed: a timer held inline would over-align (and grow) every write's
                // future, which the server boxes per request; this path is the rare one.
                match Box::pin(tokio::time::timeout_at(deadline, next)).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        failures.push(format!(
                            "{} replicas did not answer within {} ms",
                            puts.len(),
                            self.timeout.as_millis()
                        ));
                        self.detach_puts(puts, write, fallbacks, deadline);
                        break;
                    }
                }
            } else {
                next.await
            };
            match outcome {
                PutOutcome::Direct {
                    node,
                    datacenter,
                    result,
                } => match result {
                    Ok(PeerMessage::PutAck) => {
                        self.handoff.mark_up(&node);
                        good_datacenters.push(datacenter);
                    }
                    Ok(other) => failures.push(format!("{node}: {}", unexpected(other))),
                    Err(error)
                        if self.handoff.mode() == HandoffMode::Sloppy && is_unreachable(&error) =>
                    {
                        puts.push(PutCall::Handoff(self.put_call(
                            node,
                            datacenter,
                            write,
                            fallbacks,
                            Some(error),
                        )));
                    }
                    Err(error) => failures.push(format!("{node}: {error}")),
                },
                PutOutcome::Handoff(answer) => match answer.result {
                    Ok(()) => good_datacenters.push(answer.datacenter),
                    Err(error) => failures.push(format!("{}: {error}", answer.node)),
                },
            }
        }
        Err(need.failed("write acknowledgements", &good_datacenters, &failures))
    }

    /// Lets a write's `Put`s still in flight go on after the client's answer: a direct
    /// one's reply is handled where it is read (an unreachable replica's write then goes
    /// to a fallback with a hint, on a task of its own); the ones on the handoff path
    /// share one task.
    fn detach_puts(
        &self,
        puts: Vec<PutCall>,
        write: &Arc<ReplicaWrite>,
        fallbacks: &Arc<Fallbacks>,
        deadline: tokio::time::Instant,
    ) {
        let mut handoffs = Calls::new();
        for put in puts {
            match put {
                PutCall::Handoff(call) => handoffs.push(call),
                PutCall::Direct {
                    node,
                    datacenter,
                    call,
                } => {
                    let handoff = Arc::clone(&self.handoff);
                    let transport = Arc::clone(&self.transport);
                    let (write, fallbacks) = (Arc::clone(write), Arc::clone(fallbacks));
                    call.detach(Box::new(move |result| match result {
                        Ok(PeerMessage::PutAck) => handoff.mark_up(&node),
                        // The replica answered and refused: nothing to hand off.
                        Ok(_) => {}
                        Err(error)
                            if handoff.mode() == HandoffMode::Sloppy && is_unreachable(&error) =>
                        {
                            let target = (node, datacenter, write, fallbacks);
                            spawn_handoff(handoff, transport, deadline, target, error);
                        }
                        Err(_) => {}
                    }));
                }
            }
        }
        handoffs.detach();
    }

    /// A write's `Put` to `node` (to a fallback with a hint if it is unreachable, in
    /// sloppy mode), as a call for [`Calls`].
    fn put_call(
        &self,
        node: NodeId,
        datacenter: String,
        write: &Arc<ReplicaWrite>,
        fallbacks: &Arc<Fallbacks>,
        failed: Option<Error>,
    ) -> calls::Call<()> {
        let (handoff, transport) = (Arc::clone(&self.handoff), Arc::clone(&self.transport));
        let (write, fallbacks) = (Arc::clone(write), Arc::clone(fallbacks));
        let timeout = self.timeout;
        Box::pin(async move {
            let result = handoff
                .put(
                    &transport,
                    timeout,
                    node.clone(),
                    &datacenter,
                    &write,
                    &fallbacks,
                    failed,
                )
                .await;
            Answer {
                node,
                datacenter,
                result,
            }
        })
    }

    /// The INFO fields of hinted handoff and read repair.
    fn repair_info(&self) -> Vec<(&'static str, u64)> {
        let mut fields = self.handoff.info_fields();
        fields.extend(self.repair.info_fields());
        fields
    }

    /// Makes the new version on a replica: here if this node is one, else the first
    /// replica (in preference order) that accepts. Returns the version (as a set), who
    /// minted it and the replicas that failed to.
    async fn mint(
        &self,
        key: &[u8],
        context: &VectorClock,
        value: Option<Vec<u8>>,
        replicas: &[(NodeId, String)],
    ) -> Result<(SiblingSet, NodeId, Vec<Answer<()>>)> {
        if replicas.iter().any(|(node, _)| *node == self.node) {
            let node_id = self.node.clone();
            let now_ms = self.clock.now_ms();
            let (key, context) = (key.to_vec(), context.clone());
            // With a lazily synced log the record is only queued: the client connection
            // commits once per batch before replying (`Backend::commit`).
            let defer = self.store.defers_commits();
            let version = self
                .blocking(move |store| {
                    if defer {
                        store.write_local_version_deferred(
                            &key,
                            &context,
                            value,
                            node_id.as_str(),
                            now_ms,
                        )
                    } else {
                        store.write_local(&key, &context, value, node_id.as_str(), now_ms)
                    }
                })
                .await?;
            return Ok((SiblingSet::single(version), self.node.clone(), Vec::new()));
        }
        let mut failed = Vec::new();
        // Replicas that just failed go last: another one can mint at once.
        for (node, datacenter) in &self.handoff.reachable_first(replicas) {
            let message = PeerMessage::Mint {
                key: key.to_vec(),
                context: context.encode(),
                value: value.clone(),
            };
            // Boxed for the same reason as the handoff wait in `gather_writes`.
            let result = Box::pin(self.transport.call(node, message, self.timeout))
                .await
                .and_then(|reply| match reply {
                    PeerMessage::GetReply {
                        siblings: Some(bytes),
                    } => SiblingSet::decode(&bytes),
                    other => Err(unexpected(other)),
                });
            match result {
                Ok(set) => return Ok((set, node.clone(), failed)),
                // The replica is up and refused (too many siblings, a storage error): the
                // client hears why. Only unreachable replicas are passed over.
                Err(Error::Command(message)) => return Err(Error::Command(message)),
                Err(error) => failed.push(Answer {
                    result: Err(self.handoff.note_failure(node, error)),
                    node: node.clone(),
                    datacenter: datacenter.clone(),
                }),
            }
        }
        let failures: Vec<String> = failed
            .iter()
            .filter_map(|answer| {
                answer
                    .result
                    .as_ref()
                    .err()
                    .map(|e| format!("{}: {e}", answer.node))
            })
            .collect();
        Err(Error::QuorumFailed {
            what: "write acknowledgements",
            needed: 1,
            got: 0,
            failures: format!("no replica could make the version: {}", failures.join("; ")),
        })
    }
}

fn with_datacenters(state: &RingState, nodes: Vec<NodeId>) -> Result<Vec<(NodeId, String)>> {
    nodes
        .into_iter()
        .map(|node| {
            let datacenter = state
                .member(node.as_str())
                .map(|member| member.datacenter.clone())
                .ok_or_else(|| Error::Placement(format!("{node} is not on the ring")))?;
            Ok((node, datacenter))
        })
        .collect()
}

/// Hands a write whose replica turned out unreachable after the client was answered to a
/// fallback with a hint ([`Handoff::put`]), on a task of its own, within what is left of
/// the request's time.
fn spawn_handoff(
    handoff: Arc<Handoff>,
    transport: Arc<PeerTransport>,
    deadline: tokio::time::Instant,
    (node, datacenter, write, fallbacks): (NodeId, String, Arc<ReplicaWrite>, Arc<Fallbacks>),
    error: Error,
) {
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    tokio::spawn(async move {
        let _ = handoff
            .put(
                &transport,
                remaining,
                node,
                &datacenter,
                &write,
                &fallbacks,
                Some(error),
            )
            .await;
    });
}

fn unexpected(reply: PeerMessage) -> Error {
    match reply {
        PeerMessage::Error { message } => Error::Command(format!("ERR replica failed: {message}")),
        other => Error::PeerProtocol(format!("unexpected reply {}", other.name())),
    }
}

fn expect_ack(reply: PeerMessage) -> Result<()> {
    match reply {
        PeerMessage::PutAck => Ok(()),
        other => Err(unexpected(other)),
    }
}

/// A `Get`'s reply: the replica's stored set, still encoded.
fn expect_get_encoded(reply: PeerMessage) -> Result<Option<Vec<u8>>> {
    match reply {
        PeerMessage::GetReply { siblings } => Ok(siblings),
        other => Err(unexpected(other)),
    }
}

/// The transport's default backoff cap, at most half of `request_timeout_ms` (and never below
/// the initial backoff).
fn reconnect_backoff_max_ms(request_timeout_ms: u64) -> u64 {
    let defaults = TransportConfig::default();
    defaults
        .backoff_max_ms
        .min(request_timeout_ms / 2)
        .max(defaults.backoff_initial_ms)
}

/// Opens the hint store in `data_dir/hints` (see [`crate::handoff`]) off the reactor.
async fn open_hints(config: &NodeConfig) -> Result<Arc<HintStore>> {
    let directory = config.data_dir.join("hints");
    let (options, hints, versions) = (
        config.engine.clone(),
        config.hints.clone(),
        config.versions.clone(),
    );
    let store =
        tokio::task::spawn_blocking(move || HintStore::open(&directory, options, hints, versions))
            .await
            .map_err(|error| Error::Stopped(format!("opening the hint store failed: {error}")))??;
    Ok(Arc::new(store))
}
