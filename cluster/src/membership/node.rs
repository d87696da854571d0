//! The membership of a running node: [`Membership`] driven by a tokio task on the system
//! clock, its gossip carried by the peer transport as [`PeerMessage::Gossip`] (through the
//! link emulator, so `LINK.PARTITION` makes the other side Suspect, then Down).
//!
//! Observable through `CLUSTER.MEMBERS` ([`MembershipService::lines`]) and INFO's
//! `# Membership` section ([`MembershipService::info`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;

use super::{Gossip, Membership, Status, SystemClock, Transport};
use crate::config::NodeConfig;
use crate::net::transport::{HandlerFuture, PeerHandler, PeerTransport};
use crate::protocol::peer::PeerMessage;
use crate::ring::NodeId;
use crate::Result;

/// One node's membership state, its clock and its gossip task.
pub struct MembershipService {
    state: Mutex<Membership>,
    clock: SystemClock,
    datacenters: BTreeMap<NodeId, String>,
    interval: Duration,
    task: Mutex<Option<JoinHandle<()>>>,
    /// While set, rounds are skipped: a node waiting to be added to the ring gossips to
    /// nobody (see [`MembershipService::hold`]).
    held: AtomicBool,
}

/// Collects the (peer, table) pairs of one round, sent once the state lock is released.
#[derive(Default)]
struct Outbox(Vec<(NodeId, Arc<Gossip>)>);

impl Transport for Outbox {
    fn send(&mut self, to: &NodeId, gossip: Arc<Gossip>) {
        self.0.push((to.clone(), gossip));
    }
}

impl MembershipService {
    /// This node's membership from `config` (with members): the other members are the
    /// seeds; the generation is the wall clock in milliseconds, so a restarted node starts
    /// a higher generation than its previous life.
    pub fn new(config: &NodeConfig) -> Result<Arc<MembershipService>> {
        let generation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |elapsed| elapsed.as_millis() as u64)
            .max(1);
        let clock = SystemClock::new();
        let seeds = config
            .members
            .iter()
            .map(|member| NodeId::new(&member.id))
            .collect::<Vec<_>>();
        let rng_seed = generation
            ^ config
                .node_id
                .bytes()
                .fold(0u64, |hash, byte| hash.rotate_left(5) ^ u64::from(byte));
        let membership = Membership::new(
            config.membership.clone(),
            NodeId::new(&config.node_id),
            generation,
            seeds,
            super::Clock::now_ms(&clock),
            rng_seed,
        )?;
        Ok(Arc::new(MembershipService {
            state: Mutex::new(membership),
            clock,
            datacenters: config
                .members
                .iter()
                .map(|member| (NodeId::new(&member.id), member.datacenter.clone()))
                .collect(),
            interval: Duration::from_millis(config.membership.interval_ms),
            task: Mutex::new(None),
            held: AtomicBool::new(false),
        }))
    }

    /// Whether the failure detector holds `member` Down (or Left): its heartbeat has not
    /// advanced for the down timeout. Unknown members are not reported down.
    pub fn is_down(&self, member: &NodeId) -> bool {
        matches!(
            self.state().status_of(member),
            Some(Status::Down | Status::Left)
        )
    }

    fn state(&self) -> MutexGuard<'_, Membership> {
        // The state stays consistent between calls; a panic elsewhere must not stop gossip.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the gossip task: a round every `interval_ms`, sent through `transport`.
    pub fn start(self: &Arc<Self>, transport: Arc<PeerTransport>) {
        let service = Arc::clone(self);
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(service.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                service.round(&transport);
            }
        });
        if let Some(previous) = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .replace(task)
        {
            previous.abort();
        }
    }

    /// Stops gossiping until [`MembershipService::release`]: for a node started to join,
    /// which the members refuse as an unknown peer until a ring change adds it (each refusal
    /// a warning on both sides). Gossip from others is still taken.
    pub fn hold(&self) {
        self.held.store(true, Ordering::Relaxed);
    }

    /// Gossips again from the next round on.
    pub fn release(&self) {
        self.held.store(false, Ordering::Relaxed);
    }

    fn round(&self, transport: &PeerTransport) {
        if self.held.load(Ordering::Relaxed) {
            return;
        }
        let mut outbox = Outbox::default();
        let events = {
            let mut state = self.state();
            state.tick(&self.clock, &mut outbox);
            state.take_events()
        };
        let node = transport.local().node.clone();
        for event in events {
            log::info!("node {node}: membership: {event:?}");
        }
        for (to, table) in outbox.0 {
            let message = PeerMessage::Gossip {
                table: Arc::unwrap_or_clone(table),
            };
            // Gossip tolerates loss: a full queue or an unknown peer is the next round's job.
            let _ = transport.send(&to, message);
        }
    }

    /// Merges a peer's table.
    pub fn receive(&self, table: &Gossip) {
        let mut state = self.state();
        state.receive(&self.clock, table);
        for event in state.take_events() {
            log::info!("node {}: membership: {event:?}", state.id());
        }
    }

    /// Announces that this node left the ring (after `CLUSTER.LEAVE`): its status becomes
    /// Left, which the next rounds spread.
    pub fn leave(&self) {
        self.state().leave();
    }

    /// Stops the gossip task.
    pub fn stop(&self) {
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
        {
            task.abort();
        }
    }

    /// `CLUSTER.MEMBERS`: one line per member, sorted by id:
    /// `ID DATACENTER STATUS generation G heartbeat H since_advance_ms MS` (` self` last on
    /// this node's line).
    pub fn lines(&self) -> Vec<String> {
        self.lines_with(|_| None)
    }

    /// [`MembershipService::lines`], asking `datacenter_of` for the datacenter of members
    /// not in the configured member list (nodes that joined later).
    pub fn lines_with(&self, datacenter_of: impl Fn(&NodeId) -> Option<String>) -> Vec<String> {
        let view = self.state().view(&self.clock);
        view.into_iter()
            .map(|row| {
                let learnt = datacenter_of(&row.id);
                let datacenter = self
                    .datacenters
                    .get(&row.id)
                    .or(learnt.as_ref())
                    .map_or("?", String::as_str);
                format!(
                    "{} {datacenter} {} generation {} heartbeat {} since_advance_ms {}{}",
                    row.id,
                    row.status.as_str(),
                    row.generation,
                    row.heartbeat,
                    row.since_advance_ms,
                    if row.is_self { " self" } else { "" },
                )
            })
            .collect()
    }

    /// INFO's `# Membership` fields.
    pub fn info(&self) -> Vec<(&'static str, u64)> {
        let state = self.state();
        let mut counts = [0u64; 3];
        for row in state.view(&self.clock) {
            match row.status {
                Status::Alive => counts[0] += 1,
                Status::Suspect => counts[1] += 1,
                Status::Down => counts[2] += 1,
                Status::Left => {}
            }
        }
        let stats = state.stats();
        vec![
            ("members_alive", counts[0]),
            ("members_suspect", counts[1]),
            ("members_down", counts[2]),
            ("gossip_rounds", stats.rounds),
            ("gossip_messages_sent", stats.messages_sent),
            ("gossip_messages_received", stats.messages_received),
        ]
    }
}

impl Drop for MembershipService {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Takes [`PeerMessage::Gossip`] for the membership and hands every other message on.
pub struct MembershipHandler {
    service: Arc<MembershipService>,
    inner: Arc<dyn PeerHandler>,
}

impl MembershipHandler {
    pub fn new(service: Arc<MembershipService>, inner: Arc<dyn PeerHandler>) -> Self {
        MembershipHandler { service, inner }
    }
}

impl PeerHandler for MembershipHandler {
    fn handle<'a>(&'a self, from: &'a NodeId, message: PeerMessage) -> HandlerFuture<'a> {
        let PeerMessage::Gossip { table } = message else {
            return self.inner.handle(from, message);
        };
        self.service.receive(&table);
        Box::pin(async { None })
    }
}
