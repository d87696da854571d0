//! `staleness.csv`: a staleness run's classification counts, one row per t-visibility bucket
//! (`row = visibility`), one per k seen (`row = k`), and one total (`row = total`), in one
//! table with a fixed header so any CSV reader takes it whole. Columns a row does not use
//! are empty.
//!
//! ```text
//! row,t_ms_from,t_ms_to,mean_t_ms,reads,seen,fresh_fraction,k,stale_reads
//! visibility,0,1,0.412,120,118,0.983333,,
//! k,,,,,,,1,5
//! total,,,,250,,0.98,,5
//! ```
//!
//! - visibility: reads begun `t_ms_from <= t < t_ms_to` after the latest write acknowledged
//!   before them; `seen` of them returned it; `fresh_fraction = seen / reads`.
//! - k: stale reads that missed `k` acknowledged writes (the last k means "k or more").
//! - total: reads checked (fresh + stale), their fresh fraction and the stale reads.

use crate::measure::staleness::StalenessStats;
use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name in a run's results directory.
pub const STALENESS_CSV_NAME: &str = "staleness.csv";

/// Writes `staleness.csv` into `directory`; returns its path.
pub fn write_staleness_csv_file(directory: &Path, stats: &StalenessStats) -> Result<PathBuf> {
    let path = directory.join(STALENESS_CSV_NAME);
    let mut text = Vec::new();
    write_staleness_csv(&mut text, stats)
        .and_then(|()| std::fs::write(&path, &text))
        .map_err(|source| Error::Io {
            context: path.display().to_string(),
            source,
        })?;
    Ok(path)
}

/// The header line's fields.
pub const STALENESS_CSV_HEADER: &str =
    "row,t_ms_from,t_ms_to,mean_t_ms,reads,seen,fresh_fraction,k,stale_reads";

/// Writes the table.
pub fn write_staleness_csv(out: &mut dyn Write, stats: &StalenessStats) -> std::io::Result<()> {
    writeln!(out, "{STALENESS_CSV_HEADER}")?;
    for bucket in stats.t_visibility() {
        let to = if bucket.to_ms.is_finite() {
            bucket.to_ms.to_string()
        } else {
            "inf".to_string()
        };
        writeln!(
            out,
            "visibility,{},{to},{:.3},{},{},{:.6},,",
            bucket.from_ms,
            bucket.mean_t_ms,
            bucket.reads,
            bucket.seen,
            bucket.probability()
        )?;
    }
    for (k, count) in stats.k_distribution() {
        writeln!(out, "k,,,,,,,{k},{count}")?;
    }
    writeln!(
        out,
        "total,,,,{},,{:.6},,{}",
        stats.checked(),
        1.0 - stats.stale_fraction(),
        stats.stale
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::staleness::{ReadClass, Verdict, VisibilitySample};

    #[test]
    fn rows_have_the_header_s_field_count() {
        let mut stats = StalenessStats::default();
        stats.record(&ReadClass {
            verdict: Verdict::Stale {
                k: 2,
                k_is_lower_bound: false,
                t_micros: 1500,
            },
            visibility: Some(VisibilitySample {
                since_commit_micros: 1500,
                seen: false,
            }),
            versions_returned: 1,
            unstamped_returned: false,
        });
        stats.record(&ReadClass {
            verdict: Verdict::Fresh,
            visibility: Some(VisibilitySample {
                since_commit_micros: 1_000_000_000,
                seen: true,
            }),
            versions_returned: 1,
            unstamped_returned: false,
        });
        let mut out = Vec::new();
        write_staleness_csv(&mut out, &stats).unwrap();
        let text = String::from_utf8(out).unwrap();
        let fields = STALENESS_CSV_HEADER.split(',').count();
        for line in text.lines() {
            assert_eq!(line.split(',').count(), fields, "{line}");
        }
        assert!(text.contains("\nk,,,,,,,2,1\n"), "{text}");
        assert!(text.ends_with("total,,,,2,,0.500000,,1\n"), "{text}");
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("visibility,"))
                .count(),
            2
        );
    }
}
