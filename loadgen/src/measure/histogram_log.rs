//! HdrHistogram interval logs (`.hlog`): the raw histograms behind every reported figure.
//!
//! Format: HdrHistogram's histogram log format, version 1.3, as Java's `HistogramLogWriter`
//! writes it and `HistogramLogReader` / `HistogramLogProcessor` / HdrHistogramJS read it:
//!
//! ```text
//! #[Logged with kvbench 0.1.0]
//! #[Histogram log format version 1.3]
//! #[StartTime: 1441812279.474 (seconds since epoch), 2015-09-09T15:24:39.474Z]
//! #[BaseTime: 1441812279.474 (seconds since epoch)]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! Tag=READ,0.000,1.000,1023.000,HISTFAAAAC...
//! Tag=Intended-READ,0.000,1.000,2047.000,HISTFAAAAC...
//! ```
//!
//! - One line per non-empty histogram per interval; the tag is YCSB's measurement name
//!   (`READ`, `READ-FAILED`, `Intended-READ`, `Intended-READ-FAILED`).
//! - StartTime and BaseTime are both the run clock's epoch, so interval timestamps are
//!   seconds since the run started (the form YCSB's logs have).
//! - The histogram is the V2 encoding, deflate-compressed (cookie `0x1c849304`), base64: the
//!   only encoding Java's reader accepts in a log.
//! - Values are microseconds, and so is `Interval_Max` (Java divides by 1e6 by default
//!   because jHiccup records nanoseconds; every reader takes the histogram, not this column).
//!
//! Only the two `#[...Time: ` headers, the legend and interval lines carry meaning; other `#`
//! lines are comments, so logs of several processes can be read and merged by tag.

use super::histograms::HistogramSet;
use super::recorder::utc_timestamp;
use crate::{Error, Result};
use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The log format version this module writes, as Java's `HISTOGRAM_LOG_FORMAT_VERSION`.
pub const FORMAT_VERSION: &str = "1.3";

/// Largest log [`read_histogram_log_file`] accepts: a day of 1 s intervals for every tag is
/// far below it, and a bound keeps a wrong path from exhausting memory.
pub const LOG_SIZE_BYTES_MAX: u64 = 1 << 30;

/// The Java legend line; its readers skip it, and so does the Rust crate's iterator.
const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";

/// Writes one run's interval histograms as an interval log.
pub struct HistogramLogWriter<W: Write> {
    out: W,
    serializer: V2DeflateSerializer,
}

impl<W: Write> HistogramLogWriter<W> {
    /// Writes the headers. `start_time` is the wall-clock time of the run clock's epoch.
    pub fn new(mut out: W, start_time: SystemTime) -> Result<HistogramLogWriter<W>> {
        let seconds = start_time
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let version = env!("CARGO_PKG_VERSION");
        let headers = format!(
            "#[Logged with kvbench {version}]\n\
             #[Histogram log format version {FORMAT_VERSION}]\n\
             #[StartTime: {seconds:.3} (seconds since epoch), {}]\n\
             #[BaseTime: {seconds:.3} (seconds since epoch)]\n\
             {LEGEND}\n",
            utc_timestamp(start_time)
        );
        out.write_all(headers.as_bytes()).map_err(write_error)?;
        Ok(HistogramLogWriter {
            out,
            serializer: V2DeflateSerializer::new(),
        })
    }

    /// Appends one interval: a line per non-empty histogram of `histograms`. Offsets are from
    /// the run clock's epoch.
    pub fn write_interval(
        &mut self,
        start_offset: Duration,
        end_offset: Duration,
        histograms: &HistogramSet,
    ) -> Result<()> {
        let length = end_offset.saturating_sub(start_offset);
        // The crate's writer borrows its output; a header-less one per interval costs nothing.
        let mut writer = IntervalLogWriterBuilder::new()
            .begin_log_with(&mut self.out, &mut self.serializer)
            .map_err(write_error)?;
        for (tag, histogram) in histograms.tagged() {
            let tag = Tag::new(&tag).expect("YCSB measurement names have no ',', ' ' or newline");
            writer
                .write_histogram(histogram, start_offset, length, Some(tag))
                .map_err(|error| Error::HistogramLog {
                    context: "write".to_string(),
                    detail: error.to_string(),
                })?;
        }
        Ok(())
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> Result<W> {
        self.out.flush().map_err(write_error)?;
        Ok(self.out)
    }
}

fn write_error(error: std::io::Error) -> Error {
    Error::HistogramLog {
        context: "write".to_string(),
        detail: error.to_string(),
    }
}

/// One interval histogram read back from a log.
#[derive(Debug, Clone)]
pub struct LoggedInterval {
    /// The line's tag, if it had one.
    pub tag: Option<String>,
    /// Interval start, in seconds since the log's BaseTime (or since the epoch without one).
    pub start_offset: Duration,
    pub length: Duration,
    pub histogram: Histogram<u64>,
}

/// A whole interval log, decoded.
#[derive(Debug, Clone, Default)]
pub struct HistogramLog {
    /// The `#[StartTime: ...]` header, since the Unix epoch.
    pub start_time: Option<Duration>,
    /// The `#[BaseTime: ...]` header, since the Unix epoch.
    pub base_time: Option<Duration>,
    pub intervals: Vec<LoggedInterval>,
}

impl HistogramLog {
    /// Every interval added into one set by tag; untagged lines and tags that name no
    /// measurement are left out (see [`HistogramSet::add_tagged`]).
    pub fn merged(&self) -> HistogramSet {
        let mut set = HistogramSet::new();
        self.merge_into(&mut set);
        set
    }

    /// Adds every interval of this log into `set`, by tag.
    pub fn merge_into(&self, set: &mut HistogramSet) {
        for interval in &self.intervals {
            if let Some(tag) = &interval.tag {
                set.add_tagged(tag, &interval.histogram);
            }
        }
    }
}

/// The merged histograms of several logs, e.g. of the kvbench processes of one run.
pub fn merge_logs(logs: &[HistogramLog]) -> HistogramSet {
    let mut set = HistogramSet::new();
    logs.iter().for_each(|log| log.merge_into(&mut set));
    set
}

/// Decodes an interval log.
pub fn read_histogram_log(bytes: &[u8]) -> Result<HistogramLog> {
    let mut log = HistogramLog::default();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|error| Error::HistogramLog {
            context: "read".to_string(),
            detail: format!("unparsable line: {error:?}"),
        })?;
        match entry {
            LogEntry::StartTime(time) => log.start_time = Some(time),
            LogEntry::BaseTime(time) => log.base_time = Some(time),
            LogEntry::Interval(interval) => {
                let start = interval.start_timestamp();
                let invalid = |detail: String| Error::HistogramLog {
                    context: format!("read, interval at {:.3} s", start.as_secs_f64()),
                    detail,
                };
                let encoded = base64::engine::general_purpose::STANDARD
                    .decode(interval.encoded_histogram())
                    .map_err(|error| invalid(format!("base64: {error}")))?;
                let mut histogram: Histogram<u64> = deserializer
                    .deserialize(&mut encoded.as_slice())
                    .map_err(|error| invalid(format!("histogram: {error:?}")))?;
                // Merging into auto-resizing totals needs this one to grow too.
                histogram.auto(true);
                log.intervals.push(LoggedInterval {
                    tag: interval.tag().map(|tag| tag.as_str().to_string()),
                    start_offset: start,
                    length: interval.duration(),
                    histogram,
                });
            }
        }
    }
    Ok(log)
}

/// Reads and decodes the interval log at `path`.
pub fn read_histogram_log_file(path: &Path) -> Result<HistogramLog> {
    let io_error = |source| Error::Io {
        context: path.display().to_string(),
        source,
    };
    let size_bytes = std::fs::metadata(path).map_err(io_error)?.len();
    if size_bytes > LOG_SIZE_BYTES_MAX {
        return Err(Error::HistogramLog {
            context: path.display().to_string(),
            detail: format!("{size_bytes} bytes, more than the {LOG_SIZE_BYTES_MAX} accepted"),
        });
    }
    let bytes = std::fs::read(path).map_err(io_error)?;
    read_histogram_log(&bytes)
}

#[cfg(test)]
mod tests;
