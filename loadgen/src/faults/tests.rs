use super::*;

fn error_of(text: &str) -> String {
    Schedule::parse(text).unwrap_err().to_string()
}

#[test]
fn the_flag_example_parses_in_time_order() {
    let schedule = Schedule::parse(
        "10s kill n2; 20s restart n2; 30s partition dc1 dc2; 40s heal; \
         45s link dc1 dc2 delay=50ms loss=0.01",
    )
    .unwrap();
    let actions: Vec<(u64, &Action)> = schedule
        .events
        .iter()
        .map(|event| (event.at.as_secs(), &event.action))
        .collect();
    let dcs = Pair {
        nodes: false,
        a: "dc1".into(),
        b: "dc2".into(),
    };
    assert_eq!(
        actions,
        vec![
            (10, &Action::Kill("n2".into())),
            (20, &Action::Restart("n2".into())),
            (30, &Action::Partition(dcs.clone())),
            (40, &Action::Heal(None)),
            (
                45,
                &Action::Link {
                    pair: dcs,
                    delay: Some("50".into()),
                    loss: Some(0.01)
                }
            ),
        ]
    );
    assert!(schedule.has_node_events());
}

#[test]
fn lines_comments_units_and_order() {
    let schedule = Schedule::parse(
        "# a comment\nat 1.5s stop n3\n\n500ms partition n1 n4   # nodes\n2m heal dc1 dc2\n\
         3 link node n1 n2 loss=1%\n4s link reset\n5s add n7\n6s remove n3\n7s cleanup\n\
         8s Cleanup COMPACT\n",
    )
    .unwrap();
    let times: Vec<u128> = schedule.events.iter().map(|e| e.at.as_millis()).collect();
    assert_eq!(
        times,
        vec![500, 1500, 3000, 4000, 5000, 6000, 7000, 8000, 120_000]
    );
    let partition = &schedule.events[0].action;
    assert_eq!(
        partition.link_command().unwrap(),
        vec!["LINK.PARTITION", "NODE", "n1", "n4"]
    );
    assert_eq!(partition.target(), "n1-n4");
    assert_eq!(
        schedule.events[2].action.link_command().unwrap(),
        vec!["LINK.SET", "NODE", "n1", "n2", "DELAY", "0", "LOSS", "0.01"]
    );
    assert_eq!(schedule.events[3].action, Action::LinkReset);
    assert_eq!(schedule.events[4].action, Action::Add("n7".into()));
    assert_eq!(schedule.events[5].action, Action::Remove("n3".into()));
    let cleanup = &schedule.events[6].action;
    assert_eq!(cleanup, &Action::Cleanup { compact: false });
    assert_eq!(
        (cleanup.name(), cleanup.target()),
        ("cleanup", "all".into())
    );
    assert_eq!(
        cleanup.node(),
        None,
        "not a node event: it runs against --hosts too"
    );
    assert_eq!(schedule.events[7].action, Action::Cleanup { compact: true });
    assert_eq!(
        schedule.events[8].action.link_command().unwrap(),
        vec!["LINK.HEAL", "dc1", "dc2"]
    );
    assert!(Schedule::parse("  ; \n# only comments\n")
        .unwrap()
        .is_empty());
}

#[test]
fn bad_entries_are_named_with_the_problem() {
    let cases = [
        (
            "1s kill n2; 3x restart n2",
            "entry 2 \"3x restart n2\"",
            "bad time",
        ),
        ("1s explode n2", "entry 1", "unknown action \"explode\""),
        ("1s", "entry 1", "no action"),
        ("1s kill", "entry 1", "one node name"),
        ("1s kill n1 n2", "entry 1", "one node name"),
        ("1s partition dc1", "entry 1", "two sides"),
        ("1s partition dc1 dc1", "entry 1", "two different sides"),
        ("1s partition dc1 dc2 dc3", "entry 1", "unexpected \"dc3\""),
        ("1s link dc1 dc2", "entry 1", "delay=D and/or loss=P"),
        ("1s link dc1 dc2 loss=2", "entry 1", "loss=\"2\""),
        ("1s link dc1 dc2 delay=fast", "entry 1", "delay=\"fast\""),
        (
            "1s link dc1 dc2 jitter=5",
            "entry 1",
            "unknown link option \"jitter\"",
        ),
        (
            "1s link dc1 dc2 delay=5 delay=6",
            "entry 1",
            "delay given twice",
        ),
        ("-1s kill n2", "entry 1", "non-negative"),
        ("1s cleanup now", "entry 1", "nothing or `compact`"),
    ];
    for (text, entry, problem) in cases {
        let error = error_of(text);
        assert!(error.contains(entry), "{text}: {error}");
        assert!(error.contains(problem), "{text}: {error}");
    }
}

#[test]
fn toml_files_and_their_errors() {
    let schedule = Schedule::from_toml(
        "[[event]]\nat = \"3s\"\ndo = \"restart n2\"\n\n[[event]]\nat = 1\ndo = \"kill n2\"\n",
    )
    .unwrap();
    assert_eq!(schedule.events.len(), 2);
    assert_eq!(schedule.events[0].action, Action::Kill("n2".into()));
    assert_eq!(schedule.events[1].at, Duration::from_secs(3));
    let unknown = Schedule::from_toml("[[event]]\nat = 1\nwhat = \"kill n2\"\n")
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("what"), "{unknown}");
    let bad = Schedule::from_toml("[[event]]\nat = \"soon\"\ndo = \"kill n2\"\n")
        .unwrap_err()
        .to_string();
    assert!(bad.contains("soon"), "{bad}");
}

#[test]
fn remote_targets_refuse_node_events_before_the_run() {
    let schedule = Schedule::parse("1s partition dc1 dc2; 2s kill n2").unwrap();
    let remote = exec::RemoteNodes {
        addresses: Vec::new(),
    };
    let error = exec::check_schedule(&schedule, &remote)
        .unwrap_err()
        .to_string();
    assert!(error.contains("\"2s kill n2\""), "{error}");
    assert!(error.contains("only the nodes it started"), "{error}");
    let add = Schedule::parse("1s add n9").unwrap();
    let error = exec::check_schedule(&add, &remote).unwrap_err().to_string();
    assert!(error.contains("not supported yet"), "{error}");
}

#[test]
fn events_csv_has_the_plotting_columns() {
    let directory = tempfile::tempdir().unwrap();
    let records = vec![EventRecord {
        time_s: 1.0004,
        event: "kill".into(),
        target: "n2".into(),
        result: "ok: SIGKILL, pid 7".into(),
        took_s: 0.01,
    }];
    let path = write_events_csv(directory.path(), &records).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        text,
        "time_s,event,target,result,end_s\n1.000,kill,n2,\"ok: SIGKILL, pid 7\",1.010\n"
    );
}

#[test]
fn a_schedule_implies_one_spare_per_added_node_and_add_names_a_spare() {
    let options = crate::local::LocalClusterOptions {
        datacenters: 1,
        nodes_per_datacenter: 3,
        replication: cluster::ring::Replication::Total(3),
        ..Default::default()
    };
    let schedule = Schedule::parse("1s add n4; 2s kill n4; 3s add n5; 4s restart n4").unwrap();
    assert_eq!(super::embedded::spares_needed(&schedule), 2);
    assert_eq!(
        super::embedded::spares_needed(&Schedule::parse("1s kill n2").unwrap()),
        0
    );
    // Without spares `add` is refused, naming the entry and the fix.
    let error = super::embedded::check_schedule(&schedule, &options)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("\"1s add n4\"") && error.contains("no spare node"),
        "{error}"
    );
    let spared = crate::local::LocalClusterOptions {
        spare_nodes: 2,
        ..options.clone()
    };
    super::embedded::check_schedule(&schedule, &spared).unwrap();
    // `add` of a started node, or past the spares, is refused.
    for text in ["1s add n2", "1s add n6"] {
        let error = super::embedded::check_schedule(&Schedule::parse(text).unwrap(), &spared)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("spare nodes are n4 to n5"),
            "{text}: {error}"
        );
    }
}
