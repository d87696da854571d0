//! Streaming the keys a node gains: the source's side ([`Scaling::serve_pull`]) and the
//! gainer's ([`Scaling::rebalance`]).

use std::sync::atomic::Ordering;

use super::{Phase, Scaling, STREAM_SCAN_KEYS};
use crate::protocol::peer::{PeerMessage, ScanRow};
use crate::ring::NodeId;
use crate::version::SiblingSet;
use crate::{Error, Result};

/// Attempts at one batch before a source is given up on.
const BATCH_ATTEMPTS: usize = 3;

/// What one node received from its sources.
#[derive(Default)]
struct Received {
    rows: u64,
    keys_new: u64,
    bytes: u64,
}

impl Scaling {
    /// A source's answer to `from`'s pull: the keys `from` gains among at most
    /// `scan_limit` (capped at [`STREAM_SCAN_KEYS`]) scanned from `cursor`.
    pub(super) async fn serve_pull(
        &self,
        from: &NodeId,
        version: u64,
        cursor: Vec<u8>,
        scan_limit: u32,
    ) -> Result<PeerMessage> {
        let state = self.snapshot();
        if state.spec.version != version {
            return Err(Error::Command(format!(
                "ERR stream pull for ring version {version}, this node is at {}",
                state.spec.version
            )));
        }
        let limit = scan_limit.clamp(1, STREAM_SCAN_KEYS) as usize;
        let (source, requester) = (self.node.clone(), from.clone());
        let replication = self.replication.clone();
        let (rows, next_cursor) = self
            .store
            .run(move |store| {
                let scanned = store.scan(&cursor, None, limit)?;
                let next_cursor = crate::store::next_page_start(&scanned, limit);
                let mut rows = Vec::new();
                for (key, set) in scanned {
                    if state.streams(&source, &requester, &key, &replication)? {
                        rows.push(ScanRow {
                            siblings: set.encode(),
                            key,
                        });
                    }
                }
                Ok((rows, next_cursor))
            })
            .await?;
        let bytes: usize = rows
            .iter()
            .map(|row| row.key.len() + row.siblings.len())
            .sum();
        let counters = &self.counters;
        counters.batches_served.fetch_add(1, Ordering::Relaxed);
        counters
            .rows_sent
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        counters
            .bytes_sent
            .fetch_add(bytes as u64, Ordering::Relaxed);
        Ok(PeerMessage::StreamBatch { rows, next_cursor })
    }

    /// Streams the keys this node gains at ring `version` from every other member of the
    /// current ring.
    pub(super) async fn rebalance(&self, version: u64) -> Result<PeerMessage> {
        let state = self.snapshot();
        if state.spec.version != version || state.spec.phase != Phase::Streaming {
            return Err(Error::Command(format!(
                "ERR rebalance for ring version {version}, this node is at {} ({})",
                state.spec.version,
                state.spec.phase.as_str()
            )));
        }
        let mut received = Received::default();
        let mut failures = Vec::new();
        for source in &state.spec.current {
            let source = NodeId::new(&source.id);
            if source == self.node {
                continue;
            }
            if let Err(error) = self.pull_from(&source, version, &mut received).await {
                failures.push(format!("{source}: {error}"));
            }
        }
        log::info!(
            "node {}: streamed {} rows ({} new keys, {} bytes) at ring version {version}{}",
            self.node,
            received.rows,
            received.keys_new,
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

    /// Pulls every batch `source` has for this node and folds the rows in.
    async fn pull_from(
        &self,
        source: &NodeId,
        version: u64,
        received: &mut Received,
    ) -> Result<()> {
        let transport = self.transport()?;
        let mut cursor = Some(Vec::new());
        while let Some(position) = cursor.take() {
            let mut attempt = 0;
            let (rows, next_cursor) = loop {
                attempt += 1;
                let message = PeerMessage::StreamPull {
                    version,
                    cursor: position.clone(),
                    scan_limit: STREAM_SCAN_KEYS,
                };
                match transport.call(source, message, self.request_timeout).await {
                    Ok(PeerMessage::StreamBatch { rows, next_cursor }) => {
                        break (rows, next_cursor)
                    }
                    Ok(PeerMessage::Error { message }) => return Err(Error::Command(message)),
                    Ok(other) => {
                        return Err(Error::PeerProtocol(format!(
                            "unexpected reply {} to StreamPull",
                            other.name()
                        )))
                    }
                    Err(error) if attempt >= BATCH_ATTEMPTS => return Err(error),
                    Err(_) => continue,
                }
            };
            let count = rows.len() as u64;
            let bytes: usize = rows
                .iter()
                .map(|row| row.key.len() + row.siblings.len())
                .sum();
            let keys_new = self.store.run(move |store| fold_rows(store, rows)).await?;
            received.rows += count;
            received.keys_new += keys_new;
            received.bytes += bytes as u64;
            let counters = &self.counters;
            counters.rows_received.fetch_add(count, Ordering::Relaxed);
            counters.keys_new.fetch_add(keys_new, Ordering::Relaxed);
            counters
                .bytes_received
                .fetch_add(bytes as u64, Ordering::Relaxed);
            cursor = next_cursor;
        }
        Ok(())
    }
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
