//! The versioned ring a node serves with, and which replicas each request goes to in each
//! phase of a ring change.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{MemberConfig, NodeConfig};
use crate::ring::{Member, NodeId, Replication, Ring};
use crate::{Error, Result};

/// Where a ring change stands. Every node moves through the phases in order, told by the
/// node driving the change ([`super::Scaling`]), which waits for every member to take a
/// phase before it starts the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// No change: reads and writes go to the current ring's replicas.
    Stable,
    /// Nodes gaining ranges are streaming them: reads go to the current ring's replicas,
    /// writes to the replicas of both rings (so nothing written during the stream is
    /// missed by the new owners).
    Streaming,
    /// Streams are done: reads go to the next ring's replicas, writes still to both. Needed
    /// because nodes do not switch at the same instant: while some read from the current
    /// ring and others from the next, writes must reach a quorum of each.
    ReadNew,
}

impl Phase {
    /// The phase's number on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            Phase::Stable => 0,
            Phase::Streaming => 1,
            Phase::ReadNew => 2,
        }
    }

    /// The phase with number `byte`, if any.
    pub fn from_byte(byte: u8) -> Option<Phase> {
        match byte {
            0 => Some(Phase::Stable),
            1 => Some(Phase::Streaming),
            2 => Some(Phase::ReadNew),
            _ => None,
        }
    }

    /// Lower-case name for INFO and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Stable => "stable",
            Phase::Streaming => "streaming",
            Phase::ReadNew => "read_new",
        }
    }
}

/// What a ring update carries and what a node persists: the version, the phase and the
/// member lists (with addresses, so a node can reach members it was not configured with).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingSpec {
    /// Increases with every phase of every change; a node ignores older specs.
    pub version: u64,
    /// Where the change stands.
    pub phase: Phase,
    /// The members of the ring being left (the only ring when `phase` is Stable).
    pub current: Vec<MemberConfig>,
    /// The members of the ring being moved to; empty when Stable.
    pub next: Vec<MemberConfig>,
}

/// A [`RingSpec`] with its rings built: what requests take a snapshot of.
#[derive(Debug)]
pub struct RingState {
    /// The spec it was built from.
    pub spec: RingSpec,
    /// The current ring.
    pub current: Ring,
    /// The next ring, when a change is under way.
    pub next: Option<Ring>,
    /// Each member's datacenter (either ring), shared: a request's replicas carry it with
    /// a reference count, not a copy of the name.
    datacenters: Vec<(String, Arc<str>)>,
    /// Writes this node coordinates under this state and has not answered yet (see
    /// [`super::WriteSnapshot`]).
    writes_in_flight: AtomicUsize,
}

fn ring_of(members: &[MemberConfig], vnodes_per_weight: u32) -> Result<Ring> {
    Ring::new(
        members.iter().map(|member| {
            Member::new(member.id.as_str(), member.datacenter.as_str()).with_weight(member.weight)
        }),
        vnodes_per_weight,
    )
}

/// A ring state a write is coordinated under ([`super::Scaling::write_snapshot`]): the
/// write counts as in flight on that state until this is dropped, so a ring change can wait
/// until every write coordinated under an older ring has been answered
/// ([`super::Scaling::drain_writes`]).
#[derive(Debug)]
pub struct WriteSnapshot {
    state: Arc<RingState>,
}

impl WriteSnapshot {
    /// Counts a write in flight on `state`. The caller holds the lock `state` is current
    /// under, so a ring change that replaced it afterwards sees the count.
    pub(super) fn new(state: Arc<RingState>) -> WriteSnapshot {
        state.writes_in_flight.fetch_add(1, Ordering::AcqRel);
        WriteSnapshot { state }
    }

    /// The state, to hand on to what outlives the write (a put still in flight after the
    /// write was answered does not hold a ring change up).
    pub fn state(&self) -> &Arc<RingState> {
        &self.state
    }
}

impl std::ops::Deref for WriteSnapshot {
    type Target = RingState;

    fn deref(&self) -> &RingState {
        &self.state
    }
}

impl Drop for WriteSnapshot {
    fn drop(&mut self) {
        self.state.writes_in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How a source sends a gained key ([`RingState::stream_role`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamRole {
    /// The stored set: no source pulled before it replicates the key.
    Set,
    /// The digest of the stored set: a source pulled before it sent the set.
    Digest,
}

impl RingState {
    /// Writes this node coordinates under this state and has not answered yet.
    pub fn writes_in_flight(&self) -> usize {
        self.writes_in_flight.load(Ordering::Acquire)
    }

    /// Builds the rings of `spec`; fails on an invalid member list.
    pub fn build(spec: RingSpec, vnodes_per_weight: u32) -> Result<RingState> {
        let current = ring_of(&spec.current, vnodes_per_weight)?;
        let next = match spec.phase {
            Phase::Stable => None,
            Phase::Streaming | Phase::ReadNew => Some(ring_of(&spec.next, vnodes_per_weight)?),
        };
        let mut datacenters: Vec<(String, Arc<str>)> = Vec::new();
        for member in spec.current.iter().chain(&spec.next) {
            if !datacenters.iter().any(|(id, _)| *id == member.id) {
                datacenters.push((member.id.clone(), Arc::from(member.datacenter.as_str())));
            }
        }
        Ok(RingState {
            spec,
            current,
            next,
            datacenters,
            writes_in_flight: AtomicUsize::new(0),
        })
    }

    /// The state a node starts with when nothing was persisted: its configured members at
    /// version 0; a node started with `joining` leaves itself out until a change adds it.
    pub fn from_config(config: &NodeConfig) -> Result<RingState> {
        let mut members = config.members.clone();
        if config.joining {
            members.retain(|member| member.id != config.node_id);
        }
        let spec = RingSpec {
            version: 0,
            phase: Phase::Stable,
            current: members,
            next: Vec::new(),
        };
        RingState::build(spec, config.vnodes_per_weight)
    }

    /// The ring reads are served from.
    pub fn read_ring(&self) -> &Ring {
        match (&self.next, self.spec.phase) {
            (Some(next), Phase::ReadNew) => next,
            _ => &self.current,
        }
    }

    /// The replicas a read of `key` asks.
    pub fn read_replicas(&self, key: &[u8], replication: &Replication) -> Result<Vec<NodeId>> {
        self.read_ring().preference_list(key, replication)
    }

    /// The replicas a write of `key` goes to: the read ring's, then (during a change) the
    /// other ring's that are not already listed.
    pub fn write_replicas(&self, key: &[u8], replication: &Replication) -> Result<Vec<NodeId>> {
        let mut replicas = self.read_replicas(key, replication)?;
        if let Some(next) = &self.next {
            let other = if self.spec.phase == Phase::ReadNew {
                &self.current
            } else {
                next
            };
            for node in other.preference_list(key, replication)? {
                if !replicas.contains(&node) {
                    replicas.push(node);
                }
            }
        }
        Ok(replicas)
    }

    /// Whether `node` replicates `key` in the next ring but not in the current one: the
    /// keys a node gaining ranges streams. False when no change is under way.
    pub fn gains(&self, node: &NodeId, key: &[u8], replication: &Replication) -> Result<bool> {
        let Some(next) = &self.next else {
            return Ok(false);
        };
        Ok(next.preference_list(key, replication)?.contains(node)
            && !self
                .current
                .preference_list(key, replication)?
                .contains(node))
    }

    /// Whether `source` sends `key` to `requester` when it streams: `requester` gains the
    /// key and `source` replicates it in the current ring (a copy a node kept from an
    /// older ring is a stale duplicate of what the current replicas hold).
    pub fn streams(
        &self,
        source: &NodeId,
        requester: &NodeId,
        key: &[u8],
        replication: &Replication,
    ) -> Result<bool> {
        Ok(self
            .stream_role(source, requester, key, replication, &[])?
            .is_some())
    }

    /// How `source` sends `key` to `requester` when `pulled` (the sources before it in the
    /// requester's order) send theirs: `None` if it does not ([`RingState::streams`]), its
    /// digest if one of `pulled` replicates the key in the current ring (that source sends
    /// the set), else its set.
    pub fn stream_role(
        &self,
        source: &NodeId,
        requester: &NodeId,
        key: &[u8],
        replication: &Replication,
        pulled: &[NodeId],
    ) -> Result<Option<StreamRole>> {
        let Some(next) = &self.next else {
            return Ok(None);
        };
        let current = self.current.preference_list(key, replication)?;
        if !current.contains(source)
            || current.contains(requester)
            || !next.preference_list(key, replication)?.contains(requester)
        {
            return Ok(None);
        }
        Ok(Some(if current.iter().any(|node| pulled.contains(node)) {
            StreamRole::Digest
        } else {
            StreamRole::Set
        }))
    }

    /// A member's configuration (datacenter, addresses), from either ring.
    pub fn member(&self, id: &str) -> Option<&MemberConfig> {
        self.spec
            .current
            .iter()
            .chain(&self.spec.next)
            .find(|member| member.id == id)
    }

    /// A member's datacenter (from either ring), shared.
    pub fn datacenter(&self, id: &str) -> Option<&Arc<str>> {
        self.datacenters
            .iter()
            .find(|(member, _)| member == id)
            .map(|(_, datacenter)| datacenter)
    }

    /// Every member of either ring, once each.
    pub fn all_members(&self) -> Vec<MemberConfig> {
        let mut all: Vec<MemberConfig> = self.spec.current.clone();
        for member in &self.spec.next {
            if !all.iter().any(|known| known.id == member.id) {
                all.push(member.clone());
            }
        }
        all
    }
}

/// Where a node keeps its ring spec: next to its data, so a restart keeps the ring it
/// changed to rather than its configuration's static member list.
pub fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("ring-state.toml")
}

/// Reads the persisted spec, if any.
pub fn load(data_dir: &Path) -> Result<Option<RingSpec>> {
    let path = state_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(Error::Io {
                context: format!("cannot read {}", path.display()),
                error,
            })
        }
    };
    toml::from_str(&text)
        .map(Some)
        .map_err(|error| Error::InvalidConfig {
            field: path.display().to_string(),
            detail: error.to_string(),
        })
}

/// Writes the spec (to a side file, then renamed over the old one).
pub fn save(data_dir: &Path, spec: &RingSpec) -> Result<()> {
    let path = state_path(data_dir);
    let partial = data_dir.join("ring-state.toml.partial");
    let text = toml::to_string(spec).map_err(|error| Error::InvalidConfig {
        field: "ring state".into(),
        detail: error.to_string(),
    })?;
    std::fs::create_dir_all(data_dir)
        .and_then(|()| std::fs::write(&partial, text))
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(|error| Error::Io {
            context: format!("cannot write {}", path.display()),
            error,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn member(id: &str) -> MemberConfig {
        MemberConfig {
            id: id.into(),
            datacenter: "dc1".into(),
            weight: 1,
            client_address: SocketAddr::from(([127, 0, 0, 1], 1)),
            peer_address: SocketAddr::from(([127, 0, 0, 1], 2)),
        }
    }

    fn spec(phase: Phase) -> RingSpec {
        RingSpec {
            version: 1,
            phase,
            current: vec![member("a"), member("b"), member("c")],
            next: vec![member("a"), member("b"), member("c"), member("d")],
        }
    }

    #[test]
    fn phases_choose_read_and_write_replicas() {
        let three = Replication::Total(3);
        let streaming = RingState::build(spec(Phase::Streaming), 16).unwrap();
        let read_new = RingState::build(spec(Phase::ReadNew), 16).unwrap();
        let d = NodeId::new("d");
        let mut gained = 0;
        for index in 0..200 {
            let key = format!("key{index}");
            let key = key.as_bytes();
            let old = streaming.current.preference_list(key, &three).unwrap();
            let new = streaming
                .next
                .as_ref()
                .unwrap()
                .preference_list(key, &three)
                .unwrap();
            assert_eq!(streaming.read_replicas(key, &three).unwrap(), old);
            assert_eq!(read_new.read_replicas(key, &three).unwrap(), new);
            let writes = streaming.write_replicas(key, &three).unwrap();
            assert!(old.iter().chain(&new).all(|node| writes.contains(node)));
            assert_eq!(writes.len(), if new.contains(&d) { 4 } else { 3 });
            if streaming.gains(&d, key, &three).unwrap() {
                gained += 1;
                assert!(new.contains(&d));
            }
            let a = NodeId::new("a");
            assert_eq!(
                streaming.streams(&a, &d, key, &three).unwrap(),
                new.contains(&d),
                "a replicates every key of a three-node ring"
            );
            assert!(!streaming.streams(&d, &a, key, &three).unwrap());
        }
        // d replicates about 3/4 of the keys in a four-node ring with three replicas.
        assert!((100..=190).contains(&gained), "{gained}");
        let stable = RingState::build(
            RingSpec {
                phase: Phase::Stable,
                ..spec(Phase::Stable)
            },
            16,
        )
        .unwrap();
        assert!(!stable.gains(&d, b"key1", &three).unwrap());
    }

    #[test]
    fn spec_round_trips_through_the_state_file() {
        let directory = tempfile::tempdir().unwrap();
        assert_eq!(load(directory.path()).unwrap(), None);
        save(directory.path(), &spec(Phase::ReadNew)).unwrap();
        assert_eq!(load(directory.path()).unwrap(), Some(spec(Phase::ReadNew)));
    }
}
