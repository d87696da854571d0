//! `kvbench run --staleness` without `--hosts`: the embedded cluster (2 datacenters x 2
//! nodes, N = 3 as {dc1 = 2, dc2 = 1}, 20 ms between datacenters) is loaded and run with
//! stamped values; the output has the staleness section with reads classified, and
//! `staleness.csv` parses. With QUORUM (R = W = 2, R + W > N, and no flag: an embedded run
//! measures staleness by default) no read may be stale.
//! Also: a workload whose values cannot hold the stamp is refused with a clear error.

mod common;

use common::{embedded_run_arguments, kvbench, named_local_config, workload_a};
use std::path::{Path, PathBuf};

/// Runs workload A with `--staleness` on an embedded cluster of the given consistency
/// (a TOML value); returns (stdout, the run's results directory).
fn staleness_run(dir: &Path, name: &str, consistency: &str, flag: bool) -> (String, PathBuf) {
    let (config, _) = named_local_config(
        dir,
        name,
        &format!(
            "datacenters = 2\nnodes_per_datacenter = 2\nreplication = {{ dc1 = 2, dc2 = 1 }}\n\
             consistency = {consistency}\ninter_dc_delay = \"20\"\n"
        ),
    );
    let results = dir.join("results");
    let mut arguments = embedded_run_arguments(
        name,
        &["recordcount=200", "operationcount=2000"],
        &config,
        &results,
    );
    if flag {
        arguments.push("--staleness".to_string());
    }
    let (ok, stdout, stderr) = kvbench(&arguments);
    assert!(ok, "run failed:\n{stdout}\n{stderr}");
    (stdout, results.join(name))
}

/// `(reads checked, stale reads)` from the `staleness: N reads checked, M stale` line.
fn checked_and_stale(stdout: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|line| line.starts_with("staleness: "))
        .unwrap_or_else(|| panic!("no staleness line in:\n{stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[1].parse().unwrap(), words[4].parse().unwrap())
}

/// Parses staleness.csv: every row has the header's fields; returns the total row's
/// (reads, fresh fraction, stale reads) and the visibility rows' read sum.
fn parse_csv(path: &Path) -> ((u64, f64, u64), u64) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "row");
    let mut total = None;
    let mut visibility_reads = 0;
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), header.len(), "{line}");
        match fields[0] {
            "visibility" => {
                let reads: u64 = fields[4].parse().unwrap();
                let seen: u64 = fields[5].parse().unwrap();
                let fresh: f64 = fields[6].parse().unwrap();
                assert!(seen <= reads && (0.0..=1.0).contains(&fresh), "{line}");
                visibility_reads += reads;
            }
            "k" => {
                let _: u64 = fields[7].parse().unwrap();
                let _: u64 = fields[8].parse().unwrap();
            }
            "total" => {
                total = Some((
                    fields[4].parse().unwrap(),
                    fields[6].parse().unwrap(),
                    fields[8].parse().unwrap(),
                ));
            }
            other => panic!("unknown row kind {other:?} in {line}"),
        }
    }
    (total.expect("a total row"), visibility_reads)
}

#[test]
fn staleness_is_measured_and_quorum_reads_are_never_stale() {
    let dir = tempfile::tempdir().unwrap();

    // R = W = 1: reads may be stale; the section is there and reads are classified.
    let (stdout, run) = staleness_run(
        dir.path(),
        "one",
        "{ COUNTS = { read = 1, write = 1 } }",
        true,
    );
    let ycsb_end = stdout.find("[UPDATE], Return=OK").expect("YCSB summary");
    let section = stdout.find("staleness: ").expect("staleness section");
    assert!(section > ycsb_end, "{stdout}");
    assert!(stdout.contains("P(consistent)"), "{stdout}");
    let (checked, stale) = checked_and_stale(&stdout);
    assert!(checked > 0, "no read classified:\n{stdout}");
    let ((reads, fresh, stale_in_csv), visibility_reads) = parse_csv(&run.join("staleness.csv"));
    assert_eq!((reads, stale_in_csv), (checked, stale));
    assert!((fresh - (1.0 - stale as f64 / checked as f64)).abs() < 1e-5);
    assert!(visibility_reads > 0);

    // QUORUM: R + W > N, so every read sees every write acknowledged before it began.
    // Without the flag: an embedded run measures staleness by default.
    let (stdout, run) = staleness_run(dir.path(), "quorum", "\"QUORUM\"", false);
    assert!(stdout.contains("; staleness measured"), "{stdout}");
    let (checked, stale) = checked_and_stale(&stdout);
    assert!(checked > 0, "no read classified:\n{stdout}");
    assert_eq!(stale, 0, "stale reads under QUORUM:\n{stdout}");
    let ((_, fresh, _), _) = parse_csv(&run.join("staleness.csv"));
    assert_eq!(fresh, 1.0);
}

#[test]
fn values_too_short_for_the_stamp_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    // With hosts (nothing listens on port 1: the check comes first) and without (the
    // embedded cluster is not started).
    for hosts in [&["--hosts", "127.0.0.1:1"][..], &[]] {
        let mut arguments: Vec<String> = [
            "run",
            "--staleness",
            "-P",
            &workload_a(),
            "-p",
            "fieldlength=16",
            "--results",
            &results.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        arguments.extend(hosts.iter().map(|s| s.to_string()));
        let (ok, stdout, stderr) = kvbench(&arguments);
        assert!(!ok, "{stdout}");
        assert!(
            stderr.contains("fieldlength >= 32") && stderr.contains("fieldlength=16"),
            "{stderr}"
        );
        assert!(!results.exists(), "a results directory was created");
    }
}
