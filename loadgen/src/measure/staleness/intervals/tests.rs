//! Per-interval staleness against the run's totals, on a scripted history.

use super::*;
use crate::measure::staleness::{
    Observed, StalenessStats, StalenessTracker, TrackerConfig, ValueStamp,
};

const MS: u64 = 1000;

fn stamp(sequence: u64, issued_ms: u64) -> ValueStamp {
    ValueStamp {
        writer: 1,
        sequence,
        issued_micros: issued_ms * MS,
    }
}

#[test]
fn per_interval_staleness_sums_to_the_run_totals() {
    let tracker = StalenessTracker::new(TrackerConfig::default());
    // Writes to "k": v1 acked at 100 ms, v2 at 1500 ms, v3 at 2600 ms.
    let writes = [
        (stamp(1, 50), 100),
        (stamp(2, 1400), 1500),
        (stamp(3, 2500), 2600),
    ];
    for (stamp, _) in &writes {
        tracker.write_issued(b"k", stamp);
    }
    for (stamp, ended_ms) in &writes {
        tracker.write_ended(b"k", stamp, ended_ms * MS, true);
    }
    // (read start ms, version returned): interval 0 fresh, interval 1 one stale (k=1) and
    // one fresh, interval 2 a k=2 stale read and a fresh one, a read before any write.
    let script: [(u64, Option<usize>); 7] = [
        (20, None),
        (200, Some(0)),
        (1510, Some(0)),
        (1900, Some(1)),
        (2700, Some(0)),
        (2800, Some(2)),
        (2900, Some(2)),
    ];
    let mut threads = [StalenessStats::default(), StalenessStats::default()];
    for (index, (at_ms, returned)) in script.iter().enumerate() {
        let observed: Vec<Observed> = returned
            .map(|version| Observed::Stamp(writes[version].0))
            .into_iter()
            .collect();
        let class = tracker.classify_read(b"k", &observed, at_ms * MS);
        threads[index % 2].record_at(&class, at_ms * MS);
    }
    let mut run = StalenessStats::default();
    for thread in &threads {
        run.merge(thread);
    }
    assert_eq!(run.intervals.len(), 3);
    let (fresh, stale) = run
        .intervals
        .iter()
        .fold((0, 0), |(f, s), i| (f + i.fresh, s + i.stale));
    assert_eq!((fresh, stale), (run.fresh, run.stale));
    assert_eq!((run.fresh, run.stale), (4, 2));
    let k_total: u64 = run
        .k_distribution()
        .iter()
        .map(|(k, count)| *k as u64 * count)
        .sum();
    assert_eq!(run.intervals.iter().map(|i| i.k_sum).sum::<u64>(), k_total);
    let visibility: u64 = run.visibility_reads.iter().sum();
    assert_eq!(
        run.intervals
            .iter()
            .map(|i| i.visibility_reads)
            .sum::<u64>(),
        visibility
    );
    let seen: u64 = run.visibility_seen.iter().sum();
    assert_eq!(
        run.intervals.iter().map(|i| i.visibility_seen).sum::<u64>(),
        seen
    );
    assert_eq!(run.intervals[1].stale, 1);
    assert_eq!(run.intervals[2].k_max, 2);
    assert!((run.intervals[1].stale_t_mean_ms() - 10.0).abs() < 1e-9);
    assert_eq!(run.intervals[0].stale_fraction(), 0.0);
    let mut csv = Vec::new();
    write_staleness_intervals_csv(&mut csv, &run.intervals).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], STALENESS_INTERVALS_CSV_HEADER);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[2], "1,1,2,2,1,1,0.500000,1.000,1,10.000,2,0.500000");
}

#[test]
fn late_reads_share_the_last_interval() {
    assert_eq!(interval_of(0), 0);
    assert_eq!(interval_of(INTERVAL_MICROS - 1), 0);
    assert_eq!(interval_of(INTERVAL_MICROS), 1);
    assert_eq!(interval_of(u64::MAX), INTERVALS_MAX - 1);
}
