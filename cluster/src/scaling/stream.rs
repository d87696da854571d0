//! Streaming the keys a node gains: the source's side ([`Scaling::serve_pull_digests`],
//! [`Scaling::serve_fetch`], and [`Scaling::serve_pull`] for gainers of earlier releases)
//! and the gainer's ([`Scaling::rebalance`]).
//!
//! The gainer pulls all its sources at once, taking them in ring order: the first sends the
//! set of every gained key it replicates; each later one sends the set only of keys no
//! source before it replicates, and for the others the digest of its copy
//! ([`crate::antientropy::wide_digest`], 16 bytes instead of the set). The gainer compares
//! each digest with its own copy's, once the sources before have gone past that key
//! (`Progress`), and fetches the sets that differ or that it lacks (a write an earlier
//! source missed, a source that failed part way): the replicas together still reach it
//! with every acknowledged write, but a key the sources agree on crosses the network once,
//! not once per replica.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Phase, RingState, Scaling, StreamRole, STREAM_SCAN_KEYS};
use crate::protocol::peer::{PeerMessage, ScanRow};
use crate::ring::NodeId;
use crate::version::SiblingSet;
use crate::{Error, Result};

/// A pull's batch: sets, digests (key and digest), and the next cursor.
type StreamedBatch = (Vec<ScanRow>, Vec<(Vec<u8>, u128)>, Option<Vec<u8>>);

/// Attempts at one batch before a source is given up on.
const BATCH_ATTEMPTS: usize = 3;

/// What one node received from its sources.
#[derive(Default)]
struct Received {
    /// Sets received, fetched ones included.
    rows: u64,
    /// Keys this node did not hold before.
    keys_new: u64,
    /// Digests received in place of sets.
    digests: u64,
    /// Sets fetched because a digest differed from this node's copy (or it had none).
    fetched: u64,
    /// Bytes of keys, sets and digests received.
    bytes: u64,
}

impl Received {
    fn add(&mut self, other: &Received) {
        self.rows += other.rows;
        self.keys_new += other.keys_new;
        self.digests += other.digests;
        self.fetched += other.fetched;
        self.bytes += other.bytes;
    }
}

/// How far each source of one rebalance has got. Sources scan in key order, so source
/// `i`'s cursor says every key before it that `i` sends has been folded in here; `None`
/// once `i` finished or failed. A later source checks its digests of keys up to `k` only
/// when every source before it is past `k`: the set of a key comes from the first of its
/// replicas in ring order, and checking the digest before that set is here would fetch it
/// a second time.
pub(super) struct Progress {
    cursors: std::sync::Mutex<Vec<Option<Vec<u8>>>>,
    changed: tokio::sync::Notify,
}

impl Progress {
    pub(super) fn new(sources: usize) -> Progress {
        Progress {
            cursors: std::sync::Mutex::new(vec![Some(Vec::new()); sources]),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Source `index` has folded in every key before `cursor` (`None`: all it will).
    pub(super) fn advance(&self, index: usize, cursor: Option<Vec<u8>>) {
        self.cursors.lock().unwrap_or_else(|p| p.into_inner())[index] = cursor;
        self.changed.notify_waiters();
    }

    /// Waits until every source before `index` is past `key` or done. The first source
    /// never waits and each waits only on earlier ones, so every wait ends (a source's
    /// calls are bounded by the request timeout).
    pub(super) async fn wait_past(&self, index: usize, key: &[u8]) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so an advance between the two is not missed.
            notified.as_mut().enable();
            let past = self.cursors.lock().unwrap_or_else(|p| p.into_inner())[..index]
                .iter()
                .all(|cursor| cursor.as_deref().is_none_or(|cursor| cursor > key));
            if past {
                return;
            }
            notified.await;
        }
    }
}

impl Scaling {
    /// A source's answer to `from`'s pull (a gainer of an earlier release): the keys
    /// `from` gains among at most `scan_limit` (capped at [`STREAM_SCAN_KEYS`]) scanned
    /// from `cursor`, every one as its set.
    pub(super) async fn serve_pull(
        &self,
        from: &NodeId,
        version: u64,
        cursor: Vec<u8>,
        scan_limit: u32,
    ) -> Result<PeerMessage> {
        // With no source pulled before, every key comes as its set.
        let (rows, _, next_cursor) = self
            .scan_for(from, version, cursor, scan_limit, Vec::new())
            .await?;
        Ok(PeerMessage::StreamBatch { rows, next_cursor })
    }

    /// A source's answer to `from`'s digest pull: the keys `from` gains among at most
    /// `scan_limit` (capped at [`STREAM_SCAN_KEYS`]) scanned from `cursor`, each as its
    /// stored set or, when one of `pulled` replicates it, as its digest
    /// ([`RingState::stream_role`]).
    pub(super) async fn serve_pull_digests(
        &self,
        from: &NodeId,
        version: u64,
        cursor: Vec<u8>,
        scan_limit: u32,
        pulled: Vec<String>,
    ) -> Result<PeerMessage> {
        let (rows, digests, next_cursor) = self
            .scan_for(from, version, cursor, scan_limit, pulled)
            .await?;
        Ok(PeerMessage::StreamDigestBatch {
            rows,
            digests,
            next_cursor,
        })
    }

    /// One batch of a pull: the sets and digests of the keys `from` gains among those
    /// scanned, and the next cursor; counted as served.
    async fn scan_for(
        &self,
        from: &NodeId,
        version: u64,
        cursor: Vec<u8>,
        scan_limit: u32,
        pulled: Vec<String>,
    ) -> Result<StreamedBatch> {
        let state = self.state_at(version, "stream pull")?;
        let limit = scan_limit.clamp(1, STREAM_SCAN_KEYS) as usize;
        let (source, requester) = (self.node.clone(), from.clone());
        let replication = self.replication.clone();
        let pulled: Vec<NodeId> = pulled.iter().map(NodeId::new).collect();
        let batch: StreamedBatch = self
            .store
            .run(move |store| {
                // The stored bytes as they are: a set is sent without decoding it, and a
                // digest is taken of exactly what the requester's copy is compared with.
                let scanned = store.scan_raw(&cursor, limit)?;
                let next_cursor = crate::store::next_page_start(&scanned, limit);
                let (mut rows, mut digests) = (Vec::new(), Vec::new());
                for (key, bytes) in scanned {
                    match state.stream_role(&source, &requester, &key, &replication, &pulled)? {
                        None => {}
                        Some(StreamRole::Set) => rows.push(ScanRow {
                            key,
                            siblings: bytes,
                        }),
                        Some(StreamRole::Digest) => {
                            digests.push((key, crate::antientropy::wide_digest(&bytes)))
                        }
                    }
                }
                Ok((rows, digests, next_cursor))
            })
            .await?;
        self.count_served(&batch.0, &batch.1);
        Ok(batch)
    }

    /// A source's answer to a fetch after a digest pull: the sets of those of `keys` that
    /// `from` gains and this node holds.
    pub(super) async fn serve_fetch(
        &self,
        from: &NodeId,
        version: u64,
        keys: Vec<Vec<u8>>,
    ) -> Result<PeerMessage> {
        let state = self.state_at(version, "stream fetch")?;
        if keys.len() > STREAM_SCAN_KEYS as usize {
            return Err(Error::Command(format!(
                "ERR stream fetch of {} keys, at most {STREAM_SCAN_KEYS}",
                keys.len()
            )));
        }
        let (source, requester) = (self.node.clone(), from.clone());
        let replication = self.replication.clone();
        let rows = self
            .store
            .run(move |store| {
                let mut rows = Vec::new();
                for key in keys {
                    if !state.streams(&source, &requester, &key, &replication)? {
                        continue;
                    }
                    if let Some(siblings) = store.read_encoded(&key)? {
                        rows.push(ScanRow { key, siblings });
                    }
                }
                Ok(rows)
            })
            .await?;
        self.count_served(&rows, &[]);
        Ok(PeerMessage::StreamBatch {
            rows,
            next_cursor: None,
        })
    }

    /// The ring this node serves with, if it is at `version` (a stream request for another
    /// version is refused: the keys it gains depend on the change).
    fn state_at(&self, version: u64, what: &str) -> Result<Arc<RingState>> {
        let state = self.snapshot();
        if state.spec.version != version {
            return Err(Error::Command(format!(
                "ERR {what} for ring version {version}, this node is at {}",
                state.spec.version
            )));
        }
        Ok(state)
    }

    /// Counts one batch served: its rows and digests, and their bytes.
    fn count_served(&self, rows: &[ScanRow], digests: &[(Vec<u8>, u128)]) {
        let bytes = row_bytes(rows) + digest_bytes(digests);
        let counters = &self.counters;
        counters.batches_served.fetch_add(1, Ordering::Relaxed);
        counters
            .rows_sent
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        counters
            .digests_sent
            .fetch_add(digests.len() as u64, Ordering::Relaxed);
        counters.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Streams the keys this node gains at ring `version` from every other member of the
    /// current ring (see the module docs: sets from the first source that has each key,
    /// digests from the others).
    pub(super) async fn rebalance(&self, version: u64, skip: &[String]) -> Result<PeerMessage> {
        let state = self.snapshot();
        if state.spec.version != version || state.spec.phase != Phase::Streaming {
            return Err(Error::Command(format!(
                "ERR rebalance for ring version {version}, this node is at {} ({})",
                state.spec.version,
                state.spec.phase.as_str()
            )));
        }
        // Every source at once. Source `i` is told that the ones before it in ring order
        // send the sets of the keys they replicate (it sends digests of those), and checks
        // its digests only once those sources have gone past the keys (see `Progress`): a
        // key then comes whole from its first replica in that order, and a source that
        // failed leaves its keys to be fetched after the later ones' digests.
        let sources: Vec<NodeId> = state
            .spec
            .current
            .iter()
            .filter(|member| !skip.contains(&member.id))
            .map(|member| NodeId::new(&member.id))
            .filter(|id| *id != self.node)
            .collect();
        let progress = Progress::new(sources.len());
        let pulls = sources.iter().enumerate().map(|(index, source)| {
            let pulled: Vec<String> = sources[..index].iter().map(ToString::to_string).collect();
            let progress = &progress;
            async move {
                let mut received = Received::default();
                let result = self
                    .pull_from(index, source, version, &pulled, progress, &mut received)
                    .await;
                // Finished or failed, the sources after it need not wait for it any more.
                progress.advance(index, None);
                (source, result, received)
            }
        });
        let mut received = Received::default();
        let mut failures = Vec::new();
        for (source, result, from_source) in crate::server::join_all(pulls.collect()).await {
            received.add(&from_source);
            if let Err(error) = result {
                failures.push(format!("{source}: {error}"));
            }
        }
        log::info!(
            "node {}: streamed {} rows ({} new keys, {} digests, {} sets fetched after a \
             digest, {} bytes) at ring version {version}{}",
            self.node,
            received.rows,
            received.keys_new,
            received.digests,
            received.fetched,
            received.bytes,
            if failures.is_empty() {
                String::new()
            } else {
                format!("; failed sources: {}", failures.join("; "))
            }
        );
        Ok(PeerMessage::RebalanceReply {
            rows: received.rows,
            keys_new: received.keys_new,
            bytes: received.bytes,
            failures: failures.join("; "),
        })
    }

    /// Pulls every batch `source` (the `index`th of the rebalance's sources) has for this
    /// node, folds the sets in, and, once the sources before it have gone past a batch's
    /// keys, fetches the sets whose digest differs from this node's copy.
    async fn pull_from(
        &self,
        index: usize,
        source: &NodeId,
        version: u64,
        pulled: &[String],
        progress: &Progress,
        received: &mut Received,
    ) -> Result<()> {
        let mut cursor = Some(Vec::new());
        while let Some(position) = cursor.take() {
            let message = PeerMessage::StreamPullDigests {
                version,
                cursor: position,
                scan_limit: STREAM_SCAN_KEYS,
                pulled: pulled.to_vec(),
            };
            let (rows, digests, next_cursor) = match self.call_source(source, message).await? {
                PeerMessage::StreamDigestBatch {
                    rows,
                    digests,
                    next_cursor,
                } => (rows, digests, next_cursor),
                other => return Err(unexpected_reply(other, "StreamPullDigests")),
            };
            self.fold(rows, received).await?;
            if let Some((last, _)) = digests.last() {
                progress.wait_past(index, last).await;
            }
            let digest_count = digests.len() as u64;
            let bytes = digest_bytes(&digests);
            let stale = self
                .store
                .run(move |store| stale_keys(store, digests))
                .await?;
            received.digests += digest_count;
            received.bytes += bytes;
            self.counters
                .digests_received
                .fetch_add(digest_count, Ordering::Relaxed);
            self.counters
                .bytes_received
                .fetch_add(bytes, Ordering::Relaxed);
            if !stale.is_empty() {
                let fetch = PeerMessage::StreamFetch {
                    version,
                    keys: stale,
                };
                let rows = match self.call_source(source, fetch).await? {
                    PeerMessage::StreamBatch { rows, .. } => rows,
                    other => return Err(unexpected_reply(other, "StreamFetch")),
                };
                received.fetched += rows.len() as u64;
                self.counters
                    .rows_fetched
                    .fetch_add(rows.len() as u64, Ordering::Relaxed);
                self.fold(rows, received).await?;
            }
            progress.advance(index, next_cursor.clone());
            cursor = next_cursor;
        }
        Ok(())
    }

    /// One stream request to `source`, tried up to [`BATCH_ATTEMPTS`] times while the
    /// transport fails; a refusal (an `Error` reply) is returned at once.
    async fn call_source(&self, source: &NodeId, message: PeerMessage) -> Result<PeerMessage> {
        let transport = self.transport()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match transport
                .call(source, message.clone(), self.request_timeout)
                .await
            {
                Ok(PeerMessage::Error { message }) => return Err(Error::Command(message)),
                Ok(reply) => return Ok(reply),
                Err(error) if attempt >= BATCH_ATTEMPTS => return Err(error),
                Err(_) => continue,
            }
        }
    }

    /// Folds streamed sets into the store and counts them.
    async fn fold(&self, rows: Vec<ScanRow>, received: &mut Received) -> Result<()> {
        let count = rows.len() as u64;
        let bytes = row_bytes(&rows);
        let keys_new = self.store.run(move |store| fold_rows(store, rows)).await?;
        received.rows += count;
        received.keys_new += keys_new;
        received.bytes += bytes;
        let counters = &self.counters;
        counters.rows_received.fetch_add(count, Ordering::Relaxed);
        counters.keys_new.fetch_add(keys_new, Ordering::Relaxed);
        counters.bytes_received.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }
}

fn unexpected_reply(reply: PeerMessage, request: &str) -> Error {
    Error::PeerProtocol(format!("unexpected reply {} to {request}", reply.name()))
}

/// Bytes of streamed rows' keys and sets.
fn row_bytes(rows: &[ScanRow]) -> u64 {
    rows.iter()
        .map(|row| (row.key.len() + row.siblings.len()) as u64)
        .sum()
}

/// Bytes of streamed digests' keys and digests.
fn digest_bytes(digests: &[(Vec<u8>, u128)]) -> u64 {
    digests.iter().map(|(key, _)| key.len() as u64 + 16).sum()
}

/// The keys among `digests` whose stored set here has another digest, or that are not
/// stored here: the ones to fetch.
pub(super) fn stale_keys(
    store: &crate::store::LocalStore,
    digests: Vec<(Vec<u8>, u128)>,
) -> Result<Vec<Vec<u8>>> {
    let mut stale = Vec::new();
    for (key, digest) in digests {
        if store.read_digest(&key)? != Some(digest) {
            stale.push(key);
        }
    }
    Ok(stale)
}

/// Merges streamed rows into the store (one read per row); returns how many keys it did
/// not hold. A key
/// comes from each of its current replicas, mostly the same set each time: a row that
/// changes nothing is not written again (no log record, no memtable version).
pub(super) fn fold_rows(store: &crate::store::LocalStore, rows: Vec<ScanRow>) -> Result<u64> {
    let mut new = 0;
    for row in rows {
        let set = SiblingSet::decode(&row.siblings)?;
        let (was_new, _) = store.merge_in_noting_new(&row.key, &set)?;
        new += u64::from(was_new);
    }
    Ok(new)
}
