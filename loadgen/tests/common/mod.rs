//! Helpers shared by the tests that run the built `kvbench` binary.
//!
//! Each test file compiles this module on its own and uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the built `kvbench` with `arguments`; returns (success, stdout, stderr).
pub fn kvbench(arguments: &[String]) -> (bool, String, String) {
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

/// The arguments as owned strings, the form `kvbench` takes.
pub fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The path of YCSB's workload A in the repository's `workloads/`.
pub fn workload_a() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../workloads/workloada")
        .display()
        .to_string()
}

/// Writes the embedded-cluster config `config`: `cluster_toml` (whole lines), then
/// `worker_threads = 2` and a `parent_dir` of `clusters`, which it creates (if it is not
/// there yet).
pub fn write_local_config(config: &Path, clusters: &Path, cluster_toml: &str) {
    std::fs::create_dir_all(clusters).unwrap();
    std::fs::write(
        config,
        format!(
            "{cluster_toml}worker_threads = 2\nparent_dir = {:?}\n",
            clusters.display().to_string()
        ),
    )
    .unwrap();
}

/// Small and quick: 2 x 2 nodes, N = 3 as {dc1 = 2, dc2 = 1}, 5 ms between datacenters.
pub const SMALL_CLUSTER: &str = "datacenters = 2\nnodes_per_datacenter = 2\n\
    replication = { dc1 = 2, dc2 = 1 }\ninter_dc_delay = \"5\"\n";

/// Writes `{name}.toml` in `dir` describing an embedded cluster (`cluster_toml`) whose nodes
/// keep their data under `dir/clusters-{name}`; returns (config path, clusters directory).
pub fn named_local_config(dir: &Path, name: &str, cluster_toml: &str) -> (PathBuf, PathBuf) {
    let clusters = dir.join(format!("clusters-{name}"));
    let config = dir.join(format!("{name}.toml"));
    write_local_config(&config, &clusters, cluster_toml);
    (config, clusters)
}

/// The arguments of a `kvbench run` of workload A with 1 thread and 4 connections, named
/// `name`, on the embedded cluster of `config`, writing under `results`; `properties` are
/// `-p` overrides (`recordcount=300`, ...).
pub fn embedded_run_arguments(
    name: &str,
    properties: &[&str],
    config: &Path,
    results: &Path,
) -> Vec<String> {
    let mut arguments = strings(&["run", "-P", &workload_a()]);
    for property in properties {
        arguments.extend(strings(&["-p", property]));
    }
    arguments.extend(strings(&[
        "--threads",
        "1",
        "--connections",
        "4",
        "--run-name",
        name,
        "--local-config",
        &config.display().to_string(),
        "--results",
        &results.display().to_string(),
    ]));
    arguments
}
