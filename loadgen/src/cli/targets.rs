//! Where `kvbench load` and `kvbench run` send requests, and which node serves each key.
//!
//! - With `--hosts`, the named servers, taken in turn (`--routing round-robin`, the
//!   default), or chosen per key from the cluster's topology (`same-dc:DC`,
//!   `token-aware[:DC]`, asked of the first host with `CLUSTER.TOPOLOGY`).
//! - Without `--hosts`, an emulated multi-datacenter cluster started inside this process
//!   ([`crate::local::EmbeddedCluster`], shaped by `--local-config FILE`, defaults 2
//!   datacenters x 3 nodes, N = 3 as `{dc1 = 2, dc2 = 1}`, QUORUM). `run` loads it first
//!   (the cluster is new and empty) and tears it down at the end, whatever happened.
//!   Clients sit in dc1 and route token-aware to a dc1 replica unless `--routing` says
//!   otherwise. Staleness is measured (as `--staleness`) whenever the values can hold the
//!   stamp.

use super::ycsb::{self, YcsbArgs};
use crate::client::Target;
use crate::driver::{Phase, RoundRobin, RouterFactory};
use crate::local::LocalClusterOptions;
use crate::routing::{fetch_topology, Policy, TopologyWatch, FOLLOW_INTERVAL};
use crate::{Error, Result};
use cluster::protocol::Consistency;
use cluster::ring::Replication;
use std::io::Write;
use std::net::SocketAddr;

/// The routing of an embedded run when `--routing` is not given: clients in dc1, each key
/// sent to one of its dc1 replicas, as a datacenter-aware driver would.
pub const EMBEDDED_DEFAULT_ROUTING: &str = "token-aware:dc1";

/// The router factory `--routing` asks for, over `targets`; the topology, when the policy
/// needs one, is asked of the first target.
pub fn router_factory(routing: Option<&str>, targets: &[Target]) -> Result<RouterFactory> {
    let policy = match routing {
        Some(text) => Policy::parse(text)?,
        None => Policy::RoundRobin,
    };
    if !policy.needs_topology() {
        // The driver's round robin starts each client at its own index, so clients spread.
        return Ok(RoundRobin::factory());
    }
    let addresses: Vec<SocketAddr> = targets.iter().map(|target| target.address).collect();
    let first = *addresses.first().ok_or(Error::NoHosts)?;
    let topology = fetch_topology(first)?;
    // The ring can change under the run (a schedule's add or remove, an admin): routers
    // follow it rather than send keys to nodes that no longer replicate them.
    let watch = TopologyWatch::new(topology);
    watch.follow(addresses.clone(), FOLLOW_INTERVAL);
    policy.driver_factory_following(&addresses, &watch)
}

/// The embedded cluster's shape: `--local-config FILE` (TOML, the fields of
/// [`LocalClusterOptions`]) or the defaults.
pub fn local_options(args: &YcsbArgs) -> Result<LocalClusterOptions> {
    let Some(path) = &args.local_config else {
        return Ok(LocalClusterOptions::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        context: format!("reading --local-config {}", path.display()),
        source,
    })?;
    toml::from_str(&text).map_err(|error| Error::InvalidFlag {
        flag: "local-config",
        detail: format!("{}: {}", path.display(), error.message()),
    })
}

/// `kvbench load|run` without `--hosts`: start the embedded cluster, load it, run the
/// workload, stop it.
pub fn run_embedded(
    phase: Phase,
    args: &YcsbArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    if phase == Phase::Load {
        return Err(Error::InvalidFlag {
            flag: "hosts",
            detail: "`kvbench load` without --hosts would load an embedded cluster that is torn \
                     down when the command ends; `kvbench run` without --hosts loads its own \
                     cluster first"
                .to_string(),
        });
    }
    // The workload is checked before anything starts.
    let workload = ycsb::workload_config(args, &mut std::io::sink())?;
    if args.staleness {
        crate::driver::check_staleness(&workload)?;
    }
    let mut options = local_options(args)?;
    // A schedule that kills, stops or restarts runs the nodes as processes: an in-process
    // node cannot crash, and a process's exit surely releases its store for the restart.
    let schedule = crate::faults::schedule_from_command_line(
        args.schedule.as_deref(),
        args.schedule_file.as_deref(),
        &args.workload_files,
        &args.properties,
    )?;
    let kills = schedule.as_ref().is_some_and(|schedule| {
        schedule.events.iter().any(|event| {
            matches!(
                event.action,
                crate::faults::Action::Kill(_)
                    | crate::faults::Action::Stop(_)
                    | crate::faults::Action::Restart(_)
            )
        })
    });
    if let Some(schedule) = &schedule {
        // `add NODE` starts a spare node: as many as the schedule adds, unless configured.
        if options.spare_nodes == 0 {
            options.spare_nodes = crate::faults::embedded::spares_needed(schedule);
        }
        crate::faults::embedded::check_schedule(schedule, &options)?;
    }
    let mut cluster = crate::faults::embedded::start(&options, kills)?;
    let mut local = args.clone();
    local.hosts = cluster
        .client_addresses()
        .iter()
        .map(SocketAddr::to_string)
        .collect();
    if local.routing.is_none() {
        local.routing = Some(EMBEDDED_DEFAULT_ROUTING.to_string());
    }
    // Staleness is measured by default here: one process stamps, writes and reads, so the
    // times compare, and the cluster's consistency is what the run is about. Only when the
    // values can hold the stamp (constant field lengths >= 32 bytes, as YCSB's defaults).
    if !local.staleness && crate::driver::check_staleness(&workload).is_ok() {
        local.staleness = true;
    }
    if local.target_kind == ycsb::TargetKindArg::Auto {
        local.target_kind = ycsb::TargetKindArg::Kvnode;
    }
    writeln!(
        out,
        "embedded cluster: {} datacenters x {} nodes {} on {}, replication {}, consistency {}, \
         one-way delay between datacenters {} ms; routing {}; staleness {}",
        options.datacenters,
        options.nodes_per_datacenter,
        cluster.describe(),
        local.hosts.join(","),
        describe_replication(&options.replication),
        describe_consistency(options.consistency),
        options.inter_dc_delay,
        local.routing.as_deref().unwrap_or("round-robin"),
        if local.staleness {
            "measured"
        } else {
            "not measured"
        },
    )
    .map_err(stdio_error)?;
    if options.spare_nodes > 0 {
        let count = options.node_count();
        let names: Vec<String> = (count + 1..=count + options.spare_nodes)
            .map(|number| format!("n{number}"))
            .collect();
        writeln!(
            out,
            "spare nodes: {} (configured, started by the schedule's add)",
            names.join(",")
        )
        .map_err(stdio_error)?;
    }
    let membership_changes = schedule.as_ref().is_some_and(|schedule| {
        schedule.events.iter().any(|event| {
            matches!(
                event.action,
                crate::faults::Action::Add(_) | crate::faults::Action::Remove(_)
            )
        })
    });
    let base_name = args.run_name.clone();
    let mut load = local.clone();
    load.run_name = base_name.as_ref().map(|name| format!("{name}-load"));
    load.warmup = 0.0;
    load.target = Some(0.0);
    let conflict_policy = match options.conflict_policy {
        cluster::version::ConflictPolicy::Siblings => "siblings",
        cluster::version::ConflictPolicy::LastWriteWins => "lww",
    };
    // The run phase's directory, to put the delays the nodes measured beside its results.
    if local.run_name.is_none() {
        local.run_name = Some(ycsb::default_run_name(
            Phase::Run,
            &local,
            std::time::SystemTime::now(),
        ));
    }
    let run_dir = local
        .results
        .join(local.run_name.as_deref().unwrap_or_default());
    let addresses = cluster.client_addresses();
    let outcome = ycsb::run(Phase::Load, &load, out, err).and_then(|()| {
        // What the links saw during the load is not the run's.
        crate::predict::MeasuredDelays::reset(&addresses);
        let faults = ycsb::Faults {
            target: cluster.as_target(),
            conflict_policy: conflict_policy.to_string(),
        };
        ycsb::run_with_faults(Phase::Run, &local, Some(faults), out, err)
    });
    if run_dir.is_dir() {
        write_measured_delays(&addresses, &run_dir, out);
    }
    if membership_changes {
        let line = members_after_run(&cluster.client_addresses());
        let _ = writeln!(out, "{line}");
        let line = commands_per_member(&cluster.client_addresses());
        let _ = writeln!(out, "{line}");
    }
    let stopped = cluster.shutdown();
    outcome?;
    stopped
}

/// Pulls `LINK.STATS` from the nodes into `measured_delays.csv` in the run's directory and
/// prints the summary; a failure is printed, not returned (the run itself went well).
fn write_measured_delays(addresses: &[SocketAddr], run_dir: &std::path::Path, out: &mut dyn Write) {
    let written = crate::predict::MeasuredDelays::pull(addresses).and_then(|measured| {
        if measured.is_empty() {
            return Ok("measured delays: none (no WARS message crossed a link)\n".to_string());
        }
        let path = measured.write_csv(run_dir)?;
        Ok(format!(
            "\n{}measured delays: {} (kvbench predict --from-run {})\n",
            measured.summary(),
            path.display(),
            run_dir.display()
        ))
    });
    let _ = match written {
        Ok(text) => out.write_all(text.as_bytes()),
        Err(error) => writeln!(out, "measured delays not written: {error}"),
    };
}

/// `client commands per member (INFO total_commands_processed, since each started): n1
/// 52210, ...`: how the run's requests spread over the ring it ended with (a node that
/// joined serves the clients whose routers follow the ring; the load phase's requests and
/// the schedule's own commands are counted too).
fn commands_per_member(addresses: &[SocketAddr]) -> String {
    let Some(topology) = addresses
        .iter()
        .find_map(|address| crate::routing::fetch_topology(*address).ok())
    else {
        return "client commands per member: unknown (no node answered CLUSTER.TOPOLOGY)"
            .to_string();
    };
    let words = ["INFO".to_string()];
    let counts: Vec<String> = topology
        .members()
        .iter()
        .map(|member| {
            let count = member.client_address.and_then(|address| {
                let info =
                    crate::verify::command_text(address, &words, std::time::Duration::from_secs(5))
                        .ok()?
                        .ok()?;
                // `command_text` gives the reply's lines joined by "; ".
                info.split("; ")
                    .find_map(|line| line.trim().strip_prefix("total_commands_processed:"))
                    .map(str::to_string)
            });
            format!("{} {}", member.id, count.as_deref().unwrap_or("?"))
        })
        .collect();
    format!(
        "client commands per member (INFO total_commands_processed, since each started): {}",
        counts.join(", ")
    )
}

/// `members after the run: n1,n2,n3,n4 (ring_version 3, CLUSTER.TOPOLOGY on ADDRESS)`,
/// from the first node that answers.
fn members_after_run(addresses: &[SocketAddr]) -> String {
    let words = ["CLUSTER.TOPOLOGY".to_string()];
    for address in addresses {
        let Ok(Ok(text)) =
            crate::verify::command_text(*address, &words, std::time::Duration::from_secs(5))
        else {
            continue;
        };
        let mut lines = text.split("; ");
        let header = lines.next().unwrap_or_default();
        let version = header
            .split_whitespace()
            .skip_while(|word| *word != "ring_version")
            .nth(1)
            .unwrap_or("?");
        let members: Vec<&str> = lines
            .filter_map(|line| line.split_whitespace().next())
            .collect();
        return format!(
            "members after the run: {} (ring_version {version}, CLUSTER.TOPOLOGY on {address})",
            members.join(",")
        );
    }
    "members after the run: unknown (no node answered CLUSTER.TOPOLOGY)".to_string()
}

/// `N=3 {dc1=2, dc2=1}` or `N=3`.
pub fn describe_replication(replication: &Replication) -> String {
    match replication {
        Replication::Total(total) => format!("N={total}"),
        Replication::PerDatacenter(counts) => {
            let per: Vec<String> = counts.iter().map(|(dc, n)| format!("{dc}={n}")).collect();
            format!("N={} {{{}}}", replication.total(), per.join(", "))
        }
    }
}

/// `QUORUM`, `R=1 W=3`, ...
pub fn describe_consistency(consistency: Consistency) -> String {
    match consistency {
        Consistency::One => "ONE".to_string(),
        Consistency::Quorum => "QUORUM".to_string(),
        Consistency::All => "ALL".to_string(),
        Consistency::LocalQuorum => "LOCAL_QUORUM".to_string(),
        Consistency::EachQuorum => "EACH_QUORUM".to_string(),
        Consistency::Counts { read, write } => {
            let side = |count: Option<u32>| count.map_or("default".to_string(), |n| n.to_string());
            format!("R={} W={}", side(read), side(write))
        }
    }
}

fn stdio_error(source: std::io::Error) -> Error {
    Error::Io {
        context: "output".to_string(),
        source,
    }
}
