//! The read path: which replicas a read asks, and how their replies meet R.

use super::repair::{decode_from, decode_reply, RawTagged, Tagged};
use super::*;

impl Coordinator {
    pub(super) async fn coordinate_read(
        &self,
        key: Vec<u8>,
        consistency: Consistency,
    ) -> Result<Option<SiblingSet>> {
        let replicas = self.replicas(&key)?;
        let need = self.need(consistency, Side::Read, &replicas)?;
        let mut calls = Calls::new();
        let mut received = Vec::new();
        let mut local = None;
        let mut remote: Vec<(NodeId, String)> = Vec::with_capacity(replicas.len());
        for (node, datacenter) in replicas {
            if node == self.node {
                local = Some((node, datacenter));
            } else {
                remote.push((node, datacenter));
            }
        }
        // Replicas gossip holds Down last, then this node's datacenter's first (stable:
        // preference order within each group), so `quorum` neither waits out a dead replica
        // (a read asked it first and waited for its timeout while it was down) nor a WAN
        // round trip a local replica could save.
        // (A stable sort of a few replicas: no allocation, unlike a cached-key sort.)
        remote.sort_by_key(|(node, datacenter)| {
            (
                self.membership.is_down(node),
                *datacenter != self.datacenter,
            )
        });
        // `quorum`: ask the replicas that can meet the need (this node's own copy first,
        // then its datacenter's), keeping the others in reserve; `all`: ask every replica.
        let (asked, mut reserve) = match self.read_fanout {
            ReadFanout::All => (remote, Vec::new()),
            ReadFanout::Quorum => {
                let helps: Vec<bool> = {
                    let mut chosen: Vec<&str> = local.iter().map(|(_, dc)| dc.as_str()).collect();
                    remote
                        .iter()
                        .map(|(_, datacenter)| {
                            let helps = need.helped_by(&chosen, datacenter);
                            if helps {
                                chosen.push(datacenter);
                            }
                            helps
                        })
                        .collect()
                };
                let mut asked = Vec::with_capacity(remote.len());
                let mut reserve = Vec::new();
                for (replica, helps) in remote.into_iter().zip(helps) {
                    if helps {
                        asked.push(replica);
                    } else {
                        reserve.push(replica);
                    }
                }
                (asked, reserve)
            }
        };
        // Remote requests leave first, so the local read overlaps their round trips.
        let mut expected = asked.len();
        for (node, datacenter) in asked {
            calls.push(self.get_call(node, datacenter, key.clone()));
        }
        if let Some((node, datacenter)) = local {
            expected += 1;
            let key = key.clone();
            let result = self.blocking(move |store| store.read_encoded(&key)).await;
            received.push(Answer {
                result: result.map(|set| (node.clone(), set)),
                node,
                datacenter,
            });
        }
        reserve.reverse();
        let mut ask_more = |calls: &mut Calls<RawTagged>, count: usize| {
            let mut sent = 0;
            while sent < count {
                let Some((node, datacenter)) = reserve.pop() else {
                    break;
                };
                calls.push(self.get_call(node, datacenter, key.clone()));
                sent += 1;
            }
            sent
        };
        let replies = self
            .gather(
                &mut calls,
                received,
                expected,
                &need,
                "read replies",
                false,
                Some(&mut ask_more),
            )
            .await?;
        // Replies byte for byte the same (the common case): one decode, nothing to merge,
        // and no repair unless a reply still to come differs.
        if replies.windows(2).all(|pair| pair[0].1 == pair[1].1) {
            let merged = match replies.first() {
                Some((node, Some(bytes))) => Some(decode_from(node, bytes)?),
                _ => None,
            };
            if calls.len() > 0 {
                let decoded: Vec<Tagged> = replies
                    .into_iter()
                    .map(|(node, raw)| (node, raw.map(|_| merged.clone().unwrap_or_default())))
                    .collect();
                self.repair_after_read(key, decoded, calls);
            }
            return Ok(merged);
        }
        let replies = replies
            .into_iter()
            .map(decode_reply)
            .collect::<Result<Vec<Tagged>>>()?;
        let mut merged: Option<SiblingSet> = None;
        for (_, reply) in &replies {
            match (&mut merged, reply) {
                (_, None) => {}
                (None, Some(reply)) => merged = Some(reply.clone()),
                // Replicas that agree need no merge.
                (Some(set), Some(reply)) if set == reply => {}
                (Some(set), Some(reply)) => set.merge(reply, &self.versions)?,
            }
        }
        self.repair_after_read(key, replies, calls);
        Ok(merged)
    }
}
