//! Which node each request goes to.
//!
//! A [`Router`] picks, for a key, an index into the list of target addresses the driver
//! connects to. Policies, as `--routing` spells them ([`Policy::parse`]):
//!
//! - `round-robin` ([`RoundRobin`]): every target in turn, whatever the key.
//! - `same-dc:DC` ([`SameDatacenter`]): the targets in datacenter `DC` in turn, as clients
//!   that only talk to their local datacenter do.
//! - `token-aware` / `token-aware:DC` ([`TokenAware`]): a target that is a replica of the
//!   key, preferring replicas in `DC`, so the coordinator keeps a copy itself and saves a
//!   network hop, as the token-aware policies of Cassandra's and Riak's drivers do.
//!
//! The datacenter policies need the cluster's [`Topology`], fetched from any node with
//! [`fetch_topology`] (`CLUSTER.TOPOLOGY`); targets are matched to members by client
//! address.

#[cfg(test)]
mod tests;
mod topology;
mod watch;

pub use topology::{call, fetch_topology, Topology, TopologyMember};
pub use watch::{TopologyWatch, FOLLOW_INTERVAL};

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use crate::{Error, Result};

/// Picks the target for each request.
pub trait Router: Send {
    /// The index, into the target address list the router was built for (and the targets
    /// it added since, [`Router::added_target`]), of the node `key`'s request goes to.
    fn choose(&mut self, key: &[u8]) -> usize;

    /// The address of target `index` if this router added it: a token-aware router that
    /// follows the ring adds each member that joins ([`TokenAware::following`]).
    fn added_target(&self, _index: usize) -> Option<SocketAddr> {
        None
    }
}

/// Every target in turn.
#[derive(Debug, Clone)]
pub struct RoundRobin {
    targets: usize,
    next: usize,
}

impl RoundRobin {
    /// Over `targets` targets (at least one).
    pub fn new(targets: usize) -> Result<RoundRobin> {
        if targets == 0 {
            return Err(invalid("round-robin needs at least one target".into()));
        }
        Ok(RoundRobin { targets, next: 0 })
    }

    /// The same router starting `by` targets further on (so clients spread from their
    /// first request).
    pub fn rotated(mut self, by: usize) -> RoundRobin {
        self.next = (self.next + by) % self.targets;
        self
    }
}

impl Router for RoundRobin {
    fn choose(&mut self, _key: &[u8]) -> usize {
        let chosen = self.next;
        self.next = (self.next + 1) % self.targets;
        chosen
    }
}

/// The targets of one datacenter in turn.
#[derive(Debug, Clone)]
pub struct SameDatacenter {
    indices: Vec<usize>,
    next: usize,
}

impl SameDatacenter {
    /// Over the targets whose datacenter (`target_datacenters[i]` for target `i`) is
    /// `datacenter`; fails when there is none.
    pub fn new<S: AsRef<str>>(
        datacenter: &str,
        target_datacenters: &[Option<S>],
    ) -> Result<SameDatacenter> {
        let indices: Vec<usize> = target_datacenters
            .iter()
            .enumerate()
            .filter(|(_, dc)| dc.as_ref().is_some_and(|dc| dc.as_ref() == datacenter))
            .map(|(index, _)| index)
            .collect();
        if indices.is_empty() {
            let known: Vec<&str> = target_datacenters
                .iter()
                .flatten()
                .map(AsRef::as_ref)
                .collect();
            return Err(invalid(format!(
                "same-dc:{datacenter}: no target is in datacenter {datacenter} (targets are in: {})",
                known.join(", ")
            )));
        }
        Ok(SameDatacenter { indices, next: 0 })
    }

    /// The target indices it cycles through.
    pub fn targets(&self) -> &[usize] {
        &self.indices
    }

    /// The same router starting `by` targets further on.
    pub fn rotated(mut self, by: usize) -> SameDatacenter {
        self.next = (self.next + by) % self.indices.len();
        self
    }
}

impl Router for SameDatacenter {
    fn choose(&mut self, _key: &[u8]) -> usize {
        let chosen = self.indices[self.next];
        self.next = (self.next + 1) % self.indices.len();
        chosen
    }
}

/// A target that holds the key, preferring one datacenter.
#[derive(Debug, Clone)]
pub struct TokenAware {
    topology: Topology,
    /// Member id → target index, for members that are targets.
    target_of: HashMap<String, usize>,
    /// Member id → datacenter.
    datacenter_of: HashMap<String, String>,
    preferred: Option<String>,
    /// Spreads a key's requests over its eligible replicas (hot keys would otherwise all
    /// land on one node).
    turn: usize,
    /// For keys none of whose replicas is a target.
    fallback: RoundRobin,
    candidates: Vec<usize>,
    /// The watch it follows, if any ([`TokenAware::following`]).
    following: Option<Following>,
}

/// What a router following a [`TopologyWatch`] needs to rebuild itself.
#[derive(Clone)]
struct Following {
    watch: Arc<TopologyWatch>,
    /// The watch's publication count this router's topology is from.
    seen: u64,
    /// The targets it was built for, then the client addresses of members that joined.
    targets: Vec<SocketAddr>,
    /// How many of `targets` it was built for.
    initial: usize,
    /// The members of the topology it was built from: only others (members that joined)
    /// become targets, so a member the run's hosts left out stays out.
    initial_members: Vec<String>,
}

impl fmt::Debug for Following {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Following")
            .field("seen", &self.seen)
            .field("targets", &self.targets)
            .finish()
    }
}

impl TokenAware {
    /// Over `targets`, matched to `topology`'s members by client address; `preferred`
    /// names the datacenter whose replicas are chosen first. Fails when no target is a
    /// member or the preferred datacenter has no target.
    pub fn new(
        topology: Topology,
        targets: &[SocketAddr],
        preferred: Option<&str>,
    ) -> Result<TokenAware> {
        let mut target_of = HashMap::new();
        for (index, address) in targets.iter().enumerate() {
            if let Some(member) = topology.member_at(*address) {
                target_of.entry(member.id.clone()).or_insert(index);
            }
        }
        if target_of.is_empty() {
            return Err(invalid(format!(
                "token-aware: none of the targets ({}) is a member's client address in the topology",
                targets
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let datacenter_of: HashMap<String, String> = topology
            .members()
            .iter()
            .map(|member| (member.id.clone(), member.datacenter.clone()))
            .collect();
        if let Some(datacenter) = preferred {
            let reachable = target_of
                .keys()
                .any(|id| datacenter_of.get(id).map(String::as_str) == Some(datacenter));
            if !reachable {
                return Err(invalid(format!(
                    "token-aware:{datacenter}: no target is in datacenter {datacenter}"
                )));
            }
        }
        Ok(TokenAware {
            topology,
            target_of,
            datacenter_of,
            preferred: preferred.map(str::to_string),
            turn: 0,
            fallback: RoundRobin::new(targets.len())?,
            candidates: Vec::new(),
            following: None,
        })
    }

    /// The same router, rebuilt from `watch`'s topology whenever one is published (see
    /// [`TopologyWatch`]); `targets` are the ones it was built for. A member that joins
    /// (one its first topology did not list) becomes a target too (index `targets.len()`
    /// for the first, and so on: see [`Router::added_target`]), as a driver connects to the
    /// nodes a ring change adds; a member left out of `targets` from the start stays out,
    /// and one that leaves is no longer chosen. A published topology it cannot route by (no
    /// target left in the preferred datacenter) is skipped.
    pub fn following(mut self, watch: Arc<TopologyWatch>, targets: &[SocketAddr]) -> TokenAware {
        let initial_members = self
            .topology
            .members()
            .iter()
            .map(|member| member.id.clone())
            .collect();
        self.following = Some(Following {
            seen: watch.published(),
            watch,
            targets: targets.to_vec(),
            initial: targets.len(),
            initial_members,
        });
        self
    }

    /// Takes the watch's latest topology if one was published since the last look.
    fn catch_up(&mut self) {
        let Some(following) = &mut self.following else {
            return;
        };
        let published = following.watch.published();
        if published == following.seen {
            return;
        }
        following.seen = published;
        let topology = following.watch.current();
        for member in topology.members() {
            if following.initial_members.contains(&member.id) {
                continue;
            }
            if let Some(address) = member.client_address {
                if !following.targets.contains(&address) {
                    following.targets.push(address);
                }
            }
        }
        let targets = following.targets.clone();
        if let Ok(rebuilt) = TokenAware::new(topology, &targets, self.preferred.as_deref()) {
            self.topology = rebuilt.topology;
            self.target_of = rebuilt.target_of;
            self.datacenter_of = rebuilt.datacenter_of;
        }
    }

    /// The topology it routes by.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The same router with its replica rotation (and fallback) started `by` further on.
    pub fn rotated(mut self, by: usize) -> TokenAware {
        self.turn = self.turn.wrapping_add(by);
        self.fallback = self.fallback.rotated(by);
        self
    }
}

impl Router for TokenAware {
    fn added_target(&self, index: usize) -> Option<SocketAddr> {
        let following = self.following.as_ref()?;
        if index < following.initial {
            return None;
        }
        following.targets.get(index).copied()
    }

    fn choose(&mut self, key: &[u8]) -> usize {
        self.catch_up();
        let replicas = self.topology.replicas(key);
        self.candidates.clear();
        if let Some(preferred) = &self.preferred {
            self.candidates.extend(replicas.iter().filter_map(|id| {
                let local = self.datacenter_of.get(id.as_str()) == Some(preferred);
                local.then(|| self.target_of.get(id.as_str()).copied())?
            }));
        }
        if self.candidates.is_empty() {
            self.candidates.extend(
                replicas
                    .iter()
                    .filter_map(|id| self.target_of.get(id.as_str()).copied()),
            );
        }
        if self.candidates.is_empty() {
            return self.fallback.choose(key);
        }
        self.turn = self.turn.wrapping_add(1);
        self.candidates[self.turn % self.candidates.len()]
    }
}

/// A routing policy, before it is built for a target list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// `round-robin`.
    RoundRobin,
    /// `same-dc:DC`.
    SameDatacenter(String),
    /// `token-aware` or `token-aware:DC`.
    TokenAware(Option<String>),
}

impl Policy {
    /// `round-robin`, `same-dc:DC`, `token-aware` or `token-aware:DC`.
    pub fn parse(text: &str) -> Result<Policy> {
        let (name, argument) = match text.split_once(':') {
            Some((name, argument)) => (name, Some(argument)),
            None => (text, None),
        };
        let datacenter = |argument: &str| {
            if argument.is_empty() || argument.contains(char::is_whitespace) {
                Err(invalid(format!(
                    "{text:?}: the datacenter after '{name}:' must be a non-empty name"
                )))
            } else {
                Ok(argument.to_string())
            }
        };
        match (name, argument) {
            ("round-robin", None) => Ok(Policy::RoundRobin),
            ("same-dc", Some(argument)) => Ok(Policy::SameDatacenter(datacenter(argument)?)),
            ("same-dc", None) => Err(invalid(format!(
                "{text:?}: same-dc needs a datacenter, as in same-dc:dc1"
            ))),
            ("token-aware", None) => Ok(Policy::TokenAware(None)),
            ("token-aware", Some(argument)) => {
                Ok(Policy::TokenAware(Some(datacenter(argument)?)))
            }
            ("round-robin", Some(_)) => Err(invalid(format!(
                "{text:?}: round-robin takes no argument"
            ))),
            _ => Err(invalid(format!(
                "unknown policy {text:?}; expected round-robin, same-dc:DC, token-aware or token-aware:DC"
            ))),
        }
    }

    /// Whether building this policy needs the cluster's topology.
    pub fn needs_topology(&self) -> bool {
        !matches!(self, Policy::RoundRobin)
    }

    /// The router for `targets`; `topology` is required unless the policy is round-robin.
    pub fn build(
        &self,
        targets: &[SocketAddr],
        topology: Option<&Topology>,
    ) -> Result<Box<dyn Router>> {
        Ok(self.build_built(targets, topology)?.boxed())
    }

    /// Checks the policy against `targets` once and returns a maker of one router per
    /// client: `make(client)` is the router for client `client`, its rotation started at
    /// the client's index so clients spread over the targets from their first request.
    pub fn per_client(
        &self,
        targets: &[SocketAddr],
        topology: Option<&Topology>,
    ) -> Result<ClientRouters> {
        let template = self.build_built(targets, topology)?;
        Ok(Arc::new(move |client| {
            template.clone().rotated(client).boxed()
        }))
    }

    /// [`Policy::per_client`] as the driver's [`crate::driver::RouterFactory`], for
    /// [`crate::driver::DriverConfig::router`]. `targets` must be the driver's targets, in
    /// its order; the target count the driver passes is that list's length.
    pub fn driver_factory(
        &self,
        targets: &[SocketAddr],
        topology: Option<&Topology>,
    ) -> Result<crate::driver::RouterFactory> {
        let make = self.per_client(targets, topology)?;
        Ok(Arc::new(move |client, _targets| {
            Box::new(DriverRouter(make(client)))
        }))
    }

    /// [`Policy::driver_factory`] whose token-aware routers follow `watch` (rebuilt from
    /// each topology it publishes; see [`TopologyWatch`]); other policies do not depend on the ring.
    pub fn driver_factory_following(
        &self,
        targets: &[SocketAddr],
        watch: &Arc<TopologyWatch>,
    ) -> Result<crate::driver::RouterFactory> {
        let template = match self.build_built(targets, Some(&watch.current()))? {
            Built::TokenAware(router) => {
                Built::TokenAware(Box::new(router.following(Arc::clone(watch), targets)))
            }
            other => other,
        };
        Ok(Arc::new(move |client, _targets| {
            Box::new(DriverRouter(template.clone().rotated(client).boxed()))
                as Box<dyn crate::driver::KeyRouter>
        }))
    }

    fn build_built(&self, targets: &[SocketAddr], topology: Option<&Topology>) -> Result<Built> {
        let topology = match (self.needs_topology(), topology) {
            (false, _) => return Ok(Built::RoundRobin(RoundRobin::new(targets.len())?)),
            (true, Some(topology)) => topology,
            (true, None) => {
                return Err(invalid(format!(
                    "{self} needs the cluster topology (fetch_topology)"
                )))
            }
        };
        match self {
            Policy::RoundRobin => Ok(Built::RoundRobin(RoundRobin::new(targets.len())?)),
            Policy::SameDatacenter(datacenter) => {
                let datacenters: Vec<Option<&str>> = targets
                    .iter()
                    .map(|address| {
                        topology
                            .member_at(*address)
                            .map(|member| member.datacenter.as_str())
                    })
                    .collect();
                Ok(Built::SameDatacenter(SameDatacenter::new(
                    datacenter,
                    &datacenters,
                )?))
            }
            Policy::TokenAware(preferred) => Ok(Built::TokenAware(Box::new(TokenAware::new(
                topology.clone(),
                targets,
                preferred.as_deref(),
            )?))),
        }
    }
}

/// A [`Router`] seen as the driver's [`crate::driver::KeyRouter`].
struct DriverRouter(Box<dyn Router>);

impl crate::driver::KeyRouter for DriverRouter {
    fn route(&mut self, key: &[u8]) -> usize {
        self.0.choose(key)
    }

    fn added_target(&self, index: usize) -> Option<SocketAddr> {
        self.0.added_target(index)
    }
}

/// Makes the router of each client (see [`Policy::per_client`]).
pub type ClientRouters = Arc<dyn Fn(usize) -> Box<dyn Router> + Send + Sync>;

/// A built router of any policy, clonable so one checked template serves every client.
#[derive(Debug, Clone)]
enum Built {
    RoundRobin(RoundRobin),
    SameDatacenter(SameDatacenter),
    TokenAware(Box<TokenAware>),
}

impl Built {
    fn rotated(self, by: usize) -> Built {
        match self {
            Built::RoundRobin(router) => Built::RoundRobin(router.rotated(by)),
            Built::SameDatacenter(router) => Built::SameDatacenter(router.rotated(by)),
            Built::TokenAware(router) => Built::TokenAware(Box::new((*router).rotated(by))),
        }
    }

    fn boxed(self) -> Box<dyn Router> {
        match self {
            Built::RoundRobin(router) => Box::new(router),
            Built::SameDatacenter(router) => Box::new(router),
            Built::TokenAware(router) => router,
        }
    }
}

impl FromStr for Policy {
    type Err = Error;

    fn from_str(text: &str) -> Result<Policy> {
        Policy::parse(text)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::RoundRobin => formatter.write_str("round-robin"),
            Policy::SameDatacenter(datacenter) => write!(formatter, "same-dc:{datacenter}"),
            Policy::TokenAware(None) => formatter.write_str("token-aware"),
            Policy::TokenAware(Some(datacenter)) => write!(formatter, "token-aware:{datacenter}"),
        }
    }
}

fn invalid(detail: String) -> Error {
    Error::InvalidOption {
        field: "routing policy".into(),
        detail,
    }
}
