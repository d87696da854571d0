//! The grid of a sweep: its axes ([`SweepSpec`], from flags and/or a TOML file) and the cells
//! they multiply out to ([`Cell`]).
//!
//! ```toml
//! consistency = ["ONE", "QUORUM", "ALL", "R1W3"]   # levels, or R<r>W<w> counts
//! replication = ["3", "dc1=2/dc2=1"]              # N in total, or per datacenter
//! conflict = ["siblings", "lww"]
//! workload = ["workloads/workloada", "workloads/workloadb"]
//! target = [0, 2000]                               # ops/s; 0 = closed loop
//! inter_dc_delay = ["30+preset:linkedin-ssd", "75"]
//! schedule = []                                    # failure schedule files (see cli/sweep.rs)
//! repeat = 1
//! args = ["-p", "recordcount=5000", "-p", "maxexecutiontime=20"]   # every cell's `kvbench run` flags
//! ```
//!
//! An empty axis is not swept (the base configuration holds). Every value is checked before
//! the first cell runs, and a bad one names its axis.

use crate::{Error, Result};
use cluster::net::DelayDistribution;
use cluster::protocol::Consistency;
use cluster::ring::Replication;
use cluster::version::ConflictPolicy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Most cells one sweep may have: a typo such as `--target 1,2,...` pasted from a range
/// should not start a week-long run.
pub const CELLS_MAX: usize = 10_000;

/// The axes of a sweep, as a TOML sweep file spells them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SweepSpec {
    pub consistency: Vec<String>,
    pub replication: Vec<String>,
    pub conflict: Vec<String>,
    pub workload: Vec<String>,
    pub target: Vec<f64>,
    pub inter_dc_delay: Vec<String>,
    pub schedule: Vec<String>,
    /// Runs of each cell (0 and 1 both mean once).
    pub repeat: u32,
    /// `kvbench run` flags every cell starts from.
    pub args: Vec<String>,
}

/// The column names of a cell's parameters, in grid order (the sweep CSV's).
pub const AXES: [&str; 8] = [
    "consistency",
    "replication",
    "conflict",
    "workload",
    "target",
    "inter_dc_delay",
    "schedule",
    "repeat",
];

/// One point of the grid: a value for each swept axis, `None` for the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Position in the grid (0-based).
    pub index: usize,
    pub consistency: Option<String>,
    pub replication: Option<String>,
    pub conflict: Option<String>,
    pub workload: Option<String>,
    pub target: Option<f64>,
    pub inter_dc_delay: Option<String>,
    pub schedule: Option<String>,
    /// 1-based run number when the spec repeats cells, else `None`.
    pub repeat: Option<u32>,
}

impl Cell {
    /// `(axis, value)` for every axis of [`AXES`], empty when not swept.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let values = [
            text(&self.consistency),
            text(&self.replication),
            text(&self.conflict),
            text(&self.workload),
            self.target.map(|t| t.to_string()).unwrap_or_default(),
            text(&self.inter_dc_delay),
            text(&self.schedule),
            self.repeat.map(|r| r.to_string()).unwrap_or_default(),
        ];
        AXES.into_iter().zip(values).collect()
    }

    /// What identifies the cell across runs of the sweep: its swept parameters.
    pub fn key(&self) -> String {
        let parts: Vec<String> = self
            .params()
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(axis, value)| format!("{axis}={value}"))
            .collect();
        if parts.is_empty() {
            "base".to_string()
        } else {
            parts.join(";")
        }
    }

    /// A short human label: the swept values, space separated.
    pub fn label(&self) -> String {
        let parts: Vec<String> = self
            .params()
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(axis, value)| match axis {
                "workload" => Path::new(&value)
                    .file_name()
                    .map_or(value.clone(), |name| name.to_string_lossy().into_owned()),
                "target" => format!("{value} ops/s"),
                "inter_dc_delay" => format!("delay {value}"),
                "repeat" => format!("#{value}"),
                _ => value,
            })
            .collect();
        if parts.is_empty() {
            "base".to_string()
        } else {
            parts.join(" ")
        }
    }

    /// The cell's directory and run name: `cell-` and a hash of [`Cell::key`], stable
    /// across runs and whatever the grid's order.
    pub fn dir_name(&self) -> String {
        // FNV-1a, 64 bits: stable across Rust versions, unlike DefaultHasher.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.key().bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("cell-{hash:016x}")
    }
}

fn invalid(axis: &str, value: &str, detail: impl Into<String>) -> Error {
    Error::InvalidOption {
        field: format!("sweep axis {axis}"),
        detail: format!("{value:?}: {}", detail.into()),
    }
}

/// `ONE`, `QUORUM`, `ALL`, `LOCAL_QUORUM`, `EACH_QUORUM` (any case) or `R<r>W<w>` (`R1W3`).
pub fn parse_consistency(text: &str) -> Result<Consistency> {
    let trimmed = text.trim();
    if let Some(level) = Consistency::from_level_name(trimmed.as_bytes()) {
        return Ok(level);
    }
    let upper = trimmed.to_ascii_uppercase();
    let counts = upper.strip_prefix('R').and_then(|rest| {
        let (read, write) = rest.split_once('W')?;
        Some((read.parse::<u32>().ok()?, write.parse::<u32>().ok()?))
    });
    match counts {
        Some((read, write)) if read > 0 && write > 0 => Ok(Consistency::Counts {
            read: Some(read),
            write: Some(write),
        }),
        _ => Err(invalid(
            "consistency",
            text,
            "expected ONE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM or R<r>W<w> such as R1W3",
        )),
    }
}

/// `3` (in total) or `dc1=2/dc2=1` (per datacenter).
pub fn parse_replication(text: &str) -> Result<Replication> {
    let text = text.trim();
    if let Ok(total) = text.parse::<usize>() {
        return Ok(Replication::Total(total));
    }
    let mut counts = BTreeMap::new();
    for part in text.split('/') {
        let parsed = part
            .split_once('=')
            .and_then(|(dc, n)| Some((dc.trim().to_string(), n.trim().parse::<usize>().ok()?)));
        match parsed {
            Some((dc, n)) if !dc.is_empty() => {
                counts.insert(dc, n);
            }
            _ => {
                return Err(invalid(
                    "replication",
                    text,
                    "expected a replica count (3) or per-datacenter counts (dc1=2/dc2=1)",
                ))
            }
        }
    }
    Ok(Replication::PerDatacenter(counts))
}

/// `siblings` or `lww`.
pub fn parse_conflict(text: &str) -> Result<ConflictPolicy> {
    match text.trim().to_ascii_lowercase().as_str() {
        "siblings" => Ok(ConflictPolicy::Siblings),
        "lww" => Ok(ConflictPolicy::LastWriteWins),
        _ => Err(invalid("conflict", text, "expected siblings or lww")),
    }
}

impl SweepSpec {
    /// Reads a TOML sweep file.
    pub fn from_file(path: &Path) -> Result<SweepSpec> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("reading sweep file {}", path.display()),
            source,
        })?;
        toml::from_str(&text).map_err(|error| Error::InvalidFlag {
            flag: "file",
            detail: format!("{}: {}", path.display(), error.message()),
        })
    }

    /// Whether an axis that changes the embedded cluster is swept (refused with --hosts).
    pub fn sweeps_cluster(&self) -> bool {
        !(self.consistency.is_empty()
            && self.replication.is_empty()
            && self.conflict.is_empty()
            && self.inter_dc_delay.is_empty())
    }

    /// Checks every value, naming the axis of a bad one.
    pub fn validate(&self) -> Result<()> {
        self.consistency
            .iter()
            .try_for_each(|v| parse_consistency(v).map(drop))?;
        self.replication
            .iter()
            .try_for_each(|v| parse_replication(v).map(drop))?;
        self.conflict
            .iter()
            .try_for_each(|v| parse_conflict(v).map(drop))?;
        for value in &self.inter_dc_delay {
            value
                .parse::<DelayDistribution>()
                .map_err(|error| invalid("inter_dc_delay", value, error.to_string()))?;
        }
        for target in &self.target {
            if !(target.is_finite() && *target >= 0.0) {
                return Err(invalid("target", &target.to_string(), "must be >= 0 ops/s"));
            }
        }
        for (axis, files) in [("workload", &self.workload), ("schedule", &self.schedule)] {
            if let Some(missing) = files.iter().find(|file| !Path::new(file).is_file()) {
                return Err(invalid(axis, missing, "no such file"));
            }
        }
        Ok(())
    }

    /// Every cell, the first axis varying slowest; checked first.
    pub fn cells(&self) -> Result<Vec<Cell>> {
        self.validate()?;
        fn axis<T: Clone>(values: &[T]) -> Vec<Option<T>> {
            if values.is_empty() {
                vec![None]
            } else {
                values.iter().cloned().map(Some).collect()
            }
        }
        let repeats: Vec<Option<u32>> = if self.repeat > 1 {
            (1..=self.repeat).map(Some).collect()
        } else {
            vec![None]
        };
        let sizes = [
            self.consistency.len(),
            self.replication.len(),
            self.conflict.len(),
            self.workload.len(),
            self.target.len(),
            self.inter_dc_delay.len(),
            self.schedule.len(),
            repeats.len(),
        ];
        let total = sizes
            .iter()
            .try_fold(1usize, |acc, n| acc.checked_mul((*n).max(1)));
        match total {
            Some(total) if total <= CELLS_MAX => {}
            _ => {
                return Err(Error::InvalidOption {
                    field: "sweep".to_string(),
                    detail: format!("the grid has more than {CELLS_MAX} cells"),
                })
            }
        }
        let mut cells = Vec::new();
        for consistency in axis(&self.consistency) {
            for replication in axis(&self.replication) {
                for conflict in axis(&self.conflict) {
                    for workload in axis(&self.workload) {
                        for target in axis(&self.target) {
                            for inter_dc_delay in axis(&self.inter_dc_delay) {
                                for schedule in axis(&self.schedule) {
                                    for repeat in &repeats {
                                        cells.push(Cell {
                                            index: cells.len(),
                                            consistency: consistency.clone(),
                                            replication: replication.clone(),
                                            conflict: conflict.clone(),
                                            workload: workload.clone(),
                                            target,
                                            inter_dc_delay: inter_dc_delay.clone(),
                                            schedule: schedule.clone(),
                                            repeat: *repeat,
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(cells)
    }
}
