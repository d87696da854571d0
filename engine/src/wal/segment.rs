//! Segment files: naming, listing, creating, recycling.
//!
//! A segment whose records all reached SSTables is either deleted or, while fewer than
//! `WalOptions::recycle_segments` wait, renamed to `NNNNNN.free` and reused as a later
//! segment: rewriting pages the file system and page cache already hold costs a fraction of
//! filling new ones (`scripts/wal-recycle.sh` first times `dd` both ways).

use super::format;
use crate::io::{sync_directory, LogFile, OpenMode};
use crate::{Error, IoBackend, Result};
use std::path::{Path, PathBuf};

/// Extension of segment files; everything else in the directory is ignored.
const SEGMENT_EXTENSION: &str = ".log";
/// Extension of segment files waiting to be reused; never replayed.
const FREE_EXTENSION: &str = ".free";

/// A segment open for appends.
pub(super) struct ActiveSegment {
    pub(super) number: u64,
    pub(super) file: LogFile,
}

/// `000001.log`: zero-padded so that a directory listing sorts like the numbers do.
pub(super) fn file_name(number: u64) -> String {
    format!("{number:06}{SEGMENT_EXTENSION}")
}

fn parse_numbered(name: &str, extension: &str) -> Option<u64> {
    let digits = name.strip_suffix(extension)?;
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Every file in `directory` named `NNNNNN` + `extension`, ordered by number.
fn list_numbered(directory: &Path, extension: &str) -> Result<Vec<(u64, PathBuf)>> {
    let entries = std::fs::read_dir(directory).map_err(|error| Error::io(directory, error))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| Error::io(directory, error))?;
        let name = entry.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|name| parse_numbered(name, extension))
        else {
            continue;
        };
        files.push((number, entry.path()));
    }
    files.sort();
    Ok(files)
}

/// Every segment in `directory`, ordered by number.
pub(super) fn list(directory: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let segments = list_numbered(directory, SEGMENT_EXTENSION)?;
    // "1.log" and "000001.log" would both claim number 1; replaying either could be wrong.
    if let Some(pair) = segments.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(Error::corruption(
            "log directory",
            &pair[1].1,
            0,
            format!(
                "segment number {} also used by {}",
                pair[0].0,
                pair[0].1.display()
            ),
        ));
    }
    Ok(segments)
}

/// Creates segment `number` with its header, durably: the header is synced and so is the
/// directory entry, so that recovery never meets a segment that vanished or lost its header
/// while later segments survived. With `reuse`, a `.free` file is taken when there is one:
/// its header is rewritten (and synced) before it is renamed, so a crash leaves either a
/// free file or a segment whose earlier records no longer check out (their checksums are
/// seeded with the old number), never old records passed off as new ones.
pub(super) fn create(
    directory: &Path,
    number: u64,
    backend: IoBackend,
    reuse: bool,
) -> Result<ActiveSegment> {
    let path = directory.join(file_name(number));
    if reuse {
        if let Some((_, free)) = list_numbered(directory, FREE_EXTENSION)?.into_iter().next() {
            let file = LogFile::open(&free, OpenMode::Existing, backend)?;
            let prepared = file
                .write_at(&format::segment_header(number), 0)
                .and_then(|()| file.sync_data())
                .and_then(|()| {
                    std::fs::rename(&free, &path).map_err(|error| Error::io(&free, error))
                })
                .and_then(|()| sync_directory(directory));
            if let Err(error) = prepared {
                // Best effort, as below: a segment file left under the new number would
                // make the next attempt at it fail. (Renamed or not, its records are
                // already in SSTables.)
                let _ = file.close();
                let _ = std::fs::remove_file(&path);
                return Err(error);
            }
            return Ok(ActiveSegment { number, file });
        }
    }
    let file = LogFile::open(&path, OpenMode::CreateNew, backend)?;
    let initialized = file
        .write_at(&format::segment_header(number), 0)
        .and_then(|()| file.sync_data())
        .and_then(|()| sync_directory(directory));
    if let Err(error) = initialized {
        // Best effort: a half-made segment would only confuse the next recovery.
        let _ = file.close();
        let _ = std::fs::remove_file(&path);
        return Err(error);
    }
    Ok(ActiveSegment { number, file })
}

/// Retires every segment numbered below `limit`: renamed to a `.free` file while fewer than
/// `keep_free` of those exist, deleted otherwise. Returns how many were retired.
pub(super) fn remove_before(directory: &Path, limit: u64, keep_free: usize) -> Result<usize> {
    let mut free = list_numbered(directory, FREE_EXTENSION)?.len();
    let mut removed = 0;
    for (number, path) in list(directory)? {
        if number >= limit {
            break;
        }
        if free < keep_free {
            let target = directory.join(format!("{number:06}{FREE_EXTENSION}"));
            std::fs::rename(&path, &target).map_err(|error| Error::io(&path, error))?;
            free += 1;
        } else {
            std::fs::remove_file(&path).map_err(|error| Error::io(&path, error))?;
        }
        removed += 1;
    }
    if removed > 0 {
        sync_directory(directory)?;
    }
    Ok(removed)
}

/// Deletes `.free` files beyond the first `keep_free` (after `recycle_segments` was lowered).
pub(super) fn trim_free(directory: &Path, keep_free: usize) -> Result<()> {
    let free = list_numbered(directory, FREE_EXTENSION)?;
    if free.len() <= keep_free {
        return Ok(());
    }
    for (_, path) in &free[keep_free..] {
        std::fs::remove_file(path).map_err(|error| Error::io(path, error))?;
    }
    sync_directory(directory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        assert_eq!(file_name(1), "000001.log");
        assert_eq!(file_name(12_345_678), "12345678.log");
        assert_eq!(parse_numbered("000042.log", SEGMENT_EXTENSION), Some(42));
        assert_eq!(
            parse_numbered("12345678.log", SEGMENT_EXTENSION),
            Some(12_345_678)
        );
        for stranger in [
            "LOCK",
            ".log",
            "x1.log",
            "000001.log.tmp",
            "-1.log",
            "1 .log",
            "000001.free",
        ] {
            assert_eq!(
                parse_numbered(stranger, SEGMENT_EXTENSION),
                None,
                "{stranger}"
            );
        }
    }
}
