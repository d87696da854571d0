use super::*;
use crate::measure::{HistogramSet, IntervalSnapshot, OperationKind, Outcome};
use crate::report::csv_files::write_summary_csv;
use std::time::Duration;

const HEADER: &str =
    "op,count,errors,throughput_ops_per_second,mean_us,p50_us,p90_us,p99_us,p999_us,max_us";

fn table(rows: &[&str]) -> SummaryTable {
    table_with(HEADER, rows)
}

fn table_with(header: &str, rows: &[&str]) -> SummaryTable {
    let text = std::iter::once(header)
        .chain(rows.iter().copied())
        .collect::<Vec<_>>()
        .join("\n");
    parse_summary(text.as_bytes()).unwrap()
}

const READ: &str = "READ,10000,0,5000.000,200.000,180,300,900,2000,5000";
const UPDATE: &str = "UPDATE,10000,10,5000.000,400.000,350,600,1500,3000,9000";

fn statuses(comparison: &Comparison, label: &str) -> Vec<(Metric, Status)> {
    comparison
        .rows
        .iter()
        .find(|row| row.label == label)
        .unwrap()
        .metrics
        .iter()
        .map(|m| (m.metric, m.status))
        .collect()
}

#[test]
fn an_equal_run_passes() {
    let baseline = table(&[READ, UPDATE]);
    let comparison = compare(&baseline, &baseline.clone(), &CompareOptions::default());
    assert_eq!(comparison.regressions(), 0);
    assert!(comparison.missing.is_empty() && comparison.added.is_empty());
    let text = render(&comparison, "a.csv", "b.csv");
    assert!(
        text.contains("result: no regression (2 rows compared)"),
        "{text}"
    );
    assert!(!text.contains("REGRESSION"), "{text}");
}

#[test]
fn a_planted_regression_is_flagged() {
    let baseline = table(&[READ, UPDATE]);
    // READ: p99 doubled; UPDATE: throughput down 30% and 4.2 points more errors; noise within
    // tolerance elsewhere (p50 +10%).
    let candidate = table(&[
        "READ,10000,0,4900.000,210.000,198,310,1800,2100,5200",
        "UPDATE,7000,300,3500.000,410.000,360,610,1600,3100,9100",
    ]);
    let comparison = compare(&baseline, &candidate, &CompareOptions::default());
    let read = statuses(&comparison, "READ");
    assert!(read.contains(&(Metric::P99, Status::Regression)));
    assert!(read.contains(&(Metric::P50, Status::Ok)));
    assert!(read.contains(&(Metric::Throughput, Status::Ok)));
    assert!(read.contains(&(Metric::Max, Status::NotChecked)));
    let update = statuses(&comparison, "UPDATE");
    assert!(update.contains(&(Metric::Throughput, Status::Regression)));
    assert!(update.contains(&(Metric::ErrorRate, Status::Regression)));
    assert_eq!(comparison.regressions(), 3);
    let text = render(&comparison, "base.csv", "cand.csv");
    assert!(text.contains("result: 3 regression(s)"), "{text}");
    let p99_line = text
        .lines()
        .find(|l| l.starts_with("READ") && l.contains("p99_us"))
        .unwrap();
    assert!(
        p99_line.contains("+100.0%") && p99_line.ends_with("REGRESSION"),
        "{p99_line}"
    );
    // Loosening the tolerances that fired lets it pass.
    let mut options = CompareOptions::default();
    for spec in ["p99=150%", "throughput=0.4", "error_rate=5pp"] {
        options.tolerances.apply(spec).unwrap();
    }
    assert_eq!(compare(&baseline, &candidate, &options).regressions(), 0);
}

#[test]
fn improvements_and_the_latency_floor() {
    let baseline = table(&["READ,1000,0,100.000,20.000,20,30,40,50,60"]);
    let candidate = table(&["READ,1000,0,200.000,10.000,10,45,40,50,60"]);
    let read = statuses(
        &compare(&baseline, &candidate, &CompareOptions::default()),
        "READ",
    );
    assert!(read.contains(&(Metric::Throughput, Status::Better)));
    assert!(read.contains(&(Metric::P50, Status::Better)));
    assert!(read.contains(&(Metric::P90, Status::Regression)));
    // p90 rose by 15 us: under a 20 us floor it is noise.
    let options = CompareOptions {
        latency_floor_us: 20.0,
        ..CompareOptions::default()
    };
    assert_eq!(compare(&baseline, &candidate, &options).regressions(), 0);
}

#[test]
fn a_missing_op_type_is_reported_as_a_regression() {
    let baseline = table(&[READ, UPDATE]);
    let candidate = table(&[READ, "SCAN,100,0,10.000,1000.000,900,1500,3000,4000,5000"]);
    let comparison = compare(&baseline, &candidate, &CompareOptions::default());
    assert_eq!(comparison.missing, vec!["UPDATE".to_string()]);
    assert_eq!(comparison.added, vec!["SCAN".to_string()]);
    assert_eq!(comparison.regressions(), 1);
    let text = render(&comparison, "b", "c");
    assert!(
        text.contains("REGRESSION: UPDATE is in the baseline but missing from the candidate"),
        "{text}"
    );
    assert!(
        text.contains("new: SCAN is in the candidate only"),
        "{text}"
    );
}

#[test]
fn rows_match_on_shared_config_columns() {
    let header = format!("{HEADER},workload,target,git_commit");
    let baseline = table_with(
        &header,
        &[
            "READ,100,0,50.000,200.000,180,300,900,2000,5000,a,1000,abc",
            "READ,100,0,90.000,200.000,180,300,900,2000,5000,b,1000,abc",
        ],
    );
    // Rows in another order, another commit; workload b's throughput fell.
    let candidate = table_with(
        &header,
        &[
            "READ,100,0,50.000,200.000,180,300,900,2000,5000,b,1000,def",
            "READ,100,0,50.000,200.000,180,300,900,2000,5000,a,1000,def",
        ],
    );
    let comparison = compare(&baseline, &candidate, &CompareOptions::default());
    assert_eq!(comparison.match_columns, vec!["workload", "target"]);
    assert!(statuses(&comparison, "READ workload=a").contains(&(Metric::Throughput, Status::Ok)));
    assert!(statuses(&comparison, "READ workload=b")
        .contains(&(Metric::Throughput, Status::Regression)));
    // A column in one file only is noted and not matched on.
    let narrow = table_with(
        &format!("{HEADER},workload"),
        &["READ,100,0,50.000,200.000,180,300,900,2000,5000,a"],
    );
    let comparison = compare(&narrow, &candidate, &CompareOptions::default());
    assert!(comparison
        .notes
        .iter()
        .any(|n| n.contains("'target' is only in the candidate")));
}

#[test]
fn reads_what_the_report_writes() {
    let mut set = HistogramSet::new();
    for micros in [100, 200, 300, 400] {
        set.record(
            OperationKind::Read,
            Outcome::Ok,
            micros,
            Some(micros + 1000),
        );
    }
    set.record(OperationKind::Read, Outcome::Timeout, 9000, Some(9000));
    let snapshot = IntervalSnapshot::of(&set, Duration::ZERO, Duration::from_secs(2), false);
    let mut out = Vec::new();
    let config = [("workload".to_string(), "a".to_string())];
    write_summary_csv(&mut out, &snapshot, &config).unwrap();
    let summary = parse_summary(&out).unwrap();
    assert_eq!(summary.config_columns, vec!["workload"]);
    assert_eq!(summary.rows.len(), 2);
    assert_eq!(
        (
            summary.rows[0].op.as_str(),
            summary.rows[0].count,
            summary.rows[0].errors
        ),
        ("READ", 5, 1)
    );
    assert_eq!(summary.rows[1].op, "Intended-READ");
    assert!((Metric::ErrorRate.value(&summary.rows[0]) - 20.0).abs() < 1e-9);
    assert_eq!(
        compare(&summary, &summary, &CompareOptions::default()).regressions(),
        0
    );
}

#[test]
fn bad_input_is_named() {
    let error = |text: &str| parse_summary(text.as_bytes()).unwrap_err();
    assert!(error("").contains("first column"));
    assert!(error("kind,count\nREAD,1").contains("first column must be 'op'"));
    assert!(error("op,count,errors\nREAD,1,0").contains("'throughput_ops_per_second' is missing"));
    assert!(error(HEADER).contains("no rows"));
    let bad_number = format!("{HEADER}\nREAD,10,0,x,1,1,1,1,1,1");
    assert!(
        error(&bad_number).contains("column 'throughput_ops_per_second': 'x'"),
        "{}",
        error(&bad_number)
    );
    let too_many_errors = format!("{HEADER}\nREAD,10,11,1,1,1,1,1,1,1");
    assert!(error(&too_many_errors).contains("exceed count"));
    let duplicate = format!("{HEADER}\n{READ}\n{READ}");
    assert!(error(&duplicate).contains("second 'READ' row"));
    // Concatenated summaries repeat the header: it is skipped.
    let concatenated = format!("{HEADER}\n{READ}\n{HEADER}\n{UPDATE}");
    assert_eq!(
        parse_summary(concatenated.as_bytes()).unwrap().rows.len(),
        2
    );
    let missing = read_summary(std::path::Path::new("/nonexistent/summary.csv")).unwrap_err();
    assert_eq!(missing.exit_code(), 2);
    assert!(missing
        .to_string()
        .starts_with("/nonexistent/summary.csv: cannot read"));
}

#[test]
fn tolerance_specs_parse() {
    let mut tolerances = Tolerances::default();
    tolerances.apply("p99.9=60%").unwrap();
    tolerances.apply("errors=0.5pp").unwrap();
    tolerances.apply("max=off").unwrap();
    tolerances.apply("mean=0.1").unwrap();
    assert_eq!(tolerances.get(Metric::P999), Some(0.6));
    assert_eq!(tolerances.get(Metric::ErrorRate), Some(0.5));
    assert_eq!(tolerances.get(Metric::Max), None);
    assert_eq!(tolerances.get(Metric::Mean), Some(0.1));
    for bad in [
        "p99",
        "p42=1",
        "p99=x",
        "p99=-1",
        "error_rate=5%",
        "p50=3pp",
    ] {
        let error = tolerances.apply(bad).unwrap_err().to_string();
        assert!(error.starts_with("--tolerance: "), "{bad}: {error}");
    }
    assert!(Tolerances::default()
        .describe()
        .contains("throughput -15%, mean +20%"));
}

#[test]
fn rows_of_runs_on_different_hosts_still_match() {
    let header = format!("{HEADER},hosts,cell");
    let baseline = table_with(
        &header,
        &[
            &format!("{READ},127.0.1.1:7379,a"),
            &format!("{READ},127.0.1.1:7379,b"),
        ],
    );
    let candidate = table_with(
        &header,
        &[
            &format!("{READ},127.0.9.1:7379,a"),
            "READ,10000,0,5000.000,200.000,180,300,9000,20000,50000,127.0.9.1:7379,b",
        ],
    );
    let comparison = compare(&baseline, &candidate, &CompareOptions::default());
    assert!(comparison.missing.is_empty() && comparison.added.is_empty());
    // Matched by cell, so cell b's planted tail regression (p99 and p99.9 up tenfold) is
    // found, and cell a's equal row adds none.
    assert_eq!(comparison.regressions(), 2);
}
