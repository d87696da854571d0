//! Batched digest reads: the plain GETs of one pipelined client batch read together.
//!
//! Each key is planned as a single read is ([`Coordinator::plan_read`]) and this node's copy
//! read; then every replica asked for some of the keys gets one `GetDigest` holding all of
//! them, instead of one message per key (at redis-benchmark -P 16 a coordinator sent 16
//! frames to each replica, each with its pending call, timer-free deadline, link-emulator
//! verdict and reply to match). A key whose asked replicas all sent the digest of this
//! node's copy is answered with that copy, as the single read would. Every other key (this
//! node holds no copy, its copy failed to read, a digest differed, a replica failed or had
//! not answered within a quarter of the request timeout, the single read's hedging point)
//! is read again on its own ([`Coordinator::coordinate_read_raw`]), which fetches, merges,
//! repairs, asks replicas in reserve and reports errors exactly as it always does. Such a
//! key costs the batch's round trip more than it would have alone.

use super::read::ReadPlan;
use super::*;

/// One key of the batch while its digests are awaited.
struct Awaiting {
    /// This node's copy, the answer when every digest matches.
    own: Option<Vec<u8>>,
    /// Its digest.
    digest: Option<u128>,
    /// Digests still to come.
    remaining: usize,
}

/// One replica's answer to the batch's `GetDigest`: the batch indices it was asked about,
/// and their digests in the same order (or why there are none).
type DigestAnswer = (Vec<usize>, Result<Vec<Option<u128>>>);

impl Coordinator {
    /// [`Backend::read_many_for_get`]: see the module documentation.
    pub(super) async fn read_many_raw(
        &self,
        keys: Vec<Vec<u8>>,
        consistency: Consistency,
    ) -> Vec<Result<ReadReply>> {
        if keys.len() < 2 || !self.read_digests || self.read_fanout != ReadFanout::Quorum {
            return self.read_each(keys, consistency, &[]).await;
        }
        // Per key: `Some` while it can be answered from the batch, `None` once it takes
        // the single read.
        let mut awaiting: Vec<Option<Awaiting>> = Vec::with_capacity(keys.len());
        // Per replica asked: the batch indices it is asked about.
        let mut asks: Vec<(NodeId, Vec<usize>)> = Vec::new();
        let state = self.scaling.snapshot();
        for (index, key) in keys.iter().enumerate() {
            let plan = match self.plan_read(&state, key, consistency) {
                Ok(plan) => plan,
                Err(_) => {
                    awaiting.push(None);
                    continue;
                }
            };
            let ReadPlan {
                local,
                asked,
                asked_meet_need,
                ..
            } = plan;
            if local.is_none() || !asked_meet_need {
                awaiting.push(None);
                continue;
            }
            // Not checked here as a reply is: the answer's latest value is taken from it
            // with the same check, and a copy that fails it is that key's error only when
            // the replicas asked hold the very same bytes (a single read would find every
            // reply failing too).
            let Ok((own, digest)) = self.read_own_with_digest(key).await else {
                awaiting.push(None);
                continue;
            };
            for (replica, _) in &asked {
                match asks.iter_mut().find(|(asked, _)| asked == replica) {
                    Some((_, indices)) => indices.push(index),
                    None => asks.push((replica.clone(), vec![index])),
                }
            }
            awaiting.push(Some(Awaiting {
                digest,
                own,
                remaining: asked.len(),
            }));
        }
        let mut calls: Calls<DigestAnswer> = Calls::new();
        for (node, indices) in asks {
            let message = PeerMessage::GetDigest {
                keys: indices.iter().map(|&index| keys[index].clone()).collect(),
            };
            let transport = Arc::clone(&self.transport);
            calls.push(Box::pin(async move {
                let digests = transport
                    .call_unbounded(&node, message)
                    .await
                    .and_then(|reply| match reply {
                        PeerMessage::DigestReply { digests } if digests.len() == indices.len() => {
                            Ok(digests)
                        }
                        other => Err(unexpected(other)),
                    });
                Answer {
                    node,
                    datacenter: Datacenter::from(""),
                    result: Ok((indices, digests)),
                }
            }));
        }
        let hedge = tokio::time::Instant::now() + self.timeout / 4;
        while let Ok(Some(answer)) = tokio::time::timeout_at(hedge, calls.next()).await {
            let Ok((indices, digests)) = answer.result else {
                continue;
            };
            match digests {
                Ok(digests) => {
                    for (index, digest) in indices.into_iter().zip(digests) {
                        let slot = &mut awaiting[index];
                        match slot {
                            Some(key) if key.digest == digest => key.remaining -= 1,
                            _ => *slot = None,
                        }
                    }
                }
                Err(_) => {
                    for index in indices {
                        awaiting[index] = None;
                    }
                }
            }
        }
        // Calls still in flight are dropped (forgotten): their keys take the single read.
        drop(calls);
        let answered: Vec<bool> = awaiting
            .iter()
            .map(|key| key.as_ref().is_some_and(|key| key.remaining == 0))
            .collect();
        let mut single = self
            .read_each(keys, consistency, &answered)
            .await
            .into_iter();
        awaiting
            .into_iter()
            .zip(answered)
            .map(|(key, answered)| match (key, answered) {
                (Some(key), true) => Ok(ReadReply::Encoded(key.own)),
                _ => single.next().unwrap_or_else(|| {
                    Err(Error::Stopped("a batched read lost a reply".to_string()))
                }),
            })
            .collect()
    }

    /// The single read of each key not `skip`ped (all of them when `skip` is empty), in
    /// order, concurrently.
    async fn read_each(
        &self,
        keys: Vec<Vec<u8>>,
        consistency: Consistency,
        skip: &[bool],
    ) -> Vec<Result<ReadReply>> {
        let reads: Vec<_> = keys
            .into_iter()
            .enumerate()
            .filter(|(index, _)| !skip.get(*index).copied().unwrap_or(false))
            .map(|(_, key)| self.coordinate_read_raw(key, consistency))
            .collect();
        crate::server::join_all(reads).await
    }
}
