//! Bad input to `kvbench load|run` gets a clear message naming the problem and a non-zero
//! exit, through the built binary.

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

fn kvbench(arguments: &[&str]) -> (bool, String) {
    let results = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kvbench"))
        .args(arguments)
        .args(["--results", &results.path().display().to_string()])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn assert_fails_with(arguments: &[&str], expected: &[&str]) {
    let (ok, text) = kvbench(arguments);
    assert!(!ok, "{arguments:?} succeeded:\n{text}");
    for fragment in expected {
        assert!(
            text.contains(fragment),
            "{arguments:?}: no {fragment:?} in:\n{text}"
        );
    }
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn unknown_property_is_named() {
    let hosts = format!("127.0.0.1:{}", closed_port());
    assert_fails_with(
        &["run", "-p", "readproportoin=0.5", "--hosts", &hosts],
        &["unknown workload property \"readproportoin\"", "--lenient"],
    );
}

#[test]
fn unknown_distribution_is_named() {
    let hosts = format!("127.0.0.1:{}", closed_port());
    assert_fails_with(
        &["run", "-p", "requestdistribution=zipf", "--hosts", &hosts],
        &[
            "requestdistribution",
            "zipf",
            "unknown request distribution",
        ],
    );
}

#[test]
fn proportions_must_sum_to_one() {
    let hosts = format!("127.0.0.1:{}", closed_port());
    assert_fails_with(
        &[
            "run",
            "-p",
            "readproportion=0.5",
            "-p",
            "updateproportion=0.2",
            "--hosts",
            &hosts,
        ],
        &["sum to 0.7"],
    );
}

#[test]
fn unreachable_target_is_named() {
    let hosts = format!("127.0.0.1:{}", closed_port());
    assert_fails_with(
        &["load", "-p", "recordcount=10", "--hosts", &hosts],
        &[&format!("cannot connect to {hosts}")],
    );
}

#[test]
fn missing_workload_file_is_named_once() {
    let (ok, text) = kvbench(&["run", "-P", "no/such/workload", "--hosts", "127.0.0.1:1"]);
    assert!(!ok, "{text}");
    assert!(text.contains("no/such/workload"), "{text}");
    // The OS error once, not repeated as the error's cause.
    assert_eq!(
        text.matches("No such file or directory").count(),
        1,
        "{text}"
    );
}

#[test]
fn missing_hosts_is_explained() {
    assert_fails_with(&["load", "-p", "recordcount=10"], &["without --hosts"]);
}

#[test]
fn a_server_that_drops_the_connection_makes_a_partial_run() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let hosts = listener.local_addr().unwrap().to_string();
    // Accepts each connection, reads a little, and closes it without replying.
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            stream
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let mut buffer = [0u8; 64];
            let _ = stream.read(&mut buffer);
        }
    });
    assert_fails_with(
        &[
            "load",
            "-p",
            "recordcount=1000",
            "--target-kind",
            "redis",
            "--hosts",
            &hosts,
        ],
        &["closed the connection", "partial run", "PARTIAL RUN"],
    );
}
