use super::grid::{parse_consistency, parse_replication};
use super::*;
use cluster::protocol::Consistency;
use cluster::ring::Replication;

/// A run directory as `kvbench run` leaves it, with the figures a sweep reads.
pub(crate) fn plant_run_dir(dir: &Path, read_p99_us: u64, stale: u64) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("summary.csv"),
        format!(
            "op,count,errors,throughput_ops_per_second,mean_us,p50_us,p90_us,p99_us,p999_us,max_us,status\n\
             READ,1000,2,500.0,900.0,800,1500,{read_p99_us},9000,9500,complete\n\
             UPDATE,1000,0,500.0,1900.0,1800,2500,3000,9000,9500,complete\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("staleness.csv"),
        format!(
            "row,t_ms_from,t_ms_to,mean_t_ms,reads,seen,fresh_fraction,k,stale_reads\n\
             visibility,0,1,0.5,100,90,0.900000,,\n\
             visibility,1,2,1.5,100,100,1.000000,,\n\
             k,,,,,,,1,{stale}\n\
             total,,,,1000,,0.99,,{stale}\n"
        ),
    )
    .unwrap();
}

fn spec() -> SweepSpec {
    SweepSpec {
        consistency: vec!["ONE".into(), "QUORUM".into(), "ALL".into()],
        conflict: vec!["siblings".into(), "lww".into()],
        ..SweepSpec::default()
    }
}

#[test]
fn grid_multiplies_axes_and_names_cells_stably() {
    let cells = spec().cells().unwrap();
    assert_eq!(cells.len(), 6);
    assert_eq!(cells[1].key(), "consistency=ONE;conflict=lww");
    assert_eq!(cells[1].label(), "ONE lww");
    assert_eq!(cells[1].dir_name(), spec().cells().unwrap()[1].dir_name());
    assert_ne!(cells[0].dir_name(), cells[1].dir_name());
    assert_eq!(SweepSpec::default().cells().unwrap()[0].key(), "base");
}

#[test]
fn axis_values_are_parsed_and_bad_ones_named() {
    assert_eq!(
        parse_consistency("r1w3").unwrap(),
        Consistency::Counts {
            read: Some(1),
            write: Some(3)
        }
    );
    assert_eq!(parse_consistency("quorum").unwrap(), Consistency::Quorum);
    assert_eq!(parse_replication("3").unwrap(), Replication::Total(3));
    assert_eq!(
        parse_replication("dc1=2/dc2=1").unwrap().total(),
        3,
        "per datacenter"
    );
    let bad = SweepSpec {
        consistency: vec!["MOST".into()],
        ..SweepSpec::default()
    };
    let error = bad.cells().unwrap_err().to_string();
    assert!(
        error.contains("consistency") && error.contains("MOST"),
        "{error}"
    );
    let bad = SweepSpec {
        target: vec![-5.0],
        ..SweepSpec::default()
    };
    assert!(bad.cells().unwrap_err().to_string().contains("target"));
    let bad = SweepSpec {
        inter_dc_delay: vec!["soon".into()],
        ..SweepSpec::default()
    };
    assert!(bad
        .cells()
        .unwrap_err()
        .to_string()
        .contains("inter_dc_delay"));
    let parsed: SweepSpec = toml::from_str("consistency = [\"ONE\"]\ntarget = [0, 100]").unwrap();
    assert_eq!(parsed.cells().unwrap().len(), 2);
    assert!(toml::from_str::<SweepSpec>("consistencies = [\"ONE\"]").is_err());
}

#[test]
fn an_interrupted_sweep_resumes_and_skips_finished_cells() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec();
    let mut ran = Vec::new();
    // First attempt: the third cell is interrupted.
    let mut runner = |cell: &Cell, cells_dir: &Path| {
        ran.push(cell.index);
        if cell.index == 2 {
            return CellOutcome::Interrupted;
        }
        let run_dir = cells_dir.join(cell.dir_name());
        plant_run_dir(&run_dir, 5000 + cell.index as u64, cell.index as u64);
        CellOutcome::Done(run_dir)
    };
    let first = run_sweep(dir.path(), &spec, &mut runner, &mut |_| {}).unwrap();
    assert!(first.interrupted);
    assert_eq!((first.completed, first.rows.len()), (2, 2));
    assert_eq!(ran, vec![0, 1, 2]);

    // Second attempt: cells 0 and 1 are skipped; cell 3 fails, the rest run.
    let mut ran = Vec::new();
    let mut starts = Vec::new();
    let mut runner = |cell: &Cell, cells_dir: &Path| {
        ran.push(cell.index);
        if cell.index == 3 {
            return CellOutcome::Failed("planted".into());
        }
        let run_dir = cells_dir.join(cell.dir_name());
        plant_run_dir(&run_dir, 5000, 1);
        CellOutcome::Done(run_dir)
    };
    let mut progress = |event: Progress<'_>| {
        if let Progress::Start { total, skipped } = event {
            starts.push((total, skipped));
        }
    };
    let second = run_sweep(dir.path(), &spec, &mut runner, &mut progress).unwrap();
    assert_eq!(ran, vec![2, 3, 4, 5]);
    assert_eq!(starts, vec![(6, 2)]);
    assert_eq!((second.skipped, second.completed, second.failed), (2, 3, 1));
    let rows = results::read_rows(&dir.path().join(SWEEP_CSV_NAME)).unwrap();
    assert_eq!(rows.len(), 6);
    let first_row = rows.iter().find(|r| r["index"] == "1").unwrap();
    assert_eq!(first_row["read_p99_ms"], "5.001", "the earlier row is kept");
    assert_eq!(first_row["consistency"], "ONE");
    assert_eq!(first_row["conflict"], "lww");
    assert_eq!(first_row["stale_reads"], "1");
    assert_eq!(first_row["k_mean"], "1.000");
    assert_eq!(first_row["t_visibility_99_ms"], "1");
    assert_eq!(first_row["throughput_ops_per_second"], "1000.0");
    assert!(rows.iter().find(|r| r["index"] == "3").unwrap()["status"].contains("planted"));

    // Third attempt: only the failed cell runs again.
    let mut ran = Vec::new();
    let mut runner = |cell: &Cell, cells_dir: &Path| {
        ran.push(cell.index);
        let run_dir = cells_dir.join(cell.dir_name());
        plant_run_dir(&run_dir, 5000, 0);
        CellOutcome::Done(run_dir)
    };
    let third = run_sweep(dir.path(), &spec, &mut runner, &mut |_| {}).unwrap();
    assert_eq!(ran, vec![3]);
    assert_eq!(third.rows.len(), 6);
    assert!(third.rows.iter().all(|r| r["status"] == "complete"));
}

#[test]
fn a_different_grid_in_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut runner = |_: &Cell, _: &Path| CellOutcome::Failed("none".into());
    run_sweep(dir.path(), &spec(), &mut runner, &mut |_| {}).unwrap();
    let other = SweepSpec {
        consistency: vec!["ONE".into()],
        ..SweepSpec::default()
    };
    let error = run_sweep(dir.path(), &other, &mut runner, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(error.contains("another sweep"), "{error}");
}
