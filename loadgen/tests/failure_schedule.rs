//! `kvbench run --schedule` on an embedded cluster:
//!
//! - kill n2 at 1 s and restart it at 3 s in a 6 s run at N = 3, QUORUM (W = R = 2): the
//!   cluster runs as processes (a SIGKILL), both events are in `events.csv`, the clients
//!   ride through the crash (the run completes, errors are only the requests in flight on
//!   the killed node), and the lost-write check at ALL finds every acknowledged write;
//! - partition dc1 from dc2, heal, then change the link, with `lww`: the LINK.* commands
//!   run and the lost-write report names the policy;
//! - remove n4 from a 4-node N = 3 cluster: it leaves (CLUSTER.LEAVE) and no write is lost;
//! - add n4 to a 3-node N = 3 cluster (a spare the schedule implies), in process and as
//!   processes (with a kill beside it): it joins (CLUSTER.JOIN; the node's topology lists
//!   four members afterwards) and no write is lost; in process, a cleanup after it drops
//!   keys on each old node and still no write is lost;
//! - a schedule that cannot run is refused before the run, naming the entry.

mod common;

use common::{embedded_run_arguments, kvbench, named_local_config};
use std::path::{Path, PathBuf};

/// Rows of a CSV file as maps from column to value.
fn rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    reader
        .records()
        .map(|record| {
            header
                .iter()
                .cloned()
                .zip(record.unwrap().iter().map(str::to_string))
                .collect()
        })
        .collect()
}

/// A run of `seconds` with `schedule` on a cluster described by `cluster_toml`; returns
/// (success, stdout + stderr, the run's directory).
fn schedule_run(
    dir: &Path,
    name: &str,
    cluster_toml: &str,
    schedule: &str,
    seconds: u32,
) -> (bool, String, PathBuf) {
    let (config, _) = named_local_config(dir, name, cluster_toml);
    let results = dir.join("results");
    let mut arguments = embedded_run_arguments(
        name,
        &[
            "recordcount=300",
            "operationcount=0",
            &format!("maxexecutiontime={seconds}"),
        ],
        &config,
        &results,
    );
    arguments.extend(["--schedule".to_string(), schedule.to_string()]);
    let (ok, stdout, stderr) = kvbench(&arguments);
    (ok, format!("{stdout}\n{stderr}"), results.join(name))
}

#[test]
fn a_killed_and_restarted_node_loses_no_acknowledged_write_at_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, output, run) = schedule_run(
        dir.path(),
        "kill",
        "datacenters = 1\nnodes_per_datacenter = 3\nreplication = 3\nconsistency = \"QUORUM\"\n\
         inter_dc_delay = \"1\"\n",
        "1s kill n2; 3s restart n2",
        6,
    );
    assert!(ok, "run failed:\n{output}");
    assert!(output.contains("nodes as processes of"), "{output}");
    let events = rows(&run.join("events.csv"));
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        (events[0]["event"].as_str(), events[0]["target"].as_str()),
        ("kill", "n2")
    );
    assert_eq!(events[0]["result"], "ok: SIGKILL");
    assert_eq!(
        (events[1]["event"].as_str(), events[1]["target"].as_str()),
        ("restart", "n2")
    );
    assert_eq!(events[1]["result"], "ok");
    let kill_s: f64 = events[0]["time_s"].parse().unwrap();
    let restart_s: f64 = events[1]["time_s"].parse().unwrap();
    assert!((1.0..2.0).contains(&kill_s), "{events:?}");
    assert!(restart_s >= 3.0 && restart_s > kill_s, "{events:?}");

    let lost = rows(&run.join("lost_writes.csv"));
    assert_eq!(lost.len(), 1);
    let count = |column: &str| lost[0][column].parse::<u64>().unwrap();
    assert!(count("keys_checked") > 0, "{lost:?}");
    assert_eq!(count("lost"), 0, "{lost:?}\n{output}");
    assert_eq!(count("unreadable"), 0, "{lost:?}");
    assert_eq!(count("present"), count("keys_checked"));
    assert!(
        output.contains("lost-write check (KV.GET at ALL"),
        "{output}"
    );

    // The clients rode through: the run is complete, errors are the few requests in flight
    // on the killed node (4 clients, one each), and operations went on after the restart.
    let intervals = rows(&run.join("availability.csv"));
    assert!(intervals.len() >= 5, "{intervals:?}");
    let sum = |column: &str| -> u64 {
        intervals
            .iter()
            .map(|row| row[column].parse::<u64>().unwrap())
            .sum()
    };
    assert!(sum("ops") > 0);
    assert!(sum("errors") * 10 <= sum("ops"), "{intervals:?}");
    let after_restart: u64 = intervals
        .iter()
        .filter(|row| row["start_s"].parse::<f64>().unwrap() >= restart_s.ceil())
        .map(|row| row["ops"].parse::<u64>().unwrap())
        .sum();
    assert!(after_restart > 0, "{intervals:?}");
    assert!(!output.contains("partial"), "{output}");
}

#[test]
fn link_events_reach_the_cluster_and_lww_loss_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, output, run) = schedule_run(
        dir.path(),
        "links",
        "datacenters = 2\nnodes_per_datacenter = 1\nreplication = { dc1 = 1, dc2 = 1 }\n\
         consistency = \"ONE\"\ninter_dc_delay = \"2\"\nconflict_policy = \"lww\"\n",
        "0.5s partition dc1 dc2; 1.5s heal; 2s link dc1 dc2 delay=10ms; 2.5s link reset",
        3,
    );
    assert!(ok, "run failed:\n{output}");
    assert!(output.contains("nodes in process"), "{output}");
    let events = rows(&run.join("events.csv"));
    let summary: Vec<(&str, &str)> = events
        .iter()
        .map(|row| (row["event"].as_str(), row["target"].as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("partition", "dc1-dc2"),
            ("heal", "all"),
            ("link", "dc1-dc2"),
            ("link-reset", "all")
        ]
    );
    for row in &events {
        assert!(row["result"].starts_with("ok: LINK."), "{row:?}");
    }
    let lost = rows(&run.join("lost_writes.csv"));
    assert_eq!(lost[0]["conflict_policy"], "lww");
    assert!(output.contains("conflict policy lww"), "{output}");
}

#[test]
fn a_removed_node_leaves_the_ring_and_no_acknowledged_write_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, output, run) = schedule_run(
        dir.path(),
        "remove",
        "datacenters = 1\nnodes_per_datacenter = 4\nreplication = 3\nconsistency = \"QUORUM\"\n\
         inter_dc_delay = \"1\"\n",
        "1s remove n4",
        4,
    );
    assert!(ok, "run failed:\n{output}");
    let events = rows(&run.join("events.csv"));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "remove");
    assert!(
        events[0]["result"].starts_with("ok: CLUSTER.LEAVE via ")
            && events[0]["result"].contains("n4 left ring_version"),
        "{events:?}"
    );
    let lost = rows(&run.join("lost_writes.csv"));
    assert_eq!(lost[0]["lost"], "0", "{lost:?}");
    assert_eq!(lost[0]["unreadable"], "0", "{lost:?}");
}

#[test]
fn a_schedule_that_cannot_run_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, output, run) = schedule_run(
        dir.path(),
        "bad",
        "datacenters = 1\nnodes_per_datacenter = 3\nreplication = 3\n",
        "1s kill n2; 2s restart n9",
        2,
    );
    assert!(!ok);
    assert!(
        output.contains("n9") && output.contains("n1 to n3"),
        "{output}"
    );
    // Refused before any node started or any record was loaded.
    assert!(!output.contains("embedded cluster:"), "{output}");
    assert!(!run.exists());
    let (ok, output, _) = schedule_run(
        dir.path(),
        "add",
        "datacenters = 1\nnodes_per_datacenter = 3\nreplication = 3\n",
        "1s add n9",
        2,
    );
    assert!(!ok);
    assert!(
        output.contains("n9") && output.contains("its spare node is n4"),
        "{output}"
    );
    assert!(!output.contains("embedded cluster:"), "{output}");
    let (ok, output, _) = schedule_run(
        dir.path(),
        "typo",
        "datacenters = 1\nnodes_per_datacenter = 3\nreplication = 3\n",
        "1s kill n2; 2s restrat n2",
        2,
    );
    assert!(!ok);
    assert!(
        output.contains("schedule entry 2 \"2s restrat n2\"") && output.contains("unknown action"),
        "{output}"
    );
}

fn check_join(ok: bool, output: &str, run: &Path, events_expected: usize) {
    assert!(ok, "run failed:\n{output}");
    let events = rows(&run.join("events.csv"));
    assert_eq!(events.len(), events_expected, "{events:?}");
    let add = events.iter().find(|row| row["event"] == "add").unwrap();
    assert_eq!(add["target"], "n4");
    assert!(
        add["result"].starts_with("ok: CLUSTER.JOIN n4 dc1 ")
            && add["result"].contains("joined n4 ring_version"),
        "{add:?}"
    );
    let start: f64 = add["time_s"].parse().unwrap();
    let end: f64 = add["end_s"].parse().unwrap();
    assert!(start >= 1.0 && end >= start, "{add:?}");
    let lost = rows(&run.join("lost_writes.csv"));
    assert!(
        lost[0]["keys_checked"].parse::<u64>().unwrap() > 0,
        "{lost:?}"
    );
    assert_eq!(lost[0]["lost"], "0", "{lost:?}\n{output}");
    assert_eq!(lost[0]["unreadable"], "0", "{lost:?}");
}

#[test]
fn an_added_node_joins_the_ring_and_no_acknowledged_write_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, output, run) = schedule_run(
        dir.path(),
        "add-in-process",
        "datacenters = 1\nnodes_per_datacenter = 3\nreplication = 3\nconsistency = \"QUORUM\"\n\
         inter_dc_delay = \"1\"\n",
        "1s add n4; 2s cleanup",
        // The join takes a fraction of a second (136 ms in one run; it used to wait two
        // request timeouts, 4 s, for writes under the old ring); the cleanup runs once it
        // is done, and must before the run ends.
        9,
    );
    // The lost-write check runs after the cleanup: it finds every write.
    check_join(ok, &output, &run, 2);
    let events = rows(&run.join("events.csv"));
    eprintln!("events: {events:?}");
    let cleanup = &events[1];
    assert_eq!(
        (cleanup["event"].as_str(), cleanup["target"].as_str()),
        ("cleanup", "all")
    );
    assert!(
        cleanup["result"].starts_with("ok: CLUSTER.CLEANUP: "),
        "{cleanup:?}"
    );
    // n1-n3 each lose about a quarter of the keys to n4.
    let removed: Vec<u64> = cleanup["result"]
        .split(" removed ")
        .skip(1)
        .map(|part| part.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(removed.len(), 3, "{cleanup:?}");
    assert!(removed.iter().all(|&keys| keys > 0), "{cleanup:?}");
    assert!(output.contains("nodes in process"), "{output}");
    assert!(output.contains("spare nodes: n4"), "{output}");
    assert!(
        output.contains("members after the run: n1,n2,n3,n4 "),
        "{output}"
    );
    // The clients' routers took n4 as a target once it joined: it served thousands of
    // their requests in the seconds after the join (the schedule's own commands to it are a
    // handful).
    let served = output
        .lines()
        .find(|line| line.starts_with("client commands per member "))
        .and_then(|line| line.split_once("): "))
        .map(|(_, counts)| counts)
        .unwrap_or_else(|| panic!("no per-member counts: {output}"));
    eprintln!("client commands per member: {served}");
    let n4: u64 = served
        .split(", ")
        .find_map(|entry| entry.strip_prefix("n4 "))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no count for n4: {served}"));
    assert!(n4 > 1000, "{served}");
}

#[test]
fn an_added_node_joins_beside_a_kill_when_the_nodes_are_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, output, run) = schedule_run(
        dir.path(),
        "add-processes",
        "datacenters = 1\nnodes_per_datacenter = 3\nreplication = 3\nconsistency = \"QUORUM\"\n\
         inter_dc_delay = \"1\"\n",
        "1s add n4; 1.5s kill n4; 2s restart n4",
        5,
    );
    check_join(ok, &output, &run, 3);
    assert!(output.contains("nodes as processes of"), "{output}");
    // The new node is a member of n1's ring: the run prints the topology it read after
    // the join.
    assert!(
        output.contains("members after the run: n1,n2,n3,n4 "),
        "{output}"
    );
}
