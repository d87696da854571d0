//! Time for the membership core: a [`Clock`] trait, the real [`SystemClock`] and a
//! [`FakeClock`] tests and the simulation move by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Monotonic milliseconds. The core never reads the system clock itself.
pub trait Clock {
    /// Milliseconds since an arbitrary fixed origin; never decreases.
    fn now_ms(&self) -> u64;
}

/// The real clock: milliseconds since the value was created.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }
}

/// A clock the test or simulation moves by hand.
#[derive(Debug, Default)]
pub struct FakeClock {
    now: AtomicU64,
}

impl FakeClock {
    pub fn new(start_ms: u64) -> FakeClock {
        FakeClock {
            now: AtomicU64::new(start_ms),
        }
    }

    /// Moves the clock forward by `by_ms`.
    pub fn advance(&self, by_ms: u64) {
        self.now.fetch_add(by_ms, Ordering::Relaxed);
    }

    /// Sets the clock; a value before the current time is ignored (clocks never go back).
    pub fn set(&self, to_ms: u64) {
        self.now.fetch_max(to_ms, Ordering::Relaxed);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }
}
