//! Segment files: naming, listing, creating.

use super::format;
use crate::io::{sync_directory, LogFile, OpenMode};
use crate::{Error, IoBackend, Result};
use std::path::{Path, PathBuf};

/// Extension of segment files; everything else in the directory is ignored.
const SEGMENT_EXTENSION: &str = ".log";

/// A segment open for appends.
pub(super) struct ActiveSegment {
    pub(super) number: u64,
    pub(super) file: LogFile,
}

/// `000001.log`: zero-padded so that a directory listing sorts like the numbers do.
pub(super) fn file_name(number: u64) -> String {
    format!("{number:06}{SEGMENT_EXTENSION}")
}

fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_EXTENSION)?;
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Every segment in `directory`, ordered by number.
pub(super) fn list(directory: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = std::fs::read_dir(directory).map_err(|error| Error::io(directory, error))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| Error::io(directory, error))?;
        let Some(number) = entry.file_name().to_str().and_then(parse_file_name) else {
            continue;
        };
        segments.push((number, entry.path()));
    }
    segments.sort();
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
/// while later segments survived.
pub(super) fn create(directory: &Path, number: u64, backend: IoBackend) -> Result<ActiveSegment> {
    let path = directory.join(file_name(number));
    let file = LogFile::open(&path, OpenMode::CreateNew, backend)?;
    let initialized = file
        .write_at(&format::segment_header(), 0)
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

/// Deletes every segment numbered below `limit`; returns how many.
pub(super) fn remove_before(directory: &Path, limit: u64) -> Result<usize> {
    let mut removed = 0;
    for (number, path) in list(directory)? {
        if number >= limit {
            break;
        }
        std::fs::remove_file(&path).map_err(|error| Error::io(&path, error))?;
        removed += 1;
    }
    if removed > 0 {
        sync_directory(directory)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        assert_eq!(file_name(1), "000001.log");
        assert_eq!(file_name(12_345_678), "12345678.log");
        assert_eq!(parse_file_name("000042.log"), Some(42));
        assert_eq!(parse_file_name("12345678.log"), Some(12_345_678));
        for stranger in [
            "LOCK",
            ".log",
            "x1.log",
            "000001.log.tmp",
            "-1.log",
            "1 .log",
        ] {
            assert_eq!(parse_file_name(stranger), None, "{stranger}");
        }
    }
}
