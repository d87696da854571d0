//! Sequential blind SETs through two coordinators, then GET: the later write must be the one
//! read, in whichever order the coordinators' names sort. Before a write's timestamp was
//! raised above every version stored on its minting replica, a later write in the same
//! millisecond through the coordinator whose name sorts first lost (312 of 2000 tries).
mod common;
use cluster::launcher::LocalCluster;
use cluster::protocol::Consistency;
use cluster::ring::Replication;
use common::{process_spec, Client};

#[test]
fn sequential_sets_through_two_coordinators() {
    let directory = tempfile::tempdir().unwrap();
    let spec = process_spec(
        directory.path(),
        1,
        2,
        Replication::Total(2),
        Consistency::Quorum,
    );
    let cluster = LocalCluster::start(&spec).expect("two nodes start");
    let address = cluster.client_addresses();
    let mut n1 = Client::connect(address[0]);
    let mut n2 = Client::connect(address[1]);
    let trials = 500;
    let (mut older_first_n2, mut older_first_n1) = (0, 0);
    for trial in 0..trials {
        let key = format!("k{trial}");
        // Earlier write through n2, later through n1 (acknowledged before it is sent).
        assert_eq!(n2.command(&["SET", &key, "first"]), "+OK");
        assert_eq!(n1.command(&["SET", &key, "second"]), "+OK");
        if n1.command(&["GET", &key]) == "first" {
            older_first_n2 += 1;
        }
        let key = format!("j{trial}");
        assert_eq!(n1.command(&["SET", &key, "first"]), "+OK");
        assert_eq!(n2.command(&["SET", &key, "second"]), "+OK");
        if n2.command(&["GET", &key]) == "first" {
            older_first_n1 += 1;
        }
    }
    eprintln!(
        "GET returned the earlier write: {older_first_n2} of {trials} (earlier via n2), \
         {older_first_n1} of {trials} (earlier via n1)"
    );
    assert_eq!((older_first_n2, older_first_n1), (0, 0));
}
