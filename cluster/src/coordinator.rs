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
//! The plain GETs of one pipelined client batch are read together
//! (`coordinator/batch.rs`): one `GetDigest` per replica for all of them; a key that does
//! not come back clean (a digest differs, a replica fails or is slow) is read again on its
//! own as above.
//!
//! ## Batched writes
//!
//! The SETs of one pipelined client batch are written together
//! (`coordinator/write_batch.rs`): each is minted here as above, then every other replica
//! gets one `PutMany` with all of the batch's versions it replicates, and each key is
//! answered once its acknowledgements meet W. Unreachable replicas' keys go to fallbacks
//! with hints as single writes' do. The single write path is in `coordinator/write.rs`.
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
mod write;
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
use crate::scaling::{RingState, Scaling, ScalingHandler, ScalingRequest, WriteSnapshot};
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
    datacenter: Datacenter,
    result: Result<T>,
}

/// A datacenter's name, shared with the ring state (see [`RingState::datacenter`]).
pub(crate) type Datacenter = Arc<str>;

/// A key's replicas with their datacenters.
type Replicas = Vec<(NodeId, Datacenter)>;

/// A [`Backend`] that replicates every key over the ring.
pub struct Coordinator {
    node: NodeId,
    datacenter: Datacenter,
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
        hold_gossip_until_in_ring(&membership, &scaling, NodeId::new(&config.node_id));
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
            datacenter: Datacenter::from(config.datacenter.as_str()),
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
        self.antientropy.stopped().await;
        self.handoff.stop().await;
        self.transport.shutdown().await;
    }

    /// The replicas a read of `key` asks, with their datacenters, coordinator-first order.
    fn replicas(&self, key: &[u8]) -> Result<Vec<(NodeId, Datacenter)>> {
        let state = self.scaling.snapshot();
        with_datacenters(&state, state.read_replicas(key, &self.replication)?)
    }

    /// The replicas a write of `key` goes to: the read replicas, and during a ring change
    /// also the other ring's (see [`crate::scaling`]).
    /// Returns the ring snapshot it used as well: hold it until the write is answered, so
    /// a ring change waits for the write before it streams.
    fn write_replicas(&self, key: &[u8]) -> Result<(WriteSnapshot, Replicas)> {
        let state = self.scaling.write_snapshot();
        let replicas = with_datacenters(&state, state.write_replicas(key, &self.replication)?)?;
        Ok((state, replicas))
    }

    fn need(
        &self,
        consistency: Consistency,
        side: Side,
        replicas: &[(NodeId, Datacenter)],
    ) -> Result<Need> {
        let datacenters: Vec<&str> = replicas.iter().map(|(_, dc)| &**dc).collect();
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
        datacenter: Datacenter,
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
        let mut good_datacenters: Vec<Datacenter> = Vec::new();
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

    /// The INFO fields of hinted handoff and read repair.
    fn repair_info(&self) -> Vec<(&'static str, u64)> {
        let mut fields = self.handoff.info_fields();
        fields.extend(self.repair.info_fields());
        fields
    }
}

/// A node started to join (`joining = true`, not in its ring yet) gossips only once a
/// ring change has made it a member of either ring: until then the members refuse its
/// connections as an unknown peer's. The ring the node already has is checked first.
fn hold_gossip_until_in_ring(membership: &Arc<MembershipService>, scaling: &Scaling, node: NodeId) {
    let member = move |state: &RingState| {
        state
            .all_members()
            .iter()
            .any(|member| member.id == node.as_str())
    };
    let mut ring = scaling.watch_ring();
    if member(&ring.borrow_and_update()) {
        return;
    }
    membership.hold();
    let membership = Arc::clone(membership);
    tokio::spawn(async move {
        // Ends with the node (the ring's sender is dropped) if it never joins.
        while ring.changed().await.is_ok() {
            if member(&ring.borrow_and_update()) {
                membership.release();
                return;
            }
        }
    });
}

fn with_datacenters(state: &RingState, nodes: Vec<NodeId>) -> Result<Replicas> {
    nodes
        .into_iter()
        .map(|node| {
            let datacenter = state
                .datacenter(node.as_str())
                .map(Arc::clone)
                .ok_or_else(|| Error::Placement(format!("{node} is not on the ring")))?;
            Ok((node, datacenter))
        })
        .collect()
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
