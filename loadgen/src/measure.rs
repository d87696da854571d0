//! Latency measurement: what every figure kvbench prints is computed from.
//!
//! - Each load thread owns a [`Recorder`]. Recording is an uncontended lock of the thread's
//!   own histogram set plus one HDR histogram increment: the only other party that ever takes
//!   that lock is the [`Collector`], once per interval, for the time of a pointer swap.
//! - The [`Collector`] cuts an interval every second (by default), merges the threads' interval
//!   histograms, keeps the run's totals and sets apart the samples of the warm-up period, which
//!   count in no total. An operation counts in the interval its end time falls in (successes
//!   and failures alike), however late after the boundary the collector takes its samples.
//! - Latencies are microseconds in HDR histograms with 3 significant digits (the relative error
//!   of any percentile is below 0.1%), auto-resized, clamped at one hour.
//! - Successful operations and failed ones are kept in separate histograms, as YCSB does with
//!   its `READ-FAILED` measurements, so that fast errors cannot make the tail look good.
//! - In open-loop mode each operation also has an *intended* latency, from the time the
//!   schedule said it should start: a stall of the system under test then shows up in the
//!   tail instead of silently delaying the following requests (coordinated omission).
//! - [`histogram_log`] writes and reads the raw interval histograms as standard HdrHistogram
//!   interval logs (`.hlog`), so each figure can be traced back and recomputed.

mod collector;
pub mod histogram_log;
mod histograms;
mod kinds;
mod recorder;
pub mod staleness;
mod summary;

pub use collector::{Collector, CollectorConfig, IntervalRecord};
pub use histograms::{HistogramSet, KindHistograms, HIGHEST_TRACKABLE_MICROS, SIGNIFICANT_DIGITS};
pub use kinds::{OperationKind, Outcome};
pub use recorder::{utc_timestamp, OperationTimes, Recorder, RunClock};
pub use summary::{IntervalSnapshot, KindSnapshot, LatencySummary};
