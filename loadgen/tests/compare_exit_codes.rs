//! `kvbench compare` as CI runs it: exit 0 within tolerance, 1 on a regression, 2 on
//! unusable input.

use std::path::Path;
use std::process::Command;

const HEADER: &str =
    "op,count,errors,throughput_ops_per_second,mean_us,p50_us,p90_us,p99_us,p999_us,max_us,workload";

fn write(dir: &Path, name: &str, rows: &[&str]) -> String {
    let path = dir.join(name);
    let mut text = format!("{HEADER}\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn kvbench(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kvbench"))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn exit_codes_tell_pass_regression_and_bad_input_apart() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = write(
        dir.path(),
        "baseline.csv",
        &["READ,1000,0,500.000,200.000,180,300,900,2000,5000,a"],
    );
    let slower = write(
        dir.path(),
        "slower.csv",
        &["READ,1000,0,500.000,200.000,180,300,1900,2000,5000,a"],
    );
    let broken = write(
        dir.path(),
        "broken.csv",
        &["READ,1000,0,fast,200,180,300,900,2000,5000,a"],
    );

    let (code, text) = kvbench(&["compare", &baseline, &baseline]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("no regression"), "{text}");

    let (code, text) = kvbench(&["compare", &baseline, &slower]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("REGRESSION") && text.contains("1 regression"),
        "{text}"
    );

    let (code, text) = kvbench(&["compare", "--tolerance", "p99=200%", &baseline, &slower]);
    assert_eq!(code, 0, "{text}");

    let (code, text) = kvbench(&["compare", &baseline, &broken]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("'fast' is not a non-negative number"),
        "{text}"
    );

    let (code, _) = kvbench(&["compare", &baseline]);
    assert_eq!(code, 2);
}
