//! Latency of QUORUM writes and reads on the default embedded cluster (2 datacenters x 3
//! nodes, N=3 as {dc1=2, dc2=1}, 30 ms + linkedin-ssd one way between datacenters) per
//! routing policy: where the coordinator sits decides whether a quorum needs the WAN.
//!
//! `cargo run -p loadgen --example embedded_latency [OPERATIONS]` (see
//! `scripts/embedded-latency.sh`). Sequential operations, one at a time, each on a fresh
//! connection; prints median and 99th percentile per policy and operation.

use std::time::Instant;

use cluster::protocol::RespValue;
use loadgen::local::{EmbeddedCluster, LocalClusterOptions};
use loadgen::routing::{call, fetch_topology, Policy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let operations: usize = match std::env::args().nth(1) {
        Some(text) => text.parse()?,
        None => 200,
    };
    let options = LocalClusterOptions::default();
    let cluster = EmbeddedCluster::start(&options)?;
    let targets = cluster.client_addresses();
    let topology = fetch_topology(targets[0])?;
    println!(
        "{} nodes, replication {:?}, consistency {:?}, inter-DC delay {} ms one way; {operations} operations per row",
        targets.len(),
        options.replication,
        options.consistency,
        options.inter_dc_delay
    );
    println!(
        "{:<16} {:>6} {:>10} {:>10}",
        "policy", "op", "p50 ms", "p99 ms"
    );
    for text in [
        "round-robin",
        "same-dc:dc1",
        "same-dc:dc2",
        "token-aware:dc1",
        "token-aware:dc2",
    ] {
        let mut router = Policy::parse(text)?.build(&targets, Some(&topology))?;
        for operation in ["SET", "GET"] {
            let mut latencies = Vec::with_capacity(operations);
            for i in 0..operations {
                let key = format!("latency-{i}");
                let node = targets[router.choose(key.as_bytes())];
                let started = Instant::now();
                let reply = match operation {
                    "SET" => call(node, &[b"SET", key.as_bytes(), b"value"])?,
                    _ => call(node, &[b"GET", key.as_bytes()])?,
                };
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                if let RespValue::Error(text) = reply {
                    return Err(format!("{operation} {key} at {node}: {text}").into());
                }
            }
            latencies.sort_by(f64::total_cmp);
            let at = |quantile: f64| latencies[((latencies.len() - 1) as f64 * quantile) as usize];
            println!(
                "{text:<16} {operation:>6} {:>10.2} {:>10.2}",
                at(0.5),
                at(0.99)
            );
        }
    }
    cluster.stop()?;
    Ok(())
}
