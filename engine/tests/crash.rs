//! Crash test: a child process writes with `always` sync from several threads and reports
//! each acknowledged key on stdout; it is SIGKILLed at random moments, the database is
//! reopened, and every acknowledged write must be there with its value.

mod common;

use engine::{Db, IoBackend, SyncPolicy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CHILD_DIR: &str = "ENGINE_CRASH_CHILD_DIR";
const CHILD_START: &str = "ENGINE_CRASH_CHILD_START";
const CHILD_IO: &str = "ENGINE_CRASH_CHILD_IO";
const ROUNDS: usize = 6;
const WRITER_THREADS: u64 = 4;

fn value_for(key_number: u64) -> Vec<u8> {
    let length = 50 + (key_number % 400) as usize;
    (0..length)
        .map(|i| (key_number as usize * 31 + i) as u8)
        .collect()
}

fn key_for(key_number: u64) -> Vec<u8> {
    format!("key{key_number:010}").into_bytes()
}

fn backend_from_env() -> IoBackend {
    match std::env::var(CHILD_IO).as_deref() {
        Ok("uring") => IoBackend::Uring,
        _ => IoBackend::Std,
    }
}

/// The child's body: runs only when the parent set the environment, else does nothing.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let start: u64 = std::env::var(CHILD_START)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let options = common::small_options(backend_from_env(), SyncPolicy::Always);
    let db = std::sync::Arc::new(Db::open(Path::new(&dir), options).expect("child open"));
    let threads: Vec<_> = (0..WRITER_THREADS)
        .map(|thread| {
            let db = db.clone();
            std::thread::spawn(move || {
                let stdout = std::io::stdout();
                // Bounded: the parent kills long before this many writes.
                for index in 0..1_000_000u64 {
                    let key_number = start + index * WRITER_THREADS + thread;
                    db.put(&key_for(key_number), &value_for(key_number))
                        .expect("child put");
                    let mut out = stdout.lock();
                    writeln!(out, "ACK {key_number}").expect("report");
                    out.flush().expect("flush report");
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}

fn run_child_and_kill(dir: &Path, start: u64, io: IoBackend, run_for: Duration) -> Vec<u64> {
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_START, start.to_string())
        .env(
            CHILD_IO,
            if io == IoBackend::Uring {
                "uring"
            } else {
                "std"
            },
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (sender, receiver) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(number) = line
                .strip_prefix("ACK ")
                .and_then(|n| n.parse::<u64>().ok())
            {
                if sender.send(number).is_err() {
                    break;
                }
            }
        }
    });
    let deadline = Instant::now() + run_for;
    // Let the child get going before the clock starts, so every round writes something.
    let first = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("child wrote nothing in 30 s");
    let mut acknowledged = vec![first];
    while Instant::now() < deadline {
        if let Ok(number) = receiver.recv_timeout(Duration::from_millis(5)) {
            acknowledged.push(number);
        }
    }
    child.kill().expect("SIGKILL child");
    child.wait().expect("reap child");
    reader.join().expect("reader thread");
    // Lines already in the pipe were acknowledged before the kill.
    acknowledged.extend(receiver.try_iter());
    acknowledged
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let seed = common::seed(0xc4a5);
    let mut rng = StdRng::seed_from_u64(seed);
    for io in common::available_backends() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut acknowledged: BTreeMap<u64, ()> = BTreeMap::new();
        let mut start = 0u64;
        for round in 0..ROUNDS {
            let run_for = Duration::from_millis(rng.gen_range(50..400));
            let keys = run_child_and_kill(dir.path(), start, io, run_for);
            let newest = keys.iter().copied().max().unwrap_or(start);
            acknowledged.extend(keys.into_iter().map(|k| (k, ())));
            start = newest + WRITER_THREADS + 1;

            let options = common::small_options(io, SyncPolicy::Always);
            let db = Db::open(dir.path(), options).expect("reopen after SIGKILL");
            let mut missing = Vec::new();
            for &key_number in acknowledged.keys() {
                match db.get(&key_for(key_number)).expect("get after crash") {
                    Some(value) => {
                        assert_eq!(value.value, value_for(key_number), "key {key_number}")
                    }
                    None => missing.push(key_number),
                }
            }
            assert!(
                missing.is_empty(),
                "{io:?} round {round}: {} acknowledged writes lost, first {:?}",
                missing.len(),
                &missing[..missing.len().min(5)]
            );
            eprintln!(
                "{io:?} round {round}: {} acknowledged writes all present, {:?}",
                acknowledged.len(),
                db.stats()
            );
            db.close().expect("close");
        }
    }
}
