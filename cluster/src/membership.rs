//! Gossip membership and failure detection, as plain logic.
//!
//! Each node keeps a table of members: (id, generation, heartbeat counter, status, the
//! local time the counter last advanced). Every `interval_ms` the driver calls
//! [`Membership::tick`]: the node increments its own heartbeat, re-evaluates every member
//! against its own clock, and pushes its whole table to `fanout` peers chosen by a seeded
//! RNG. A received table is merged by [`Membership::receive`]: per member, the entry with
//! the higher `(generation, heartbeat)` wins. No sockets and no system clock in here: time
//! comes from a [`Clock`] and messages leave through a [`Transport`], so the same code runs
//! in the seeded simulation ([`sim`]) and, later, behind the peer transport.
//!
//! # What marks a node Down
//!
//! Only this node's own observation: the member's `(generation, heartbeat)` has not
//! advanced *in this node's table* for `down_after_ms` of *this node's clock* (and for
//! `suspect_after_ms` it is Suspect first). The advance may arrive by any gossip path, so a
//! member is Down here only when no path from it has carried a newer heartbeat for that
//! long. Verdicts are **not** spread: the status field on the wire is the sender's opinion
//! and receivers ignore it for other members (one node's bad link cannot make the whole
//! cluster declare a healthy node down). Two statuses on the wire do have an effect:
//!
//! - `Left`, when it comes with a newer key than the receiver holds: it can only have
//!   been written by the member itself (a member announces its own departure by bumping
//!   its heartbeat with status Left), so it is adopted. Left members are removed from the
//!   table `left_grace_ms` after this node learnt of it, and a stale copy arriving later
//!   (key not newer than the removed one) is ignored.
//! - `Suspect`/`Down` *about the receiver itself*: it refutes by bumping its generation
//!   above the one suspected, so its next heartbeat beats every stale entry. A member
//!   that hears of itself with a key newer than its own (a previous life that the cluster
//!   still remembers, e.g. after a restart without persisted state) does the same.
//!
//! A member's heartbeat advancing again makes it Alive (recovered). A member is Down until
//! then; Down members are never removed automatically (that is an operator's decision).
//!
//! # Generations
//!
//! The generation identifies one life of a node: a restarted node must start with a
//! generation higher than any it used before (e.g. wall-clock seconds at start, or a
//! persisted counter plus one). Its heartbeat restarts at 0, and since entries are ordered
//! by `(generation, heartbeat)` the new life wins over any remembered heartbeat of the old
//! one; receivers report [`MemberEvent::Restarted`].

mod clock;
mod config;
pub mod node;
pub mod sim;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::ring::NodeId;
use crate::Result;

pub use clock::{Clock, FakeClock, SystemClock};
pub use config::{MembershipConfig, DURATION_MAX_MS, FANOUT_MAX};

/// Where gossip goes. Delivery may fail silently: gossip tolerates loss.
pub trait Transport {
    /// Sends `gossip` to `to`. The `Arc` lets an in-memory network share one table among
    /// the `fanout` recipients; a socket transport encodes it.
    fn send(&mut self, to: &NodeId, gossip: Arc<Gossip>);
}

/// A member's state as one node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Its heartbeat advanced within `suspect_after_ms`.
    Alive,
    /// No advance for `suspect_after_ms`.
    Suspect,
    /// No advance for `down_after_ms`.
    Down,
    /// It announced its departure.
    Left,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Alive => "alive",
            Status::Suspect => "suspect",
            Status::Down => "down",
            Status::Left => "left",
        }
    }
}

/// One member's row in a gossip message: the sender's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GossipEntry {
    pub id: NodeId,
    pub generation: u64,
    pub heartbeat: u64,
    /// The sender's opinion; see the module documentation for what receivers do with it.
    pub status: Status,
}

impl GossipEntry {
    fn key(&self) -> (u64, u64) {
        (self.generation, self.heartbeat)
    }
}

/// A node's whole table, pushed to a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gossip {
    pub from: NodeId,
    pub entries: Vec<GossipEntry>,
}

/// What changed in this node's view; drained by [`Membership::take_events`] for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A member this node had not heard of.
    Joined(NodeId),
    /// Heartbeat stalled for `suspect_after_ms`.
    Suspected(NodeId),
    /// Heartbeat stalled for `down_after_ms`.
    Down(NodeId),
    /// A Suspect or Down member's heartbeat advanced again.
    Recovered(NodeId),
    /// A member's generation increased (it restarted, or refuted a suspicion).
    Restarted {
        id: NodeId,
        old_generation: u64,
        new_generation: u64,
    },
    /// A member announced it left.
    Left(NodeId),
    /// A Left member's grace period ended; it is no longer in the table.
    Removed(NodeId),
    /// This node heard itself suspected (or an older life of itself) and bumped its
    /// generation.
    Refuted {
        old_generation: u64,
        new_generation: u64,
    },
}

/// One row of [`Membership::view`], for the admin command and INFO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub id: NodeId,
    pub generation: u64,
    pub heartbeat: u64,
    pub status: Status,
    /// Milliseconds since the heartbeat last advanced here (0 for this node).
    pub since_advance_ms: u64,
    pub is_self: bool,
}

/// Counts for INFO.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MembershipStats {
    pub rounds: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub entries_received: u64,
    pub entries_applied: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    generation: u64,
    heartbeat: u64,
    status: Status,
    /// Local time the key last advanced (or the member was first heard of).
    advanced_ms: u64,
    /// Local time the status last changed.
    status_since_ms: u64,
}

impl Entry {
    fn key(&self) -> (u64, u64) {
        (self.generation, self.heartbeat)
    }
}

/// One node's membership state machine.
#[derive(Debug)]
pub struct Membership {
    config: MembershipConfig,
    id: NodeId,
    generation: u64,
    heartbeat: u64,
    status: Status,
    /// Every other member, sorted by id: merging a (sorted) gossip table is one walk, and
    /// iteration order, hence peer choice, is reproducible from the seed.
    members: Vec<(NodeId, Entry)>,
    /// Members removed after leaving, with the key they left with: older copies of them
    /// still circulating are ignored.
    removed: BTreeMap<NodeId, (u64, u64)>,
    rng: StdRng,
    events: Vec<MemberEvent>,
    stats: MembershipStats,
}

impl Membership {
    /// A node `id` in its life `generation`, knowing `seeds` (other members it may gossip
    /// to first; they are treated as heard of now). `seed` seeds the peer-choice RNG.
    pub fn new(
        config: MembershipConfig,
        id: NodeId,
        generation: u64,
        seeds: impl IntoIterator<Item = NodeId>,
        now_ms: u64,
        rng_seed: u64,
    ) -> Result<Membership> {
        config.validate()?;
        let mut membership = Membership {
            config,
            id,
            generation,
            heartbeat: 0,
            status: Status::Alive,
            members: Vec::new(),
            removed: BTreeMap::new(),
            rng: StdRng::seed_from_u64(rng_seed),
            events: Vec::new(),
            stats: MembershipStats::default(),
        };
        for seed in seeds {
            if seed != membership.id {
                membership.members.push((
                    seed,
                    Entry {
                        generation: 0,
                        heartbeat: 0,
                        status: Status::Alive,
                        advanced_ms: now_ms,
                        status_since_ms: now_ms,
                    },
                ));
            }
        }
        membership.members.sort_by(|a, b| a.0.cmp(&b.0));
        membership.members.dedup_by(|a, b| a.0 == b.0);
        Ok(membership)
    }

    fn find(&self, member: &NodeId) -> Option<&Entry> {
        self.members
            .binary_search_by(|(id, _)| id.cmp(member))
            .ok()
            .map(|index| &self.members[index].1)
    }

    pub fn id(&self) -> &NodeId {
        &self.id
    }

    pub fn config(&self) -> &MembershipConfig {
        &self.config
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn heartbeat(&self) -> u64 {
        self.heartbeat
    }

    pub fn stats(&self) -> MembershipStats {
        self.stats
    }

    /// This node's current status of `member` (`None` if unknown). This node itself is
    /// Alive until it leaves.
    pub fn status_of(&self, member: &NodeId) -> Option<Status> {
        if *member == self.id {
            return Some(self.status);
        }
        self.find(member).map(|entry| entry.status)
    }

    /// The `(generation, heartbeat)` this node holds for `member`.
    pub fn key_of(&self, member: &NodeId) -> Option<(u64, u64)> {
        if *member == self.id {
            return Some((self.generation, self.heartbeat));
        }
        self.find(member).map(Entry::key)
    }

    /// Number of members in the table, this node included.
    pub fn len(&self) -> usize {
        self.members.len() + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Members this node considers Alive, this node included if it has not left.
    pub fn live_members(&self) -> Vec<NodeId> {
        let mut live: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, entry)| entry.status == Status::Alive)
            .map(|(id, _)| id.clone())
            .collect();
        if self.status == Status::Alive {
            live.push(self.id.clone());
        }
        live.sort();
        live
    }

    /// The whole table, sorted by id, this node included.
    pub fn view(&self, clock: &impl Clock) -> Vec<MemberView> {
        let now = clock.now_ms();
        let mut rows: Vec<MemberView> = self
            .members
            .iter()
            .map(|(id, entry)| MemberView {
                id: id.clone(),
                generation: entry.generation,
                heartbeat: entry.heartbeat,
                status: entry.status,
                since_advance_ms: now.saturating_sub(entry.advanced_ms),
                is_self: false,
            })
            .collect();
        rows.push(MemberView {
            id: self.id.clone(),
            generation: self.generation,
            heartbeat: self.heartbeat,
            status: self.status,
            since_advance_ms: 0,
            is_self: true,
        });
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        rows
    }

    /// Events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<MemberEvent> {
        std::mem::take(&mut self.events)
    }

    /// Announces this node's departure: its status becomes Left with a new heartbeat, which
    /// the next rounds spread. The driver keeps ticking for a few rounds, then stops.
    pub fn leave(&mut self) {
        self.status = Status::Left;
        self.heartbeat += 1;
    }

    /// This node's table as a gossip message.
    pub fn gossip(&self) -> Gossip {
        let own = self.members.partition_point(|(id, _)| *id < self.id);
        let row = |(id, entry): &(NodeId, Entry)| GossipEntry {
            id: id.clone(),
            generation: entry.generation,
            heartbeat: entry.heartbeat,
            status: entry.status,
        };
        let mut entries = Vec::with_capacity(self.members.len() + 1);
        entries.extend(self.members[..own].iter().map(row));
        entries.push(GossipEntry {
            id: self.id.clone(),
            generation: self.generation,
            heartbeat: self.heartbeat,
            status: self.status,
        });
        entries.extend(self.members[own..].iter().map(row));
        Gossip {
            from: self.id.clone(),
            entries,
        }
    }

    /// One round: heartbeat, re-evaluate every member against `clock`, push the table to
    /// `fanout` peers. Returns the peers chosen.
    pub fn tick(&mut self, clock: &impl Clock, transport: &mut impl Transport) -> Vec<NodeId> {
        let now = clock.now_ms();
        self.stats.rounds += 1;
        self.heartbeat += 1;
        self.detect(now);
        let peers = self.choose_peers();
        if !peers.is_empty() {
            let gossip = Arc::new(self.gossip());
            for peer in &peers {
                transport.send(peer, Arc::clone(&gossip));
                self.stats.messages_sent += 1;
            }
        }
        peers
    }

    /// Applies the timeouts at local time `now`.
    fn detect(&mut self, now: u64) {
        let config = &self.config;
        let mut removed = Vec::new();
        for (id, entry) in &mut self.members {
            let stalled = now.saturating_sub(entry.advanced_ms);
            match entry.status {
                Status::Alive | Status::Suspect if stalled > config.down_after_ms => {
                    if entry.status == Status::Alive {
                        self.events.push(MemberEvent::Suspected(id.clone()));
                    }
                    entry.status = Status::Down;
                    entry.status_since_ms = now;
                    self.events.push(MemberEvent::Down(id.clone()));
                }
                Status::Alive if stalled > config.suspect_after_ms => {
                    entry.status = Status::Suspect;
                    entry.status_since_ms = now;
                    self.events.push(MemberEvent::Suspected(id.clone()));
                }
                Status::Left
                    if now.saturating_sub(entry.status_since_ms) >= config.left_grace_ms =>
                {
                    removed.push(id.clone());
                }
                _ => {}
            }
        }
        if !removed.is_empty() {
            self.members.retain(|(id, entry)| {
                if entry.status == Status::Left && removed.contains(id) {
                    self.removed.insert(id.clone(), entry.key());
                    false
                } else {
                    true
                }
            });
            self.events
                .extend(removed.into_iter().map(MemberEvent::Removed));
        }
    }

    /// `fanout` distinct members among the Alive and Suspect ones, plus, with probability
    /// `down / (reachable + 1)`, one Down member, so partitions heal and restarted nodes
    /// are found even when everyone has given up on them.
    fn choose_peers(&mut self) -> Vec<NodeId> {
        let mut reachable = Vec::new();
        let mut down = Vec::new();
        for (id, entry) in &self.members {
            match entry.status {
                Status::Alive | Status::Suspect => reachable.push(id),
                Status::Down => down.push(id),
                Status::Left => {}
            }
        }
        let count = self.config.fanout.min(reachable.len());
        let mut peers: Vec<NodeId> =
            rand::seq::index::sample(&mut self.rng, reachable.len(), count)
                .into_iter()
                .map(|index| reachable[index].clone())
                .collect();
        if !down.is_empty() {
            let chance = down.len() as f64 / (reachable.len() + 1) as f64;
            if self.rng.gen_bool(chance.min(1.0)) {
                let index = self.rng.gen_range(0..down.len());
                peers.push(down[index].clone());
            }
        }
        peers
    }

    /// Merges a peer's table at local time `clock.now_ms()`. Tables sorted by id (as
    /// [`Membership::gossip`] makes them) merge in one walk; any order is accepted.
    pub fn receive(&mut self, clock: &impl Clock, gossip: &Gossip) {
        let now = clock.now_ms();
        self.stats.messages_received += 1;
        let mut joined: Vec<(NodeId, Entry)> = Vec::new();
        let mut cursor = 0;
        for incoming in &gossip.entries {
            self.stats.entries_received += 1;
            if incoming.id == self.id {
                self.hear_about_self(incoming);
                continue;
            }
            if !self.removed.is_empty() {
                if let Some(removed_key) = self.removed.get(&incoming.id) {
                    if incoming.key() <= *removed_key {
                        continue;
                    }
                    self.removed.remove(&incoming.id);
                }
            }
            let adopted = if incoming.status == Status::Left {
                Status::Left
            } else {
                Status::Alive
            };
            let found = match self.members.get(cursor) {
                Some((id, _)) if *id == incoming.id => Ok(cursor),
                _ => self
                    .members
                    .binary_search_by(|(id, _)| id.cmp(&incoming.id)),
            };
            let index = match found {
                Ok(index) => index,
                Err(_) => {
                    match joined.iter_mut().find(|(id, _)| *id == incoming.id) {
                        Some((_, entry)) if incoming.key() > entry.key() => {
                            entry.generation = incoming.generation;
                            entry.heartbeat = incoming.heartbeat;
                            entry.status = adopted;
                        }
                        Some(_) => {}
                        None => joined.push((
                            incoming.id.clone(),
                            Entry {
                                generation: incoming.generation,
                                heartbeat: incoming.heartbeat,
                                status: adopted,
                                advanced_ms: now,
                                status_since_ms: now,
                            },
                        )),
                    }
                    continue;
                }
            };
            cursor = index + 1;
            let entry = &mut self.members[index].1;
            if incoming.key() <= entry.key() {
                continue;
            }
            self.stats.entries_applied += 1;
            // Generation 0 is a seed this node was told about but never heard.
            if incoming.generation > entry.generation && entry.generation != 0 {
                self.events.push(MemberEvent::Restarted {
                    id: incoming.id.clone(),
                    old_generation: entry.generation,
                    new_generation: incoming.generation,
                });
            }
            entry.generation = incoming.generation;
            entry.heartbeat = incoming.heartbeat;
            entry.advanced_ms = now;
            if entry.status != adopted {
                match (entry.status, adopted) {
                    (Status::Suspect | Status::Down, Status::Alive) => self
                        .events
                        .push(MemberEvent::Recovered(incoming.id.clone())),
                    (_, Status::Left) => self.events.push(MemberEvent::Left(incoming.id.clone())),
                    _ => {}
                }
                entry.status = adopted;
                entry.status_since_ms = now;
            }
        }
        if !joined.is_empty() {
            self.stats.entries_applied += joined.len() as u64;
            for (id, entry) in &joined {
                self.events.push(if entry.status == Status::Left {
                    MemberEvent::Left(id.clone())
                } else {
                    MemberEvent::Joined(id.clone())
                });
            }
            self.members.extend(joined);
            self.members.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }

    /// Someone's row about this node: refute suspicion, or outgrow an older life.
    fn hear_about_self(&mut self, incoming: &GossipEntry) {
        if self.status == Status::Left {
            return;
        }
        let suspected = matches!(incoming.status, Status::Suspect | Status::Down)
            && incoming.generation >= self.generation;
        let newer = incoming.key() > (self.generation, self.heartbeat);
        if suspected || newer {
            let old_generation = self.generation;
            self.generation = self.generation.max(incoming.generation) + 1;
            self.heartbeat = 0;
            self.events.push(MemberEvent::Refuted {
                old_generation,
                new_generation: self.generation,
            });
        }
    }
}
