use super::*;
use crate::measure::staleness::{TrackerConfig, ValueStamp};

#[test]
fn nested_replies_parse_and_wait_for_completion() {
    let reply = b"*2\r\n$3\r\nctx\r\n*2\r\n$5\r\nhello\r\n$-1\r\n";
    for cut in 0..reply.len() {
        assert_eq!(parse_value(&reply[..cut]).unwrap(), None, "cut at {cut}");
    }
    let (value, used) = parse_value(reply).unwrap().unwrap();
    assert_eq!(used, reply.len());
    assert_eq!(
        versions_of(value).unwrap(),
        vec![Some(b"hello".to_vec()), None]
    );
    let (error, _) = parse_value(b"-ERR only 2 of 3 replicas\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(versions_of(error).unwrap_err(), "ERR only 2 of 3 replicas");
}

#[test]
fn report_counts_and_csvs() {
    let report = LostWriteReport {
        keys_checked: 10,
        present: 7,
        missing: 1,
        older: 1,
        unreadable: 1,
        problems: vec![
            ("user1".into(), KeyStatus::Missing),
            (
                "user2".into(),
                KeyStatus::Older {
                    missed: 2,
                    versions: 1,
                },
            ),
            ("user3".into(), KeyStatus::Unreadable("ERR timeout".into())),
        ],
        consistency: "ALL".into(),
        conflict_policy: "lww".into(),
        ..LostWriteReport::default()
    };
    assert_eq!(report.lost(), 2);
    assert!(
        report.text().contains("2 lost (1 missing, 1 older"),
        "{}",
        report.text()
    );
    let directory = tempfile::tempdir().unwrap();
    report.write_csv(directory.path()).unwrap();
    let counts = std::fs::read_to_string(directory.path().join("lost_writes.csv")).unwrap();
    assert!(counts.ends_with("ALL,lww,10,7,2,1,1,1,0\n"), "{counts}");
    let keys = std::fs::read_to_string(directory.path().join("lost_keys.csv")).unwrap();
    assert_eq!(keys.lines().count(), 4, "{keys}");
    assert!(keys.contains("user2,older,2,1,"), "{keys}");
}

#[test]
fn acknowledged_keys_are_those_with_an_acknowledged_write() {
    let tracker = StalenessTracker::new(TrackerConfig::default());
    let stamp = |sequence| ValueStamp {
        writer: 1,
        sequence,
        issued_micros: sequence * 10,
    };
    tracker.write_issued(b"acked", &stamp(1));
    tracker.write_ended(b"acked", &stamp(1), 15, true);
    tracker.write_issued(b"failed", &stamp(2));
    tracker.write_ended(b"failed", &stamp(2), 25, false);
    assert_eq!(tracker.acknowledged_keys(), vec![b"acked".to_vec()]);
    // The acknowledged version reads back present; nothing at all is missing.
    let present = tracker.classify_read(b"acked", &[Observed::Stamp(stamp(1))], u64::MAX / 2);
    assert_eq!(present.verdict, Verdict::Fresh);
    let missing = tracker.classify_read(b"acked", &[], u64::MAX / 2);
    assert!(matches!(missing.verdict, Verdict::Stale { k: 1, .. }));
}
