//! The link emulator's admin side: `LINK.GET` and the changes (`LINK.SET`, `LINK.PARTITION`,
//! `LINK.HEAL`, `LINK.RESET`), applied on this node and then, unless the client said `LOCAL`,
//! on every member.
//!
//! The emulator sits on the sending side of every link, so a change must reach every node to
//! act on both directions of a link: the node that takes the command applies it, then sends
//! [`PeerMessage::LinkUpdate`] to each peer in parallel and waits up to the request timeout.
//! The reply counts the nodes that applied it and names the ones that did not. Link messages
//! bypass the emulator (see [`PeerMessage::bypasses_link_emulator`]), so a partition never
//! cuts off the command that heals it.
//!
//! Two admins changing links at once through different nodes may leave nodes disagreeing on
//! the order of their changes; `LINK.GET` on each node shows what it applies.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tokio::task::JoinSet;

use crate::net::transport::{HandlerFuture, PeerHandler, PeerTransport};
use crate::net::{LinkChange, LinkConfig, LinkEmulator, LinkTable};
use crate::protocol::command::link::change_from_words;
use crate::protocol::peer::PeerMessage;
use crate::ring::NodeId;
use crate::Result;

/// This node's link emulator, what `LINK.RESET` restores, and the peers to tell of changes.
pub struct LinkControl {
    node: String,
    datacenter: String,
    emulator: Arc<LinkEmulator>,
    configured: LinkTable,
    /// Set once the transport is bound. Weak: the transport's handler holds this control,
    /// and a strong reference back would keep the transport alive forever.
    cluster: OnceLock<Reach>,
}

struct Reach {
    transport: Weak<PeerTransport>,
    timeout: Duration,
}

impl LinkControl {
    /// Node `node` in `datacenter`, its emulator built from `config` (which `LINK.RESET`
    /// restores). Alone until [`LinkControl::attach`] gives it a transport.
    pub fn new(node: &str, datacenter: &str, config: &LinkConfig) -> Result<Self> {
        let configured = LinkTable::from_config(config)?;
        Ok(LinkControl {
            node: node.to_string(),
            datacenter: datacenter.to_string(),
            emulator: Arc::new(LinkEmulator::new(configured.clone())),
            configured,
            cluster: OnceLock::new(),
        })
    }

    /// The emulator the transport consults for every message.
    pub fn emulator(&self) -> Arc<LinkEmulator> {
        Arc::clone(&self.emulator)
    }

    /// Changes go to `transport`'s peers too from now on, each waited for up to `timeout`.
    pub fn attach(&self, transport: &Arc<PeerTransport>, timeout: Duration) {
        let _ = self.cluster.set(Reach {
            transport: Arc::downgrade(transport),
            timeout,
        });
    }

    /// `LINK.GET`: a title line, the table (defaults, datacenter pairs, node pairs, one line
    /// each) and the partitions.
    pub fn describe_lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "links of node {} ({}), applied to the messages it sends:",
            self.node, self.datacenter
        )];
        lines.extend(self.emulator.describe().lines().map(str::to_string));
        lines
    }

    /// Applies `change` to this node's emulator only.
    pub fn apply_local(&self, change: &LinkChange) -> Result<String> {
        self.emulator
            .update(|table| change.apply(table, &self.configured))
    }

    /// Applies `change` here and, unless `local`, on every peer. The reply line says on how
    /// many nodes it was applied and names the peers that did not apply it, and why.
    pub async fn apply(&self, change: LinkChange, local: bool) -> Result<String> {
        let summary = self.apply_local(&change)?;
        let reach = self
            .cluster
            .get()
            .and_then(|reach| Some((reach.transport.upgrade()?, reach.timeout)));
        if local {
            return Ok(format!(
                "applied on this node only (LOCAL), {}: {summary}",
                self.node
            ));
        }
        let Some((transport, timeout)) = reach else {
            return Ok(format!("applied on 1 of 1 nodes (no members): {summary}"));
        };
        let peers = transport.peers();
        let total = peers.len() + 1;
        let words = change.to_words();
        let mut calls = JoinSet::new();
        for peer in peers {
            let transport = Arc::clone(&transport);
            let message = PeerMessage::LinkUpdate {
                words: words.clone(),
            };
            calls.spawn(async move {
                let result = transport.call(&peer, message, timeout).await;
                (peer, result)
            });
        }
        // Dropped before the wait so the spawned calls hold the only strong references.
        drop(transport);
        let mut applied = 1;
        let mut failures = Vec::new();
        while let Some(joined) = calls.join_next().await {
            let Ok((peer, result)) = joined else {
                failures.push("a call task failed".to_string());
                continue;
            };
            match result {
                Ok(PeerMessage::LinkUpdateReply { .. }) => applied += 1,
                Ok(PeerMessage::Error { message }) => failures.push(format!("{peer}: {message}")),
                Ok(other) => failures.push(format!("{peer}: unexpected reply {}", other.name())),
                Err(error) => failures.push(format!("{peer}: {error}")),
            }
        }
        failures.sort();
        let mut reply = format!("applied on {applied} of {total} nodes: {summary}");
        if !failures.is_empty() {
            reply.push_str("; not applied on ");
            reply.push_str(&failures.join("; "));
        }
        // The reply is a RESP simple string: no line breaks.
        Ok(reply.replace(['\r', '\n'], " "))
    }
}

/// Serves `LinkUpdate` from peers and hands every other message to the node's data handler.
pub struct LinkHandler {
    links: Arc<LinkControl>,
    inner: Arc<dyn PeerHandler>,
}

impl LinkHandler {
    /// `links` answers link updates, `inner` everything else.
    pub fn new(links: Arc<LinkControl>, inner: Arc<dyn PeerHandler>) -> Self {
        LinkHandler { links, inner }
    }
}

impl PeerHandler for LinkHandler {
    fn handle<'a>(&'a self, from: &'a NodeId, message: PeerMessage) -> HandlerFuture<'a> {
        let PeerMessage::LinkUpdate { words } = message else {
            return self.inner.handle(from, message);
        };
        Box::pin(async move {
            let applied =
                change_from_words(&words).and_then(|change| self.links.apply_local(&change));
            Some(match applied {
                Ok(summary) => {
                    log::info!(
                        "node {}: link change from {from}: {summary}",
                        self.links.node
                    );
                    PeerMessage::LinkUpdateReply { summary }
                }
                Err(error) => PeerMessage::Error {
                    message: error.to_string(),
                },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::LinkPair;

    /// Answers every message it is handed with `Pong`, to see what the link handler forwards.
    struct Echo;

    impl PeerHandler for Echo {
        fn handle<'a>(&'a self, _from: &'a NodeId, _message: PeerMessage) -> HandlerFuture<'a> {
            Box::pin(async { Some(PeerMessage::Pong) })
        }
    }

    fn control() -> Arc<LinkControl> {
        Arc::new(LinkControl::new("n1", "dc1", &LinkConfig::default()).unwrap())
    }

    #[tokio::test]
    async fn a_node_alone_applies_changes_to_its_own_table() {
        let links = control();
        let pair = LinkPair::datacenters("dc1", "dc2");
        let reply = links
            .apply(LinkChange::Partition { pair: pair.clone() }, false)
            .await
            .unwrap();
        assert_eq!(
            reply,
            "applied on 1 of 1 nodes (no members): partition #1 cuts dc dc1 and dc dc2 both ways"
        );
        let lines = links.describe_lines();
        assert_eq!(
            lines[0],
            "links of node n1 (dc1), applied to the messages it sends:"
        );
        assert!(
            lines.contains(&"  #1 {dc dc1} <-> {dc dc2}".to_string()),
            "{lines:?}"
        );
        let reply = links.apply(LinkChange::Reset, true).await.unwrap();
        assert!(reply.starts_with("applied on this node only (LOCAL), n1: links reset"));
        assert_eq!(lines.len() - 1, links.describe_lines().len());
    }

    #[tokio::test]
    async fn the_handler_applies_link_updates_and_forwards_everything_else() {
        let links = control();
        let handler = LinkHandler::new(Arc::clone(&links), Arc::new(Echo));
        let from = NodeId::new("n2");
        let update = PeerMessage::LinkUpdate {
            words: ["SET", "dc1", "dc2", "const(5)"]
                .map(str::to_string)
                .to_vec(),
        };
        let reply = handler.handle(&from, update).await;
        assert!(
            matches!(&reply, Some(PeerMessage::LinkUpdateReply { summary }) if summary.contains("const(5)")),
            "{reply:?}"
        );
        assert!(links.emulator().describe().contains("const(5)"));
        let bad = PeerMessage::LinkUpdate {
            words: ["SET", "dc1", "dc2", "expo(5)"]
                .map(str::to_string)
                .to_vec(),
        };
        let reply = handler.handle(&from, bad).await;
        assert!(
            matches!(&reply, Some(PeerMessage::Error { message }) if message.contains("expo")),
            "{reply:?}"
        );
        let reply = handler.handle(&from, PeerMessage::Ping).await;
        assert_eq!(reply, Some(PeerMessage::Pong));
    }
}
