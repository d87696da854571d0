use super::*;
use crate::measure::{OperationKind, Outcome};

fn recorded_values(histogram: &Histogram<u64>) -> Vec<(u64, u64)> {
    histogram
        .iter_recorded()
        .map(|value| (value.value_iterated_to(), value.count_at_value()))
        .collect()
}

fn assert_same_histograms(actual: &HistogramSet, expected: &HistogramSet) {
    let actual_tagged = actual.tagged();
    let expected_tagged = expected.tagged();
    let tags = |tagged: &[(String, &Histogram<u64>)]| -> Vec<String> {
        tagged.iter().map(|(tag, _)| tag.clone()).collect()
    };
    assert_eq!(tags(&actual_tagged), tags(&expected_tagged));
    for ((tag, actual), (_, expected)) in actual_tagged.iter().zip(&expected_tagged) {
        assert_eq!(recorded_values(actual), recorded_values(expected), "{tag}");
        assert_eq!(actual.max(), expected.max(), "{tag}");
    }
}

/// A set with successes, failures, and intended latency over a wide range of values.
fn sample_set(seed: u64) -> HistogramSet {
    let mut set = HistogramSet::new();
    for step in 0..2_000u64 {
        let micros = (step * 7919 + seed * 104_729) % 3_000_000 + 1;
        let outcome = if step % 97 == 0 {
            Outcome::Timeout
        } else {
            Outcome::Ok
        };
        set.record(OperationKind::Read, outcome, micros, Some(micros + 500));
        set.record(OperationKind::Update, Outcome::Ok, micros / 3, None);
    }
    set
}

fn write_log(start_time: SystemTime, intervals: &[HistogramSet]) -> Vec<u8> {
    let mut writer = HistogramLogWriter::new(Vec::new(), start_time).unwrap();
    for (index, set) in intervals.iter().enumerate() {
        let start = Duration::from_secs(index as u64);
        writer
            .write_interval(start, start + Duration::from_secs(1), set)
            .unwrap();
    }
    writer.finish().unwrap()
}

#[test]
fn headers_and_lines_have_the_java_layout() {
    let start_time = UNIX_EPOCH + Duration::from_millis(1_441_812_279_474);
    let mut set = HistogramSet::new();
    set.record(OperationKind::Read, Outcome::Ok, 1000, Some(1500));
    let bytes = write_log(start_time, &[set]);
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(lines[0], format!("#[Logged with kvbench {version}]"));
    assert_eq!(lines[1], "#[Histogram log format version 1.3]");
    assert_eq!(
        lines[2],
        "#[StartTime: 1441812279.474 (seconds since epoch), 2015-09-09T15:24:39.474Z]"
    );
    assert_eq!(
        lines[3],
        "#[BaseTime: 1441812279.474 (seconds since epoch)]"
    );
    assert_eq!(
        lines[4],
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    );
    // V2 compressed cookie 0x1c849314 in base64 is "HISTF", as in every Java-written log.
    assert!(
        lines[5].starts_with("Tag=READ,0.000,1.000,1000.000,HISTF"),
        "{}",
        lines[5]
    );
    assert!(lines[6].starts_with("Tag=Intended-READ,0.000,1.000,1500.000,HISTF"));
    assert_eq!(lines.len(), 7);
}

#[test]
fn write_read_round_trip_gives_the_recorded_histograms() {
    let start_time = SystemTime::now();
    let intervals = [
        sample_set(1),
        sample_set(2),
        HistogramSet::new(),
        sample_set(3),
    ];
    let bytes = write_log(start_time, &intervals);

    let log = read_histogram_log(&bytes).unwrap();
    let start_millis = start_time.duration_since(UNIX_EPOCH).unwrap().as_millis();
    // The header has milliseconds, rounded.
    let logged_millis = log.start_time.unwrap().as_millis();
    assert!(
        logged_millis.abs_diff(start_millis) <= 1,
        "{logged_millis} vs {start_millis}"
    );
    assert_eq!(log.base_time, log.start_time);
    // READ, Intended-READ, READ-FAILED, Intended-READ-FAILED, UPDATE; the empty interval
    // writes no line.
    assert_eq!(log.intervals.len(), 3 * 5);
    assert_eq!(log.intervals[5].start_offset, Duration::from_secs(1));
    assert_eq!(log.intervals[5].length, Duration::from_secs(1));
    assert_eq!(log.intervals[14].start_offset, Duration::from_secs(3));

    let mut expected = HistogramSet::new();
    intervals.iter().for_each(|set| expected.add(set));
    let merged = log.merged();
    assert_same_histograms(&merged, &expected);
    // Outcome detail is not in logs: failures come back as ERROR, with the right total.
    let read = merged.kind(OperationKind::Read);
    assert_eq!(
        read.operations(),
        expected.kind(OperationKind::Read).operations()
    );
    assert_eq!(read.errors(), expected.kind(OperationKind::Read).errors());
}

#[test]
fn merging_two_processes_logs_equals_their_sum() {
    let first = write_log(SystemTime::now(), &[sample_set(10), sample_set(11)]);
    let second = write_log(SystemTime::now(), &[sample_set(20)]);
    let logs = [
        read_histogram_log(&first).unwrap(),
        read_histogram_log(&second).unwrap(),
    ];
    let mut expected = sample_set(10);
    expected.add(&sample_set(11));
    expected.add(&sample_set(20));
    assert_same_histograms(&merge_logs(&logs), &expected);
}

#[test]
fn files_round_trip_and_garbage_is_an_error() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("run.hlog");
    let file = std::fs::File::create(&path).unwrap();
    let mut writer =
        HistogramLogWriter::new(std::io::BufWriter::new(file), SystemTime::now()).unwrap();
    writer
        .write_interval(Duration::ZERO, Duration::from_secs(1), &sample_set(5))
        .unwrap();
    writer.finish().unwrap();
    assert_same_histograms(
        &read_histogram_log_file(&path).unwrap().merged(),
        &sample_set(5),
    );

    let garbage = b"Tag=READ,0.000,1.000,5.000,notbase64!\n";
    assert!(matches!(
        read_histogram_log(garbage),
        Err(Error::HistogramLog { .. })
    ));
    assert!(read_histogram_log(b"no log at all\n").is_err());
}

/// Writes a sample log to `$KVBENCH_HLOG_OUT` for checking with HdrHistogram's own readers
/// (Java's HistogramLogProcessor, HdrHistogramJS, Python's hdrh); expected totals are printed.
#[test]
#[ignore = "writes a file for external tools; run with KVBENCH_HLOG_OUT=path"]
fn write_a_log_for_external_tools() {
    let path = std::env::var("KVBENCH_HLOG_OUT").expect("KVBENCH_HLOG_OUT names the file");
    let intervals = [sample_set(1), sample_set(2)];
    std::fs::write(&path, write_log(SystemTime::now(), &intervals)).unwrap();
    let mut total = intervals[0].clone();
    total.add(&intervals[1]);
    for (tag, histogram) in total.tagged() {
        eprintln!(
            "{tag}: count {} p99 {} max {}",
            histogram.len(),
            histogram.value_at_percentile(99.0),
            histogram.max()
        );
    }
}
