//! The coordinator's side of sloppy quorum: sending a write's `Put` to a replica, or, when
//! the replica is unreachable, a `HintedPut` to a fallback node (see [`crate::handoff`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::net::transport::{EncodedRequest, PeerTransport};
use crate::net::Clock;
use crate::protocol::peer::PeerMessage;
use crate::ring::{NodeId, Replication};
use crate::scaling::RingState;
use crate::version::SiblingSet;
use crate::{Error, Result};

use super::handler::store_hint;
use super::{HandoffMode, HintCounters, HintStore};

/// Fallbacks tried for one unreachable replica before the write gives up on it.
const FALLBACK_ATTEMPTS: usize = 2;

/// Whether `error` means the node could not be reached (as opposed to a node that answered
/// and refused): only then does a write go to a fallback.
pub fn is_unreachable(error: &Error) -> bool {
    matches!(
        error,
        Error::PeerUnavailable { .. }
            | Error::PeerTimeout { .. }
            | Error::PeerQueueFull { .. }
            | Error::UnknownPeer { .. }
    )
}

fn expect_ack(reply: PeerMessage) -> Result<()> {
    match reply {
        PeerMessage::PutAck => Ok(()),
        PeerMessage::Error { message } => {
            Err(Error::Command(format!("ERR replica failed: {message}")))
        }
        other => Err(Error::PeerProtocol(format!(
            "unexpected reply {}",
            other.name()
        ))),
    }
}

/// One write's fallback candidates: nodes past the key's preference list in ring order,
/// each handed out once so two unreachable replicas never share a fallback. Computed on
/// first use: most writes never need one. The ring is the write's snapshot, so a node that
/// joined or left since the node started is (or is no longer) a candidate.
pub struct Fallbacks {
    key: Vec<u8>,
    replicas: Vec<NodeId>,
    ring: Arc<RingState>,
    candidates: Mutex<Option<Vec<(NodeId, String)>>>,
}

impl Fallbacks {
    /// The pool for `key`, whose preference list is `replicas`.
    pub fn new(key: &[u8], replicas: Vec<NodeId>, ring: Arc<RingState>) -> Fallbacks {
        Fallbacks {
            key: key.to_vec(),
            replicas,
            ring,
            candidates: Mutex::new(None),
        }
    }

    /// The next candidate, preferring `datacenter`, skipping nodes `usable` refuses.
    fn take(&self, datacenter: &str, usable: impl Fn(&NodeId) -> bool) -> Option<(NodeId, String)> {
        let mut guard = self
            .candidates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // During a ring change the next ring already holds a joining node and no longer
        // the leaving one.
        let ring = self.ring.next.as_ref().unwrap_or(&self.ring.current);
        let candidates = guard.get_or_insert_with(|| {
            let all = Replication::Total(ring.members().len());
            ring.preference_list(&self.key, &all)
                .unwrap_or_default()
                .into_iter()
                .filter(|node| !self.replicas.contains(node))
                .filter_map(|node| {
                    let datacenter = ring.member(&node)?.datacenter.clone();
                    Some((node, datacenter))
                })
                .collect()
        });
        let index = candidates
            .iter()
            .position(|(node, dc)| dc == datacenter && usable(node))
            .or_else(|| candidates.iter().position(|(node, _)| usable(node)))?;
        Some(candidates.remove(index))
    }
}

/// The gossip failure detector's verdict on a node: `true` when it holds it Down.
pub type FailureDetector = Arc<dyn Fn(&NodeId) -> bool + Send + Sync>;

/// One write as every replica gets it: the key, the version as an encoded set, and the
/// `Put` frame encoded once for all of them (each call sets its own request id).
#[derive(Debug)]
pub struct ReplicaWrite {
    /// The key written.
    pub key: Vec<u8>,
    /// The new version, as an encoded sibling set.
    pub siblings: Vec<u8>,
    put: std::sync::OnceLock<EncodedRequest>,
}

impl ReplicaWrite {
    /// Encodes the `Put` of `siblings` for `key` once; fails if the frame would exceed
    /// the transport's frame limit.
    pub fn new(transport: &PeerTransport, key: Vec<u8>, siblings: Vec<u8>) -> Result<Self> {
        let message = PeerMessage::Put { key, siblings };
        let put = transport.encode_request(&message)?;
        let PeerMessage::Put { key, siblings } = message else {
            unreachable!("built as a Put above")
        };
        Ok(ReplicaWrite {
            key,
            siblings,
            put: std::sync::OnceLock::from(put),
        })
    }

    /// A write whose `Put` frame is encoded only if a replica is sent one
    /// ([`ReplicaWrite::put`]): a batched write goes out in `PutMany`s, and only its
    /// handoffs need the frame.
    pub fn unencoded(key: Vec<u8>, siblings: Vec<u8>) -> Self {
        ReplicaWrite {
            key,
            siblings,
            put: std::sync::OnceLock::new(),
        }
    }

    /// The `Put` frame, for [`PeerTransport::start_call_encoded`] (encoded now if it was
    /// not yet; fails if it exceeds the transport's frame limit).
    pub fn put(&self, transport: &PeerTransport) -> Result<&EncodedRequest> {
        if let Some(put) = self.put.get() {
            return Ok(put);
        }
        let put = transport.encode_request(&PeerMessage::Put {
            key: self.key.clone(),
            siblings: self.siblings.clone(),
        })?;
        Ok(self.put.get_or_init(|| put))
    }
}

/// Sloppy-quorum state shared by a node's coordinator and its hint delivery task.
///
/// A replica counts as down when a call to it recently failed (for `down_recheck_ms`) or
/// when the gossip failure detector holds it Down ([`Handoff::set_failure_detector`]):
/// then a write goes straight to a fallback and delivery does not try it, instead of each
/// paying a timeout to learn what gossip already knows.
pub struct Handoff {
    pub(super) node: NodeId,
    mode: HandoffMode,
    pub(super) hints: Arc<HintStore>,
    pub(super) clock: Arc<dyn Clock>,
    /// Nodes that recently failed, with when to try them directly again.
    down_until: Mutex<HashMap<NodeId, Instant>>,
    down_recheck: Duration,
    /// How long a delivery waits for its owner's acknowledgement.
    pub(super) request_timeout: Duration,
    pub(super) delivery: Mutex<Option<JoinHandle<()>>>,
    /// Gossip's verdicts, when membership runs.
    detector: OnceLock<FailureDetector>,
    /// Direct sends skipped because gossip held the node Down.
    gossip_down_skips: AtomicU64,
}

impl Handoff {
    /// Sloppy-quorum state for `node`, storing hints in `hints`; deliveries
    /// wait up to `request_timeout` for an owner.
    pub fn new(
        node: NodeId,
        mode: HandoffMode,
        hints: Arc<HintStore>,
        clock: Arc<dyn Clock>,
        request_timeout: Duration,
    ) -> Handoff {
        let down_recheck = Duration::from_millis(hints.config().down_recheck_ms);
        Handoff {
            node,
            mode,
            hints,
            clock,
            down_until: Mutex::new(HashMap::new()),
            down_recheck,
            request_timeout,
            delivery: Mutex::new(None),
            detector: OnceLock::new(),
            gossip_down_skips: AtomicU64::new(0),
        }
    }

    /// Makes the handoff consult `detector` (gossip) besides its own failed calls; set once.
    pub fn set_failure_detector(&self, detector: FailureDetector) {
        let _ = self.detector.set(detector);
    }

    /// Whether gossip holds `node` Down.
    fn gossip_says_down(&self, node: &NodeId) -> bool {
        self.detector.get().is_some_and(|detector| detector(node))
    }

    /// [`Handoff::gossip_says_down`] where a send is skipped for it: counted.
    pub(super) fn skip_by_gossip(&self, node: &NodeId) -> bool {
        let down = self.gossip_says_down(node);
        if down {
            self.gossip_down_skips.fetch_add(1, Ordering::Relaxed);
        }
        down
    }

    /// Strict or sloppy.
    pub fn mode(&self) -> HandoffMode {
        self.mode
    }

    /// The hint store (for INFO and tests).
    pub fn hints(&self) -> &Arc<HintStore> {
        &self.hints
    }

    /// The INFO fields: `hints_stored`, `hints_delivered`, `hints_dropped`,
    /// `hints_pending`, `hinted_writes`.
    pub fn info_fields(&self) -> Vec<(&'static str, u64)> {
        let counters = &self.hints.counters;
        vec![
            ("hints_stored", HintCounters::get(&counters.stored)),
            ("hints_delivered", HintCounters::get(&counters.delivered)),
            ("hints_dropped", HintCounters::get(&counters.dropped)),
            ("hints_pending", self.hints.pending()),
            ("hinted_writes", HintCounters::get(&counters.hinted_writes)),
            (
                "hint_gossip_down_skips",
                self.gossip_down_skips.load(Ordering::Relaxed),
            ),
        ]
    }

    /// `replicas` with those that failed recently moved last (order otherwise kept).
    pub fn reachable_first<D: Clone>(&self, replicas: &[(NodeId, D)]) -> Vec<(NodeId, D)> {
        let (mut up, down): (Vec<_>, Vec<_>) = replicas
            .iter()
            .cloned()
            .partition(|(node, _)| !self.is_down(node));
        up.extend(down);
        up
    }

    /// Records that a call to `node` failed with `error` (remembered as down when the
    /// failure means it is unreachable) and hands the error back.
    pub fn note_failure(&self, node: &NodeId, error: Error) -> Error {
        if is_unreachable(&error) {
            self.mark_down(node);
        }
        error
    }

    /// Whether `node` failed recently or gossip holds it Down.
    pub fn is_down(&self, node: &NodeId) -> bool {
        let failed_recently = {
            let down = self
                .down_until
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            down.get(node).is_some_and(|until| Instant::now() < *until)
        };
        failed_recently || self.gossip_says_down(node)
    }

    pub(super) fn mark_down(&self, node: &NodeId) {
        self.down_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(node.clone(), Instant::now() + self.down_recheck);
    }

    /// Forgets that `node` failed (a call to it just succeeded).
    pub fn mark_up(&self, node: &NodeId) {
        let mut down = self
            .down_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !down.is_empty() {
            down.remove(node);
        }
    }

    /// Sends one write (its `siblings` for `key`) to replica `node` (in `datacenter`); in
    /// sloppy mode, if it is unreachable (or `failed` already says so), to a fallback
    /// with a hint. `Ok` means a node that counts toward W has it durably.
    #[allow(clippy::too_many_arguments)]
    pub async fn put(
        &self,
        transport: &PeerTransport,
        timeout: Duration,
        node: NodeId,
        datacenter: &str,
        write: &ReplicaWrite,
        fallbacks: &Fallbacks,
        failed: Option<Error>,
    ) -> Result<()> {
        let started = Instant::now();
        let (key, siblings) = (&write.key, &write.siblings);
        if self.mode == HandoffMode::Strict {
            if let Some(error) = failed {
                return Err(error);
            }
            return transport
                .call_encoded(&node, write.put(transport)?, timeout)
                .await
                .and_then(expect_ack);
        }
        let mut tried_direct = true;
        let reason = match failed {
            Some(error) => error.to_string(),
            None if self.is_down(&node) => {
                tried_direct = false;
                if self.skip_by_gossip(&node) {
                    "held down by the gossip failure detector".to_string()
                } else {
                    "marked down by a recent failure".to_string()
                }
            }
            None => match self.direct_put(transport, &node, write, timeout / 2).await {
                // Half the budget for the replica itself, so a fallback still has time.
                Ok(()) => return Ok(()),
                Err(error) if is_unreachable(&error) => error.to_string(),
                Err(error) => return Err(error),
            },
        };
        self.mark_down(&node);
        let mut last = String::from("no fallback node available");
        for _ in 0..FALLBACK_ATTEMPTS {
            let Some((fallback, _)) = fallbacks.take(datacenter, |n| !self.is_down(n)) else {
                break;
            };
            let remaining = timeout.saturating_sub(started.elapsed());
            match self
                .hinted_put(transport, &fallback, &node, key, siblings, remaining)
                .await
            {
                Ok(()) => {
                    HintCounters::add(&self.hints.counters.hinted_writes, 1);
                    return Ok(());
                }
                Err(error) => {
                    if is_unreachable(&error) {
                        self.mark_down(&fallback);
                    }
                    last = format!("fallback {fallback}: {error}");
                }
            }
        }
        // Skipped as down but no fallback took the write: the replica may be back.
        if !tried_direct {
            let remaining = timeout.saturating_sub(started.elapsed());
            match self.direct_put(transport, &node, write, remaining).await {
                Ok(()) => return Ok(()),
                Err(error) if !is_unreachable(&error) => return Err(error),
                Err(_) => {}
            }
        }
        Err(Error::PeerUnavailable {
            peer: node.to_string(),
            detail: format!("{reason}; hinted handoff failed: {last}"),
        })
    }

    async fn direct_put(
        &self,
        transport: &PeerTransport,
        node: &NodeId,
        write: &ReplicaWrite,
        timeout: Duration,
    ) -> Result<()> {
        transport
            .call_encoded(node, write.put(transport)?, timeout)
            .await
            .and_then(expect_ack)?;
        self.mark_up(node);
        Ok(())
    }

    /// Hands `owner`'s write to `fallback` (this node's own hint store when it is the
    /// fallback).
    async fn hinted_put(
        &self,
        transport: &PeerTransport,
        fallback: &NodeId,
        owner: &NodeId,
        key: &[u8],
        siblings: &[u8],
        timeout: Duration,
    ) -> Result<()> {
        if *fallback == self.node {
            let set = SiblingSet::decode(siblings)?;
            let now_ms = self.clock.now_ms();
            return store_hint(&self.hints, owner.to_string(), key.to_vec(), set, now_ms).await;
        }
        let message = PeerMessage::HintedPut {
            owner: owner.to_string(),
            key: key.to_vec(),
            siblings: siblings.to_vec(),
        };
        transport
            .call(fallback, message, timeout)
            .await
            .and_then(expect_ack)
    }
}
