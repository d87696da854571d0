//! The report's charts, built from what [`super::inputs`] read, and the PBS prediction of a
//! sweep cell's t-visibility.

use super::inputs::{number, RunInput};
use crate::local::LocalClusterOptions;
use crate::predict::{parse_delay, simulate, ReplicaDelays, SimulationOptions, WarsModel};
use crate::report::plots::{LineChart, Series};
use cluster::protocol::Consistency;
use cluster::ring::Replication;
use std::path::Path;

/// Latency percentile columns of `summary.csv` and their legend names.
const PERCENTILES: [(&str, &str); 4] = [
    ("p50_us", "p50"),
    ("p90_us", "p90"),
    ("p99_us", "p99"),
    ("p999_us", "p99.9"),
];

/// Operation kinds present in any run, in YCSB's order.
pub fn operation_kinds(runs: &[RunInput]) -> Vec<String> {
    let mut kinds = Vec::new();
    for (op, _) in crate::sweep::results::OPS {
        let present = runs.iter().any(|run| {
            run.summary
                .iter()
                .any(|row| row.get("op").map(String::as_str) == Some(op))
        });
        if present {
            kinds.push(op.to_string());
        }
    }
    kinds
}

/// Percentiles of `op` per setting (x = setting).
pub fn latency_chart(runs: &[RunInput], op: &str) -> LineChart {
    let series = PERCENTILES
        .iter()
        .map(|(column, name)| Series {
            name: name.to_string(),
            points: runs
                .iter()
                .enumerate()
                .filter_map(|(index, run)| {
                    let row = run
                        .summary
                        .iter()
                        .find(|row| row.get("op").map(String::as_str) == Some(op))?;
                    Some((index as f64, number(row, column)? / 1000.0))
                })
                .collect(),
            markers: true,
            line: true,
        })
        .collect();
    LineChart {
        title: format!("{op} latency per setting"),
        x_label: "setting".to_string(),
        y_label: "latency (ms, log scale)".to_string(),
        series,
        categories: Some(runs.iter().map(|run| run.label.clone()).collect()),
        y_log: true,
        ..LineChart::default()
    }
}

/// Per interval, summed over operation kinds (not intended rows): `column` at interval end.
fn per_interval(run: &RunInput, column: &str) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = Vec::new();
    for row in &run.intervals {
        if row.get("op").is_some_and(|op| op.starts_with("Intended-")) {
            continue;
        }
        let (Some(end), Some(value)) = (number(row, "end_s"), number(row, column)) else {
            continue;
        };
        match points.last_mut() {
            Some(last) if (last.0 - end).abs() < 1e-9 => last.1 += value,
            _ => points.push((end, value)),
        }
    }
    points
}

/// Events of every run, prefixed with the run's label when there are several runs.
fn events(runs: &[RunInput]) -> Vec<(f64, String)> {
    let several = runs.iter().filter(|run| !run.events.is_empty()).count() > 1;
    runs.iter()
        .flat_map(|run| {
            run.events.iter().map(move |(time, what)| {
                let text = if several {
                    format!("{}: {what}", run.label)
                } else {
                    what.clone()
                };
                (*time, text)
            })
        })
        .collect()
}

/// Throughput (`throughput_ops_per_second`) or errors (`errors`) over time, one series per
/// run, failure events marked.
pub fn over_time_chart(runs: &[RunInput], column: &str, title: &str, y_label: &str) -> LineChart {
    LineChart {
        title: title.to_string(),
        x_label: "time since the run's start (s)".to_string(),
        y_label: y_label.to_string(),
        series: runs
            .iter()
            .map(|run| Series {
                name: run.label.clone(),
                points: per_interval(run, column),
                markers: false,
                line: true,
            })
            .collect(),
        events: events(runs),
        ..LineChart::default()
    }
}

/// The stale fraction of a run, from `staleness.csv`'s total row.
pub fn stale_fraction(run: &RunInput) -> Option<f64> {
    let total = run
        .staleness
        .iter()
        .find(|row| row.get("row").map(String::as_str) == Some("total"))?;
    let reads = number(total, "reads")?;
    (reads > 0.0).then(|| number(total, "stale_reads").unwrap_or(0.0) / reads)
}

/// Stale fraction against `op`'s p99 latency, one point per setting.
pub fn tradeoff_chart(runs: &[RunInput], op: &str) -> LineChart {
    let series = runs
        .iter()
        .filter_map(|run| {
            let row = run
                .summary
                .iter()
                .find(|row| row.get("op").map(String::as_str) == Some(op))?;
            let p99 = number(row, "p99_us")? / 1000.0;
            Some(Series {
                name: run.label.clone(),
                points: vec![(p99, stale_fraction(run)? * 100.0)],
                markers: true,
                line: false,
            })
        })
        .collect();
    LineChart {
        title: format!("staleness vs {op} latency"),
        x_label: format!("{op} p99 (ms)"),
        y_label: "stale reads (%)".to_string(),
        series,
        label_points: true,
        ..LineChart::default()
    }
}

/// Measured t-visibility `(t_ms, P(fresh))` of a run: bucket means with at least
/// `min_reads` reads.
pub fn measured_visibility(run: &RunInput, min_reads: f64) -> Vec<(f64, f64)> {
    run.staleness
        .iter()
        .filter(|row| row.get("row").map(String::as_str) == Some("visibility"))
        .filter_map(|row| {
            let reads = number(row, "reads")?;
            (reads >= min_reads)
                .then_some((number(row, "mean_t_ms")?, number(row, "fresh_fraction")?))
        })
        .collect()
}

/// The WARS model of a sweep cell on the embedded cluster, from the cluster options the
/// sweep wrote beside the cell (`cells/<cell>.cluster.toml`): with the cell's
/// `measured_delays.csv`, replicas in the clients' datacenter (dc1) get the delays measured
/// within a datacenter and the others those measured between datacenters (empirical, per
/// WARS kind); without it, dc1's replicas get no delay and the others the configured
/// inter-datacenter delay on all four legs.
/// `None` when the placement or quorums are not known (replication as a bare total,
/// EACH_QUORUM, a count left to the default).
pub fn cell_model(run: &RunInput) -> Option<WarsModel> {
    let cells = run.dir.parent()?;
    let name = run.dir.file_name()?.to_string_lossy().into_owned();
    let text = std::fs::read_to_string(cells.join(format!("{name}.cluster.toml"))).ok()?;
    let options: LocalClusterOptions = toml::from_str(&text).ok()?;
    // The delays the run measured (measured_delays.csv), when it wrote them: what the
    // messages took, not only what the links were configured with.
    if run.dir.join(crate::predict::MEASURED_DELAYS_CSV).is_file() {
        let measured = crate::predict::MeasuredDelays::read(&run.dir).ok();
        if let (Some(measured), Some((total, local, read, write))) =
            (measured, quorums_of(&options))
        {
            if let Ok(model) = measured.model(total, read, write, local) {
                return Some(model);
            }
        }
    }
    model_of(&options)
}

/// (N, replicas in dc1, R, W) of a cluster's options; `None` as for [`model_of`].
fn quorums_of(options: &LocalClusterOptions) -> Option<(usize, usize, usize, usize)> {
    let Replication::PerDatacenter(counts) = &options.replication else {
        return None;
    };
    let local = *counts.get("dc1").unwrap_or(&0);
    let total = options.replication.total();
    let majority = |n: usize| n / 2 + 1;
    let (read, write) = match options.consistency {
        Consistency::One => (1, 1),
        Consistency::Quorum => (majority(total), majority(total)),
        Consistency::All => (total, total),
        Consistency::LocalQuorum if local > 0 => (majority(local), majority(local)),
        Consistency::Counts {
            read: Some(r),
            write: Some(w),
        } => (r as usize, w as usize),
        _ => return None,
    };
    Some((total, local, read, write))
}

/// See [`cell_model`].
pub fn model_of(options: &LocalClusterOptions) -> Option<WarsModel> {
    let (total, local, read, write) = quorums_of(options)?;
    let near = parse_delay("inter_dc_delay", "0").ok()?;
    let far = parse_delay("inter_dc_delay", &options.inter_dc_delay).ok()?;
    let legs = |delay: &crate::predict::Delay| ReplicaDelays {
        write: delay.clone(),
        ack: delay.clone(),
        read: delay.clone(),
        response: delay.clone(),
    };
    let mut delays = vec![legs(&near); local];
    delays.extend(vec![legs(&far); total - local]);
    let model = WarsModel {
        replicas: total,
        read_quorum: read,
        write_quorum: write,
        delays,
        read_coordinator_random: false,
    };
    model.validate().ok()?;
    Some(model)
}

/// The t values a predicted curve is drawn at.
const PREDICTED_T_MS: [f64; 16] = [
    0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 50.0, 70.0, 100.0, 200.0, 500.0, 1000.0,
];

/// Measured t-visibility per run and, for sweep cells with a model, the prediction beside
/// it; with the RMSE between them per run (label, RMSE).
pub fn visibility_chart(runs: &[RunInput]) -> (LineChart, Vec<(String, f64)>) {
    let mut series = Vec::new();
    let mut rmse = Vec::new();
    for run in runs {
        let measured = measured_visibility(run, 20.0);
        if measured.is_empty() {
            continue;
        }
        series.push(Series {
            name: format!("{} measured", run.label),
            points: measured.clone(),
            markers: true,
            line: true,
        });
        let options = SimulationOptions {
            trials: 200_000,
            ..SimulationOptions::default()
        };
        if let Some(prediction) = cell_model(run).and_then(|m| simulate(&m, &options).ok()) {
            series.push(Series {
                name: format!("{} predicted", run.label),
                points: PREDICTED_T_MS
                    .iter()
                    .map(|&t| (t, prediction.probability_consistent(t)))
                    .collect(),
                markers: false,
                line: true,
            });
            if let Some(error) = prediction.rmse(&measured) {
                rmse.push((run.label.clone(), error));
            }
        }
    }
    let chart = LineChart {
        title: "t-visibility: P(read sees a write acknowledged t ms before)".to_string(),
        x_label: "t since the write was acknowledged (ms, log scale)".to_string(),
        y_label: "P(fresh)".to_string(),
        series,
        x_log: true,
        y_min_top: Some(1.0),
        ..LineChart::default()
    };
    (chart, rmse)
}

/// Whether a path's file looks like a PNG (magic bytes).
pub fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.starts_with(b"\x89PNG\r\n\x1a\n"))
}
