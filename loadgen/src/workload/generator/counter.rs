//! Counters: YCSB's `CounterGenerator` (load keys), `AcknowledgedCounterGenerator`
//! (transaction-phase insert keys, readable only once inserted) and `SequentialGenerator`.
//!
//! The counters are shared by all client threads, so they take `&self`.

use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::Mutex;

use crate::error::{Error, Result};

/// Hands out `start, start + 1, ...` to any number of threads.
#[derive(Debug)]
pub struct CounterGenerator {
    next: AtomicI64,
}

impl CounterGenerator {
    /// A counter whose first value is `start`.
    pub fn new(start: i64) -> Self {
        Self {
            next: AtomicI64::new(start),
        }
    }

    /// The next value.
    pub fn next_value(&self) -> i64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// The last value handed out (`start - 1` before the first).
    pub fn last_value(&self) -> i64 {
        self.next.load(Ordering::Relaxed) - 1
    }
}

/// YCSB's `AcknowledgedCounterGenerator.WINDOW_SIZE`: 2^20 inserts may be in flight.
pub const ACKNOWLEDGEMENT_WINDOW_SIZE: usize = 1 << 20;
const WINDOW_MASK: i64 = ACKNOWLEDGEMENT_WINDOW_SIZE as i64 - 1;

/// A counter whose `last_value` is the highest value below which every value has been
/// acknowledged, so readers never pick a key whose insert has not finished.
#[derive(Debug)]
pub struct AcknowledgedCounterGenerator {
    counter: CounterGenerator,
    limit: AtomicI64,
    /// `window[value & mask]` is set when `value` is acknowledged but not yet contiguous.
    window: Mutex<Vec<bool>>,
}

impl AcknowledgedCounterGenerator {
    /// A counter whose first value is `start`; `last_value` starts at `start - 1`.
    pub fn new(start: i64) -> Self {
        Self {
            counter: CounterGenerator::new(start),
            limit: AtomicI64::new(start - 1),
            window: Mutex::new(vec![false; ACKNOWLEDGEMENT_WINDOW_SIZE]),
        }
    }

    /// The next value to insert.
    pub fn next_value(&self) -> i64 {
        self.counter.next_value()
    }

    /// The highest value such that it and every value before it have been acknowledged.
    pub fn last_value(&self) -> i64 {
        self.limit.load(Ordering::Acquire)
    }

    /// Marks `value` inserted (whether or not the insert succeeded, as YCSB does) and
    /// advances `last_value` over the contiguous acknowledged run. YCSB only advances when
    /// it wins a `tryLock`; waiting for the lock gives the same limit without the race.
    pub fn acknowledge(&self, value: i64) -> Result<()> {
        let mut window = self.window.lock();
        let slot = (value & WINDOW_MASK) as usize;
        if window[slot] {
            return Err(Error::TooManyUnacknowledgedInserts {
                key: value,
                window_size: ACKNOWLEDGEMENT_WINDOW_SIZE,
            });
        }
        window[slot] = true;
        let mut index = self.limit.load(Ordering::Acquire) + 1;
        // One pass over the window at most, as in YCSB.
        for _ in 0..ACKNOWLEDGEMENT_WINDOW_SIZE {
            let slot = (index & WINDOW_MASK) as usize;
            if !window[slot] {
                break;
            }
            window[slot] = false;
            index += 1;
        }
        self.limit.store(index - 1, Ordering::Release);
        Ok(())
    }
}

/// Cycles through `start ..= end` in order (YCSB's `SequentialGenerator`).
#[derive(Debug)]
pub struct SequentialGenerator {
    drawn: AtomicI64,
    start: i64,
    interval: i64,
}

impl SequentialGenerator {
    /// Values `start ..= end`, then again from `start`. `end >= start` is asserted.
    pub fn new(start: i64, end: i64) -> Self {
        assert!(end >= start, "sequential range {start}..={end} is empty");
        Self {
            drawn: AtomicI64::new(0),
            start,
            interval: end - start + 1,
        }
    }

    /// The next value.
    pub fn next_value(&self) -> i64 {
        self.start + self.drawn.fetch_add(1, Ordering::Relaxed) % self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_counts_from_start() {
        let counter = CounterGenerator::new(10);
        assert_eq!(counter.last_value(), 9);
        assert_eq!(
            (0..3).map(|_| counter.next_value()).collect::<Vec<_>>(),
            vec![10, 11, 12]
        );
        assert_eq!(counter.last_value(), 12);
    }

    #[test]
    fn acknowledged_counter_advances_only_over_contiguous_values() {
        let counter = AcknowledgedCounterGenerator::new(1000);
        assert_eq!(counter.last_value(), 999);
        let keys: Vec<i64> = (0..4).map(|_| counter.next_value()).collect();
        assert_eq!(keys, vec![1000, 1001, 1002, 1003]);
        counter.acknowledge(1001).unwrap();
        assert_eq!(counter.last_value(), 999, "1000 is still in flight");
        counter.acknowledge(1003).unwrap();
        counter.acknowledge(1000).unwrap();
        assert_eq!(counter.last_value(), 1001);
        counter.acknowledge(1002).unwrap();
        assert_eq!(counter.last_value(), 1003);
    }

    #[test]
    fn acknowledged_counter_rejects_a_full_window() {
        let counter = AcknowledgedCounterGenerator::new(0);
        // 0 stays in flight; 1 .. window-1 fill every other slot, then the window wraps.
        for value in 1..ACKNOWLEDGEMENT_WINDOW_SIZE as i64 {
            counter.acknowledge(value).unwrap();
        }
        let wrapped = ACKNOWLEDGEMENT_WINDOW_SIZE as i64 + 1;
        let error = counter.acknowledge(wrapped).unwrap_err();
        assert!(
            matches!(error, Error::TooManyUnacknowledgedInserts { .. }),
            "{error}"
        );
        counter.acknowledge(0).unwrap();
        assert_eq!(counter.last_value(), ACKNOWLEDGEMENT_WINDOW_SIZE as i64 - 1);
    }

    #[test]
    fn sequential_wraps_around() {
        let sequential = SequentialGenerator::new(5, 7);
        let values: Vec<i64> = (0..7).map(|_| sequential.next_value()).collect();
        assert_eq!(values, vec![5, 6, 7, 5, 6, 7, 5]);
    }
}
