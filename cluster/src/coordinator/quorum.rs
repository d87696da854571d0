//! How many answers a request needs, from a consistency level and a key's replicas.
//!
//! - `ONE` = 1, `QUORUM` = N/2+1, `ALL` = N, `R n`/`W n` = n (N = the key's replicas).
//! - `LOCAL_QUORUM`: a majority of the key's replicas in the coordinator's datacenter, and
//!   only those answers count; a key with no replica there cannot be served at that level.
//! - `EACH_QUORUM`: a majority of the key's replicas in every datacenter holding one. Used
//!   the same way for reads and writes (Cassandra refuses it for reads; here a read at
//!   `EACH_QUORUM` simply waits for a majority everywhere).
//! - A `Counts` side left `None` takes that side of the node's default level.

use std::collections::BTreeMap;

use crate::protocol::Consistency;
use crate::{Error, Result};

/// Which side of a level applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// R.
    Read,
    /// W.
    Write,
}

/// The answers a request waits for: at least `total` in all, and at least the given count
/// from each named datacenter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    /// Answers needed from any replicas.
    pub total: usize,
    /// Answers needed per datacenter (only these answers count toward it).
    pub per_datacenter: BTreeMap<String, usize>,
}

fn majority(count: usize) -> usize {
    count / 2 + 1
}

impl Need {
    /// The need for `consistency` on a key whose replicas are in `replica_datacenters` (one
    /// entry per replica), coordinated from `local_datacenter`.
    pub fn new(
        consistency: Consistency,
        default: Consistency,
        side: Side,
        replica_datacenters: &[&str],
        local_datacenter: &str,
    ) -> Result<Need> {
        let replicas = replica_datacenters.len();
        // Counted only for the levels that use it: the common ones need no map of names.
        let per_datacenter_replicas = || {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for datacenter in replica_datacenters {
                *counts.entry((*datacenter).to_string()).or_default() += 1;
            }
            counts
        };
        let total = |total| Need {
            total,
            per_datacenter: BTreeMap::new(),
        };
        let need = match resolve(consistency, default, side) {
            Resolved::Count(count) => {
                check_count(side, count, replicas)?;
                total(count)
            }
            Resolved::Level(Consistency::One) => total(1),
            Resolved::Level(Consistency::All) => total(replicas),
            Resolved::Level(Consistency::LocalQuorum) => {
                let local = replica_datacenters
                    .iter()
                    .filter(|datacenter| **datacenter == local_datacenter)
                    .count();
                if local == 0 {
                    return Err(Error::Command(format!(
                        "ERR LOCAL_QUORUM cannot be met: the key has no replica in datacenter \
                         {local_datacenter}"
                    )));
                }
                Need {
                    total: 0,
                    per_datacenter: BTreeMap::from([(
                        local_datacenter.to_string(),
                        majority(local),
                    )]),
                }
            }
            Resolved::Level(Consistency::EachQuorum) => Need {
                total: 0,
                per_datacenter: per_datacenter_replicas()
                    .into_iter()
                    .map(|(datacenter, count)| (datacenter, majority(count)))
                    .collect(),
            },
            // QUORUM, and a default that is itself an incomplete `Counts`.
            Resolved::Level(_) => total(majority(replicas)),
        };
        Ok(need)
    }

    /// Whether the answers so far (one datacenter name per answer) meet the need.
    pub fn met<S: AsRef<str>>(&self, answered: &[S]) -> bool {
        answered.len() >= self.total
            && self.per_datacenter.iter().all(|(datacenter, &needed)| {
                answered
                    .iter()
                    .filter(|dc| dc.as_ref() == datacenter)
                    .count()
                    >= needed
            })
    }

    /// Whether one more answer from `datacenter` brings the answers `so_far` (one
    /// datacenter name per answer) closer to the need.
    pub fn helped_by<S: AsRef<str>>(&self, so_far: &[S], datacenter: &str) -> bool {
        if self.met(so_far) {
            return false;
        }
        if so_far.len() < self.total {
            return true;
        }
        self.per_datacenter.get(datacenter).is_some_and(|&needed| {
            so_far.iter().filter(|dc| dc.as_ref() == datacenter).count() < needed
        })
    }

    /// The error for a request that gathered only `answered` (their datacenters) of the
    /// `what` it needed; `failures` says what each replica that did not count answered.
    pub fn failed<S: AsRef<str>>(
        &self,
        what: &'static str,
        answered: &[S],
        failures: &[String],
    ) -> Error {
        Error::QuorumFailed {
            what,
            needed: self.needed(),
            got: self.got(answered),
            failures: if failures.is_empty() {
                "no other failures".to_string()
            } else {
                failures.join("; ")
            },
        }
    }

    /// The answers needed, for error messages.
    pub fn needed(&self) -> usize {
        self.total.max(self.per_datacenter.values().sum())
    }

    /// The answers that counted, for error messages.
    pub fn got<S: AsRef<str>>(&self, answered: &[S]) -> usize {
        if self.per_datacenter.is_empty() {
            return answered.len();
        }
        let counted: usize = self
            .per_datacenter
            .iter()
            .map(|(datacenter, &needed)| {
                answered
                    .iter()
                    .filter(|dc| dc.as_ref() == datacenter)
                    .count()
                    .min(needed)
            })
            .sum();
        counted.max(answered.len().min(self.total))
    }
}

enum Resolved {
    Count(usize),
    Level(Consistency),
}

fn resolve(consistency: Consistency, default: Consistency, side: Side) -> Resolved {
    match consistency {
        Consistency::Counts { read, write } => {
            let count = match side {
                Side::Read => read,
                Side::Write => write,
            };
            match count {
                Some(count) => Resolved::Count(count as usize),
                None if matches!(default, Consistency::Counts { .. }) => {
                    // The default has no count for this side either: a majority.
                    match resolve(default, Consistency::Quorum, side) {
                        Resolved::Count(count) => Resolved::Count(count),
                        Resolved::Level(_) => Resolved::Level(Consistency::Quorum),
                    }
                }
                None => resolve(default, Consistency::Quorum, side),
            }
        }
        level => Resolved::Level(level),
    }
}

/// Refuses an explicit count of 0 or above the replicas.
pub fn check_count(side: Side, count: usize, replicas: usize) -> Result<()> {
    let name = match side {
        Side::Read => "R",
        Side::Write => "W",
    };
    if count == 0 {
        return Err(Error::Command(format!(
            "ERR {name} 0: at least 1 replica must answer"
        )));
    }
    if count > replicas {
        return Err(Error::Command(format!(
            "ERR consistency {name} {count} cannot be met: needed {count} replicas, \
             available {replicas} (N={replicas})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(consistency: Consistency, side: Side, dcs: &[&str]) -> Result<Need> {
        Need::new(consistency, Consistency::Quorum, side, dcs, "dc1")
    }

    fn answers(dcs: &[&str]) -> Vec<String> {
        dcs.iter().map(|dc| dc.to_string()).collect()
    }

    #[test]
    fn named_levels_over_three_replicas() {
        let dcs = ["dc1", "dc1", "dc1"];
        assert_eq!(need(Consistency::One, Side::Read, &dcs).unwrap().total, 1);
        assert_eq!(
            need(Consistency::Quorum, Side::Read, &dcs).unwrap().total,
            2
        );
        assert_eq!(need(Consistency::All, Side::Write, &dcs).unwrap().total, 3);
        let counts = Consistency::Counts {
            read: Some(3),
            write: None,
        };
        assert_eq!(need(counts, Side::Read, &dcs).unwrap().total, 3);
        assert_eq!(need(counts, Side::Write, &dcs).unwrap().total, 2);
        let too_many = Consistency::Counts {
            read: None,
            write: Some(4),
        };
        let error = need(too_many, Side::Write, &dcs).unwrap_err().to_string();
        assert!(
            error.contains("W 4") && error.contains("available 3"),
            "{error}"
        );
    }

    #[test]
    fn datacenter_levels_count_only_their_datacenters() {
        let dcs = ["dc1", "dc1", "dc2", "dc2", "dc2"];
        let local = need(Consistency::LocalQuorum, Side::Write, &dcs).unwrap();
        assert!(!local.met(&answers(&["dc2", "dc2", "dc2", "dc1"])));
        assert!(local.met(&answers(&["dc1", "dc1"])));
        assert_eq!(local.needed(), 2);
        assert_eq!(local.got(&answers(&["dc2", "dc1"])), 1);
        let each = need(Consistency::EachQuorum, Side::Write, &dcs).unwrap();
        assert_eq!(each.needed(), 4);
        assert!(!each.met(&answers(&["dc1", "dc1", "dc2"])));
        assert!(each.met(&answers(&["dc1", "dc1", "dc2", "dc2"])));
        assert!(need(Consistency::LocalQuorum, Side::Read, &["dc2"]).is_err());
    }
}
