use super::*;

fn open(directory: &Path) -> LocalStore {
    LocalStore::open(
        directory,
        engine::Options::default(),
        VersionConfig::default(),
    )
    .unwrap()
}

#[test]
fn blind_writes_from_two_coordinators_are_siblings_and_a_context_collapses_them() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path());
    let empty = VectorClock::new();
    store
        .write_local(b"k", &empty, Some(b"a".to_vec()), "n1", 1)
        .unwrap();
    store
        .write_local(b"k", &empty, Some(b"b".to_vec()), "n2", 2)
        .unwrap();
    let set = store.read(b"k").unwrap().unwrap();
    assert_eq!(set.versions.len(), 2);
    store
        .write_local(b"k", &set.context(), Some(b"c".to_vec()), "n1", 3)
        .unwrap();
    let set = store.read(b"k").unwrap().unwrap();
    assert_eq!(set.versions.len(), 1);
    assert_eq!(set.versions[0].value.as_deref(), Some(&b"c"[..]));
}

#[test]
fn apply_merges_and_values_at_the_limit_fit() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path());
    let big = vec![7u8; store.value_bytes_max()];
    let version = store
        .write_local(b"k", &VectorClock::new(), Some(big.clone()), "n1", 1)
        .unwrap();
    let other = tempfile::tempdir().unwrap();
    let replica = open(other.path());
    replica.apply(b"k", &SiblingSet::single(version)).unwrap();
    let set = replica.read(b"k").unwrap().unwrap();
    assert_eq!(set.versions[0].value.as_deref(), Some(&big[..]));
    let too_big = vec![7u8; store.value_bytes_max() + 1];
    assert!(store
        .write_local(b"k2", &VectorClock::new(), Some(too_big), "n1", 2)
        .is_err());
    assert!(store.read(b"k2").unwrap().is_none());
    assert_eq!(store.scan(b"", None, 10).unwrap().len(), 1);
}

#[test]
fn deferred_writes_committed_by_polling_are_durable_after_reopen() {
    let directory = tempfile::tempdir().unwrap();
    let mut options = engine::Options::default();
    options.wal.sync = engine::SyncPolicy::Periodic { interval_ms: 1000 };
    let store =
        LocalStore::open(directory.path(), options.clone(), VersionConfig::default()).unwrap();
    assert!(store.defers_commits());
    std::thread::scope(|scope| {
        for thread in 0..4u32 {
            let store = &store;
            scope.spawn(move || {
                for index in 0..100u32 {
                    let key = format!("k{thread}-{index}");
                    store
                        .write_local_deferred(
                            key.as_bytes(),
                            &VectorClock::new(),
                            Some(key.clone().into_bytes()),
                            "n1",
                            1,
                        )
                        .unwrap();
                    let ticket = store.commit_ticket();
                    let mut polls = 0u64;
                    while store
                        .poll_commit(ticket, std::task::Waker::noop())
                        .is_pending()
                    {
                        polls += 1;
                        assert!(polls < 100_000_000, "commit never completed");
                        std::thread::yield_now();
                    }
                    assert!(store.is_committed(ticket));
                }
            });
        }
    });
    store.close().unwrap();
    let store = LocalStore::open(directory.path(), options, VersionConfig::default()).unwrap();
    for thread in 0..4u32 {
        for index in 0..100u32 {
            let key = format!("k{thread}-{index}");
            let set = store.read(key.as_bytes()).unwrap().unwrap();
            assert_eq!(set.versions[0].value.as_deref(), Some(key.as_bytes()));
        }
    }
}

#[test]
fn deferred_writes_on_lent_bytes_store_what_decoded_writes_store() {
    for policy in [
        crate::version::ConflictPolicy::Siblings,
        crate::version::ConflictPolicy::LastWriteWins,
    ] {
        let versions = VersionConfig {
            policy,
            ..VersionConfig::default()
        };
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let options = engine::Options::default();
        let decoded = LocalStore::open(one.path(), options.clone(), versions.clone()).unwrap();
        let lent = LocalStore::open(two.path(), options, versions).unwrap();
        let empty = VectorClock::new();
        // (key, writer, value, with the stored context): siblings from blind writes of
        // three coordinators, tombstones, empty values, then a context write over them.
        type Step<'a> = (&'a [u8], &'a str, Option<&'a [u8]>, bool);
        let steps: Vec<Step<'_>> = vec![
            (b"k", "n1", Some(b"a"), false),
            (b"k", "n1", Some(b"bb"), false),
            (b"k", "n2", Some(b""), false),
            (b"k", "n3", None, false),
            (b"k", "n2", Some(&[9u8; 3000]), false),
            (b"k", "n1", Some(b"resolved"), true),
            (b"j", "n1", None, false),
            (b"j", "n1", Some(b""), true),
            (b"k", "n3", Some(b"last"), false),
        ];
        for (step, (key, writer, value, with_context)) in steps.into_iter().enumerate() {
            let context = match (with_context, decoded.read(key).unwrap()) {
                (true, Some(set)) => set.context(),
                _ => empty.clone(),
            };
            let value = value.map(<[u8]>::to_vec);
            let now = 10 + step as u64 / 2;
            decoded
                .write_local(key, &context, value.clone(), writer, now)
                .unwrap();
            lent.write_local_deferred(key, &context, value, writer, now)
                .unwrap();
            let bytes = |store: &LocalStore| store.db.get(key).unwrap().unwrap().value;
            assert_eq!(bytes(&decoded), bytes(&lent), "{policy:?} step {step}");
        }
        let set = lent.read(b"k").unwrap().unwrap();
        if policy == crate::version::ConflictPolicy::Siblings {
            assert_eq!(set.versions.len(), 2, "{set:?}");
        }
    }
}

#[test]
fn read_latest_shows_what_the_decoded_sets_winner_holds() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path());
    let latest = |key: &[u8]| {
        store
            .read_latest(key, |value| value.map(<[u8]>::to_vec))
            .unwrap()
    };
    assert_eq!(latest(b"absent"), None);
    store
        .write_local(b"k", &VectorClock::new(), Some(b"a".to_vec()), "n1", 5)
        .unwrap();
    assert_eq!(latest(b"k"), Some(b"a".to_vec()));
    // Concurrent writes from two coordinators: siblings. The later write's timestamp is
    // raised above the stored ones (9 -> 10), so it wins, as `latest_version` picks.
    store
        .write_local(b"k", &VectorClock::new(), Some(b"b".to_vec()), "n2", 9)
        .unwrap();
    store
        .write_local(b"k", &VectorClock::new(), Some(b"c".to_vec()), "n0", 9)
        .unwrap();
    let set = store.read(b"k").unwrap().unwrap();
    let expected = crate::server::commands::latest_version(&set).and_then(|v| v.value.clone());
    assert_eq!(latest(b"k"), expected);
    assert_eq!(latest(b"k"), Some(b"c".to_vec()));
    // A winning tombstone reads as absent; an older tombstone under a newer value does not.
    let context = set.context();
    store.write_local(b"k", &context, None, "n1", 20).unwrap();
    assert_eq!(latest(b"k"), None);
    store
        .write_local(b"k", &VectorClock::new(), Some(b"d".to_vec()), "n3", 30)
        .unwrap();
    assert_eq!(latest(b"k"), Some(b"d".to_vec()));
    // Damaged bytes are an error, not a panic or a wrong value.
    for cut in [0, 2, 5] {
        let bytes = store.db.get(b"k").unwrap().unwrap().value;
        assert!(crate::version::codec::latest_value(&bytes[..bytes.len() - 1 - cut]).is_err());
    }
}
