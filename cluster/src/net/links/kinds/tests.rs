//! Classification, per-kind verdicts and the `kind_delays` configuration.

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::net::links::{Endpoint, LinkConfig, LinkSpec, LinkTable, Verdict};

const A: Endpoint<'static> = Endpoint {
    node: "n1",
    datacenter: "dc1",
};
const B: Endpoint<'static> = Endpoint {
    node: "n2",
    datacenter: "dc1",
};
const C: Endpoint<'static> = Endpoint {
    node: "n3",
    datacenter: "dc2",
};

fn constant(ms: f64) -> DelayDistribution {
    DelayDistribution::Constant { ms }
}

fn delay_ms(table: &LinkTable, from: Endpoint<'_>, to: Endpoint<'_>, kind: MessageKind) -> f64 {
    match table.verdict_for(from, to, kind, &mut StdRng::seed_from_u64(7)) {
        Verdict::Deliver { delay } => delay.as_secs_f64() * 1000.0,
        Verdict::Drop(reason) => panic!("dropped: {reason:?}"),
    }
}

#[test]
fn messages_are_classified_by_wars_leg() {
    let cases = [
        (
            PeerMessage::Put {
                key: b"k".to_vec(),
                siblings: vec![],
            },
            MessageKind::WriteRequest,
        ),
        (
            PeerMessage::Mint {
                key: b"k".to_vec(),
                context: vec![],
                value: None,
            },
            MessageKind::WriteRequest,
        ),
        (PeerMessage::PutAck, MessageKind::WriteAck),
        (
            PeerMessage::Get { key: b"k".to_vec() },
            MessageKind::ReadRequest,
        ),
        (
            PeerMessage::GetReply { siblings: None },
            MessageKind::ReadResponse,
        ),
        (PeerMessage::Ping, MessageKind::Other),
        (
            PeerMessage::Error {
                message: "x".into(),
            },
            MessageKind::Other,
        ),
    ];
    for (message, kind) in cases {
        assert_eq!(MessageKind::of(&message), kind, "{message:?}");
    }
    for kind in MessageKind::ALL {
        assert_eq!(MessageKind::from_name(kind.name()), Some(kind));
    }
    assert_eq!(MessageKind::from_name("W"), Some(MessageKind::WriteRequest));
    assert_eq!(MessageKind::from_name("ack"), Some(MessageKind::WriteAck));
    assert_eq!(MessageKind::from_name("s"), Some(MessageKind::ReadResponse));
    assert_eq!(MessageKind::from_name("other"), None);
}

#[test]
fn each_kind_takes_its_own_delay_and_the_rest_the_link_delay() {
    let spec = LinkSpec::with_delay(constant(5.0))
        .kind_delay(MessageKind::WriteRequest, constant(20.0))
        .kind_delay(MessageKind::ReadResponse, constant(10.0));
    let table = LinkTable::new(spec, LinkSpec::with_delay(constant(50.0))).unwrap();
    assert_eq!(delay_ms(&table, A, B, MessageKind::WriteRequest), 20.0);
    assert_eq!(delay_ms(&table, A, B, MessageKind::ReadResponse), 10.0);
    assert_eq!(delay_ms(&table, A, B, MessageKind::WriteAck), 5.0);
    assert_eq!(delay_ms(&table, A, B, MessageKind::Other), 5.0);
    // The plain verdict knows no kind: the link delay.
    match table.verdict(A, B, &mut StdRng::seed_from_u64(1)) {
        Verdict::Deliver { delay } => assert_eq!(delay.as_secs_f64() * 1000.0, 5.0),
        other => panic!("{other:?}"),
    }
    // Another datacenter's link has no kind delays.
    assert_eq!(delay_ms(&table, A, C, MessageKind::WriteRequest), 50.0);
    // A message to itself is never delayed.
    assert_eq!(delay_ms(&table, A, A, MessageKind::WriteRequest), 0.0);
}

#[test]
fn exponential_kind_delays_have_their_means() {
    let spec = LinkSpec::default()
        .kind_delay(
            MessageKind::WriteRequest,
            DelayDistribution::Exponential { mean_ms: 20.0 },
        )
        .kind_delay(
            MessageKind::WriteAck,
            DelayDistribution::Exponential { mean_ms: 10.0 },
        );
    let table = LinkTable::new(spec, LinkSpec::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let mut mean = |kind| {
        let draws = 20_000;
        let total: f64 = (0..draws)
            .map(|_| match table.verdict_for(A, B, kind, &mut rng) {
                Verdict::Deliver { delay } => delay.as_secs_f64() * 1000.0,
                Verdict::Drop(_) => unreachable!(),
            })
            .sum();
        total / draws as f64
    };
    let write = mean(MessageKind::WriteRequest);
    let ack = mean(MessageKind::WriteAck);
    assert!((19.0..21.0).contains(&write), "{write}");
    assert!((9.5..10.5).contains(&ack), "{ack}");
    assert_eq!(mean(MessageKind::ReadRequest), 0.0);
}

const CONFIG: &str = r#"
intra_datacenter = { delay = "exp(10)", kind_delays = { write_request = "exp(20)" } }

[[node_links]]
from = "n1"
to = "n3"
delay = "1"
kind_delays = { write_ack = { type = "constant", ms = 4 }, read_response = "const(3)" }
"#;

#[test]
fn configuration_reads_kind_delays_and_round_trips() {
    let config: LinkConfig = toml::from_str(CONFIG).unwrap();
    let table = LinkTable::from_config(&config).unwrap();
    let (spec, _) = table.spec(A, B);
    assert_eq!(
        spec.kind_delays.write_request,
        Some(DelayDistribution::Exponential { mean_ms: 20.0 })
    );
    assert_eq!(delay_ms(&table, A, C, MessageKind::WriteAck), 4.0);
    assert_eq!(delay_ms(&table, C, A, MessageKind::ReadResponse), 3.0);
    assert_eq!(delay_ms(&table, C, A, MessageKind::ReadRequest), 1.0);
    let written = toml::to_string(&table.to_config()).unwrap();
    let rebuilt = LinkTable::from_config(&toml::from_str(&written).unwrap()).unwrap();
    assert_eq!(rebuilt, table, "{written}");
    // A link without kind delays writes none.
    let plain = toml::to_string(&LinkConfig::default()).unwrap();
    assert!(!plain.contains("kind_delays"), "{plain}");
    assert!(table.describe().contains("write_request=exp(20)"));
}

#[test]
fn bad_kind_delays_are_refused_with_the_field() {
    for (text, expected) in [
        (
            r#"intra_datacenter = { kind_delays = { writes = "exp(1)" } }"#,
            "writes",
        ),
        (
            r#"intra_datacenter = { kind_delays = { write_ack = "exp(-1)" } }"#,
            "exp",
        ),
    ] {
        let error = match toml::from_str::<LinkConfig>(text) {
            Ok(config) => LinkTable::from_config(&config).unwrap_err().to_string(),
            Err(error) => error.to_string(),
        };
        assert!(error.contains(expected), "{text}: {error}");
    }
}
