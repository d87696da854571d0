//! The node's `[transport]` configuration section.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::protocol::peer::DEFAULT_FRAME_SIZE_BYTES_MAX;
use crate::{Error, Result};

/// How the peer transport listens, connects, queues and retries.
/// `Debug` is written by hand to hide `cluster_secret` (see `crate::config::debug`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransportConfig {
    /// Address peers connect to. Default `127.0.0.1:0`: loopback and a port the OS picks,
    /// which is what tests and the single-host emulated cluster want; a real node sets it.
    pub listen_address: SocketAddr,
    /// Name every node of one cluster shares; a `Hello` with another name is refused, so two
    /// clusters on one network never mix data. Default `kvstore`.
    pub cluster_name: String,
    /// Longest wait for a TCP connection to a peer, and for an accepted connection's `Hello`.
    /// Default 1000 ms: far above a LAN or WAN handshake, short enough to retry a dead peer.
    pub connect_timeout_ms: u64,
    /// Timeout for calls made without an explicit one, and how long a due message may wait
    /// for a connection before it is discarded. Default 2000 ms.
    pub request_timeout_ms: u64,
    /// Most messages queued or in flight (emulated delay) per peer; a send beyond it fails
    /// at once with [`Error::PeerQueueFull`], so a slow or dead peer costs bounded memory
    /// and the coordinator learns quickly. Default 4096.
    pub queue_length_max: usize,
    /// Largest frame payload sent or accepted. Default 64 MiB (see
    /// [`DEFAULT_FRAME_SIZE_BYTES_MAX`]).
    pub frame_size_bytes_max: usize,
    /// First wait before reconnecting to a peer after a failed attempt; doubles on each
    /// failure. Default 50 ms.
    pub backoff_initial_ms: u64,
    /// Longest wait between reconnection attempts. Default 2000 ms: a peer that comes back
    /// is found within about two seconds without hammering one that stays down.
    pub backoff_max_ms: u64,
    /// Most accepted connections at once; more are closed on accept. Default 1024, far
    /// above one per peer, which is the steady state.
    pub inbound_connections_max: usize,
    /// Most requests one inbound connection may have in the handler at once; beyond it the
    /// connection stops being read, pushing back on the sender through TCP. Default 256.
    pub inbound_requests_max: usize,
    /// Seed of the random stream that draws link emulator verdicts; mixed with the node id so
    /// nodes draw independently yet a run with the same seeds repeats. Default 0.
    pub rng_seed: u64,
    /// Shared secret every node of the cluster holds. When set, an accepted connection must
    /// prove it (challenge-response, HMAC-SHA256 over a fresh nonce; the secret never goes on
    /// the wire) before any message is read, and this node answers the same challenge from
    /// the peers it connects to; a peer that cannot is refused and logged. Default: none (any
    /// peer that names a known node id and the cluster name is accepted).
    pub cluster_secret: Option<String>,
}

impl std::fmt::Debug for TransportConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::config::debug::Redacted;
        formatter
            .debug_struct("TransportConfig")
            .field("listen_address", &self.listen_address)
            .field("cluster_name", &self.cluster_name)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("queue_length_max", &self.queue_length_max)
            .field("frame_size_bytes_max", &self.frame_size_bytes_max)
            .field("backoff_initial_ms", &self.backoff_initial_ms)
            .field("backoff_max_ms", &self.backoff_max_ms)
            .field("inbound_connections_max", &self.inbound_connections_max)
            .field("inbound_requests_max", &self.inbound_requests_max)
            .field("rng_seed", &self.rng_seed)
            .field("cluster_secret", &Redacted(&self.cluster_secret))
            .finish()
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            listen_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            cluster_name: "kvstore".to_string(),
            connect_timeout_ms: 1000,
            request_timeout_ms: 2000,
            queue_length_max: 4096,
            frame_size_bytes_max: DEFAULT_FRAME_SIZE_BYTES_MAX,
            backoff_initial_ms: 50,
            backoff_max_ms: 2000,
            inbound_connections_max: 1024,
            inbound_requests_max: 256,
            rng_seed: 0,
            cluster_secret: None,
        }
    }
}

impl TransportConfig {
    /// Checks every limit is usable.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("queue_length_max", self.queue_length_max as u64),
            ("frame_size_bytes_max", self.frame_size_bytes_max as u64),
            ("backoff_initial_ms", self.backoff_initial_ms),
            (
                "inbound_connections_max",
                self.inbound_connections_max as u64,
            ),
            ("inbound_requests_max", self.inbound_requests_max as u64),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(invalid(field, "must be greater than zero".to_string()));
            }
        }
        if self.backoff_max_ms < self.backoff_initial_ms {
            return Err(invalid(
                "backoff_max_ms",
                format!("{} is below backoff_initial_ms", self.backoff_max_ms),
            ));
        }
        if self.frame_size_bytes_max > u32::MAX as usize {
            return Err(invalid(
                "frame_size_bytes_max",
                "must fit the frame header's 32-bit length".to_string(),
            ));
        }
        if self.cluster_secret.as_deref() == Some("") {
            return Err(invalid(
                "cluster_secret",
                "must not be empty (leave it out instead)".to_string(),
            ));
        }
        if self.cluster_name.is_empty() {
            return Err(invalid("cluster_name", "must not be empty".to_string()));
        }
        Ok(())
    }

    pub(super) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(super) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

fn invalid(field: &str, detail: String) -> Error {
    Error::InvalidConfig {
        field: format!("transport.{field}"),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_section_gives_the_defaults_and_they_are_valid() {
        let config: TransportConfig = toml::from_str("").unwrap();
        assert_eq!(config, TransportConfig::default());
        config.validate().unwrap();
    }

    #[test]
    fn fields_parse_and_bad_values_are_named() {
        let config: TransportConfig =
            toml::from_str("listen_address = \"127.0.0.1:7100\"\nbackoff_max_ms = 1").unwrap();
        assert_eq!(config.listen_address.port(), 7100);
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("transport.backoff_max_ms"), "{error}");
        assert!(toml::from_str::<TransportConfig>("queue_length = 3").is_err());
        let zero = TransportConfig {
            queue_length_max: 0,
            ..TransportConfig::default()
        };
        assert!(zero.validate().is_err());
    }

    #[test]
    fn debug_hides_the_cluster_secret() {
        let config = TransportConfig {
            cluster_secret: Some("hunter2-secret".into()),
            ..TransportConfig::default()
        };
        let printed = format!("{config:?} {config:#?}");
        assert!(!printed.contains("hunter2-secret"), "{printed}");
        assert!(
            printed.contains("cluster_secret: Some(\"<redacted>\")"),
            "{printed}"
        );
    }

    #[test]
    fn an_empty_cluster_secret_is_named() {
        let config: TransportConfig = toml::from_str("cluster_secret = \"\"").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("transport.cluster_secret"), "{error}");
        assert!(TransportConfig::default().listen_address.ip().is_loopback());
    }
}
