//! The lost-write check at the end of a run: every key with an acknowledged write is read
//! back with `KV.GET key CL ALL` (every replica answers, read repair merges them) and
//! classified as a read by the staleness tracker, begun after every write ended:
//!
//! - **present**: the latest acknowledged write (or a concurrent or newer one) is among
//!   the returned versions;
//! - **lost, missing**: the key is not found at all;
//! - **lost, older**: only versions older than an acknowledged write came back (with
//!   `lww` a concurrent write may win legitimately; only a write that *followed* the
//!   returned version, by real time, counts as lost);
//! - **unreadable**: the read at ALL failed even after retries (a replica is down).
//!
//! The counts are printed after the run's summary and written to `lost_writes.csv` (one
//! row), the keys not present to `lost_keys.csv`.

use crate::measure::staleness::{Observed, StalenessTracker, Verdict};
use crate::{Error, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// Keys per pipelined batch (a node runs one connection's commands one after another, so
/// batches go over [`PARALLEL`] connections at once).
const BATCH: usize = 16;
/// Connections reading at once.
const PARALLEL: usize = 32;
/// Attempts for keys whose read at ALL failed (a node just restarted may still be joining).
const ATTEMPTS: usize = 4;
const RETRY_PAUSE: Duration = Duration::from_secs(1);
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What happened to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStatus {
    Present,
    Missing,
    /// Versions came back, but older than `missed` acknowledged writes.
    Older {
        missed: u64,
        versions: usize,
    },
    Unreadable(String),
}

/// The check's outcome.
#[derive(Debug, Clone, Default)]
pub struct LostWriteReport {
    pub keys_checked: u64,
    pub present: u64,
    pub missing: u64,
    pub older: u64,
    pub unreadable: u64,
    /// Keys that came back with more than one version (siblings).
    pub with_siblings: u64,
    /// Keys not present: (key, status).
    pub problems: Vec<(String, KeyStatus)>,
    /// `ALL`.
    pub consistency: String,
    /// The cluster's conflict policy as the caller knows it (`siblings`, `lww`, `unknown`).
    pub conflict_policy: String,
    pub seconds: f64,
}

impl LostWriteReport {
    /// Acknowledged writes lost (missing or older).
    pub fn lost(&self) -> u64 {
        self.missing + self.older
    }

    /// The lines printed after the run's summary.
    pub fn text(&self) -> String {
        let fraction = if self.keys_checked > 0 {
            100.0 * self.lost() as f64 / self.keys_checked as f64
        } else {
            0.0
        };
        format!(
            "lost-write check (KV.GET at {}, conflict policy {}): {} keys with acknowledged \
             writes read back in {:.1} s: {} present, {} lost ({} missing, {} older than an \
             acknowledged write; {fraction:.3}%), {} unreadable, {} with siblings\n",
            self.consistency,
            self.conflict_policy,
            self.keys_checked,
            self.seconds,
            self.present,
            self.lost(),
            self.missing,
            self.older,
            self.unreadable,
            self.with_siblings
        )
    }

    /// Writes `lost_writes.csv` (the counts) and `lost_keys.csv` (the keys not present).
    pub fn write_csv(&self, directory: &Path) -> Result<()> {
        crate::report::csv_files::write_csv_file(&directory.join("lost_writes.csv"), |out| {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record([
                "consistency",
                "conflict_policy",
                "keys_checked",
                "present",
                "lost",
                "missing",
                "older",
                "unreadable",
                "with_siblings",
            ])?;
            writer.write_record([
                self.consistency.clone(),
                self.conflict_policy.clone(),
                self.keys_checked.to_string(),
                self.present.to_string(),
                self.lost().to_string(),
                self.missing.to_string(),
                self.older.to_string(),
                self.unreadable.to_string(),
                self.with_siblings.to_string(),
            ])?;
            writer.flush()?;
            Ok(())
        })?;
        crate::report::csv_files::write_csv_file(&directory.join("lost_keys.csv"), |out| {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(["key", "status", "missed_writes", "versions", "detail"])?;
            for (key, status) in &self.problems {
                let (name, missed, versions, detail) = match status {
                    KeyStatus::Present => ("present", 0, 0, String::new()),
                    KeyStatus::Missing => ("missing", 1, 0, String::new()),
                    KeyStatus::Older { missed, versions } => {
                        ("older", *missed, *versions, String::new())
                    }
                    KeyStatus::Unreadable(detail) => ("unreadable", 0, 0, detail.clone()),
                };
                writer.write_record([
                    key.clone(),
                    name.to_string(),
                    missed.to_string(),
                    versions.to_string(),
                    detail,
                ])?;
            }
            writer.flush()?;
            Ok(())
        })
    }
}

/// Reads back every key the tracker saw acknowledged, at ALL, through `addresses` in
/// turn; `stamp_offset` is where the stamp sits in a value.
pub fn check_lost_writes(
    addresses: &[SocketAddr],
    tracker: &StalenessTracker,
    stamp_offset: usize,
    conflict_policy: &str,
) -> Result<LostWriteReport> {
    let started = Instant::now();
    let mut report = LostWriteReport {
        consistency: "ALL".to_string(),
        conflict_policy: conflict_policy.to_string(),
        ..LostWriteReport::default()
    };
    if addresses.is_empty() {
        return Err(Error::NoHosts);
    }
    let mut pending: Vec<Vec<u8>> = tracker.acknowledged_keys();
    report.keys_checked = pending.len() as u64;
    // Every write has ended: the read "begins" after all of them.
    let read_start = u64::MAX / 2;
    for attempt in 0..ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            std::thread::sleep(RETRY_PAUSE);
        }
        let mut retry = Vec::new();
        let last = attempt + 1 == ATTEMPTS;
        let batches: Vec<&[Vec<u8>]> = pending.chunks(BATCH).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let replies: Vec<(usize, BatchReplies)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..PARALLEL.min(batches.len()))
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(batch) = batches.get(index) else {
                                return done;
                            };
                            let address = addresses[(index + attempt) % addresses.len()];
                            let replies = read_batch(address, batch).unwrap_or_else(|error| {
                                batch.iter().map(|_| Err(error.clone())).collect()
                            });
                            done.push((index, replies));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().unwrap_or_default())
                .collect()
        });
        for (index, batch_replies) in replies {
            for (key, reply) in batches[index].iter().zip(batch_replies) {
                let versions = match reply {
                    Ok(versions) => versions,
                    Err(detail) if last => {
                        report.unreadable += 1;
                        report
                            .problems
                            .push((lossy(key), KeyStatus::Unreadable(detail)));
                        continue;
                    }
                    Err(_) => {
                        retry.push(key.clone());
                        continue;
                    }
                };
                report.record(key, &versions, tracker, stamp_offset, read_start);
            }
        }
        pending = retry;
    }
    report.problems.sort_by(|a, b| a.0.cmp(&b.0));
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

impl LostWriteReport {
    /// Classifies one key's versions read back at ALL.
    fn record(
        &mut self,
        key: &[u8],
        versions: &[Option<Vec<u8>>],
        tracker: &StalenessTracker,
        stamp_offset: usize,
        read_start: u64,
    ) {
        let observed: Vec<Observed> = versions
            .iter()
            .flatten()
            .map(|value| {
                value
                    .get(stamp_offset..)
                    .map_or(Observed::Unstamped, Observed::of_value)
            })
            .collect();
        if observed.len() > 1 {
            self.with_siblings += 1;
        }
        let class = tracker.classify_read(key, &observed, read_start);
        let status = match class.verdict {
            Verdict::Stale { .. } if observed.is_empty() => KeyStatus::Missing,
            Verdict::Stale { k, .. } => KeyStatus::Older {
                missed: k,
                versions: observed.len(),
            },
            _ => KeyStatus::Present,
        };
        match status {
            KeyStatus::Present => self.present += 1,
            KeyStatus::Missing => self.missing += 1,
            KeyStatus::Older { .. } => self.older += 1,
            KeyStatus::Unreadable(_) => self.unreadable += 1,
        }
        if status != KeyStatus::Present {
            self.problems.push((lossy(key), status));
        }
    }
}

fn lossy(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// Per key: the versions (`None`: a tombstone), or why the read failed.
type BatchReplies = Vec<std::result::Result<Vec<Option<Vec<u8>>>, String>>;

/// Sends `KV.GET key CL ALL` for every key in one write and reads the replies.
fn read_batch(address: SocketAddr, keys: &[Vec<u8>]) -> std::result::Result<BatchReplies, String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
        .map_err(|error| format!("connect {address}: {error}"))?;
    let mut request = Vec::new();
    for key in keys {
        crate::client::resp::push_command(&mut request, &[b"KV.GET", key, b"CL", b"ALL"]);
    }
    stream
        .write_all(&request)
        .map_err(|error| format!("write to {address}: {error}"))?;
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let mut buffer = Vec::new();
    let mut start = 0;
    let mut replies = Vec::with_capacity(keys.len());
    let mut chunk = vec![0u8; 64 * 1024];
    while replies.len() < keys.len() {
        if let Some((value, used)) = parse_value(&buffer[start..])? {
            start += used;
            replies.push(versions_of(value));
            continue;
        }
        read_more(
            &mut stream,
            address,
            deadline,
            REPLY_TIMEOUT,
            &mut buffer,
            &mut chunk,
        )?;
    }
    Ok(replies)
}

/// Sends one command and returns its reply flattened to text (array items joined with
/// "; "), or the error reply's text as `Err` inside.
pub(crate) fn command_text(
    address: SocketAddr,
    words: &[String],
    timeout: Duration,
) -> std::result::Result<std::result::Result<String, String>, String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
        .map_err(|error| format!("connect {address}: {error}"))?;
    let arguments: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
    let mut request = Vec::new();
    crate::client::resp::push_command(&mut request, &arguments);
    stream
        .write_all(&request)
        .map_err(|error| format!("write to {address}: {error}"))?;
    let deadline = Instant::now() + timeout;
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        if let Some((value, _)) = parse_value(&buffer)? {
            return Ok(match value {
                Value::Error(text) => Err(text),
                other => Ok(flatten(&other)),
            });
        }
        read_more(
            &mut stream,
            address,
            deadline,
            timeout,
            &mut buffer,
            &mut chunk,
        )?;
    }
}

/// Appends what one read of `stream` brings to `buffer` (through `chunk`), waiting until
/// `deadline` at the most (`timeout` is the whole wait, for the error).
fn read_more(
    stream: &mut TcpStream,
    address: SocketAddr,
    deadline: Instant,
    timeout: Duration,
    buffer: &mut Vec<u8>,
    chunk: &mut [u8],
) -> std::result::Result<(), String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(format!("no reply from {address} within {timeout:?}"));
    }
    stream
        .set_read_timeout(Some(left))
        .map_err(|error| error.to_string())?;
    match stream.read(chunk) {
        Ok(0) => Err(format!("{address} closed the connection")),
        Ok(read) => {
            buffer.extend_from_slice(&chunk[..read]);
            Ok(())
        }
        Err(error) => Err(format!("read from {address}: {error}")),
    }
}

fn flatten(value: &Value) -> String {
    match value {
        Value::Simple(bytes) | Value::Bulk(Some(bytes)) => {
            String::from_utf8_lossy(bytes).trim().replace("\r\n", "; ")
        }
        Value::Error(text) => text.clone(),
        Value::Integer(number) => number.to_string(),
        Value::Bulk(None) | Value::Array(None) => "(nil)".to_string(),
        Value::Array(Some(items)) => items.iter().map(flatten).collect::<Vec<_>>().join("; "),
    }
}

/// A RESP2 value, arrays nested.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Simple(Vec<u8>),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Value>>),
}

/// `[context, [value|nil, ...]]` into the versions; an error reply into its text.
fn versions_of(value: Value) -> std::result::Result<Vec<Option<Vec<u8>>>, String> {
    match value {
        Value::Array(Some(mut parts)) if parts.len() == 2 => match parts.pop() {
            Some(Value::Array(Some(versions))) => Ok(versions
                .into_iter()
                .map(|version| match version {
                    Value::Bulk(bytes) => bytes,
                    _ => None,
                })
                .collect()),
            Some(Value::Array(None)) | Some(Value::Bulk(None)) => Ok(Vec::new()),
            other => Err(format!("unexpected KV.GET versions {other:?}")),
        },
        Value::Array(None) | Value::Bulk(None) => Ok(Vec::new()),
        Value::Error(text) => Err(text),
        other => Err(format!("unexpected KV.GET reply {other:?}")),
    }
}

/// Parses one value from the front of `buffer`: `None` until it is complete.
fn parse_value(buffer: &[u8]) -> std::result::Result<Option<(Value, usize)>, String> {
    let Some(end) = buffer.windows(2).position(|pair| pair == b"\r\n") else {
        return Ok(None);
    };
    let Some((&kind, line)) = buffer[..end].split_first() else {
        return Err("empty RESP line".to_string());
    };
    let text = String::from_utf8_lossy(line).into_owned();
    let number = || {
        text.parse::<i64>()
            .map_err(|_| format!("bad RESP length {text:?}"))
    };
    let header = end + 2;
    match kind {
        b'+' => Ok(Some((Value::Simple(line.to_vec()), header))),
        b'-' => Ok(Some((Value::Error(text.clone()), header))),
        b':' => Ok(Some((Value::Integer(number()?), header))),
        b'$' => {
            let length = number()?;
            if length < 0 {
                return Ok(Some((Value::Bulk(None), header)));
            }
            let length = length as usize;
            if buffer.len() < header + length + 2 {
                return Ok(None);
            }
            let bytes = buffer[header..header + length].to_vec();
            Ok(Some((Value::Bulk(Some(bytes)), header + length + 2)))
        }
        b'*' => {
            let count = number()?;
            if count < 0 {
                return Ok(Some((Value::Array(None), header)));
            }
            let mut used = header;
            let mut items = Vec::with_capacity(count.min(1024) as usize);
            for _ in 0..count {
                match parse_value(&buffer[used..])? {
                    Some((item, length)) => {
                        items.push(item);
                        used += length;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Value::Array(Some(items)), used)))
        }
        other => Err(format!("unknown RESP type byte {:?}", other as char)),
    }
}

#[cfg(test)]
mod tests;
