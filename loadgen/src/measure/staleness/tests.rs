//! Scripted histories. Times are written in ms and converted to the tracker's microseconds.

use super::*;

const MS: u64 = 1000;

fn stamp(writer: u64, sequence: u64, issued_ms: u64) -> ValueStamp {
    ValueStamp {
        writer,
        sequence,
        issued_micros: issued_ms * MS,
    }
}

/// A tracker fed `(stamp, ended_ms, acknowledged)` writes to key "k".
fn history(writes: &[(ValueStamp, u64, bool)], config: TrackerConfig) -> StalenessTracker {
    let tracker = StalenessTracker::new(config);
    for (stamp, _, _) in writes {
        tracker.write_issued(b"k", stamp);
    }
    for (stamp, ended_ms, acknowledged) in writes {
        tracker.write_ended(b"k", stamp, ended_ms * MS, *acknowledged);
    }
    tracker
}

fn read(tracker: &StalenessTracker, returned: &[ValueStamp], at_ms: u64) -> ReadClass {
    let observed: Vec<Observed> = returned.iter().copied().map(Observed::Stamp).collect();
    tracker.classify_read(b"k", &observed, at_ms * MS)
}

fn stale(k: u64, t_ms: u64) -> Verdict {
    Verdict::Stale {
        k,
        k_is_lower_bound: false,
        t_micros: t_ms * MS,
    }
}

#[test]
fn stamp_has_golden_bytes_and_round_trips() {
    let value = ValueStamp {
        writer: 0x0102,
        sequence: 7,
        issued_micros: 0x0A0B_0C0D,
    };
    let golden: [u8; 32] = [
        b'K', b'V', b's', b't', 1, 0, 0, 0, //
        0x02, 0x01, 0, 0, 0, 0, 0, 0, //
        7, 0, 0, 0, 0, 0, 0, 0, //
        0x0D, 0x0C, 0x0B, 0x0A, 0, 0, 0, 0,
    ];
    assert_eq!(value.encode(), golden);
    let mut bytes = vec![b'x'; 100];
    value.write_into(&mut bytes).unwrap();
    assert_eq!(&bytes[32..], &[b'x'; 68][..]);
    assert_eq!(ValueStamp::decode(&bytes).unwrap(), Some(value));
    assert_eq!(Observed::of_value(&bytes), Observed::Stamp(value));
    // Foreign values: no magic, or too short to hold a stamp.
    assert_eq!(ValueStamp::decode(&[b'x'; 100]).unwrap(), None);
    assert_eq!(ValueStamp::decode(&golden[..31]).unwrap(), None);
    assert_eq!(Observed::of_value(b"hello"), Observed::Unstamped);
    // The magic with a bad version or reserved bytes is corrupt, and reads as unstamped.
    let mut bad = golden;
    bad[4] = 2;
    assert!(ValueStamp::decode(&bad)
        .unwrap_err()
        .to_string()
        .contains("version 2"));
    assert_eq!(Observed::of_value(&bad), Observed::Unstamped);
    let mut bad = golden;
    bad[6] = 1;
    assert!(ValueStamp::decode(&bad)
        .unwrap_err()
        .to_string()
        .contains("reserved"));
    let error = value.write_into(&mut [0u8; 16]).unwrap_err().to_string();
    assert!(error.contains("16-byte value"), "{error}");
}

#[test]
fn single_writer_k_and_t() {
    let (w1, w2, w3) = (stamp(1, 1, 0), stamp(1, 2, 20), stamp(1, 3, 40));
    let tracker = history(
        &[(w1, 10, true), (w2, 30, true), (w3, 50, true)],
        TrackerConfig::default(),
    );
    let class = read(&tracker, &[w1], 60);
    assert_eq!(class.verdict, stale(2, 10));
    assert_eq!(
        class.visibility,
        Some(VisibilitySample {
            since_commit_micros: 10 * MS,
            seen: false
        })
    );
    assert_eq!(read(&tracker, &[w2], 60).verdict, stale(1, 10));
    let fresh = read(&tracker, &[w3], 60);
    assert_eq!(fresh.verdict, Verdict::Fresh);
    assert!(fresh.visibility.unwrap().seen);
    // While w3 is in flight (read begun at 45), w2 is the latest; returning w3 is fine too.
    assert_eq!(read(&tracker, &[w2], 45).verdict, Verdict::Fresh);
    assert_eq!(read(&tracker, &[w3], 45).verdict, Verdict::Fresh);
    assert_eq!(read(&tracker, &[w1], 45).verdict, stale(1, 15));
    // Acknowledged at the very moment the read begins counts (t = 0).
    assert_eq!(read(&tracker, &[w1], 30).verdict, stale(1, 0));
    // Before any acknowledgement there is nothing to miss.
    let early = read(&tracker, &[], 5);
    assert_eq!(early.verdict, Verdict::NoPriorWrite);
    assert_eq!(early.visibility, None);
    // Not found after acknowledged writes: missed all of them.
    assert_eq!(read(&tracker, &[], 60).verdict, stale(3, 10));
    // A key never written.
    let other = tracker.classify_read(b"other", &[], 60 * MS);
    assert_eq!(other.verdict, Verdict::NoPriorWrite);
}

#[test]
fn concurrent_writers_only_miss_writes_that_follow_what_was_returned() {
    // A: [0, 30], B: [10, 20] overlap; C: [35, 38] follows both.
    let (a, b, c) = (stamp(1, 1, 0), stamp(2, 1, 10), stamp(3, 1, 35));
    let tracker = history(&[(a, 30, true), (b, 20, true)], TrackerConfig::default());
    // Either of two concurrent writes is a legal answer.
    assert_eq!(read(&tracker, &[a], 32).verdict, Verdict::Fresh);
    let concurrent = read(&tracker, &[b], 32);
    assert_eq!(concurrent.verdict, Verdict::Fresh);
    assert!(concurrent.visibility.unwrap().seen);
    tracker.write_issued(b"k", &c);
    tracker.write_ended(b"k", &c, 38 * MS, true);
    assert_eq!(read(&tracker, &[b], 40).verdict, stale(1, 2));
    assert_eq!(read(&tracker, &[a], 40).verdict, stale(1, 2));
    assert_eq!(read(&tracker, &[c], 40).verdict, Verdict::Fresh);
}

#[test]
fn a_stale_read_can_still_see_the_latest_concurrent_write() {
    // v: [0, 10]; w: [12, 20] follows v; latest: [5, 25] overlaps v.
    let (v, w, latest) = (stamp(1, 1, 0), stamp(2, 1, 12), stamp(3, 1, 5));
    let tracker = history(
        &[(v, 10, true), (latest, 25, true), (w, 20, true)],
        TrackerConfig::default(),
    );
    let class = read(&tracker, &[v], 30);
    assert_eq!(class.verdict, stale(1, 10));
    assert_eq!(
        class.visibility,
        Some(VisibilitySample {
            since_commit_micros: 5 * MS,
            seen: true
        })
    );
    let mut stats = StalenessStats::default();
    stats.record(&class);
    assert_eq!(
        (stats.stale, stats.visibility_seen.iter().sum::<u64>()),
        (1, 1)
    );
}

#[test]
fn siblings_count_as_seen_if_any_is_new_enough() {
    let (a, b, c) = (stamp(1, 1, 0), stamp(2, 1, 10), stamp(3, 1, 35));
    let tracker = history(
        &[(a, 30, true), (b, 20, true), (c, 38, true)],
        TrackerConfig::default(),
    );
    let both = read(&tracker, &[b, c], 40);
    assert_eq!(both.verdict, Verdict::Fresh);
    assert_eq!(both.versions_returned, 2);
    // {A, B}: C was issued after both ended, so it is missed.
    assert_eq!(read(&tracker, &[a, b], 40).verdict, stale(1, 2));
    let mut stats = StalenessStats::default();
    stats.record(&both);
    assert_eq!(stats.with_siblings, 1);
}

#[test]
fn failed_writes_are_never_missed_but_order_later_ones() {
    let (c, d, e) = (stamp(1, 1, 0), stamp(1, 2, 50), stamp(1, 3, 65));
    let tracker = history(&[(c, 10, true), (d, 60, false)], TrackerConfig::default());
    // D failed: a read missing it is fresh; one returning it (it may have been applied) too.
    assert_eq!(read(&tracker, &[c], 62).verdict, Verdict::Fresh);
    assert_eq!(read(&tracker, &[d], 62).verdict, Verdict::Fresh);
    tracker.write_issued(b"k", &e);
    tracker.write_ended(b"k", &e, 68 * MS, true);
    // E was issued after D's failure was seen, so D is older than E.
    assert_eq!(read(&tracker, &[d], 70).verdict, stale(1, 2));
}

#[test]
fn unstamped_values_are_older_than_every_tracked_write() {
    let tracker = history(
        &[(stamp(1, 1, 0), 10, true), (stamp(1, 2, 20), 30, true)],
        TrackerConfig::default(),
    );
    let class = tracker.classify_read(b"k", &[Observed::Unstamped], 40 * MS);
    assert_eq!(class.verdict, stale(2, 10));
    assert!(class.unstamped_returned);
}

#[test]
fn forgotten_history_makes_k_a_lower_bound() {
    let config = TrackerConfig {
        history_per_key: 2,
        keys_max: 10,
    };
    let writes: Vec<_> = (0..5)
        .map(|i| (stamp(1, i, i * 20), i * 20 + 10, true))
        .collect();
    let tracker = history(&writes, config);
    // The first write was forgotten; the two retained (acked at 70 and 90) follow it.
    assert_eq!(
        read(&tracker, &[writes[0].0], 100).verdict,
        Verdict::Stale {
            k: 2,
            k_is_lower_bound: true,
            t_micros: 10 * MS
        }
    );
    assert_eq!(read(&tracker, &[writes[4].0], 100).verdict, Verdict::Fresh);
    // A stamp newer than anything recorded (another writer's write in flight) is fresh.
    assert_eq!(
        read(&tracker, &[stamp(9, 1, 95)], 100).verdict,
        Verdict::Fresh
    );
}

#[test]
fn keys_beyond_the_limit_are_untracked() {
    let tracker = StalenessTracker::new(TrackerConfig {
        history_per_key: 4,
        keys_max: 1,
    });
    tracker.write_issued(b"a", &stamp(1, 1, 0));
    tracker.write_issued(b"b", &stamp(1, 2, 0));
    tracker.write_ended(b"b", &stamp(1, 2, 0), 5 * MS, true);
    let class = tracker.classify_read(b"b", &[], 10 * MS);
    assert_eq!(class.verdict, Verdict::Untracked);
    let mut stats = StalenessStats::default();
    stats.record(&class);
    assert_eq!((stats.reads, stats.untracked, stats.checked()), (1, 1, 0));
}

#[test]
fn stats_aggregate_and_merge() {
    let (w1, w2, w3) = (stamp(1, 1, 0), stamp(1, 2, 20), stamp(1, 3, 40));
    let tracker = history(
        &[(w1, 10, true), (w2, 30, true), (w3, 50, true)],
        TrackerConfig::default(),
    );
    let classes = [
        read(&tracker, &[w3], 50),   // fresh, t = 0
        read(&tracker, &[w1], 50),   // stale k=2, t = 0
        read(&tracker, &[w2], 52),   // stale k=1, t = 2 ms
        read(&tracker, &[w3], 1000), // fresh, t = 950 ms
        read(&tracker, &[], 5),      // no prior write
    ];
    let mut all = StalenessStats::default();
    let (mut left, mut right) = (StalenessStats::default(), StalenessStats::default());
    for (i, class) in classes.iter().enumerate() {
        all.record(class);
        if i % 2 == 0 { &mut left } else { &mut right }.record(class);
    }
    let mut merged = StalenessStats::default();
    merged.merge(&left);
    merged.merge(&right);
    assert_eq!(merged, all);
    assert_eq!(
        (all.reads, all.fresh, all.stale, all.no_prior_write),
        (5, 2, 2, 1)
    );
    assert!((all.stale_fraction() - 0.5).abs() < 1e-12);
    assert_eq!(all.k_distribution(), vec![(1, 1), (2, 1)]);
    let curve = all.t_visibility();
    assert_eq!(curve.len(), 3);
    assert_eq!(
        (
            curve[0].from_ms,
            curve[0].to_ms,
            curve[0].reads,
            curve[0].seen
        ),
        (0.0, 0.25, 2, 1)
    );
    assert_eq!(curve[0].probability(), 0.5);
    assert_eq!(
        (curve[1].from_ms, curve[1].reads, curve[1].seen),
        (2.0, 1, 0)
    );
    assert!((curve[1].mean_t_ms - 2.0).abs() < 1e-9);
    assert_eq!((curve[2].from_ms, curve[2].to_ms), (700.0, 1000.0));
    assert_eq!(all.stale_t_counts[0], 1);
    let report = all.report(Some(&|_t| 0.5), 1);
    assert!(
        report.contains("4 reads checked, 2 stale (50.0000%)"),
        "{report}"
    );
    assert!(report.contains("k=1: 1, k=2: 1"), "{report}");
    // Buckets at P 0.5, 0 and 1 against 0.5 everywhere: RMSE 0.5 * sqrt(2/3).
    assert!(
        report.contains("RMSE measured vs predicted: 40.8248% over 3 buckets"),
        "{report}"
    );
    assert!(!all.report(None, 1).contains("RMSE"));
    // Taking an interval leaves zeroed counters behind.
    let interval = std::mem::take(&mut all);
    assert_eq!(interval.reads, 5);
    assert_eq!(all, StalenessStats::default());
    assert_eq!(all.stale_fraction(), 0.0);
}

#[test]
fn huge_k_and_t_land_in_the_last_slots() {
    let mut stats = StalenessStats::default();
    stats.record(&ReadClass {
        verdict: Verdict::Stale {
            k: 1000,
            k_is_lower_bound: false,
            t_micros: u64::MAX,
        },
        visibility: Some(VisibilitySample {
            since_commit_micros: u64::MAX / 2,
            seen: false,
        }),
        versions_returned: 1,
        unstamped_returned: false,
    });
    assert_eq!(stats.k_distribution(), vec![(K_DISTRIBUTION_MAX, 1)]);
    assert_eq!(stats.stale_t_counts[T_BUCKET_EDGES_MS.len() - 1], 1);
    assert_eq!(stats.t_visibility()[0].to_ms, f64::INFINITY);
}

#[test]
fn threads_share_a_tracker() {
    let tracker = StalenessTracker::new(TrackerConfig::default());
    std::thread::scope(|scope| {
        for writer in 0..4u64 {
            let tracker = &tracker;
            scope.spawn(move || {
                let key = format!("key{writer}");
                for sequence in 0..500u64 {
                    let time = sequence * 10;
                    let stamp = ValueStamp {
                        writer,
                        sequence,
                        issued_micros: time,
                    };
                    tracker.write_issued(key.as_bytes(), &stamp);
                    tracker.write_ended(key.as_bytes(), &stamp, time + 5, true);
                    let class =
                        tracker.classify_read(key.as_bytes(), &[Observed::Stamp(stamp)], time + 6);
                    assert_eq!(class.verdict, Verdict::Fresh);
                }
            });
        }
    });
}
