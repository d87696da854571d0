//! Appends per second of the commit log for each I/O backend and sync policy.
//!
//! `cargo run --release -p engine --example wal_throughput [seconds_per_case] [directory]`
//!
//! Each case appends 1 KiB records for a fixed time, from one thread and from eight.

use engine::wal::Wal;
use engine::{IoBackend, SyncPolicy, WalOptions};
use std::time::{Duration, Instant};

const PAYLOAD_BYTES: usize = 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut arguments = std::env::args().skip(1);
    let seconds: f64 = arguments.next().map_or(Ok(1.0), |text| text.parse())?;
    let base = arguments.next().map_or_else(std::env::temp_dir, Into::into);
    let duration = Duration::from_secs_f64(seconds);
    let policies = [
        SyncPolicy::None,
        SyncPolicy::Periodic { interval_ms: 1000 },
        SyncPolicy::Always,
    ];
    println!("backend  policy                    threads  appends/s");
    for io in [IoBackend::Std, IoBackend::Uring] {
        for sync in policies {
            for threads in [1usize, 8] {
                let directory = tempfile::tempdir_in(&base)?;
                let options = WalOptions {
                    io,
                    sync,
                    ..WalOptions::default()
                };
                let (wal, _, _) = match Wal::open(directory.path(), &options) {
                    Ok(opened) => opened,
                    Err(error) => {
                        println!("{io:?}: {error}");
                        break;
                    }
                };
                let appends = run(&wal, threads, duration)?;
                let syncs = wal.sync_count();
                wal.close()?;
                let rate = appends as f64 / duration.as_secs_f64();
                println!(
                    "{:<8} {:<25} {threads:>7}  {rate:>9.0}   ({appends} appends, {syncs} syncs)",
                    format!("{io:?}"),
                    format!("{sync:?}")
                );
            }
        }
    }
    Ok(())
}

fn run(wal: &Wal, threads: usize, duration: Duration) -> engine::Result<u64> {
    let payload = vec![0x5au8; PAYLOAD_BYTES];
    let deadline = Instant::now() + duration;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|thread_index| {
                let payload = &payload;
                scope.spawn(move || {
                    let mut appends = 0u64;
                    while Instant::now() < deadline {
                        let seq = (thread_index as u64) << 40 | appends;
                        wal.append(seq, payload)?;
                        appends += 1;
                    }
                    Ok(appends)
                })
            })
            .collect();
        let mut total = 0;
        for worker in workers {
            total += worker.join().expect("appender thread panicked")?;
        }
        Ok(total)
    })
}
