//! Failure schedules: a client that survives its connections failing (see [`Failover`]).

use super::*;

/// How long a failed connection stays down before the next reconnection attempt.
const RECONNECT_INTERVAL: Duration = Duration::from_millis(200);

/// With a failure schedule, a connection that fails (its node was killed) does not end the
/// client: its requests in flight count as errors, operations routed to it go to the next
/// connection that is up (any node coordinates), and it is reconnected every
/// [`RECONNECT_INTERVAL`].
pub(super) struct Failover {
    targets: Vec<Target>,
    /// Per connection: `Some(when to try again)` while down.
    down: Vec<Option<Instant>>,
}

impl Worker {
    /// Survives connection failures (see [`Failover`]); `targets` are the connections'.
    pub(in crate::driver) fn with_failover(mut self, targets: Vec<Target>) -> Worker {
        self.failover = Some(Failover {
            down: targets.iter().map(|_| None).collect(),
            targets,
        });
        self
    }

    /// A connection to `target` was added (a member that joined), up.
    pub(super) fn add_target_connection(&mut self, target: Target) {
        if let Some(failover) = self.failover.as_mut() {
            failover.targets.push(target);
            failover.down.push(None);
        }
    }

    pub(super) fn is_down(&self, connection: usize) -> bool {
        self.failover
            .as_ref()
            .is_some_and(|failover| failover.down[connection].is_some())
    }

    /// A connection failed: without failover the client ends with `error`; with it, the
    /// connection's requests in flight are errors and it is down until reconnected.
    pub(super) fn connection_failed(&mut self, connection: usize, error: Error) -> Result<()> {
        let Some(failover) = self.failover.as_mut() else {
            return Err(error);
        };
        failover.down[connection] = Some(Instant::now() + RECONNECT_INTERVAL);
        let now = self.clock.now_micros();
        self.fail_queue(connection, now);
        Ok(())
    }

    /// Reconnects down connections whose retry time has come.
    pub(super) fn reconnect_due(&mut self) {
        let Some(failover) = self.failover.as_mut() else {
            return;
        };
        let now = Instant::now();
        for index in 0..failover.down.len() {
            if failover.down[index].is_none_or(|retry| retry > now) {
                continue;
            }
            let target = &failover.targets[index];
            let connected = connect_blocking(target, Duration::from_millis(100))
                .and_then(|stream| Connection::from_std(stream, target));
            match connected {
                Ok(connection) => {
                    self.connections[index] = connection;
                    failover.down[index] = None;
                }
                Err(_) => failover.down[index] = Some(now + RECONNECT_INTERVAL),
            }
        }
    }

    /// The connection an operation routed to `connection` goes to: itself when up, else
    /// the next one that is up; `None` when all are down.
    pub(super) fn reroute(&self, connection: usize) -> Option<usize> {
        let count = self.connections.len();
        (0..count)
            .map(|step| (connection + step) % count)
            .find(|&index| !self.is_down(index))
    }
}
