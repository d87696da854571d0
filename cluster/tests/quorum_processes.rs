//! Three `kvnode` processes on 127.0.0.x with generated TOML configs (N=3, QUORUM): a
//! write through one is read through the others, one killed node is tolerated, two are not.
//! Every child is killed when its handle drops, however the test ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a node may take to print its ready line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Bound on any one client reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `kvnode`, killed on drop.
struct NodeProcess {
    child: Child,
    client_address: SocketAddr,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An address on loopback host `host` with a port that was free a moment ago.
fn free_address(host: u32) -> SocketAddr {
    let listener = std::net::TcpListener::bind(format!("127.0.0.{host}:0")).unwrap();
    listener.local_addr().unwrap()
}

/// The TOML for member `index` of `members` (id, client address, peer address).
fn node_config(
    index: usize,
    members: &[(String, SocketAddr, SocketAddr)],
    data_dir: &Path,
) -> String {
    let (id, client, peer) = &members[index];
    let mut text = format!(
        "node_id = \"{id}\"\ndatacenter = \"dc1\"\nclient_address = \"{client}\"\n\
         peer_address = \"{peer}\"\ndata_dir = \"{}\"\nvnodes_per_weight = 16\n\
         replication = 3\ndefault_consistency = \"QUORUM\"\nrequest_timeout_ms = 1000\n",
        data_dir.display()
    );
    for (id, client, peer) in members {
        text.push_str(&format!(
            "[[members]]\nid = \"{id}\"\ndatacenter = \"dc1\"\nclient_address = \"{client}\"\n\
             peer_address = \"{peer}\"\n"
        ));
    }
    text
}

fn start_node(config: &Path) -> NodeProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvnode"))
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kvnode");
    let stdout = child.stdout.take().expect("kvnode stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = sender.send(line);
        // Keep draining, so a later line never meets a closed pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let mut node = NodeProcess {
        child,
        client_address: "127.0.0.1:0".parse().unwrap(),
    };
    let line = receiver
        .recv_timeout(START_TIMEOUT)
        .expect("kvnode ready line");
    assert!(line.contains("serving clients on"), "ready line: {line:?}");
    let address = line.trim().rsplit(' ').next().unwrap_or_default();
    node.client_address = address.parse().expect("address in the ready line");
    node
}

/// Sends one command and returns its reply: the line for simple replies (with its type
/// byte), the payload for bulk strings, `(nil)` for a null bulk.
fn command(address: SocketAddr, arguments: &[&str]) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    let mut request = format!("*{}\r\n", arguments.len());
    for argument in arguments {
        request.push_str(&format!("${}\r\n{argument}\r\n", argument.len()));
    }
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("reply");
    let line = line.trim_end().to_string();
    match line.strip_prefix('$') {
        Some("-1") => "(nil)".to_string(),
        Some(length) => {
            let length: usize = length.parse().expect("bulk length");
            let mut payload = vec![0; length + 2];
            reader.read_exact(&mut payload).expect("bulk payload");
            payload.truncate(length);
            String::from_utf8(payload).expect("utf-8 value")
        }
        None => line,
    }
}

#[test]
fn three_processes_tolerate_one_killed_node_and_refuse_with_two() {
    let directory = tempfile::tempdir().unwrap();
    let base = 10 + std::process::id() % 200;
    let members: Vec<(String, SocketAddr, SocketAddr)> = (0..3)
        .map(|index| {
            let host = base + index;
            (
                format!("n{}", index + 1),
                free_address(host),
                free_address(host),
            )
        })
        .collect();
    let mut nodes: Vec<Option<NodeProcess>> = Vec::new();
    for index in 0..members.len() {
        let data_dir = directory.path().join(format!("data{index}"));
        let config_path = directory.path().join(format!("node{index}.toml"));
        std::fs::write(&config_path, node_config(index, &members, &data_dir)).unwrap();
        nodes.push(Some(start_node(&config_path)));
    }
    let address = |nodes: &[Option<NodeProcess>], index: usize| {
        nodes[index].as_ref().expect("running").client_address
    };

    assert_eq!(command(address(&nodes, 0), &["SET", "k", "v1"]), "+OK");
    for index in 0..3 {
        assert_eq!(command(address(&nodes, index), &["GET", "k"]), "v1");
        // A summary line and one line per member: the node serves as part of a cluster.
        assert_eq!(command(address(&nodes, index), &["CLUSTER.TOPOLOGY"]), "*4");
    }

    nodes[2] = None;
    assert_eq!(command(address(&nodes, 0), &["SET", "k2", "v2"]), "+OK");
    assert_eq!(command(address(&nodes, 1), &["GET", "k2"]), "v2");

    nodes[1] = None;
    let reply = command(address(&nodes, 0), &["SET", "k3", "v3"]);
    assert!(
        reply.starts_with("-ERR quorum not reached: needed 2 write acknowledgements, got 1"),
        "{reply}"
    );
    let reply = command(address(&nodes, 0), &["GET", "k"]);
    assert!(
        reply.starts_with("-ERR quorum not reached: needed 2 read replies, got 1"),
        "{reply}"
    );
}
