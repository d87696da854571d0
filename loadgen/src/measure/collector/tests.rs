use super::*;
use crate::measure::{OperationKind, OperationTimes, Outcome, HIGHEST_TRACKABLE_MICROS};
use std::time::Instant;

fn collector(warmup: Duration) -> Collector {
    let config = CollectorConfig {
        interval: Duration::from_secs(1),
        warmup,
    };
    Collector::new(config, RunClock::start())
}

#[test]
fn known_inputs_give_exact_counts_and_percentiles() {
    let mut collector = collector(Duration::ZERO);
    let recorder = collector.recorder();
    // Below 2048 µs a 3-digit histogram has unit resolution: these figures are exact.
    for micros in 1..=1000 {
        recorder.record(OperationKind::Read, Outcome::Ok, micros, None);
    }
    // Large values: within 0.1%.
    for _ in 0..10 {
        recorder.record(OperationKind::Update, Outcome::Ok, 1_234_567, None);
    }
    recorder.record(OperationKind::Update, Outcome::Timeout, 5_000_000, None);
    let record = collector.collect_until(1_000_000);
    let read = &record.snapshot.kinds[0];
    assert_eq!(read.kind, OperationKind::Read);
    assert_eq!((read.count, read.errors), (1000, 0));
    assert_eq!(read.throughput_per_second, 1000.0);
    let service = read.service;
    assert_eq!(service.count, 1000);
    assert_eq!(service.min_micros, 1);
    assert_eq!(service.p50_micros, 500);
    assert_eq!(service.p90_micros, 900);
    assert_eq!(service.p99_micros, 990);
    // HdrHistogram rounds the rank to the nearest sample (0.999 * 1000 + 0.5), as Java does.
    assert_eq!(service.p999_micros, 1000);
    assert_eq!(service.max_micros, 1000);
    assert!((service.mean_micros - 500.5).abs() < 1e-9);
    assert_eq!(read.intended, None);

    let update = &record.snapshot.kinds[1];
    assert_eq!((update.count, update.errors), (11, 1));
    // The timeout's 5 s is in the failed histogram, not in the tail of the successes.
    assert_eq!(update.service.count, 10);
    let p99 = update.service.p99_micros as f64;
    assert!((p99 - 1_234_567.0).abs() / 1_234_567.0 < 0.001, "{p99}");
    let failed = &collector
        .totals()
        .kind(OperationKind::Update)
        .failed_service;
    assert_eq!(failed.len(), 1);
    assert_eq!(record.snapshot.count(), 1011);
    assert_eq!(collector.totals().operations(), 1011);
}

#[test]
fn latencies_above_an_hour_are_clamped() {
    let mut collector = collector(Duration::ZERO);
    let recorder = collector.recorder();
    recorder.record(OperationKind::Read, Outcome::Ok, u64::MAX, None);
    let record = collector.collect_until(1_000_000);
    let max = record.snapshot.kinds[0].service.max_micros as f64;
    let hour = HIGHEST_TRACKABLE_MICROS as f64;
    assert!((max - hour).abs() / hour < 0.001, "{max}");
}

#[test]
fn warmup_samples_are_counted_apart() {
    let mut collector = collector(Duration::from_millis(1500));
    let recorder = collector.recorder();
    // The warm-up end cuts the second interval short so that none straddles it.
    assert_eq!(collector.next_cut_micros(), 1_000_000);
    recorder.record(OperationKind::Read, Outcome::Ok, 100_000, None);
    let first = collector.collect_until(collector.next_cut_micros());
    assert!(first.snapshot.warmup);
    assert_eq!(collector.next_cut_micros(), 1_500_000);
    recorder.record(OperationKind::Read, Outcome::Ok, 100_000, None);
    let second = collector.collect_until(collector.next_cut_micros());
    assert!(second.snapshot.warmup);
    assert_eq!(collector.next_cut_micros(), 2_500_000);
    for _ in 0..3 {
        recorder.record(OperationKind::Read, Outcome::Ok, 10, None);
    }
    let third = collector.collect_until(collector.next_cut_micros());
    assert!(!third.snapshot.warmup);
    assert_eq!(third.snapshot.count(), 3);

    assert_eq!(collector.warmup_totals().operations(), 2);
    assert_eq!(collector.totals().operations(), 3);
    let run = collector.run_snapshot();
    assert_eq!(run.start_offset, Duration::from_millis(1500));
    assert_eq!(run.end_offset, Duration::from_millis(2500));
    assert_eq!(run.kinds[0].count, 3);
    // The slow warm-up samples are nowhere in the totals.
    assert_eq!(run.kinds[0].service.max_micros, 10);
    assert_eq!(run.kinds[0].throughput_per_second, 3.0);
}

/// An open-loop schedule of one request per millisecond, where the server stalls for 100 ms
/// on the 10th request: the requests scheduled during the stall are sent late. Their service
/// time is short, but their intended latency includes the wait.
#[test]
fn intended_latency_includes_the_stall_and_service_latency_does_not() {
    let mut collector = collector(Duration::ZERO);
    let recorder = collector.recorder();
    let service_micros = 50;
    let mut free_at = 0;
    for request in 0..200u64 {
        let intended_start = request * 1000;
        let start = intended_start.max(free_at);
        let duration = if request == 10 {
            100_000
        } else {
            service_micros
        };
        let times = OperationTimes {
            intended_start_micros: Some(intended_start),
            start_micros: start,
            end_micros: start + duration,
        };
        free_at = times.end_micros;
        recorder.record_times(OperationKind::Read, Outcome::Ok, times);
    }
    let record = collector.collect_until(1_000_000);
    let read = &record.snapshot.kinds[0];
    let intended = read.intended.expect("open loop records intended latency");
    assert_eq!(read.service.count, 200);
    assert_eq!(intended.count, 200);
    // Only one request was slow to serve: the service p99 is that of a fast one...
    assert_eq!(read.service.p99_micros, service_micros);
    assert_eq!(read.service.max_micros, 100_031); // 100 ms within 3 significant digits
                                                  // ...but ~100 requests waited behind it, so the intended median already shows the stall.
    assert!(intended.p50_micros > 5_000, "{intended:?}");
    assert!(intended.p90_micros > 50_000, "{intended:?}");
    assert!(intended.max_micros >= 100_000);
}

#[test]
fn interval_swap_loses_no_samples_under_concurrent_recording() {
    let mut collector = collector(Duration::ZERO);
    let threads = 4;
    let records_per_thread = 200_000u64;
    // Workers wait for a cut every `records_per_round`, so that cuts happen during recording
    // however the two cores are shared; between those waits the swaps race the records.
    let records_per_round = 20_000u64;
    let cuts_done = std::sync::atomic::AtomicU64::new(0);
    let recorders: Vec<_> = (0..threads).map(|_| collector.recorder()).collect();
    let mut interval_counts = 0;
    std::thread::scope(|scope| {
        let workers: Vec<_> = recorders
            .into_iter()
            .enumerate()
            .map(|(thread, recorder)| {
                let cuts_done = &cuts_done;
                scope.spawn(move || {
                    let kind = OperationKind::ALL[thread % OperationKind::COUNT];
                    for value in 0..records_per_thread {
                        if value % records_per_round == 0 {
                            let round = value / records_per_round;
                            while cuts_done.load(Ordering::Acquire) < round {
                                std::thread::yield_now();
                            }
                        }
                        let outcome = Outcome::ALL[value as usize % Outcome::COUNT];
                        // Ended within the interval being filled (the cuts here are not
                        // on the run clock): only the swaps race the records.
                        let ended = cuts_done.load(Ordering::Acquire);
                        recorder.record_ended_at(
                            ended,
                            kind,
                            outcome,
                            value % 5000,
                            Some(value % 7000),
                        );
                    }
                })
            })
            .collect();
        let mut cut = 0;
        while workers.iter().any(|worker| !worker.is_finished()) {
            cut += 1;
            interval_counts += collector.collect_until(cut).snapshot.count();
            cuts_done.store(cut, Ordering::Release);
        }
        interval_counts += collector.collect_until(cut + 1).snapshot.count();
    });
    assert!(cuts_done.load(Ordering::Acquire) >= records_per_thread / records_per_round);
    let expected = threads as u64 * records_per_thread;
    assert_eq!(interval_counts, expected);
    assert_eq!(collector.totals().operations(), expected);
    let intended: u64 = OperationKind::ALL
        .into_iter()
        .map(|kind| {
            let histograms = collector.totals().kind(kind);
            histograms.intended.len() + histograms.failed_intended.len()
        })
        .sum();
    assert_eq!(intended, expected);
}

#[test]
fn run_cuts_on_schedule_and_stops() {
    let config = CollectorConfig {
        interval: Duration::from_millis(30),
        warmup: Duration::ZERO,
    };
    let mut collector = Collector::new(config, RunClock::start());
    let recorder = collector.recorder();
    let stop = AtomicBool::new(false);
    let mut snapshots = Vec::new();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..10 {
                recorder.record(OperationKind::Insert, Outcome::Ok, 7, None);
                std::thread::sleep(Duration::from_millis(10));
            }
            stop.store(true, Ordering::Release);
        });
        collector.run(&stop, |record| snapshots.push(record.snapshot.clone()));
    });
    assert!(snapshots.len() >= 2, "{snapshots:?}");
    let total: u64 = snapshots.iter().map(IntervalSnapshot::count).sum();
    assert_eq!(total, 10);
    for pair in snapshots.windows(2) {
        assert_eq!(pair[0].end_offset, pair[1].start_offset);
    }
}

/// Recording must stay cheap enough not to distort what it measures. Prints the cost; the
/// bound is loose because this runs unoptimized and on shared cores.
#[test]
fn record_cost_stays_small() {
    let collector = collector(Duration::ZERO);
    let recorder = collector.recorder();
    let records = 200_000u64;
    let started = Instant::now();
    for value in 0..records {
        recorder.record(
            OperationKind::Read,
            Outcome::Ok,
            value & 0xfff,
            Some(value & 0x1fff),
        );
    }
    let nanos_per_record = started.elapsed().as_nanos() as f64 / records as f64;
    eprintln!("record cost: {nanos_per_record:.0} ns per record (debug build)");
    assert!(
        nanos_per_record < 5_000.0,
        "{nanos_per_record} ns per record"
    );
}

/// The collector wakes a little after each boundary: an operation that ended after the
/// boundary but was recorded before the cut belongs to the next interval, an error (a burst
/// of them right after a node is killed on a boundary) as much as a success.
#[test]
fn operations_are_filed_by_end_time_not_by_when_the_collector_cuts() {
    let mut collector = collector(Duration::ZERO);
    let recorder = collector.recorder();
    let (read, ok, error) = (OperationKind::Read, Outcome::Ok, Outcome::Error);
    recorder.record_ended_at(999_999, read, ok, 10, None);
    recorder.record_ended_at(999_999, read, error, 10, None);
    // Ended at or after the first boundary, recorded before the collector cut at it.
    recorder.record_ended_at(1_000_000, read, error, 20, None);
    recorder.record_ended_at(1_000_001, read, ok, 20, None);
    recorder.record_times(
        read,
        error,
        OperationTimes {
            intended_start_micros: None,
            start_micros: 900_000,
            end_micros: 1_500_000,
        },
    );
    let first = collector.collect_until(1_000_000).snapshot;
    assert_eq!((first.count(), first.errors()), (2, 1), "{first:?}");
    recorder.record_ended_at(1_999_999, read, ok, 30, None);
    let second = collector.collect_until(2_000_000).snapshot;
    assert_eq!((second.count(), second.errors()), (4, 2), "{second:?}");
    // The last cut, at a stop after the scheduled boundary, takes what ended since.
    recorder.record_ended_at(2_100_000, read, error, 40, None);
    recorder.record_ended_at(3_100_000, read, ok, 40, None);
    let last = collector.collect_until(3_200_000).snapshot;
    assert_eq!((last.count(), last.errors()), (2, 1), "{last:?}");
    assert_eq!(collector.totals().operations(), 8);
}
