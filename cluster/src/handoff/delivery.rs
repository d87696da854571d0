//! The background task that delivers hints to their owners (see [`crate::handoff`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::net::transport::PeerTransport;
use crate::protocol::peer::PeerMessage;
use crate::ring::NodeId;
use crate::{Error, Result};

use super::store::Hint;
use super::{Handoff, HintCounters};

/// Puts in flight at once during a pass: enough to hide round trips, few enough that a
/// recovering owner is not flooded.
const DELIVERIES_IN_FLIGHT: usize = 32;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Hints read.
    pub read: usize,
    /// Delivered and deleted.
    pub delivered: u64,
    /// Expired and deleted.
    pub dropped: u64,
}

impl Handoff {
    /// Starts the delivery task over `transport`; it runs until [`Handoff::stop`].
    pub fn start_delivery(self: &Arc<Self>, transport: Arc<PeerTransport>) {
        let handoff = Arc::clone(self);
        let interval = Duration::from_millis(handoff.hints.config().delivery_interval_ms);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                // A full batch delivered means more may wait: go again without sleeping.
                loop {
                    let report = match handoff.deliver_pass(&transport).await {
                        Ok(report) => report,
                        Err(error) => {
                            log::warn!("kvnode {}: hint delivery failed: {error}", handoff.node);
                            break;
                        }
                    };
                    if report.delivered + report.dropped > 0 {
                        log::info!(
                            "kvnode {}: hint delivery: {} delivered, {} expired, {} pending",
                            handoff.node,
                            report.delivered,
                            report.dropped,
                            handoff.hints.pending()
                        );
                    }
                    let batch_max = handoff.hints.config().delivery_batch_max;
                    if report.read < batch_max || report.delivered + report.dropped == 0 {
                        break;
                    }
                }
            }
        });
        let mut slot = self
            .delivery
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(previous) = slot.replace(task) {
            previous.abort();
        }
    }

    /// Stops the delivery task (hints stay stored for the next start).
    pub async fn stop(&self) {
        let task = self
            .delivery
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// One pass: read a batch, drop expired hints, send the rest to their owners (an owner
    /// that fails once is skipped for the rest of the pass), delete what was acknowledged.
    pub async fn deliver_pass(
        self: &Arc<Self>,
        transport: &Arc<PeerTransport>,
    ) -> Result<PassReport> {
        let hints = Arc::clone(&self.hints);
        let limit = hints.config().delivery_batch_max;
        let batch = tokio::task::spawn_blocking(move || hints.batch(limit))
            .await
            .map_err(|error| Error::Stopped(format!("hint read task failed: {error}")))??;
        let mut report = PassReport {
            read: batch.len(),
            ..PassReport::default()
        };
        let now_ms = self.clock.now_ms();
        let timeout = self.request_timeout;
        let mut failed_owners: BTreeSet<NodeId> = BTreeSet::new();
        let mut in_flight: JoinSet<(Hint, Result<()>)> = JoinSet::new();
        for hint in batch {
            if self.hints.is_expired(&hint, now_ms) {
                if self.remove(&hint).await? {
                    HintCounters::add(&self.hints.counters.dropped, 1);
                    report.dropped += 1;
                }
                continue;
            }
            while in_flight.len() >= DELIVERIES_IN_FLIGHT {
                self.settle(&mut in_flight, &mut failed_owners, &mut report)
                    .await?;
            }
            if failed_owners.contains(&hint.owner) {
                continue;
            }
            // Gossip holds the owner Down: keep the hint for a pass after it is back.
            if self.skip_by_gossip(&hint.owner) {
                failed_owners.insert(hint.owner.clone());
                continue;
            }
            let transport = Arc::clone(transport);
            in_flight.spawn(async move {
                let message = PeerMessage::Put {
                    key: hint.key.clone(),
                    siblings: hint.siblings.encode(),
                };
                let result = transport
                    .call(&hint.owner, message, timeout)
                    .await
                    .and_then(|reply| match reply {
                        PeerMessage::PutAck => Ok(()),
                        other => Err(Error::PeerProtocol(format!(
                            "hint delivery got {}",
                            other.name()
                        ))),
                    });
                (hint, result)
            });
        }
        while !in_flight.is_empty() {
            self.settle(&mut in_flight, &mut failed_owners, &mut report)
                .await?;
        }
        Ok(report)
    }

    async fn settle(
        &self,
        in_flight: &mut JoinSet<(Hint, Result<()>)>,
        failed_owners: &mut BTreeSet<NodeId>,
        report: &mut PassReport,
    ) -> Result<()> {
        let Some(joined) = in_flight.join_next().await else {
            return Ok(());
        };
        let (hint, result) = joined
            .map_err(|error| Error::Stopped(format!("hint delivery task failed: {error}")))?;
        match result {
            Ok(()) => {
                self.mark_up(&hint.owner);
                if self.remove(&hint).await? {
                    HintCounters::add(&self.hints.counters.delivered, 1);
                    report.delivered += 1;
                }
            }
            Err(_) => {
                failed_owners.insert(hint.owner.clone());
            }
        }
        Ok(())
    }

    async fn remove(&self, hint: &Hint) -> Result<bool> {
        let hints = Arc::clone(&self.hints);
        let hint = hint.clone();
        tokio::task::spawn_blocking(move || hints.remove_if_unchanged(&hint))
            .await
            .map_err(|error| Error::Stopped(format!("hint delete task failed: {error}")))?
    }
}
