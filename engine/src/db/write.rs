//! The write path's internals: applying operations (log record, then memtable), waiting
//! while both memtables are full, and freezing the active memtable for a flush.

use super::*;

impl Inner {
    pub(super) fn write(&self, operations: &[OperationRef<'_>]) -> Result<()> {
        self.write_with(operations, false)
    }

    /// Writes `operations`; with `defer` the log record is only queued (see
    /// [`Db::put_with_meta_deferred`]).
    pub(super) fn write_with(&self, operations: &[OperationRef<'_>], defer: bool) -> Result<()> {
        let payload = self
            .wal
            .as_ref()
            .map(|_| batch::encode_operations(operations.iter().copied()));
        self.write_applying(operations.len(), |first_seq, memtable| {
            if let (Some(wal), Some(payload)) = (&self.wal, &payload) {
                if defer {
                    wal.append_deferred(first_seq, payload)?;
                } else {
                    wal.append(first_seq, payload)?;
                }
            }
            for (index, (kind, key, meta, value)) in operations.iter().enumerate() {
                memtable.insert(key, first_seq + index as u64, *kind, meta, value);
            }
            Ok(())
        })
    }

    /// Takes `operation_count` sequence numbers and runs `apply` with the first and the
    /// active memtable, inside the write gate: `apply` logs the operations (or queues their
    /// record, for deferred writes), then inserts them.
    pub(super) fn write_applying(
        &self,
        operation_count: usize,
        apply: impl FnOnce(SequenceNumber, &Memtable) -> Result<()>,
    ) -> Result<()> {
        self.check_healthy()?;
        self.stall_while_memtables_full()?;
        let active = {
            let _gate = self.write_gate.read();
            let active = Arc::clone(&self.state.read().active);
            let first_seq = self
                .next_seq
                .fetch_add(operation_count as u64, Ordering::SeqCst);
            apply(first_seq, &active)?;
            active
        };
        if self.is_full(&active) {
            self.maybe_freeze()?;
        }
        Ok(())
    }

    /// Waits while the active memtable is full and the previous one is still flushing:
    /// the bound on memtable memory.
    pub(super) fn stall_while_memtables_full(&self) -> Result<()> {
        let full = |state: &ReadState| state.frozen.is_some() && self.is_full(&state.active);
        if !full(&self.read_state()) {
            return Ok(());
        }
        let started = Instant::now();
        self.counters.write_stalls.fetch_add(1, Ordering::Relaxed);
        let mut guard = self.flush_done_lock.lock();
        while full(&self.read_state()) {
            self.check_healthy()?;
            // The timeout only guards against a missed wake-up; the flusher notifies.
            self.flush_done
                .wait_for(&mut guard, Duration::from_millis(50));
        }
        drop(guard);
        let waited = started.elapsed().as_micros() as u64;
        self.counters
            .write_stall_micros
            .fetch_add(waited, Ordering::Relaxed);
        // The flush that just ended leaves a full active memtable to be frozen.
        self.maybe_freeze()
    }

    /// Whether `memtable` is due for a flush: its live data reached `memtable_size_bytes`,
    /// or (with a commit log) the log written for it reached `wal.max_unflushed_bytes`.
    pub(super) fn is_full(&self, memtable: &Memtable) -> bool {
        memtable.size_bytes() >= self.options.memtable_size_bytes
            || (self.wal.is_some()
                && memtable.logged_bytes() >= self.options.wal_unflushed_bytes_max())
    }

    /// Freezes the active memtable if it is full and no flush is in progress.
    pub(super) fn maybe_freeze(&self) -> Result<()> {
        self.freeze(false)
    }

    /// Freezes the active memtable when `force` or full, if no flush is in progress and it
    /// holds anything.
    pub(super) fn freeze(&self, force: bool) -> Result<()> {
        let _gate = self.write_gate.write();
        let state = self.read_state();
        let full = self.is_full(&state.active);
        if state.frozen.is_some() || state.active.is_empty() || !(force || full) {
            return Ok(());
        }
        let next_segment = match &self.wal {
            Some(wal) => wal.rotate()?,
            None => 0,
        };
        *self.frozen_log_segment.lock() = next_segment;
        // Rebuild from the state as it is now, not the snapshot above: a compaction may
        // have replaced tables meanwhile. The active memtable cannot have changed, since
        // only a freeze changes it and the write gate is ours.
        let mut current = self.state.write();
        assert!(Arc::ptr_eq(&current.active, &state.active) && current.frozen.is_none());
        *current = Arc::new(ReadState {
            active: Arc::new(Memtable::new()),
            frozen: Some(Arc::clone(&current.active)),
            tables: current.tables.clone(),
        });
        drop(current);
        self.wake_background();
        Ok(())
    }

    pub(super) fn wait_for_frozen_flush(&self) -> Result<()> {
        let mut guard = self.flush_done_lock.lock();
        while self.read_state().frozen.is_some() {
            self.check_healthy()?;
            self.flush_done
                .wait_for(&mut guard, Duration::from_millis(50));
        }
        self.check_healthy()
    }
}
