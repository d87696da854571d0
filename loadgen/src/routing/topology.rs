//! The cluster as a node describes it (`CLUSTER.TOPOLOGY`), read into a [`Topology`] that
//! rebuilds the node's ring, so a client computes every key's replicas itself.
//!
//! Reply format (an array of bulk strings; `name value` pairs after the first words, read
//! in any order, unknown ones ignored so the node may add more):
//!
//! ```text
//! replication 3 default_consistency Quorum members 4 vnodes_per_weight 256 placement dc1=2,dc2=1
//! n1 dc1 weight 1 self client 127.0.9.1:7379
//! n2 dc1 weight 1 client 127.0.9.2:7379
//! ...
//! ```
//!
//! `placement` is the replication setting: a total (`3`) or per-datacenter counts;
//! `ring_version` (newer nodes) says which ring change the members are from.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use cluster::protocol::resp::{decode_reply, encode, RespValue};
use cluster::protocol::Limits;
use cluster::ring::{Member, NodeId, Replication, Ring};

use crate::{Error, Result};

/// Bound on connecting to a node and on each read of its reply.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyMember {
    /// Its node id.
    pub id: String,
    /// Its datacenter.
    pub datacenter: String,
    /// Its ring weight.
    pub weight: u32,
    /// Where its clients connect, when the node reported it.
    pub client_address: Option<SocketAddr>,
}

/// The cluster's members, replication and ring.
#[derive(Debug, Clone)]
pub struct Topology {
    members: Vec<TopologyMember>,
    replication: Replication,
    ring: Ring,
    /// Which ring change the members are from (`ring_version` on the summary line; 0 from
    /// a node that does not say).
    ring_version: u64,
}

impl Topology {
    /// A topology from its parts (members in any order).
    pub fn new(
        members: Vec<TopologyMember>,
        vnodes_per_weight: u32,
        replication: Replication,
    ) -> Result<Topology> {
        let ring_members = members.iter().map(|member| {
            Member::new(member.id.as_str(), member.datacenter.as_str()).with_weight(member.weight)
        });
        let ring = Ring::new(ring_members, vnodes_per_weight)
            .map_err(|error| malformed(format!("cannot build the ring: {error}")))?;
        // Placement refuses impossible replication itself; check once here so routing
        // never fails per key.
        ring.preference_list(b"", &replication)
            .map_err(|error| malformed(format!("placement {replication:?}: {error}")))?;
        Ok(Topology {
            members,
            replication,
            ring,
            ring_version: 0,
        })
    }

    /// Reads the lines of a `CLUSTER.TOPOLOGY` reply.
    pub fn parse(lines: &[String]) -> Result<Topology> {
        let (summary, member_lines) = lines
            .split_first()
            .ok_or_else(|| malformed("empty reply".into()))?;
        let fields = pairs(summary.split_whitespace());
        let field = |name: &str| {
            fields.get(name).copied().ok_or_else(|| {
                malformed(format!(
                    "the summary line has no {name} (a kvnode older than token-aware routing?): {summary:?}"
                ))
            })
        };
        let vnodes_per_weight: u32 = number(field("vnodes_per_weight")?, "vnodes_per_weight")?;
        let replication = placement(field("placement")?)?;
        let count: usize = number(field("members")?, "members")?;
        if count != member_lines.len() {
            return Err(malformed(format!(
                "says {count} members but lists {}",
                member_lines.len()
            )));
        }
        let members = member_lines
            .iter()
            .map(|line| member(line))
            .collect::<Result<Vec<_>>>()?;
        let ring_version = match fields.get("ring_version") {
            Some(text) => number(text, "ring_version")?,
            None => 0,
        };
        let mut topology = Topology::new(members, vnodes_per_weight, replication)?;
        topology.ring_version = ring_version;
        Ok(topology)
    }

    /// The members, in the order the node listed them.
    pub fn members(&self) -> &[TopologyMember] {
        &self.members
    }

    /// Which ring change the members are from (0 if the node did not say).
    pub fn ring_version(&self) -> u64 {
        self.ring_version
    }

    /// The replication setting.
    pub fn replication(&self) -> &Replication {
        &self.replication
    }

    /// The ring, as the nodes build it.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The key's replicas, coordinator-first order.
    pub fn replicas(&self, key: &[u8]) -> Vec<NodeId> {
        // Checked at construction: placement succeeds for any key on this ring.
        self.ring
            .preference_list(key, &self.replication)
            .unwrap_or_default()
    }

    /// The member whose client address is `address`.
    pub fn member_at(&self, address: SocketAddr) -> Option<&TopologyMember> {
        self.members
            .iter()
            .find(|member| member.client_address == Some(address))
    }
}

/// Asks the node at `address` for `CLUSTER.TOPOLOGY` and builds the ring from the reply.
pub fn fetch_topology(address: SocketAddr) -> Result<Topology> {
    let fail = |detail: String| Error::Topology {
        address: address.to_string(),
        detail,
    };
    let lines = match call(address, &[b"CLUSTER.TOPOLOGY"])? {
        RespValue::Array(Some(elements)) => elements
            .into_iter()
            .map(|element| match element {
                RespValue::BulkString(Some(bytes)) => {
                    String::from_utf8(bytes).map_err(|_| fail("a line is not UTF-8".into()))
                }
                other => Err(fail(format!("expected bulk strings, got {other:?}"))),
            })
            .collect::<Result<Vec<_>>>()?,
        RespValue::Error(text) => return Err(fail(text)),
        other => return Err(fail(format!("expected an array, got {other:?}"))),
    };
    Topology::parse(&lines).map_err(|error| match error {
        Error::Topology { detail, .. } => fail(detail),
        other => other,
    })
}

/// Sends one command to `address` on a fresh connection and returns the decoded reply
/// (a RESP error reply is returned as [`RespValue::Error`], not as an `Err`).
pub fn call(address: SocketAddr, arguments: &[&[u8]]) -> Result<RespValue> {
    let io = |what: &str, source: std::io::Error| Error::Io {
        context: format!("{what} {address}"),
        source,
    };
    let mut stream = TcpStream::connect_timeout(&address, CALL_TIMEOUT)
        .map_err(|source| io("connecting to", source))?;
    stream
        .set_read_timeout(Some(CALL_TIMEOUT))
        .map_err(|source| io("setting a read timeout on", source))?;
    let request = RespValue::array(arguments.iter().map(|a| RespValue::bulk(*a)).collect());
    let mut bytes = Vec::new();
    encode(&request, &mut bytes);
    stream
        .write_all(&bytes)
        .map_err(|source| io("writing to", source))?;
    let limits = Limits::default();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let read = stream
            .read(&mut chunk)
            .map_err(|source| io("reading from", source))?;
        if read == 0 {
            return Err(io("reading from", std::io::ErrorKind::UnexpectedEof.into()));
        }
        buffer.extend_from_slice(&chunk[..read]);
        match decode_reply(&buffer, &limits) {
            Ok(Some((value, _))) => return Ok(value),
            Ok(None) => continue,
            Err(error) => {
                return Err(Error::Topology {
                    address: address.to_string(),
                    detail: format!("undecodable reply: {error}"),
                })
            }
        }
    }
}

/// `name value name value ...` into a map (a trailing lone word is ignored).
fn pairs<'a>(mut words: impl Iterator<Item = &'a str>) -> BTreeMap<&'a str, &'a str> {
    let mut fields = BTreeMap::new();
    while let (Some(name), Some(value)) = (words.next(), words.next()) {
        fields.insert(name, value);
    }
    fields
}

/// `n1 dc1 weight 1 [self] [client ADDRESS]`, extra pairs ignored.
fn member(line: &str) -> Result<TopologyMember> {
    let mut words = line.split_whitespace();
    let (Some(id), Some(datacenter)) = (words.next(), words.next()) else {
        return Err(malformed(format!(
            "member line {line:?} lacks id and datacenter"
        )));
    };
    let rest: Vec<&str> = words.filter(|word| *word != "self").collect();
    let fields = pairs(rest.into_iter());
    let weight = match fields.get("weight") {
        Some(text) => number(text, "weight")?,
        None => 1,
    };
    let client_address = fields
        .get("client")
        .map(|text| {
            text.parse()
                .map_err(|_| malformed(format!("member {id}: bad client address {text:?}")))
        })
        .transpose()?;
    Ok(TopologyMember {
        id: id.to_string(),
        datacenter: datacenter.to_string(),
        weight,
        client_address,
    })
}

/// `3` or `dc1=2,dc2=1`.
fn placement(text: &str) -> Result<Replication> {
    if !text.contains('=') {
        return Ok(Replication::Total(number(text, "placement")?));
    }
    let mut counts = BTreeMap::new();
    for part in text.split(',') {
        let (datacenter, count) = part
            .split_once('=')
            .ok_or_else(|| malformed(format!("placement {text:?}: {part:?} is not dc=count")))?;
        counts.insert(datacenter.to_string(), number(count, "placement")?);
    }
    Ok(Replication::PerDatacenter(counts))
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T> {
    text.parse()
        .map_err(|_| malformed(format!("{what} {text:?} is not a number")))
}

fn malformed(detail: String) -> Error {
    Error::Topology {
        address: "reply".into(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn parses_the_node_reply_and_rebuilds_its_ring() {
        let topology = Topology::parse(&lines(
            "replication 3 default_consistency Quorum members 3 vnodes_per_weight 16 placement dc1=2,dc2=1\n\
             n1 dc1 weight 1 self client 127.0.9.1:7379\n\
             n2 dc1 weight 2 client 127.0.9.2:7379\n\
             n3 dc2 weight 1 client 127.0.9.3:7379",
        ))
        .unwrap();
        assert_eq!(topology.members().len(), 3);
        assert_eq!(topology.members()[1].weight, 2);
        assert_eq!(topology.ring().vnodes_per_weight(), 16);
        assert_eq!(topology.ring().token_count(), 64);
        let n3: SocketAddr = "127.0.9.3:7379".parse().unwrap();
        assert_eq!(topology.member_at(n3).unwrap().id, "n3");
        for key in [&b"a"[..], b"b", b"user1234"] {
            let replicas = topology.replicas(key);
            assert_eq!(replicas.len(), 3);
            assert!(replicas.iter().any(|id| id.as_str() == "n3"));
        }
        let total = Topology::parse(&lines(
            "replication 1 default_consistency One members 1 vnodes_per_weight 4 placement 1\nn1 dc1 weight 1 self",
        ))
        .unwrap();
        assert_eq!(total.replication(), &Replication::Total(1));
        assert_eq!(total.members()[0].client_address, None);
    }

    #[test]
    fn refuses_replies_it_cannot_route_by() {
        for (reply, expected) in [
            ("", "empty reply"),
            (
                "replication 3 default_consistency Quorum members 1\nn1 dc1 weight 1 self",
                "no vnodes_per_weight",
            ),
            (
                "members 2 vnodes_per_weight 4 placement 1\nn1 dc1 weight 1",
                "says 2 members but lists 1",
            ),
            (
                "members 1 vnodes_per_weight 4 placement 2\nn1 dc1 weight 1",
                "placement",
            ),
            (
                "members 1 vnodes_per_weight 4 placement 1\nn1 dc1 weight 1 client nowhere",
                "bad client address",
            ),
        ] {
            let error = Topology::parse(&lines(reply)).unwrap_err().to_string();
            assert!(error.contains(expected), "{reply:?}: {error}");
        }
    }
}
