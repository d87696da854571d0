//! One exchange: this node against one peer, over the ranges both replicate.
//!
//! 1. `Roots` for every shared range (batched): ranges whose roots are equal are done.
//! 2. For each differing range, walk down: ask for the hashes of the children (up to
//!    `levels_per_step` levels below) of the nodes found different, compare with the local
//!    tree, keep the differing ones, until the leaves. Work is O(differing buckets x depth).
//! 3. `Keys` for the differing buckets: the peer's keys there with the digests of their
//!    stored sets (a bounded scan per message, resumed until the end); this node scans its
//!    own store for the same buckets.
//! 4. Keys whose digests differ, or that only the peer has, are fetched (`Fetch`) and
//!    merged into the local store with the version rules ([`SiblingSet::merge`]: causally
//!    newer versions win, concurrent ones become siblings or the last write wins, as
//!    configured): a newer local version is never overwritten. Keys only this node has,
//!    and keys whose merge left them different from the peer's, are sent (`Push`) and
//!    merged there the same way. Both sides then hold the same sets: equal digests, equal
//!    roots.
//!
//! Every message is bounded (`keys_per_message_max`, `hashes_per_message_max`), and the
//! key phases stop when the round's byte budget is spent: the next round resumes.
//!
//! [`SiblingSet::merge`]: crate::version::SiblingSet::merge

use std::collections::BTreeMap;
use std::sync::Arc;

use super::responder::{scan_buckets, BucketFilter};
use super::service::AntiEntropy;
use super::trees::{RangeTree, Trees};
use super::wire::{AeMessage, RangeBuckets, Row};
use crate::net::transport::PeerTransport;
use crate::protocol::peer::{PeerMessage, HEADER_SIZE_BYTES};
use crate::ring::NodeId;
use crate::version::SiblingSet;
use crate::{Error, Result};

/// What one exchange found and did.
#[derive(Debug, Default, Clone)]
pub struct ExchangeReport {
    pub ranges_compared: u64,
    pub ranges_differing: u64,
    /// Ranges the peer has no tree for (another ring view or depth).
    pub ranges_unknown: u64,
    pub buckets_differing: u64,
    pub hashes_compared: u64,
    pub keys_compared: u64,
    pub keys_fetched: u64,
    pub keys_pushed: u64,
    /// Local keys changed by merging fetched sets.
    pub keys_repaired: u64,
    /// Keys the peer changed when merging the pushed sets.
    pub keys_repaired_remotely: u64,
    /// Bytes sent and received, frame headers included.
    pub bytes: u64,
    /// Whether the byte budget ran out before the end.
    pub budget_exhausted: bool,
    /// The ring version of the peer's trees, as its first reply gave it: when it is not
    /// this node's, nothing was compared.
    pub peer_ring_version: Option<u64>,
}

impl ExchangeReport {
    /// One line for `ANTIENTROPY.RUN`.
    pub fn describe(&self) -> String {
        format!(
            "ranges_compared {} ranges_differing {} buckets_differing {} keys_compared {} \
             keys_fetched {} keys_pushed {} keys_repaired {} keys_repaired_remotely {} bytes {}{}",
            self.ranges_compared,
            self.ranges_differing,
            self.buckets_differing,
            self.keys_compared,
            self.keys_fetched,
            self.keys_pushed,
            self.keys_repaired,
            self.keys_repaired_remotely,
            self.bytes,
            if self.budget_exhausted {
                " budget_exhausted"
            } else {
                ""
            }
        )
    }
}

struct Session<'a> {
    service: &'a Arc<AntiEntropy>,
    transport: &'a PeerTransport,
    peer: &'a NodeId,
    report: ExchangeReport,
    budget: &'a mut u64,
}

impl Session<'_> {
    async fn call(&mut self, request: AeMessage) -> Result<AeMessage> {
        let sent = request.encoded_len();
        self.service.stats().add_sent(sent);
        let reply = self
            .transport
            .call(
                self.peer,
                PeerMessage::AntiEntropy(request),
                self.service.timeout(),
            )
            .await?;
        match reply {
            PeerMessage::AntiEntropy(reply) => {
                let received = reply.encoded_len();
                self.service.stats().add_received(received);
                // Both payloads and both frame headers.
                let bytes = (sent + received + 2 * HEADER_SIZE_BYTES) as u64;
                self.report.bytes += bytes;
                *self.budget = self.budget.saturating_sub(bytes);
                Ok(reply)
            }
            PeerMessage::Error { message } => Err(Error::PeerProtocol(format!(
                "{} refused anti-entropy: {message}",
                self.peer
            ))),
            other => Err(unexpected(other.name())),
        }
    }

    fn out_of_budget(&mut self) -> bool {
        if *self.budget == 0 {
            self.report.budget_exhausted = true;
        }
        self.report.budget_exhausted
    }
}

fn unexpected(name: &str) -> Error {
    Error::PeerProtocol(format!("unexpected anti-entropy reply {name}"))
}

/// Runs one exchange with `peer`, spending at most `budget` bytes (decreased).
pub async fn exchange(
    service: &Arc<AntiEntropy>,
    trees: &Arc<Trees>,
    transport: &PeerTransport,
    peer: &NodeId,
    budget: &mut u64,
) -> Result<ExchangeReport> {
    let mut session = Session {
        service,
        transport,
        peer,
        report: ExchangeReport::default(),
        budget,
    };
    let shared: Vec<&RangeTree> = trees
        .ranges()
        .iter()
        .filter(|tree| tree.replicas.contains(peer))
        .collect();
    let differing = compare_roots(&mut session, trees, &shared).await?;
    if session
        .report
        .peer_ring_version
        .is_some_and(|version| version != trees.ring_version())
    {
        return Ok(session.report);
    }
    let mut wanted = Vec::new();
    for tree in differing {
        let buckets = walk(&mut session, trees.depth(), tree).await?;
        session.report.buckets_differing += buckets.len() as u64;
        if !buckets.is_empty() {
            wanted.push(RangeBuckets {
                range: tree.range,
                buckets,
            });
        }
    }
    if !wanted.is_empty() {
        repair_keys(&mut session, trees, wanted).await?;
    }
    Ok(session.report)
}

async fn compare_roots<'t>(
    session: &mut Session<'_>,
    trees: &Trees,
    shared: &[&'t RangeTree],
) -> Result<Vec<&'t RangeTree>> {
    let (depth, ring_version) = (trees.depth(), trees.ring_version());
    let mut differing = Vec::new();
    for chunk in shared.chunks(session.service.config().hashes_per_message_max) {
        let ranges = chunk.iter().map(|tree| tree.range).collect();
        let request = AeMessage::Roots {
            depth,
            ring_version,
            ranges,
        };
        let AeMessage::RootsReply {
            ring_version: theirs,
            roots,
        } = session.call(request).await?
        else {
            return Err(unexpected("to Roots"));
        };
        session.report.peer_ring_version = Some(theirs);
        if theirs != ring_version {
            return Ok(Vec::new());
        }
        if roots.len() != chunk.len() {
            return Err(unexpected("RootsReply of the wrong length"));
        }
        for (tree, root) in chunk.iter().zip(roots) {
            session.report.ranges_compared += 1;
            match root {
                None => session.report.ranges_unknown += 1,
                Some(root) if root != tree.lock().root() => {
                    session.report.ranges_differing += 1;
                    differing.push(*tree);
                }
                Some(_) => {}
            }
        }
    }
    Ok(differing)
}

/// The buckets of `tree` whose hashes differ from the peer's.
async fn walk(session: &mut Session<'_>, depth: u8, tree: &RangeTree) -> Result<Vec<u32>> {
    let config = session.service.config();
    let (step, chunk_size) = (config.levels_per_step, config.hashes_per_message_max);
    let mut level = 0u8;
    let mut frontier = vec![0u32];
    while level < depth && !frontier.is_empty() {
        let next = level.saturating_add(step).min(depth);
        let shift = next - level;
        let children: Vec<u32> = frontier
            .iter()
            .flat_map(|&node| (node << shift)..((node + 1) << shift))
            .collect();
        let mut differing = Vec::new();
        for chunk in children.chunks(chunk_size) {
            let request = AeMessage::Hashes {
                range: tree.range,
                depth,
                level: next,
                indices: chunk.to_vec(),
            };
            let AeMessage::HashesReply { hashes } = session.call(request).await? else {
                return Err(unexpected("to Hashes"));
            };
            let indices: Vec<usize> = chunk.iter().map(|&index| index as usize).collect();
            let local = tree
                .lock()
                .hashes_at(next, &indices)
                .ok_or_else(|| unexpected("hash index outside the local tree"))?;
            if hashes.len() != local.len() {
                return Err(unexpected("HashesReply of the wrong length"));
            }
            session.report.hashes_compared += chunk.len() as u64;
            differing.extend(
                chunk
                    .iter()
                    .zip(hashes.iter().zip(&local))
                    .filter(|(_, (remote, local))| remote != local)
                    .map(|(&index, _)| index),
            );
        }
        frontier = differing;
        level = next;
    }
    Ok(frontier)
}

/// Steps 3 and 4 of the module documentation for the buckets in `wanted`.
async fn repair_keys(
    session: &mut Session<'_>,
    trees: &Arc<Trees>,
    wanted: Vec<RangeBuckets>,
) -> Result<()> {
    let depth = trees.depth();
    let keys_max = session.service.config().keys_per_message_max;
    let mut remote: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut resume = Some(Vec::new());
    while let Some(resume_key) = resume.take() {
        if session.out_of_budget() {
            resume = Some(resume_key);
            break;
        }
        let request = AeMessage::Keys {
            depth,
            ranges: wanted.clone(),
            resume_key,
        };
        let AeMessage::KeysReply { keys, resume_key } = session.call(request).await? else {
            return Err(unexpected("to Keys"));
        };
        remote.extend(keys);
        resume = resume_key;
    }
    // Keys from `resume` on were not listed by the peer: leave them to the next round.
    let listed_until = resume;
    let (store, trees_for_scan) = (session.service.store_arc(), Arc::clone(trees));
    let filter = BucketFilter::new(depth, &wanted)?;
    let local = blocking(move || {
        let (keys, _) = scan_buckets(
            &store,
            &trees_for_scan,
            &filter,
            &[],
            usize::MAX,
            usize::MAX,
        )?;
        Ok(keys)
    })
    .await?;
    let local: BTreeMap<Vec<u8>, u64> = local
        .into_iter()
        .filter(|(key, _)| listed_until.as_ref().is_none_or(|until| key < until))
        .collect();
    session.report.keys_compared += remote.len() as u64;
    let to_fetch: Vec<Vec<u8>> = remote
        .iter()
        .filter(|(key, digest)| local.get(*key) != Some(digest))
        .map(|(key, _)| key.clone())
        .collect();
    let mut to_push: Vec<Vec<u8>> = local
        .keys()
        .filter(|key| !remote.contains_key(*key))
        .cloned()
        .collect();
    for batch in to_fetch.chunks(keys_max) {
        if session.out_of_budget() {
            break;
        }
        let request = AeMessage::Fetch {
            keys: batch.to_vec(),
        };
        let AeMessage::Rows { rows } = session.call(request).await? else {
            return Err(unexpected("to Fetch"));
        };
        session.report.keys_fetched += rows.len() as u64;
        let store = session.service.store_arc();
        let digests: Vec<Option<u64>> = rows
            .iter()
            .map(|(key, _)| remote.get(key).copied())
            .collect();
        let (repaired, differ) = blocking(move || merge_rows(&store, &rows, &digests)).await?;
        session.report.keys_repaired += repaired;
        to_push.extend(differ);
    }
    to_push.sort();
    to_push.dedup();
    for batch in to_push.chunks(keys_max) {
        if session.out_of_budget() {
            break;
        }
        let store = session.service.store_arc();
        let keys = batch.to_vec();
        let rows: Vec<Row> = blocking(move || {
            let mut rows = Vec::with_capacity(keys.len());
            for key in keys {
                if let Some(set) = store.read(&key)? {
                    rows.push((key, set.encode()));
                }
            }
            Ok(rows)
        })
        .await?;
        session.report.keys_pushed += rows.len() as u64;
        let AeMessage::PushReply { changed, .. } = session.call(AeMessage::Push { rows }).await?
        else {
            return Err(unexpected("to Push"));
        };
        session.report.keys_repaired_remotely += u64::from(changed);
    }
    Ok(())
}

/// Merges fetched rows into the store; returns how many changed it and the keys whose
/// merged set still differs from the peer's (`remote_digests`), to push back.
fn merge_rows(
    store: &crate::store::LocalStore,
    rows: &[Row],
    remote_digests: &[Option<u64>],
) -> Result<(u64, Vec<Vec<u8>>)> {
    let mut repaired = 0;
    let mut differ = Vec::new();
    for ((key, siblings), remote_digest) in rows.iter().zip(remote_digests) {
        if store.merge_in(key, &SiblingSet::decode(siblings)?)? {
            repaired += 1;
        }
        let merged = store.read(key)?.map(|set| super::digest(&set.encode()));
        if merged != *remote_digest {
            differ.push(key.clone());
        }
    }
    Ok((repaired, differ))
}

async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|error| Error::Stopped(format!("anti-entropy task failed: {error}")))?
}
