//! The reply side: replies completing the requests in flight, in order per connection, and
//! how each completed (or failed) operation is recorded.

use super::*;

impl Worker {
    /// Reads whatever replies have arrived and completes their operations; returns whether
    /// any did.
    pub(super) fn read_available(&mut self) -> Result<bool> {
        let mut completed_any = false;
        for index in 0..self.connections.len() {
            if self.in_flight[index].is_empty() {
                continue;
            }
            match self.read_connection(index) {
                Ok(completed) => completed_any |= completed,
                Err(error @ Error::Connection { .. }) => {
                    self.connection_failed(index, error)?;
                    completed_any = true;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(completed_any)
    }

    /// Completes what replies of connection `index` have arrived; returns whether any did.
    pub(super) fn read_connection(&mut self, index: usize) -> Result<bool> {
        let mut completed_any = false;
        {
            let mut filled = false;
            while let Some(front) = self.in_flight[index].front() {
                let classify: fn(&Reply<'_>) -> Outcome = match front.step {
                    Step::Read | Step::ReadModifyWriteRead { .. } => read_outcome,
                    Step::Scan => scan_outcome,
                    Step::Update | Step::Insert { .. } | Step::ReadModifyWriteUpdate { .. } => {
                        write_outcome
                    }
                };
                let observes = matches!(front.tracked, Some((_, None)));
                let reply = if observes {
                    let offset = self.stamp_offset;
                    self.connections[index]
                        .next_reply(|reply| read_outcome_observed(reply, offset))?
                } else {
                    self.connections[index]
                        .next_reply(classify)?
                        .map(|outcome| (outcome, None))
                };
                match reply {
                    Some((outcome, observed)) => {
                        let now = self.clock.now_micros();
                        self.track(index, outcome, observed, now);
                        self.complete(index, outcome, now)?;
                        completed_any = true;
                    }
                    None if filled => break,
                    None => {
                        if self.connections[index].try_fill()? == 0 {
                            break;
                        }
                        filled = true;
                    }
                }
            }
        }
        Ok(completed_any)
    }

    /// Staleness: ends the write or classifies the read of the connection's oldest request.
    pub(super) fn track(
        &mut self,
        connection: usize,
        outcome: Outcome,
        observed: Option<Option<Observed>>,
        now_micros: u64,
    ) {
        let Some(staleness) = &self.shared.staleness else {
            return;
        };
        let Some(pending) = self.in_flight[connection].front_mut() else {
            return;
        };
        let Some((key, stamp)) = pending.tracked.take() else {
            return;
        };
        match stamp {
            Some(stamp) => {
                staleness
                    .tracker
                    .write_ended(key.as_bytes(), &stamp, now_micros, outcome.is_ok())
            }
            None => {
                // A failed read returned nothing to classify.
                if let Some(observed) = observed {
                    let versions: &[Observed] = match &observed {
                        Some(version) => std::slice::from_ref(version),
                        None => &[],
                    };
                    let class = staleness.tracker.classify_read(
                        key.as_bytes(),
                        versions,
                        pending.step_start_micros,
                    );
                    self.staleness_stats
                        .record_at(&class, pending.step_start_micros);
                }
            }
        }
    }

    pub(super) fn complete(
        &mut self,
        connection: usize,
        outcome: Outcome,
        now_micros: u64,
    ) -> Result<()> {
        let pending = self.in_flight[connection]
            .pop_front()
            .expect("a reply completes a request in flight");
        let service = now_micros.saturating_sub(pending.step_start_micros);
        let intended = pending
            .intended_micros
            .map(|start| now_micros.saturating_sub(start));
        match pending.step {
            Step::Read => self.recorder.record_ended_at(
                now_micros,
                OperationKind::Read,
                outcome,
                service,
                intended,
            ),
            Step::Update => self.recorder.record_ended_at(
                now_micros,
                OperationKind::Update,
                outcome,
                service,
                intended,
            ),
            Step::Scan => self.recorder.record_ended_at(
                now_micros,
                OperationKind::Scan,
                outcome,
                service,
                intended,
            ),
            Step::Insert {
                key_number,
                acknowledge,
            } => {
                self.recorder.record_ended_at(
                    now_micros,
                    OperationKind::Insert,
                    outcome,
                    service,
                    intended,
                );
                if acknowledge {
                    // YCSB acknowledges whether or not the insert succeeded.
                    self.workload.acknowledge_insert(key_number)?;
                }
            }
            Step::ReadModifyWriteRead { key } => {
                self.recorder.record_ended_at(
                    now_micros,
                    OperationKind::Read,
                    outcome,
                    service,
                    intended,
                );
                let tracked = self.push_set(connection, &key, now_micros);
                self.in_flight[connection].push_back(Pending {
                    step: Step::ReadModifyWriteUpdate {
                        read_outcome: outcome,
                    },
                    intended_micros: pending.intended_micros,
                    operation_start_micros: pending.operation_start_micros,
                    step_start_micros: now_micros,
                    tracked,
                });
            }
            Step::ReadModifyWriteUpdate { read_outcome } => {
                self.recorder.record_ended_at(
                    now_micros,
                    OperationKind::Update,
                    outcome,
                    service,
                    intended,
                );
                let whole = if read_outcome.is_ok() {
                    outcome
                } else {
                    read_outcome
                };
                let whole_service = now_micros.saturating_sub(pending.operation_start_micros);
                self.recorder.record_ended_at(
                    now_micros,
                    OperationKind::ReadModifyWrite,
                    whole,
                    whole_service,
                    intended,
                );
            }
        }
        Ok(())
    }

    /// After a connection failure: every request in flight is an error, every insert is
    /// acknowledged (as YCSB does for failed inserts) so other clients' key choosers go on.
    pub(super) fn fail_in_flight(&mut self) {
        let now = self.clock.now_micros();
        for index in 0..self.in_flight.len() {
            self.fail_queue(index, now);
        }
        if let Some(held) = self.held.take() {
            if held.operation == Operation::Insert && self.phase == Phase::Run {
                let _ = self.workload.acknowledge_insert(held.key_number);
            }
        }
    }

    /// Every request in flight on connection `index` is an error.
    pub(super) fn fail_queue(&mut self, index: usize, now: u64) {
        {
            for pending in self.in_flight[index].drain(..) {
                if let (Some(staleness), Some((key, Some(stamp)))) =
                    (&self.shared.staleness, &pending.tracked)
                {
                    staleness
                        .tracker
                        .write_ended(key.as_bytes(), stamp, now, false);
                }
                let service = now.saturating_sub(pending.step_start_micros);
                let intended = pending
                    .intended_micros
                    .map(|start| now.saturating_sub(start));
                let kind = match pending.step {
                    Step::Read => OperationKind::Read,
                    Step::Update => OperationKind::Update,
                    Step::Scan => OperationKind::Scan,
                    Step::Insert {
                        key_number,
                        acknowledge,
                    } => {
                        if acknowledge {
                            let _ = self.workload.acknowledge_insert(key_number);
                        }
                        OperationKind::Insert
                    }
                    // As a reply would have: the failed step, then the whole operation.
                    Step::ReadModifyWriteRead { .. } | Step::ReadModifyWriteUpdate { .. } => {
                        let step = match pending.step {
                            Step::ReadModifyWriteRead { .. } => OperationKind::Read,
                            _ => OperationKind::Update,
                        };
                        self.recorder
                            .record_ended_at(now, step, Outcome::Error, service, intended);
                        let whole = now.saturating_sub(pending.operation_start_micros);
                        self.recorder.record_ended_at(
                            now,
                            OperationKind::ReadModifyWrite,
                            Outcome::Error,
                            whole,
                            intended,
                        );
                        continue;
                    }
                };
                self.recorder
                    .record_ended_at(now, kind, Outcome::Error, service, intended);
            }
        }
    }
}
