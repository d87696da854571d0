//! Token-aware routing against an embedded cluster (2 datacenters x 2 nodes, N=3 as
//! {dc1=2, dc2=1}): the topology fetched over RESP rebuilds the nodes' ring, and each key
//! routed with `token-aware:dc2` goes to a node that physically holds it. That is checked
//! without trusting the ring: with every other node stopped, the chosen node still answers
//! a `CL ONE` read of the key from its own copy, while a node that is not a replica
//! cannot. Stopping the cluster removes its data directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use cluster::protocol::RespValue;
use cluster::ring::Replication;
use loadgen::local::{EmbeddedCluster, LocalClusterOptions};
use loadgen::routing::{call, fetch_topology, Policy};

const KEYS: usize = 24;

fn key(i: usize) -> String {
    format!("routed-{i}")
}

/// `KV.GET key CL ONE` at `node`: the values, or the error text.
fn read_one(node: SocketAddr, key: &str) -> Result<Vec<Vec<u8>>, String> {
    match call(node, &[b"KV.GET", key.as_bytes(), b"CL", b"ONE"]).expect("reply") {
        RespValue::Array(Some(parts)) => match parts.as_slice() {
            [_context, RespValue::Array(Some(values))] => Ok(values
                .iter()
                .filter_map(|value| match value {
                    RespValue::BulkString(Some(bytes)) => Some(bytes.clone()),
                    _ => None,
                })
                .collect()),
            other => panic!("unexpected KV.GET reply {other:?}"),
        },
        RespValue::Error(text) => Err(text),
        other => panic!("unexpected KV.GET reply {other:?}"),
    }
}

#[test]
fn token_aware_routing_sends_each_key_to_a_node_holding_it() {
    let options = LocalClusterOptions {
        datacenters: 2,
        nodes_per_datacenter: 2,
        inter_dc_delay: "1".into(),
        worker_threads: 2,
        ..LocalClusterOptions::default()
    };
    let mut cluster = EmbeddedCluster::start(&options).expect("embedded cluster starts");
    let work_dir = cluster.work_dir().to_path_buf();
    assert!(work_dir.is_dir());
    let addresses = cluster.client_addresses();
    assert_eq!(addresses.len(), 4);
    let datacenters: Vec<_> = (0..4).map(|i| cluster.datacenter_of(i).unwrap()).collect();
    assert_eq!(datacenters, ["dc1", "dc1", "dc2", "dc2"]);
    assert_eq!(cluster.datacenter_of(4), None);

    let topology = fetch_topology(addresses[3]).expect("topology over RESP");
    assert_eq!(topology.members().len(), 4);
    assert_eq!(
        topology.replication(),
        &Replication::PerDatacenter(BTreeMap::from([
            ("dc1".to_string(), 2),
            ("dc2".to_string(), 1)
        ]))
    );
    for (index, address) in addresses.iter().enumerate() {
        let member = topology.member_at(*address).expect("every node is listed");
        assert_eq!(member.datacenter, datacenters[index]);
    }

    let mut router = Policy::parse("token-aware:dc2")
        .unwrap()
        .build(&addresses, Some(&topology))
        .unwrap();
    // Node index -> the keys routed to it; every key is written to all three replicas.
    let mut routed: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for i in 0..KEYS {
        let key = key(i);
        let reply = call(
            addresses[0],
            &[b"KV.PUT", key.as_bytes(), key.as_bytes(), b"CL", b"ALL"],
        )
        .expect("put");
        assert_eq!(reply, RespValue::SimpleString("OK".into()), "{key}");
        let chosen = router.choose(key.as_bytes());
        assert!(chosen == 2 || chosen == 3, "{key} routed out of dc2");
        routed.entry(chosen).or_default().push(key);
    }
    assert_eq!(routed.len(), 2, "both dc2 nodes replicate some keys");

    for (&node, keys) in &routed {
        let others: Vec<usize> = (0..4).filter(|&other| other != node).collect();
        for &other in &others {
            cluster.stop_node(other).expect("stop");
        }
        for key in keys {
            assert_eq!(
                read_one(addresses[node], key),
                Ok(vec![key.as_bytes().to_vec()]),
                "node {node} alone serves {key} from its own copy"
            );
        }
        // The other dc2 node's keys are not here: the check above can fail.
        let stranger = routed
            .iter()
            .find(|(&other, _)| other != node)
            .map(|(_, keys)| keys[0].clone())
            .unwrap();
        let error = read_one(addresses[node], &stranger).unwrap_err();
        assert!(error.contains("quorum not reached"), "{error}");
        for &other in &others {
            cluster.restart_node(other).expect("restart");
        }
    }

    cluster.stop().expect("clean stop");
    assert!(!work_dir.exists(), "the data directory is removed on stop");
}

#[test]
fn dropping_an_embedded_cluster_removes_its_data_and_bad_options_name_the_field() {
    let options = LocalClusterOptions {
        datacenters: 1,
        nodes_per_datacenter: 1,
        replication: Replication::Total(1),
        inter_dc_delay: "0".into(),
        worker_threads: 1,
        ..LocalClusterOptions::default()
    };
    let cluster = EmbeddedCluster::start(&options).expect("one node starts");
    let work_dir = cluster.work_dir().to_path_buf();
    assert!(work_dir.is_dir());
    drop(cluster);
    assert!(!work_dir.exists(), "the data directory is removed on drop");

    let bad = LocalClusterOptions {
        inter_dc_delay: "soon".into(),
        ..LocalClusterOptions::default()
    };
    let error = EmbeddedCluster::start(&bad).unwrap_err().to_string();
    assert!(error.contains("inter_dc_delay"), "{error}");
}
