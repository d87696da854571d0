//! The read path: which replicas a read asks, and how their replies meet R.

use super::repair::{checked_reply, decode_from, decode_reply, RawTagged, Tagged};
use super::*;

/// A read's outcome before it is shaped for the client.
enum Read {
    /// Every reply was the same stored set (tagged with the first replica that sent it), or
    /// no replica had the key.
    Agreed(Option<(NodeId, Vec<u8>)>),
    /// The replies differed (or a late reply may still repair): decoded and merged.
    Decoded(Option<SiblingSet>),
}

impl Coordinator {
    pub(super) async fn coordinate_read(
        &self,
        key: Vec<u8>,
        consistency: Consistency,
    ) -> Result<Option<SiblingSet>> {
        match self.read_replies(key, consistency).await? {
            Read::Decoded(set) => Ok(set),
            Read::Agreed(None) => Ok(None),
            Read::Agreed(Some((node, bytes))) => decode_from(&node, &bytes).map(Some),
        }
    }

    /// The read for a plain GET: the agreeing replicas' stored bytes left undecoded (the
    /// GET takes the newest value straight from them).
    pub(super) async fn coordinate_read_raw(
        &self,
        key: Vec<u8>,
        consistency: Consistency,
    ) -> Result<ReadReply> {
        Ok(match self.read_replies(key, consistency).await? {
            Read::Decoded(set) => ReadReply::Decoded(set),
            Read::Agreed(bytes) => ReadReply::Encoded(bytes.map(|(_, bytes)| bytes)),
        })
    }

    /// The read: the replicas' stored bytes as they came when those that answered agree
    /// byte for byte and no repair waits on a later reply (the common case), the replies
    /// decoded and merged otherwise.
    async fn read_replies(&self, key: Vec<u8>, consistency: Consistency) -> Result<Read> {
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
                result: result.and_then(|set| checked_reply(node.clone(), set)),
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
        // Replies byte for byte the same (the common case): nothing to merge, and no repair
        // unless a reply still to come differs; undecoded unless such a reply can come.
        if replies.windows(2).all(|pair| pair[0].1 == pair[1].1) {
            if calls.len() == 0 {
                let first = replies.into_iter().next();
                return Ok(Read::Agreed(
                    first.and_then(|(node, bytes)| bytes.map(|bytes| (node, bytes))),
                ));
            }
            let merged = match replies.first() {
                Some((node, Some(bytes))) => Some(decode_from(node, bytes)?),
                _ => None,
            };
            let decoded: Vec<Tagged> = replies
                .into_iter()
                .map(|(node, raw)| (node, raw.map(|_| merged.clone().unwrap_or_default())))
                .collect();
            self.repair_after_read(key, decoded, calls);
            return Ok(Read::Decoded(merged));
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
        Ok(Read::Decoded(merged))
    }
}
