//! Calls waiting for their replies: the pending table's entries, where a reply goes, the
//! call future with a deadline ([`DeadlineCall`]) and the sweep that fails overdue calls.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{lock, Shared};
use crate::protocol::peer::PeerMessage;
use crate::ring::NodeId;
use crate::{Error, Result};

pub(super) struct Pending {
    pub(super) peer: NodeId,
    pub(super) reply: Reply,
    /// When the sweep fails the call with [`Error::PeerTimeout`] (`None`: the caller
    /// bounds the wait itself), and the timeout it reports.
    pub(super) deadline: Option<(Instant, u64)>,
}

/// Where a reply goes.
pub(super) enum Reply {
    /// To the caller's future.
    Waiting(oneshot::Sender<Result<PeerMessage>>),
    /// To a function run where the reply is read (a call nobody waits for any more, see
    /// [`DeadlineCall::detach`]).
    Detached(OnReply),
}

/// What a detached call does with its reply (or its failure); runs on the task that read
/// the reply, or on the sweep: it must be quick (spawn anything slow).
pub type OnReply = Box<dyn FnOnce(Result<PeerMessage>) + Send + 'static>;

impl Reply {
    pub(super) fn send(self, result: Result<PeerMessage>) {
        match self {
            Reply::Waiting(sender) => {
                let _ = sender.send(result);
            }
            Reply::Detached(on_reply) => on_reply(result),
        }
    }
}

/// How often the sweep fails the calls whose deadline passed: the lateness of a
/// [`super::PeerTransport::start_call`] timeout, at most.
const SWEEP_INTERVAL: Duration = Duration::from_millis(20);

/// Hashes the pending calls' request ids: they are this node's own counter, so a
/// multiplication spreads them well enough, without SipHash's cost on every call, reply
/// and forgotten call.
#[derive(Clone, Copy, Default)]
pub(super) struct RequestIds;

impl std::hash::BuildHasher for RequestIds {
    type Hasher = RequestIdHasher;

    fn build_hasher(&self) -> RequestIdHasher {
        RequestIdHasher(0)
    }
}

pub(super) struct RequestIdHasher(u64);

impl std::hash::Hasher for RequestIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        // Fibonacci hashing: the high bits, which hashbrown uses for its tags, vary too.
        self.0 = (self.0 ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A call started with [`super::PeerTransport::start_call`]: a future of its reply, failed by the
/// transport's sweep once its deadline has passed. Dropping it forgets the call.
pub struct DeadlineCall {
    pub(super) shared: Arc<Shared>,
    pub(super) peer: NodeId,
    pub(super) request_id: u64,
    /// `None` once detached.
    pub(super) receiver: Option<oneshot::Receiver<Result<PeerMessage>>>,
}

impl DeadlineCall {
    /// Stops waiting here: the reply (or the failure: deadline passed, connection
    /// refused) goes to `on_reply` instead, run where it is read (never after a shutdown). With no task or future left per call, a
    /// request's remaining calls cost nothing until their replies come.
    pub fn detach(mut self, on_reply: OnReply) {
        let Some(mut receiver) = self.receiver.take() else {
            return;
        };
        {
            let mut pending = lock(&self.shared.pending);
            if let Some(waiting) = pending.get_mut(&self.request_id) {
                waiting.reply = Reply::Detached(on_reply);
                return;
            }
        }
        // Already answered (or failed) and not yet seen here; nothing if the transport
        // shut down.
        if let Ok(result) = receiver.try_recv() {
            on_reply(result);
        }
    }
}

impl Future for DeadlineCall {
    type Output = Result<PeerMessage>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let Some(receiver) = self.receiver.as_mut() else {
            return std::task::Poll::Ready(Err(Error::Stopped(
                "the call was detached".to_string(),
            )));
        };
        let polled = Pin::new(receiver).poll(cx);
        polled.map(|result| result.unwrap_or_else(|_| Err(shut_down(&self.peer))))
    }
}

impl Drop for DeadlineCall {
    fn drop(&mut self) {
        if self.receiver.is_some() {
            lock(&self.shared.pending).remove(&self.request_id);
        }
    }
}

fn shut_down(peer: &NodeId) -> Error {
    Error::PeerUnavailable {
        peer: peer.to_string(),
        detail: "the transport shut down".to_string(),
    }
}

/// Fails overdue [`DeadlineCall`]s every [`SWEEP_INTERVAL`] while the transport lives.
pub(super) async fn sweep_deadlines(shared: std::sync::Weak<Shared>) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.fail_overdue(now);
    }
}

pub(super) struct ForgetPending<'a> {
    pub(super) shared: &'a Shared,
    pub(super) request_id: u64,
}

impl Drop for ForgetPending<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).remove(&self.request_id);
    }
}

impl Shared {
    /// Hands a response from `from` to the call waiting for it. Late replies (after the
    /// call timed out) and replies from the wrong node are ignored.
    pub(super) fn complete(&self, from: &NodeId, request_id: u64, message: PeerMessage) {
        let mut pending = lock(&self.pending);
        let Some(waiting) = pending.remove(&request_id) else {
            return;
        };
        if waiting.peer != *from {
            log::warn!(
                "peer transport {}: ignoring a reply to request {request_id} from {from}, \
                 which was sent to {}",
                self.local.node,
                waiting.peer
            );
            pending.insert(request_id, waiting);
            return;
        }
        drop(pending);
        waiting.reply.send(Ok(message));
    }

    /// Removes and returns the pending calls `select` picks. Their replies are handed over
    /// by the caller outside the lock: a detached call's function may call again.
    pub(super) fn take_pending(&self, select: impl Fn(&Pending) -> bool) -> Vec<Pending> {
        let mut pending = lock(&self.pending);
        let picked: Vec<u64> = pending
            .iter()
            .filter(|(_, waiting)| select(waiting))
            .map(|(request_id, _)| *request_id)
            .collect();
        picked
            .into_iter()
            .filter_map(|request_id| pending.remove(&request_id))
            .collect()
    }

    /// Fails every call waiting on `peer`, when its node refused our connection.
    pub(super) fn fail_pending(&self, peer: &NodeId, detail: &str) {
        let failed = self.take_pending(|waiting| waiting.peer == *peer);
        for waiting in failed {
            waiting.reply.send(Err(Error::PeerUnavailable {
                peer: peer.to_string(),
                detail: detail.to_string(),
            }));
        }
    }

    /// Fails the calls whose deadline has passed with [`Error::PeerTimeout`].
    pub(super) fn fail_overdue(&self, now: Instant) {
        let overdue =
            self.take_pending(|waiting| waiting.deadline.is_some_and(|(at, _)| at <= now));
        for waiting in overdue {
            let after_ms = waiting.deadline.map_or(0, |(_, after_ms)| after_ms);
            waiting.reply.send(Err(Error::PeerTimeout {
                peer: waiting.peer.to_string(),
                after_ms,
            }));
        }
    }
}
