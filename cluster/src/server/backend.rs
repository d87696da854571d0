//! The seam between the client server and the data: [`Backend`]. Today [`LocalBackend`]
//! serves every key from this node's [`LocalStore`] (N=1); the quorum coordinator will
//! implement the same trait and fan requests out to the key's replicas.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::net::{Clock, SystemClock};
use crate::protocol::Consistency;
use crate::store::LocalStore;
use crate::version::{SiblingSet, VectorClock};
use crate::{Error, Result};

/// A boxed, sendable future: lets the server hold any backend as `Arc<dyn Backend>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Keys with their stored versions, in key order (a scan's result).
pub type ScanRows = Vec<(Vec<u8>, SiblingSet)>;

/// What a plain GET reads: the key's versions decoded, or, when the replicas that answered
/// agreed byte for byte, the stored set as they sent it (a GET then takes the newest value
/// straight from the bytes, see [`crate::version::codec::latest_value`], instead of
/// decoding every version and copying its value).
#[derive(Debug, Clone, PartialEq)]
pub enum ReadReply {
    /// The versions (tombstones included); `None` if never written.
    Decoded(Option<SiblingSet>),
    /// The stored set's encoding, as every replica that answered holds it; `None` if none
    /// of them has the key.
    Encoded(Option<Vec<u8>>),
}

/// Polls every future until all are done; their outputs in the order given.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut remaining = futures.len();
    std::future::poll_fn(|cx| {
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                if let std::task::Poll::Ready(value) = future.as_mut().poll(cx) {
                    *output = Some(value);
                    remaining -= 1;
                }
            }
        }
        if remaining == 0 {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// What the server asks of the data layer. Keys and values are raw bytes; `consistency` is
/// the request's or the connection's level, already resolved against the node's default.
pub trait Backend: Send + Sync + 'static {
    /// The key's versions (tombstones included); `None` if never written.
    fn read(
        &self,
        key: Vec<u8>,
        consistency: Consistency,
    ) -> BoxFuture<'_, Result<Option<SiblingSet>>>;

    /// [`Backend::read`] for a plain GET, which shows only the newest value: a backend may
    /// answer with the stored bytes instead of decoding them. The default decodes.
    fn read_for_get(
        &self,
        key: Vec<u8>,
        consistency: Consistency,
    ) -> BoxFuture<'_, Result<ReadReply>> {
        Box::pin(async move { Ok(ReadReply::Decoded(self.read(key, consistency).await?)) })
    }

    /// [`Backend::read_for_get`] of several keys (the plain GETs of one pipelined batch),
    /// results in the order of `keys`. The default reads them one by one, concurrently; a
    /// backend that can share work between them overrides it.
    fn read_many_for_get(
        &self,
        keys: Vec<Vec<u8>>,
        consistency: Consistency,
    ) -> BoxFuture<'_, Vec<Result<ReadReply>>> {
        Box::pin(join_all(
            keys.into_iter()
                .map(|key| self.read_for_get(key, consistency))
                .collect(),
        ))
    }

    /// A client write superseding what `context` covers; `None` writes a tombstone.
    fn write(
        &self,
        key: Vec<u8>,
        context: VectorClock,
        value: Option<Vec<u8>>,
        consistency: Consistency,
    ) -> BoxFuture<'_, Result<()>>;

    /// Blind writes (`SET`: no context) of several keys, the SETs of one pipelined batch,
    /// results in order. The default writes them one by one, concurrently; a backend that
    /// can share work between them overrides it.
    fn write_many(
        &self,
        writes: Vec<(Vec<u8>, Vec<u8>)>,
        consistency: Consistency,
    ) -> BoxFuture<'_, Vec<Result<()>>> {
        Box::pin(join_all(
            writes
                .into_iter()
                .map(|(key, value)| self.write(key, VectorClock::new(), Some(value), consistency))
                .collect(),
        ))
    }

    /// Up to `limit` keys in `[start, end)` with their versions.
    fn scan(
        &self,
        start: Vec<u8>,
        end: Option<Vec<u8>>,
        limit: usize,
        consistency: Consistency,
    ) -> BoxFuture<'_, Result<ScanRows>>;

    /// Whether `consistency` can be met at all (a connection's `CONSISTENCY` is checked
    /// when set, not at its first request).
    fn check_consistency(&self, consistency: Consistency) -> Result<()>;

    /// The largest value a client may write, in bytes.
    fn value_bytes_max(&self) -> usize;

    /// Makes every write this backend acknowledged as done, but deferred, durable per the
    /// commit-log policy (see [`LocalStore::write_local_deferred`]). A connection calls it
    /// after executing a batch and before sending its replies, so a pipelined batch of
    /// writes costs one log write. Backends that do not defer have nothing to do.
    fn commit(&self) -> Result<()> {
        Ok(())
    }

    /// [`Backend::commit`] for the event loop: a backend whose commit may wait for another
    /// thread's log write waits without blocking the thread. The default runs `commit`.
    fn commit_async(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.commit() })
    }

    /// Whether a connection gains from executing the GETs and SETs of a pipelined batch
    /// concurrently (a coordinator waiting for replicas does; a local store answering
    /// inline does not).
    fn concurrent_requests(&self) -> bool {
        false
    }

    /// The local backend, when its GETs and SETs complete without waiting (see
    /// [`LocalBackend::get_inline`]): a connection then executes them in place, with no
    /// future per request. `None` (the default) for every other backend.
    fn inline_local(&self) -> Option<&LocalBackend> {
        None
    }

    /// The local engine's counters, for INFO.
    fn engine_stats(&self) -> engine::Stats;

    /// Stored sets that did not decode and were replaced by a write (INFO
    /// `corrupt_sets_replaced`; see [`crate::store`]).
    fn corrupt_sets_replaced(&self) -> u64;

    /// Hinted-handoff and read-repair counters for INFO's `# Repair` section (`hints_*`,
    /// `read_repairs*`); none on a single node.
    fn repair_info(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// The cluster as this node serves it, one line per fact (`CLUSTER.TOPOLOGY`), or
    /// `None` when the node serves alone.
    fn topology(&self) -> Option<Vec<String>> {
        None
    }

    /// The gossip membership table, one line per member (`CLUSTER.MEMBERS`), or `None`
    /// when the node serves alone.
    fn members(&self) -> Option<Vec<String>> {
        None
    }

    /// INFO's `# Membership` fields; none on a single node.
    fn membership_info(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// A ring change (`CLUSTER.JOIN`, `CLUSTER.LEAVE`, `CLUSTER.REMOVE`, see
    /// [`crate::scaling`]) or `CLUSTER.CLEANUP`; the reply's lines say what moved or was
    /// dropped. Refused on a single node.
    fn scaling(
        &self,
        _request: crate::scaling::ScalingRequest,
    ) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async {
            Err(crate::Error::Command(
                "ERR this node serves alone: it has no ring to change or clean up".into(),
            ))
        })
    }

    /// INFO's `# Scaling` fields; none on a single node.
    fn scaling_info(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
    /// INFO's `# AntiEntropy` fields; none on a single node.
    fn antientropy_info(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// `ANTIENTROPY.ROOTS`: this node's Merkle roots, one line per range.
    fn antientropy_roots(&self) -> Result<Vec<String>> {
        Err(Error::Command(
            "ERR this node serves alone: it has no replicas to compare with".into(),
        ))
    }

    /// `ANTIENTROPY.RUN`: one anti-entropy round now; a summary line per peer.
    fn antientropy_run(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async {
            Err(Error::Command(
                "ERR this node serves alone: it has no replicas to compare with".into(),
            ))
        })
    }
}

/// Every key on this node alone: one replica, so any named level is met by it and explicit
/// counts above 1 are refused.
pub struct LocalBackend {
    store: Arc<LocalStore>,
    node_id: String,
    clock: Arc<dyn Clock>,
}

impl LocalBackend {
    /// Serves `store` as coordinator `node_id`, timestamping writes with the system clock.
    pub fn new(store: Arc<LocalStore>, node_id: impl Into<String>) -> Self {
        LocalBackend {
            store,
            node_id: node_id.into(),
            clock: Arc::new(SystemClock::new()),
        }
    }

    /// The store, for closing it at shutdown.
    pub fn store(&self) -> &Arc<LocalStore> {
        &self.store
    }

    /// GET executed in place: appends the reply (the value a plain GET shows, or a null
    /// bulk) to `output`, copying the value once, from the store into the reply. Only for
    /// a store whose calls do not block ([`Backend::inline_local`]).
    pub fn get_inline(
        &self,
        key: &[u8],
        consistency: Consistency,
        output: &mut Vec<u8>,
    ) -> Result<()> {
        check_single_replica(consistency)?;
        self.store.read_latest(key, |value| match value {
            Some(value) => crate::protocol::resp::write_bulk(output, value),
            None => crate::protocol::resp::write_null_bulk(output),
        })
    }

    /// SET executed in place: a context-free write whose log record is deferred to the
    /// connection's commit ([`Backend::commit_async`]), as [`Backend::write`] does.
    pub fn set_inline(&self, key: &[u8], value: Vec<u8>, consistency: Consistency) -> Result<()> {
        check_single_replica(consistency)?;
        let now_ms = self.clock.now_ms();
        self.store.write_local_deferred(
            key,
            &VectorClock::new(),
            Some(value),
            &self.node_id,
            now_ms,
        )
    }

    /// Runs a store call; see [`LocalStore::run`] for where it runs and why.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&LocalStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.store.run(call).await
    }
}

/// The one replica a single node has: `R n`/`W n` above it cannot be met.
pub fn check_single_replica(consistency: Consistency) -> Result<()> {
    if let Consistency::Counts { read, write } = consistency {
        for (side, count) in [("R", read), ("W", write)] {
            match count {
                Some(0) => {
                    return Err(Error::Command(format!("ERR {side} 0: at least 1 replica must answer")))
                }
                Some(needed) if needed > 1 => {
                    return Err(Error::Command(format!(
                        "ERR consistency {side} {needed} cannot be met: needed {needed} replicas, available 1 (single node, N=1)"
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

impl Backend for LocalBackend {
    fn read(
        &self,
        key: Vec<u8>,
        consistency: Consistency,
    ) -> BoxFuture<'_, Result<Option<SiblingSet>>> {
        Box::pin(async move {
            check_single_replica(consistency)?;
            self.blocking(move |store| store.read(&key)).await
        })
    }

    fn write(
        &self,
        key: Vec<u8>,
        context: VectorClock,
        value: Option<Vec<u8>>,
        consistency: Consistency,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            check_single_replica(consistency)?;
            let node_id = self.node_id.clone();
            let now_ms = self.clock.now_ms();
            self.blocking(move |store| {
                if store.defers_commits() {
                    store.write_local_deferred(&key, &context, value, &node_id, now_ms)
                } else {
                    store
                        .write_local(&key, &context, value, &node_id, now_ms)
                        .map(drop)
                }
            })
            .await
        })
    }

    fn scan(
        &self,
        start: Vec<u8>,
        end: Option<Vec<u8>>,
        limit: usize,
        consistency: Consistency,
    ) -> BoxFuture<'_, Result<ScanRows>> {
        Box::pin(async move {
            check_single_replica(consistency)?;
            self.blocking(move |store| store.scan(&start, end.as_deref(), limit))
                .await
        })
    }

    fn check_consistency(&self, consistency: Consistency) -> Result<()> {
        check_single_replica(consistency)
    }

    fn commit(&self) -> Result<()> {
        self.store.commit()
    }

    /// Group commit across connections, as Redis writes its AOF once per event-loop
    /// iteration for every client: a connection with unwritten records first yields, so
    /// that the other connections this thread has ready execute their batches and queue
    /// their records too; then the first of them to resume writes them all with one
    /// `write`, and the rest find theirs written. A connection whose records another
    /// thread is writing waits for it as a task, without blocking its thread.
    ///
    /// A connection with nothing to commit (GETs) yields too: Redis executes the commands
    /// of every ready client before it writes any reply, and so, with this, does a
    /// connection thread. Replies written back to back find redis-benchmark still awake
    /// from the first; written one per batch between executions, each found it asleep
    /// and paid for waking it (`sock_def_readable`, 15% of a solo node's samples under
    /// GET -P 16). Measured with `ROW_CACHE_MB=160 ROUNDS=3 REQUESTS=500000
    /// scripts/kvnode-side-by-side.sh`: GET -P 16 645-682k -> 767-791k requests/s, 1.42-1.54
    /// -> 1.24-1.30 CPU us per request.
    fn commit_async(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let ticket = self
                .store
                .defers_commits()
                .then(|| self.store.commit_ticket());
            // Tokio runs a yielded task after the I/O driver's next poll, so every
            // connection with input ready by then has executed its batch first.
            tokio::task::yield_now().await;
            match ticket {
                // `always`: every write waited for its own (grouped) sync before returning.
                None => Ok(()),
                Some(ticket) => {
                    std::future::poll_fn(|context| self.store.poll_commit(ticket, context.waker()))
                        .await
                }
            }
        })
    }

    fn value_bytes_max(&self) -> usize {
        self.store.value_bytes_max()
    }

    fn inline_local(&self) -> Option<&LocalBackend> {
        // A lazily synced log: reads and deferred writes return in microseconds.
        self.store.defers_commits().then_some(self)
    }

    fn engine_stats(&self) -> engine::Stats {
        self.store.stats()
    }

    fn corrupt_sets_replaced(&self) -> u64 {
        self.store.corrupt_sets_replaced()
    }
}
