//! Batched writes: the SETs of one pipelined client batch written together.
//!
//! Each SET is minted here as a single write is (this node must be a replica of its key;
//! a SET of a key it does not replicate, or one whose planning fails, is written on its own
//! with [`Coordinator::coordinate_write`]). Then every other replica gets one `PutMany`
//! holding all the batch's new versions it replicates, instead of one `Put` each, and each
//! key is answered once its acknowledgements meet W, as a single write is. A replica that
//! refuses a put (or the whole `PutMany`) counts as that key's failure; one that cannot be
//! reached has, in sloppy mode, each of its keys handed to a fallback with a hint
//! ([`Handoff::put`]), exactly as a single write's `Put` would; `PutMany`s still in flight
//! once every key is answered go on without the client, their unreachable keys handed off
//! the same way.

use super::write::PutCall;
use super::*;
use crate::net::transport::EncodedRequest;

/// One SET of the batch while its acknowledgements are gathered.
struct Writing {
    need: Need,
    write: Arc<ReplicaWrite>,
    fallbacks: Arc<Fallbacks>,
    /// Acknowledgements and failures so far, this node's own write first.
    received: Vec<Answer<()>>,
    /// Datacenters of the acknowledgements in `received`.
    acked: Vec<Datacenter>,
    /// `Put`s through the handoff path (replicas known or found unreachable).
    handoffs: Vec<PutCall>,
}

/// The `PutMany` of the batch's puts at `indices`.
fn put_many(writing: &[Option<Writing>], indices: &[usize]) -> PeerMessage {
    let puts = indices
        .iter()
        .filter_map(|&index| writing[index].as_ref())
        .map(|state| (state.write.key.clone(), state.write.siblings.clone()))
        .collect();
    PeerMessage::PutMany { puts }
}

/// One replica's answer to the batch's `PutMany`: the replica, its datacenter and the batch
/// indices of the puts it holds (in request order), and what came back.
type PutManyAnswer = (Vec<usize>, Result<PeerMessage>);

impl Coordinator {
    /// [`Backend::write_many`]: see the module documentation.
    pub(super) async fn write_many(
        &self,
        writes: Vec<(Vec<u8>, Vec<u8>)>,
        consistency: Consistency,
    ) -> Vec<Result<()>> {
        // A `PutMany` holds every value of the batch (each a little larger once minted):
        // batches past a quarter of the frame limit are written one by one.
        let bytes: usize = writes
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum();
        if writes.len() < 2 || bytes > self.transport.frame_size_bytes_max() / 4 {
            return self.write_each(writes, consistency).await;
        }
        let started = tokio::time::Instant::now();
        let sloppy = self.handoff.mode() == HandoffMode::Sloppy;
        let mut results: Vec<Option<Result<()>>> = Vec::with_capacity(writes.len());
        let mut writing: Vec<Option<Writing>> = Vec::with_capacity(writes.len());
        let mut single = Vec::new();
        // Per remote replica: its datacenter and the batch indices it is sent.
        let mut sends: Vec<(NodeId, Datacenter, Vec<usize>)> = Vec::new();
        // Held until the batch is answered: its writes count as in flight under these rings.
        let mut rings = Vec::new();
        for (index, (key, value)) in writes.into_iter().enumerate() {
            let planned = self.write_replicas(&key).and_then(|(ring, replicas)| {
                let need = self.need(consistency, Side::Write, &replicas)?;
                Ok((ring, replicas, need))
            });
            let (ring, replicas, need) = match planned {
                Ok(planned) if planned.1.iter().any(|(node, _)| *node == self.node) => planned,
                _ => {
                    results.push(None);
                    writing.push(None);
                    single.push((key, value));
                    continue;
                }
            };
            let state = Arc::clone(ring.state());
            rings.push(ring);
            match self
                .start_write(index, key, value, state, replicas, need, &mut sends)
                .await
            {
                Ok(state) => {
                    results.push(None);
                    writing.push(Some(state));
                }
                Err(error) => {
                    results.push(Some(Err(error)));
                    writing.push(None);
                }
            }
        }
        let budget = if sloppy {
            self.timeout / 2
        } else {
            self.timeout
        };
        let mut calls: Calls<PutManyAnswer> = Calls::new();
        // Replicas sent the same keys (every replica when each holds the whole batch, as
        // with N = 3 on three nodes) share one encoded `PutMany`: built and encoded once,
        // not once per replica, each a copy of every value.
        let mut encoded: Vec<(Vec<usize>, Option<EncodedRequest>)> = Vec::new();
        for (node, datacenter, indices) in sends {
            let shared = match encoded.iter().position(|(same, _)| *same == indices) {
                Some(position) => position,
                None => {
                    let message = put_many(&writing, &indices);
                    let request = self.transport.encode_request(&message).ok();
                    encoded.push((indices.clone(), request));
                    encoded.len() - 1
                }
            };
            let call = match &encoded[shared].1 {
                Some(request) => {
                    self.transport
                        .start_call_encoded(&node, request, started + budget, budget)
                }
                // It did not encode (too large): the call fails with the encoder's error.
                None => self.transport.start_call(
                    &node,
                    put_many(&writing, &indices),
                    started + budget,
                    budget,
                ),
            };
            calls.push(Box::pin(async move {
                let result = match call {
                    Ok(call) => call.await,
                    Err(error) => Err(error),
                };
                Answer {
                    node,
                    datacenter,
                    result: Ok((indices, result)),
                }
            }));
        }
        let deadline = started + self.timeout;
        while writing
            .iter()
            .flatten()
            .any(|state| !state.need.met(&state.acked))
        {
            let Ok(Some(answer)) = tokio::time::timeout_at(deadline, calls.next()).await else {
                break;
            };
            if let Ok((indices, result)) = answer.result {
                self.put_many_answered(
                    answer.node,
                    answer.datacenter,
                    indices,
                    result,
                    &mut writing,
                );
            }
        }
        self.detach_put_many(calls, &writing, deadline);
        let finishing = writing.into_iter().map(|state| async move {
            let state = state?;
            Some(
                self.gather_writes(
                    state.handoffs,
                    state.received,
                    &state.need,
                    &state.write,
                    &state.fallbacks,
                    started,
                )
                .await,
            )
        });
        let (finished, single) = tokio::join!(
            crate::server::join_all(finishing.collect()),
            self.write_each(single, consistency)
        );
        let mut single = single.into_iter();
        results
            .into_iter()
            .zip(finished)
            .map(|(early, finished)| {
                early.or(finished).unwrap_or_else(|| {
                    single.next().unwrap_or_else(|| {
                        Err(Error::Stopped("a batched write lost a reply".to_string()))
                    })
                })
            })
            .collect()
    }

    /// Mints the new version of `key` here (this node is one of `replicas`) and notes,
    /// in `sends`, the other replicas to send it to; replicas known to be down in sloppy
    /// mode get it through the handoff path at once.
    #[allow(clippy::too_many_arguments)] // one SET's plan, taken apart
    async fn start_write(
        &self,
        index: usize,
        key: Vec<u8>,
        value: Vec<u8>,
        ring: Arc<RingState>,
        replicas: Replicas,
        need: Need,
        sends: &mut Vec<(NodeId, Datacenter, Vec<usize>)>,
    ) -> Result<Writing> {
        if value.len() > self.store.value_bytes_max() {
            return Err(Error::Command(format!(
                "ERR value of {} bytes exceeds the limit of {} bytes",
                value.len(),
                self.store.value_bytes_max()
            )));
        }
        let (minted, minter, _) = self
            .mint(&key, &VectorClock::new(), Some(value), &replicas)
            .await?;
        let write = Arc::new(ReplicaWrite::unencoded(key, minted.encode()));
        let fallbacks = Arc::new(Fallbacks::new(
            &write.key,
            replicas.iter().map(|(node, _)| node.clone()).collect(),
            ring,
        ));
        let mut state = Writing {
            need,
            write,
            fallbacks,
            received: Vec::with_capacity(replicas.len()),
            acked: Vec::with_capacity(replicas.len()),
            handoffs: Vec::new(),
        };
        let sloppy = self.handoff.mode() == HandoffMode::Sloppy;
        for (node, datacenter) in replicas {
            if node == minter {
                state.acked.push(datacenter.clone());
                state.received.push(Answer {
                    node,
                    datacenter,
                    result: Ok(()),
                });
            } else if sloppy && self.handoff.is_down(&node) {
                let call = self.put_call(node, datacenter, &state.write, &state.fallbacks, None);
                state.handoffs.push(PutCall::Handoff(call));
            } else {
                match sends.iter_mut().find(|(replica, _, _)| *replica == node) {
                    Some((_, _, indices)) => indices.push(index),
                    None => sends.push((node, datacenter, vec![index])),
                }
            }
        }
        Ok(state)
    }

    /// Counts one replica's answer to a `PutMany` for each of its keys.
    fn put_many_answered(
        &self,
        node: NodeId,
        datacenter: Datacenter,
        indices: Vec<usize>,
        result: Result<PeerMessage>,
        writing: &mut [Option<Writing>],
    ) {
        let sloppy = self.handoff.mode() == HandoffMode::Sloppy;
        match result {
            Ok(PeerMessage::PutManyAck { failed }) => {
                self.handoff.mark_up(&node);
                for (position, &index) in indices.iter().enumerate() {
                    let Some(state) = writing[index].as_mut() else {
                        continue;
                    };
                    let refused = failed
                        .iter()
                        .find(|(failed, _)| *failed as usize == position)
                        .map(|(_, error)| Error::Command(format!("ERR replica failed: {error}")));
                    if refused.is_none() {
                        state.acked.push(datacenter.clone());
                    }
                    state.received.push(Answer {
                        node: node.clone(),
                        datacenter: datacenter.clone(),
                        result: refused.map_or(Ok(()), Err),
                    });
                }
            }
            Err(error) if sloppy && is_unreachable(&error) => {
                let text = error.to_string();
                for &index in &indices {
                    let Some(state) = writing[index].as_mut() else {
                        continue;
                    };
                    let failed = Error::PeerUnavailable {
                        peer: node.to_string(),
                        detail: text.clone(),
                    };
                    let call = self.put_call(
                        node.clone(),
                        datacenter.clone(),
                        &state.write,
                        &state.fallbacks,
                        Some(failed),
                    );
                    state.handoffs.push(PutCall::Handoff(call));
                }
            }
            other => {
                let text = match other {
                    Ok(reply) => unexpected(reply).to_string(),
                    Err(error) => error.to_string(),
                };
                for &index in &indices {
                    if let Some(state) = writing[index].as_mut() {
                        state.received.push(Answer {
                            node: node.clone(),
                            datacenter: datacenter.clone(),
                            result: Err(Error::Command(text.clone())),
                        });
                    }
                }
            }
        }
    }

    /// Lets the `PutMany`s still in flight go on after every key was answered: an
    /// acknowledgement marks its replica up; an unreachable replica's keys go to fallbacks
    /// with hints (sloppy mode), each on a task of its own, as a single write's would.
    fn detach_put_many(
        &self,
        mut calls: Calls<PutManyAnswer>,
        writing: &[Option<Writing>],
        deadline: tokio::time::Instant,
    ) {
        if calls.len() == 0 {
            return;
        }
        let keys: Vec<Option<(Arc<ReplicaWrite>, Arc<Fallbacks>)>> = writing
            .iter()
            .map(|state| {
                state
                    .as_ref()
                    .map(|state| (Arc::clone(&state.write), Arc::clone(&state.fallbacks)))
            })
            .collect();
        let handoff = Arc::clone(&self.handoff);
        let transport = Arc::clone(&self.transport);
        tokio::spawn(async move {
            while let Some(answer) = calls.next().await {
                let Ok((indices, result)) = answer.result else {
                    continue;
                };
                match result {
                    Ok(PeerMessage::PutManyAck { .. }) => handoff.mark_up(&answer.node),
                    Err(error)
                        if handoff.mode() == HandoffMode::Sloppy && is_unreachable(&error) =>
                    {
                        let text = error.to_string();
                        for index in indices {
                            let Some(Some((write, fallbacks))) = keys.get(index) else {
                                continue;
                            };
                            let failed = Error::PeerUnavailable {
                                peer: answer.node.to_string(),
                                detail: text.clone(),
                            };
                            let target = (
                                answer.node.clone(),
                                answer.datacenter.clone(),
                                Arc::clone(write),
                                Arc::clone(fallbacks),
                            );
                            let (handoff, transport) =
                                (Arc::clone(&handoff), Arc::clone(&transport));
                            super::write::spawn_handoff(
                                handoff, transport, deadline, target, failed,
                            );
                        }
                    }
                    _ => {}
                }
            }
        });
    }

    /// The single write of each SET, in order, concurrently.
    async fn write_each(
        &self,
        writes: Vec<(Vec<u8>, Vec<u8>)>,
        consistency: Consistency,
    ) -> Vec<Result<()>> {
        let writes: Vec<_> = writes
            .into_iter()
            .map(|(key, value)| {
                self.coordinate_write(key, VectorClock::new(), Some(value), consistency)
            })
            .collect();
        crate::server::join_all(writes).await
    }
}
