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
//! - [`local`]: an emulated multi-datacenter cluster of nodes started inside this process.
//! - [`routing`]: which node each request goes to (round-robin, same datacenter,
//!   token-aware from the cluster's topology).
//! - [`client`]: a pipelined RESP2 client; YCSB operations as GET/SET/KV.SCAN.
//! - [`driver`]: YCSB load and run phases over threads x connections, closed or open loop.
//! - [`predict`]: `kvbench predict`, the PBS WARS model's t-visibility and latencies.
//! - [`probe`]: `kvbench probe`, write-then-read-back staleness probes, P(fresh | t).
//! - [`compare`]: `kvbench compare`, the CI regression check between two `summary.csv`.
//! - [`cli`]: the command-line surface `main.rs` parses, one subcommand per workflow.

pub mod cli;
pub mod client;
pub mod compare;
pub mod driver;
pub mod engine_bench;
pub mod error;
pub mod faults;
pub mod local;
pub mod measure;
pub mod predict;
pub mod probe;
pub mod report;
pub mod routing;
pub mod sweep;
pub mod verify;
pub mod workload;

pub use error::{Error, Result};
