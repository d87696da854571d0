//! `metadata.json`: what produced a result, written beside it.
//!
//! ```json
//! {
//!   "format_version": 1,
//!   "run_name": "a-1k",
//!   "kvbench_version": "0.1.0",
//!   "git_commit": "cc56dc6…" | null,
//!   "host_name": "bench-1",
//!   "cpu_count": 2,
//!   "start_time_unix_ms": 1763789168123,
//!   "start_time_utc": "2025-11-22T05:26:08.123Z",
//!   "config": { "key": "value", ... }
//! }
//! ```

use crate::measure::utc_timestamp;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// Version of the `metadata.json` layout; bumped when a field changes meaning.
pub const METADATA_FORMAT_VERSION: u32 = 1;

/// Longest host name kept: the kernel's limit is 64 bytes, anything longer is not one.
const HOST_NAME_BYTES_MAX: usize = 255;

/// Where and how a run was made.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetadata {
    pub run_name: String,
    pub kvbench_version: String,
    /// `git rev-parse HEAD` of the source tree, when kvbench runs inside one with git.
    pub git_commit: Option<String>,
    pub host_name: String,
    pub cpu_count: usize,
    pub start_time: SystemTime,
    /// The run's full configuration, as key/value pairs in the order given.
    pub config: Vec<(String, String)>,
}

impl RunMetadata {
    /// Metadata of a run starting at `start_time`; the git commit is that of the tree
    /// `source_directory` is in, if any.
    pub fn collect(
        run_name: &str,
        config: Vec<(String, String)>,
        start_time: SystemTime,
        source_directory: &Path,
    ) -> RunMetadata {
        RunMetadata {
            run_name: run_name.to_string(),
            kvbench_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: git_commit(source_directory),
            host_name: host_name(),
            cpu_count: std::thread::available_parallelism().map_or(1, |count| count.get()),
            start_time,
            config,
        }
    }

    /// The JSON document, pretty-printed.
    pub fn to_json(&self) -> String {
        let config: Map<String, Value> = self
            .config
            .iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect();
        let start_time_unix_ms = self
            .start_time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let document = json!({
            "format_version": METADATA_FORMAT_VERSION,
            "run_name": self.run_name,
            "kvbench_version": self.kvbench_version,
            "git_commit": self.git_commit,
            "host_name": self.host_name,
            "cpu_count": self.cpu_count,
            "start_time_unix_ms": start_time_unix_ms,
            "start_time_utc": utc_timestamp(self.start_time),
            "config": config,
        });
        let mut text = serde_json::to_string_pretty(&document).expect("a JSON value serializes");
        text.push('\n');
        text
    }
}

/// The commit checked out where `directory` is, or `None` without git or outside a tree.
fn git_commit(directory: &Path) -> Option<String> {
    let output = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(directory)
        .output()
        .ok()?;
    let commit = String::from_utf8(output.stdout).ok()?.trim().to_string();
    let looks_like_a_commit =
        !commit.is_empty() && commit.len() <= 64 && commit.bytes().all(|b| b.is_ascii_hexdigit());
    (output.status.success() && looks_like_a_commit).then_some(commit)
}

/// The kernel's host name, or `unknown`: metadata must never stop a run.
fn host_name() -> String {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    let name = from_kernel
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty() && name.len() <= HOST_NAME_BYTES_MAX);
    name.unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn json_has_every_field() {
        let metadata = RunMetadata {
            run_name: "a-1k".to_string(),
            kvbench_version: "0.1.0".to_string(),
            git_commit: None,
            host_name: "bench-1".to_string(),
            cpu_count: 2,
            start_time: UNIX_EPOCH + Duration::from_millis(1_441_812_279_474),
            config: vec![
                ("workload".to_string(), "a".to_string()),
                ("quote".to_string(), "say \"hi\"".to_string()),
            ],
        };
        let golden = r#"{
  "config": {
    "quote": "say \"hi\"",
    "workload": "a"
  },
  "cpu_count": 2,
  "format_version": 1,
  "git_commit": null,
  "host_name": "bench-1",
  "kvbench_version": "0.1.0",
  "run_name": "a-1k",
  "start_time_unix_ms": 1441812279474,
  "start_time_utc": "2015-09-09T15:24:39.474Z"
}
"#;
        assert_eq!(metadata.to_json(), golden);
    }

    #[test]
    fn outside_a_git_tree_the_commit_is_absent() {
        let directory = tempfile::tempdir().unwrap();
        let metadata = RunMetadata::collect("run", Vec::new(), SystemTime::now(), directory.path());
        assert_eq!(metadata.git_commit, None);
        assert!(!metadata.host_name.is_empty());
        assert!(metadata.cpu_count >= 1);
    }
}
