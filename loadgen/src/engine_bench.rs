//! `kvbench engine`: RocksDB's `db_bench`, reimplemented for the `engine` crate, so the
//! same command line measures both stores the same way.
//!
//! Same flags (see [`flags`]), same keys and values drawn in the same order from the same
//! generators with the same seeds (see [`keys`], [`values`], [`random`]: with an equal
//! `--seed`, `readrandom` finds exactly the keys db_bench finds), same report lines (see
//! [`report`]). Like db_bench:
//! - thread `t` of the `k`-th benchmark thread started in the run (counting from 1 across
//!   benchmarks) draws from `Random64(seed + k)`;
//! - `--threads=T` runs T threads that each do the whole operation count (`--num` writes,
//!   `--reads` reads); ops/sec is the total over the wall-clock span of all threads;
//! - fillseq and fillrandom start from a destroyed database, and are skipped with
//!   `--use_existing_db`;
//! - fill benchmarks time the puts only: no flush or compaction wait at the end, so work
//!   left in the memtable or in background compaction is not in the figure (for either
//!   tool).

pub mod benchmarks;
pub mod flags;
pub mod keys;
pub mod random;
pub mod report;
pub mod values;

use crate::{Error, Result};
use benchmarks::{Benchmark, Workload};
use engine::{Db, Options};
pub use flags::EngineFlags;
use random::Random64;
use report::{Clock, Stats};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Barrier;

/// A file marking a directory as a database this tool created, so a later run may destroy
/// it for a fresh database without risking a directory the user cares about.
const DB_MARKER: &str = "KVBENCH_ENGINE_DB";

/// One benchmark's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchmarkResult {
    pub name: String,
    pub operations: u64,
    pub ops_per_sec: i64,
    pub elapsed_seconds: f64,
}

/// Runs the benchmarks `flags` ask for, printing db_bench's output to `out` and its
/// environment lines and warnings to `err`.
pub fn run(
    flags: &EngineFlags,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Vec<BenchmarkResult>> {
    flags.validate()?;
    let benchmarks = Benchmark::parse_list(&flags.benchmarks)?;
    let options = flags.engine_options()?;
    let (_, compression_warning) = flags::compression(flags)?;
    print_environment(err)?;
    let seed_base = if flags.seed == 0 {
        let seed = clock_seed();
        writeln!(out, "Set seed to {seed} because --seed was 0").map_err(io("stdout"))?;
        seed
    } else {
        flags.seed
    };

    let temporary;
    let path: PathBuf = match &flags.db {
        Some(path) => path.clone(),
        None => {
            temporary = tempfile::Builder::new()
                .prefix("kvbench-engine-")
                .tempdir()
                .map_err(io("temporary directory"))?;
            temporary.path().join("db")
        }
    };
    if !flags.use_existing_db {
        destroy_db(&path)?;
    }
    create_db_dir(&path)?;
    let mut db = Some(Db::open(&path, options.clone())?);

    print_header(flags, &options, compression_warning.as_deref(), out)?;
    let workload = Workload {
        num: flags.num as u64,
        reads: flags.reads(),
        key_size: flags.key_size as usize,
        value_size: flags.value_size as usize,
        compression_ratio: flags.compression_ratio,
        seek_nexts: flags.seek_nexts as usize,
    };
    let clock = Clock::new();
    let mut threads_started: i64 = 0;
    let mut results = Vec::new();
    for (name, benchmark) in benchmarks {
        if benchmark.wants_fresh_db() {
            if flags.use_existing_db {
                writeln!(out, "{name:<12} : skipped (--use_existing_db is true)")
                    .map_err(io("stdout"))?;
                continue;
            }
            if let Some(open) = db.take() {
                open.close()?;
            }
            destroy_db(&path)?;
            create_db_dir(&path)?;
            db = Some(Db::open(&path, options.clone())?);
        }
        let open = db.as_ref().expect("database is open between benchmarks");
        writeln!(out, "DB path: [{}]", path.display()).map_err(io("stdout"))?;
        let seeds: Vec<u64> = (0..flags.threads)
            .map(|_| {
                threads_started += 1;
                seed_base.wrapping_add(threads_started) as u64
            })
            .collect();
        let stats = run_benchmark(benchmark, open, &workload, &seeds, clock, flags.histogram)?;
        out.write_all(stats.report(&name).as_bytes())
            .and_then(|()| out.flush())
            .map_err(io("stdout"))?;
        if flags.statistics {
            writeln!(out, "STATISTICS:\n{:#?}", open.stats()).map_err(io("stdout"))?;
        }
        let elapsed = stats.elapsed_seconds();
        results.push(BenchmarkResult {
            name,
            operations: stats.done,
            ops_per_sec: (stats.done.max(1) as f64 / elapsed) as i64,
            elapsed_seconds: elapsed,
        });
    }
    if let Some(open) = db.take() {
        let engine_stats = open.stats();
        writeln!(
            err,
            "kvbench: engine holds {} tables, {} table bytes",
            engine_stats.tables, engine_stats.table_bytes
        )
        .map_err(io("stderr"))?;
        open.close()?;
    }
    Ok(results)
}

/// Runs one benchmark on `seeds.len()` threads that start together; merges their stats.
fn run_benchmark(
    benchmark: Benchmark,
    db: &Db,
    workload: &Workload,
    seeds: &[u64],
    clock: Clock,
    histogram: bool,
) -> Result<Stats> {
    let barrier = Barrier::new(seeds.len());
    let outcomes: Vec<Result<Stats>> = std::thread::scope(|scope| {
        let handles: Vec<_> = seeds
            .iter()
            .map(|&seed| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut random = Random64::new(seed);
                    barrier.wait();
                    let mut stats = Stats::start(clock, histogram);
                    benchmarks::run_thread(benchmark, db, workload, &mut random, &mut stats)?;
                    stats.stop();
                    Ok(stats)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or(Err(Error::ThreadPanicked)))
            .collect()
    });
    let mut merged: Option<Stats> = None;
    for outcome in outcomes {
        let stats = outcome?;
        match merged.as_mut() {
            Some(total) => total.merge(stats),
            None => merged = Some(stats),
        }
    }
    Ok(merged.expect("at least one thread"))
}

/// Removes the database at `path` if this tool made it (or it is empty); refuses otherwise.
fn destroy_db(path: &Path) -> Result<()> {
    let mut entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error(path, error)),
    };
    let empty = entries.next().is_none();
    if !empty && !path.join(DB_MARKER).exists() {
        return Err(Error::NotOurDatabase {
            path: path.to_path_buf(),
        });
    }
    std::fs::remove_dir_all(path).map_err(|error| io_error(path, error))
}

fn create_db_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|error| io_error(path, error))?;
    std::fs::write(
        path.join(DB_MARKER),
        "created by kvbench engine; removed when a benchmark needs a fresh database\n",
    )
    .map_err(|error| io_error(path, error))
}

fn print_environment(err: &mut dyn Write) -> Result<()> {
    writeln!(
        err,
        "kvbench:    version {} (engine benchmark, db_bench-compatible)",
        env!("CARGO_PKG_VERSION")
    )
    .map_err(io("stderr"))?;
    if let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") {
        let field = |name: &str| -> Vec<String> {
            cpuinfo
                .lines()
                .filter_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    (key.trim() == name).then(|| value.trim().to_string())
                })
                .collect()
        };
        let models = field("model name");
        let cpus = models.len();
        let model = models.last().cloned().unwrap_or_default();
        let cache = field("cache size").last().cloned().unwrap_or_default();
        writeln!(err, "CPU:        {cpus} * {model}\nCPUCache:   {cache}").map_err(io("stderr"))?;
    }
    Ok(())
}

/// db_bench's `PrintHeader`, for the lines that mean something here.
fn print_header(
    flags: &EngineFlags,
    options: &Options,
    compression_warning: Option<&str>,
    out: &mut dyn Write,
) -> Result<()> {
    let value_size = f64::from(flags.value_size);
    let key_size = f64::from(flags.key_size);
    let num = flags.num as f64;
    let compression = match options.table.compression {
        engine::Compression::None => "NoCompression".to_string(),
        engine::Compression::Zstd { level } => format!("ZSTD (level {level})"),
    };
    let header = format!(
        "Keys:       {} bytes each (+ 0 bytes user-defined timestamp)\n\
         Values:     {} bytes each ({} bytes after compression)\n\
         Entries:    {}\n\
         RawSize:    {:.1} MB (estimated)\n\
         FileSize:   {:.1} MB (estimated)\n\
         Compression: {}\n\
         Bloom bits: {}\n\
         WAL: {}, sync: {}\n",
        flags.key_size,
        flags.value_size,
        (value_size * flags.compression_ratio + 0.5) as i64,
        flags.num,
        (key_size + value_size) * num / 1_048_576.0,
        (key_size + value_size * flags.compression_ratio) * num / 1_048_576.0,
        compression,
        options.table.bloom_bits_per_key,
        if options.wal.enabled { "on" } else { "off" },
        if flags.sync { "every write" } else { "none" },
    );
    out.write_all(header.as_bytes()).map_err(io("stdout"))?;
    if let Some(warning) = compression_warning {
        writeln!(out, "{warning}").map_err(io("stdout"))?;
    }
    if cfg!(debug_assertions) {
        writeln!(
            out,
            "WARNING: Assertions are enabled; benchmarks unnecessarily slow"
        )
        .map_err(io("stdout"))?;
    }
    writeln!(out, "------------------------------------------------").map_err(io("stdout"))?;
    out.flush().map_err(io("stdout"))
}

/// A seed from the clock, for `--seed=0` (db_bench 7.x does the same).
fn clock_seed() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_micros() as i64)
        .unwrap_or(1)
        .max(1)
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |source| Error::Io {
        context: what.to_string(),
        source,
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        context: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(extra: &[&str]) -> EngineFlags {
        use clap::Parser;
        #[derive(Parser)]
        #[command(args_override_self = true)]
        struct Harness {
            #[command(flatten)]
            flags: EngineFlags,
        }
        let argv = std::iter::once("kvbench".to_string()).chain(flags::normalize_gflags_args(
            extra.iter().map(|s| s.to_string()),
        ));
        Harness::parse_from(argv).flags
    }

    #[test]
    fn runs_every_benchmark_and_prints_db_bench_lines() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let db_flag = format!("--db={}", db.display());
        let flags = flags(&[
            "--benchmarks=fillseq,fillrandom,overwrite,readrandom,readmissing,seekrandom,readseq,deleterandom",
            "--num=2000",
            "--seed=1",
            "--seek_nexts=3",
            "--threads=2",
            "--histogram=1",
            &db_flag,
        ]);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let results = run(&flags, &mut out, &mut err).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(results.len(), 8);
        // Every thread does the whole count; readseq stops at the end of the data.
        assert!(
            results
                .iter()
                .filter(|r| r.name != "readseq")
                .all(|r| r.operations == 4000),
            "{results:?}"
        );
        assert!(out.contains("readmissing  : "));
        assert!(out.contains("operations; (0 of 2000 found)\n"));
        assert!(out.contains("Microseconds per seek:"));
        assert!(db.join(DB_MARKER).exists());
    }

    #[test]
    fn refuses_to_destroy_a_foreign_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious.txt"), "keep me").unwrap();
        let db_flag = format!("--db={}", dir.path().display());
        let flags = flags(&["--benchmarks=fillseq", "--num=10", &db_flag]);
        let error = run(&flags, &mut Vec::new(), &mut Vec::new()).unwrap_err();
        assert!(matches!(error, Error::NotOurDatabase { .. }));
        assert!(dir.path().join("precious.txt").exists());
    }

    #[test]
    fn use_existing_db_skips_fills() {
        let dir = tempfile::tempdir().unwrap();
        let db_flag = format!("--db={}", dir.path().join("db").display());
        let flags = flags(&[
            "--benchmarks=fillseq,readrandom",
            "--num=10",
            "--use_existing_db",
            &db_flag,
        ]);
        let mut out = Vec::new();
        run(&flags, &mut out, &mut Vec::new()).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("fillseq      : skipped (--use_existing_db is true)\n"));
    }
}
