//! `kvbench run` with no `--hosts`: it starts an emulated two-datacenter cluster inside the
//! process, loads it, runs workload A against it through token-aware routing, prints the
//! YCSB summary and tears the cluster down. Also: `kvbench load` without hosts is refused,
//! and a bad `--local-config` names the field.

use std::path::Path;
use std::process::Command;

fn kvbench(arguments: &[String]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kvbench"))
        .args(arguments)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn workload_a() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../workloads/workloada")
        .display()
        .to_string()
}

fn count(stdout: &str, name: &str) -> u64 {
    let prefix = format!("[{name}], Return=OK, ");
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |count| count.trim().parse().unwrap())
}

#[test]
fn run_without_hosts_uses_an_embedded_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("local.toml");
    // Small and quick: 2 x 2 nodes, N = 3 as {dc1 = 2, dc2 = 1}, 5 ms between datacenters.
    let clusters = dir.path().join("clusters");
    std::fs::create_dir(&clusters).unwrap();
    std::fs::write(
        &config,
        format!(
            "datacenters = 2\nnodes_per_datacenter = 2\nreplication = {{ dc1 = 2, dc2 = 1 }}\n\
         inter_dc_delay = \"5\"\nworker_threads = 2\nparent_dir = {:?}\n",
            clusters.display().to_string()
        ),
    )
    .unwrap();
    let results = dir.path().join("results");
    let mut arguments = strings(&[
        "run",
        "-P",
        &workload_a(),
        "-p",
        "recordcount=300",
        "-p",
        "operationcount=2000",
        "--threads",
        "1",
        "--connections",
        "4",
        "--run-name",
        "embedded",
    ]);
    arguments.extend(strings(&[
        "--local-config",
        &config.display().to_string(),
        "--results",
        &results.display().to_string(),
    ]));
    let (ok, stdout, stderr) = kvbench(&arguments);
    assert!(ok, "run failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("embedded cluster: 2 datacenters x 2 nodes"),
        "{stdout}"
    );
    assert!(stdout.contains("routing token-aware:dc1"), "{stdout}");
    assert!(stdout.contains("[INSERT], Return=OK, 300\n"), "{stdout}");
    assert!(!stdout.contains("-FAILED"), "errors in the run:\n{stdout}");
    assert!(!stdout.contains("PARTIAL"), "{stdout}");
    assert_eq!(count(&stdout, "READ") + count(&stdout, "UPDATE"), 2000);
    // Workload A reads keys it loaded: none may be missing.
    assert!(!stdout.contains("Return=NOT_FOUND"), "{stdout}");
    let metadata: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(results.join("embedded").join("metadata.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(metadata["config"]["status"], "complete");
    assert_eq!(metadata["config"]["target_kind"], "kvnode");
    assert!(results.join("embedded-load").join("summary.csv").is_file());
    // The cluster's temporary data directory is gone.
    let left: Vec<_> = std::fs::read_dir(&clusters).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn load_without_hosts_is_refused() {
    let (ok, stdout, stderr) = kvbench(&strings(&["load", "-P", &workload_a()]));
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("without --hosts"), "{stderr}");
}

#[test]
fn a_bad_local_config_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("local.toml");
    std::fs::write(&config, "datacenters = 0\n").unwrap();
    let (ok, stdout, stderr) = kvbench(&strings(&[
        "run",
        "-P",
        &workload_a(),
        "--local-config",
        &config.display().to_string(),
        "--results",
        &dir.path().display().to_string(),
    ]));
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("datacenters"), "{stderr}");
    std::fs::write(&config, "nodes = 3\n").unwrap();
    let (ok, _, stderr) = kvbench(&strings(&[
        "run",
        "-P",
        &workload_a(),
        "--local-config",
        &config.display().to_string(),
    ]));
    assert!(!ok);
    assert!(stderr.contains("nodes"), "{stderr}");
}
