//! The replica side: what a node does with the peer requests coordinators send it, served
//! from its [`LocalStore`] on tokio's blocking pool (a store call may wait for an fsync).

use std::sync::Arc;

use crate::net::transport::{HandlerFuture, PeerHandler};
use crate::net::Clock;
use crate::protocol::peer::{PeerMessage, ScanRow};
use crate::ring::NodeId;
use crate::store::LocalStore;
use crate::version::{SiblingSet, VectorClock};
use crate::{Error, Result};

/// Serves `Put`, `Get`, `Scan` and `Mint` from the local store.
pub struct ReplicaHandler {
    store: Arc<LocalStore>,
    node_id: String,
    clock: Arc<dyn Clock>,
}

impl ReplicaHandler {
    /// Serves `store` as node `node_id`; `clock` timestamps minted versions.
    pub fn new(store: Arc<LocalStore>, node_id: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        ReplicaHandler {
            store,
            node_id: node_id.into(),
            clock,
        }
    }

    async fn serve(&self, message: PeerMessage) -> Result<PeerMessage> {
        let node_id = self.node_id.clone();
        let now_ms = self.clock.now_ms();
        self.store
            .run(move |store| answer(store, &node_id, now_ms, message))
            .await
    }
}

fn answer(
    store: &LocalStore,
    node_id: &str,
    now_ms: u64,
    message: PeerMessage,
) -> Result<PeerMessage> {
    match message {
        PeerMessage::Put { key, siblings } => {
            store.apply(&key, &SiblingSet::decode(&siblings)?)?;
            Ok(PeerMessage::PutAck)
        }
        PeerMessage::Get { key } => Ok(PeerMessage::GetReply {
            siblings: store.read(&key)?.map(|set| set.encode()),
        }),
        PeerMessage::Scan { start, end, limit } => {
            let rows = store
                .scan(&start, end.as_deref(), limit as usize)?
                .into_iter()
                .map(|(key, set)| ScanRow {
                    key,
                    siblings: set.encode(),
                })
                .collect();
            Ok(PeerMessage::ScanReply { rows })
        }
        PeerMessage::Mint {
            key,
            context,
            value,
        } => {
            let context = VectorClock::decode(&context)?;
            let version = store.write_local(&key, &context, value, node_id, now_ms)?;
            Ok(PeerMessage::GetReply {
                siblings: Some(SiblingSet::single(version).encode()),
            })
        }
        PeerMessage::Ping => Ok(PeerMessage::Pong),
        other => Err(Error::PeerProtocol(format!(
            "{} is not a request this node serves",
            other.name()
        ))),
    }
}

impl PeerHandler for ReplicaHandler {
    fn handle<'a>(&'a self, _from: &'a NodeId, message: PeerMessage) -> HandlerFuture<'a> {
        Box::pin(async move {
            Some(match self.serve(message).await {
                Ok(reply) => reply,
                Err(error) => PeerMessage::Error {
                    message: error.to_string(),
                },
            })
        })
    }
}
