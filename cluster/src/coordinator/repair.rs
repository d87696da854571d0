//! Read repair: after a read is answered, replicas whose reply lacked versions of the
//! merged result (or that had nothing) get the merged set as a normal `Put`.
//!
//! Replies that came after the read's R were met are still collected (until the request
//! timeout) by a background task, so a stale replica is repaired even when the client did
//! not wait for it. Repairs are bounded: at most `read_repairs_in_flight_max` keys are
//! being repaired at once; a read finding stale replicas beyond that skips its repair and
//! counts it (`read_repairs_dropped`), leaving the divergence to later reads or
//! anti-entropy. Off with `read_repair = false` (staleness measurements want the raw
//! replica behaviour).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::calls::{Call, Calls};
use super::{expect_get_encoded, Answer, Coordinator, Datacenter};
use crate::net::transport::PeerTransport;
use crate::protocol::peer::PeerMessage;
use crate::ring::NodeId;
use crate::store::LocalStore;
use crate::version::{SiblingSet, VersionConfig};
use crate::Result;

/// One replica's read reply, tagged with who sent it.
pub(super) type Tagged = (NodeId, Option<SiblingSet>);

/// One replica's read reply as it came, tagged with who sent it: its stored set, encoded.
/// Replies are compared as bytes and decoded only when they differ (see
/// `Coordinator::coordinate_read`).
pub(super) type RawTagged = (NodeId, Option<Vec<u8>>);

/// One replica's answer to a read, as it came.
pub(super) enum Reply {
    /// Its stored set as stored (`Get`, or this node's own copy).
    Set(RawTagged),
    /// Asked for a digest (`GetDigest`): whether it equals the digest of this node's own
    /// copy, which the read holds as a [`Reply::Set`].
    Digest { node: NodeId, matches: bool },
}

impl Reply {
    /// The replica that answered.
    pub(super) fn node(&self) -> &NodeId {
        match self {
            Reply::Set((node, _)) | Reply::Digest { node, .. } => node,
        }
    }
}

/// Decodes one replica's stored bytes; an error names the replica whose reply it was.
pub(super) fn decode_from(node: &NodeId, bytes: &[u8]) -> Result<SiblingSet> {
    SiblingSet::decode(bytes)
        .map_err(|error| crate::Error::CorruptVersion(format!("read reply from {node}: {error}")))
}

/// One replica's read reply checked as it arrives: bytes that would not decode make it that
/// replica's failure (the read asks a replica held in reserve, or its quorum error names
/// this one) rather than the whole read's error once R replies are in. The check walks the
/// set in place (`latest_value`: nothing allocated), so agreeing replies still go
/// undecoded.
pub(super) fn checked_reply(node: NodeId, raw: Option<Vec<u8>>) -> Result<RawTagged> {
    if let Some(bytes) = &raw {
        crate::version::codec::latest_value(bytes).map_err(|error| {
            crate::Error::CorruptVersion(format!("read reply from {node}: {error}"))
        })?;
    }
    Ok((node, raw))
}

pub(super) fn decode_reply((node, raw): RawTagged) -> Result<Tagged> {
    let set = raw.map(|bytes| decode_from(&node, &bytes)).transpose()?;
    Ok((node, set))
}

/// [`Coordinator::get_call`] for a task without the coordinator (the repair task).
fn get_call(
    transport: Arc<PeerTransport>,
    node: NodeId,
    datacenter: Datacenter,
    key: Vec<u8>,
) -> Call<Reply> {
    Box::pin(async move {
        let result = transport
            .call_unbounded(&node, PeerMessage::Get { key })
            .await
            .and_then(expect_get_encoded)
            .and_then(|set| checked_reply(node.clone(), set))
            .map(Reply::Set);
        Answer {
            node,
            datacenter,
            result,
        }
    })
}

/// Read-repair settings and counters.
pub struct ReadRepair {
    enabled: bool,
    permits: Arc<Semaphore>,
    /// Stale replicas written back.
    pub repairs: AtomicU64,
    /// Digest reads whose digests differed from this node's copy, so the replica's set was
    /// fetched.
    pub digest_mismatches: AtomicU64,
    /// Reads whose repair was skipped because too many were in flight.
    pub dropped: AtomicU64,
}

impl ReadRepair {
    /// Repairs when `enabled`, at most `in_flight_max` keys at once.
    pub fn new(enabled: bool, in_flight_max: usize) -> ReadRepair {
        ReadRepair {
            enabled,
            permits: Arc::new(Semaphore::new(in_flight_max.max(1))),
            repairs: AtomicU64::new(0),
            digest_mismatches: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// The INFO fields: `read_repairs`, `read_repairs_dropped`, `read_digest_mismatches`.
    pub fn info_fields(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("read_repairs", self.repairs.load(Ordering::Relaxed)),
            ("read_repairs_dropped", self.dropped.load(Ordering::Relaxed)),
            (
                "read_digest_mismatches",
                self.digest_mismatches.load(Ordering::Relaxed),
            ),
        ]
    }
}

/// The replicas among `replies` missing something of `merged`.
pub fn stale_replicas(
    replies: &[Tagged],
    merged: &SiblingSet,
    versions: &VersionConfig,
) -> Vec<NodeId> {
    replies
        .iter()
        .filter(|(_, reply)| match reply {
            None => !merged.versions.is_empty(),
            Some(set) => {
                let mut folded = set.clone();
                // A merge that fails (too many siblings) cannot be repaired either.
                folded.merge(merged, versions).is_ok() && folded != *set
            }
        })
        .map(|(node, _)| node.clone())
        .collect()
}

/// Everything a repair task needs, owned.
struct RepairJob {
    node: NodeId,
    key: Vec<u8>,
    replies: Vec<Tagged>,
    transport: Arc<PeerTransport>,
    store: Arc<LocalStore>,
    versions: VersionConfig,
    timeout: Duration,
    repair: Arc<ReadRepair>,
}

impl Coordinator {
    /// `Get` to `node`, its reply tagged with the node, as a call for [`Calls`]. It has no
    /// timer of its own: whoever polls it stops at a deadline (the read's `gather`, then
    /// the repair task's), and dropping it forgets the call.
    pub(super) fn get_call(
        &self,
        node: NodeId,
        datacenter: Datacenter,
        key: Vec<u8>,
    ) -> Call<Reply> {
        get_call(Arc::clone(&self.transport), node, datacenter, key)
    }

    /// `GetDigest` to `node`, its answer whether the digest equals `own` (the digest of
    /// this node's copy; `None`: it has none), as a call for [`Calls`] (no timer of its
    /// own, as [`Coordinator::get_call`]).
    pub(super) fn digest_call(
        &self,
        node: NodeId,
        datacenter: Datacenter,
        key: Vec<u8>,
        own: Option<u128>,
    ) -> Call<Reply> {
        let transport = Arc::clone(&self.transport);
        Box::pin(async move {
            let result = transport
                .call_unbounded(&node, PeerMessage::GetDigest { keys: vec![key] })
                .await
                .and_then(|reply| match reply {
                    PeerMessage::DigestReply { digests } if digests.len() == 1 => {
                        Ok(Reply::Digest {
                            node: node.clone(),
                            matches: digests[0] == own,
                        })
                    }
                    other => Err(super::unexpected(other)),
                });
            Answer {
                node,
                datacenter,
                result,
            }
        })
    }

    /// After a read answered with `replies`: repairs stale replicas, waiting in the
    /// background for the replies still to come from `late`.
    pub(super) fn repair_after_read(
        &self,
        key: Vec<u8>,
        replies: Vec<Tagged>,
        mut late: Calls<Reply>,
    ) {
        if !self.repair.enabled {
            // The calls still in flight are dropped: nobody waits for their replies.
            return;
        }
        let job = RepairJob {
            node: self.node.clone(),
            key,
            replies,
            transport: Arc::clone(&self.transport),
            store: Arc::clone(&self.store),
            versions: self.versions.clone(),
            timeout: self.timeout,
            repair: Arc::clone(&self.repair),
        };
        // Every replica asked already answered (the common case): no task unless a repair
        // is due.
        if late.len() == 0 {
            if !job.stale().is_empty() {
                tokio::spawn(job.run());
            }
            return;
        }
        let mut job = job;
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + job.timeout;
            while let Ok(Some(answer)) = tokio::time::timeout_at(deadline, late.next()).await {
                match answer.result {
                    // An undecodable late reply is left out, like a failed one.
                    Ok(Reply::Set(raw)) => {
                        if let Ok(reply) = decode_reply(raw) {
                            job.replies.push(reply);
                        }
                    }
                    // The same as this node's copy, which the replies hold.
                    Ok(Reply::Digest {
                        node,
                        matches: true,
                    }) => {
                        let own = job.replies.iter().find(|(from, _)| *from == job.node);
                        if let Some((_, set)) = own {
                            let set = set.clone();
                            job.replies.push((node, set));
                        }
                    }
                    // Different: its set is fetched (within the same deadline), so only
                    // a replica missing part of the merge is written to.
                    Ok(Reply::Digest {
                        node,
                        matches: false,
                    }) => {
                        job.repair.digest_mismatches.fetch_add(1, Ordering::Relaxed);
                        let transport = Arc::clone(&job.transport);
                        late.push(get_call(
                            transport,
                            node,
                            answer.datacenter,
                            job.key.clone(),
                        ));
                    }
                    Err(_) => {}
                }
            }
            job.run().await;
        });
    }
}

impl RepairJob {
    fn merged(&self) -> Option<SiblingSet> {
        let mut merged: Option<SiblingSet> = None;
        for set in self.replies.iter().filter_map(|(_, set)| set.as_ref()) {
            match &mut merged {
                None => merged = Some(set.clone()),
                Some(merged) => merged.merge(set, &self.versions).ok()?,
            }
        }
        merged
    }

    /// Whether every reply is the same (the common case): then no replica is stale, and
    /// the merge and per-replica folds that would show it are skipped.
    fn agree(&self) -> bool {
        self.replies.windows(2).all(|pair| pair[0].1 == pair[1].1)
    }

    fn stale(&self) -> Vec<NodeId> {
        if self.agree() {
            return Vec::new();
        }
        match self.merged() {
            Some(merged) => stale_replicas(&self.replies, &merged, &self.versions),
            None => Vec::new(),
        }
    }

    async fn run(self) {
        if self.agree() {
            return;
        }
        let Some(merged) = self.merged() else { return };
        let stale = stale_replicas(&self.replies, &merged, &self.versions);
        if stale.is_empty() {
            return;
        }
        let Ok(_permit) = Arc::clone(&self.repair.permits).try_acquire_owned() else {
            self.repair.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let encoded = merged.encode();
        let mut tasks = tokio::task::JoinSet::new();
        for node in stale {
            if node == self.node {
                let (store, key, merged) =
                    (Arc::clone(&self.store), self.key.clone(), merged.clone());
                tasks.spawn(async move {
                    store
                        .run(move |store| store.apply(&key, &merged).map(drop))
                        .await
                });
                continue;
            }
            let transport = Arc::clone(&self.transport);
            let message = PeerMessage::Put {
                key: self.key.clone(),
                siblings: encoded.clone(),
            };
            let timeout = self.timeout;
            tasks.spawn(async move {
                transport
                    .call(&node, message, timeout)
                    .await
                    .and_then(super::expect_ack)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            if let Ok(Ok(())) = joined {
                self.repair.repairs.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Whether a read should repair: used by tests.
pub fn needs_repair(replies: &[Tagged], versions: &VersionConfig) -> Result<bool> {
    let mut merged = SiblingSet::default();
    for set in replies.iter().filter_map(|(_, set)| set.as_ref()) {
        merged.merge(set, versions)?;
    }
    Ok(!stale_replicas(replies, &merged, versions).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::VectorClock;

    #[test]
    fn stale_replicas_are_those_missing_part_of_the_merge() {
        let config = VersionConfig::default();
        let mut old = SiblingSet::default();
        old.write_with_context(&VectorClock::new(), "n1", 1, Some(b"a".to_vec()), &config)
            .unwrap();
        let mut new = old.clone();
        new.write_with_context(&old.context(), "n1", 2, Some(b"b".to_vec()), &config)
            .unwrap();
        let replies: Vec<Tagged> = vec![
            (NodeId::new("n1"), Some(new.clone())),
            (NodeId::new("n2"), Some(old.clone())),
            (NodeId::new("n3"), None),
            (NodeId::new("n4"), Some(new.clone())),
        ];
        let stale = stale_replicas(&replies, &new, &config);
        assert_eq!(stale, vec![NodeId::new("n2"), NodeId::new("n3")]);
        assert!(needs_repair(&replies, &config).unwrap());
        let agreeing: Vec<Tagged> = vec![
            (NodeId::new("n1"), Some(new.clone())),
            (NodeId::new("n2"), Some(new)),
        ];
        assert!(!needs_repair(&agreeing, &config).unwrap());
        let empty: Vec<Tagged> = vec![(NodeId::new("n1"), None), (NodeId::new("n2"), None)];
        assert!(!needs_repair(&empty, &config).unwrap());
    }

    #[test]
    fn a_reply_that_would_not_decode_fails_as_it_arrives() {
        let error = checked_reply(NodeId::new("n5"), Some(vec![0xff, 0x01])).unwrap_err();
        assert!(error.to_string().contains("n5"), "{error}");
        // A clock naming one node twice: `decode` refuses it, so the arrival check must.
        let twice = b"VS\x01\x01\x02\x01a\x01\x00\x01a\x01\x00\x00\x00\x00".to_vec();
        assert!(checked_reply(NodeId::new("n5"), Some(twice)).is_err());
        let good = SiblingSet::default().encode();
        assert_eq!(
            checked_reply(NodeId::new("n5"), Some(good.clone())).unwrap(),
            (NodeId::new("n5"), Some(good))
        );
        assert!(checked_reply(NodeId::new("n5"), None).unwrap().1.is_none());
    }

    #[test]
    fn an_undecodable_reply_is_an_error_naming_its_replica() {
        let error = decode_reply((NodeId::new("n7"), Some(vec![0xff, 0x01, 0x02]))).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("n7"), "{text}");
        assert!(text.contains("corrupt version data"), "{text}");
        let (node, set) = decode_reply((NodeId::new("n2"), None)).unwrap();
        assert_eq!((node, set), (NodeId::new("n2"), None));
    }
}
