//! The collecting side: cuts intervals, keeps totals, sets the warm-up apart.

use super::histograms::HistogramSet;
use super::recorder::{Recorder, RunClock, Slot};
use super::summary::IntervalSnapshot;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the collector cuts the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectorConfig {
    /// Length of one interval (the status line and `intervals.csv` period). Default 1 s.
    pub interval: Duration,
    /// Time from the run clock's epoch during which samples are warm-up: counted apart, in no
    /// total. Default 0.
    pub warmup: Duration,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            interval: Duration::from_secs(1),
            warmup: Duration::ZERO,
        }
    }
}

/// Longest sleep of [`Collector::run`] between checks of its stop flag, so that stopping
/// takes at most this long.
const STOP_CHECK_PERIOD: Duration = Duration::from_millis(20);

/// One cut interval: its figures and the raw histograms they came from.
#[derive(Debug, Clone)]
pub struct IntervalRecord {
    pub snapshot: IntervalSnapshot,
    /// The interval's merged histograms (for `.hlog` files and later re-analysis).
    pub histograms: HistogramSet,
}

/// Merges the recorders' interval histograms, every interval.
#[derive(Debug)]
pub struct Collector {
    config: CollectorConfig,
    clock: RunClock,
    /// Each recorder's sets; behind a mutex only so that recorders can be made while the
    /// collector runs.
    slots: Mutex<Vec<Arc<Mutex<Slot>>>>,
    /// Empty sets swapped in for a recorder's full ones, so the swap allocates nothing.
    spare: HistogramSet,
    spare_next: HistogramSet,
    last_cut_micros: u64,
    totals: HistogramSet,
    warmup_totals: HistogramSet,
}

impl Collector {
    /// A collector whose first interval starts at the clock's epoch.
    pub fn new(config: CollectorConfig, clock: RunClock) -> Collector {
        assert!(!config.interval.is_zero(), "a zero interval never ends");
        Collector {
            config,
            clock,
            slots: Mutex::new(Vec::new()),
            spare: HistogramSet::new(),
            spare_next: HistogramSet::new(),
            last_cut_micros: 0,
            totals: HistogramSet::new(),
            warmup_totals: HistogramSet::new(),
        }
    }

    /// The run clock recorders and collector share.
    pub fn clock(&self) -> RunClock {
        self.clock
    }

    /// A recorder for one load thread.
    pub fn recorder(&self) -> Recorder {
        let slot = Arc::new(Mutex::new(Slot::new(self.next_cut_micros())));
        self.slots.lock().push(Arc::clone(&slot));
        Recorder::new(self.clock, slot)
    }

    fn warmup_end_micros(&self) -> u64 {
        duration_micros(self.config.warmup)
    }

    /// When the next interval should be cut: one interval after the last cut, or the end of
    /// the warm-up if that comes first, so that no interval straddles it.
    pub fn next_cut_micros(&self) -> u64 {
        self.cut_after(self.last_cut_micros)
    }

    /// The cut that follows one at `last_cut_micros`.
    fn cut_after(&self, last_cut_micros: u64) -> u64 {
        let next = last_cut_micros.saturating_add(duration_micros(self.config.interval));
        let warmup_end = self.warmup_end_micros();
        if last_cut_micros < warmup_end && warmup_end < next {
            warmup_end
        } else {
            next
        }
    }

    /// Cuts the interval from the last cut to `end_micros`: takes every recorder's samples
    /// of operations that ended before `end_micros`, adds them to the totals (or to the
    /// warm-up totals if the interval starts within the warm-up), and returns them.
    ///
    /// Operations are filed by their end time, not by when this runs: what ended after the
    /// recorder's cut (the scheduled end) stays for the next interval, unless this cut is
    /// later than that one (the last, at a stop), which takes it too.
    pub fn collect_until(&mut self, end_micros: u64) -> IntervalRecord {
        let start_micros = self.last_cut_micros;
        let end_micros = end_micros.max(start_micros);
        let following_cut = self.cut_after(end_micros);
        let mut interval = HistogramSet::new();
        let slots: Vec<_> = self.slots.lock().clone();
        for slot in slots {
            // Hold the thread's lock only for the swaps; merging happens after it is released.
            let took_next = {
                let mut guard = slot.lock();
                let slot = &mut *guard;
                std::mem::swap(&mut slot.current, &mut self.spare);
                // `current` is now empty: the later samples become the current ones.
                std::mem::swap(&mut slot.current, &mut slot.next);
                let took_next = end_micros > slot.cut_micros;
                if took_next {
                    std::mem::swap(&mut slot.current, &mut self.spare_next);
                }
                slot.cut_micros = following_cut;
                took_next
            };
            interval.add(&self.spare);
            self.spare.reset();
            if took_next {
                interval.add(&self.spare_next);
                self.spare_next.reset();
            }
        }
        // A caller that cuts at `next_cut_micros` never straddles the warm-up end; one that
        // does has the whole interval excluded, which errs on the side of a clean total.
        let warmup = start_micros < self.warmup_end_micros();
        if warmup {
            self.warmup_totals.add(&interval);
        } else {
            self.totals.add(&interval);
        }
        self.last_cut_micros = end_micros;
        let snapshot = IntervalSnapshot::of(
            &interval,
            RunClock::offset(start_micros),
            RunClock::offset(end_micros),
            warmup,
        );
        IntervalRecord {
            snapshot,
            histograms: interval,
        }
    }

    /// Cuts intervals on schedule until `stop` is set, then cuts the last, partial one;
    /// hands each to `on_interval`. Meant for the run's status thread.
    pub fn run(&mut self, stop: &AtomicBool, mut on_interval: impl FnMut(&IntervalRecord)) {
        loop {
            let next_cut = self.next_cut_micros();
            let now = self.clock.now_micros();
            if stop.load(Ordering::Acquire) {
                on_interval(&self.collect_until(now));
                return;
            }
            if now >= next_cut {
                on_interval(&self.collect_until(next_cut));
                continue;
            }
            std::thread::sleep(Duration::from_micros(next_cut - now).min(STOP_CHECK_PERIOD));
        }
    }

    /// Every sample after the warm-up collected so far.
    pub fn totals(&self) -> &HistogramSet {
        &self.totals
    }

    /// Every sample of the warm-up collected so far.
    pub fn warmup_totals(&self) -> &HistogramSet {
        &self.warmup_totals
    }

    /// The figures of the measured part of the run: from the end of the warm-up to the last
    /// cut.
    pub fn run_snapshot(&self) -> IntervalSnapshot {
        let start = self.warmup_end_micros().min(self.last_cut_micros);
        IntervalSnapshot::of(
            &self.totals,
            RunClock::offset(start),
            RunClock::offset(self.last_cut_micros),
            false,
        )
    }
}

fn duration_micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
