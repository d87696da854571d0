//! The replica side: what a node does with the peer requests coordinators send it, served
//! from its [`LocalStore`] (on tokio's blocking pool when a store call may wait for an
//! fsync, see [`LocalStore::run`]).
//!
//! With the commit log synced lazily the transport serves `Put`, `Get`, `GetDigest` and `Mint` on the
//! connection's reader ([`InlineHandler`]): writes only queue their log records, and the
//! reader commits once per batch of frames before any acknowledgement leaves, so a batch of
//! `Put`s costs one log write and an acknowledged write has reached the OS.

use std::sync::Arc;

use crate::net::transport::{HandlerFuture, InlineHandler, PeerHandler};
use crate::net::Clock;
use crate::protocol::peer::{PeerMessage, ScanRow};
use crate::ring::NodeId;
use crate::store::LocalStore;
use crate::version::{SiblingSet, VectorClock};
use crate::{Error, Result};

/// Serves `Put`, `PutMany`, `Get`, `GetDigest`, `Scan` and `Mint` from the local store.
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
    answer_with(store, node_id, now_ms, message, false)
}

/// Serves `message`; with `defer`, writes only queue their commit-log records (the caller
/// commits before replying).
fn answer_with(
    store: &LocalStore,
    node_id: &str,
    now_ms: u64,
    message: PeerMessage,
    defer: bool,
) -> Result<PeerMessage> {
    match message {
        // Stored as it came when it supersedes what is stored (see `apply_encoded`).
        PeerMessage::Put { key, siblings } => {
            store.apply_encoded(&key, siblings, defer)?;
            Ok(PeerMessage::PutAck)
        }
        // The stored bytes are an encoded set already: sent as they are.
        PeerMessage::Get { key } => Ok(PeerMessage::GetReply {
            siblings: store.read_encoded(&key)?,
        }),
        PeerMessage::PutMany { puts } => {
            let mut failed = Vec::new();
            for (index, (key, siblings)) in puts.into_iter().enumerate() {
                if let Err(error) = store.apply_encoded(&key, siblings, defer) {
                    failed.push((u32::try_from(index).unwrap_or(u32::MAX), error.to_string()));
                }
            }
            Ok(PeerMessage::PutManyAck { failed })
        }
        PeerMessage::GetDigest { keys } => Ok(PeerMessage::DigestReply {
            digests: keys
                .iter()
                .map(|key| store.read_digest(key))
                .collect::<Result<_>>()?,
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
            let version = if defer {
                store.write_local_version_deferred(&key, &context, value, node_id, now_ms)?
            } else {
                store.write_local(&key, &context, value, node_id, now_ms)?
            };
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

impl InlineHandler for ReplicaHandler {
    fn takes(&self, message: &PeerMessage) -> bool {
        // With `always` a write waits for its fsync: those stay on the blocking pool.
        self.store.defers_commits()
            && matches!(
                message,
                PeerMessage::Put { .. }
                    | PeerMessage::PutMany { .. }
                    | PeerMessage::Get { .. }
                    | PeerMessage::GetDigest { .. }
                    | PeerMessage::Mint { .. }
            )
    }

    fn serve(&self, _from: &NodeId, message: PeerMessage) -> (PeerMessage, bool) {
        let writes = matches!(
            message,
            PeerMessage::Put { .. } | PeerMessage::PutMany { .. } | PeerMessage::Mint { .. }
        );
        let reply = answer_with(
            &self.store,
            &self.node_id,
            self.clock.now_ms(),
            message,
            true,
        )
        .unwrap_or_else(|error| PeerMessage::Error {
            message: error.to_string(),
        });
        // An error reply acknowledges nothing, so it need not wait for the commit.
        let acknowledges = writes && !matches!(reply, PeerMessage::Error { .. });
        (reply, acknowledges)
    }

    fn commit(&self) -> Result<()> {
        self.store.commit()
    }
}
