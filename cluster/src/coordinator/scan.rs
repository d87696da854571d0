//! Scans: every node is asked for the range (this node locally) and rows are merged by
//! key. See the module docs of [`super`] for the consistency a scan gives.

use std::collections::BTreeMap;

use super::calls::Calls;

use super::{unexpected, Answer, Coordinator, Datacenter, Need, Side};
use crate::protocol::peer::PeerMessage;
use crate::protocol::Consistency;
use crate::ring::NodeId;
use crate::server::ScanRows;
use crate::version::{SiblingSet, VersionConfig};
use crate::Result;

impl Coordinator {
    pub(super) async fn coordinate_scan(
        &self,
        start: Vec<u8>,
        end: Option<Vec<u8>>,
        limit: usize,
        consistency: Consistency,
    ) -> Result<ScanRows> {
        // A per-key need does not fit a scan: at most N - R nodes may fail.
        let replicas = self.replication.total();
        let sample: Vec<(NodeId, Datacenter)> = self.replicas(&start)?;
        let read = self.need(consistency, Side::Read, &sample)?.needed();
        let state = self.scaling.snapshot();
        let members = state.read_ring().members();
        let need = Need {
            total: members.len().saturating_sub(replicas) + read,
            per_datacenter: BTreeMap::new(),
        };
        let mut calls = Calls::new();
        let mut received = Vec::new();
        let limit_u32 = u32::try_from(limit).unwrap_or(u32::MAX);
        for member in members {
            if member.id == self.node {
                continue;
            }
            let message = PeerMessage::Scan {
                start: start.clone(),
                end: end.clone(),
                limit: limit_u32,
            };
            calls.push(self.call(
                member.id.clone(),
                Datacenter::from(member.datacenter.as_str()),
                message,
                expect_scan,
            ));
        }
        // The local page is read while the remote ones travel.
        if let Some(me) = state.read_ring().member(&self.node) {
            let (local_start, local_end) = (start.clone(), end.clone());
            received.push(Answer {
                node: me.id.clone(),
                datacenter: Datacenter::from(me.datacenter.as_str()),
                result: self
                    .blocking(move |store| store.scan(&local_start, local_end.as_deref(), limit))
                    .await,
            });
        }
        // Waits for every node (up to the timeout): a scan wants every copy it can get.
        let pages = self
            .gather(
                &mut calls,
                received,
                members.len(),
                &need,
                "scan replies (nodes)",
                true,
                None,
            )
            .await?;
        merge_pages(pages, limit, &self.versions)
    }
}

fn merge_pages(pages: Vec<ScanRows>, limit: usize, versions: &VersionConfig) -> Result<ScanRows> {
    let mut rows: BTreeMap<Vec<u8>, SiblingSet> = BTreeMap::new();
    for page in pages {
        for (key, set) in page {
            match rows.get_mut(&key) {
                Some(existing) => existing.merge(&set, versions)?,
                None => {
                    rows.insert(key, set);
                }
            }
        }
    }
    Ok(rows.into_iter().take(limit).collect())
}

fn expect_scan(reply: PeerMessage) -> Result<ScanRows> {
    match reply {
        PeerMessage::ScanReply { rows } => rows
            .into_iter()
            .map(|row| Ok((row.key, SiblingSet::decode(&row.siblings)?)))
            .collect(),
        other => Err(unexpected(other)),
    }
}
