//! Lookup precedence, loss, partitions, run-time changes and the `[links]` TOML section.

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

const US_1: Endpoint<'static> = Endpoint {
    node: "us-1",
    datacenter: "us",
};
const US_2: Endpoint<'static> = Endpoint {
    node: "us-2",
    datacenter: "us",
};
const EU_1: Endpoint<'static> = Endpoint {
    node: "eu-1",
    datacenter: "eu",
};
const EU_2: Endpoint<'static> = Endpoint {
    node: "eu-2",
    datacenter: "eu",
};
const AP_1: Endpoint<'static> = Endpoint {
    node: "ap-1",
    datacenter: "ap",
};
const ALL: [Endpoint<'static>; 5] = [US_1, US_2, EU_1, EU_2, AP_1];

fn constant(ms: f64) -> LinkSpec {
    LinkSpec::with_delay(DelayDistribution::Constant { ms })
}

fn delay_ms(table: &LinkTable, from: Endpoint<'_>, to: Endpoint<'_>) -> Option<f64> {
    match table.verdict(from, to, &mut StdRng::seed_from_u64(0)) {
        Verdict::Deliver { delay } => Some(delay.as_secs_f64() * 1000.0),
        Verdict::Drop(_) => None,
    }
}

fn table() -> LinkTable {
    LinkTable::new(constant(1.0), constant(50.0)).unwrap()
}

#[test]
fn defaults_differ_within_and_across_datacenters() {
    let table = table();
    assert_eq!(delay_ms(&table, US_1, US_2), Some(1.0));
    assert_eq!(delay_ms(&table, US_1, EU_1), Some(50.0));
    assert_eq!(table.spec(US_1, US_2).1, LinkScope::IntraDatacenter);
    assert_eq!(table.spec(EU_1, US_2).1, LinkScope::InterDatacenter);
    // A node's message to itself skips the network entirely.
    assert_eq!(delay_ms(&table, US_1, US_1), Some(0.0));
}

#[test]
fn node_pair_beats_datacenter_pair_beats_default() {
    let mut table = table();
    table
        .set_datacenter_link("us", "eu", constant(80.0), true)
        .unwrap();
    table
        .set_datacenter_link("ap", "ap", constant(3.0), false)
        .unwrap();
    table
        .set_node_link("us-1", "eu-1", constant(200.0), false)
        .unwrap();

    assert_eq!(delay_ms(&table, US_1, EU_1), Some(200.0));
    assert_eq!(table.spec(US_1, EU_1).1, LinkScope::NodePair);
    // The node override was one-way: the reverse falls back to the datacenter pair.
    assert_eq!(delay_ms(&table, EU_1, US_1), Some(80.0));
    assert_eq!(table.spec(EU_1, US_1).1, LinkScope::DatacenterPair);
    assert_eq!(delay_ms(&table, US_2, EU_2), Some(80.0));
    assert_eq!(delay_ms(&table, EU_2, US_2), Some(80.0));
    // No override for us <-> ap: the cross-datacenter default.
    assert_eq!(delay_ms(&table, US_1, AP_1), Some(50.0));
    // A datacenter paired with itself overrides the same-datacenter default there only.
    let ap_2 = Endpoint::new("ap-2", "ap");
    assert_eq!(delay_ms(&table, AP_1, ap_2), Some(3.0));
    assert_eq!(delay_ms(&table, US_1, US_2), Some(1.0));

    assert_eq!(table.clear_node_link("us-1", "eu-1", true), 1);
    assert_eq!(delay_ms(&table, US_1, EU_1), Some(80.0));
    assert_eq!(table.clear_datacenter_link("us", "eu", true), 2);
    assert_eq!(delay_ms(&table, US_1, EU_1), Some(50.0));
}

#[test]
fn loss_drops_about_the_configured_fraction() {
    let table = LinkTable::new(constant(1.0).loss(0.1), constant(5.0)).unwrap();
    let mut rng = StdRng::seed_from_u64(42);
    let trials = 100_000;
    let mut lost = 0;
    for _ in 0..trials {
        match table.verdict(US_1, US_2, &mut rng) {
            Verdict::Drop(DropReason::Lost) => lost += 1,
            Verdict::Deliver { delay } => assert_eq!(delay, Duration::from_millis(1)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            table.verdict(US_1, EU_1, &mut rng),
            Verdict::Deliver { .. }
        ));
    }
    let fraction = f64::from(lost) / f64::from(trials);
    // Standard error is about 0.001; allow five.
    assert!((fraction - 0.1).abs() < 0.005, "{fraction}");

    let always = LinkTable::new(constant(1.0).loss(1.0), constant(1.0)).unwrap();
    assert_eq!(delay_ms(&always, US_1, US_2), None);
}

#[test]
fn datacenter_partition_drops_both_ways_until_healed() {
    let mut table = table();
    let id = table
        .partition(
            PartitionGroup::datacenter("us"),
            PartitionGroup::datacenter("eu"),
        )
        .unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    for from in ALL {
        for to in ALL {
            let crosses = from.datacenter != to.datacenter
                && from.datacenter != "ap"
                && to.datacenter != "ap";
            let verdict = table.verdict(from, to, &mut rng);
            if crosses {
                assert_eq!(verdict, Verdict::Drop(DropReason::Partitioned(id)));
            } else {
                assert!(
                    matches!(verdict, Verdict::Deliver { .. }),
                    "{from:?} {to:?}"
                );
            }
        }
    }
    assert!(table.heal(id));
    assert!(!table.heal(id), "healing twice finds nothing");
    for from in ALL {
        for to in ALL {
            assert!(matches!(
                table.verdict(from, to, &mut rng),
                Verdict::Deliver { .. }
            ));
        }
    }
}

#[test]
fn node_set_and_one_way_partitions() {
    let mut table = table();
    // Isolate us-1 from everyone else, whatever overrides say.
    table
        .set_node_link("us-1", "us-2", constant(0.5), true)
        .unwrap();
    let isolated = table
        .partition(
            PartitionGroup::nodes(["us-1"]),
            PartitionGroup::datacenters(["us", "eu", "ap"]),
        )
        .unwrap();
    for other in [US_2, EU_1, EU_2, AP_1] {
        assert_eq!(delay_ms(&table, US_1, other), None);
        assert_eq!(delay_ms(&table, other, US_1), None);
    }
    assert_eq!(delay_ms(&table, US_2, EU_1), Some(50.0));

    let one_way = table
        .partition_one_way(
            PartitionGroup::nodes(["eu-1"]),
            PartitionGroup::nodes(["eu-2"]),
        )
        .unwrap();
    assert_eq!(delay_ms(&table, EU_1, EU_2), None);
    assert_eq!(delay_ms(&table, EU_2, EU_1), Some(1.0));
    assert_eq!(table.partitioned_by(EU_1, EU_2), Some(one_way));

    assert_eq!(table.heal_all(), 2);
    assert_eq!(delay_ms(&table, US_1, US_2), Some(0.5));
    assert_eq!(delay_ms(&table, EU_1, EU_2), Some(1.0));
    assert!(!table.heal(isolated));
}

#[test]
fn static_cut_links_stay_down_after_heal_all() {
    let mut table = table();
    table
        .set_datacenter_link("us", "ap", constant(1.0).cut(), true)
        .unwrap();
    assert_eq!(table.heal_all(), 0);
    let verdict = table.verdict(AP_1, US_2, &mut StdRng::seed_from_u64(0));
    assert_eq!(verdict, Verdict::Drop(DropReason::LinkDown));
}

#[test]
fn bad_specs_and_limits_are_rejected() {
    let mut table = table();
    let error = table
        .set_node_link("a", "b", constant(1.0).loss(1.5), true)
        .unwrap_err();
    assert!(
        error.to_string().contains("loss: 1.5 is not a probability"),
        "{error}"
    );
    assert!(table
        .set_datacenter_link("", "eu", constant(1.0), true)
        .is_err());
    assert!(table
        .partition(PartitionGroup::default(), PartitionGroup::datacenter("eu"))
        .is_err());
    for _ in 0..MAX_PARTITIONS {
        table
            .partition(
                PartitionGroup::datacenter("us"),
                PartitionGroup::datacenter("eu"),
            )
            .unwrap();
    }
    assert!(matches!(
        table.partition(
            PartitionGroup::datacenter("us"),
            PartitionGroup::datacenter("eu")
        ),
        Err(Error::LimitExceeded { .. })
    ));
}

#[test]
fn override_count_is_limited() {
    let mut table = table();
    for index in 0..MAX_LINK_OVERRIDES / 2 {
        let (from, to) = (format!("a{index}"), format!("b{index}"));
        table
            .set_node_link(&from, &to, constant(1.0), true)
            .unwrap();
    }
    let error = table
        .set_node_link("x", "y", constant(1.0), false)
        .unwrap_err();
    assert!(matches!(error, Error::LimitExceeded { .. }), "{error}");
    // Replacing an existing pair adds nothing, and clearing one frees a slot.
    table
        .set_node_link("a0", "b0", constant(2.0), true)
        .unwrap();
    assert_eq!(table.clear_node_link("a1", "b1", false), 1);
    table.set_node_link("x", "y", constant(1.0), false).unwrap();
    assert_eq!(
        delay_ms(&table, Endpoint::new("x", "us"), Endpoint::new("y", "eu")),
        Some(1.0)
    );
}

#[test]
fn emulator_changes_apply_at_run_time() {
    let emulator = LinkEmulator::new(table());
    let mut rng = StdRng::seed_from_u64(3);
    assert_eq!(
        emulator.verdict(US_1, EU_1, &mut rng),
        Verdict::Deliver {
            delay: Duration::from_millis(50)
        }
    );
    emulator
        .update(|table| table.set_inter_datacenter(constant(70.0)))
        .unwrap();
    assert_eq!(
        emulator.verdict(US_1, EU_1, &mut rng),
        Verdict::Deliver {
            delay: Duration::from_millis(70)
        }
    );
    let id = emulator
        .partition(
            PartitionGroup::datacenter("us"),
            PartitionGroup::datacenter("eu"),
        )
        .unwrap();
    assert_eq!(
        emulator.verdict(EU_1, US_1, &mut rng),
        Verdict::Drop(DropReason::Partitioned(id))
    );
    assert_eq!(emulator.heal_all(), 1);
    let old = emulator.replace(LinkTable::default());
    assert_eq!(old.inter_datacenter, constant(70.0));
    assert_eq!(emulator.snapshot(), LinkTable::default());
}

#[test]
fn describe_lists_defaults_overrides_and_partitions() {
    let mut table = table();
    table
        .set_datacenter_link(
            "us",
            "eu",
            LinkSpec::with_delay("40+exp(5)".parse().unwrap()),
            true,
        )
        .unwrap();
    table
        .set_node_link("us-1", "eu-1", constant(9.0).loss(0.25).cut(), false)
        .unwrap();
    table
        .partition(
            PartitionGroup::datacenter("us"),
            PartitionGroup::nodes(["eu-2"]),
        )
        .unwrap();
    table
        .partition_one_way(
            PartitionGroup::nodes(["ap-1"]),
            PartitionGroup::datacenter("eu"),
        )
        .unwrap();
    let text = table.describe();
    assert!(text.starts_with("scope"), "{text}");
    for expected in [
        "default     same dc",
        "const(50) (mean 50.000 ms)",
        "40+exp(5) (mean 45.000 ms)",
        "node        us-1      eu-1  const(9)",
        "25%   down",
        "#1 {dc us} <-> {node eu-2}",
        "#2 {node ap-1} -> {dc eu} (one way)",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from\n{text}");
    }
    assert!(LinkTable::default()
        .describe()
        .ends_with("partitions: none\n"));
}

const CONFIG: &str = r#"
intra_datacenter = { delay = "uniform(0.1,0.5)" }
inter_datacenter = { delay = { type = "exponential", mean_ms = 20 }, loss = 0.001 }

[[datacenter_links]]
from = "us"
to = "eu"
delay = "40+exp(5)"

[[datacenter_links]]
from = "us"
to = "ap"
symmetric = false
delay = "preset:linkedin-ssd"

[[node_links]]
from = "us-1"
to = "eu-1"
symmetric = false
partitioned = true
"#;

#[test]
fn config_builds_the_table_and_round_trips_through_toml() {
    let config: LinkConfig = toml::from_str(CONFIG).unwrap();
    config.validate().unwrap();
    let table = LinkTable::from_config(&config).unwrap();
    assert_eq!(
        table.spec(US_1, US_2).0.delay.to_string(),
        "uniform(0.1,0.5)"
    );
    assert_eq!(table.spec(US_2, EU_1).0.delay.mean_ms(), Some(45.0));
    assert_eq!(table.spec(EU_1, US_2).1, LinkScope::DatacenterPair);
    assert_eq!(table.spec(US_1, AP_1).1, LinkScope::DatacenterPair);
    assert_eq!(table.spec(AP_1, US_1).1, LinkScope::InterDatacenter);
    assert_eq!(delay_ms(&table, US_1, EU_1), None);

    let written = toml::to_string(&config).unwrap();
    let read_back: LinkConfig = toml::from_str(&written).unwrap();
    assert_eq!(read_back, config, "{written}");

    // The table's own configuration rebuilds an equal table, symmetric pairs folded.
    let exported = table.to_config();
    assert_eq!(exported.datacenter_links.len(), 2);
    assert!(exported.datacenter_links.iter().any(|link| link.symmetric));
    let written = toml::to_string(&exported).unwrap();
    let rebuilt = LinkTable::from_config(&toml::from_str(&written).unwrap()).unwrap();
    assert_eq!(rebuilt, table);

    let empty: LinkConfig = toml::from_str("").unwrap();
    assert_eq!(empty, LinkConfig::default());
    assert_eq!(
        LinkTable::from_config(&empty).unwrap(),
        LinkTable::default()
    );
}

#[test]
fn config_errors_name_the_problem() {
    let cases = [
        (
            "inter_datacenter = { loss = 1.5 }",
            "loss: 1.5 is not a probability",
        ),
        (
            "intra_datacenter = { delay = \"exp(\" }",
            "expected a number for mean_ms",
        ),
        (
            "intra_datacenter = { latency = 5 }",
            "unknown field `latency`",
        ),
        ("[[node_links]]\nfrom = \"a\"\n", "missing field `to`"),
        (
            "[[node_links]]\nfrom = \"a\"\nto = \"b\"\ndelay = \"exp(-1)\"",
            "non-negative",
        ),
    ];
    for (text, expected) in cases {
        let error = match toml::from_str::<LinkConfig>(text) {
            Err(error) => error.to_string(),
            Ok(config) => config.validate().unwrap_err().to_string(),
        };
        assert!(
            error.contains(expected),
            "{text}: {error:?} lacks {expected:?}"
        );
    }
}
