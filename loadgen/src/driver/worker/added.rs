//! Targets a router adds while the run goes on: a router that follows the ring adds the
//! members that join it ([`crate::routing::TopologyWatch`]), and the client connects to
//! one when it first routes a key there, as a cluster-aware driver opens a pool to a new
//! node.

use super::*;

/// Longest wait for a connection to an added target (on the client's own thread, as a
/// failover reconnection).
const ADDED_CONNECT_TIMEOUT: Duration = Duration::from_millis(100);

/// How long after a failed connection to an added target the next attempt waits; the
/// keys routed there meanwhile go to the connections already made.
const ADDED_RETRY_INTERVAL: Duration = Duration::from_millis(200);

impl Worker {
    /// The connection for target `chosen`, the router's choice: itself when made; for a
    /// target the router added, a new connection to it (and to any added before it) on
    /// first use. While that does not connect, and for an index the router never added,
    /// `chosen` modulo the connections made.
    pub(super) fn connection_for(&mut self, chosen: usize) -> usize {
        if chosen < self.connections.len() {
            return chosen;
        }
        let now = Instant::now();
        if self.added_retry_at.is_none_or(|retry| now >= retry) {
            while self.connections.len() <= chosen {
                let Some(address) = self.router.added_target(self.connections.len()) else {
                    break;
                };
                let target = Target {
                    name: address.to_string(),
                    address,
                };
                let connected = connect_blocking(&target, ADDED_CONNECT_TIMEOUT)
                    .and_then(|stream| Connection::from_std(stream, &target));
                match connected {
                    Ok(connection) => {
                        self.connections.push(connection);
                        self.in_flight.push(VecDeque::new());
                        self.add_target_connection(target);
                    }
                    Err(_) => {
                        self.added_retry_at = Some(now + ADDED_RETRY_INTERVAL);
                        break;
                    }
                }
            }
        }
        if chosen < self.connections.len() {
            chosen
        } else {
            chosen % self.connections.len()
        }
    }
}
