//! `kvbench load` then `kvbench run` of workload A against a real redis-server on a free
//! 127.0.0.1 port, through the built binary: counts, no errors, and every results file
//! written and readable.
//!
//! Needs `redis-server` (`.ci/run` installs it). Without it the test prints a notice and
//! passes, except under CI=true, where a missing server is a failure.

mod common;

use common::{kvbench, workload_a};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct RedisServer {
    child: Child,
    port: u16,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_server_binary() -> Option<PathBuf> {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return Some(PathBuf::from("redis-server"));
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("redis-server is not installed; .ci/run installs it (package redis-server)");
    }
    println!("NOTICE: redis-server is not installed; skipping (apt-get install redis-server)");
    None
}

fn start_redis(binary: &Path) -> RedisServer {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(binary)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = RedisServer { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

#[test]
fn load_and_run_workload_a() {
    let Some(binary) = redis_server_binary() else {
        return;
    };
    let server = start_redis(&binary);
    let results = tempfile::tempdir().unwrap();
    let common = |phase: &str| -> Vec<String> {
        let mut arguments: Vec<String> = [
            phase,
            "-P",
            &workload_a(),
            "-p",
            "recordcount=500",
            "-p",
            "operationcount=3000",
            "--hosts",
            &format!("127.0.0.1:{}", server.port),
            "--threads",
            "2",
            "--connections",
            "2",
            "--pipeline",
            "4",
            "--results",
            &results.path().display().to_string(),
            "--run-name",
            phase,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if phase == "run" {
            arguments.extend(["--warmup", "0"].map(String::from));
        }
        arguments
    };

    let (ok, stdout, stderr) = kvbench(&common("load"));
    assert!(ok, "load failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("[INSERT], Operations, 500\n"), "{stdout}");
    assert!(stdout.contains("[INSERT], Return=OK, 500\n"), "{stdout}");

    let (ok, stdout, stderr) = kvbench(&common("run"));
    assert!(ok, "run failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("-FAILED"), "errors in the run:\n{stdout}");
    assert!(!stdout.contains("PARTIAL"), "{stdout}");
    let count = |name: &str| -> u64 {
        let prefix = format!("[{name}], Return=OK, ");
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |count| count.trim().parse().unwrap())
    };
    assert_eq!(count("READ") + count("UPDATE"), 3000, "{stdout}");
    assert!(count("READ") > 1000 && count("UPDATE") > 1000, "{stdout}");

    let directory = results.path().join("run");
    for name in [
        "ycsb.txt",
        "summary.txt",
        "summary.csv",
        "intervals.csv",
        "metadata.json",
        "latency.hlog",
    ] {
        assert!(directory.join(name).is_file(), "missing {name}");
    }
    let metadata: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(directory.join("metadata.json")).unwrap())
            .unwrap();
    assert_eq!(metadata["config"]["status"], "complete");
    assert_eq!(metadata["config"]["target_kind"], "redis");
    let mut summary = csv::Reader::from_path(directory.join("summary.csv")).unwrap();
    let headers = summary.headers().unwrap().clone();
    let count_column = headers.iter().position(|h| h == "count").unwrap();
    let errors_column = headers.iter().position(|h| h == "errors").unwrap();
    let mut summary_total = 0;
    for record in summary.records() {
        let record = record.unwrap();
        if !record[0].starts_with("Intended-") {
            summary_total += record[count_column].parse::<u64>().unwrap();
        }
        assert_eq!(&record[errors_column], "0");
    }
    assert_eq!(summary_total, 3000);
    let log =
        loadgen::measure::histogram_log::read_histogram_log_file(&directory.join("latency.hlog"))
            .unwrap();
    assert_eq!(log.merged().operations(), 3000);
    let mut intervals = csv::Reader::from_path(directory.join("intervals.csv")).unwrap();
    assert!(intervals.records().count() >= 2);
}
