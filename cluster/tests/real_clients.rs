//! The `kvnode` binary against real Redis clients: redis-cli, redis-benchmark and redis-py.
//!
//! The clients are external programs. When one is missing the test fails if `CI=true`
//! (`.ci/run` installs them) and otherwise prints a notice and passes.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the node may take to print its ready line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Kills the node however the test ends.
struct NodeProcess {
    child: Child,
    address: SocketAddr,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `kvnode` on port 0 of a loopback address of its own and reads the bound address
/// from its ready line (no race for a "free" port).
fn start_node(data_dir: &std::path::Path) -> NodeProcess {
    let host = 2 + std::process::id() % 250;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvnode"))
        .arg("--client-address")
        .arg(format!("127.0.0.{host}:0"))
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start kvnode");
    let stdout = child.stdout.take().expect("kvnode stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let mut node = NodeProcess {
        child,
        address: "127.0.0.1:0".parse().unwrap(),
    };
    let line = receiver
        .recv_timeout(START_TIMEOUT)
        .expect("kvnode ready line");
    assert!(
        line.contains("serving clients on"),
        "unexpected ready line: {line:?}"
    );
    let address = line.trim().rsplit(' ').next().unwrap_or_default();
    node.address = address.parse().expect("address in the ready line");
    node
}

/// True if `program args` runs and succeeds; else a notice, or a failure under CI.
fn available(program: &str, arguments: &[&str]) -> bool {
    let works = Command::new(program)
        .args(arguments)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !works {
        let message = format!("{program} {} is not available", arguments.join(" "));
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{message}: CI must install it (.ci/run)"
        );
        eprintln!("notice: {message}; skipping");
    }
    works
}

fn run(program: &str, arguments: &[&str]) -> Output {
    let output = Command::new(program)
        .args(arguments)
        .output()
        .expect(program);
    assert!(
        output.status.success(),
        "{program} {arguments:?} failed: {output:?}"
    );
    output
}

fn redis_cli(node: &NodeProcess, arguments: &[&str]) -> String {
    let host = node.address.ip().to_string();
    let port = node.address.port().to_string();
    let mut all = vec!["-h", host.as_str(), "-p", port.as_str()];
    all.extend_from_slice(arguments);
    String::from_utf8_lossy(&run("redis-cli", &all).stdout)
        .trim()
        .to_string()
}

#[test]
fn redis_cli_and_redis_benchmark() {
    if !available("redis-cli", &["--version"]) || !available("redis-benchmark", &["--version"]) {
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let node = start_node(directory.path());
    assert_eq!(redis_cli(&node, &["SET", "a", "b"]), "OK");
    assert_eq!(redis_cli(&node, &["GET", "a"]), "b");
    assert_eq!(redis_cli(&node, &["PING"]), "PONG");
    assert_eq!(redis_cli(&node, &["DEL", "a"]), "1");
    assert_eq!(redis_cli(&node, &["GET", "a"]), "");

    let host = node.address.ip().to_string();
    let port = node.address.port().to_string();
    let arguments = [
        "-h",
        &host,
        "-p",
        &port,
        "-t",
        "set,get,ping",
        "-n",
        "2000",
        "-c",
        "4",
        "-q",
    ];
    let output = run("redis-benchmark", &arguments);
    let text = String::from_utf8_lossy(&output.stdout).replace('\r', "\n");
    for test in ["PING_INLINE", "PING_MBULK", "SET", "GET"] {
        let reported = text.lines().any(|line| {
            line.starts_with(&format!("{test}: ")) && line.contains("requests per second")
        });
        assert!(reported, "no requests per second for {test} in:\n{text}");
    }
}

const REDIS_PY_SCRIPT: &str = r#"
import sys
import redis
host, port = sys.argv[1], int(sys.argv[2])
# redis-py 8 asks for RESP3 by default; the node speaks RESP2 (HELLO 3 gets NOPROTO).
r = redis.Redis(host=host, port=port, socket_timeout=10, protocol=2)
assert r.ping()
assert r.set("a", "1")
assert r.get("a") == b"1", r.get("a")
assert r.set("b", b"\x00binary\r\n")
assert r.mget("a", "b", "missing") == [b"1", b"\x00binary\r\n", None]
assert r.exists("a", "b", "missing") == 2
assert r.delete("a", "missing") == 1
assert r.get("a") is None
pipe = r.pipeline(transaction=False)
for i in range(100):
    pipe.set(f"k{i}", str(i))
    pipe.get(f"k{i}")
results = pipe.execute()
assert results[1::2] == [str(i).encode() for i in range(100)], results[:6]
print("redis-py ok")
"#;

#[test]
fn redis_py() {
    if !available("python3", &["-c", "import redis"]) {
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let node = start_node(directory.path());
    let host = node.address.ip().to_string();
    let port = node.address.port().to_string();
    let output = run("python3", &["-c", REDIS_PY_SCRIPT, &host, &port]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("redis-py ok"),
        "{output:?}"
    );
}

#[test]
fn sigterm_stops_the_node_cleanly_and_data_survives() {
    let directory = tempfile::tempdir().unwrap();
    let mut node = start_node(directory.path());
    let address = node.address;
    {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(b"SET kept yes\r\n").unwrap();
        let mut reply = [0u8; 5];
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"+OK\r\n");
    }
    let pid = node.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kvnode did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "kvnode exited with {status}");
    drop(node);
    let store = cluster::store::LocalStore::open(
        directory.path(),
        engine::Options::default(),
        cluster::version::VersionConfig::default(),
    )
    .unwrap();
    let set = store.read(b"kept").unwrap().expect("the key survives");
    assert_eq!(set.versions[0].value.as_deref(), Some(&b"yes"[..]));
    store.close().unwrap();
}

#[test]
fn bad_config_exits_non_zero_naming_the_field() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("node.toml");
    std::fs::write(&path, "node_id = \"\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kvnode"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("node_id") && stderr.contains("must not be empty"),
        "{stderr}"
    );
}
