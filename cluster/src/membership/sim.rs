//! A seeded, deterministic simulation of gossip membership: many [`Membership`] nodes on
//! one [`FakeClock`] and an in-memory network with optional loss and delay, no sockets.
//!
//! Time moves in synchronous rounds of `interval_ms`: in round `r` every live node ticks
//! (heartbeat, failure detection, push to `fanout` peers) at time `r * interval_ms`, then
//! every message due this round is delivered, then the clock advances. A message is lost
//! with probability `loss` and otherwise delivered `0..=max_delay_rounds` rounds late
//! (uniform). Nodes start knowing only the first `seeds` nodes. The same [`SimConfig`]
//! (seed included) always gives the same numbers.

use std::collections::HashMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{
    Clock, FakeClock, Gossip, MemberEvent, Membership, MembershipConfig, Status, Transport,
};
use crate::ring::NodeId;
use crate::{Error, Result};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub nodes: usize,
    pub seed: u64,
    pub membership: MembershipConfig,
    /// Probability that a message is dropped, in `[0, 1)`.
    pub loss: f64,
    /// A delivered message arrives up to this many rounds late.
    pub max_delay_rounds: u64,
    /// How many nodes (the first ones) every node knows at start.
    pub seeds: usize,
}

impl SimConfig {
    /// `nodes` nodes, a lossless prompt network, 3 seeds, and [`scaled_timeouts`].
    pub fn new(nodes: usize, seed: u64) -> SimConfig {
        SimConfig {
            nodes,
            seed,
            membership: scaled_timeouts(nodes),
            loss: 0.0,
            max_delay_rounds: 0,
            seeds: 3,
        }
    }

    fn validate(&self) -> Result<()> {
        let invalid = |field: &str, detail: String| {
            Err(Error::InvalidConfig {
                field: field.to_string(),
                detail,
            })
        };
        if self.nodes < 2 {
            return invalid("nodes", format!("{} nodes, need at least 2", self.nodes));
        }
        if !(0.0..1.0).contains(&self.loss) {
            return invalid("loss", format!("{} is not in [0, 1)", self.loss));
        }
        if self.seeds == 0 || self.seeds > self.nodes {
            return invalid(
                "seeds",
                format!(
                    "{} seeds, must be between 1 and nodes ({})",
                    self.seeds, self.nodes
                ),
            );
        }
        if self.max_delay_rounds > 1000 {
            return invalid(
                "max_delay_rounds",
                format!("{} rounds, at most 1000", self.max_delay_rounds),
            );
        }
        self.membership.validate()
    }
}

/// Counters over the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    pub rounds: u64,
    pub messages_sent: u64,
    pub messages_lost: u64,
    pub entries_delivered: u64,
    /// Suspected events about a node that was alive at the time.
    pub false_suspicions: u64,
    /// Down events about a node that was alive at the time.
    pub false_downs: u64,
}

/// Collects one node's sends during its tick.
struct Outbox(Vec<(NodeId, Arc<Gossip>)>);

impl Transport for Outbox {
    fn send(&mut self, to: &NodeId, gossip: Arc<Gossip>) {
        self.0.push((to.clone(), gossip));
    }
}

struct InFlight {
    due_round: u64,
    to: usize,
    gossip: Arc<Gossip>,
}

/// The simulated cluster.
pub struct Simulation {
    config: SimConfig,
    clock: FakeClock,
    nodes: Vec<Membership>,
    ids: Vec<NodeId>,
    index: HashMap<NodeId, usize>,
    alive: Vec<bool>,
    in_flight: Vec<InFlight>,
    rng: StdRng,
    round: u64,
    stats: SimStats,
}

/// Node `index`'s name: `n0000`, `n0001`, ...
pub fn node_name(index: usize) -> NodeId {
    NodeId::new(format!("n{index:04}"))
}

impl Simulation {
    pub fn new(config: SimConfig) -> Result<Simulation> {
        config.validate()?;
        let clock = FakeClock::new(0);
        let ids: Vec<NodeId> = (0..config.nodes).map(node_name).collect();
        let seeds: Vec<NodeId> = ids[..config.seeds].to_vec();
        let mut nodes = Vec::with_capacity(config.nodes);
        for (index, id) in ids.iter().enumerate() {
            nodes.push(Membership::new(
                config.membership.clone(),
                id.clone(),
                1,
                seeds.iter().cloned(),
                clock.now_ms(),
                mix(config.seed, index as u64),
            )?);
        }
        let index = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect();
        Ok(Simulation {
            rng: StdRng::seed_from_u64(mix(config.seed, u64::MAX)),
            alive: vec![true; config.nodes],
            config,
            clock,
            nodes,
            ids,
            index,
            in_flight: Vec::new(),
            round: 0,
            stats: SimStats::default(),
        })
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    pub fn stats(&self) -> SimStats {
        self.stats
    }

    pub fn round(&self) -> u64 {
        self.round
    }

    pub fn node(&self, index: usize) -> &Membership {
        &self.nodes[index]
    }

    pub fn id(&self, index: usize) -> &NodeId {
        &self.ids[index]
    }

    pub fn is_alive(&self, index: usize) -> bool {
        self.alive[index]
    }

    pub fn live_count(&self) -> usize {
        self.alive.iter().filter(|alive| **alive).count()
    }

    /// Crashes node `index`: it stops ticking, and messages to it are dropped.
    pub fn kill(&mut self, index: usize) {
        self.alive[index] = false;
    }

    /// Restarts node `index` with a fresh table (knowing only the seeds) in life
    /// `generation`.
    pub fn restart(&mut self, index: usize, generation: u64) -> Result<()> {
        let seeds: Vec<NodeId> = self.ids[..self.config.seeds].to_vec();
        self.nodes[index] = Membership::new(
            self.config.membership.clone(),
            self.ids[index].clone(),
            generation,
            seeds,
            self.clock.now_ms(),
            mix(self.config.seed ^ generation.rotate_left(17), index as u64),
        )?;
        self.alive[index] = true;
        Ok(())
    }

    /// One round: every live node ticks, due messages are delivered, the clock advances.
    pub fn step(&mut self) {
        self.round += 1;
        let mut outbox = Outbox(Vec::new());
        for from in 0..self.nodes.len() {
            if !self.alive[from] {
                continue;
            }
            self.nodes[from].tick(&self.clock, &mut outbox);
            for (to, gossip) in outbox.0.drain(..) {
                self.stats.messages_sent += 1;
                if self.config.loss > 0.0 && self.rng.gen_bool(self.config.loss) {
                    self.stats.messages_lost += 1;
                    continue;
                }
                let delay = if self.config.max_delay_rounds > 0 {
                    self.rng.gen_range(0..=self.config.max_delay_rounds)
                } else {
                    0
                };
                let to = self.index[&to];
                self.in_flight.push(InFlight {
                    due_round: self.round + delay,
                    to,
                    gossip,
                });
            }
        }
        let round = self.round;
        let (due, later): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|message| message.due_round <= round);
        self.in_flight = later;
        for message in due {
            if self.alive[message.to] {
                self.stats.entries_delivered += message.gossip.entries.len() as u64;
                self.nodes[message.to].receive(&self.clock, &message.gossip);
            }
        }
        for node in &mut self.nodes {
            for event in node.take_events() {
                let subject = match &event {
                    MemberEvent::Suspected(id) => id,
                    MemberEvent::Down(id) => id,
                    _ => continue,
                };
                if self.alive[self.index[subject]] {
                    match event {
                        MemberEvent::Suspected(_) => self.stats.false_suspicions += 1,
                        _ => self.stats.false_downs += 1,
                    }
                }
            }
        }
        self.clock.advance(self.config.membership.interval_ms);
        self.stats.rounds = self.round;
    }

    /// Whether every live node knows every live node as Alive (and no other as Alive).
    pub fn is_converged(&self) -> bool {
        let live: Vec<usize> = (0..self.nodes.len()).filter(|i| self.alive[*i]).collect();
        live.iter().all(|&viewer| {
            let node = &self.nodes[viewer];
            live.iter()
                .all(|&member| node.status_of(&self.ids[member]) == Some(Status::Alive))
        })
    }

    /// The oldest heartbeat any live node holds for any live member, in rounds: how far
    /// behind gossip runs in steady state, the floor for `suspect_after_ms`.
    pub fn max_staleness_rounds(&self) -> u64 {
        let mut oldest = 0;
        for (viewer, node) in self.nodes.iter().enumerate() {
            if !self.alive[viewer] {
                continue;
            }
            for row in node.view(&self.clock) {
                if self.index.get(&row.id).is_some_and(|&i| self.alive[i]) {
                    oldest = oldest.max(row.since_advance_ms);
                }
            }
        }
        oldest / self.config.membership.interval_ms
    }

    /// Runs until [`Simulation::is_converged`]; the rounds taken, or `None` after
    /// `max_rounds`.
    pub fn run_until_converged(&mut self, max_rounds: u64) -> Option<u64> {
        for taken in 0..=max_rounds {
            if self.is_converged() {
                return Some(taken);
            }
            if taken < max_rounds {
                self.step();
            }
        }
        None
    }

    /// Dissemination: the rounds from node `from`'s next heartbeat until every live node
    /// holds that heartbeat (or a newer one), or `None` after `max_rounds`.
    pub fn rounds_to_disseminate(&mut self, from: usize, max_rounds: u64) -> Option<u64> {
        let node = &self.nodes[from];
        let target = (node.generation(), node.heartbeat() + 1);
        let id = self.ids[from].clone();
        for taken in 1..=max_rounds {
            self.step();
            let reached = (0..self.nodes.len())
                .filter(|i| self.alive[*i])
                .all(|i| self.nodes[i].key_of(&id).is_some_and(|key| key >= target));
            if reached {
                return Some(taken);
            }
        }
        None
    }

    /// Kills node `victim` and runs until every live node marks it Down.
    pub fn detect_failure(&mut self, victim: usize, max_rounds: u64) -> Detection {
        self.kill(victim);
        let id = self.ids[victim].clone();
        let mut detection = Detection::default();
        for taken in 1..=max_rounds {
            self.step();
            let mut suspecting = 0;
            let mut down = 0;
            let mut live = 0;
            for (i, node) in self.nodes.iter().enumerate() {
                if !self.alive[i] {
                    continue;
                }
                live += 1;
                match node.status_of(&id) {
                    Some(Status::Suspect) => suspecting += 1,
                    Some(Status::Down) | None => down += 1,
                    _ => {}
                }
            }
            if detection.first_suspect.is_none() && suspecting + down > 0 {
                detection.first_suspect = Some(taken);
            }
            if detection.first_down.is_none() && down > 0 {
                detection.first_down = Some(taken);
            }
            if down == live {
                detection.all_down = Some(taken);
                break;
            }
        }
        detection
    }
}

/// Rounds after a crash (1 = the first round without the victim's heartbeat).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Detection {
    /// Some node suspects (or has already marked Down) the victim.
    pub first_suspect: Option<u64>,
    /// Some node marks it Down.
    pub first_down: Option<u64>,
    /// Every live node marks it Down; `None` if not within the bound.
    pub all_down: Option<u64>,
}

/// Timeouts that grow with log2(N), since a heartbeat needs O(log N) rounds to reach
/// everyone: 1 s interval, fanout 3, Suspect after `2 * log2(N) + 4` rounds of silence,
/// Down after twice that.
pub fn scaled_timeouts(nodes: usize) -> MembershipConfig {
    let log2 = u64::from(usize::BITS - nodes.max(2).leading_zeros());
    let interval_ms = 1000;
    MembershipConfig {
        interval_ms,
        fanout: 3,
        suspect_after_ms: (2 * log2 + 4) * interval_ms,
        down_after_ms: (4 * log2 + 8) * interval_ms,
        left_grace_ms: 60_000,
    }
}

/// One line of the example's table: a converged cluster, a heartbeat disseminated, a
/// node killed and detected.
#[derive(Debug, Clone, Copy)]
pub struct Trial {
    pub nodes: usize,
    pub seed: u64,
    pub rounds_to_converge: Option<u64>,
    pub rounds_to_disseminate: Option<u64>,
    /// [`Simulation::max_staleness_rounds`] once converged.
    pub max_staleness_rounds: u64,
    pub detection: Detection,
    pub stats: SimStats,
}

/// Runs [`Trial`]: converge from the seeds, disseminate one heartbeat of a random node,
/// kill another random node and wait until every live node marks it Down.
pub fn trial(config: SimConfig) -> Result<Trial> {
    let nodes = config.nodes;
    let seed = config.seed;
    let interval = config.membership.interval_ms;
    let down_rounds = config.membership.down_after_ms.div_ceil(interval);
    let mut sim = Simulation::new(config)?;
    let bound = 50 + 10 * (usize::BITS - nodes.leading_zeros()) as u64;
    let rounds_to_converge = sim.run_until_converged(bound);
    let max_staleness_rounds = sim.max_staleness_rounds();
    let mut pick = StdRng::seed_from_u64(mix(seed, 7));
    let source = pick.gen_range(0..nodes);
    let rounds_to_disseminate = sim.rounds_to_disseminate(source, bound);
    let mut victim = pick.gen_range(0..nodes);
    if victim == source {
        victim = (victim + 1) % nodes;
    }
    let detection = sim.detect_failure(victim, down_rounds + bound);
    Ok(Trial {
        nodes,
        seed,
        rounds_to_converge,
        rounds_to_disseminate,
        max_staleness_rounds,
        detection,
        stats: sim.stats(),
    })
}

/// SplitMix64 of `seed` and `stream`: independent RNG seeds per node.
fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed
        .wrapping_add(stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
