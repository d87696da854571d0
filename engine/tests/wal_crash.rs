//! Crash scenario: a child process appends to a commit log with no syncing and reports each
//! acknowledged append; the parent SIGKILLs it mid-stream, reopens the log and checks that
//! every acknowledged record survived, in order, with nothing invented.
//!
//! The child is this same test binary, re-run with an environment variable naming the log
//! directory and backend.

use engine::wal::Wal;
use engine::{Error, IoBackend, SyncPolicy, WalOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_DIRECTORY_VARIABLE: &str = "WAL_CRASH_CHILD_DIRECTORY";
const CHILD_BACKEND_VARIABLE: &str = "WAL_CRASH_CHILD_BACKEND";
/// Bounds the child should the parent fail to kill it.
const CHILD_APPENDS_MAX: u64 = 2_000_000;
const CHILD_RUN_MS: u64 = 300;
const CHILD_START_SECONDS_MAX: u64 = 30;

fn payload(seq: u64) -> Vec<u8> {
    let mut payload = seq.to_le_bytes().to_vec();
    payload.resize(64 + (seq % 900) as usize, (seq % 251) as u8);
    payload
}

fn options(io: IoBackend) -> WalOptions {
    WalOptions {
        io,
        sync: SyncPolicy::None,
        ..WalOptions::default()
    }
}

/// The child's body; a no-op when run as an ordinary test.
#[test]
fn crash_child() {
    let (Ok(directory), Ok(backend)) = (
        std::env::var(CHILD_DIRECTORY_VARIABLE),
        std::env::var(CHILD_BACKEND_VARIABLE),
    ) else {
        return;
    };
    let io = if backend == "uring" {
        IoBackend::Uring
    } else {
        IoBackend::Std
    };
    let (wal, _, _) = Wal::open(Path::new(&directory), &options(io)).unwrap();
    let mut stdout = std::io::stdout().lock();
    for seq in 1..=CHILD_APPENDS_MAX {
        wal.append(seq, &payload(seq)).unwrap();
        writeln!(stdout, "ACK {seq}").unwrap();
        stdout.flush().unwrap();
    }
}

fn crash_once(io: IoBackend, name: &str) {
    let directory = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIRECTORY_VARIABLE, directory.path())
        .env(CHILD_BACKEND_VARIABLE, name)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acknowledged = Arc::new(AtomicU64::new(0));
    let reader = {
        let acknowledged = acknowledged.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(seq) = line.strip_prefix("ACK ") {
                    acknowledged.store(seq.parse().unwrap(), Ordering::SeqCst);
                }
            }
        })
    };
    // Kill only once the child is well into appending, however slow its start on a busy host.
    let start_deadline = Instant::now() + Duration::from_secs(CHILD_START_SECONDS_MAX);
    while acknowledged.load(Ordering::SeqCst) == 0 && Instant::now() < start_deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(CHILD_RUN_MS));
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let acknowledged = acknowledged.load(Ordering::SeqCst);
    assert!(acknowledged > 0, "{name}: the child acknowledged nothing");

    let (wal, records, report) = Wal::open(directory.path(), &options(io)).unwrap();
    wal.close().unwrap();
    eprintln!(
        "{name}: {acknowledged} acknowledged, {} recovered, {} torn bytes dropped",
        records.len(),
        report.torn_tail_bytes_dropped
    );
    assert!(
        records.len() as u64 >= acknowledged,
        "{name}: lost acknowledged records"
    );
    for (index, record) in records.iter().enumerate() {
        let seq = index as u64 + 1;
        assert_eq!(record.seq, seq, "{name}");
        assert_eq!(record.payload, payload(seq), "{name}");
    }
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    crash_once(IoBackend::Std, "std");
    let probe = tempfile::tempdir().unwrap();
    match Wal::open(probe.path(), &options(IoBackend::Uring)) {
        Ok(_) => crash_once(IoBackend::Uring, "uring"),
        Err(Error::BackendUnavailable { detail, .. }) => {
            eprintln!("NOTICE: skipping the io_uring backend: {detail}")
        }
        Err(error) => panic!("{error}"),
    }
}
