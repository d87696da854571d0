use super::*;

fn error_text(result: Result<impl std::fmt::Debug>) -> String {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error.to_string(),
    }
}

const THREE_NODES: &str = r#"
node_id = "n1"
datacenter = "dc1"
replication = 3
[[members]]
id = "n1"
datacenter = "dc1"
client_address = "127.0.0.1:7379"
peer_address = "127.0.0.1:7380"
[[members]]
id = "n2"
datacenter = "dc1"
client_address = "127.0.0.2:7379"
peer_address = "127.0.0.2:7380"
"#;

#[test]
fn empty_file_is_a_valid_single_node() {
    let config = NodeConfig::parse("").unwrap();
    assert_eq!(config, NodeConfig::default());
    config.validate().unwrap();
    assert!(config.is_single_node());
    assert_eq!(config.effective_replicas(), 1);
    assert_eq!(config.client_address.port(), 7379);
}

#[test]
fn unknown_field_is_named() {
    let text = error_text(NodeConfig::parse("node_idd = \"x\""));
    assert!(text.contains("node_idd"), "{text}");
}

#[test]
fn nested_sections_parse() {
    let config = NodeConfig::parse(
        "requirepass = \"secret\"\n[engine.wal.sync]\npolicy = \"always\"\n[versions]\npolicy = \"lww\"\n[limits]\nscan_count_max = 5\n",
    )
    .unwrap();
    assert_eq!(config.engine.wal.sync, engine::SyncPolicy::Always);
    assert_eq!(
        config.versions.policy,
        crate::version::ConflictPolicy::LastWriteWins
    );
    assert_eq!(config.limits.scan_count_max, 5);
    assert_eq!(config.requirepass.as_deref(), Some("secret"));
    config.validate().unwrap();
}

#[test]
fn more_replicas_than_members_is_refused() {
    let config = NodeConfig::parse(THREE_NODES).unwrap();
    let text = error_text(config.validate());
    assert!(
        text.contains("replication: 3 replicas but 2 members"),
        "{text}"
    );
}

#[test]
fn consistency_above_replicas_is_refused() {
    let mut config = NodeConfig::parse(THREE_NODES).unwrap();
    config.replication = Replication::Total(2);
    config.validate().unwrap();
    config.default_consistency = Consistency::Counts {
        read: None,
        write: Some(3),
    };
    let text = error_text(config.validate());
    assert!(
        text.contains("default_consistency: W 3 but 2 replicas"),
        "{text}"
    );
}

#[test]
fn semantic_errors_name_their_field() {
    let cases: [(&str, &str); 5] = [
        ("node_id = \"\"", "node_id"),
        ("vnodes_per_weight = 0", "vnodes_per_weight"),
        ("[versions]\nsiblings_max = 0", "versions.siblings_max"),
        (
            "[engine]\nmemtable_size_bytes = 1",
            "engine.memtable_size_bytes",
        ),
        ("request_timeout_ms = 0", "request_timeout_ms"),
    ];
    for (text, field) in cases {
        let message = error_text(NodeConfig::parse(text).unwrap().validate());
        assert!(message.contains(field), "{text}: {message}");
    }
}

#[test]
fn this_node_must_be_a_member() {
    let mut config = NodeConfig::parse(THREE_NODES).unwrap();
    config.replication = Replication::Total(1);
    config.node_id = "n9".into();
    let text = error_text(config.validate());
    assert!(text.contains("not in the member list"), "{text}");
}

#[test]
fn cluster_secret_parses_and_an_empty_one_is_named() {
    let config = NodeConfig::parse("cluster_secret = \"s3cret\"\n").unwrap();
    assert_eq!(config.cluster_secret.as_deref(), Some("s3cret"));
    config.validate().unwrap();
    assert_eq!(NodeConfig::default().cluster_secret, None);
    let empty = NodeConfig::parse("cluster_secret = \"\"\n").unwrap();
    let text = error_text(empty.validate());
    assert!(text.contains("cluster_secret"), "{text}");
}

#[test]
fn default_addresses_are_loopback() {
    let config = NodeConfig::default();
    assert!(config.client_address.ip().is_loopback());
    assert!(config.peer_address.ip().is_loopback());
}

#[test]
fn membership_section_defaults_parses_and_names_bad_fields() {
    assert_eq!(
        NodeConfig::parse("").unwrap().membership,
        MembershipConfig::default()
    );
    let config = NodeConfig::parse(
        "[membership]\ninterval_ms = 100\nsuspect_after_ms = 500\ndown_after_ms = 1000\n",
    )
    .unwrap();
    assert_eq!(config.membership.interval_ms, 100);
    assert_eq!(config.membership.fanout, MembershipConfig::default().fanout);
    config.validate().unwrap();
    for (text, field) in [
        ("[membership]\nfanout = 0", "membership.fanout"),
        ("[membership]\ninterval_ms = 0", "membership.interval_ms"),
        (
            "[membership]\nsuspect_after_ms = 20000",
            "membership.down_after_ms",
        ),
    ] {
        let message = error_text(NodeConfig::parse(text).unwrap().validate());
        assert!(message.contains(field), "{text}: {message}");
    }
    let message = error_text(NodeConfig::parse("[membership]\nintervall_ms = 5"));
    assert!(message.contains("intervall_ms"), "{message}");
}
