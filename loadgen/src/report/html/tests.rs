use super::*;
use crate::measure::histogram_log::HistogramLogWriter;
use crate::measure::{OperationKind, Outcome};
use crate::sweep::{run_sweep, Cell, CellOutcome, SweepSpec};
use std::time::{Duration, SystemTime};

/// A run directory as `kvbench run` leaves it, with an events file and `hlogs` interval
/// logs of `reads` READ samples each (as several client processes would leave).
fn plant_run(dir: &Path, hlogs: usize, reads: u64) {
    crate::sweep::tests::plant_run_dir(dir, 7000, 3);
    std::fs::write(
        dir.join("intervals.csv"),
        "start_s,end_s,warmup,op,count,errors,throughput_ops_per_second,mean_us,p50_us,p90_us,p99_us,p999_us,max_us\n\
         0.000,1.000,1,READ,100,0,100.0,1,1,1,1,1,1\n\
         0.000,1.000,1,UPDATE,100,0,100.0,1,1,1,1,1,1\n\
         1.000,2.000,0,READ,300,5,300.0,1,1,1,1,1,1\n\
         1.000,2.000,0,UPDATE,200,1,200.0,1,1,1,1,1,1\n\
         2.000,3.000,0,READ,400,0,400.0,1,1,1,1,1,1\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("events.csv"),
        "time_s,event,target,result\n1.500,kill,n2,ok\n2.500,restart,n2,ok\n",
    )
    .unwrap();
    for index in 0..hlogs {
        let mut set = HistogramSet::new();
        for micros in 0..reads {
            set.record(OperationKind::Read, Outcome::Ok, 100 + micros, None);
        }
        let mut out = Vec::new();
        let mut writer = HistogramLogWriter::new(&mut out, SystemTime::now()).unwrap();
        writer
            .write_interval(Duration::ZERO, Duration::from_secs(1), &set)
            .unwrap();
        writer.finish().unwrap();
        std::fs::write(dir.join(format!("client{index}.hlog")), out).unwrap();
    }
}

#[test]
fn a_run_directory_gives_plots_and_a_page_with_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run-a");
    plant_run(&run, 2, 300);
    let out = dir.path().join("report");
    let options = ReportOptions { merge_hlogs: true };
    let written = write_report_with(std::slice::from_ref(&run), &out, options).unwrap();
    let html = std::fs::read_to_string(&written.index).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.ends_with("</body></html>\n"));
    // The summary table's rows, the events, the merged logs.
    assert!(
        html.contains("<tr><td>run-a</td><td>READ</td><td>1000</td><td>2</td>"),
        "{html}"
    );
    assert!(html.contains("<td>1.500</td><td>kill n2</td>"), "{html}");
    assert!(
        html.contains("Merged latency of 2 histogram logs"),
        "{html}"
    );
    assert!(
        html.contains("<tr><td>READ</td><td>600</td>"),
        "merged counts sum: {html}"
    );
    // Every plot inline as SVG, and written as SVG and PNG.
    let names: Vec<String> = written
        .plots
        .iter()
        .map(|p| {
            p.svg_path
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for expected in [
        "latency-read",
        "latency-update",
        "throughput",
        "errors",
        "tradeoff-read",
        "visibility",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
        assert!(
            html.contains(&format!("<figure id=\"{expected}\"><svg")),
            "{expected}"
        );
    }
    for files in &written.plots {
        let svg = std::fs::read_to_string(&files.svg_path).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
        assert!(
            figures::is_png(&files.png_path),
            "{}",
            files.png_path.display()
        );
        assert!(std::fs::metadata(&files.png_path).unwrap().len() > 1000);
    }
    // The failure markers are drawn on the time charts.
    let throughput = std::fs::read_to_string(out.join("throughput.svg")).unwrap();
    assert!(throughput.contains("kill n2"), "event label on the chart");
}

#[test]
fn a_sweep_directory_reports_every_cell() {
    let dir = tempfile::tempdir().unwrap();
    let sweep_dir = dir.path().join("sweep");
    let spec = SweepSpec {
        consistency: vec!["ONE".into(), "QUORUM".into()],
        ..SweepSpec::default()
    };
    let mut runner = |cell: &Cell, cells: &Path| {
        let run_dir = cells.join(cell.dir_name());
        plant_run(&run_dir, 1, 10);
        // As the sweep writes it: the cell's cluster, from which the prediction is made.
        let options = crate::local::LocalClusterOptions {
            consistency: crate::sweep::grid::parse_consistency(
                cell.consistency.as_deref().unwrap(),
            )
            .unwrap(),
            ..Default::default()
        };
        std::fs::write(
            cells.join(format!("{}.cluster.toml", cell.dir_name())),
            toml::to_string(&options).unwrap(),
        )
        .unwrap();
        CellOutcome::Done(run_dir)
    };
    run_sweep(&sweep_dir, &spec, &mut runner, &mut |_| {}).unwrap();
    let written =
        write_report(std::slice::from_ref(&sweep_dir), &sweep_dir.join("report")).unwrap();
    let html = std::fs::read_to_string(&written.index).unwrap();
    assert!(html.contains("Sweep sweep"), "{html}");
    assert!(html.contains("<tr><td>ONE</td><td>READ</td>"), "{html}");
    assert!(html.contains("<tr><td>QUORUM</td><td>READ</td>"), "{html}");
    assert!(
        html.contains("QUORUM predicted"),
        "prediction beside measurement"
    );
    assert!(html.contains("RMSE measured vs predicted"), "{html}");
    let error = write_report(&[dir.path().to_path_buf()], &dir.path().join("r"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("neither a run directory"), "{error}");
}

#[test]
fn the_embedded_cluster_model_has_local_and_remote_replicas() {
    let options = crate::local::LocalClusterOptions::default();
    let model = figures::model_of(&options).unwrap();
    assert_eq!(
        (model.replicas, model.read_quorum, model.write_quorum),
        (3, 2, 2)
    );
    assert_eq!(model.delays.len(), 3);
    let total = crate::local::LocalClusterOptions {
        replication: cluster::ring::Replication::Total(3),
        ..Default::default()
    };
    assert!(figures::model_of(&total).is_none());
}
