//! `loadgen`: the library behind `kvbench`.
//!
//! - [`engine_bench`]: `kvbench engine`, a db_bench-compatible benchmark of the storage
//!   engine, comparable line for line with RocksDB's `db_bench`
//!   (see `scripts/engine-vs-rocksdb.sh`).
//! - [`cli`]: the command-line surface `main.rs` parses, one subcommand per workflow.

pub mod cli;
pub mod engine_bench;
pub mod error;
pub mod workload;

pub use error::{Error, Result};
