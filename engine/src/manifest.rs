//! The manifest: which SSTables make up the database, in age order, and how far the
//! commit log has been flushed into them.
//!
//! The whole state is small (a few dozen tables under size-tiered compaction), so it is
//! rewritten whole on every change: written to `MANIFEST.tmp`, synced, renamed over
//! `MANIFEST`, and the directory synced. A crash leaves either the old or the new file,
//! never a mix; table files not named by the surviving manifest are leftovers of an
//! unfinished flush or compaction and are deleted at open.
//!
//! Tables are grouped in *runs*: a run is the output of one flush or one merge, one or more
//! tables with the same sequence range and disjoint, ascending key ranges. Runs are listed
//! newest first, the tables of a run contiguously in ascending key order. A run's id is the
//! id of its first table when written (a flush's table id; a merge's first output table id).
//!
//! Format version 2, little-endian:
//!
//! ```text
//! magic            u64   0x3146_494e_414d_564b ("KVMANIF1" read as bytes)
//! format_version   u32   2
//! body_length      u32   bytes in body
//! body_crc32c      u32   crc32c of body
//! body:
//!   next_table_id      u64
//!   last_flushed_seq   u64   every write with seq <= this is in a listed table
//!   table_count        u32
//!   table_count times, newest run first, a run's tables in ascending key order:
//!     table_id          u64
//!     run_id            u64
//!     file_size_bytes   u64
//! ```
//!
//! Version 1 is still read: the same layout without `run_id` (16 bytes per table); each of
//! its tables is its own run, with run_id = table_id. Only version 2 is written.

use crate::{Error, Result, SequenceNumber};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: u64 = u64::from_le_bytes(*b"KVMANIF1");
const FORMAT_VERSION: u32 = 2;
/// The version before runs; read, never written.
const FORMAT_VERSION_V1: u32 = 1;
const HEADER_SIZE_BYTES: usize = 8 + 4 + 4 + 4;
/// More tables than this in a manifest means the file is not ours or is damaged.
const TABLE_COUNT_MAX: u32 = 1_000_000;
const FILE_NAME: &str = "MANIFEST";
const TEMPORARY_FILE_NAME: &str = "MANIFEST.tmp";

/// One table as the manifest lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRecord {
    pub id: u64,
    /// The run the table belongs to; see the module comment.
    pub run_id: u64,
    pub file_size_bytes: u64,
}

/// The durable state of the table set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManifestState {
    /// The id the next new table gets; ids are never reused.
    pub next_table_id: u64,
    /// Every write with a sequence number up to this one is in a listed table.
    pub last_flushed_seq: SequenceNumber,
    /// Live tables, newest run first, a run's tables in ascending key order. Runs have
    /// disjoint, descending sequence ranges.
    pub tables: Vec<TableRecord>,
}

/// The path of table `id` in `dir`.
pub fn table_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:06}.sst"))
}

/// The table id encoded in a file name, if it names a table.
pub fn parse_table_file_name(name: &str) -> Option<u64> {
    name.strip_suffix(".sst")?.parse().ok()
}

/// Encodes the state into the on-disk bytes.
pub fn encode(state: &ManifestState) -> Vec<u8> {
    let mut body = Vec::with_capacity(20 + state.tables.len() * 24);
    body.extend_from_slice(&state.next_table_id.to_le_bytes());
    body.extend_from_slice(&state.last_flushed_seq.to_le_bytes());
    body.extend_from_slice(&(state.tables.len() as u32).to_le_bytes());
    for table in &state.tables {
        body.extend_from_slice(&table.id.to_le_bytes());
        body.extend_from_slice(&table.run_id.to_le_bytes());
        body.extend_from_slice(&table.file_size_bytes.to_le_bytes());
    }
    let mut bytes = Vec::with_capacity(HEADER_SIZE_BYTES + body.len());
    bytes.extend_from_slice(&MAGIC.to_le_bytes());
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    bytes.extend_from_slice(&body);
    bytes
}

/// Encodes the state in format version 1 (without run ids), as older engines wrote it.
#[cfg(test)]
pub(crate) fn encode_v1(state: &ManifestState) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&state.next_table_id.to_le_bytes());
    body.extend_from_slice(&state.last_flushed_seq.to_le_bytes());
    body.extend_from_slice(&(state.tables.len() as u32).to_le_bytes());
    for table in &state.tables {
        body.extend_from_slice(&table.id.to_le_bytes());
        body.extend_from_slice(&table.file_size_bytes.to_le_bytes());
    }
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&MAGIC.to_le_bytes());
    bytes.extend_from_slice(&FORMAT_VERSION_V1.to_le_bytes());
    bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    bytes.extend_from_slice(&body);
    bytes
}

/// Decodes on-disk bytes; `path` only names the file in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<ManifestState> {
    let corrupt =
        |offset: usize, detail: String| Error::corruption("manifest", path, offset as u64, detail);
    if bytes.len() < HEADER_SIZE_BYTES {
        return Err(corrupt(
            0,
            format!("file of {} bytes is shorter than the header", bytes.len()),
        ));
    }
    let magic = read_u64(bytes, 0);
    if magic != MAGIC {
        return Err(corrupt(0, format!("bad magic {magic:#018x}")));
    }
    let version = read_u32(bytes, 8);
    if version != FORMAT_VERSION && version != FORMAT_VERSION_V1 {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let body_length = read_u32(bytes, 12) as usize;
    let body = &bytes[HEADER_SIZE_BYTES..];
    if body.len() != body_length {
        return Err(corrupt(
            12,
            format!("body length {body_length} but {} bytes follow", body.len()),
        ));
    }
    let expected = read_u32(bytes, 16);
    let actual = crc32c::crc32c(body);
    if expected != actual {
        return Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            offset: HEADER_SIZE_BYTES as u64,
            expected,
            actual,
        });
    }
    if body.len() < 20 {
        return Err(corrupt(
            HEADER_SIZE_BYTES,
            "body shorter than its fixed fields".into(),
        ));
    }
    let record_size = if version == FORMAT_VERSION_V1 { 16 } else { 24 };
    let table_count = read_u32(body, 16);
    if table_count > TABLE_COUNT_MAX || body.len() != 20 + table_count as usize * record_size {
        return Err(corrupt(
            HEADER_SIZE_BYTES + 16,
            format!("table count {table_count} does not fit the body"),
        ));
    }
    let tables: Vec<TableRecord> = (0..table_count as usize)
        .map(|index| {
            let record = 20 + index * record_size;
            let id = read_u64(body, record);
            if version == FORMAT_VERSION_V1 {
                TableRecord {
                    id,
                    run_id: id,
                    file_size_bytes: read_u64(body, record + 8),
                }
            } else {
                TableRecord {
                    id,
                    run_id: read_u64(body, record + 8),
                    file_size_bytes: read_u64(body, record + 16),
                }
            }
        })
        .collect();
    // A run's tables must be contiguous: the read path and merges rely on it.
    let mut finished_runs = std::collections::HashSet::new();
    for (index, table) in tables.iter().enumerate() {
        let continues = index > 0 && tables[index - 1].run_id == table.run_id;
        if index > 0 && !continues {
            finished_runs.insert(tables[index - 1].run_id);
        }
        if !continues && finished_runs.contains(&table.run_id) {
            return Err(corrupt(
                HEADER_SIZE_BYTES + 20 + index * record_size,
                format!("the tables of run {} are not contiguous", table.run_id),
            ));
        }
    }
    Ok(ManifestState {
        next_table_id: read_u64(body, 0),
        last_flushed_seq: read_u64(body, 8),
        tables,
    })
}

/// Reads the manifest of `dir`, `None` if the database is new.
pub fn load(dir: &Path) -> Result<Option<ManifestState>> {
    let path = dir.join(FILE_NAME);
    match fs::read(&path) {
        Ok(bytes) => decode(&bytes, &path).map(Some),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(Error::io(path, error)),
    }
}

/// Replaces the manifest of `dir` atomically and durably.
pub fn store(dir: &Path, state: &ManifestState) -> Result<()> {
    let temporary = dir.join(TEMPORARY_FILE_NAME);
    let path = dir.join(FILE_NAME);
    let mut file = File::create(&temporary).map_err(|e| Error::io(&temporary, e))?;
    file.write_all(&encode(state))
        .map_err(|e| Error::io(&temporary, e))?;
    file.sync_all().map_err(|e| Error::io(&temporary, e))?;
    drop(file);
    fs::rename(&temporary, &path).map_err(|e| Error::io(&path, e))?;
    sync_directory(dir)
}

/// Makes renames and deletions in `dir` durable.
pub fn sync_directory(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(|e| Error::io(dir, e))
}

fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    let mut buffer = [0u8; 8];
    buffer.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(buffer)
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut buffer = [0u8; 4];
    buffer.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ManifestState {
        ManifestState {
            next_table_id: 3,
            last_flushed_seq: 0x0102,
            tables: vec![
                TableRecord {
                    id: 2,
                    run_id: 2,
                    file_size_bytes: 4096,
                },
                TableRecord {
                    id: 1,
                    run_id: 1,
                    file_size_bytes: 0x0203,
                },
            ],
        }
    }

    #[test]
    fn golden_bytes() {
        let bytes = encode(&sample());
        let mut expected = Vec::new();
        expected.extend_from_slice(b"KVMANIF1");
        expected.extend_from_slice(&[2, 0, 0, 0]); // version
        expected.extend_from_slice(&[68, 0, 0, 0]); // body length
        let body: Vec<u8> = [
            &[3, 0, 0, 0, 0, 0, 0, 0][..],       // next_table_id
            &[0x02, 0x01, 0, 0, 0, 0, 0, 0][..], // last_flushed_seq
            &[2, 0, 0, 0][..],                   // table_count
            &[2, 0, 0, 0, 0, 0, 0, 0][..],       // table id
            &[2, 0, 0, 0, 0, 0, 0, 0][..],       // run id
            &[0, 0x10, 0, 0, 0, 0, 0, 0][..],    // file size 4096
            &[1, 0, 0, 0, 0, 0, 0, 0][..],       // table id
            &[1, 0, 0, 0, 0, 0, 0, 0][..],       // run id
            &[0x03, 0x02, 0, 0, 0, 0, 0, 0][..], // file size 0x0203
        ]
        .concat();
        expected.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        expected.extend_from_slice(&body);
        assert_eq!(bytes, expected);
        assert_eq!(decode(&bytes, Path::new("MANIFEST")).unwrap(), sample());
    }

    #[test]
    fn version_1_is_read_with_each_table_its_own_run() {
        let body: Vec<u8> = [
            &[3, 0, 0, 0, 0, 0, 0, 0][..],       // next_table_id
            &[0x02, 0x01, 0, 0, 0, 0, 0, 0][..], // last_flushed_seq
            &[2, 0, 0, 0][..],                   // table_count
            &[2, 0, 0, 0, 0, 0, 0, 0][..],       // table id
            &[0, 0x10, 0, 0, 0, 0, 0, 0][..],    // file size 4096
            &[1, 0, 0, 0, 0, 0, 0, 0][..],       // table id
            &[0x03, 0x02, 0, 0, 0, 0, 0, 0][..], // file size 0x0203
        ]
        .concat();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"KVMANIF1");
        bytes.extend_from_slice(&[1, 0, 0, 0]); // version
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        assert_eq!(decode(&bytes, Path::new("MANIFEST")).unwrap(), sample());
        // Rewritten, it becomes version 2.
        assert_eq!(encode(&sample())[8], 2);
    }

    #[test]
    fn a_split_run_is_an_error() {
        let mut state = sample();
        state.tables = [(5, 5), (4, 3), (3, 3), (2, 5)]
            .into_iter()
            .map(|(id, run_id)| TableRecord {
                id,
                run_id,
                file_size_bytes: 1,
            })
            .collect();
        assert!(decode(&encode(&state), Path::new("MANIFEST")).is_err());
        state.tables[3].run_id = 2;
        assert!(decode(&encode(&state), Path::new("MANIFEST")).is_ok());
    }

    #[test]
    fn every_flipped_byte_is_an_error() {
        let bytes = encode(&sample());
        for index in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[index] ^= 0x40;
            assert!(
                decode(&damaged, Path::new("MANIFEST")).is_err(),
                "byte {index}"
            );
        }
        for length in 0..bytes.len() {
            assert!(decode(&bytes[..length], Path::new("MANIFEST")).is_err());
        }
    }

    #[test]
    fn store_then_load() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        store(dir.path(), &sample()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(sample()));
        assert!(!dir.path().join(TEMPORARY_FILE_NAME).exists());
    }

    #[test]
    fn table_file_names_round_trip() {
        let path = table_path(Path::new("/db"), 42);
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_table_file_name(name), Some(42));
        assert_eq!(parse_table_file_name("000001.log"), None);
    }
}
