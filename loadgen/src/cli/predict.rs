//! `kvbench predict`: the WARS model's t-visibility and latencies for N, R, W and four
//! delay distributions (see [`crate::predict`]).

use crate::predict::{self, parse_delay, Prediction, ReplicaDelays, SimulationOptions, WarsModel};
use crate::{Error, Result};
use clap::Args;
use std::io::Write;

/// Flags of `kvbench predict`.
#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// Replicas per key (N).
    #[arg(long = "n", default_value_t = 3)]
    pub replicas: usize,
    /// Read quorum (R): responses a read waits for.
    #[arg(long = "r", default_value_t = 1)]
    pub read_quorum: usize,
    /// Write quorum (W): acknowledgements a write waits for.
    #[arg(long = "w", default_value_t = 1)]
    pub write_quorum: usize,
    /// Write-request delay (W), in the link emulator's syntax or NAME:ARGS
    /// (exp:20, pareto:10,1.5, uniform:1,3, normal:5,1, const:2, preset:linkedin-ssd).
    /// Give once for all replicas or N times, one per replica. Default: exp:20.
    #[arg(long = "write-delay", value_name = "DIST")]
    pub write_delay: Vec<String>,
    /// Write-acknowledgement delay (A), as --write-delay. Default: exp:10.
    #[arg(long = "ack-delay", value_name = "DIST")]
    pub ack_delay: Vec<String>,
    /// Read-request delay (R), as --write-delay. Default: exp:10.
    #[arg(long = "read-delay", value_name = "DIST")]
    pub read_delay: Vec<String>,
    /// Read-response delay (S), as --write-delay. Default: exp:10.
    #[arg(long = "response-delay", value_name = "DIST")]
    pub response_delay: Vec<String>,
    /// One of the paper's production fits instead of the four delay flags:
    /// lnkd-ssd, lnkd-disk, ymmr, wan.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["write_delay", "ack_delay", "read_delay", "response_delay"])]
    pub scenario: Option<String>,
    /// A run directory (or its measured_delays.csv) whose measured one-way delays to use
    /// instead of the delay flags: empirical distributions per WARS kind, the transit
    /// measured between nodes where there is one, else the delay the link emulator applied.
    #[arg(long = "from-run", value_name = "DIR", conflicts_with_all = ["write_delay", "ack_delay", "read_delay", "response_delay", "scenario"])]
    pub from_run: Option<std::path::PathBuf>,
    /// With --from-run: how many of the N replicas are in the coordinator's datacenter (the
    /// others take the delays measured between datacenters). Default: N.
    #[arg(long = "local-replicas", value_name = "K", requires = "from_run")]
    pub local_replicas: Option<usize>,
    /// With per-replica delays: route each read through a coordinator at a random
    /// replica's position, independently of the write's (as in the paper's WAN setup).
    #[arg(long)]
    pub random_read_coordinator: bool,
    /// Times after commit (ms) at which to print P(consistent).
    #[arg(
        long = "t",
        value_name = "MS,...",
        value_delimiter = ',',
        default_value = "0,1,2,5,10,20,50,100,200,500,1000"
    )]
    pub t_ms: Vec<f64>,
    /// Probabilities of consistency for which to print the t needed.
    #[arg(
        long = "p",
        value_name = "P,...",
        value_delimiter = ',',
        default_value = "0.9,0.99,0.999"
    )]
    pub probabilities: Vec<f64>,
    /// Write-then-read trials.
    #[arg(long, default_value_t = 1_000_000)]
    pub trials: u64,
    /// Seed; the same seed and trials give the same figures on any machine.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (0: all cores); does not change the figures.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// The model the flags describe.
pub fn model(args: &PredictArgs) -> Result<WarsModel> {
    if let Some(run) = &args.from_run {
        let measured = predict::MeasuredDelays::read(run)?;
        let local = args.local_replicas.unwrap_or(args.replicas);
        if local > args.replicas {
            return Err(Error::InvalidFlag {
                flag: "local-replicas",
                detail: format!("{local} but N={}", args.replicas),
            });
        }
        return measured.model(args.replicas, args.read_quorum, args.write_quorum, local);
    }
    let model = match &args.scenario {
        Some(name) => {
            predict::scenario_model(name, args.replicas, args.read_quorum, args.write_quorum)?
        }
        None => WarsModel {
            replicas: args.replicas,
            read_quorum: args.read_quorum,
            write_quorum: args.write_quorum,
            delays: per_replica_delays(args)?,
            read_coordinator_random: args.random_read_coordinator,
        },
    };
    model.validate()?;
    Ok(model)
}

fn per_replica_delays(args: &PredictArgs) -> Result<Vec<ReplicaDelays>> {
    let flags: [(&'static str, &Vec<String>, &str); 4] = [
        ("write-delay", &args.write_delay, "exp:20"),
        ("ack-delay", &args.ack_delay, "exp:10"),
        ("read-delay", &args.read_delay, "exp:10"),
        ("response-delay", &args.response_delay, "exp:10"),
    ];
    let count = flags
        .iter()
        .map(|(_, values, _)| values.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut parsed = Vec::new();
    for (flag, values, default) in flags {
        let values: Vec<&str> = if values.is_empty() {
            vec![default]
        } else {
            values.iter().map(String::as_str).collect()
        };
        if values.len() != 1 && values.len() != count {
            return Err(Error::InvalidFlag {
                flag,
                detail: format!(
                    "given {} times while another delay flag is given {count} times; give each \
                     delay flag once (all replicas) or N times (one per replica)",
                    values.len()
                ),
            });
        }
        let delays = values
            .iter()
            .map(|text| parse_delay(flag, text))
            .collect::<Result<Vec<_>>>()?;
        parsed.push(delays);
    }
    Ok((0..count)
        .map(|replica| {
            let pick = |index: usize| parsed[index][replica.min(parsed[index].len() - 1)].clone();
            ReplicaDelays {
                write: pick(0),
                ack: pick(1),
                read: pick(2),
                response: pick(3),
            }
        })
        .collect())
}

/// Runs `kvbench predict`.
pub fn run(args: &PredictArgs, out: &mut dyn Write) -> Result<()> {
    if let Some(bad) = args
        .probabilities
        .iter()
        .find(|p| !(**p > 0.0 && **p <= 1.0))
    {
        return Err(Error::InvalidFlag {
            flag: "p",
            detail: format!("{bad} is not a probability in (0, 1]"),
        });
    }
    if let Some(bad) = args.t_ms.iter().find(|t| !t.is_finite()) {
        return Err(Error::InvalidFlag {
            flag: "t",
            detail: format!("{bad} is not a number of milliseconds"),
        });
    }
    let model = model(args)?;
    let options = SimulationOptions {
        trials: args.trials,
        seed: args.seed,
        threads: args.threads,
    };
    let prediction = predict::simulate(&model, &options)?;
    let mut text = String::new();
    if let Some(run) = &args.from_run {
        text.push_str(&format!(
            "delays from {} (the first {} replicas in the coordinator's datacenter)\n",
            run.display(),
            args.local_replicas.unwrap_or(args.replicas)
        ));
        let measured = predict::MeasuredDelays::read(run)?;
        text.push_str(&measured.summary());
        text.push_str("delays used:\n");
        text.push_str(&measured.sources());
    }
    text.push_str(&render(&model, args, &prediction));
    out.write_all(text.as_bytes()).map_err(|source| Error::Io {
        context: "stdout".to_string(),
        source,
    })
}

/// The printed report.
pub fn render(model: &WarsModel, args: &PredictArgs, prediction: &Prediction) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "WARS model (Bailis et al., PBS, VLDB 2012): N={} R={} W={}, {} trials, seed {}{}",
        model.replicas,
        model.read_quorum,
        model.write_quorum,
        prediction.trials(),
        args.seed,
        if model.read_coordinator_random && model.delays.len() > 1 {
            ", reads through a randomly placed coordinator"
        } else {
            ""
        }
    );
    for (replica, delays) in model.delays.iter().enumerate() {
        let who = if model.delays.len() == 1 {
            "every replica".to_string()
        } else {
            format!("replica {replica}")
        };
        let _ = writeln!(text, "  {who}:");
        let _ = writeln!(text, "    W write request   {}", delays.write);
        let _ = writeln!(text, "    A write ack       {}", delays.ack);
        let _ = writeln!(text, "    R read request    {}", delays.read);
        let _ = writeln!(text, "    S read response   {}", delays.response);
    }
    let _ = writeln!(text);
    let _ = writeln!(
        text,
        "t-visibility: probability that a read begun t ms after the write committed returns it"
    );
    let _ = writeln!(
        text,
        "{:>10}  {:>14}  {:>9}",
        "t_ms", "P(consistent)", "95% CI +-"
    );
    for &t in &args.t_ms {
        let _ = writeln!(
            text,
            "{:>10}  {:>14.5}  {:>9.5}",
            format_ms(t),
            prediction.probability_consistent(t),
            prediction.confidence_95(t)
        );
    }
    let _ = writeln!(text);
    let _ = writeln!(text, "{:>14}  {:>12}", "P(consistent)", "needs t_ms >=");
    for &p in &args.probabilities {
        let _ = writeln!(text, "{:>14}  {:>12.3}", p, prediction.t_for_probability(p));
    }
    let _ = writeln!(text);
    let _ = writeln!(
        text,
        "{:<6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "op", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "p99.9_ms", "max_ms"
    );
    latency_row(&mut text, "READ", prediction.read_latency_mean(), |q| {
        prediction.read_latency(q)
    });
    latency_row(&mut text, "WRITE", prediction.write_latency_mean(), |q| {
        prediction.write_latency(q)
    });
    text
}

fn latency_row(text: &mut String, name: &str, mean: f64, at: impl Fn(f64) -> f64) {
    use std::fmt::Write as _;
    let _ = writeln!(
        text,
        "{:<6} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
        name,
        mean,
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        at(1.0)
    );
}

fn format_ms(t: f64) -> String {
    if t.fract() == 0.0 {
        format!("{t:.0}")
    } else {
        format!("{t}")
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{parse, run, Command};

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn output(list: &[&str]) -> crate::Result<String> {
        let cli = parse(args(list)).unwrap();
        let mut out = Vec::new();
        run(cli, &mut out, &mut Vec::new())?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn prints_the_t_visibility_table() {
        let text = output(&[
            "kvbench",
            "predict",
            "--n",
            "3",
            "--r",
            "1",
            "--w",
            "1",
            "--write-delay",
            "exp:20",
            "--ack-delay",
            "exp:10",
            "--read-delay",
            "exp:10",
            "--response-delay",
            "exp:10",
            "--t",
            "0,10,1000",
            "--trials",
            "20000",
            "--seed",
            "3",
        ])
        .unwrap();
        assert!(text.contains("N=3 R=1 W=1, 20000 trials, seed 3"), "{text}");
        assert!(text.contains("exp(20) (mean 20.000 ms)"), "{text}");
        let row = |t: &str| -> f64 {
            let line = text
                .lines()
                .find(|line| line.split_whitespace().next() == Some(t))
                .unwrap_or_else(|| panic!("no row for t={t} in\n{text}"));
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        assert!((row("0") - 0.6248).abs() < 0.02, "{text}");
        assert!(row("0") < row("10") && row("10") <= row("1000"));
        assert!(text.contains("READ") && text.contains("WRITE"));
    }

    #[test]
    fn scenarios_and_per_replica_delays_parse() {
        let text = output(&[
            "kvbench",
            "predict",
            "--scenario",
            "wan",
            "--trials",
            "2000",
        ])
        .unwrap();
        assert!(text.contains("replica 2:"), "{text}");
        let text = output(&[
            "kvbench",
            "predict",
            "--write-delay",
            "1",
            "--write-delay",
            "2",
            "--write-delay",
            "exp:3",
            "--trials",
            "100",
        ])
        .unwrap();
        assert!(text.contains("replica 1:"), "{text}");
        let cli = parse(args(&[
            "kvbench",
            "predict",
            "--scenario",
            "ymmr",
            "--ack-delay",
            "1",
        ]));
        assert!(cli.is_err());
        let Some(Command::Predict(_)) = parse(args(&["kvbench", "predict"])).unwrap().command
        else {
            panic!("expected predict");
        };
    }

    #[test]
    fn bad_flags_are_named() {
        let error = |list: &[&str]| output(list).unwrap_err().to_string();
        assert!(error(&["kvbench", "predict", "--r", "4"]).starts_with("--r:"));
        assert!(error(&["kvbench", "predict", "--p", "1.5"]).starts_with("--p:"));
        assert!(
            error(&["kvbench", "predict", "--read-delay", "exp:x"]).starts_with("--read-delay:")
        );
        assert!(error(&[
            "kvbench",
            "predict",
            "--write-delay",
            "1",
            "--write-delay",
            "2"
        ])
        .starts_with("--write-delay:"));
        assert!(error(&[
            "kvbench",
            "predict",
            "--write-delay",
            "1",
            "--write-delay",
            "2",
            "--ack-delay",
            "1",
            "--ack-delay",
            "1",
            "--ack-delay",
            "1",
            "--n",
            "2"
        ])
        .starts_with("--write-delay:"));
    }
}
