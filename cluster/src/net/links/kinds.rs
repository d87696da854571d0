//! Per-message-kind delays: the four legs of the WARS model of Bailis et al. ("Probabilistically
//! Bounded Staleness for Practical Partial Quorums", VLDB 2012) — **W** write request, **A**
//! write acknowledgement, **R** read request, **S** read response — each with a delay
//! distribution of its own on a link, so an emulated cluster can be configured exactly as the
//! model is (`W = exp(20)`, `A = R = S = exp(10)`).
//!
//! A kind left unset falls back to the link's single `delay`. Messages are classified by what
//! they are, not by the request they answer (the transport sees one message at a time):
//!
//! | kind            | messages                          |
//! |-----------------|-----------------------------------|
//! | `write_request` | `Put`, `PutMany`, `HintedPut`, `Mint` |
//! | `write_ack`     | `PutAck`, `PutManyAck`            |
//! | `read_request`  | `Get`, `GetDigest`                |
//! | `read_response` | `GetReply`, `DigestReply`         |
//! | (other)         | everything else: gossip, pings, scans, errors, link updates |
//!
//! `Mint`'s reply is a `GetReply` (the new version), so it takes the `read_response` delay,
//! not `write_ack`: a write coordinated by a node that is not a replica of the key waits
//! W + S for the minting replica, then W + A for the others.
//!
//! ```toml
//! [links]
//! intra_datacenter = { delay = "exp(10)", kind_delays = { write_request = "exp(20)" } }
//! ```

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::net::delay::DelayDistribution;
use crate::protocol::peer::PeerMessage;
use crate::Result;

/// What a peer message is, as far as the link emulator's per-kind delays are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// W: a replica is asked to store a version (`Put`, `HintedPut`, `Mint`).
    WriteRequest,
    /// A: a replica acknowledges a store (`PutAck`).
    WriteAck,
    /// R: a replica is asked for a key (`Get`).
    ReadRequest,
    /// S: a replica answers with what it holds (`GetReply`).
    ReadResponse,
    /// Anything else; always takes the link's single delay.
    Other,
}

impl MessageKind {
    /// The four kinds that may have delays of their own, in WARS order.
    pub const ALL: [MessageKind; 4] = [
        MessageKind::WriteRequest,
        MessageKind::WriteAck,
        MessageKind::ReadRequest,
        MessageKind::ReadResponse,
    ];

    /// Classifies one message (see the module table).
    pub fn of(message: &PeerMessage) -> MessageKind {
        match message {
            PeerMessage::Put { .. }
            | PeerMessage::PutMany { .. }
            | PeerMessage::HintedPut { .. }
            | PeerMessage::Mint { .. } => MessageKind::WriteRequest,
            PeerMessage::PutAck | PeerMessage::PutManyAck { .. } => MessageKind::WriteAck,
            PeerMessage::Get { .. } | PeerMessage::GetDigest { .. } => MessageKind::ReadRequest,
            PeerMessage::GetReply { .. } | PeerMessage::DigestReply { .. } => {
                MessageKind::ReadResponse
            }
            _ => MessageKind::Other,
        }
    }

    /// The name used in configuration and `LINK.SET` (`write_request`, ...).
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::WriteRequest => "write_request",
            MessageKind::WriteAck => "write_ack",
            MessageKind::ReadRequest => "read_request",
            MessageKind::ReadResponse => "read_response",
            MessageKind::Other => "other",
        }
    }

    /// Reads a kind name, case-insensitively, with the WARS letters and short aliases:
    /// `write_request`/`write`/`w`, `write_ack`/`ack`/`a`, `read_request`/`read`/`r`,
    /// `read_response`/`response`/`s`.
    pub fn from_name(name: &str) -> Option<MessageKind> {
        match name.to_ascii_lowercase().as_str() {
            "write_request" | "write" | "w" => Some(MessageKind::WriteRequest),
            "write_ack" | "ack" | "a" => Some(MessageKind::WriteAck),
            "read_request" | "read" | "r" => Some(MessageKind::ReadRequest),
            "read_response" | "response" | "s" => Some(MessageKind::ReadResponse),
            _ => None,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// Optional delays per message kind; a kind left `None` uses the link's `delay`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KindDelays {
    /// W: write requests. Default: the link's delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_request: Option<DelayDistribution>,
    /// A: write acknowledgements. Default: the link's delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_ack: Option<DelayDistribution>,
    /// R: read requests. Default: the link's delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_request: Option<DelayDistribution>,
    /// S: read responses. Default: the link's delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_response: Option<DelayDistribution>,
}

impl KindDelays {
    /// Whether no kind has a delay of its own.
    pub fn is_empty(&self) -> bool {
        MessageKind::ALL
            .iter()
            .all(|kind| self.get(*kind).is_none())
    }

    /// The delay set for `kind`, if any (`Other` never has one).
    pub fn get(&self, kind: MessageKind) -> Option<&DelayDistribution> {
        match kind {
            MessageKind::WriteRequest => self.write_request.as_ref(),
            MessageKind::WriteAck => self.write_ack.as_ref(),
            MessageKind::ReadRequest => self.read_request.as_ref(),
            MessageKind::ReadResponse => self.read_response.as_ref(),
            MessageKind::Other => None,
        }
    }

    /// Sets (or with `None` clears) the delay of `kind`; setting `Other` does nothing.
    pub fn set(&mut self, kind: MessageKind, delay: Option<DelayDistribution>) {
        let slot = match kind {
            MessageKind::WriteRequest => &mut self.write_request,
            MessageKind::WriteAck => &mut self.write_ack,
            MessageKind::ReadRequest => &mut self.read_request,
            MessageKind::ReadResponse => &mut self.read_response,
            MessageKind::Other => return,
        };
        *slot = delay;
    }

    /// The same delays with `kind` set: `KindDelays::default().with(MessageKind::WriteAck, d)`.
    pub fn with(mut self, kind: MessageKind, delay: DelayDistribution) -> Self {
        self.set(kind, Some(delay));
        self
    }

    /// Every kind that has a delay, in WARS order.
    pub fn iter(&self) -> impl Iterator<Item = (MessageKind, &DelayDistribution)> {
        MessageKind::ALL
            .into_iter()
            .filter_map(|kind| self.get(kind).map(|delay| (kind, delay)))
    }

    /// Checks every distribution set.
    pub fn validate(&self) -> Result<()> {
        self.iter().try_for_each(|(_, delay)| delay.validate())
    }

    /// Draws the delay of a `kind` message: its own distribution, else `base`.
    pub fn sample<R: Rng + ?Sized>(
        &self,
        kind: MessageKind,
        base: &DelayDistribution,
        rng: &mut R,
    ) -> std::time::Duration {
        self.get(kind).unwrap_or(base).sample(rng)
    }

    /// `write_request=exp(20) write_ack=exp(10)`, for summaries; empty when none is set.
    pub fn summary(&self) -> String {
        self.iter()
            .map(|(kind, delay)| format!("{kind}={delay}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests;
