//! `kvbench probe`: the staleness probe ([`crate::probe`]) against `--hosts` or an embedded
//! cluster configured as the WARS model ([`crate::probe::cluster`]), with the model's
//! prediction for the same delays beside every measured point and the RMSE between them.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::predict::{simulate, Prediction, SimulationOptions};
use crate::probe::cluster::{PbsCluster, PbsClusterOptions, CLUSTER_PROPERTIES};
use crate::probe::{run_probes, ProbeOptions, ProbeReport, PROBE_PROPERTIES};
use crate::workload::Properties;
use crate::{Error, Result};

/// Flags of `kvbench probe`.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// Property file (`probe.*` and `cluster.*`, see workloads/probe-pbs); later files win.
    #[arg(short = 'P', value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// One property, `name=value`; wins over the files.
    #[arg(short = 'p', value_name = "NAME=VALUE")]
    pub overrides: Vec<String>,
    /// Client addresses of a running cluster (host:port, comma-separated). Without them an
    /// embedded cluster is started from the `cluster.*` properties.
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// With --hosts: first set every datacenter pair's links (same datacenter included) to the
    /// `cluster.*` delays with LINK.SET (they stay so until LINK.RESET). Without it the
    /// `cluster.*` delays only feed the prediction.
    #[arg(long, requires = "hosts")]
    pub apply_links: bool,
    /// Directory for probe.csv (measured and predicted per delay).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Trials of the WARS prediction (0: no prediction).
    #[arg(long, default_value_t = 1_000_000)]
    pub trials: u64,
    /// Delays with fewer answered reads are left out of the RMSE.
    #[arg(long, default_value_t = 30)]
    pub rmse_reads_min: u64,
}

fn io(context: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        context: context.to_string(),
        source,
    }
}

/// Runs `kvbench probe`.
pub fn run(args: &ProbeArgs, out: &mut dyn Write) -> Result<()> {
    let files: Vec<&std::path::Path> = args.files.iter().map(PathBuf::as_path).collect();
    let overrides: Vec<&str> = args.overrides.iter().map(String::as_str).collect();
    let properties = Properties::from_command_line(&files, &overrides)?;
    let known: Vec<&str> = PROBE_PROPERTIES
        .iter()
        .chain(CLUSTER_PROPERTIES.iter())
        .copied()
        .collect();
    if let Some(name) = properties.unknown(&known).first() {
        return Err(Error::InvalidOption {
            field: name.clone(),
            detail: format!("unknown probe property; known: {}", known.join(", ")),
        });
    }
    let options = ProbeOptions::from_properties(&properties)?;
    let cluster_options = PbsClusterOptions::from_properties(&properties)?;
    let stdout = io("stdout");
    let mut measured = None;
    let (report, setup) = if args.hosts.is_empty() {
        let cluster = PbsCluster::start(&cluster_options)?;
        let setup = format!(
            "embedded cluster: {} nodes in one datacenter, N={}, read repair {}, links: {}",
            cluster_options.nodes,
            cluster_options.replicas,
            if cluster_options.read_repair {
                "on"
            } else {
                "off"
            },
            cluster_options.link.delay_summary()
        );
        writeln!(out, "{setup}").map_err(&stdout)?;
        let addresses = cluster.client_addresses();
        crate::predict::MeasuredDelays::reset(&addresses);
        let report = run_probes(&addresses, &options)?;
        // The delays the probes' messages took, for a prediction beside the configured one.
        measured = match crate::predict::MeasuredDelays::pull(&addresses) {
            Ok(delays) if !delays.is_empty() => Some(delays),
            Ok(_) => None,
            Err(error) => {
                writeln!(out, "measured delays not read: {error}").map_err(&stdout)?;
                None
            }
        };
        (report, setup)
    } else {
        let addresses = args
            .hosts
            .iter()
            .map(|host| crate::client::connection::Target::resolve(host).map(|t| t.address))
            .collect::<Result<Vec<_>>>()?;
        let setup = format!("hosts {}", args.hosts.join(","));
        writeln!(out, "{setup}").map_err(&stdout)?;
        if args.apply_links {
            for line in apply_links(&addresses, &cluster_options)? {
                writeln!(out, "{line}").map_err(&stdout)?;
            }
        }
        (run_probes(&addresses, &options)?, setup)
    };
    let predictions = if args.trials == 0 {
        None
    } else {
        let simulation = SimulationOptions {
            trials: args.trials,
            ..SimulationOptions::default()
        };
        let (r, w) = (options.read_quorum, options.write_quorum);
        Some((
            simulate(&cluster_options.wars_model(r, w), &simulation)?,
            simulate(&cluster_options.store_model(r, w), &simulation)?,
        ))
    };
    print_report(
        out,
        &options,
        &report,
        predictions.as_ref(),
        args.rmse_reads_min,
    )
    .map_err(&stdout)?;
    if let (Some(delays), true) = (&measured, args.trials > 0) {
        // Every replica is reached over a link (one datacenter): all take the intra samples.
        let model = delays.model(
            cluster_options.replicas,
            options.read_quorum,
            options.write_quorum,
            cluster_options.replicas,
        )?;
        let simulation = SimulationOptions {
            trials: args.trials,
            ..SimulationOptions::default()
        };
        let prediction = simulate(&model, &simulation)?;
        let points = report.measured_points(args.rmse_reads_min);
        out.write_all(delays.summary().as_bytes())
            .map_err(&stdout)?;
        if let Some(rmse) = prediction.rmse(&points) {
            writeln!(
                out,
                "RMSE measured vs WARS from the measured delays (transit where measured): \
                 {:.2}% over {} delays",
                rmse * 100.0,
                points.len()
            )
            .map_err(&stdout)?;
        }
    }
    if let Some(directory) = &args.out {
        std::fs::create_dir_all(directory).map_err(io("creating the --out directory"))?;
        if let Some(delays) = &measured {
            let path = delays.write_csv(directory)?;
            writeln!(out, "wrote {}", path.display()).map_err(&stdout)?;
        }
        let path = directory.join("probe.csv");
        let csv = with_predictions(&report, predictions.as_ref());
        std::fs::write(&path, format!("# {setup}\n{csv}"))
            .map_err(io(&format!("writing {}", path.display())))?;
        writeln!(out, "wrote {}", path.display()).map_err(&stdout)?;
    }
    Ok(())
}

/// Sends `LINK.SET a b <cluster.* delays>` for every pair of the cluster's datacenters to
/// the first host (a change applies on every member); returns the replies.
fn apply_links(
    addresses: &[std::net::SocketAddr],
    options: &PbsClusterOptions,
) -> Result<Vec<String>> {
    use cluster::net::{LinkChange, LinkPair};
    use cluster::protocol::resp::RespValue;
    let first = addresses[0];
    let topology = crate::routing::fetch_topology(first)?;
    let datacenters: std::collections::BTreeSet<&str> = topology
        .members()
        .iter()
        .map(|member| member.datacenter.as_str())
        .collect();
    let mut replies = Vec::new();
    for from in &datacenters {
        for to in datacenters.range(*from..) {
            let change = LinkChange::Set {
                pair: LinkPair::datacenters(from, to),
                spec: options.link.clone(),
                symmetric: true,
            };
            let mut words = change.to_words();
            words[0] = format!("LINK.{}", words[0]);
            let arguments: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
            match crate::routing::call(first, &arguments)? {
                RespValue::Error(text) => {
                    return Err(Error::InvalidOption {
                        field: "--apply-links".into(),
                        detail: format!("{}: {text}", words.join(" ")),
                    })
                }
                RespValue::SimpleString(text) => {
                    replies.push(format!("{}: {text}", words.join(" ")))
                }
                RespValue::BulkString(Some(bytes)) => replies.push(format!(
                    "{}: {}",
                    words.join(" "),
                    String::from_utf8_lossy(&bytes)
                )),
                other => replies.push(format!("{}: {other:?}", words.join(" "))),
            }
        }
    }
    Ok(replies)
}

fn print_report(
    out: &mut dyn Write,
    options: &ProbeOptions,
    report: &ProbeReport,
    predictions: Option<&(Prediction, Prediction)>,
    reads_min: u64,
) -> std::io::Result<()> {
    let writes = report.writes.max(1) as f64;
    writeln!(
        out,
        "probe: {} writes acknowledged ({} failed, mean write latency {:.2} ms), W={} R={}, \
         {} probes with a replica as coordinator",
        report.writes,
        report.write_errors,
        report.write_latency_ms_sum / writes,
        options.write_quorum,
        options.read_quorum,
        report.replica_coordinated
    )?;
    writeln!(
        out,
        "{:>8} {:>9} {:>7} {:>7} {:>9} {:>8} {:>7} {:>11} {:>11}",
        "t_ms", "mean_t_ms", "reads", "fresh", "P(fresh)", "+-95%", "errors", "WARS", "WARS-store"
    )?;
    for row in &report.rows {
        let predicted = |pick: fn(&(Prediction, Prediction)) -> &Prediction| {
            predictions.map_or("-".to_string(), |pair| {
                format!(
                    "{:.4}",
                    pick(pair).probability_consistent(row.mean_started_ms())
                )
            })
        };
        writeln!(
            out,
            "{:>8} {:>9.2} {:>7} {:>7} {:>9} {:>8.4} {:>7} {:>11} {:>11}",
            row.delay_ms,
            row.mean_started_ms(),
            row.reads,
            row.fresh,
            row.p_fresh().map_or("-".to_string(), |p| format!("{p:.4}")),
            row.confidence_95(),
            row.errors,
            predicted(|pair| &pair.0),
            predicted(|pair| &pair.1)
        )?;
    }
    if let Some((wars, store)) = predictions {
        let points = report.measured_points(reads_min);
        for (name, prediction) in [
            ("WARS (paper model, all N replicas alike)", wars),
            ("WARS-store (minting replica has W=A=0)", store),
        ] {
            match prediction.rmse(&points) {
                Some(rmse) => writeln!(
                    out,
                    "RMSE measured vs {name}: {:.2}% over {} delays",
                    rmse * 100.0,
                    points.len()
                )?,
                None => writeln!(out, "RMSE vs {name}: no delay has {reads_min} reads")?,
            }
        }
    }
    Ok(())
}

fn with_predictions(
    report: &ProbeReport,
    predictions: Option<&(Prediction, Prediction)>,
) -> String {
    let csv = report.to_csv();
    let mut lines = csv.lines();
    let mut out = format!(
        "{},predicted_wars,predicted_store\n",
        lines.next().unwrap_or_default()
    );
    for (line, row) in lines.zip(&report.rows) {
        let t = row.mean_started_ms();
        let (wars, store) = predictions.map_or((String::new(), String::new()), |(a, b)| {
            (
                format!("{:.5}", a.probability_consistent(t)),
                format!("{:.5}", b.probability_consistent(t)),
            )
        });
        out.push_str(&format!("{line},{wars},{store}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::cluster::net::LinkSpec;
    use ::cluster::protocol::resp::RespValue;

    /// `kvbench probe --hosts ... --apply-links` against an embedded cluster started without
    /// link delays: the links get the `cluster.*` delays, the probe and prediction run.
    #[test]
    fn probe_against_hosts_applies_the_link_delays_first() {
        let plain = PbsClusterOptions {
            link: LinkSpec::default(),
            ..PbsClusterOptions::default()
        };
        let cluster = PbsCluster::start(&plain).unwrap();
        let addresses = cluster.client_addresses();
        let args = ProbeArgs {
            files: Vec::new(),
            overrides: [
                "probe.count=4",
                "probe.delays_ms=0,300",
                "probe.rate=0",
                "cluster.write_request_delay=const:3",
                "cluster.read_response_delay=const(1)",
            ]
            .iter()
            .map(|text| text.to_string())
            .collect(),
            hosts: addresses.iter().map(ToString::to_string).collect(),
            apply_links: true,
            out: None,
            trials: 1000,
            rmse_reads_min: 1,
        };
        let mut out = Vec::new();
        run(&args, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("LINK.SET dc1 dc1"), "{text}");
        assert!(text.contains("RMSE measured vs WARS-store"), "{text}");
        let table = match crate::routing::call(addresses[4], &[b"LINK.GET"]).unwrap() {
            RespValue::Array(Some(lines)) => lines
                .into_iter()
                .map(|line| match line {
                    RespValue::BulkString(Some(bytes)) => String::from_utf8(bytes).unwrap(),
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>()
                .join("\n"),
            other => panic!("{other:?}"),
        };
        assert!(
            table.contains("write_request=const(3)") && table.contains("read_response=const(1)"),
            "{table}"
        );
        let mut unknown = args.clone();
        unknown.overrides.push("probe.cout=3".into());
        let error = run(&unknown, &mut Vec::new()).unwrap_err().to_string();
        assert!(error.contains("probe.cout"), "{error}");
    }
}
