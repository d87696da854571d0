//! YCSB compatibility: workload files, the core workload's configuration, its generators
//! and its key naming, so `kvbench` runs YCSB workload files unchanged and draws keys
//! exactly as YCSB does.
//!
//! - [`properties`]: Java-properties parsing (`-P file`, `-p name=value`).
//! - [`core`]: `CoreWorkload`'s properties, with YCSB's code defaults, validated.
//! - [`generator`]: uniform, zipfian, scrambled zipfian, skewed latest, hotspot, sequential,
//!   exponential, counters and the operation chooser.
//! - [`keys`]: `buildKeyName` and `fnvhash64`.
//! - [`record`]: field names and random field values.

pub mod core;
pub mod generator;
pub mod keys;
pub mod properties;
pub mod record;

pub use self::core::{
    workload_warnings, CoreWorkload, CoreWorkloadConfig, Operation, RequestDistribution,
};
pub use keys::{build_key_name, fnv_hash_64};
pub use properties::Properties;
