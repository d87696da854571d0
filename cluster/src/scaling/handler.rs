//! The ring-change messages' place in the node's handler chain.

use std::sync::Arc;

use super::Scaling;
use crate::net::transport::{HandlerFuture, PeerHandler};
use crate::protocol::peer::PeerMessage;
use crate::ring::NodeId;

/// Takes `RingUpdate`, the stream pulls and fetches, `Rebalance` and `DrainWrites`; hands
/// every other message on.
pub struct ScalingHandler {
    scaling: Arc<Scaling>,
    inner: Arc<dyn PeerHandler>,
}

impl ScalingHandler {
    /// Wraps `inner`.
    pub fn new(scaling: Arc<Scaling>, inner: Arc<dyn PeerHandler>) -> Self {
        ScalingHandler { scaling, inner }
    }
}

impl PeerHandler for ScalingHandler {
    fn handle<'a>(&'a self, from: &'a NodeId, message: PeerMessage) -> HandlerFuture<'a> {
        if !matches!(
            message,
            PeerMessage::RingUpdate { .. }
                | PeerMessage::StreamPull { .. }
                | PeerMessage::StreamPullDigests { .. }
                | PeerMessage::StreamFetch { .. }
                | PeerMessage::Rebalance { .. }
                | PeerMessage::DrainWrites { .. }
        ) {
            return self.inner.handle(from, message);
        }
        Box::pin(self.scaling.handle(from, message))
    }
}
