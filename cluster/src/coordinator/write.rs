//! The write path: mint the new version (here when this node is a replica), send it to the
//! other replicas as `Put`s and answer once W have acknowledged; unreachable replicas'
//! writes go to fallbacks with hints in sloppy mode (see the module documentation of
//! [`crate::coordinator`]).

use super::*;

/// One write's `Put` to one replica, while the write waits for W.
pub(super) enum PutCall {
    /// Straight to the replica ([`Coordinator::start_put`]).
    Direct {
        node: NodeId,
        datacenter: Datacenter,
        call: DeadlineCall,
    },
    /// Through [`Handoff::put`]: to a fallback when the replica is unreachable.
    Handoff(calls::Call<()>),
}

/// What one of a write's [`PutCall`]s came back with.
enum PutOutcome {
    Direct {
        node: NodeId,
        datacenter: Datacenter,
        result: Result<PeerMessage>,
    },
    Handoff(Answer<()>),
}

/// The first of `puts` to answer, taken out of it.
async fn next_put(puts: &mut Vec<PutCall>) -> PutOutcome {
    std::future::poll_fn(|cx| {
        for index in 0..puts.len() {
            let ready = match &mut puts[index] {
                PutCall::Direct { call, .. } => match std::pin::Pin::new(call).poll(cx) {
                    std::task::Poll::Ready(result) => Some(Ok(result)),
                    std::task::Poll::Pending => None,
                },
                PutCall::Handoff(call) => match call.as_mut().poll(cx) {
                    std::task::Poll::Ready(answer) => Some(Err(answer)),
                    std::task::Poll::Pending => None,
                },
            };
            let Some(ready) = ready else {
                continue;
            };
            let put = puts.swap_remove(index);
            return std::task::Poll::Ready(match (put, ready) {
                (
                    PutCall::Direct {
                        node, datacenter, ..
                    },
                    Ok(result),
                ) => PutOutcome::Direct {
                    node,
                    datacenter,
                    result,
                },
                (_, Err(answer)) => PutOutcome::Handoff(answer),
                (PutCall::Handoff(_), Ok(_)) => unreachable!("a handoff call answers as one"),
            });
        }
        std::task::Poll::Pending
    })
    .await
}

impl Coordinator {
    pub(super) async fn coordinate_write(
        &self,
        key: Vec<u8>,
        context: VectorClock,
        value: Option<Vec<u8>>,
        consistency: Consistency,
    ) -> Result<()> {
        // Held to the end: the write counts as in flight under this ring until answered.
        let (ring, replicas) = self.write_replicas(&key)?;
        let need = self.need(consistency, Side::Write, &replicas)?;
        // Every node has the same limit: refuse here with the store's wording rather than
        // as a replica's error.
        let length = value.as_ref().map_or(0, Vec::len);
        if length > self.store.value_bytes_max() {
            return Err(Error::Command(format!(
                "ERR value of {length} bytes exceeds the limit of {} bytes",
                self.store.value_bytes_max()
            )));
        }
        let (minted, minter, failures) = self.mint(&key, &context, value, &replicas).await?;
        let minter_datacenter = replicas
            .iter()
            .find(|(node, _)| *node == minter)
            .map(|(_, dc)| dc.clone())
            .unwrap_or_default();
        let received = vec![Answer {
            node: minter.clone(),
            datacenter: minter_datacenter,
            result: Ok(()),
        }];
        // Encoded once, the `Put` frame too, for every replica.
        let write = Arc::new(ReplicaWrite::new(&self.transport, key, minted.encode())?);
        let key = &write.key;
        let fallbacks = Arc::new(Fallbacks::new(
            key,
            replicas.iter().map(|(node, _)| node.clone()).collect(),
            Arc::clone(ring.state()),
        ));
        let failed: Vec<NodeId> = failures.iter().map(|answer| answer.node.clone()).collect();
        let started = tokio::time::Instant::now();
        let mut puts = Vec::with_capacity(replicas.len());
        // Replicas that could not mint are known unreachable: straight to a fallback.
        for failure in failures {
            let error = failure.result.err();
            puts.push(PutCall::Handoff(self.put_call(
                failure.node,
                failure.datacenter,
                &write,
                &fallbacks,
                error,
            )));
        }
        for (node, datacenter) in replicas {
            if node == minter || failed.contains(&node) {
                continue;
            }
            puts.push(self.start_put(node, datacenter, &write, &fallbacks, started));
        }
        self.gather_writes(puts, received, &need, &write, &fallbacks, started)
            .await
    }

    /// A write's `Put` to replica `node`: sent straight to it, without a task, future or
    /// timer of its own (the transport's sweep bounds it), unless it is known to be down
    /// (then through [`Handoff::put`], to a fallback). In sloppy mode the replica gets
    /// half the request timeout, so a fallback still has time.
    pub(super) fn start_put(
        &self,
        node: NodeId,
        datacenter: Datacenter,
        write: &Arc<ReplicaWrite>,
        fallbacks: &Arc<Fallbacks>,
        started: tokio::time::Instant,
    ) -> PutCall {
        let sloppy = self.handoff.mode() == HandoffMode::Sloppy;
        if sloppy && self.handoff.is_down(&node) {
            return PutCall::Handoff(self.put_call(node, datacenter, write, fallbacks, None));
        }
        let budget = if sloppy {
            self.timeout / 2
        } else {
            self.timeout
        };
        let call = write.put(&self.transport).and_then(|put| {
            self.transport
                .start_call_encoded(&node, put, started + budget, budget)
        });
        match call {
            Ok(call) => PutCall::Direct {
                node,
                datacenter,
                call,
            },
            Err(error) => {
                PutCall::Handoff(self.put_call(node, datacenter, write, fallbacks, Some(error)))
            }
        }
    }

    /// Waits for the `Put`s until the acknowledgements (`received` so far) meet `need`, all
    /// of them answered, or the timeout. A direct `Put` whose replica turned out
    /// unreachable goes on through [`Handoff::put`] (to a fallback, in sloppy mode). The
    /// `Put`s still in flight at the end go on without this task: direct ones as detached
    /// calls ([`DeadlineCall::detach`]), the others on a task of their own.
    pub(super) async fn gather_writes(
        &self,
        mut puts: Vec<PutCall>,
        received: Vec<Answer<()>>,
        need: &Need,
        write: &Arc<ReplicaWrite>,
        fallbacks: &Arc<Fallbacks>,
        started: tokio::time::Instant,
    ) -> Result<()> {
        let deadline = started + self.timeout;
        let mut good_datacenters: Vec<Datacenter> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        for answer in received {
            match answer.result {
                Ok(()) => good_datacenters.push(answer.datacenter),
                Err(error) => failures.push(format!("{}: {error}", answer.node)),
            }
        }
        loop {
            if need.met(&good_datacenters) {
                self.detach_puts(puts, write, fallbacks, deadline);
                return Ok(());
            }
            if puts.is_empty() {
                break;
            }
            // Direct calls end by their deadline (the sweep); only the handoff path,
            // which waits on fallbacks, needs the request's own timer.
            let through_handoff = puts.iter().any(|put| matches!(put, PutCall::Handoff(_)));
            let next = next_put(&mut puts);
            let outcome = if through_handoff {
                // Boxed: a timer held inline would over-align (and grow) every write's
                // future, which the server boxes per request; this path is the rare one.
                match Box::pin(tokio::time::timeout_at(deadline, next)).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        failures.push(format!(
                            "{} replicas did not answer within {} ms",
                            puts.len(),
                            self.timeout.as_millis()
                        ));
                        self.detach_puts(puts, write, fallbacks, deadline);
                        break;
                    }
                }
            } else {
                next.await
            };
            match outcome {
                PutOutcome::Direct {
                    node,
                    datacenter,
                    result,
                } => match result {
                    Ok(PeerMessage::PutAck) => {
                        self.handoff.mark_up(&node);
                        good_datacenters.push(datacenter);
                    }
                    Ok(other) => failures.push(format!("{node}: {}", unexpected(other))),
                    Err(error)
                        if self.handoff.mode() == HandoffMode::Sloppy && is_unreachable(&error) =>
                    {
                        puts.push(PutCall::Handoff(self.put_call(
                            node,
                            datacenter,
                            write,
                            fallbacks,
                            Some(error),
                        )));
                    }
                    Err(error) => failures.push(format!("{node}: {error}")),
                },
                PutOutcome::Handoff(answer) => match answer.result {
                    Ok(()) => good_datacenters.push(answer.datacenter),
                    Err(error) => failures.push(format!("{}: {error}", answer.node)),
                },
            }
        }
        Err(need.failed("write acknowledgements", &good_datacenters, &failures))
    }

    /// Lets a write's `Put`s still in flight go on after the client's answer: a direct
    /// one's reply is handled where it is read (an unreachable replica's write then goes
    /// to a fallback with a hint, on a task of its own); the ones on the handoff path
    /// share one task.
    pub(super) fn detach_puts(
        &self,
        puts: Vec<PutCall>,
        write: &Arc<ReplicaWrite>,
        fallbacks: &Arc<Fallbacks>,
        deadline: tokio::time::Instant,
    ) {
        let mut handoffs = Calls::new();
        for put in puts {
            match put {
                PutCall::Handoff(call) => handoffs.push(call),
                PutCall::Direct {
                    node,
                    datacenter,
                    call,
                } => {
                    let handoff = Arc::clone(&self.handoff);
                    let transport = Arc::clone(&self.transport);
                    let (write, fallbacks) = (Arc::clone(write), Arc::clone(fallbacks));
                    call.detach(Box::new(move |result| match result {
                        Ok(PeerMessage::PutAck) => handoff.mark_up(&node),
                        // The replica answered and refused: nothing to hand off.
                        Ok(_) => {}
                        Err(error)
                            if handoff.mode() == HandoffMode::Sloppy && is_unreachable(&error) =>
                        {
                            let target = (node, datacenter, write, fallbacks);
                            spawn_handoff(handoff, transport, deadline, target, error);
                        }
                        Err(_) => {}
                    }));
                }
            }
        }
        handoffs.detach();
    }

    /// A write's `Put` to `node` (to a fallback with a hint if it is unreachable, in
    /// sloppy mode), as a call for [`Calls`].
    pub(super) fn put_call(
        &self,
        node: NodeId,
        datacenter: Datacenter,
        write: &Arc<ReplicaWrite>,
        fallbacks: &Arc<Fallbacks>,
        failed: Option<Error>,
    ) -> calls::Call<()> {
        let (handoff, transport) = (Arc::clone(&self.handoff), Arc::clone(&self.transport));
        let (write, fallbacks) = (Arc::clone(write), Arc::clone(fallbacks));
        let timeout = self.timeout;
        Box::pin(async move {
            let result = handoff
                .put(
                    &transport,
                    timeout,
                    node.clone(),
                    &datacenter,
                    &write,
                    &fallbacks,
                    failed,
                )
                .await;
            Answer {
                node,
                datacenter,
                result,
            }
        })
    }

    /// Makes the new version on a replica: here if this node is one, else the first
    /// replica (in preference order) that accepts. Returns the version (as a set), who
    /// minted it and the replicas that failed to.
    pub(super) async fn mint(
        &self,
        key: &[u8],
        context: &VectorClock,
        value: Option<Vec<u8>>,
        replicas: &[(NodeId, Datacenter)],
    ) -> Result<(SiblingSet, NodeId, Vec<Answer<()>>)> {
        if replicas.iter().any(|(node, _)| *node == self.node) {
            let node_id = self.node.clone();
            let now_ms = self.clock.now_ms();
            let (key, context) = (key.to_vec(), context.clone());
            // With a lazily synced log the record is only queued: the client connection
            // commits once per batch before replying (`Backend::commit`).
            let defer = self.store.defers_commits();
            let version = self
                .blocking(move |store| {
                    if defer {
                        store.write_local_version_deferred(
                            &key,
                            &context,
                            value,
                            node_id.as_str(),
                            now_ms,
                        )
                    } else {
                        store.write_local(&key, &context, value, node_id.as_str(), now_ms)
                    }
                })
                .await?;
            return Ok((SiblingSet::single(version), self.node.clone(), Vec::new()));
        }
        let mut failed = Vec::new();
        // A mint is a round trip before any put goes out, so the replicas in this node's
        // datacenter are asked first (a client routing with an outdated ring, as after a
        // join, sends keys to nodes that no longer replicate them: a remote mint there cost
        // a cross-datacenter round trip on top of the quorum's). Replicas that just failed
        // go last: another one can mint at once.
        let local_first: Vec<(NodeId, Datacenter)> = replicas
            .iter()
            .filter(|(_, datacenter)| *datacenter == self.datacenter)
            .chain(
                replicas
                    .iter()
                    .filter(|(_, datacenter)| *datacenter != self.datacenter),
            )
            .cloned()
            .collect();
        for (node, datacenter) in &self.handoff.reachable_first(&local_first) {
            let message = PeerMessage::Mint {
                key: key.to_vec(),
                context: context.encode(),
                value: value.clone(),
            };
            // Boxed for the same reason as the handoff wait in `gather_writes`.
            let result = Box::pin(self.transport.call(node, message, self.timeout))
                .await
                .and_then(|reply| match reply {
                    PeerMessage::GetReply {
                        siblings: Some(bytes),
                    } => SiblingSet::decode(&bytes),
                    other => Err(unexpected(other)),
                });
            match result {
                Ok(set) => return Ok((set, node.clone(), failed)),
                // The replica is up and refused (too many siblings, a storage error): the
                // client hears why. Only unreachable replicas are passed over.
                Err(Error::Command(message)) => return Err(Error::Command(message)),
                Err(error) => failed.push(Answer {
                    result: Err(self.handoff.note_failure(node, error)),
                    node: node.clone(),
                    datacenter: datacenter.clone(),
                }),
            }
        }
        let failures: Vec<String> = failed
            .iter()
            .filter_map(|answer| {
                answer
                    .result
                    .as_ref()
                    .err()
                    .map(|e| format!("{}: {e}", answer.node))
            })
            .collect();
        Err(Error::QuorumFailed {
            what: "write acknowledgements",
            needed: 1,
            got: 0,
            failures: format!("no replica could make the version: {}", failures.join("; ")),
        })
    }
}

/// Hands a write whose replica turned out unreachable after the client was answered to a
/// fallback with a hint ([`Handoff::put`]), on a task of its own, within what is left of
/// the request's time.
pub(super) fn spawn_handoff(
    handoff: Arc<Handoff>,
    transport: Arc<PeerTransport>,
    deadline: tokio::time::Instant,
    (node, datacenter, write, fallbacks): (NodeId, Datacenter, Arc<ReplicaWrite>, Arc<Fallbacks>),
    error: Error,
) {
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    tokio::spawn(async move {
        let _ = handoff
            .put(
                &transport,
                remaining,
                node,
                &datacenter,
                &write,
                &fallbacks,
                Some(error),
            )
            .await;
    });
}
