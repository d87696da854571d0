//! Seeded gossip membership simulation: rounds to converge, to disseminate a heartbeat,
//! and to mark a crashed node Down everywhere, for several cluster sizes and seeds.
//!
//! ```text
//! cargo run --release -p cluster --example gossip_sim -- \
//!     [--nodes 100,1000,4000] [--seeds 1,2,3] [--loss 0.0] [--delay 0] [--fanout 3]
//! ```
//!
//! Timeouts scale with log2(N) ([`cluster::membership::sim::scaled_timeouts`]); the
//! detection columns include that fixed wait (`down` rounds of silence), so the
//! O(log N) part is `all_down - down`.

use std::process::ExitCode;
use std::time::Instant;

use cluster::membership::sim::{trial, SimConfig};

struct Args {
    nodes: Vec<usize>,
    seeds: Vec<u64>,
    loss: f64,
    delay: u64,
    fanout: usize,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        nodes: vec![100, 1000],
        seeds: vec![1, 2, 3],
        loss: 0.0,
        delay: 0,
        fanout: 3,
    };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let value = words
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag}: {value:?} is not {what}");
        match flag.as_str() {
            "--nodes" => {
                args.nodes = value
                    .split(',')
                    .map(|n| n.parse().map_err(|_| bad("a list of node counts")))
                    .collect::<Result<_, _>>()?
            }
            "--seeds" => {
                args.seeds = value
                    .split(',')
                    .map(|n| n.parse().map_err(|_| bad("a list of seeds")))
                    .collect::<Result<_, _>>()?
            }
            "--loss" => args.loss = value.parse().map_err(|_| bad("a probability"))?,
            "--delay" => args.delay = value.parse().map_err(|_| bad("a round count"))?,
            "--fanout" => args.fanout = value.parse().map_err(|_| bad("a peer count"))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(args)
}

fn show(rounds: Option<u64>) -> String {
    rounds.map_or_else(|| "never".to_string(), |r| r.to_string())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("gossip_sim: {error}");
            return ExitCode::from(2);
        }
    };
    println!(
        "loss {} delay 0..={} rounds fanout {}",
        args.loss, args.delay, args.fanout
    );
    println!(
        "{:>6} {:>4} {:>6} | {:>8} {:>11} {:>9} | {:>7} {:>4} {:>10} {:>8} {:>5} | {:>10} {:>6} {:>6}",
        "nodes",
        "seed",
        "log2N",
        "converge",
        "disseminate",
        "staleness",
        "suspect",
        "down",
        "first_down",
        "all_down",
        "extra",
        "false_susp",
        "lost%",
        "secs"
    );
    for &nodes in &args.nodes {
        let mut disseminate_sum = 0;
        let mut extra_sum = 0;
        let mut count = 0;
        for &seed in &args.seeds {
            let mut config = SimConfig::new(nodes, seed);
            config.loss = args.loss;
            config.max_delay_rounds = args.delay;
            config.membership.fanout = args.fanout;
            let suspect = config.membership.suspect_after_ms / config.membership.interval_ms;
            let down = config.membership.down_after_ms / config.membership.interval_ms;
            let started = Instant::now();
            let result = match trial(config) {
                Ok(result) => result,
                Err(error) => {
                    eprintln!("gossip_sim: {error}");
                    return ExitCode::from(2);
                }
            };
            let extra = result
                .detection
                .all_down
                .map(|all| all.saturating_sub(down));
            if let (Some(d), Some(e)) = (result.rounds_to_disseminate, extra) {
                disseminate_sum += d;
                extra_sum += e;
                count += 1;
            }
            let stats = result.stats;
            println!(
                "{:>6} {:>4} {:>6.2} | {:>8} {:>11} {:>9} | {:>7} {:>4} {:>10} {:>8} {:>5} | {:>10} {:>6.2} {:>6.1}",
                nodes,
                seed,
                (nodes as f64).log2(),
                show(result.rounds_to_converge),
                show(result.rounds_to_disseminate),
                result.max_staleness_rounds,
                suspect,
                down,
                show(result.detection.first_down),
                show(result.detection.all_down),
                show(extra),
                stats.false_suspicions,
                100.0 * stats.messages_lost as f64 / stats.messages_sent.max(1) as f64,
                started.elapsed().as_secs_f64()
            );
        }
        if count > 0 {
            let log2 = (nodes as f64).log2();
            let mean = disseminate_sum as f64 / count as f64;
            println!(
                "{nodes:>6} mean disseminate {mean:.1} rounds = {:.2} x log2(N); mean detection \
                 beyond the down timeout {:.1} rounds",
                mean / log2,
                extra_sum as f64 / count as f64
            );
        }
    }
    ExitCode::SUCCESS
}
