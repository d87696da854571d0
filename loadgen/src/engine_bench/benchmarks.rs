//! The benchmarks: what one thread does, drawing keys as db_bench does (see
//! [`keys`](super::keys) for the draw order each one follows).

use super::keys::generate_key_from_int;
use super::random::Random64;
use super::report::{OperationKind, Stats};
use super::values::RandomGenerator;
use crate::{Error, Result};
use engine::Db;

/// A benchmark `kvbench engine` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Benchmark {
    FillSeq,
    FillRandom,
    Overwrite,
    ReadRandom,
    ReadMissing,
    SeekRandom,
    ReadSeq,
    DeleteRandom,
}

impl Benchmark {
    /// Parses a db_bench benchmark name.
    pub fn from_name(name: &str) -> Result<Benchmark> {
        Ok(match name {
            "fillseq" => Benchmark::FillSeq,
            "fillrandom" => Benchmark::FillRandom,
            "overwrite" => Benchmark::Overwrite,
            "readrandom" => Benchmark::ReadRandom,
            "readmissing" => Benchmark::ReadMissing,
            "seekrandom" => Benchmark::SeekRandom,
            "readseq" => Benchmark::ReadSeq,
            "deleterandom" => Benchmark::DeleteRandom,
            other => return Err(Error::UnknownBenchmark(other.to_string())),
        })
    }

    /// Parses `--benchmarks`; empty names are skipped, as db_bench does.
    pub fn parse_list(list: &str) -> Result<Vec<(String, Benchmark)>> {
        list.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| Ok((name.to_string(), Benchmark::from_name(name)?)))
            .collect()
    }

    /// Whether db_bench starts this benchmark on a freshly destroyed database.
    pub fn wants_fresh_db(self) -> bool {
        matches!(self, Benchmark::FillSeq | Benchmark::FillRandom)
    }
}

/// What every thread of a benchmark needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// `--num`: the key space, and the writes per thread of fill benchmarks.
    pub num: u64,
    /// Reads per thread.
    pub reads: u64,
    pub key_size: usize,
    pub value_size: usize,
    pub compression_ratio: f64,
    pub seek_nexts: usize,
}

/// Runs `benchmark` for one thread.
pub fn run_thread(
    benchmark: Benchmark,
    db: &Db,
    workload: &Workload,
    random: &mut Random64,
    stats: &mut Stats,
) -> Result<()> {
    match benchmark {
        Benchmark::FillSeq => write(db, workload, None, stats),
        Benchmark::FillRandom | Benchmark::Overwrite => write(db, workload, Some(random), stats),
        Benchmark::ReadRandom => read_random(db, workload, workload.key_size, random, stats),
        // db_bench's readmissing is readrandom with `++key_size_`: a 17-byte key is never
        // equal to any stored 16-byte key.
        Benchmark::ReadMissing => read_random(db, workload, workload.key_size + 1, random, stats),
        Benchmark::SeekRandom => seek_random(db, workload, random, stats),
        Benchmark::ReadSeq => read_sequential(db, workload, stats),
        Benchmark::DeleteRandom => delete_random(db, workload, random, stats),
    }
}

/// db_bench's `DoWrite`: `num` puts per thread, sequential keys without a generator,
/// random keys (duplicates allowed) with one. Measures the puts only: no flush at the end.
fn write(
    db: &Db,
    workload: &Workload,
    mut random: Option<&mut Random64>,
    stats: &mut Stats,
) -> Result<()> {
    // Built inside the timed region, as db_bench builds its RandomGenerator in DoWrite.
    let mut values = RandomGenerator::new(workload.value_size, workload.compression_ratio);
    let mut key = vec![0u8; workload.key_size];
    let mut bytes = 0u64;
    for sequence in 0..workload.num {
        let number = match random.as_deref_mut() {
            Some(random) => {
                // DoWrite draws once to pick among databases (one here), then the key.
                let _database = random.next_u64();
                random.next_u64() % workload.num
            }
            None => sequence,
        };
        generate_key_from_int(number, &mut key);
        let value = values.generate(workload.value_size);
        db.put(&key, value)?;
        bytes += (value.len() + key.len()) as u64;
        stats.finished_ops(1, OperationKind::Write);
    }
    stats.add_bytes(bytes);
    Ok(())
}

/// db_bench's `ReadRandom`: `reads` gets of random keys, counting those found.
fn read_random(
    db: &Db,
    workload: &Workload,
    key_size: usize,
    random: &mut Random64,
    stats: &mut Stats,
) -> Result<()> {
    let mut key = vec![0u8; key_size];
    let (mut found, mut bytes) = (0u64, 0u64);
    for _ in 0..workload.reads {
        // SelectDBWithCfh draws once, then GetRandomKey draws the key.
        let _database = random.next_u64();
        let number = random.next_u64() % workload.num;
        generate_key_from_int(number, &mut key);
        if let Some(value) = db.get(&key)? {
            found += 1;
            bytes += (key.len() + value.value.len()) as u64;
        }
        stats.finished_ops(1, OperationKind::Read);
    }
    stats.add_bytes(bytes);
    stats.add_message(&format!("({found} of {} found)\n", workload.reads));
    Ok(())
}

/// db_bench's `SeekRandom`: seek to a random key, count it found when the first entry is
/// that key, then read `seek_nexts` entries. One engine scan of `seek_nexts + 1` entries
/// does the seek and the nexts.
fn seek_random(
    db: &Db,
    workload: &Workload,
    random: &mut Random64,
    stats: &mut Stats,
) -> Result<()> {
    let mut key = vec![0u8; workload.key_size];
    let (mut found, mut bytes) = (0u64, 0u64);
    for _ in 0..workload.reads {
        let number = random.next_u64() % workload.num;
        generate_key_from_int(number, &mut key);
        let entries = db.scan(&key, None, workload.seek_nexts + 1)?;
        if entries.first().is_some_and(|(first, _)| *first == key) {
            found += 1;
        }
        for (entry_key, value) in entries.iter().take(workload.seek_nexts) {
            bytes += (entry_key.len() + value.value.len()) as u64;
        }
        stats.finished_ops(1, OperationKind::Seek);
    }
    stats.add_bytes(bytes);
    stats.add_message(&format!("({found} of {} found)\n", workload.reads));
    Ok(())
}

/// Entries fetched per engine scan while reading sequentially.
const READ_SEQUENTIAL_BATCH: usize = 1024;

/// db_bench's `ReadSequential`: up to `reads` entries in key order from the first.
fn read_sequential(db: &Db, workload: &Workload, stats: &mut Stats) -> Result<()> {
    let mut start: Vec<u8> = Vec::new();
    let (mut read, mut bytes) = (0u64, 0u64);
    while read < workload.reads {
        let want = READ_SEQUENTIAL_BATCH.min((workload.reads - read) as usize);
        let entries = db.scan(&start, None, want)?;
        for (key, value) in &entries {
            bytes += (key.len() + value.value.len()) as u64;
            read += 1;
            stats.finished_ops(1, OperationKind::Read);
        }
        match entries.last() {
            Some((last, _)) if entries.len() == want => {
                // The smallest key after `last`.
                start.clone_from(last);
                start.push(0);
            }
            _ => break,
        }
    }
    stats.add_bytes(bytes);
    Ok(())
}

/// db_bench's `DeleteRandom`: `num` deletes of random keys.
fn delete_random(
    db: &Db,
    workload: &Workload,
    random: &mut Random64,
    stats: &mut Stats,
) -> Result<()> {
    let mut key = vec![0u8; workload.key_size];
    for _ in 0..workload.num {
        let _database = random.next_u64();
        let number = random.next_u64() % workload.num;
        generate_key_from_int(number, &mut key);
        db.delete(&key)?;
        stats.finished_ops(1, OperationKind::Delete);
    }
    Ok(())
}
