//! A run on the embedded cluster writes the one-way delays its nodes measured
//! (`measured_delays.csv`, from `LINK.STATS`), and `kvbench predict --from-run` builds the
//! WARS model from them.

use std::path::Path;
use std::process::Command;

fn kvbench(arguments: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kvbench"))
        .args(arguments)
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn a_run_writes_the_measured_delays_and_predict_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cluster.toml");
    std::fs::write(
        &config,
        "datacenters = 1\nnodes_per_datacenter = 3\nreplication = 3\nconsistency = \"QUORUM\"\n\
         inter_dc_delay = \"1\"\nworker_threads = 2\n",
    )
    .unwrap();
    let workload = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workloads/workloada");
    let results = dir.path().join("results");
    let (ok, output) = kvbench(&[
        "run",
        "-P",
        workload.to_str().unwrap(),
        "-p",
        "recordcount=200",
        "-p",
        "operationcount=0",
        "-p",
        "maxexecutiontime=2",
        "--threads",
        "1",
        "--connections",
        "2",
        "--run-name",
        "measured",
        "--local-config",
        config.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(ok, "run failed:\n{output}");
    let run = results.join("measured");
    assert!(
        output.contains("measured delays: ") && output.contains("--from-run"),
        "{output}"
    );
    let mut reader = csv::Reader::from_path(run.join("measured_delays.csv")).unwrap();
    let mut seen = std::collections::BTreeMap::<(String, String), (usize, f64)>::new();
    for record in reader.records() {
        let record = record.unwrap();
        assert_eq!(&record[1], "intra", "{record:?}");
        let ms: f64 = record[4].parse().unwrap();
        assert!((0.0..10_000.0).contains(&ms), "{record:?}");
        let entry = seen
            .entry((record[0].to_string(), record[2].to_string()))
            .or_default();
        entry.0 += 1;
        entry.1 += ms;
    }
    // At QUORUM every WARS kind crosses the links between the three nodes, and the
    // in-process nodes measure each message's transit; no link delay is configured within
    // a datacenter, so the emulator applied 0 and the transit is the machine's own.
    for kind in [
        "write_request",
        "write_ack",
        "read_request",
        "read_response",
    ] {
        for measure in ["applied", "transit"] {
            let (count, _) = seen
                .get(&(kind.to_string(), measure.to_string()))
                .unwrap_or_else(|| panic!("no {kind} {measure} in {seen:?}"));
            assert!(*count > 10, "{kind} {measure}: {count}");
        }
        let (count, sum) = seen[&(kind.to_string(), "applied".to_string())];
        assert_eq!(sum / count as f64, 0.0, "{kind}");
        let (count, sum) = seen[&(kind.to_string(), "transit".to_string())];
        assert!(sum / count as f64 > 0.0, "{kind}");
    }

    // R + W > N: never stale, whatever the delays.
    let (ok, output) = kvbench(&[
        "predict",
        "--from-run",
        run.to_str().unwrap(),
        "--n",
        "3",
        "--r",
        "2",
        "--w",
        "2",
        "--trials",
        "20000",
        "--t",
        "0",
    ]);
    assert!(ok, "{output}");
    assert!(
        output.contains("intra-datacenter replicas: write_request: transit"),
        "{output}"
    );
    assert!(output.contains("empirical("), "{output}");
    let at_zero = output
        .lines()
        .find(|line| line.trim_start().starts_with("0 "))
        .unwrap_or_else(|| panic!("{output}"));
    assert!(at_zero.contains("1.00000"), "{output}");
    // A run without the file is refused, naming it.
    let (ok, output) = kvbench(&["predict", "--from-run", dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(output.contains("measured_delays.csv"), "{output}");
}
