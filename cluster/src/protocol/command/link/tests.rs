use super::*;
use crate::net::{LinkConfig, LinkTable, PairKind};
use crate::protocol::error_reply_text;

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// Parses `LINK.<name> <arguments>` as the client parser does.
fn link(name: &str, arguments: &str) -> Result<(LinkChange, bool)> {
    match parse(name, words(arguments))? {
        Request::LinkUpdate { change, local } => Ok((change, local)),
        other => panic!("{other:?}"),
    }
}

fn change(name: &str, arguments: &str) -> LinkChange {
    link(name, arguments)
        .unwrap_or_else(|error| panic!("{name} {arguments}: {error}"))
        .0
}

fn error(name: &str, arguments: &str) -> String {
    match link(name, arguments) {
        Ok(parsed) => panic!("{name} {arguments} parsed as {parsed:?}"),
        Err(error) => {
            assert!(matches!(error, Error::Command(_)), "{error:?}");
            error_reply_text(&error)
        }
    }
}

fn spec_of(change: &LinkChange) -> (&LinkPair, &LinkSpec, bool) {
    match change {
        LinkChange::Set {
            pair,
            spec,
            symmetric,
        } => (pair, spec, *symmetric),
        other => panic!("{other:?}"),
    }
}

#[test]
fn set_takes_every_delay_form_of_the_config_syntax() {
    let forms = [
        ("50", 50.0),
        ("const(50)", 50.0),
        ("uniform(1,3)", 2.0),
        ("normal(50,5)", 50.0),
        ("exp(20)", 20.0),
        ("pareto(10,2)", 20.0),
        ("40+exp(5)", 45.0),
        ("mix(0.5*const(10), 0.5*const(30))", 20.0),
        ("DELAY const(7)", 7.0),
    ];
    for (text, mean) in forms {
        let parsed = change("link.set", &format!("dc1 dc2 {text}"));
        let (pair, spec, symmetric) = spec_of(&parsed);
        assert_eq!(pair, &LinkPair::datacenters("dc1", "dc2"));
        assert!(symmetric);
        assert_eq!(spec.loss, 0.0);
        let actual = spec.delay.mean_ms().unwrap();
        assert!((actual - mean).abs() < 1e-9, "{text}: mean {actual}");
    }
    let preset = change("link.set", "dc1 dc2 preset:linkedin-ssd");
    assert!(spec_of(&preset).1.delay.mean_ms().unwrap() > 0.0);
}

#[test]
fn set_options_loss_oneway_down_node_and_local() {
    let (parsed, local) = link("link.set", "NODE n1 n2 exp(5) LOSS 1% ONEWAY local").unwrap();
    assert!(local);
    let (pair, spec, symmetric) = spec_of(&parsed);
    assert_eq!(pair.kind, PairKind::Node);
    assert_eq!((pair.from.as_str(), pair.to.as_str()), ("n1", "n2"));
    assert!((spec.loss - 0.01).abs() < 1e-12);
    assert!(!symmetric);
    let loss_only = change("link.set", "dc1 dc2 loss 0.25");
    assert_eq!(spec_of(&loss_only).1.loss, 0.25);
    assert_eq!(spec_of(&loss_only).1.delay.mean_ms(), Some(0.0));
    assert!(spec_of(&change("link.set", "dc1 dc2 DOWN")).1.partitioned);
    let (_, local) = link("link.set", "dc1 dc2 const(1)").unwrap();
    assert!(!local);
}

#[test]
fn bad_specs_name_the_bad_word() {
    let cases = [
        ("dc1 dc2 expo(5)", "expo"),
        ("dc1 dc2 const(50", "const(50"),
        ("dc1 dc2 uniform(5,1)", "uniform"),
        ("dc1 dc2 preset:nosuch", "nosuch"),
        ("dc1 dc2 exp(5) LOSS 2", "'2'"),
        ("dc1 dc2 exp(5) LOSS abc", "'abc'"),
        ("dc1 dc2 exp(5) LOSS", "LOSS needs a probability"),
        ("dc1 dc2 exp(5) LOSS 0.1 LOSS 0.2", "LOSS given twice"),
        ("dc1 dc2 exp(5) ONEWAY exp(3)", "'exp(3)'"),
        ("dc1 dc2 exp(5) LOOS 0.1", "LOOS"),
        ("NODE n1 n2", "no delay, LOSS or DOWN"),
        ("NODE n1", "expected two node names"),
    ];
    for (arguments, named) in cases {
        let text = error("link.set", arguments);
        assert!(text.starts_with("ERR LINK.SET: "), "{arguments}: {text}");
        assert!(text.contains(named), "{arguments}: {text}");
    }
    let text = error("link.partition", "dc1 dc1");
    assert!(text.contains("both sides are 'dc1'"), "{text}");
    let text = error("link.partition", "dc1 dc2 dc3");
    assert!(text.contains("unexpected 'dc3'"), "{text}");
    let text = error("link.heal", "dc1");
    assert!(
        text.contains("expected two datacenter names, got 1"),
        "{text}"
    );
    let text = error("link.set", "dc1 dc2 exp(5) LOCAL LOCAL");
    assert!(text.contains("LOCAL"), "{text}");
}

#[test]
fn partition_heal_and_reset_forms() {
    assert_eq!(
        change("link.partition", "dc1 dc2"),
        LinkChange::Partition {
            pair: LinkPair::datacenters("dc1", "dc2")
        }
    );
    assert_eq!(
        change("link.partition", "node n1 n3"),
        LinkChange::Partition {
            pair: LinkPair::nodes("n1", "n3")
        }
    );
    assert_eq!(change("link.heal", ""), LinkChange::Heal { pair: None });
    assert_eq!(
        change("link.heal", "dc2 dc1"),
        LinkChange::Heal {
            pair: Some(LinkPair::datacenters("dc2", "dc1"))
        }
    );
    assert_eq!(
        link("link.heal", "LOCAL").unwrap(),
        (LinkChange::Heal { pair: None }, true)
    );
    assert_eq!(change("link.reset", ""), LinkChange::Reset);
}

#[test]
fn changes_round_trip_through_their_words() {
    let changes = [
        change(
            "link.set",
            "dc1 dc2 mix(0.9*exp(5), 0.1*(50+pareto(10,1.5))) LOSS 0.001",
        ),
        change("link.set", "NODE n1 n2 uniform(1,3) DOWN ONEWAY"),
        change("link.set", "dc1 dc2 preset:yammer"),
        change("link.partition", "NODE a b"),
        change("link.heal", "x y"),
        change("link.heal", ""),
        change("link.reset", ""),
    ];
    for original in changes {
        let words = original.to_words();
        assert_eq!(change_from_words(&words).unwrap(), original, "{words:?}");
    }
    let text = error_reply_text(&change_from_words(&words("FLY dc1")).unwrap_err());
    assert!(text.contains("'FLY'"), "{text}");
}

#[test]
fn applying_changes_sets_partitions_heals_and_resets() {
    let configured = LinkTable::from_config(&LinkConfig::default()).unwrap();
    let mut table = configured.clone();
    let summary = change("link.set", "dc1 dc2 const(50)")
        .apply(&mut table, &configured)
        .unwrap();
    assert!(
        summary.contains("dc1 <-> dc2") && summary.contains("const(50)"),
        "{summary}"
    );
    let described = table.describe();
    let reverse = described.lines().any(|line| {
        line.split_whitespace()
            .take(3)
            .eq(["datacenter", "dc2", "dc1"])
    });
    assert!(reverse, "{described}");
    for text in ["dc1 dc2", "dc2 dc3"] {
        change("link.partition", text)
            .apply(&mut table, &configured)
            .unwrap();
    }
    let summary = change("link.heal", "dc2 dc1")
        .apply(&mut table, &configured)
        .unwrap();
    assert_eq!(summary, "healed 1 partition(s) between dc dc2 and dc dc1");
    assert!(table.describe().contains("{dc dc2} <-> {dc dc3}"));
    change("link.reset", "")
        .apply(&mut table, &configured)
        .unwrap();
    assert_eq!(table, configured);
}

#[test]
fn set_takes_per_kind_delays_and_round_trips_through_words() {
    let parsed = change(
        "link.set",
        "dc1 dc1 write_request=exp:20 ack=exp(10) read_request=exp:10 s=5 + exp(5) LOSS 0",
    );
    let (pair, spec, symmetric) = spec_of(&parsed);
    assert_eq!(pair.from, "dc1");
    assert!(symmetric);
    assert_eq!(spec.delay, DelayDistribution::default());
    let kinds = &spec.kind_delays;
    assert_eq!(
        kinds.write_request,
        Some(DelayDistribution::Exponential { mean_ms: 20.0 })
    );
    assert_eq!(
        kinds.write_ack,
        Some(DelayDistribution::Exponential { mean_ms: 10.0 })
    );
    assert_eq!(
        kinds.read_response,
        Some(DelayDistribution::shifted(
            5.0,
            DelayDistribution::Exponential { mean_ms: 5.0 }
        ))
    );
    let again = change_from_words(&parsed.to_words()).unwrap();
    assert_eq!(again, parsed, "{:?}", parsed.to_words());
    // A base delay before the kinds stays the link's delay.
    let parsed = change("link.set", "NODE n1 n2 const(2) w=const(7) ONEWAY");
    let (_, spec, symmetric) = spec_of(&parsed);
    assert!(!symmetric);
    assert_eq!(spec.delay, DelayDistribution::Constant { ms: 2.0 });
    assert_eq!(
        spec.kind_delays.write_request,
        Some(DelayDistribution::Constant { ms: 7.0 })
    );
    let mut table = LinkTable::default();
    let summary = parsed.apply(&mut table, &LinkTable::default()).unwrap();
    assert!(summary.contains("write_request=const(7)"), "{summary}");
}

#[test]
fn set_refuses_bad_kinds_by_name() {
    let text = error("link.set", "dc1 dc2 writes=exp(2)");
    assert!(text.contains("unknown message kind 'writes'"), "{text}");
    let text = error("link.set", "dc1 dc2 ack=");
    assert!(text.contains("write_ack= needs a delay"), "{text}");
    let text = error("link.set", "dc1 dc2 ack=exp(1) a=exp(2)");
    assert!(text.contains("write_ack given twice"), "{text}");
    let text = error("link.set", "dc1 dc2 read=exp(x)");
    assert!(text.contains("read_request"), "{text}");
}
