//! `kvbench sweep` end to end on small embedded clusters: interrupted with SIGINT after its
//! first cell, then run again, it skips what was finished, completes the rest, prints the
//! trade-off table and writes the report.

mod common;

use common::{workload_a, write_local_config, SMALL_CLUSTER};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sweep_command(dir: &Path) -> Command {
    let config = dir.join("local.toml");
    write_local_config(&config, &dir.join("clusters"), SMALL_CLUSTER);
    let mut command = Command::new(env!("CARGO_BIN_EXE_kvbench"));
    command.args([
        "sweep",
        "--consistency",
        "ONE,QUORUM,ALL",
        "--results",
        &dir.join("results").display().to_string(),
        "--name",
        "s",
        "--",
        "-P",
        &workload_a(),
        "-p",
        "recordcount=200",
        "-p",
        "operationcount=800",
        "--threads",
        "1",
        "--connections",
        "4",
        "--local-config",
        &config.display().to_string(),
    ]);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

fn complete_rows(csv: &Path) -> usize {
    std::fs::read_to_string(csv)
        .map(|text| text.lines().filter(|l| l.contains(",complete,")).count())
        .unwrap_or(0)
}

#[test]
fn an_interrupted_sweep_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("results/s/sweep.csv");
    let mut child = sweep_command(dir.path()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    while complete_rows(&csv) == 0 && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Ctrl-C: the running cell stops, nothing is recorded for it, the sweep ends.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let first = child.wait_with_output().unwrap();
    let first_stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    let finished = complete_rows(&csv);
    eprintln!("the first attempt finished {finished} of 3 cells");
    assert!(
        finished >= 1,
        "{first_stdout}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    if finished < 3 {
        assert!(!first.status.success(), "an interrupted sweep fails");
        assert!(first_stdout.contains("interrupted"), "{first_stdout}");
    }

    let second = sweep_command(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&second.stdout);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{} finished earlier", finished)),
        "{stdout}"
    );
    assert_eq!(complete_rows(&csv), 3, "{stdout}");
    for level in ["ONE", "QUORUM", "ALL"] {
        assert!(
            stdout.lines().any(|line| line.starts_with(level)),
            "{level} in {stdout}"
        );
    }
    let index = dir.path().join("results/s/report/index.html");
    let html = std::fs::read_to_string(&index).unwrap();
    assert!(html.contains("<tr><td>QUORUM</td><td>READ</td>"), "{html}");
    assert!(dir
        .path()
        .join("results/s/report/latency-read.png")
        .is_file());
}
