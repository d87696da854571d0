//! Driving a ring change: the phases of [`super`]'s documentation, in order.

use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::task::JoinSet;

use super::{
    Phase, RingSpec, RingState, Scaling, ScalingRequest, PHASE_TIMEOUTS, REBALANCE_TIMEOUT,
};
use crate::config::MemberConfig;
use crate::protocol::peer::PeerMessage;
use crate::ring::NodeId;
use crate::{Error, Result};

/// Pause between two attempts at a member that has not acknowledged a phase.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// One node's streaming figures, as the driver collects them.
struct Streamed {
    node: String,
    rows: u64,
    keys_new: u64,
    bytes: u64,
    failures: String,
}

fn refuse<T>(detail: String) -> Result<T> {
    Err(Error::Command(format!("ERR {detail}")))
}

impl Scaling {
    /// Runs `request` from start to finish; see the module documentation of [`super`].
    pub(super) async fn drive(&self, request: ScalingRequest) -> Result<Vec<String>> {
        let Ok(_driving) = self.driving.try_lock() else {
            return refuse("a ring change or a cleanup is already running on this node".into());
        };
        let state = self.snapshot();
        let current = state.spec.current.clone();
        let is_member = |id: &str| current.iter().any(|member| member.id == id);
        let (next, absent, what): (Vec<MemberConfig>, Option<String>, String) = match request {
            ScalingRequest::Join(member) => {
                if is_member(&member.id) {
                    return refuse(format!("node {} is already a member", member.id));
                }
                let what = format!("joined {}", member.id);
                let mut next = current.clone();
                next.push(member);
                (next, None, what)
            }
            ScalingRequest::Leave => {
                if !is_member(self.node.as_str()) {
                    return refuse(format!("node {} is not a member of the ring", self.node));
                }
                let next = without(&current, self.node.as_str());
                (next, None, format!("{} left", self.node))
            }
            ScalingRequest::Remove(id) => {
                if id == self.node.as_str() {
                    return refuse("a node removes itself with CLUSTER.LEAVE".into());
                }
                if !is_member(&id) {
                    return refuse(format!("node {id} is not a member of the ring"));
                }
                let next = without(&current, &id);
                (next, Some(id.clone()), format!("removed {id}"))
            }
            ScalingRequest::Cleanup { .. } => {
                return refuse("CLUSTER.CLEANUP changes no ring".into());
            }
        };
        let mut spec = match state.spec.phase {
            Phase::Stable => {
                let streaming = RingSpec {
                    version: state.spec.version + 1,
                    phase: Phase::Streaming,
                    current,
                    next: next.clone(),
                };
                self.check_next(&streaming)?;
                streaming
            }
            // The same change, stopped part way (a member did not acknowledge a phase or
            // could not stream): it resumes where it stopped.
            _ if state.spec.next == next => state.spec.clone(),
            phase => {
                return refuse(format!(
                    "the ring is changing to other members (version {}, phase {}): repeat \
                     that change's command to finish it first",
                    state.spec.version,
                    phase.as_str()
                ))
            }
        };
        let started = Instant::now();
        self.counters.changes.fetch_add(1, Ordering::Relaxed);
        log::info!(
            "node {}: ring change: {what} (from version {}, phase {})",
            self.node,
            spec.version,
            spec.phase.as_str()
        );
        self.announce(&spec, absent.as_deref()).await?;
        let (mut streamed, mut stream_ms, mut drain_ms) = (Vec::new(), 0, 0);
        if spec.phase == Phase::Streaming {
            // Writes coordinated under the previous version must be answered (so, when
            // acknowledged, on a quorum of the sources) before the sources are scanned.
            let draining = Instant::now();
            self.drain_all(&spec, absent.as_deref()).await?;
            drain_ms = draining.elapsed().as_millis() as u64;
            let streaming = Instant::now();
            streamed = self
                .stream_all(&next, spec.version, absent.as_deref())
                .await?;
            stream_ms = streaming.elapsed().as_millis() as u64;
            spec = RingSpec {
                version: spec.version + 1,
                phase: Phase::ReadNew,
                ..spec
            };
            self.announce(&spec, absent.as_deref()).await?;
        }
        let version = spec.version + 1;
        let stable = RingSpec {
            version,
            phase: Phase::Stable,
            current: next,
            next: Vec::new(),
        };
        self.announce(&stable, absent.as_deref()).await?;
        let duration_ms = started.elapsed().as_millis() as u64;
        let total = |field: fn(&Streamed) -> u64| streamed.iter().map(field).sum::<u64>();
        let (rows, keys_new, bytes) =
            (total(|s| s.rows), total(|s| s.keys_new), total(|s| s.bytes));
        let counters = &self.counters;
        counters.last_keys_moved.store(keys_new, Ordering::Relaxed);
        counters.last_rows_streamed.store(rows, Ordering::Relaxed);
        counters.last_bytes_streamed.store(bytes, Ordering::Relaxed);
        counters
            .last_duration_ms
            .store(duration_ms, Ordering::Relaxed);
        let mut lines = vec![
            format!("{what} ring_version {version}"),
            format!("keys_moved {keys_new}"),
            format!("rows_streamed {rows}"),
            format!("bytes_streamed {bytes}"),
            format!("duration_ms {duration_ms}"),
            format!("drain_ms {drain_ms}"),
            format!("stream_ms {stream_ms}"),
        ];
        for node in &streamed {
            lines.push(format!(
                "node {} keys_new {} rows {} bytes {}{}",
                node.node,
                node.keys_new,
                node.rows,
                node.bytes,
                if node.failures.is_empty() {
                    String::new()
                } else {
                    format!(" failed_sources {}", node.failures)
                }
            ));
        }
        log::info!("node {}: ring change done: {}", self.node, lines.join(", "));
        Ok(lines)
    }

    /// Refuses a next ring that cannot place the configured replication.
    fn check_next(&self, spec: &RingSpec) -> Result<()> {
        let state = RingState::build(spec.clone(), self.vnodes_per_weight)
            .map_err(|error| Error::Command(format!("ERR the new ring is invalid: {error}")))?;
        let next = state
            .next
            .as_ref()
            .expect("a streaming spec has a next ring");
        next.preference_list(b"", &self.replication)
            .map(drop)
            .map_err(|error| {
                Error::Command(format!(
                    "ERR the new ring of {} members cannot keep the replication: {error}",
                    spec.next.len()
                ))
            })
    }

    /// Applies `spec` here and waits until every other member of either ring has taken it
    /// (`absent`, a removed node, is told but not waited for).
    async fn announce(&self, spec: &RingSpec, absent: Option<&str>) -> Result<()> {
        self.apply(spec.clone())?;
        let transport = self.transport()?;
        let state = self.snapshot();
        let mut calls = JoinSet::new();
        for member in state.all_members() {
            let id = NodeId::new(&member.id);
            if id == self.node {
                continue;
            }
            let (transport, spec) = (std::sync::Arc::clone(&transport), spec.clone());
            let timeout = self.request_timeout;
            let phase_timeout = timeout * PHASE_TIMEOUTS;
            if absent == Some(member.id.as_str()) {
                // Told once, not waited for: a removed node is gone, and a call to it can
                // take a whole timeout.
                tokio::spawn(async move {
                    let _ = transport
                        .call(&id, PeerMessage::RingUpdate { spec }, timeout)
                        .await;
                });
                continue;
            }
            calls.spawn(async move {
                let deadline = Instant::now() + phase_timeout;
                loop {
                    let message = PeerMessage::RingUpdate { spec: spec.clone() };
                    let error = match transport.call(&id, message, timeout).await {
                        Ok(PeerMessage::RingAck { version }) if version >= spec.version => {
                            return Ok(())
                        }
                        Ok(other) => format!("answered {other:?}"),
                        Err(error) => error.to_string(),
                    };
                    if Instant::now() >= deadline {
                        return Err(format!("{id}: {error}"));
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            });
        }
        let mut failures = Vec::new();
        collect_failures(&mut calls, &mut failures).await;
        if failures.is_empty() {
            return Ok(());
        }
        refuse(format!(
            "ring change stopped at version {} (phase {}): not acknowledged by {}",
            spec.version,
            spec.phase.as_str(),
            failures.join("; ")
        ))
    }

    /// Waits until no member of either ring (but `absent`) has a write it coordinated under
    /// a ring older than `spec` unanswered: each waits for its own
    /// ([`Scaling::drain_writes`]), this node among them, for at most [`PHASE_TIMEOUTS`]
    /// request timeouts.
    async fn drain_all(&self, spec: &RingSpec, absent: Option<&str>) -> Result<()> {
        let transport = self.transport()?;
        let state = self.snapshot();
        let wait = self.request_timeout * PHASE_TIMEOUTS;
        let mut calls = JoinSet::new();
        for member in state.all_members() {
            let id = NodeId::new(&member.id);
            if id == self.node || absent == Some(member.id.as_str()) {
                continue;
            }
            let transport = std::sync::Arc::clone(&transport);
            let message = PeerMessage::DrainWrites {
                version: spec.version,
                wait_ms: wait.as_millis() as u64,
            };
            // The member's own wait, and one timeout for the call itself.
            let timeout = wait + self.request_timeout;
            calls.spawn(async move {
                match transport.call(&id, message, timeout).await {
                    Ok(PeerMessage::RingAck { .. }) => Ok(()),
                    Ok(PeerMessage::Error { message }) => Err(format!("{id}: {message}")),
                    Ok(other) => Err(format!("{id}: unexpected reply {}", other.name())),
                    Err(error) => Err(format!("{id}: {error}")),
                }
            });
        }
        let mut failures = Vec::new();
        if let Err(error) = self.drain_writes(spec.version, wait).await {
            failures.push(error.to_string());
        }
        collect_failures(&mut calls, &mut failures).await;
        if failures.is_empty() {
            return Ok(());
        }
        refuse(format!(
            "ring change stopped at version {} (phase {}): writes under the ring before it \
             not answered: {}",
            spec.version,
            spec.phase.as_str(),
            failures.join("; ")
        ))
    }

    /// Has every member of the next ring stream what it gains (from every member of the
    /// current ring but `absent`, a removed node); this node's own share runs while the
    /// others'.
    async fn stream_all(
        &self,
        next: &[MemberConfig],
        version: u64,
        absent: Option<&str>,
    ) -> Result<Vec<Streamed>> {
        let skip: Vec<String> = absent.into_iter().map(str::to_string).collect();
        let transport = self.transport()?;
        let mut calls = JoinSet::new();
        let mut local = false;
        for member in next {
            if member.id == self.node.as_str() {
                local = true;
                continue;
            }
            let transport = std::sync::Arc::clone(&transport);
            let id = NodeId::new(&member.id);
            let message = PeerMessage::Rebalance {
                version,
                skip: skip.clone(),
            };
            calls.spawn(async move {
                let reply = transport.call(&id, message, REBALANCE_TIMEOUT).await;
                (id, reply)
            });
        }
        let mut streamed = Vec::new();
        let mut failures = Vec::new();
        if local {
            let reply = self.rebalance(version, &skip).await;
            collect(self.node.clone(), reply, &mut streamed, &mut failures);
        }
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok((id, reply)) => collect(id, reply, &mut streamed, &mut failures),
                Err(error) => failures.push(format!("a call task failed: {error}")),
            }
        }
        if !failures.is_empty() {
            return refuse(format!(
                "ring change stopped at version {version} (phase streaming): {}",
                failures.join("; ")
            ));
        }
        streamed.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(streamed)
    }
}

/// Waits for every call of a phase, adding each failure (as its text) to `failures`.
async fn collect_failures(
    calls: &mut JoinSet<std::result::Result<(), String>>,
    failures: &mut Vec<String>,
) {
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(failure)) => failures.push(failure),
            Err(error) => failures.push(format!("a call task failed: {error}")),
        }
    }
}

fn collect(
    id: NodeId,
    reply: Result<PeerMessage>,
    streamed: &mut Vec<Streamed>,
    failures: &mut Vec<String>,
) {
    match reply {
        Ok(PeerMessage::RebalanceReply {
            rows,
            keys_new,
            bytes,
            failures: sources,
        }) => streamed.push(Streamed {
            node: id.to_string(),
            rows,
            keys_new,
            bytes,
            failures: sources,
        }),
        Ok(PeerMessage::Error { message }) => failures.push(format!("{id}: {message}")),
        Ok(other) => failures.push(format!("{id}: unexpected reply {}", other.name())),
        Err(error) => failures.push(format!("{id}: {error}")),
    }
}

fn without(members: &[MemberConfig], id: &str) -> Vec<MemberConfig> {
    members
        .iter()
        .filter(|member| member.id != id)
        .cloned()
        .collect()
}
