//! Draining the writes under an older ring before a change streams
//! ([`Scaling::drain_writes`], `DrainWrites`).

use std::time::Duration;

use super::tests::lone_scaling;
use super::*;

#[tokio::test]
async fn a_drain_waits_for_the_writes_taken_under_an_older_ring_and_no_others() {
    let directory = tempfile::tempdir().unwrap();
    let scaling = lone_scaling(directory.path(), 0);
    let before = scaling.snapshot();
    let old_write = scaling.write_snapshot();
    assert_eq!(old_write.spec.version, before.spec.version);
    assert_eq!(before.writes_in_flight(), 1);
    let version = before.spec.version + 1;
    scaling
        .apply(RingSpec {
            version,
            phase: Phase::Stable,
            current: before.spec.current.clone(),
            next: Vec::new(),
        })
        .unwrap();
    // A write under the new ring does not hold the drain up; the one before does.
    let new_write = scaling.write_snapshot();
    assert_eq!(new_write.spec.version, version);
    let error = scaling
        .drain_writes(version, Duration::from_millis(30))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("1 writes coordinated under a ring older than version"),
        "{error}"
    );
    // Nor is a node drained for a version it has not taken.
    let error = scaling
        .drain_writes(version + 1, Duration::from_secs(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("not yet"), "{error}");

    let started = std::time::Instant::now();
    let (drained, ()) = tokio::join!(
        scaling.drain_writes(version, Duration::from_secs(10)),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(old_write);
        }
    );
    drained.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(before.writes_in_flight(), 0);
    // Answered at once from then on, with the newer write still in flight.
    tokio::time::timeout(
        Duration::from_secs(1),
        scaling.drain_writes(version, Duration::from_secs(10)),
    )
    .await
    .expect("a drained ring is not waited for again")
    .unwrap();
    assert_eq!(scaling.snapshot().writes_in_flight(), 1);
    drop(new_write);
    assert_eq!(scaling.snapshot().writes_in_flight(), 0);
}

#[tokio::test]
async fn a_drain_request_is_answered_with_the_ring_version() {
    let directory = tempfile::tempdir().unwrap();
    let scaling = lone_scaling(directory.path(), 0);
    let version = scaling.snapshot().spec.version;
    let from = NodeId::new("b");
    let reply = scaling
        .handle(
            &from,
            PeerMessage::DrainWrites {
                version,
                wait_ms: 1000,
            },
        )
        .await;
    assert!(
        matches!(reply, Some(PeerMessage::RingAck { version: v }) if v == version),
        "{reply:?}"
    );
    let reply = scaling
        .handle(
            &from,
            PeerMessage::DrainWrites {
                version: version + 1,
                wait_ms: 1000,
            },
        )
        .await;
    assert!(
        matches!(&reply, Some(PeerMessage::Error { message }) if message.contains("not yet")),
        "{reply:?}"
    );
}
