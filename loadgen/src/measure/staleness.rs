//! Staleness: which write a read returned, and how far behind the latest acknowledged write
//! it was, in versions (k) and in time (t), as in the PBS work (Bailis et al., VLDB 2012).
//!
//! - [`ValueStamp`]: every value kvbench writes starts with a fixed 32-byte stamp (writer,
//!   sequence, issue time) behind a magic, so a read can tell which write it returned and
//!   values written by anyone else read back as unstamped.
//! - [`StalenessTracker`]: shared by the load threads; records per key the writes issued and
//!   how they ended (acknowledged or not, and when), with a bounded history, and classifies
//!   each read from the stamps it returned (several when the store returns siblings) and the
//!   time it began.
//! - [`StalenessStats`]: counters a thread accumulates from classifications: stale fraction,
//!   k distribution, t since the newest missed write, and the t-visibility curve (probability
//!   that a read begun t ms after a commit returns it). Plain data: merged across threads and
//!   taken per interval with `std::mem::take`. Reads recorded with their start time are also
//!   counted per one-second interval ([`intervals`], `staleness_intervals.csv`).
//!
//! All times are microseconds of one clock (the run clock of the process that stamps, writes
//! and reads): classification compares issue and acknowledgement times of different writes,
//! which is meaningless across hosts without synchronised clocks.

pub mod intervals;
mod stamp;
mod stats;
#[cfg(test)]
mod tests;
mod tracker;

pub use intervals::{IntervalStaleness, STALENESS_INTERVALS_CSV_NAME};
pub use stamp::{Observed, ValueStamp, STAMP_LEN, STAMP_MAGIC, STAMP_VERSION};
pub use stats::{StalenessStats, VisibilityBucket, K_DISTRIBUTION_MAX, T_BUCKET_EDGES_MS};
pub use tracker::{ReadClass, StalenessTracker, TrackerConfig, Verdict, VisibilitySample};
