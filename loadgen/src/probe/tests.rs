//! Classification on scripted replies, aggregation, planning and a small embedded run.

use ::cluster::protocol::resp::RespValue;

use super::cluster::{PbsCluster, PbsClusterOptions};
use super::run::{outcome_of, plan};
use super::*;

fn get_reply(values: &[Option<&[u8]>]) -> RespValue {
    RespValue::array(vec![
        RespValue::bulk(b"context".to_vec()),
        RespValue::array(
            values
                .iter()
                .map(|value| RespValue::BulkString(value.map(<[u8]>::to_vec)))
                .collect(),
        ),
    ])
}

#[test]
fn reads_are_classified_from_their_replies() {
    let written = b"probe 1 7 xxxx";
    assert_eq!(
        outcome_of(written, get_reply(&[Some(written)])),
        ReadOutcome::Fresh
    );
    // Siblings: fresh as long as the probe's value is among them.
    assert_eq!(
        outcome_of(written, get_reply(&[Some(b"other"), Some(written)])),
        ReadOutcome::Fresh
    );
    assert_eq!(outcome_of(written, get_reply(&[])), ReadOutcome::Stale);
    assert_eq!(outcome_of(written, get_reply(&[None])), ReadOutcome::Stale);
    assert_eq!(
        outcome_of(written, get_reply(&[Some(b"probe 1 7 xxx")])),
        ReadOutcome::Stale
    );
    assert_eq!(
        outcome_of(written, RespValue::Error("ERR quorum".into())),
        ReadOutcome::Error
    );
    assert_eq!(
        outcome_of(written, RespValue::Integer(3)),
        ReadOutcome::Error
    );
}

#[test]
fn a_scripted_history_gives_p_fresh_per_delay_with_counts() {
    let mut report = ProbeReport::new(&[0.0, 10.0]);
    // Delay 0: 1 fresh of 4 answered, 1 error; delay 10: 3 of 3.
    let script = [
        (0, 0.4, ReadOutcome::Stale),
        (0, 0.6, ReadOutcome::Fresh),
        (0, 0.5, ReadOutcome::Stale),
        (0, 0.5, ReadOutcome::Stale),
        (0, 9.0, ReadOutcome::Error),
        (1, 10.5, ReadOutcome::Fresh),
        (1, 10.0, ReadOutcome::Fresh),
        (1, 11.5, ReadOutcome::Fresh),
        (7, 1.0, ReadOutcome::Fresh),
    ];
    for (delay_index, started_ms, outcome) in script {
        report.record(&Observation {
            delay_index,
            started_ms,
            outcome,
        });
    }
    report.record_write(Some(4.0));
    report.record_write(Some(6.0));
    report.record_write(None);
    let rows = &report.rows;
    assert_eq!((rows[0].reads, rows[0].fresh, rows[0].errors), (4, 1, 1));
    assert_eq!(rows[0].p_fresh(), Some(0.25));
    assert!((rows[0].mean_started_ms() - 0.5).abs() < 1e-9);
    assert_eq!(rows[1].p_fresh(), Some(1.0));
    assert_eq!(rows[1].confidence_95(), 0.0);
    assert!((rows[1].mean_started_ms() - 32.0 / 3.0).abs() < 1e-9);
    assert_eq!((report.writes, report.write_errors), (2, 1));
    assert_eq!(report.measured_points(4), vec![(0.5, 0.25)]);
    let mut doubled = report.clone();
    doubled.merge(&report);
    assert_eq!(doubled.rows[0].reads, 8);
    assert_eq!(doubled.rows[0].p_fresh(), Some(0.25));
    let csv = report.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1], "0,0.500,4,1,3,1,0.25000,0.42435");
    // An empty row prints no probability.
    assert!(ProbeReport::new(&[5.0])
        .to_csv()
        .contains("5,5.000,0,0,0,0,,0.00000"));
}

#[test]
fn options_read_properties_and_name_bad_ones() {
    let mut properties = Properties::new();
    properties.set("probe.delays_ms", "0, 3,9");
    properties.set("probe.coordinators", "any");
    properties.set("probe.count", "12");
    let options = ProbeOptions::from_properties(&properties).unwrap();
    assert_eq!(options.delays_ms, vec![0.0, 3.0, 9.0]);
    assert_eq!(options.coordinators, Coordinators::Any);
    assert_eq!(options.count, 12);
    for (name, value) in [
        ("probe.delays_ms", "5,1"),
        ("probe.delays_ms", "1,x"),
        ("probe.count", "0"),
        ("probe.coordinators", "nearest"),
        ("probe.rate", "-1"),
    ] {
        let mut properties = Properties::new();
        properties.set(name, value);
        let error = ProbeOptions::from_properties(&properties)
            .unwrap_err()
            .to_string();
        assert!(error.contains(name), "{name}={value}: {error}");
    }
    let mut properties = Properties::new();
    properties.set("cluster.write_request_delay", "exp:40");
    properties.set("cluster.replicas", "3");
    let cluster = PbsClusterOptions::from_properties(&properties).unwrap();
    let model = cluster.wars_model(1, 1);
    assert_eq!(model.delays[0].write.mean_ms(), Some(40.0));
    assert_eq!(model.delays[0].ack.mean_ms(), Some(10.0));
    let store = cluster.store_model(1, 1);
    assert_eq!(store.delays[0].write.mean_ms(), Some(0.0));
    assert_eq!(store.delays[1].write.mean_ms(), Some(40.0));
    properties.set("cluster.replicas", "9");
    let error = PbsClusterOptions::from_properties(&properties)
        .unwrap_err()
        .to_string();
    assert!(error.contains("cluster.replicas"), "{error}");
}

#[test]
fn plans_use_two_non_replica_coordinators_when_there_are_enough_nodes() {
    let options = ProbeOptions {
        count: 200,
        ..ProbeOptions::default()
    };
    // A fake ring: 5 nodes, replicas are 3 nodes picked from the key's bytes.
    let replicas_of = |key: &[u8]| {
        let first = key.iter().map(|&b| b as usize).sum::<usize>() % 5;
        vec![first, (first + 1) % 5, (first + 2) % 5]
    };
    let plans = plan(&options, 5, &replicas_of).unwrap();
    assert_eq!(plans.len(), 200);
    for plan in &plans {
        let replicas = replicas_of(&plan.key);
        assert_ne!(plan.writer, plan.reader);
        assert!(!replicas.contains(&plan.writer) && !replicas.contains(&plan.reader));
        assert!(!plan.replica_coordinated);
        assert!(plan.value.len() >= options.value_bytes);
    }
    // Only N + 1 nodes: falls back to any two different nodes.
    let plans = plan(&options, 4, &|_: &[u8]| vec![0, 1, 2]).unwrap();
    assert!(plans.iter().all(|plan| plan.writer != plan.reader));
    assert!(plans.iter().any(|plan| plan.replica_coordinated));
    assert!(plan(&options, 1, &replicas_of).is_err());
}

/// A few probes against an embedded 5-node cluster with constant delays, where the outcome
/// is certain: W = 30 ms, so a read at t = 0 through non-replica coordinators (R + S = 2 ms)
/// finds the key only on the minting replica; a read 150 ms after the ack finds it anywhere.
#[test]
fn a_small_probe_run_against_an_embedded_cluster() {
    let mut properties = Properties::new();
    for (name, value) in [
        ("cluster.write_request_delay", "const(30)"),
        ("cluster.write_ack_delay", "const(1)"),
        ("cluster.read_request_delay", "const(1)"),
        ("cluster.read_response_delay", "const(1)"),
    ] {
        properties.set(name, value);
    }
    let cluster_options = PbsClusterOptions::from_properties(&properties).unwrap();
    let cluster = PbsCluster::start(&cluster_options).unwrap();
    let options = ProbeOptions {
        delays_ms: vec![0.0, 150.0],
        count: 12,
        concurrency: 3,
        rate: 0.0,
        ..ProbeOptions::default()
    };
    let report = run_probes(&cluster.client_addresses(), &options).unwrap();
    assert_eq!(report.writes, 12, "{report:?}");
    assert_eq!(report.replica_coordinated, 0);
    let (now, later) = (&report.rows[0], &report.rows[1]);
    assert_eq!(now.reads + now.errors, 12);
    assert_eq!(later.reads, 12, "{report:?}");
    assert_eq!(later.fresh, 12, "{report:?}");
    // At t = 0 a read is fresh only when the minting replica answers first; with three
    // replicas that is not every time (bounded loosely: 12 reads).
    assert!(now.fresh < now.reads, "{report:?}");
}
