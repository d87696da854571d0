//! The per-thread recording side.

use super::histograms::HistogramSet;
use super::kinds::{OperationKind, Outcome};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The run's monotonic clock: every time a recorder or the collector handles is microseconds
/// since this epoch, so that threads' intervals line up.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    epoch: Instant,
}

impl RunClock {
    /// A clock whose zero is now.
    pub fn start() -> RunClock {
        RunClock {
            epoch: Instant::now(),
        }
    }

    /// The instant this clock counts from.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Microseconds since the epoch.
    pub fn now_micros(&self) -> u64 {
        self.micros_at(Instant::now())
    }

    /// Microseconds from the epoch to `instant` (0 if it is before the epoch).
    pub fn micros_at(&self, instant: Instant) -> u64 {
        let elapsed = instant.saturating_duration_since(self.epoch);
        u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
    }

    /// The offset as a duration.
    pub fn offset(micros: u64) -> Duration {
        Duration::from_micros(micros)
    }
}

/// When one operation was meant to start, started and ended, in [`RunClock`] microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationTimes {
    /// When the open-loop schedule said the operation should start; `None` in closed loop.
    pub intended_start_micros: Option<u64>,
    /// When the request was actually sent.
    pub start_micros: u64,
    /// When the response was received.
    pub end_micros: u64,
}

impl OperationTimes {
    /// Response time as the system under test saw it.
    pub fn service_micros(&self) -> u64 {
        self.end_micros.saturating_sub(self.start_micros)
    }

    /// Response time as a client on the schedule saw it: includes the time the request waited
    /// behind earlier ones.
    pub fn intended_micros(&self) -> Option<u64> {
        self.intended_start_micros
            .map(|intended_start| self.end_micros.saturating_sub(intended_start))
    }
}

/// One recorder's samples, filed by when each operation ended: those of the interval the
/// collector will cut next, and those that ended after its end but reached the recorder
/// before the collector cut it (the collector wakes a little after each boundary).
#[derive(Debug)]
pub(crate) struct Slot {
    /// Operations that ended before `cut_micros`.
    pub(crate) current: HistogramSet,
    /// Operations that ended at or after `cut_micros`: the following interval's.
    pub(crate) next: HistogramSet,
    /// The end of the interval `current` fills, in [`RunClock`] microseconds.
    pub(crate) cut_micros: u64,
}

impl Slot {
    pub(crate) fn new(cut_micros: u64) -> Slot {
        Slot {
            current: HistogramSet::new(),
            next: HistogramSet::new(),
            cut_micros,
        }
    }
}

/// One load thread's recorder. Made by [`super::Collector::recorder`].
///
/// The lock is the thread's own: it is contended only during the collector's swap, once per
/// interval, so a record costs an uncontended lock and an HDR increment (see the
/// `record_cost_stays_small` test).
///
/// An operation is filed in the interval its end time falls in, successes and failures
/// alike, whenever the collector happens to cut.
#[derive(Debug)]
pub struct Recorder {
    clock: RunClock,
    slot: Arc<Mutex<Slot>>,
}

impl Recorder {
    pub(crate) fn new(clock: RunClock, slot: Arc<Mutex<Slot>>) -> Recorder {
        Recorder { clock, slot }
    }

    /// The run's clock, to time operations with.
    pub fn clock(&self) -> RunClock {
        self.clock
    }

    /// Records one operation that ended now, from its latencies in microseconds.
    #[inline]
    pub fn record(
        &self,
        kind: OperationKind,
        outcome: Outcome,
        service_micros: u64,
        intended_micros: Option<u64>,
    ) {
        self.record_ended_at(
            self.clock.now_micros(),
            kind,
            outcome,
            service_micros,
            intended_micros,
        );
    }

    /// Records one operation that ended at `end_micros` (run clock), from its latencies in
    /// microseconds; it counts in the interval `end_micros` falls in.
    #[inline]
    pub fn record_ended_at(
        &self,
        end_micros: u64,
        kind: OperationKind,
        outcome: Outcome,
        service_micros: u64,
        intended_micros: Option<u64>,
    ) {
        let mut slot = self.slot.lock();
        let set = if end_micros >= slot.cut_micros {
            &mut slot.next
        } else {
            &mut slot.current
        };
        set.record(kind, outcome, service_micros, intended_micros);
    }

    /// Records one operation from its start and end times.
    #[inline]
    pub fn record_times(&self, kind: OperationKind, outcome: Outcome, times: OperationTimes) {
        self.record_ended_at(
            times.end_micros,
            kind,
            outcome,
            times.service_micros(),
            times.intended_micros(),
        );
    }
}

/// `time` as an RFC 3339 UTC timestamp with milliseconds (`2026-11-22T05:26:08.123Z`), for
/// headers and metadata that a human reads beside the machine-readable epoch seconds.
pub fn utc_timestamp(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let shifted = days as i64 + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        since_epoch.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamps_match_known_dates() {
        let at = |seconds: u64, millis: u64| {
            utc_timestamp(UNIX_EPOCH + Duration::from_millis(seconds * 1000 + millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_441_812_279, 474), "2015-09-09T15:24:39.474Z");
        assert_eq!(at(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
    }
}
