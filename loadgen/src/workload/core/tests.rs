//! The YCSB core workload files, parsed and run through the generators.

use std::path::PathBuf;

use rand::{rngs::StdRng, SeedableRng};

use super::*;
use crate::workload::properties::Properties;

fn workload_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../workloads")
        .join(name)
}

fn config_of(name: &str, overrides: &[&str]) -> CoreWorkloadConfig {
    let properties =
        Properties::from_command_line(&[workload_file(name).as_path()], overrides).unwrap();
    assert!(
        properties.unknown(KNOWN_PROPERTY_NAMES).is_empty(),
        "{name}: {:?}",
        properties.unknown(KNOWN_PROPERTY_NAMES)
    );
    CoreWorkloadConfig::from_properties(&properties).unwrap()
}

fn config_from_text(text: &str) -> Result<CoreWorkloadConfig> {
    CoreWorkloadConfig::from_properties(&Properties::parse(text))
}

fn proportions(config: &CoreWorkloadConfig) -> [f64; 5] {
    let p = config.proportions;
    [p.read, p.update, p.insert, p.scan, p.read_modify_write]
}

#[test]
fn core_workload_files_yield_their_documented_mixes() {
    let a = config_of("workloada", &[]);
    assert_eq!(proportions(&a), [0.5, 0.5, 0.0, 0.0, 0.0]);
    assert_eq!(a.request_distribution, RequestDistribution::Zipfian);
    assert_eq!((a.record_count, a.operation_count), (1000, 1000));

    let b = config_of("workloadb", &[]);
    assert_eq!(proportions(&b), [0.95, 0.05, 0.0, 0.0, 0.0]);
    assert_eq!(b.request_distribution, RequestDistribution::Zipfian);

    let c = config_of("workloadc", &[]);
    assert_eq!(proportions(&c), [1.0, 0.0, 0.0, 0.0, 0.0]);

    let d = config_of("workloadd", &[]);
    assert_eq!(proportions(&d), [0.95, 0.0, 0.05, 0.0, 0.0]);
    assert_eq!(d.request_distribution, RequestDistribution::Latest);

    let e = config_of("workloade", &[]);
    assert_eq!(proportions(&e), [0.0, 0.0, 0.05, 0.95, 0.0]);
    assert_eq!(e.max_scan_length, 100);
    assert_eq!(e.scan_length_distribution, ScanLengthDistribution::Uniform);

    let f = config_of("workloadf", &[]);
    assert_eq!(proportions(&f), [0.5, 0.0, 0.0, 0.0, 0.5]);
    assert_eq!(f.request_distribution, RequestDistribution::Zipfian);

    for config in [&a, &b, &c, &d, &e, &f] {
        assert!(config.read_all_fields);
        assert_eq!(config.workload_class, "site.ycsb.workloads.CoreWorkload");
        // Absent from the files: YCSB's code defaults.
        assert_eq!(config.measurement_type, "hdrhistogram");
        assert_eq!((config.field_count, config.field_length_bytes), (10, 100));
        assert_eq!(config.insert_order, InsertOrder::Hashed);
    }
}

#[test]
fn template_parses_with_its_own_values() {
    let template = config_of("workload_template", &[]);
    assert_eq!(template.record_count, 1_000_000);
    assert_eq!(template.operation_count, 3_000_000);
    assert_eq!(template.request_distribution, RequestDistribution::Zipfian);
    assert_eq!(template.measurement_type, "histogram");
    assert_eq!(template.histogram_buckets, 1000);
    assert_eq!(template.table, "usertable");
}

#[test]
fn code_defaults_apply_when_absent() {
    let config = config_from_text("").unwrap();
    assert_eq!(config.request_distribution, RequestDistribution::Uniform);
    assert_eq!(config.measurement_type, "hdrhistogram");
    assert_eq!(proportions(&config), [0.95, 0.05, 0.0, 0.0, 0.0]);
    assert_eq!(
        config.record_count,
        i32::MAX as u64,
        "recordcount 0 means Integer.MAX_VALUE"
    );
    assert_eq!(config.insert_count, config.record_count);
    assert_eq!(config.zero_padding, 1);
    assert_eq!((config.min_scan_length, config.max_scan_length), (1, 1000));
    assert_eq!(
        config.field_length_distribution,
        FieldLengthDistribution::Constant
    );
    assert_eq!(
        (
            config.hotspot_data_fraction,
            config.hotspot_operation_fraction
        ),
        (0.2, 0.8)
    );
    assert_eq!(config.exponential_percentile, 95.0);
    assert_eq!(config.exponential_fraction, 0.8571428571);
    assert_eq!(
        (
            config.field_name_prefix.as_str(),
            config.key_prefix.as_str()
        ),
        ("field", "user")
    );
    assert!(config.read_all_fields && !config.write_all_fields);
    assert_eq!(
        (config.thread_count, config.target_operations_per_second),
        (1, 0.0)
    );
}

#[test]
fn command_line_overrides_win() {
    let config = config_of(
        "workloada",
        &[
            "requestdistribution=hotspot",
            "recordcount=5000",
            "readproportion=0.9",
            "updateproportion=0.1",
        ],
    );
    assert_eq!(config.request_distribution, RequestDistribution::Hotspot);
    assert_eq!(config.record_count, 5000);
    assert_eq!(config.insert_count, 5000);
    assert_eq!(proportions(&config), [0.9, 0.1, 0.0, 0.0, 0.0]);
}

fn error_of(text: &str) -> String {
    config_from_text(text).unwrap_err().to_string()
}

#[test]
fn bad_values_are_errors_naming_the_property() {
    let message = error_of("requestdistribution=zipf\n");
    assert!(
        message.contains("requestdistribution") && message.contains("zipf"),
        "{message}"
    );
    let message = error_of("readproportion=0\nupdateproportion=0\n");
    assert!(
        message.contains("readproportion") && message.contains("sum to 0"),
        "{message}"
    );
    let message = error_of("recordcount=1e6\n");
    assert!(
        message.contains("recordcount") && message.contains("1e6"),
        "{message}"
    );
    let message = error_of("operationcount=lots\n");
    assert!(message.contains("operationcount"), "{message}");
    let message = error_of("readproportion=-0.5\n");
    assert!(message.contains("readproportion"), "{message}");
    let message = error_of("fieldlengthdistribution=histogram\n");
    assert!(
        message.contains("fieldlengthdistribution") && message.contains("not supported"),
        "{message}"
    );
    let message = error_of("scanlengthdistribution=latest\n");
    assert!(message.contains("scanlengthdistribution"), "{message}");
    let message = error_of("readallfields=yes\n");
    assert!(message.contains("readallfields"), "{message}");
    let message = error_of("insertorder=hased\n");
    assert!(
        message.contains("insertorder") && message.contains("hased"),
        "{message}"
    );
    let message = error_of("hotspotdatafraction=20\n");
    assert!(message.contains("hotspotdatafraction"), "{message}");
    let message = error_of("recordcount=100\ninsertstart=50\ninsertcount=60\n");
    assert!(
        message.contains("insertcount") && message.contains("recordcount"),
        "{message}"
    );
}

#[test]
fn proportions_are_normalised_as_ycsb_does() {
    // Weights 1 and 3 (sum 4, not 1) run as 25% reads, like YCSB's DiscreteGenerator.
    let config =
        config_from_text("readproportion=1\nupdateproportion=3\nrecordcount=10\n").unwrap();
    let workload = CoreWorkload::new(config);
    let mut rng = StdRng::seed_from_u64(12);
    let reads = (0..20_000)
        .filter(|_| workload.next_operation(&mut rng) == Operation::Read)
        .count();
    assert!((reads as f64 / 20_000.0 - 0.25).abs() < 0.015, "{reads}");
}

#[test]
fn workload_a_keys_stay_in_range_and_mix_holds() {
    let mut workload = CoreWorkload::new(config_of("workloada", &[]));
    let mut rng = StdRng::seed_from_u64(13);
    let mut reads = 0;
    for _ in 0..10_000 {
        if workload.next_operation(&mut rng) == Operation::Read {
            reads += 1;
        }
        let key_number = workload.next_transaction_key_number(&mut rng).unwrap();
        assert!((0..1000).contains(&key_number), "{key_number}");
    }
    assert!((reads as f64 / 10_000.0 - 0.5).abs() < 0.03, "{reads}");
    assert_eq!(workload.key_name(0), "user6284781860667377211");
}

#[test]
fn workload_d_reads_the_latest_inserts() {
    let mut workload = CoreWorkload::new(config_of("workloadd", &[]));
    let mut rng = StdRng::seed_from_u64(14);
    let inserted = workload.next_insert_key_number();
    assert_eq!(
        inserted, 1000,
        "transaction inserts continue after recordcount"
    );
    workload.acknowledge_insert(inserted).unwrap();
    let mut newest_hits = 0;
    for _ in 0..2000 {
        let key_number = workload.next_transaction_key_number(&mut rng).unwrap();
        assert!(key_number <= 1000, "{key_number}");
        if key_number == 1000 {
            newest_hits += 1;
        }
    }
    assert!(newest_hits > 200, "{newest_hits}");
}

#[test]
fn workload_e_scans_between_one_and_one_hundred() {
    let mut workload = CoreWorkload::new(config_of("workloade", &[]));
    let mut rng = StdRng::seed_from_u64(15);
    let lengths: Vec<u64> = (0..5000)
        .map(|_| workload.next_scan_length(&mut rng))
        .collect();
    assert!(lengths.iter().all(|length| (1..=100).contains(length)));
    assert!(lengths.contains(&1) && lengths.contains(&100));
    // Expected new keys: (int) (1000 * 0.05 * 2) = 100, so the scrambled space ends at 1100.
    assert_eq!(workload.config().zipfian_key_space_maximum(), 1100);
}

#[test]
fn sequential_and_exponential_key_choosers() {
    let config = config_from_text("recordcount=3\nrequestdistribution=sequential\n").unwrap();
    let mut workload = CoreWorkload::new(config);
    let mut other_thread = workload.for_another_thread();
    let mut rng = StdRng::seed_from_u64(16);
    let mut keys = Vec::new();
    for _ in 0..2 {
        keys.push(workload.next_transaction_key_number(&mut rng).unwrap());
        keys.push(other_thread.next_transaction_key_number(&mut rng).unwrap());
    }
    assert_eq!(keys, vec![0, 1, 2, 0], "threads share one sequence");

    let config = config_from_text("recordcount=1000\nrequestdistribution=exponential\n").unwrap();
    let mut workload = CoreWorkload::new(config);
    let draws: Vec<i64> = (0..5000)
        .map(|_| workload.next_transaction_key_number(&mut rng).unwrap())
        .collect();
    assert!(draws.iter().all(|key| (0..1000).contains(key)));
    let recent = draws.iter().filter(|&&key| key >= 500).count();
    assert!(recent > 3000, "exponential favours recent keys: {recent}");
}

#[test]
fn load_keys_count_from_insert_start_and_values_fill_fields() {
    let config = config_from_text("recordcount=100\ninsertstart=10\ninsertorder=ordered\nzeropadding=4\nfieldcount=3\nfieldlength=7\n").unwrap();
    let mut workload = CoreWorkload::new(config);
    let first = workload.next_load_key_number();
    assert_eq!(first, 10);
    assert_eq!(workload.key_name(first), "user0010");
    let mut rng = StdRng::seed_from_u64(17);
    let values = workload.build_values(&mut rng);
    let names: Vec<&str> = values.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, vec!["field0", "field1", "field2"]);
    assert!(values.iter().all(|(_, value)| value.len() == 7));
    let (name, value) = workload.build_single_value(&mut rng);
    assert!(workload.field_names().contains(&name) && value.len() == 7);
}

#[test]
fn seeded_runs_are_deterministic() {
    let draw = |seed| {
        let mut workload = CoreWorkload::new(config_of("workloada", &[]));
        let mut rng = StdRng::seed_from_u64(seed);
        (0..100)
            .map(|_| workload.next_transaction_key_number(&mut rng).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
}

#[test]
fn warnings_for_typos_and_unnormalised_proportions() {
    let properties = Properties::parse(
        "readproportoin=0.5\nreadproportion=0.5\nupdateproportion=0\nredis.host=h\n",
    );
    let config = CoreWorkloadConfig::from_properties(&properties).unwrap();
    let warnings = workload_warnings(&properties, &config);
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(warnings[0].contains("readproportoin") && warnings[1].contains("redis.host"));
    assert!(warnings[2].contains("sum to 0.5"), "{warnings:?}");
    for name in [
        "workloada",
        "workloadb",
        "workloadc",
        "workloadd",
        "workloade",
        "workloadf",
        "workload_template",
    ] {
        let properties =
            Properties::from_command_line(&[workload_file(name).as_path()], &[]).unwrap();
        let config = CoreWorkloadConfig::from_properties(&properties).unwrap();
        assert!(workload_warnings(&properties, &config).is_empty(), "{name}");
    }
}

#[test]
fn default_config_is_ycsbs_code_defaults() {
    let config = CoreWorkloadConfig::default();
    assert_eq!(config, config_from_text("").unwrap());
    assert_eq!(config.request_distribution, RequestDistribution::Uniform);
}
