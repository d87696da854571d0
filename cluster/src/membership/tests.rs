use super::sim::{trial, SimConfig, Simulation};
use super::*;
use crate::Error;

#[derive(Default)]
struct Recorder(Vec<(NodeId, Arc<Gossip>)>);

impl Transport for Recorder {
    fn send(&mut self, to: &NodeId, gossip: Arc<Gossip>) {
        self.0.push((to.clone(), gossip));
    }
}

fn id(name: &str) -> NodeId {
    NodeId::new(name)
}

fn config() -> MembershipConfig {
    MembershipConfig {
        interval_ms: 100,
        fanout: 2,
        suspect_after_ms: 500,
        down_after_ms: 1000,
        left_grace_ms: 2000,
    }
}

fn node(name: &str, generation: u64, seeds: &[&str], clock: &FakeClock) -> Membership {
    Membership::new(
        config(),
        id(name),
        generation,
        seeds.iter().map(|s| id(s)),
        clock.now_ms(),
        42,
    )
    .unwrap()
}

fn entry(name: &str, generation: u64, heartbeat: u64, status: Status) -> GossipEntry {
    GossipEntry {
        id: id(name),
        generation,
        heartbeat,
        status,
    }
}

fn gossip(from: &str, entries: Vec<GossipEntry>) -> Gossip {
    Gossip {
        from: id(from),
        entries,
    }
}

fn field_of(error: Error) -> String {
    match error {
        Error::InvalidConfig { field, .. } => field,
        other => panic!("expected InvalidConfig, got {other}"),
    }
}

#[test]
fn config_defaults_validate_and_round_trip_through_toml() {
    let config = MembershipConfig::default();
    config.validate().unwrap();
    let text = toml::to_string(&config).unwrap();
    let back: MembershipConfig = toml::from_str(&text).unwrap();
    assert_eq!(back, config);
    let partial: MembershipConfig = toml::from_str("fanout = 5").unwrap();
    assert_eq!(partial.fanout, 5);
    assert_eq!(partial.interval_ms, 1000);
    let unknown = toml::from_str::<MembershipConfig>("fanuot = 5").unwrap_err();
    assert!(unknown.to_string().contains("fanuot"), "{unknown}");
}

#[test]
fn config_errors_name_the_field() {
    type Change = Box<dyn Fn(&mut MembershipConfig)>;
    let cases: Vec<(&str, Change)> = vec![
        ("interval_ms", Box::new(|c| c.interval_ms = 0)),
        ("fanout", Box::new(|c| c.fanout = 0)),
        ("fanout", Box::new(|c| c.fanout = FANOUT_MAX + 1)),
        ("suspect_after_ms", Box::new(|c| c.suspect_after_ms = 1000)),
        ("down_after_ms", Box::new(|c| c.down_after_ms = 5000)),
        ("left_grace_ms", Box::new(|c| c.left_grace_ms = 10)),
        (
            "down_after_ms",
            Box::new(|c| c.down_after_ms = DURATION_MAX_MS + 1),
        ),
    ];
    for (field, change) in cases {
        let mut config = MembershipConfig::default();
        change(&mut config);
        let error = config.validate().unwrap_err();
        let message = error.to_string();
        assert_eq!(field_of(error), field, "{message}");
        assert!(message.contains(field), "{message}");
    }
    let error = Membership::new(
        MembershipConfig {
            fanout: 0,
            ..config()
        },
        id("a"),
        1,
        [],
        0,
        1,
    )
    .unwrap_err();
    assert_eq!(field_of(error), "fanout");
}

#[test]
fn higher_heartbeat_wins_and_older_is_ignored() {
    let clock = FakeClock::new(0);
    let mut a = node("a", 1, &[], &clock);
    a.receive(&clock, &gossip("b", vec![entry("b", 1, 5, Status::Alive)]));
    assert_eq!(a.key_of(&id("b")), Some((1, 5)));
    assert_eq!(a.take_events(), vec![MemberEvent::Joined(id("b"))]);
    a.receive(&clock, &gossip("c", vec![entry("b", 1, 3, Status::Alive)]));
    assert_eq!(
        a.key_of(&id("b")),
        Some((1, 5)),
        "older heartbeat must lose"
    );
    a.receive(&clock, &gossip("c", vec![entry("b", 1, 9, Status::Alive)]));
    assert_eq!(a.key_of(&id("b")), Some((1, 9)));
    assert!(a.take_events().is_empty());
    assert_eq!(a.stats().entries_applied, 2);
    assert_eq!(a.stats().entries_received, 3);
}

#[test]
fn a_new_generation_beats_any_heartbeat_of_the_old_one() {
    let clock = FakeClock::new(0);
    let mut a = node("a", 1, &[], &clock);
    a.receive(
        &clock,
        &gossip("b", vec![entry("b", 1, 500, Status::Alive)]),
    );
    a.take_events();
    // b restarted: generation 2, heartbeat back to 1.
    a.receive(&clock, &gossip("b", vec![entry("b", 2, 1, Status::Alive)]));
    assert_eq!(a.key_of(&id("b")), Some((2, 1)));
    assert_eq!(
        a.take_events(),
        vec![MemberEvent::Restarted {
            id: id("b"),
            old_generation: 1,
            new_generation: 2
        }]
    );
    // A straggler from the old life changes nothing.
    a.receive(
        &clock,
        &gossip("c", vec![entry("b", 1, 501, Status::Alive)]),
    );
    assert_eq!(a.key_of(&id("b")), Some((2, 1)));
}

#[test]
fn suspect_then_down_by_this_nodes_clock_then_recovered() {
    let clock = FakeClock::new(1_000);
    let mut a = node("a", 1, &[], &clock);
    let mut sink = Recorder::default();
    a.receive(&clock, &gossip("b", vec![entry("b", 1, 1, Status::Alive)]));
    a.take_events();

    clock.advance(500); // exactly suspect_after: not yet
    a.tick(&clock, &mut sink);
    assert_eq!(a.status_of(&id("b")), Some(Status::Alive));
    clock.advance(1);
    a.tick(&clock, &mut sink);
    assert_eq!(a.status_of(&id("b")), Some(Status::Suspect));
    assert_eq!(a.take_events(), vec![MemberEvent::Suspected(id("b"))]);

    clock.advance(499); // 1000 since the advance: exactly down_after
    a.tick(&clock, &mut sink);
    assert_eq!(a.status_of(&id("b")), Some(Status::Suspect));
    clock.advance(1);
    a.tick(&clock, &mut sink);
    assert_eq!(a.status_of(&id("b")), Some(Status::Down));
    assert_eq!(a.take_events(), vec![MemberEvent::Down(id("b"))]);
    assert_eq!(a.live_members(), vec![id("a")]);

    // The same heartbeat again is no evidence of life.
    a.receive(&clock, &gossip("c", vec![entry("b", 1, 1, Status::Alive)]));
    assert_eq!(a.status_of(&id("b")), Some(Status::Down));
    // A newer one is.
    a.receive(&clock, &gossip("c", vec![entry("b", 1, 2, Status::Alive)]));
    assert_eq!(a.status_of(&id("b")), Some(Status::Alive));
    let events = a.take_events();
    assert!(
        events.contains(&MemberEvent::Recovered(id("b"))),
        "{events:?}"
    );
    let view = a.view(&clock);
    assert_eq!(view.len(), 2);
    assert_eq!(view[1].id, id("b"));
    assert_eq!(view[1].since_advance_ms, 0);
}

#[test]
fn a_member_that_is_never_heard_goes_down_even_if_a_tick_is_late() {
    let clock = FakeClock::new(0);
    let mut a = node("a", 1, &["b"], &clock);
    clock.advance(5_000); // one very late tick jumps straight past both timeouts
    a.tick(&clock, &mut Recorder::default());
    assert_eq!(a.status_of(&id("b")), Some(Status::Down));
    assert_eq!(
        a.take_events(),
        vec![MemberEvent::Suspected(id("b")), MemberEvent::Down(id("b"))]
    );
}

#[test]
fn verdicts_of_other_nodes_are_not_adopted() {
    let clock = FakeClock::new(0);
    let mut a = node("a", 1, &[], &clock);
    a.receive(&clock, &gossip("b", vec![entry("b", 1, 4, Status::Alive)]));
    // c claims b is down, with b's current key and with a newer one.
    a.receive(&clock, &gossip("c", vec![entry("b", 1, 4, Status::Down)]));
    assert_eq!(a.status_of(&id("b")), Some(Status::Alive));
    a.receive(
        &clock,
        &gossip("c", vec![entry("b", 1, 5, Status::Suspect)]),
    );
    assert_eq!(a.status_of(&id("b")), Some(Status::Alive));
    assert_eq!(a.key_of(&id("b")), Some((1, 5)));
}

#[test]
fn hearing_itself_suspected_bumps_the_generation() {
    let clock = FakeClock::new(0);
    let mut a = node("a", 3, &[], &clock);
    let mut sink = Recorder::default();
    for _ in 0..4 {
        a.tick(&clock, &mut sink);
    }
    // Alive rows about itself at or below its key change nothing.
    a.receive(&clock, &gossip("b", vec![entry("a", 3, 4, Status::Alive)]));
    assert_eq!((a.generation(), a.heartbeat()), (3, 4));
    a.receive(
        &clock,
        &gossip("b", vec![entry("a", 3, 2, Status::Suspect)]),
    );
    assert_eq!(a.generation(), 4);
    assert_eq!(
        a.take_events(),
        vec![MemberEvent::Refuted {
            old_generation: 3,
            new_generation: 4
        }]
    );
    // A suspicion of the previous generation is already refuted.
    a.receive(&clock, &gossip("c", vec![entry("a", 3, 4, Status::Down)]));
    assert_eq!(a.generation(), 4);
    // The refutation travels: a peer holding the suspected key takes the new one.
    let mut b = node("b", 1, &[], &clock);
    b.receive(&clock, &gossip("x", vec![entry("a", 3, 4, Status::Alive)]));
    a.tick(&clock, &mut sink);
    b.receive(&clock, &a.gossip());
    assert_eq!(b.key_of(&id("a")), Some((4, 1)));
}

#[test]
fn a_restart_without_memory_of_the_old_life_outgrows_it() {
    let clock = FakeClock::new(0);
    // Restarted with the same generation (nothing persisted): the cluster remembers
    // heartbeat 900 of generation 7.
    let mut a = node("a", 7, &["b"], &clock);
    a.tick(&clock, &mut Recorder::default());
    a.receive(
        &clock,
        &gossip("b", vec![entry("a", 7, 900, Status::Alive)]),
    );
    assert_eq!(a.generation(), 8);
    let mut b = node("b", 1, &[], &clock);
    b.receive(
        &clock,
        &gossip("a", vec![entry("a", 7, 900, Status::Alive)]),
    );
    a.tick(&clock, &mut Recorder::default());
    b.receive(&clock, &a.gossip());
    assert_eq!(b.key_of(&id("a")), Some((8, 1)));
}

#[test]
fn left_members_are_adopted_then_removed_after_the_grace_period() {
    let clock = FakeClock::new(0);
    let mut a = node("a", 1, &[], &clock);
    let mut sink = Recorder::default();
    let mut c = node("c", 1, &["a"], &clock);
    c.tick(&clock, &mut sink);
    a.receive(&clock, &c.gossip());
    c.leave();
    a.receive(&clock, &c.gossip());
    assert_eq!(a.status_of(&id("c")), Some(Status::Left));
    assert!(a.take_events().contains(&MemberEvent::Left(id("c"))));
    // Left members get no gossip.
    for _ in 0..10 {
        assert!(a.tick(&clock, &mut sink).is_empty());
    }
    clock.advance(1999);
    a.tick(&clock, &mut sink);
    assert_eq!(a.status_of(&id("c")), Some(Status::Left), "still in grace");
    clock.advance(1);
    a.tick(&clock, &mut sink);
    assert_eq!(a.status_of(&id("c")), None);
    assert_eq!(a.take_events(), vec![MemberEvent::Removed(id("c"))]);
    // A stale copy does not resurrect it; a new life does.
    a.receive(&clock, &gossip("b", vec![entry("c", 1, 2, Status::Left)]));
    a.receive(&clock, &gossip("b", vec![entry("c", 1, 1, Status::Alive)]));
    assert_eq!(a.status_of(&id("c")), None);
    a.receive(&clock, &gossip("c", vec![entry("c", 2, 1, Status::Alive)]));
    assert_eq!(a.status_of(&id("c")), Some(Status::Alive));
}

#[test]
fn ticks_push_the_table_to_fanout_distinct_peers_reproducibly() {
    let clock = FakeClock::new(0);
    let names: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let seeds: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut a = node("a", 1, &seeds, &clock);
    let mut twin = node("a", 1, &seeds, &clock);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let mut sink = Recorder::default();
        let peers = a.tick(&clock, &mut sink);
        assert_eq!(peers, twin.tick(&clock, &mut Recorder::default()));
        assert_eq!(peers.len(), 2);
        assert_ne!(peers[0], peers[1]);
        assert!(!peers.contains(&id("a")));
        assert_eq!(sink.0.len(), 2);
        let table = &sink.0[0].1;
        assert_eq!(table.entries.len(), 21);
        assert_eq!(
            table.entries[0],
            entry("a", 1, a.heartbeat(), Status::Alive)
        );
        seen.extend(peers);
    }
    assert!(seen.len() > 15, "peer choice should spread: {seen:?}");
}

#[test]
fn down_members_still_get_an_occasional_push() {
    let clock = FakeClock::new(0);
    let mut a = node("a", 1, &["b", "c"], &clock);
    clock.advance(1001);
    let mut pushes = 0;
    for _ in 0..20 {
        pushes += a.tick(&clock, &mut Recorder::default()).len();
    }
    assert_eq!(a.status_of(&id("b")), Some(Status::Down));
    // With no reachable member, each round pushes to a Down one.
    assert_eq!(pushes, 20);
}

#[test]
fn small_simulation_converges_and_detects_a_crash() {
    let mut sim_config = SimConfig::new(50, 1);
    sim_config.membership = config();
    let mut sim = Simulation::new(sim_config).unwrap();
    let converged = sim.run_until_converged(100).expect("50 nodes converge");
    assert!(converged > 0);
    sim.kill(7);
    let detection = sim.detect_failure(7, 100);
    let all_down = detection.all_down.expect("every node marks it down");
    // Down needs down_after (10 rounds) of silence, plus the staleness of the last
    // heartbeat that node saw.
    assert!((10..=30).contains(&all_down), "{detection:?}");
    assert!(detection.first_suspect.unwrap() >= 5, "{detection:?}");
    assert_eq!(sim.stats().false_downs, 0);
    // It comes back in a new life: everyone takes it back.
    sim.restart(7, 2).unwrap();
    assert!(sim.run_until_converged(100).is_some());
    assert_eq!(sim.node(0).key_of(sim.id(7)).unwrap().0, 2);
}

#[test]
fn simulation_is_reproducible_and_survives_loss_and_delay() {
    let run = || {
        // Timeouts scaled to log2(N) (Suspect after 16 silent rounds) absorb 20% loss.
        let mut sim_config = SimConfig::new(60, 9);
        sim_config.loss = 0.2;
        sim_config.max_delay_rounds = 1;
        trial(sim_config).unwrap()
    };
    let first = run();
    let second = run();
    assert_eq!(first.rounds_to_converge, second.rounds_to_converge);
    assert_eq!(first.rounds_to_disseminate, second.rounds_to_disseminate);
    assert_eq!(first.detection, second.detection);
    assert_eq!(first.stats, second.stats);
    assert!(first.stats.messages_lost > 0);
    assert!(first.rounds_to_converge.is_some(), "{first:?}");
    assert!(first.detection.all_down.is_some(), "{first:?}");
    assert_eq!(first.stats.false_downs, 0, "{first:?}");
}

#[test]
fn simulation_rejects_bad_settings_by_name() {
    let mut sim_config = SimConfig::new(10, 1);
    sim_config.loss = 1.0;
    assert_eq!(field_of(Simulation::new(sim_config).err().unwrap()), "loss");
    let sim_config = SimConfig::new(1, 1);
    assert_eq!(
        field_of(Simulation::new(sim_config).err().unwrap()),
        "nodes"
    );
}

/// The figure: a heartbeat reaches all 1000 nodes in O(log N) rounds. Push gossip
/// with fanout 3 needs about log4(N) + ln(N)/3 rounds (about 7 at N=1000); the bound is
/// 2 * log2(N) = 20, loose enough for any seed, tight enough to catch a linear regression.
#[test]
fn dissemination_at_1000_nodes_is_logarithmic() {
    let nodes = 1000;
    let bound = 2 * (nodes as f64).log2().ceil() as u64;
    let seed = 1;
    {
        let mut sim = Simulation::new(SimConfig::new(nodes, seed)).unwrap();
        sim.run_until_converged(60)
            .unwrap_or_else(|| panic!("seed {seed}: 1000 nodes did not converge"));
        let rounds = sim
            .rounds_to_disseminate(123, bound)
            .unwrap_or_else(|| panic!("seed {seed}: not disseminated in {bound} rounds"));
        assert!(
            rounds >= 3,
            "seed {seed}: {rounds} rounds is impossibly fast"
        );
        assert!(sim.is_converged(), "seed {seed}");
        assert_eq!(sim.stats().false_downs, 0, "seed {seed}");
    }
}
