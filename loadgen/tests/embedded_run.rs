//! `kvbench run` with no `--hosts`: it starts an emulated two-datacenter cluster inside the
//! process, loads it, runs workload A against it through token-aware routing, prints the
//! YCSB summary and tears the cluster down. Also: `kvbench load` without hosts is refused,
//! and a bad `--local-config` names the field.

mod common;

use common::{
    embedded_run_arguments, kvbench, strings, workload_a, write_local_config, SMALL_CLUSTER,
};

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
    let clusters = dir.path().join("clusters");
    write_local_config(&config, &clusters, SMALL_CLUSTER);
    let results = dir.path().join("results");
    let arguments = embedded_run_arguments(
        "embedded",
        &["recordcount=300", "operationcount=2000"],
        &config,
        &results,
    );
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
