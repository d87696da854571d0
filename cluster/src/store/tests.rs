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
        let lent = LocalStore::open(two.path(), options.clone(), versions.clone()).unwrap();
        let three = tempfile::tempdir().unwrap();
        let minted = LocalStore::open(three.path(), options, versions).unwrap();
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
            let version = decoded
                .write_local(key, &context, value.clone(), writer, now)
                .unwrap();
            lent.write_local_deferred(key, &context, value.clone(), writer, now)
                .unwrap();
            let returned = minted
                .write_local_version_deferred(key, &context, value, writer, now)
                .unwrap();
            assert_eq!(returned, version, "{policy:?} step {step}");
            let bytes = |store: &LocalStore| store.db.get(key).unwrap().unwrap().value;
            assert_eq!(bytes(&decoded), bytes(&lent), "{policy:?} step {step}");
            assert_eq!(bytes(&decoded), bytes(&minted), "{policy:?} step {step}");
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

/// A replica's `Put` stored as it came (when the version supersedes the stored set) must
/// store exactly what decoding and merging stores: random replicated writes (blind,
/// with a context, from stale views reusing a counter, ties of timestamp and writer
/// broken by value, tombstones, whole sets of siblings, redeliveries) applied both ways.
#[test]
fn replicated_puts_stored_as_they_came_store_what_merges_store() {
    use rand::{Rng, SeedableRng};
    for policy in [
        crate::version::ConflictPolicy::Siblings,
        crate::version::ConflictPolicy::LastWriteWins,
    ] {
        for seed in 0..8u64 {
            let mut random = rand::rngs::StdRng::seed_from_u64(seed);
            let versions = VersionConfig {
                policy,
                ..VersionConfig::default()
            };
            let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let options = engine::Options::default();
            let merged = LocalStore::open(one.path(), options.clone(), versions.clone()).unwrap();
            let fast = LocalStore::open(two.path(), options, versions.clone()).unwrap();
            let keys: [&[u8]; 3] = [b"a", b"b", b"c"];
            let writers = ["n1", "n2", "n3"];
            let values: [Option<&[u8]>; 5] = [None, Some(b""), Some(b"x"), Some(b"y"), Some(b"zz")];
            // What some coordinator has seen of each key, and older snapshots of it.
            let mut views: Vec<Vec<SiblingSet>> = vec![vec![SiblingSet::default()]; keys.len()];
            let mut sent: Vec<(usize, Vec<u8>)> = Vec::new();
            let (mut same, mut steps) = (0, 0);
            for step in 0..300 {
                let key_index = random.gen_range(0..keys.len());
                let key = keys[key_index];
                let bytes = match random.gen_range(0..10) {
                    // A redelivery of an earlier message.
                    0 if !sent.is_empty() => {
                        let (index, bytes) = sent[random.gen_range(0..sent.len())].clone();
                        if index != key_index {
                            continue;
                        }
                        bytes
                    }
                    // A whole view (read repair sends merged sets).
                    1 => {
                        let view = &views[key_index];
                        view[random.gen_range(0..view.len())].encode()
                    }
                    _ => {
                        let view = &views[key_index];
                        // Mostly the latest view (writes that follow each other), else
                        // a stale one (a coordinator that missed writes).
                        let index = if random.gen_bool(0.7) {
                            view.len() - 1
                        } else {
                            random.gen_range(0..view.len())
                        };
                        let mut base = view[index].clone();
                        let context = if random.gen_bool(0.6) {
                            base.context()
                        } else {
                            VectorClock::new()
                        };
                        let writer = writers[random.gen_range(0..writers.len())];
                        let value = values[random.gen_range(0..values.len())].map(<[u8]>::to_vec);
                        let now = random.gen_range(0..6);
                        let version = match base
                            .write_with_context(&context, writer, now, value, &versions)
                        {
                            Ok(version) => version,
                            Err(_) => continue,
                        };
                        let set = SiblingSet::single(version);
                        let latest = views[key_index].last().unwrap().clone();
                        let mut next = latest;
                        next.merge(&set, &versions).unwrap();
                        views[key_index].push(next);
                        set.encode()
                    }
                };
                sent.push((key_index, bytes.clone()));
                let general = merged.apply(key, &SiblingSet::decode(&bytes).unwrap());
                let quick = fast.apply_encoded(key, bytes.clone(), random.gen_bool(0.5));
                assert_eq!(
                    general.is_ok(),
                    quick.is_ok(),
                    "{policy:?} seed {seed} step {step}"
                );
                let stored = |store: &LocalStore| store.db.get(key).unwrap().map(|s| s.value);
                assert_eq!(
                    stored(&merged),
                    stored(&fast),
                    "{policy:?} seed {seed} step {step}"
                );
                steps += 1;
                if stored(&fast).as_deref() == Some(bytes.as_slice()) {
                    same += 1;
                }
            }
            // Both outcomes happened: sets stored as they came, and merged ones.
            assert!(
                same > steps / 4 && same < steps,
                "{policy:?} seed {seed}: {same}/{steps}"
            );
        }
    }
}

#[test]
fn replicated_puts_of_bad_bytes_or_values_over_the_limit_are_errors() {
    let directory = tempfile::tempdir().unwrap();
    let options = engine::Options {
        value_size_bytes_max: 16,
        ..engine::Options::default()
    };
    let store = LocalStore::open(directory.path(), options, VersionConfig::default()).unwrap();
    let mut set = SiblingSet::default();
    let version = set
        .write_with_context(
            &VectorClock::new(),
            "n1",
            1,
            Some(vec![7; 17]),
            &VersionConfig::default(),
        )
        .unwrap();
    let error = store
        .apply_encoded(b"k", SiblingSet::single(version).encode(), true)
        .unwrap_err();
    assert!(error.to_string().contains("17 bytes"), "{error}");
    let good = SiblingSet::single(
        SiblingSet::default()
            .write_with_context(
                &VectorClock::new(),
                "n1",
                1,
                Some(vec![7; 3]),
                &VersionConfig::default(),
            )
            .unwrap(),
    )
    .encode();
    for cut in 1..good.len() {
        let error = store
            .apply_encoded(b"k", good[..cut].to_vec(), true)
            .unwrap_err();
        assert!(matches!(error, Error::CorruptVersion(_)), "{error}");
    }
    store.apply_encoded(b"k", good.clone(), true).unwrap();
    // Stored bytes damaged under a well-formed Put: the Put replaces them (see
    // `every_write_path_replaces_a_stored_set_that_does_not_decode`).
    store.db.put_with_meta(b"k", &[], b"VS\x01\x05").unwrap();
    store.apply_encoded(b"k", good.clone(), true).unwrap();
    store.commit().unwrap();
    assert_eq!(store.read_encoded(b"k").unwrap(), Some(good));
    assert_eq!(store.corrupt_sets_replaced(), 1);
    assert!(store.read(b"missing").unwrap().is_none());
}

#[test]
fn every_write_path_replaces_a_stored_set_that_does_not_decode() {
    // A stored set the engine kept intact but that does not decode (a clock naming one
    // node twice): reads fail with a clear error; each write path replaces it with what the
    // write brings, and counts it.
    let garbage: &[u8] = b"VS\x01\x01\x02\x01a\x01\x00\x01a\x01\x00\x00\x00\x00";
    assert!(SiblingSet::decode(garbage).is_err());
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path());
    // The observer makes the writes hash old and new bytes, as a clustered node's do.
    struct Seen(Mutex<Vec<Option<u64>>>);
    impl WriteObserver for Seen {
        fn stored(&self, _key: &[u8], old: Option<u64>, _new: u64) {
            self.0.lock().unwrap().push(old);
        }
    }
    let seen = Arc::new(Seen(Mutex::new(Vec::new())));
    store.set_observer(seen.clone()).unwrap();
    let source = tempfile::tempdir().unwrap();
    let other = open(source.path());
    let version = other
        .write_local(b"x", &VectorClock::new(), Some(b"put".to_vec()), "n2", 5)
        .unwrap();
    let replicated = SiblingSet::single(version);
    type Write<'a> = Box<dyn Fn(&LocalStore) -> Result<()> + 'a>;
    let writes: Vec<(&str, Write, &[u8])> = vec![
        (
            "write_local",
            Box::new(|store| {
                store
                    .write_local(b"k", &VectorClock::new(), Some(b"new".to_vec()), "n1", 9)
                    .map(drop)
            }),
            b"new",
        ),
        (
            "write_local_deferred (on lent bytes)",
            Box::new(|store| {
                store.write_local_deferred(
                    b"k",
                    &VectorClock::new(),
                    Some(b"new".to_vec()),
                    "n1",
                    9,
                )?;
                store.commit()
            }),
            b"new",
        ),
        (
            "apply_encoded (a replica's Put)",
            Box::new(|store| store.apply_encoded(b"k", replicated.encode(), false)),
            b"put",
        ),
        (
            "apply (read repair)",
            Box::new(|store| store.apply(b"k", &replicated).map(drop)),
            b"put",
        ),
        (
            "merge_in (anti-entropy)",
            Box::new(|store| store.merge_in(b"k", &replicated).map(drop)),
            b"put",
        ),
    ];
    for (count, (path, write, value)) in writes.iter().enumerate() {
        store.db.put(b"k", garbage).unwrap();
        let error = store.read(b"k").unwrap_err();
        assert!(
            matches!(error, Error::CorruptVersion(_)),
            "{path}: read gave {error}"
        );
        seen.0.lock().unwrap().clear();
        write(&store).unwrap_or_else(|error| panic!("{path}: {error}"));
        let set = store.read(b"k").unwrap().unwrap();
        assert_eq!(set.versions.len(), 1, "{path}");
        assert_eq!(set.versions[0].value.as_deref(), Some(*value), "{path}");
        assert_eq!(store.corrupt_sets_replaced(), count as u64 + 1, "{path}");
        // Anti-entropy is told the old bytes' digest, so its trees drop them.
        assert_eq!(
            *seen.0.lock().unwrap(),
            vec![Some(crate::antientropy::digest(garbage))],
            "{path}"
        );
    }
}

#[test]
fn every_write_keeps_its_digest_beside_the_set_and_older_records_are_hashed() {
    use crate::antientropy::{digest, wide_digest};
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path());
    // Without an observer nothing is hashed and nothing kept; reads hash the value.
    store
        .write_local(b"plain", &VectorClock::new(), Some(b"v".to_vec()), "n1", 1)
        .unwrap();
    let stored = store.db.get(b"plain").unwrap().unwrap();
    assert!(stored.meta.is_empty());
    assert_eq!(
        store.read_digest(b"plain").unwrap(),
        Some(wide_digest(&stored.value))
    );
    struct Seen(Mutex<Vec<(Option<u64>, u64)>>);
    impl WriteObserver for Seen {
        fn stored(&self, _key: &[u8], old: Option<u64>, new: u64) {
            self.0.lock().unwrap().push((old, new));
        }
    }
    let seen = Arc::new(Seen(Mutex::new(Vec::new())));
    store.set_observer(seen.clone()).unwrap();
    // A record from a store without an observer (or an older build): its digest is hashed
    // from the bytes, for reads and for the next write's old digest.
    let legacy = stored.value.clone();
    let source = tempfile::tempdir().unwrap();
    let other = open(source.path());
    let replicated = |value: &[u8], coordinator: &str, now: u64| {
        let version = other
            .write_local(
                b"src",
                &VectorClock::new(),
                Some(value.to_vec()),
                coordinator,
                now,
            )
            .unwrap();
        SiblingSet::single(version)
    };
    let newer = replicated(b"put", "n2", 50);
    let concurrent = replicated(b"sibling", "n3", 60);
    type Write<'a> = Box<dyn Fn(&LocalStore) -> Result<()> + 'a>;
    let writes: Vec<(&str, Write)> = vec![
        (
            "write_local",
            Box::new(|store| {
                store
                    .write_local(b"k", &VectorClock::new(), Some(b"a".to_vec()), "n1", 2)
                    .map(drop)
            }),
        ),
        (
            "write_local_deferred",
            Box::new(|store| {
                let context = store.read(b"k")?.unwrap_or_default().context();
                store.write_local_deferred(b"k", &context, Some(b"b".to_vec()), "n1", 3)?;
                store.commit()
            }),
        ),
        (
            "write_local_version_deferred",
            Box::new(|store| {
                let context = store.read(b"k")?.unwrap_or_default().context();
                store
                    .write_local_version_deferred(b"k", &context, Some(b"c".to_vec()), "n1", 4)
                    .map(drop)?;
                store.commit()
            }),
        ),
        (
            "apply_encoded, merged (a sibling)",
            Box::new(|store| store.apply_encoded(b"k", concurrent.encode(), true)),
        ),
        (
            "apply (read repair)",
            Box::new(|store| store.apply(b"k", &newer).map(drop)),
        ),
        (
            "merge_in (anti-entropy)",
            Box::new(|store| {
                store
                    .merge_in(b"k", &replicated(b"more", "n4", 70))
                    .map(drop)
            }),
        ),
        (
            "apply_encoded, replacing (a Put made with the stored context)",
            Box::new(|store| {
                let context = store.read(b"k")?.unwrap_or_default().context();
                let version = other.write_local(b"k2", &context, Some(b"z".to_vec()), "n5", 80)?;
                store.apply_encoded(b"k", SiblingSet::single(version).encode(), false)
            }),
        ),
    ];
    store.db.put_with_meta(b"k", &[], &legacy).unwrap();
    let mut previous = Some(digest(&legacy));
    for (path, write) in &writes {
        seen.0.lock().unwrap().clear();
        write(&store).unwrap_or_else(|error| panic!("{path}: {error}"));
        let stored = store.db.get(b"k").unwrap().unwrap();
        let wide = wide_digest(&stored.value);
        assert_eq!(stored.meta, digest_meta(wide), "{path}: metadata");
        assert_eq!(store.read_digest(b"k").unwrap(), Some(wide), "{path}");
        assert_eq!(
            store.read_encoded_with_digest(b"k").unwrap(),
            Some((stored.value.clone(), wide)),
            "{path}"
        );
        assert_eq!(
            *seen.0.lock().unwrap(),
            vec![(previous, wide as u64)],
            "{path}: observer"
        );
        previous = Some(wide as u64);
    }
    // Reads take the kept digest without hashing: a record whose metadata says otherwise
    // (never written by the store) is answered from the metadata.
    store
        .db
        .put_with_meta(b"odd", &digest_meta(42), &legacy)
        .unwrap();
    assert_eq!(store.read_digest(b"odd").unwrap(), Some(42));
    // Other metadata is not a digest: hashed.
    store.db.put_with_meta(b"other", &[2; 17], &legacy).unwrap();
    assert_eq!(
        store.read_digest(b"other").unwrap(),
        Some(wide_digest(&legacy))
    );
}

#[test]
fn remove_if_unchanged_drops_only_the_bytes_it_was_shown() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path());
    let empty = VectorClock::new();
    store
        .write_local(b"k", &empty, Some(b"a".to_vec()), "n1", 1)
        .unwrap();
    store
        .write_local(b"other", &empty, Some(b"o".to_vec()), "n1", 2)
        .unwrap();
    let seen = store.scan_raw(b"k", 1).unwrap().remove(0).1;
    // Written since the scan: kept.
    let set = store.read(b"k").unwrap().unwrap();
    store
        .write_local(b"k", &set.context(), Some(b"b".to_vec()), "n1", 3)
        .unwrap();
    assert!(!store.remove_if_unchanged(b"k", &seen, || true).unwrap());
    let now = store.scan_raw(b"k", 1).unwrap().remove(0).1;
    assert_ne!(now, seen);
    // The same bytes, but the caller's condition no longer holds: kept.
    assert!(!store.remove_if_unchanged(b"k", &now, || false).unwrap());
    assert!(store.read(b"k").unwrap().is_some());
    // Unchanged: dropped, for reads and scans alike; other keys untouched.
    assert!(store.remove_if_unchanged(b"k", &now, || true).unwrap());
    assert!(store.read(b"k").unwrap().is_none());
    let keys: Vec<Vec<u8>> = store
        .scan_raw(b"", 10)
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(keys, vec![b"other".to_vec()]);
    // Absent: nothing to drop.
    assert!(!store.remove_if_unchanged(b"k", &now, || true).unwrap());
    // Dropped for good once committed: still gone after a reopen.
    store.commit().unwrap();
    drop(store);
    let store = open(directory.path());
    assert!(store.read(b"k").unwrap().is_none());
    assert!(store.read(b"other").unwrap().is_some());
}
