//! One in-process node on 127.0.0.1:0, driven by a raw TCP client speaking RESP through
//! the crate's own encoder and decoder.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use cluster::config::NodeConfig;
use cluster::protocol::{decode_reply, resp, Limits, RespValue};
use cluster::server::{RunningNode, ServeOptions};
use cluster::store::LocalStore;
use cluster::version::{VectorClock, VersionConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every test finishes well inside this, or fails instead of hanging CI.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

fn run<F: Future<Output = ()>>(test: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, test)
            .await
            .expect("test timed out");
    });
}

fn config(directory: &Path) -> NodeConfig {
    let config = NodeConfig {
        client_address: "127.0.0.1:0".parse().unwrap(),
        data_dir: directory.to_path_buf(),
        ..NodeConfig::default()
    };
    config.validate().unwrap();
    config
}

struct Client {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Client {
    async fn connect(node: &RunningNode) -> Client {
        let stream = TcpStream::connect(node.client_address()).await.unwrap();
        Client {
            stream,
            buffer: Vec::new(),
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn send(&mut self, arguments: &[&[u8]]) {
        let mut bytes = Vec::new();
        resp::write_array_header(&mut bytes, arguments.len());
        for argument in arguments {
            resp::write_bulk(&mut bytes, argument);
        }
        self.send_raw(&bytes).await;
    }

    /// The next reply, or `None` when the server closed the connection.
    async fn reply(&mut self) -> Option<RespValue> {
        loop {
            if let Some((value, used)) = decode_reply(&self.buffer, &Limits::default()).unwrap() {
                self.buffer.drain(..used);
                return Some(value);
            }
            let mut chunk = [0u8; 16384];
            let read = self.stream.read(&mut chunk).await.unwrap_or(0);
            if read == 0 {
                return None;
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }

    async fn call(&mut self, arguments: &[&[u8]]) -> RespValue {
        self.send(arguments).await;
        self.reply().await.expect("connection closed")
    }
}

fn bulk(bytes: &[u8]) -> RespValue {
    RespValue::bulk(bytes)
}

fn ok() -> RespValue {
    RespValue::SimpleString("OK".into())
}

fn error_text(value: RespValue) -> String {
    match value {
        RespValue::Error(text) => text,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

#[test]
fn redis_commands_round_trip() {
    run(async {
        let directory = tempfile::tempdir().unwrap();
        let node = RunningNode::start(config(directory.path())).await.unwrap();
        let mut client = Client::connect(&node).await;
        assert_eq!(
            client.call(&[b"PING"]).await,
            RespValue::SimpleString("PONG".into())
        );
        assert_eq!(client.call(&[b"SET", b"a", b"1"]).await, ok());
        assert_eq!(client.call(&[b"set", b"b", b"2"]).await, ok());
        assert_eq!(client.call(&[b"GET", b"a"]).await, bulk(b"1"));
        assert_eq!(client.call(&[b"SET", b"a", b"3"]).await, ok());
        assert_eq!(client.call(&[b"GET", b"a"]).await, bulk(b"3"));
        assert_eq!(
            client.call(&[b"EXISTS", b"a", b"b", b"c"]).await,
            RespValue::Integer(2)
        );
        let values = client.call(&[b"MGET", b"a", b"c", b"b"]).await;
        let expected = vec![bulk(b"3"), RespValue::BulkString(None), bulk(b"2")];
        assert_eq!(values, RespValue::array(expected));
        assert_eq!(
            client.call(&[b"DEL", b"a", b"c"]).await,
            RespValue::Integer(1)
        );
        assert_eq!(
            client.call(&[b"GET", b"a"]).await,
            RespValue::BulkString(None)
        );
        assert_eq!(client.call(&[b"DEL", b"a"]).await, RespValue::Integer(0));
        assert_eq!(client.call(&[b"EXISTS", b"a"]).await, RespValue::Integer(0));
        let unknown = error_text(client.call(&[b"NOPE", b"x"]).await);
        assert!(
            unknown.starts_with("ERR unknown command 'NOPE'"),
            "{unknown}"
        );
        // A command error keeps the connection.
        assert_eq!(
            client.call(&[b"ECHO", b"still here"]).await,
            bulk(b"still here")
        );
        let info = client.call(&[b"INFO"]).await;
        let RespValue::BulkString(Some(info)) = info else {
            panic!("{info:?}")
        };
        let info = String::from_utf8(info).unwrap();
        assert!(
            info.contains("redis_version:") && info.contains("node_id:n1"),
            "{info}"
        );
        assert!(
            info.contains("flushes:") && info.contains("compactions:"),
            "{info}"
        );
        // The caches are visible, and a GET that misses the memtable counts as a row cache
        // miss (it goes on to the tables).
        let field = |info: &str, name: &str| -> u64 {
            info.lines()
                .find_map(|line| line.strip_prefix(&format!("{name}:")))
                .unwrap_or_else(|| panic!("no {name} in {info}"))
                .trim()
                .parse()
                .unwrap()
        };
        field(&info, "block_cache_bytes");
        field(&info, "row_cache_bytes");
        field(&info, "row_cache_hits");
        assert_eq!(field(&info, "corrupt_sets_replaced"), 0, "{info}");
        let misses_before = field(&info, "row_cache_misses");
        assert_eq!(
            client.call(&[b"GET", b"never-written"]).await,
            RespValue::BulkString(None)
        );
        let RespValue::BulkString(Some(info)) = client.call(&[b"INFO", b"engine"]).await else {
            panic!("INFO engine is not a bulk string")
        };
        let info = String::from_utf8(info).unwrap();
        assert_eq!(
            field(&info, "row_cache_misses"),
            misses_before + 1,
            "{info}"
        );
        drop(client);
        node.stop().await.unwrap();
    });
}

#[test]
fn a_thousand_pipelined_commands_in_one_write() {
    run(async {
        let directory = tempfile::tempdir().unwrap();
        let node = RunningNode::start(config(directory.path())).await.unwrap();
        let mut client = Client::connect(&node).await;
        let mut batch = Vec::new();
        for index in 0..500 {
            let key = format!("key{index}");
            for arguments in [
                vec!["SET", key.as_str(), key.as_str()],
                vec!["GET", key.as_str()],
            ] {
                resp::write_array_header(&mut batch, arguments.len());
                for argument in arguments {
                    resp::write_bulk(&mut batch, argument.as_bytes());
                }
            }
        }
        client.send_raw(&batch).await;
        for index in 0..500 {
            assert_eq!(client.reply().await, Some(ok()));
            assert_eq!(
                client.reply().await,
                Some(bulk(format!("key{index}").as_bytes()))
            );
        }
        drop(client);
        node.stop().await.unwrap();
    });
}

#[test]
fn connection_threads_serve_pipelined_clients_and_stop_cleanly() {
    run(async {
        let directory = tempfile::tempdir().unwrap();
        let options = ServeOptions {
            connection_threads: 2,
        };
        let node = RunningNode::start_with(config(directory.path()), options)
            .await
            .unwrap();
        // Three clients: round robin puts two on one thread, so both threads serve and one
        // thread groups the commits of two connections.
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(Client::connect(&node).await);
        }
        for (number, client) in clients.iter_mut().enumerate() {
            let mut batch = Vec::new();
            for index in 0..100 {
                let key = format!("c{number}k{index}");
                for arguments in [vec!["SET", key.as_str(), "v"], vec!["GET", key.as_str()]] {
                    resp::write_array_header(&mut batch, arguments.len());
                    for argument in arguments {
                        resp::write_bulk(&mut batch, argument.as_bytes());
                    }
                }
            }
            client.send_raw(&batch).await;
        }
        for client in &mut clients {
            for _ in 0..100 {
                assert_eq!(client.reply().await, Some(ok()));
                assert_eq!(client.reply().await, Some(bulk(b"v")));
            }
        }
        // A connection on another thread sees the others' writes.
        assert_eq!(clients[1].call(&[b"GET", b"c0k99"]).await, bulk(b"v"));
        assert_eq!(
            clients[2].call(&[b"QUIT"]).await,
            RespValue::SimpleString("OK".into())
        );
        assert_eq!(clients[2].reply().await, None);
        // Stopping with connections still open on the threads ends them and closes the store.
        tokio::time::timeout(Duration::from_secs(10), node.stop())
            .await
            .expect("stop took longer than 10 s")
            .unwrap();
        assert_eq!(clients[0].reply().await, None);
        let store = LocalStore::open(
            directory.path(),
            NodeConfig::default().engine,
            VersionConfig::default(),
        )
        .unwrap();
        let stored = store
            .read(b"c2k42")
            .unwrap()
            .expect("c2k42 survives a restart");
        assert_eq!(stored.versions[0].value.as_deref(), Some(&b"v"[..]));
    });
}

#[test]
fn malformed_input_closes_only_that_connection() {
    run(async {
        let directory = tempfile::tempdir().unwrap();
        let node = RunningNode::start(config(directory.path())).await.unwrap();
        let bad_inputs: [&[u8]; 2] = [
            b"*2\r\n$3\r\nGET\r\n$abc\r\n",
            b"*2\r\n$3\r\nGET\r\n$999999999\r\n",
        ];
        for input in bad_inputs {
            let mut client = Client::connect(&node).await;
            client.send_raw(input).await;
            let text = error_text(client.reply().await.expect("an error reply"));
            assert!(text.starts_with("ERR Protocol error"), "{text}");
            assert_eq!(
                client.reply().await,
                None,
                "the connection should be closed"
            );
        }
        let mut client = Client::connect(&node).await;
        assert_eq!(
            client.call(&[b"PING"]).await,
            RespValue::SimpleString("PONG".into())
        );
        drop(client);
        node.stop().await.unwrap();
    });
}

#[test]
fn oversized_value_is_refused_and_nothing_stored() {
    run(async {
        let directory = tempfile::tempdir().unwrap();
        let node = RunningNode::start(config(directory.path())).await.unwrap();
        let mut client = Client::connect(&node).await;
        let limit = NodeConfig::default().engine.value_size_bytes_max;
        let at_limit = vec![b'x'; limit];
        assert_eq!(client.call(&[b"SET", b"fits", &at_limit]).await, ok());
        let too_big = vec![b'x'; limit + 1];
        for command in [&b"SET"[..], b"KV.PUT"] {
            let text = error_text(client.call(&[command, b"big", &too_big]).await);
            assert!(text.contains("exceeds the limit"), "{text}");
        }
        assert_eq!(
            client.call(&[b"GET", b"big"]).await,
            RespValue::BulkString(None)
        );
        assert_eq!(client.call(&[b"GET", b"fits"]).await, bulk(&at_limit));
        drop(client);
        node.stop().await.unwrap();
    });
}

/// `KV.GET`'s reply: (context, sibling values).
fn versioned(reply: RespValue) -> (Vec<u8>, Vec<RespValue>) {
    match reply {
        RespValue::Array(Some(mut parts)) if parts.len() == 2 => {
            let siblings = match parts.pop() {
                Some(RespValue::Array(Some(siblings))) => siblings,
                other => panic!("{other:?}"),
            };
            match parts.pop() {
                Some(RespValue::BulkString(Some(context))) => (context, siblings),
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn siblings_survive_a_restart_and_a_context_collapses_them() {
    run(async {
        let directory = tempfile::tempdir().unwrap();
        let node = RunningNode::start(config(directory.path())).await.unwrap();
        let mut client = Client::connect(&node).await;
        assert_eq!(client.call(&[b"KV.PUT", b"k", b"first"]).await, ok());
        // A second blind write through the same coordinator supersedes the first (the
        // per-node clock limit documented in cluster::version, "Counters").
        assert_eq!(client.call(&[b"KV.PUT", b"k", b"second"]).await, ok());
        let (_, siblings) = versioned(client.call(&[b"KV.GET", b"k"]).await);
        assert_eq!(siblings, vec![bulk(b"second")]);
        assert_eq!(client.call(&[b"SET", b"plain", b"kept"]).await, ok());
        drop(client);
        node.stop().await.unwrap();

        // A concurrent write coordinated elsewhere, as replication will deliver it.
        let store = LocalStore::open(
            directory.path(),
            engine::Options::default(),
            VersionConfig::default(),
        )
        .unwrap();
        store
            .write_local(b"k", &VectorClock::new(), Some(b"other".to_vec()), "n2", 1)
            .unwrap();
        store.close().unwrap();

        let node = RunningNode::start(config(directory.path())).await.unwrap();
        let mut client = Client::connect(&node).await;
        assert_eq!(client.call(&[b"GET", b"plain"]).await, bulk(b"kept"));
        let (context, mut siblings) = versioned(client.call(&[b"KV.GET", b"k"]).await);
        siblings.sort_by_key(|value| format!("{value:?}"));
        assert_eq!(siblings, vec![bulk(b"other"), bulk(b"second")]);
        let put = client
            .call(&[b"KV.PUT", b"k", b"merged", b"CONTEXT", &context])
            .await;
        assert_eq!(put, ok());
        let (_, siblings) = versioned(client.call(&[b"KV.GET", b"k"]).await);
        assert_eq!(siblings, vec![bulk(b"merged")]);
        let scan = client.call(&[b"KV.SCAN", b"", b"10"]).await;
        let RespValue::Array(Some(rows)) = scan else {
            panic!("{scan:?}")
        };
        assert_eq!(rows.len(), 2);
        let (context, _) = versioned(client.call(&[b"KV.GET", b"k"]).await);
        assert_eq!(
            client.call(&[b"KV.DEL", b"k", b"CONTEXT", &context]).await,
            ok()
        );
        assert_eq!(
            client.call(&[b"GET", b"k"]).await,
            RespValue::BulkString(None)
        );
        drop(client);
        node.stop().await.unwrap();
    });
}

#[test]
fn consistency_and_auth() {
    run(async {
        let directory = tempfile::tempdir().unwrap();
        let mut settings = config(directory.path());
        settings.requirepass = Some("secret".into());
        let node = RunningNode::start(settings).await.unwrap();
        let mut client = Client::connect(&node).await;
        let refused = error_text(client.call(&[b"GET", b"a"]).await);
        assert!(refused.starts_with("NOAUTH"), "{refused}");
        let wrong = error_text(client.call(&[b"AUTH", b"nope"]).await);
        assert!(wrong.starts_with("WRONGPASS"), "{wrong}");
        assert_eq!(client.call(&[b"AUTH", b"secret"]).await, ok());
        assert_eq!(client.call(&[b"CONSISTENCY", b"QUORUM"]).await, ok());
        let text = error_text(client.call(&[b"CONSISTENCY", b"R", b"2"]).await);
        assert!(
            text.contains("needed 2") && text.contains("available 1"),
            "{text}"
        );
        let text = error_text(client.call(&[b"KV.GET", b"a", b"R", b"3"]).await);
        assert!(text.contains("needed 3"), "{text}");
        assert_eq!(
            client.call(&[b"KV.PUT", b"a", b"v", b"W", b"1"]).await,
            ok()
        );
        let text = error_text(client.call(&[b"CLUSTER.TOPOLOGY"]).await);
        assert!(text.contains("serves alone"), "{text}");
        let text = error_text(client.call(&[b"CLUSTER.CLEANUP"]).await);
        assert!(text.contains("no ring to change or clean up"), "{text}");
        assert_eq!(client.call(&[b"QUIT"]).await, ok());
        assert_eq!(client.reply().await, None);
        node.stop().await.unwrap();
    });
}
