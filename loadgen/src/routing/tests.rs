use std::collections::{BTreeMap, BTreeSet};

use super::*;
use cluster::ring::Replication;

/// 2 datacenters x 3 nodes at 127.0.9.1..6, N=3 as {dc1=2, dc2=1}.
fn topology() -> (Topology, Vec<SocketAddr>) {
    let addresses: Vec<SocketAddr> = (1..=6)
        .map(|i| format!("127.0.9.{i}:7379").parse().unwrap())
        .collect();
    let members = addresses
        .iter()
        .enumerate()
        .map(|(i, address)| TopologyMember {
            id: format!("n{}", i + 1),
            datacenter: format!("dc{}", i / 3 + 1),
            weight: 1,
            client_address: Some(*address),
        })
        .collect();
    let replication = Replication::PerDatacenter(BTreeMap::from([
        ("dc1".to_string(), 2),
        ("dc2".to_string(), 1),
    ]));
    (Topology::new(members, 32, replication).unwrap(), addresses)
}

fn keys() -> impl Iterator<Item = Vec<u8>> {
    (0..2000).map(|i| format!("user{i}").into_bytes())
}

#[test]
fn round_robin_visits_every_target_in_turn() {
    let mut router = RoundRobin::new(3).unwrap();
    let chosen: Vec<usize> = (0..7).map(|_| router.choose(b"same key")).collect();
    assert_eq!(chosen, [0, 1, 2, 0, 1, 2, 0]);
    assert!(RoundRobin::new(0).is_err());
}

#[test]
fn same_dc_never_leaves_its_datacenter_and_uses_all_of_it() {
    let (topology, targets) = topology();
    let mut router = Policy::parse("same-dc:dc2")
        .unwrap()
        .build(&targets, Some(&topology))
        .unwrap();
    let mut seen = BTreeSet::new();
    for key in keys() {
        let index = router.choose(&key);
        assert!((3..6).contains(&index), "{index} is not in dc2");
        seen.insert(index);
    }
    assert_eq!(seen, BTreeSet::from([3, 4, 5]));
    let datacenters = [Some("dc1"), None, Some("dc2")];
    let direct = SameDatacenter::new("dc1", &datacenters).unwrap();
    assert_eq!(direct.targets(), [0]);
    let error = SameDatacenter::new("dc3", &datacenters)
        .unwrap_err()
        .to_string();
    assert!(error.contains("no target is in datacenter dc3"), "{error}");
}

#[test]
fn token_aware_picks_a_replica_for_every_key() {
    let (topology, targets) = topology();
    let mut router = TokenAware::new(topology.clone(), &targets, None).unwrap();
    let mut seen = BTreeSet::new();
    for key in keys() {
        let index = router.choose(&key);
        let member = topology.member_at(targets[index]).unwrap();
        let replicas = topology.replicas(&key);
        assert!(
            replicas.iter().any(|id| id.as_str() == member.id),
            "{} is not a replica of {:?}",
            member.id,
            String::from_utf8_lossy(&key)
        );
        seen.insert(index);
    }
    assert_eq!(seen.len(), 6, "every node is some key's replica");
}

#[test]
fn token_aware_prefers_the_named_datacenter() {
    let (topology, targets) = topology();
    let mut router = Policy::parse("token-aware:dc2")
        .unwrap()
        .build(&targets, Some(&topology))
        .unwrap();
    for key in keys() {
        let index = router.choose(&key);
        let member = topology.member_at(targets[index]).unwrap();
        assert_eq!(member.datacenter, "dc2");
        // dc2 keeps one copy of each key: that one.
        assert!(topology
            .replicas(&key)
            .iter()
            .any(|id| id.as_str() == member.id));
    }
}

#[test]
fn token_aware_over_a_subset_of_targets_falls_back_only_when_no_replica_is_a_target() {
    let (topology, all) = topology();
    // Only n4 (dc2): keys it replicates go to it, the others round-robin over [n4].
    let targets = vec![all[3]];
    let mut router = TokenAware::new(topology.clone(), &targets, Some("dc2")).unwrap();
    for key in keys().take(100) {
        assert_eq!(router.choose(&key), 0);
    }
    let strangers: Vec<SocketAddr> = vec!["127.0.0.1:1".parse().unwrap()];
    let error = TokenAware::new(topology.clone(), &strangers, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("none of the targets"), "{error}");
    let error = TokenAware::new(topology, &all[..3], Some("dc2"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("no target is in datacenter dc2"), "{error}");
}

#[test]
fn policies_parse_print_and_explain_mistakes() {
    for text in [
        "round-robin",
        "same-dc:dc1",
        "token-aware",
        "token-aware:eu-west",
    ] {
        assert_eq!(Policy::parse(text).unwrap().to_string(), text);
    }
    assert_eq!(
        "token-aware:dc2".parse::<Policy>().unwrap(),
        Policy::TokenAware(Some("dc2".into()))
    );
    for (text, expected) in [
        ("random", "unknown policy \"random\""),
        ("same-dc", "same-dc needs a datacenter"),
        ("same-dc:", "must be a non-empty name"),
        ("round-robin:dc1", "round-robin takes no argument"),
        ("", "unknown policy"),
    ] {
        let error = Policy::parse(text).unwrap_err().to_string();
        assert!(error.starts_with("routing policy: "), "{error}");
        assert!(error.contains(expected), "{text:?}: {error}");
    }
    assert!(!Policy::RoundRobin.needs_topology());
    let error = Policy::TokenAware(None)
        .build(&[], None)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("needs the cluster topology"), "{error}");
}

#[test]
fn per_client_routers_start_at_their_client_and_keep_the_policy() {
    let (topology, targets) = topology();
    let make = Policy::RoundRobin.per_client(&targets, None).unwrap();
    let firsts: Vec<usize> = (0..8).map(|client| make(client).choose(b"k")).collect();
    assert_eq!(firsts, [0, 1, 2, 3, 4, 5, 0, 1]);
    let make = Policy::parse("same-dc:dc1")
        .unwrap()
        .per_client(&targets, Some(&topology))
        .unwrap();
    let firsts: Vec<usize> = (0..4).map(|client| make(client).choose(b"k")).collect();
    assert_eq!(firsts, [0, 1, 2, 0]);
    let make = Policy::parse("token-aware")
        .unwrap()
        .per_client(&targets, Some(&topology))
        .unwrap();
    for client in 0..4 {
        let mut router = make(client);
        for key in keys().take(200) {
            let member = topology.member_at(targets[router.choose(&key)]).unwrap();
            assert!(topology
                .replicas(&key)
                .iter()
                .any(|id| id.as_str() == member.id));
        }
    }
    assert!(Policy::parse("same-dc:dc9")
        .unwrap()
        .per_client(&targets, Some(&topology))
        .is_err());
}

#[test]
fn the_driver_factory_routes_as_the_policy_does() {
    let (topology, targets) = topology();
    let factory = Policy::parse("token-aware:dc2")
        .unwrap()
        .driver_factory(&targets, Some(&topology))
        .unwrap();
    let mut router = factory(3, targets.len());
    for key in keys().take(200) {
        let member = topology.member_at(targets[router.route(&key)]).unwrap();
        assert_eq!(member.datacenter, "dc2");
    }
}

#[test]
fn a_token_aware_router_following_a_watch_routes_by_the_ring_it_publishes() {
    let (topology, targets) = topology();
    // The same cluster after n7 joined dc1.
    let n7_address: SocketAddr = "127.0.9.7:7379".parse().unwrap();
    let mut members = topology.members().to_vec();
    members.push(TopologyMember {
        id: "n7".into(),
        datacenter: "dc1".into(),
        weight: 1,
        client_address: Some(n7_address),
    });
    let grown = Topology::new(members, 32, topology.replication().clone()).unwrap();
    // The router's targets once it has taken the grown ring: the run's, then n7.
    let mut all_targets = targets.clone();
    all_targets.push(n7_address);
    let is_replica = |topology: &Topology, key: &[u8], target: usize| {
        let member = topology.member_at(all_targets[target]).unwrap();
        topology
            .replicas(key)
            .iter()
            .any(|id| id.as_str() == member.id)
    };

    let watch = TopologyWatch::new(topology.clone());
    let make = Policy::parse("token-aware:dc1")
        .unwrap()
        .driver_factory_following(&targets, &watch)
        .unwrap();
    let mut router = make(0, targets.len());
    // Before the change: routed by the first ring, so some keys go to a node that does not
    // replicate them in the grown one, and none to n7.
    let before: Vec<usize> = keys().map(|key| router.route(&key)).collect();
    assert!(before.iter().all(|&target| target < targets.len()));
    let stale = keys()
        .zip(&before)
        .filter(|(key, &target)| !is_replica(&grown, key, target))
        .count();
    assert!(stale > 100, "{stale}");
    assert_eq!(router.added_target(targets.len()), None);

    watch.publish(grown.clone());
    assert_eq!(watch.published(), 1);
    let mut to_n7 = 0;
    for key in keys() {
        let target = router.route(&key);
        assert!(
            is_replica(&grown, &key, target),
            "{key:?} to target {target}"
        );
        let datacenter = &grown.member_at(all_targets[target]).unwrap().datacenter;
        assert_eq!(datacenter, "dc1", "{key:?}");
        to_n7 += usize::from(target == targets.len());
    }
    // n7 is a target now, after the run's own: it takes a share of dc1's keys.
    assert_eq!(router.added_target(targets.len()), Some(n7_address));
    assert_eq!(router.added_target(0), None);
    assert_eq!(router.added_target(targets.len() + 1), None);
    assert!(to_n7 > 100, "{to_n7} of {} keys to n7", keys().count());
    // A router made after the change starts from the watch's latest topology.
    let mut late = make(1, targets.len());
    assert!(keys().all(|key| is_replica(&grown, &key, late.route(&key))));

    // Hosts that leave out a member from the start (n2 here) never send to it, before or
    // after a change; only the member that joined is added.
    let some: Vec<SocketAddr> = targets
        .iter()
        .copied()
        .filter(|t| *t != targets[1])
        .collect();
    let watch = TopologyWatch::new(topology.clone());
    let make = Policy::parse("token-aware:dc1")
        .unwrap()
        .driver_factory_following(&some, &watch)
        .unwrap();
    let mut router = make(0, some.len());
    watch.publish(grown.clone());
    let chosen: BTreeSet<usize> = keys().map(|key| router.route(&key)).collect();
    assert_eq!(router.added_target(some.len()), Some(n7_address));
    assert_eq!(router.added_target(some.len() + 1), None);
    let addresses: BTreeSet<SocketAddr> = chosen
        .iter()
        .map(|&index| some.get(index).copied().unwrap_or(n7_address))
        .collect();
    assert!(!addresses.contains(&targets[1]));
    assert!(addresses.contains(&n7_address), "{addresses:?}");
}

#[test]
fn the_summary_line_gives_the_ring_version() {
    let lines: Vec<String> = [
        "replication 3 default_consistency Quorum members 1 vnodes_per_weight 8 placement 1 \
         ring_version 7",
        "n1 dc1 weight 1 self client 127.0.9.1:7379",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(Topology::parse(&lines).unwrap().ring_version(), 7);
    let older = [lines[0].replace(" ring_version 7", ""), lines[1].clone()];
    assert_eq!(Topology::parse(&older).unwrap().ring_version(), 0);
}
