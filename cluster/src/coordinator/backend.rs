//! The client-facing side: the coordinator as the server's [`Backend`].

use super::*;

impl Backend for Coordinator {
    fn read(
        &self,
        key: Vec<u8>,
        consistency: Consistency,
    ) -> BoxFuture<'_, Result<Option<SiblingSet>>> {
        Box::pin(self.coordinate_read(key, consistency))
    }

    fn read_for_get(
        &self,
        key: Vec<u8>,
        consistency: Consistency,
    ) -> BoxFuture<'_, Result<ReadReply>> {
        Box::pin(self.coordinate_read_raw(key, consistency))
    }

    fn read_many_for_get(
        &self,
        keys: Vec<Vec<u8>>,
        consistency: Consistency,
    ) -> BoxFuture<'_, Vec<Result<ReadReply>>> {
        Box::pin(self.read_many_raw(keys, consistency))
    }

    fn write_many(
        &self,
        writes: Vec<(Vec<u8>, Vec<u8>)>,
        consistency: Consistency,
    ) -> BoxFuture<'_, Vec<Result<()>>> {
        Box::pin(self.write_many(writes, consistency))
    }

    fn write(
        &self,
        key: Vec<u8>,
        context: VectorClock,
        value: Option<Vec<u8>>,
        consistency: Consistency,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.coordinate_write(key, context, value, consistency))
    }

    fn scan(
        &self,
        start: Vec<u8>,
        end: Option<Vec<u8>>,
        limit: usize,
        consistency: Consistency,
    ) -> BoxFuture<'_, Result<ScanRows>> {
        Box::pin(self.coordinate_scan(start, end, limit, consistency))
    }

    fn check_consistency(&self, consistency: Consistency) -> Result<()> {
        let replicas = self.replication.total();
        if let Consistency::Counts { read, write } = consistency {
            for (side, count) in [(Side::Read, read), (Side::Write, write)] {
                if let Some(count) = count {
                    quorum::check_count(side, count as usize, replicas)?;
                }
            }
        }
        if consistency == Consistency::LocalQuorum {
            if let Replication::PerDatacenter(counts) = &self.replication {
                if counts.get(&*self.datacenter).copied().unwrap_or(0) == 0 {
                    return Err(Error::Command(format!(
                        "ERR LOCAL_QUORUM cannot be met: no replicas in datacenter {}",
                        self.datacenter
                    )));
                }
            }
        }
        Ok(())
    }

    fn value_bytes_max(&self) -> usize {
        self.store.value_bytes_max()
    }

    /// This node's own copies of the writes it coordinated were stored deferred (see
    /// `Coordinator::mint`): one log write for the connection's batch.
    fn commit(&self) -> Result<()> {
        self.store.commit()
    }

    fn concurrent_requests(&self) -> bool {
        true
    }

    fn engine_stats(&self) -> engine::Stats {
        self.store.stats()
    }

    fn corrupt_sets_replaced(&self) -> u64 {
        self.store.corrupt_sets_replaced()
    }

    fn repair_info(&self) -> Vec<(&'static str, u64)> {
        Coordinator::repair_info(self)
    }

    fn members(&self) -> Option<Vec<String>> {
        let state = self.scaling.snapshot();
        Some(self.membership.lines_with(|id| {
            state
                .member(id.as_str())
                .map(|member| member.datacenter.clone())
        }))
    }

    fn membership_info(&self) -> Vec<(&'static str, u64)> {
        self.membership.info()
    }

    fn antientropy_info(&self) -> Vec<(&'static str, u64)> {
        self.antientropy.info_fields()
    }

    fn antientropy_roots(&self) -> Result<Vec<String>> {
        self.antientropy.root_lines()
    }

    fn antientropy_run(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(self.antientropy.run_round())
    }

    /// One summary line, then one line per member. Fields after the first ones were added
    /// later, each as a `name value` pair at the end of its line so older readers keep
    /// working: `vnodes_per_weight` and `placement` (`3`, or `dc1=2,dc2=1` per datacenter)
    /// on the summary, `client ADDRESS` on each member line, `ring_version` (which ring change
    /// the members are from, see [`crate::scaling`]) on the summary. With them a client can build
    /// the same ring ([`Ring::new`](crate::ring::Ring::new)) and route each key to one of its replicas.
    fn scaling(&self, request: ScalingRequest) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            let leaving = request == ScalingRequest::Leave;
            let lines = self.scaling.execute(request).await?;
            if leaving {
                self.membership.leave();
            }
            Ok(lines)
        })
    }

    fn scaling_info(&self) -> Vec<(&'static str, u64)> {
        self.scaling.info()
    }

    fn topology(&self) -> Option<Vec<String>> {
        let state = self.scaling.snapshot();
        let ring = state.read_ring();
        let placement = match &self.replication {
            Replication::Total(count) => count.to_string(),
            Replication::PerDatacenter(counts) => counts
                .iter()
                .map(|(datacenter, count)| format!("{datacenter}={count}"))
                .collect::<Vec<_>>()
                .join(","),
        };
        let mut lines = vec![format!(
            "replication {} default_consistency {:?} members {} vnodes_per_weight {} placement {placement} ring_version {}",
            self.replication.total(),
            self.default_consistency,
            ring.members().len(),
            ring.vnodes_per_weight(),
            state.spec.version,
        )];
        for member in ring.members() {
            let marker = if member.id == self.node { " self" } else { "" };
            let client = state
                .member(member.id.as_str())
                .map_or_else(String::new, |m| format!(" client {}", m.client_address));
            lines.push(format!(
                "{} {} weight {}{marker}{client}",
                member.id, member.datacenter, member.weight
            ));
        }
        Some(lines)
    }
}
