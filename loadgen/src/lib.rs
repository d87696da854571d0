//! `loadgen`: the library behind `kvbench`.
//!
//! - [`engine_bench`]: `kvbench engine`, a db_bench-compatible benchmark of the storage
//!   engine, comparable line for line with RocksDB's `db_bench`
//!   (see `scripts/engine-vs-rocksdb.sh`).
//! - [`measure`]: latency recording (per-thread HDR histograms, merged each interval,
//!   warm-up excluded, intended latency for open loop) and `.hlog` interval logs.
//! - [`report`]: what a run leaves behind: YCSB's text summary, a table, CSV files,
//!   `metadata.json`, and the per-second status line.
//! - [`workload`]: YCSB workload files read unchanged, with YCSB's defaults, generators
//!   and key naming.
//! - [`cli`]: the command-line surface `main.rs` parses, one subcommand per workflow.

pub mod cli;
pub mod compare;
pub mod engine_bench;
pub mod error;
pub mod measure;
pub mod predict;
pub mod report;
pub mod workload;

pub use error::{Error, Result};
