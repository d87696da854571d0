//! db_bench's command-line flags, with db_bench's names, syntax and defaults.
//!
//! Syntax follows gflags: `--num=500000` and `--num 500000`; a single leading dash
//! (`-num=500000`) works too. Booleans take `--sync`, `--sync=1`, `--sync=true`,
//! `--sync=0`, `--sync=false` (also yes/no, y/n, t/f) and `--nosync`. A flag that is not
//! listed here is an error, never silently ignored: a comparison that quietly dropped a
//! setting would compare different things.
//!
//! Where this differs from db_bench (and why):
//! - `--compression_type` defaults to `zstd`, not `snappy`: the engine only has zstd.
//!   `snappy`, `lz4`, `lz4hc`, `zlib`, `bzip2` and `xpress` are accepted and mapped to zstd
//!   with a warning (db_bench itself prints "using X compression in place of Y" when it
//!   substitutes); anything else is an error.
//! - `--compression_level` 32767 (db_bench's "unset") means the engine's own default
//!   level (1), as it means RocksDB's own default (3) to db_bench. Pass a level to compare
//!   at equal levels.
//! - `--bloom_bits=-1` (db_bench's "use the default", which is no filter in RocksDB 7.x)
//!   means no filter, as does 0.
//! - `--db` defaults to a fresh temporary directory removed at exit.

use crate::{Error, Result};
use clap::Args;
use engine::{Compression, Options, SyncPolicy};

/// Flags of `kvbench engine`, named as db_bench names them.
#[derive(Debug, Clone, Args)]
#[command(rename_all = "snake_case")]
pub struct EngineFlags {
    /// Comma-separated benchmarks to run in order: fillseq, fillrandom, overwrite,
    /// readrandom, readmissing, seekrandom, readseq, deleterandom.
    #[arg(long, default_value = DEFAULT_BENCHMARKS)]
    pub benchmarks: String,
    /// Number of key/values to place in the database (the key space).
    #[arg(long, default_value_t = 1_000_000)]
    pub num: i64,
    /// Number of read operations per thread; negative means `num`.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub reads: i64,
    /// Size of each value in bytes.
    #[arg(long, default_value_t = 100)]
    pub value_size: i32,
    /// Size of each key in bytes.
    #[arg(long, default_value_t = 16)]
    pub key_size: i32,
    /// none or zstd (snappy, lz4, lz4hc, zlib, bzip2, xpress are replaced by zstd, with a
    /// warning).
    #[arg(long, default_value = "zstd")]
    pub compression_type: String,
    /// Compression level; 32767 (db_bench's "unset") means the engine's own default.
    #[arg(long, default_value_t = DEFAULT_COMPRESSION_LEVEL, allow_negative_numbers = true)]
    pub compression_level: i32,
    /// Bloom filter bits per key; 0 or negative means no filter.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub bloom_bits: i32,
    /// Sync the commit log on every write.
    #[arg(long, value_parser = parse_gflags_bool, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", action = clap::ArgAction::Set)]
    pub sync: bool,
    /// Write no commit log at all.
    #[arg(long, value_parser = parse_gflags_bool, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", action = clap::ArgAction::Set)]
    pub disable_wal: bool,
    /// Number of concurrent threads; each does the full operation count.
    #[arg(long, default_value_t = 1)]
    pub threads: u32,
    /// Database directory; default: a temporary directory removed at exit.
    #[arg(long)]
    pub db: Option<std::path::PathBuf>,
    /// Keep the database in `--db`; fill benchmarks are then skipped, as in db_bench.
    #[arg(long, value_parser = parse_gflags_bool, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", action = clap::ArgAction::Set)]
    pub use_existing_db: bool,
    /// Seed base of the per-thread generators; 0 derives one from the clock.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub seed: i64,
    /// Values compress to about this fraction of their size.
    #[arg(long, default_value_t = 0.5)]
    pub compression_ratio: f64,
    /// Memtable size in bytes before it is flushed.
    #[arg(long, default_value_t = 64 << 20)]
    pub write_buffer_size: i64,
    /// Retired commit-log segments kept to be rewritten as later ones instead of deleted
    /// (the engine's `wal.recycle_segments`); 0, db_bench's default, deletes them.
    #[arg(long, default_value_t = 0)]
    pub recycle_log_file_num: u32,
    /// Block cache capacity in bytes; 0 or negative disables it.
    #[arg(long, default_value_t = 8 << 20, allow_negative_numbers = true)]
    pub cache_size: i64,
    /// Entries read after each seek in seekrandom.
    #[arg(long, default_value_t = 0)]
    pub seek_nexts: i32,
    /// Print latency percentiles per operation type.
    #[arg(long, value_parser = parse_gflags_bool, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", action = clap::ArgAction::Set)]
    pub histogram: bool,
    /// Print the engine's counters (flushes, compactions, stalls) after each benchmark.
    #[arg(long, value_parser = parse_gflags_bool, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", action = clap::ArgAction::Set)]
    pub statistics: bool,
}

/// The benchmarks run when `--benchmarks` is not given: db_bench's default list, minus
/// what is not implemented.
pub const DEFAULT_BENCHMARKS: &str =
    "fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom,readmissing";

/// db_bench's "unset" compression level.
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 32767;

/// The level the engine uses when none is set. db_bench's "unset" means each engine's own
/// default: RocksDB's is zstd level 3, ours is level 1 (faster flushes, and on db_bench's
/// values a table only about 1% larger). The header prints the level used.
fn engine_default_zstd_level() -> i32 {
    match engine::TableOptions::default().compression {
        Compression::Zstd { level } => level,
        Compression::None => 1,
    }
}

/// Boolean flag names, for `--noNAME`.
const BOOLEAN_FLAGS: [&str; 5] = [
    "sync",
    "disable_wal",
    "use_existing_db",
    "histogram",
    "statistics",
];

/// Compression types db_bench knows that the engine does not have; replaced by zstd.
const SUBSTITUTED_COMPRESSIONS: [&str; 6] = ["snappy", "lz4", "lz4hc", "zlib", "bzip2", "xpress"];

/// Parses a gflags boolean value.
pub fn parse_gflags_bool(value: &str) -> std::result::Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" => Ok(true),
        "0" | "false" | "f" | "no" | "n" => Ok(false),
        other => Err(format!(
            "'{other}' is not a boolean (use 1/0 or true/false)"
        )),
    }
}

/// Rewrites gflags spellings clap does not take into ones it does: `-num=5` becomes
/// `--num=5` and `--nosync` becomes `--sync=false`.
pub fn normalize_gflags_args<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    args.into_iter()
        .map(|arg| {
            let Some(body) = arg.strip_prefix('-') else {
                return arg;
            };
            let body = body.strip_prefix('-').unwrap_or(body);
            if body.is_empty() || body.starts_with(|c: char| c.is_ascii_digit()) {
                return arg;
            }
            if let Some(name) = body.strip_prefix("no") {
                if BOOLEAN_FLAGS.contains(&name) {
                    return format!("--{name}=false");
                }
            }
            format!("--{body}")
        })
        .collect()
}

/// The compression the engine uses, and a warning when it substitutes.
pub fn compression(flags: &EngineFlags) -> Result<(Compression, Option<String>)> {
    let level = if flags.compression_level == DEFAULT_COMPRESSION_LEVEL {
        engine_default_zstd_level()
    } else {
        flags.compression_level
    };
    let requested = flags.compression_type.to_ascii_lowercase();
    match requested.as_str() {
        "none" => Ok((Compression::None, None)),
        "zstd" => Ok((Compression::Zstd { level }, None)),
        other if SUBSTITUTED_COMPRESSIONS.contains(&other) => Ok((
            Compression::Zstd { level },
            Some(format!(
                "WARNING: using zstd compression in place of {other} (the engine has only zstd)"
            )),
        )),
        other => Err(Error::InvalidFlag {
            flag: "compression_type",
            detail: format!("unknown compression type '{other}' (use none or zstd)"),
        }),
    }
}

impl EngineFlags {
    /// Checks values db_bench would also refuse or that make no sense.
    pub fn validate(&self) -> Result<()> {
        let bad = |flag: &'static str, detail: &str| {
            Err(Error::InvalidFlag {
                flag,
                detail: detail.to_string(),
            })
        };
        if self.num <= 0 {
            return bad("num", "must be positive");
        }
        if self.key_size < 1 {
            return bad("key_size", "must be at least 1");
        }
        if self.value_size < 0 {
            return bad("value_size", "must not be negative");
        }
        if self.threads == 0 {
            return bad("threads", "must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.compression_ratio) || self.compression_ratio == 0.0 {
            return bad("compression_ratio", "should be between 0 and 1");
        }
        if self.seek_nexts < 0 {
            return bad("seek_nexts", "must not be negative");
        }
        if self.write_buffer_size <= 0 {
            return bad("write_buffer_size", "must be positive");
        }
        compression(self)?;
        Ok(())
    }

    /// Reads per thread (`--reads`, or `--num` when negative).
    pub fn reads(&self) -> u64 {
        if self.reads < 0 {
            self.num as u64
        } else {
            self.reads as u64
        }
    }

    /// The engine options these flags ask for.
    pub fn engine_options(&self) -> Result<Options> {
        let (compression, _) = compression(self)?;
        let mut options = Options::default();
        options.wal.enabled = !self.disable_wal;
        // RocksDB with sync=false hands log writes to the OS without fsync: SyncPolicy::None.
        options.wal.sync = if self.sync {
            SyncPolicy::Always
        } else {
            SyncPolicy::None
        };
        options.table.compression = compression;
        options.table.bloom_bits_per_key = self.bloom_bits.max(0) as u32;
        options.memtable_size_bytes = self.write_buffer_size as usize;
        options.wal.recycle_segments = self.recycle_log_file_num as usize;
        options.block_cache_size_bytes = self.cache_size.max(0) as usize;
        // readmissing uses keys one byte longer than key_size.
        options.key_size_bytes_max = options.key_size_bytes_max.max(self.key_size as usize + 1);
        options.value_size_bytes_max = options.value_size_bytes_max.max(self.value_size as usize);
        options.validate()?;
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    #[command(args_override_self = true)]
    struct Harness {
        #[command(flatten)]
        flags: EngineFlags,
    }

    fn parse(args: &[&str]) -> std::result::Result<EngineFlags, clap::Error> {
        let argv = std::iter::once("kvbench".to_string())
            .chain(normalize_gflags_args(args.iter().map(|s| s.to_string())));
        Harness::try_parse_from(argv).map(|h| h.flags)
    }

    #[test]
    fn defaults_are_db_bench_defaults() {
        let flags = parse(&[]).unwrap();
        assert_eq!(flags.num, 1_000_000);
        assert_eq!(flags.reads(), 1_000_000);
        assert_eq!(flags.value_size, 100);
        assert_eq!(flags.key_size, 16);
        assert_eq!(flags.bloom_bits, -1);
        assert_eq!(flags.compression_ratio, 0.5);
        assert_eq!(flags.write_buffer_size, 64 << 20);
        assert!(!flags.sync && !flags.disable_wal && !flags.histogram);
        let options = flags.engine_options().unwrap();
        assert_eq!(options.table.bloom_bits_per_key, 0);
        assert_eq!(options.wal.recycle_segments, 0);
    }

    #[test]
    fn db_bench_style_flags_parse() {
        let flags = parse(&[
            "--benchmarks=fillrandom,readrandom,readmissing",
            "--num=500000",
            "--reads",
            "1000",
            "-key_size=16",
            "--value_size=1024",
            "--compression_type=zstd",
            "--compression_level=-1",
            "--bloom_bits=10",
            "--sync=1",
            "--disable_wal=false",
            "--histogram",
            "--threads=2",
            "--seed=-5",
            "--recycle_log_file_num=2",
        ])
        .unwrap();
        assert_eq!(flags.benchmarks, "fillrandom,readrandom,readmissing");
        assert_eq!(flags.num, 500_000);
        assert_eq!(flags.reads(), 1000);
        assert_eq!(flags.value_size, 1024);
        assert!(flags.sync && !flags.disable_wal && flags.histogram);
        assert_eq!(flags.threads, 2);
        assert_eq!(flags.seed, -5);
        let options = flags.engine_options().unwrap();
        assert_eq!(options.wal.sync, SyncPolicy::Always);
        assert_eq!(options.table.bloom_bits_per_key, 10);
        assert_eq!(options.table.compression, Compression::Zstd { level: -1 });
        assert_eq!(options.wal.recycle_segments, 2);
    }

    #[test]
    fn gflags_booleans() {
        for (arg, expected) in [
            ("--sync=1", true),
            ("--sync=true", true),
            ("--sync", true),
            ("--sync=0", false),
            ("--sync=false", false),
            ("--nosync", false),
        ] {
            assert_eq!(parse(&[arg]).unwrap().sync, expected, "{arg}");
        }
        assert!(parse(&["--sync=maybe"]).is_err());
    }

    #[test]
    fn unknown_flag_is_an_error_naming_it() {
        let error = parse(&["--num=10", "--max_background_jobs=4"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(error.to_string().contains("max_background_jobs"));
    }

    #[test]
    fn compression_substitution_and_errors() {
        let flags = parse(&["--compression_type=snappy"]).unwrap();
        let (chosen, warning) = compression(&flags).unwrap();
        assert_eq!(chosen, Compression::Zstd { level: 1 });
        let flags = parse(&["--compression_level=3"]).unwrap();
        assert_eq!(
            compression(&flags).unwrap().0,
            Compression::Zstd { level: 3 }
        );
        assert!(warning.unwrap().contains("in place of snappy"));
        let flags = parse(&["--compression_type=none"]).unwrap();
        assert_eq!(compression(&flags).unwrap(), (Compression::None, None));
        let flags = parse(&["--compression_type=brotli"]).unwrap();
        assert!(flags.validate().is_err());
    }
}
