//! The read path: which replicas a read asks, and how their replies meet R.

use super::repair::{checked_reply, decode_from, decode_reply, RawTagged, Reply, Tagged};
use super::*;
use smallvec::SmallVec;

/// A read's outcome before it is shaped for the client.
enum Read {
    /// Every reply was the same stored set (tagged with the first replica that sent it), or
    /// no replica had the key.
    Agreed(Option<(NodeId, Vec<u8>)>),
    /// The replies differed (or a late reply may still repair): decoded and merged.
    Decoded(Option<SiblingSet>),
}

impl Coordinator {
    pub(super) async fn coordinate_read(
        &self,
        key: Vec<u8>,
        consistency: Consistency,
    ) -> Result<Option<SiblingSet>> {
        match self.read_replies(key, consistency).await? {
            Read::Decoded(set) => Ok(set),
            Read::Agreed(None) => Ok(None),
            Read::Agreed(Some((node, bytes))) => decode_from(&node, &bytes).map(Some),
        }
    }

    /// The read for a plain GET: the agreeing replicas' stored bytes left undecoded (the
    /// GET takes the newest value straight from them).
    pub(super) async fn coordinate_read_raw(
        &self,
        key: Vec<u8>,
        consistency: Consistency,
    ) -> Result<ReadReply> {
        Ok(match self.read_replies(key, consistency).await? {
            Read::Decoded(set) => ReadReply::Decoded(set),
            Read::Agreed(bytes) => ReadReply::Encoded(bytes.map(|(_, bytes)| bytes)),
        })
    }

    /// The read: the replicas' stored bytes as they came when those that answered agree
    /// byte for byte and no repair waits on a later reply (the common case), the replies
    /// decoded and merged otherwise.
    async fn read_replies(&self, key: Vec<u8>, consistency: Consistency) -> Result<Read> {
        let state = self.scaling.snapshot();
        let ReadPlan {
            need,
            local,
            asked,
            reserve,
            ..
        } = self.plan_read(&state, &key, consistency)?;
        let owned = |(node, datacenter): (NodeId, &Datacenter)| (node, Arc::clone(datacenter));
        let mut local = local.map(owned);
        let asked: Vec<(NodeId, Datacenter)> = asked.into_iter().map(owned).collect();
        let mut reserve: Vec<(NodeId, Datacenter)> = reserve.into_iter().map(owned).collect();
        let mut calls = Calls::new();
        let mut received = Vec::new();
        // Digest reads: with this node's copy read first, the replicas asked send only the
        // digest of theirs. Otherwise remote requests leave first, so the local read
        // overlaps their round trips.
        let mut expected = asked.len();
        let digests = self.read_digests && self.read_fanout == ReadFanout::Quorum;
        let mut own_digest = None;
        if let Some((node, datacenter)) = local.take_if(|_| digests) {
            expected += 1;
            let result = self
                .read_own_with_digest(&key)
                .await
                .and_then(|(bytes, digest)| Ok((checked_reply(node.clone(), bytes)?, digest)));
            let result = result.map(|(reply, digest)| {
                own_digest = Some(digest);
                reply
            });
            received.push(Answer {
                result: result.map(Reply::Set),
                node,
                datacenter,
            });
        }
        for (node, datacenter) in asked {
            calls.push(match own_digest {
                Some(own) => self.digest_call(node, datacenter, key.clone(), own),
                None => self.get_call(node, datacenter, key.clone()),
            });
        }
        if let Some((node, datacenter)) = local {
            expected += 1;
            let result = self.read_local(&key, node.clone()).await;
            received.push(Answer {
                result: result.map(Reply::Set),
                node,
                datacenter,
            });
        }
        reserve.reverse();
        let mut ask_more = |calls: &mut Calls<Reply>, count: usize| {
            let mut sent = 0;
            while sent < count {
                let Some((node, datacenter)) = reserve.pop() else {
                    break;
                };
                calls.push(self.get_call(node, datacenter, key.clone()));
                sent += 1;
            }
            sent
        };
        let replies = self
            .gather(
                &mut calls,
                received,
                expected,
                &need,
                "read replies",
                false,
                Some(&mut ask_more),
            )
            .await?;
        let replies = self.fetch_differing(&key, replies, &need).await?;
        // Replies byte for byte the same (the common case; a matching digest is this
        // node's copy): nothing to merge, and no repair unless a reply still to come
        // differs; undecoded unless such a reply can come.
        if agree(&replies) {
            let nodes: Vec<NodeId> = match calls.len() {
                0 => Vec::new(),
                _ => replies.iter().map(|reply| reply.node().clone()).collect(),
            };
            let first = replies.into_iter().find_map(|reply| match reply {
                Reply::Set(raw) => Some(raw),
                Reply::Digest { .. } => None,
            });
            if calls.len() == 0 {
                return Ok(Read::Agreed(
                    first.and_then(|(node, bytes)| bytes.map(|bytes| (node, bytes))),
                ));
            }
            let merged = match &first {
                Some((node, Some(bytes))) => Some(decode_from(node, bytes)?),
                _ => None,
            };
            // Every reply holds `merged` (a matching digest is this node's copy).
            let decoded: Vec<Tagged> = nodes
                .into_iter()
                .map(|node| (node, merged.clone()))
                .collect();
            self.repair_after_read(key, decoded, calls);
            return Ok(Read::Decoded(merged));
        }
        // A matching digest holds this node's copy: it is stale (and repaired) with it.
        let own = replies.iter().find_map(|reply| match reply {
            Reply::Set((node, bytes)) if *node == self.node => Some(bytes.clone()),
            _ => None,
        });
        let replies: Vec<RawTagged> = replies
            .into_iter()
            .filter_map(|reply| match reply {
                Reply::Set(raw) => Some(raw),
                Reply::Digest { node, .. } => own.clone().map(|bytes| (node, bytes)),
            })
            .collect();
        let replies = replies
            .into_iter()
            .map(decode_reply)
            .collect::<Result<Vec<Tagged>>>()?;
        let mut merged: Option<SiblingSet> = None;
        for (_, reply) in &replies {
            match (&mut merged, reply) {
                (_, None) => {}
                (None, Some(reply)) => merged = Some(reply.clone()),
                // Replicas that agree need no merge.
                (Some(set), Some(reply)) if set == reply => {}
                (Some(set), Some(reply)) => set.merge(reply, &self.versions)?,
            }
        }
        self.repair_after_read(key, replies, calls);
        Ok(Read::Decoded(merged))
    }
}

/// Whether the replies are byte for byte the same: every set equal, every digest matching
/// this node's copy (one of the sets).
fn agree(replies: &[Reply]) -> bool {
    let mut sets = replies.iter().filter_map(|reply| match reply {
        Reply::Set((_, bytes)) => Some(bytes),
        Reply::Digest { .. } => None,
    });
    let first = sets.next();
    sets.all(|bytes| Some(bytes) == first)
        && replies
            .iter()
            .all(|reply| !matches!(reply, Reply::Digest { matches: false, .. }))
}

impl Coordinator {
    /// This node's own copy of `key`, checked as a replica's reply is.
    pub(super) async fn read_local(&self, key: &[u8], node: NodeId) -> Result<RawTagged> {
        self.read_own(key)
            .await
            .and_then(|set| checked_reply(node, set))
    }

    /// This node's own copy of `key` as stored, unchecked.
    pub(super) async fn read_own(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = key.to_vec();
        self.blocking(move |store| store.read_encoded(&key)).await
    }

    /// [`Coordinator::read_own`] with the copy's digest (kept beside it by the store; `None`
    /// when there is no copy), for a digest read.
    pub(super) async fn read_own_with_digest(
        &self,
        key: &[u8],
    ) -> Result<(Option<Vec<u8>>, Option<u128>)> {
        let key = key.to_vec();
        let own = self
            .blocking(move |store| store.read_encoded_with_digest(&key))
            .await?;
        Ok(own.map_or((None, None), |(bytes, digest)| (Some(bytes), Some(digest))))
    }

    /// Replaces every digest that differed from this node's copy with the replica's set,
    /// fetched with a `Get` (the replicas are asked together, until the request timeout).
    /// A replica that fails to send it counts as not having answered: the read goes on
    /// if the others still meet `need`, and fails with the quorum error otherwise.
    async fn fetch_differing(
        &self,
        key: &[u8],
        replies: Vec<Reply>,
        need: &Need,
    ) -> Result<Vec<Reply>> {
        if !replies
            .iter()
            .any(|reply| matches!(reply, Reply::Digest { matches: false, .. }))
        {
            return Ok(replies);
        }
        // Only to tag the answers (a quorum counts datacenters): the ring's view now.
        let replicas = self.replicas(key).unwrap_or_default();
        let datacenter_of = |node: &NodeId| {
            replicas
                .iter()
                .find(|(replica, _)| replica == node)
                .map_or_else(
                    || self.datacenter.clone(),
                    |(_, datacenter)| datacenter.clone(),
                )
        };
        let mut calls = Calls::new();
        let mut kept = Vec::with_capacity(replies.len());
        for reply in replies {
            match reply {
                Reply::Digest {
                    node,
                    matches: false,
                } => {
                    self.repair
                        .digest_mismatches
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let datacenter = datacenter_of(&node);
                    calls.push(self.get_call(node, datacenter, key.to_vec()));
                }
                other => kept.push(other),
            }
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut failures = Vec::new();
        while calls.len() > 0 {
            match tokio::time::timeout_at(deadline, calls.next()).await {
                Ok(Some(answer)) => match answer.result {
                    Ok(reply) => kept.push(reply),
                    Err(error) => failures.push(format!("{}: {error}", answer.node)),
                },
                Ok(None) => break,
                Err(_) => {
                    failures.push(format!(
                        "{} replicas whose digest differed did not send their sets within {} ms",
                        calls.len(),
                        self.timeout.as_millis()
                    ));
                    break;
                }
            }
        }
        if failures.is_empty() {
            return Ok(kept);
        }
        let answered: Vec<Datacenter> = kept
            .iter()
            .map(|reply| datacenter_of(reply.node()))
            .collect();
        if need.met(&answered) {
            return Ok(kept);
        }
        Err(need.failed("read replies", &answered, &failures))
    }
}

/// Which replicas a read asks: this node's own copy (when it is a replica), the remote
/// replicas that meet the need with it, and the others held in reserve (in the order they
/// are asked).
pub(super) struct ReadPlan<'a> {
    pub(super) need: Need,
    pub(super) local: Option<(NodeId, &'a Datacenter)>,
    pub(super) asked: Replicas<'a>,
    pub(super) reserve: Replicas<'a>,
    /// Whether this node's copy and the replicas asked meet the need together (false with
    /// `all`, which batched reads do not use).
    pub(super) asked_meet_need: bool,
}

/// A read's replicas with their datacenters, on the stack for the usual handful: a batch
/// plans every key of a pipeline, and five small vectors per key were a tenth of the
/// coordinator's allocations under redis-benchmark -P 16.
pub(super) type Replicas<'a> = SmallVec<[(NodeId, &'a Datacenter); 4]>;

impl Coordinator {
    /// The replicas a read of `key` at `consistency` asks first, and those it keeps in
    /// reserve (see [`ReadFanout`]).
    /// Datacenter names are borrowed from `state`, the ring snapshot the read uses (one for
    /// a whole batch of reads).
    pub(super) fn plan_read<'a>(
        &self,
        state: &'a RingState,
        key: &[u8],
        consistency: Consistency,
    ) -> Result<ReadPlan<'a>> {
        let nodes = state.read_replicas(key, &self.replication)?;
        let mut datacenters: SmallVec<[&'a Datacenter; 8]> = SmallVec::with_capacity(nodes.len());
        for node in &nodes {
            let datacenter = state
                .datacenter(node.as_str())
                .ok_or_else(|| Error::Placement(format!("{node} is not on the ring")))?;
            datacenters.push(datacenter);
        }
        let names: SmallVec<[&str; 8]> = datacenters.iter().map(|name| &***name).collect();
        let need = Need::new(
            consistency,
            self.default_consistency,
            Side::Read,
            &names,
            &self.datacenter,
        )?;
        let mut local = None;
        let mut remote: Replicas<'a> = SmallVec::with_capacity(nodes.len());
        for (node, datacenter) in nodes.into_iter().zip(datacenters) {
            if node == self.node {
                local = Some((node, datacenter));
            } else {
                remote.push((node, datacenter));
            }
        }
        // Replicas gossip holds Down last, then this node's datacenter's first (stable:
        // preference order within each group), so `quorum` neither waits out a dead replica
        // (a read asked it first and waited for its timeout while it was down) nor a WAN
        // round trip a local replica could save.
        // Replicas the transport cannot connect to since they were last up (their process
        // is gone), asked of the transport once per read and only while it has any.
        let gone: SmallVec<[NodeId; 2]> = if self.transport.any_unreachable() {
            remote
                .iter()
                .filter(|(node, _)| self.transport.unreachable(node))
                .map(|(node, _)| node.clone())
                .collect()
        } else {
            SmallVec::new()
        };
        // (A stable sort of a few replicas: no allocation, unlike a cached-key sort.)
        remote.sort_by_key(|(node, datacenter)| {
            (
                self.membership.is_down(node) || gone.contains(node),
                **datacenter != self.datacenter,
            )
        });
        // Those cannot answer: when the others cannot meet the need, the read fails now,
        // naming them, instead of after the request timeout.
        if !gone.is_empty() {
            let mut live: SmallVec<[&str; 8]> = SmallVec::new();
            live.extend(local.iter().map(|(_, dc)| &***dc));
            live.extend(
                remote
                    .iter()
                    .filter(|(node, _)| !gone.contains(node))
                    .map(|(_, datacenter)| &***datacenter),
            );
            if !need.met(&live) {
                let failures: Vec<String> = gone
                    .iter()
                    .map(|node| {
                        format!(
                            "{node}: unreachable (refuses connections since it was last connected)"
                        )
                    })
                    .collect();
                // Counted as a read that waited would count them: the replicas that can
                // answer (this node's copy among them) against the need.
                return Err(need.failed("read replies", &live, &failures));
            }
        }
        // `quorum`: ask the replicas that can meet the need (this node's own copy first,
        // then its datacenter's), keeping the others in reserve; `all`: ask every replica.
        let mut asked_meet_need = false;
        let (asked, reserve) = match self.read_fanout {
            ReadFanout::All => (remote, Replicas::new()),
            ReadFanout::Quorum => {
                let mut chosen: SmallVec<[&str; 8]> = SmallVec::with_capacity(remote.len() + 1);
                chosen.extend(local.iter().map(|(_, dc)| &***dc));
                // On the stack for the usual handful of replicas.
                let (mut few, mut many) = ([false; 8], Vec::new());
                let helps: &mut [bool] = match few.get_mut(..remote.len()) {
                    Some(few) => few,
                    None => {
                        many.resize(remote.len(), false);
                        &mut many
                    }
                };
                for ((_, datacenter), helped) in remote.iter().zip(helps.iter_mut()) {
                    *helped = need.helped_by(&chosen, datacenter);
                    if *helped {
                        chosen.push(datacenter);
                    }
                }
                asked_meet_need = need.met(&chosen);
                drop(chosen);
                let mut asked = Replicas::with_capacity(remote.len());
                let mut reserve = Replicas::new();
                for (replica, &helped) in remote.into_iter().zip(helps.iter()) {
                    if helped {
                        asked.push(replica);
                    } else {
                        reserve.push(replica);
                    }
                }
                (asked, reserve)
            }
        };
        Ok(ReadPlan {
            need,
            local,
            asked,
            reserve,
            asked_meet_need,
        })
    }
}
