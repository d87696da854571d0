//! Three `kvnode` processes on 127.0.x.y gossiping with short intervals: all members become
//! Alive; a SIGKILLed node is reported Down by the other two; restarted, it is Alive again
//! with a higher generation; a node cut off by `LINK.PARTITION` is Down on both sides and
//! Alive again after `LINK.HEAL`. Every wait is bounded; the launcher kills every child however
//! the test ends.

mod common;

use cluster::launcher::{ClusterSpec, LocalCluster};
use cluster::protocol::Consistency;
use cluster::ring::Replication;
use common::{command, fast_gossip, process_spec, REPLY_TIMEOUT};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
/// Bound on every wait for the membership to converge (generous for a loaded machine).
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);

/// One member line of `CLUSTER.MEMBERS`.
#[derive(Debug, Clone)]
struct Row {
    id: String,
    status: String,
    generation: u64,
}

/// Sends a command whose reply is an array of bulk strings (or an error line).
fn lines(address: SocketAddr, arguments: &[&str]) -> Result<Vec<String>, String> {
    let mut stream = TcpStream::connect(address).map_err(|error| error.to_string())?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    let request = common::encode_command(arguments);
    stream
        .write_all(request.as_bytes())
        .map_err(|error| error.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader
        .read_line(&mut header)
        .map_err(|error| error.to_string())?;
    let Some(count) = header.trim_end().strip_prefix('*') else {
        return Err(header);
    };
    let count: usize = count.parse().map_err(|_| header.clone())?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let mut length = String::new();
        reader
            .read_line(&mut length)
            .map_err(|error| error.to_string())?;
        let length: usize = length
            .trim_end()
            .trim_start_matches('$')
            .parse()
            .map_err(|_| length.clone())?;
        let mut payload = vec![0; length + 2];
        reader
            .read_exact(&mut payload)
            .map_err(|error| error.to_string())?;
        payload.truncate(length);
        out.push(String::from_utf8(payload).map_err(|error| error.to_string())?);
    }
    Ok(out)
}

fn members(address: SocketAddr) -> Result<Vec<Row>, String> {
    lines(address, &["CLUSTER.MEMBERS"])?
        .iter()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            let field = |name: &str| {
                words
                    .iter()
                    .position(|word| *word == name)
                    .and_then(|index| words.get(index + 1))
                    .and_then(|value| value.parse::<u64>().ok())
                    .ok_or_else(|| format!("no {name} in {line:?}"))
            };
            field("heartbeat")?;
            field("since_advance_ms")?;
            Ok(Row {
                id: words[0].to_string(),
                status: words.get(2).unwrap_or(&"").to_string(),
                generation: field("generation")?,
            })
        })
        .collect()
}

/// Polls until `check` holds for every node in `observers`, or fails after the bound.
/// Returns how long it took.
fn wait_until(
    addresses: &[SocketAddr],
    observers: &[usize],
    what: &str,
    check: impl Fn(&[Row]) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let views: Vec<_> = observers
            .iter()
            .map(|&index| members(addresses[index]))
            .collect();
        if views
            .iter()
            .all(|view| view.as_ref().is_ok_and(|rows| check(rows)))
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < CONVERGE_TIMEOUT,
            "{what} not reached within {CONVERGE_TIMEOUT:?}: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Three members, all Alive, each heard from (generation 0 is a seed not heard yet).
fn heard_from_all(rows: &[Row]) -> bool {
    rows.len() == 3
        && rows
            .iter()
            .all(|row| row.status == "alive" && row.generation > 0)
}

fn status_of<'a>(rows: &'a [Row], id: &str) -> Option<&'a Row> {
    rows.iter().find(|row| row.id == id)
}

/// Three nodes at N=3 gossiping fast to 2 peers each; with their ids.
fn three_gossiping_nodes(directory: &std::path::Path) -> (LocalCluster, Vec<String>) {
    let mut spec = process_spec(directory, 1, 3, Replication::Total(3), Consistency::Quorum);
    spec.base.membership = fast_gossip(2);
    let cluster = LocalCluster::start(&spec).expect("three nodes start");
    let ids = cluster
        .nodes()
        .iter()
        .map(|node| node.id().to_string())
        .collect();
    (cluster, ids)
}

#[test]
fn a_killed_node_is_reported_down_and_alive_again_with_a_higher_generation() {
    let directory = tempfile::tempdir().unwrap();
    let (mut cluster, ids) = three_gossiping_nodes(directory.path());
    let address = cluster.client_addresses();

    wait_until(&address, &[0, 1, 2], "all three alive", heard_from_all);
    let before = members(address[0]).unwrap();
    let old_generation = status_of(&before, &ids[2]).unwrap().generation;
    assert!(old_generation > 0, "{before:?}");

    cluster.kill(2).expect("SIGKILL the third node");
    let detection = wait_until(&address, &[0, 1], "the killed node down", |rows| {
        status_of(rows, &ids[2]).is_some_and(|row| row.status == "down")
            && status_of(rows, &ids[0]).is_some_and(|row| row.status == "alive")
            && status_of(rows, &ids[1]).is_some_and(|row| row.status == "alive")
    });
    eprintln!("killed node reported down by both others after {detection:?}");

    cluster.restart(2).expect("restart the third node");
    wait_until(
        &address,
        &[0, 1, 2],
        "the restarted node alive with a higher generation",
        |rows| {
            rows.len() == 3
                && rows.iter().all(|row| row.status == "alive")
                && status_of(rows, &ids[2]).is_some_and(|row| row.generation > old_generation)
        },
    );
}

#[test]
fn info_has_a_membership_section() {
    let directory = tempfile::tempdir().unwrap();
    let mut spec = ClusterSpec::new(
        env!("CARGO_BIN_EXE_kvnode").into(),
        directory.path().to_path_buf(),
        1,
        2,
    );
    spec.replication = Replication::Total(2);
    spec.base.vnodes_per_weight = 16;
    spec.base.membership = fast_gossip(1);
    let cluster = LocalCluster::start(&spec).expect("two nodes start");
    let address = cluster.client_addresses();
    let started = Instant::now();
    loop {
        let info = command(address[0], &["INFO", "membership"]);
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(&format!("{name}:")))
                .and_then(|value| value.trim().parse::<u64>().ok())
        };
        assert!(info.starts_with("# Membership\r\n"), "{info:?}");
        if field("members_alive") == Some(2)
            && field("gossip_messages_received").is_some_and(|count| count > 0)
        {
            assert_eq!(field("members_down"), Some(0), "{info}");
            assert!(
                field("gossip_rounds").is_some_and(|rounds| rounds > 0),
                "{info}"
            );
            assert!(
                field("gossip_messages_sent").is_some_and(|sent| sent > 0),
                "{info}"
            );
            assert!(field("members_suspect").is_some(), "{info}");
            break;
        }
        assert!(started.elapsed() < CONVERGE_TIMEOUT, "{info}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_partitioned_node_is_down_on_both_sides_and_alive_after_heal() {
    let directory = tempfile::tempdir().unwrap();
    let (cluster, ids) = three_gossiping_nodes(directory.path());
    let address = cluster.client_addresses();
    wait_until(&address, &[0, 1, 2], "all three alive", heard_from_all);

    // Cut the third node off from both others (every member applies the change).
    for other in &ids[..2] {
        let reply = lines(
            address[0],
            &["LINK.PARTITION", "NODE", other.as_str(), ids[2].as_str()],
        );
        // A simple-string reply is not an array: `lines` returns it as the error text.
        let reply = reply.expect_err("LINK.PARTITION replies with a status line");
        assert!(reply.starts_with("+applied on 3 of 3 nodes"), "{reply}");
    }
    wait_until(&address, &[0, 1], "the cut-off node down", |rows| {
        status_of(rows, &ids[2]).is_some_and(|row| row.status == "down")
    });
    wait_until(&address, &[2], "both others down", |rows| {
        ids[..2]
            .iter()
            .all(|id| status_of(rows, id).is_some_and(|row| row.status == "down"))
    });

    let reply = lines(address[0], &["LINK.HEAL"]).expect_err("status line");
    assert!(reply.starts_with('+'), "{reply}");
    wait_until(&address, &[0, 1, 2], "all alive after heal", heard_from_all);
}
