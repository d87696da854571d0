//! Time behind a small trait, so coordinator, gossip and repair logic can run against a
//! hand-advanced clock in a seeded, deterministic in-process simulation.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A point on a clock's monotonic timeline, measured from that clock's own epoch. Only
/// differences between points from the same clock mean anything, as with [`Instant`]; unlike
/// `Instant` it can be built for any value, which a simulation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MonotonicTime(Duration);

impl MonotonicTime {
    /// The point `since_epoch` after the clock's epoch.
    pub const fn from_duration(since_epoch: Duration) -> Self {
        MonotonicTime(since_epoch)
    }

    /// Time since the clock's epoch.
    pub const fn since_epoch(self) -> Duration {
        self.0
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later (as `Instant` does).
    pub fn saturating_duration_since(self, earlier: MonotonicTime) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// The point `duration` later, or `None` on overflow.
    pub fn checked_add(self, duration: Duration) -> Option<MonotonicTime> {
        self.0.checked_add(duration).map(MonotonicTime)
    }
}

impl std::ops::Add<Duration> for MonotonicTime {
    type Output = MonotonicTime;

    /// Saturates rather than panicking: a deadline past the end of time is just "never".
    fn add(self, duration: Duration) -> MonotonicTime {
        MonotonicTime(self.0.saturating_add(duration))
    }
}

/// A source of time: monotonic for timeouts and delays, wall-clock for timestamps that leave
/// the node (last-write-wins versions, logs).
pub trait Clock: Send + Sync + fmt::Debug {
    /// Monotonic time; never goes backwards.
    fn now(&self) -> MonotonicTime;

    /// Wall-clock milliseconds since the Unix epoch. May jump (NTP, or a simulation that
    /// injects skew); never use it to measure intervals.
    fn now_ms(&self) -> u64;
}

/// The operating system's clocks.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    epoch: Instant,
}

impl SystemClock {
    /// A clock whose monotonic epoch is now.
    pub fn new() -> Self {
        SystemClock {
            epoch: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> MonotonicTime {
        MonotonicTime(self.epoch.elapsed())
    }

    fn now_ms(&self) -> u64 {
        // A system clock set before 1970 reads as the epoch rather than failing every caller.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            })
    }
}

/// A clock that moves only when told to. Shared by reference (or `Arc`) between the
/// simulated nodes and the test driving them; atomics keep it `Sync` without a lock.
#[derive(Debug)]
pub struct ManualClock {
    /// Nanoseconds since the epoch: u64 covers 584 years of simulated time.
    elapsed_nanos: AtomicU64,
    /// Wall-clock milliseconds at the epoch, plus any skew applied since.
    wall_start_ms: AtomicU64,
}

impl ManualClock {
    /// A clock at its epoch whose wall clock reads `wall_start_ms` (Unix milliseconds).
    pub fn new(wall_start_ms: u64) -> Self {
        ManualClock {
            elapsed_nanos: AtomicU64::new(0),
            wall_start_ms: AtomicU64::new(wall_start_ms),
        }
    }

    /// Moves both clocks forward by `duration` (saturating at u64 nanoseconds).
    pub fn advance(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        // fetch_update cannot fail with a closure that always returns Some.
        let _ = self
            .elapsed_nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |current| {
                Some(current.saturating_add(nanos))
            });
    }

    /// Moves forward to `target` if it is later than now; never moves backwards, so
    /// an event loop can call it with each event's due time.
    pub fn advance_to(&self, target: MonotonicTime) {
        let nanos = u64::try_from(target.since_epoch().as_nanos()).unwrap_or(u64::MAX);
        self.elapsed_nanos.fetch_max(nanos, Ordering::SeqCst);
    }

    /// Steps the wall clock alone by `skew_ms` (negative goes back), as NTP or a bad clock
    /// would; the monotonic clock is untouched.
    pub fn skew_wall_ms(&self, skew_ms: i64) {
        let _ = self
            .wall_start_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |current| {
                Some(current.saturating_add_signed(skew_ms))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> MonotonicTime {
        MonotonicTime(Duration::from_nanos(
            self.elapsed_nanos.load(Ordering::SeqCst),
        ))
    }

    fn now_ms(&self) -> u64 {
        let elapsed_ms = self.elapsed_nanos.load(Ordering::SeqCst) / 1_000_000;
        self.wall_start_ms
            .load(Ordering::SeqCst)
            .saturating_add(elapsed_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now(), MonotonicTime::default());
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(Duration::from_millis(250));
        assert_eq!(clock.now().since_epoch(), Duration::from_millis(250));
        assert_eq!(clock.now_ms(), 1_250);
        // advance_to never goes backwards.
        clock.advance_to(MonotonicTime::from_duration(Duration::from_millis(100)));
        assert_eq!(clock.now().since_epoch(), Duration::from_millis(250));
        clock.advance_to(MonotonicTime::from_duration(Duration::from_secs(1)));
        assert_eq!(clock.now_ms(), 2_000);
        clock.skew_wall_ms(-500);
        assert_eq!(clock.now_ms(), 1_500);
        assert_eq!(clock.now().since_epoch(), Duration::from_secs(1));
        clock.skew_wall_ms(-10_000);
        // The wall clock's start saturates at the Unix epoch; the elapsed second remains.
        assert_eq!(clock.now_ms(), 1_000);
    }

    #[test]
    fn system_clock_is_monotonic_and_near_wall_time() {
        let clock: &dyn Clock = &SystemClock::new();
        let first = clock.now();
        let second = clock.now();
        assert!(second >= first);
        // 2020-01-01 in Unix milliseconds: any real clock is past it.
        assert!(clock.now_ms() > 1_577_836_800_000);
        let later = first + Duration::from_millis(5);
        assert_eq!(
            later.saturating_duration_since(first),
            Duration::from_millis(5)
        );
        assert_eq!(first.saturating_duration_since(later), Duration::ZERO);
    }
}
