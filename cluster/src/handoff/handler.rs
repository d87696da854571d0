//! The fallback's side of a sloppy write: [`PeerMessage::HintedPut`] is stored in the hint
//! store; every other message goes to the inner handler.

use std::sync::Arc;

use crate::net::transport::{HandlerFuture, PeerHandler};
use crate::net::Clock;
use crate::protocol::peer::PeerMessage;
use crate::ring::NodeId;
use crate::version::SiblingSet;
use crate::{Error, Result};

use super::HintStore;

/// Stores hints; passes everything else to `inner`.
pub struct HandoffHandler {
    hints: Arc<HintStore>,
    clock: Arc<dyn Clock>,
    inner: Arc<dyn PeerHandler>,
}

impl HandoffHandler {
    /// Stores hints in `hints` stamped by `clock`; `inner` answers every other message.
    pub fn new(hints: Arc<HintStore>, clock: Arc<dyn Clock>, inner: Arc<dyn PeerHandler>) -> Self {
        HandoffHandler {
            hints,
            clock,
            inner,
        }
    }
}

/// Stores one hint on tokio's blocking pool (the engine write may wait for an fsync).
pub async fn store_hint(
    hints: &Arc<HintStore>,
    owner: String,
    key: Vec<u8>,
    siblings: SiblingSet,
    now_ms: u64,
) -> Result<()> {
    let hints = Arc::clone(hints);
    tokio::task::spawn_blocking(move || hints.store(&owner, &key, &siblings, now_ms))
        .await
        .map_err(|error| Error::Stopped(format!("hint storage task failed: {error}")))?
}

impl PeerHandler for HandoffHandler {
    fn handle<'a>(&'a self, from: &'a NodeId, message: PeerMessage) -> HandlerFuture<'a> {
        let PeerMessage::HintedPut {
            owner,
            key,
            siblings,
        } = message
        else {
            return self.inner.handle(from, message);
        };
        Box::pin(async move {
            let stored = match SiblingSet::decode(&siblings) {
                Ok(set) => store_hint(&self.hints, owner, key, set, self.clock.now_ms()).await,
                Err(error) => Err(error),
            };
            Some(match stored {
                Ok(()) => PeerMessage::PutAck,
                Err(error) => PeerMessage::Error {
                    message: error.to_string(),
                },
            })
        })
    }
}
