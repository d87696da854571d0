use super::*;
use crate::measure::histogram_log::{read_histogram_log_file, HistogramLogWriter};
use crate::measure::{Collector, CollectorConfig, OperationKind, Outcome, RunClock};
use std::time::{Duration, SystemTime};

#[test]
fn a_run_writes_every_file_into_its_directory_without_git() {
    let root = tempfile::tempdir().unwrap();
    let start_time = SystemTime::now();
    let config = CollectorConfig {
        interval: Duration::from_secs(1),
        warmup: Duration::from_secs(1),
    };
    let mut collector = Collector::new(config, RunClock::start());
    let recorder = collector.recorder();
    let directory = ResultsDirectory::create(&root.path().join("results"), "smoke-1").unwrap();
    let log_file = std::fs::File::create(directory.histogram_log_path()).unwrap();
    let mut log = HistogramLogWriter::new(std::io::BufWriter::new(log_file), start_time).unwrap();
    let mut intervals = Vec::new();
    for second in 1..=3u64 {
        for micros in 1..=100 {
            recorder.record(OperationKind::Read, Outcome::Ok, micros * second, None);
        }
        recorder.record(OperationKind::Update, Outcome::Error, 5, None);
        let record = collector.collect_until(second * 1_000_000);
        let snapshot = &record.snapshot;
        log.write_interval(
            snapshot.start_offset,
            snapshot.end_offset,
            &record.histograms,
        )
        .unwrap();
        intervals.push(record.snapshot);
    }
    log.finish().unwrap();

    let metadata = RunMetadata::collect(
        "smoke-1",
        vec![("threads".to_string(), "1".to_string())],
        start_time,
        root.path(),
    );
    let run = collector.run_snapshot();
    let results = RunResults {
        metadata: &metadata,
        run: &run,
        totals: collector.totals(),
        intervals: &intervals,
    };
    directory.write(&results).unwrap();

    let read = |name: &str| std::fs::read_to_string(directory.path().join(name)).unwrap();
    // Warm-up second excluded: two measured seconds of 101 operations.
    let ycsb = read("ycsb.txt");
    assert!(
        ycsb.starts_with("[OVERALL], RunTime(ms), 2000\n[OVERALL], Throughput(ops/sec), 101.0\n")
    );
    assert!(ycsb.contains("[READ], Operations, 200\n"));
    assert!(ycsb.contains("[UPDATE-FAILED], Return=ERROR, 2\n"));
    assert!(read("summary.txt").contains("READ"));
    assert_eq!(read("summary.csv").lines().count(), 3);
    assert_eq!(read("intervals.csv").lines().count(), 1 + 3 * 2);
    let metadata_json: serde_json::Value = serde_json::from_str(&read("metadata.json")).unwrap();
    assert_eq!(metadata_json["git_commit"], serde_json::Value::Null);
    assert_eq!(metadata_json["config"]["threads"], "1");
    assert_eq!(metadata_json["run_name"], "smoke-1");

    // The log holds every interval, warm-up included: the totals plus the warm-up.
    let logged = read_histogram_log_file(&directory.histogram_log_path()).unwrap();
    let mut everything = collector.totals().clone();
    everything.add(collector.warmup_totals());
    let merged = logged.merged();
    for kind in [OperationKind::Read, OperationKind::Update] {
        assert_eq!(
            merged.kind(kind).operations(),
            everything.kind(kind).operations()
        );
    }
}

#[test]
fn run_names_are_single_plain_components() {
    let root = tempfile::tempdir().unwrap();
    for bad in ["", "..", ".hidden", "a/b", "a b", &"x".repeat(129)] {
        assert!(
            matches!(
                ResultsDirectory::create(root.path(), bad),
                Err(Error::InvalidRunName { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(ResultsDirectory::create(root.path(), "workload-a_1k.v2").is_ok());
}
