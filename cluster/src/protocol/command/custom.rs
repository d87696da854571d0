//! The node's own commands: versioned reads and writes, scans, consistency, admin.

use super::{lossy_prefix, syntax_error, Consistency, Request};
use crate::protocol::Limits;
use crate::{Error, Result};
use std::vec::IntoIter;

/// Which options a command takes besides its positional arguments.
#[derive(Clone, Copy)]
struct Allowed {
    /// `R` for reads, `W` for writes: the explicit replica count a request may give.
    replica_count: Side,
    context: bool,
    end_key: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Read,
    Write,
}

#[derive(Default)]
struct Options {
    consistency: Option<Consistency>,
    context: Option<Vec<u8>>,
    end_key: Option<Vec<u8>>,
}

/// Parses a node command whose name is `canonical` and minimum arity already checked.
pub(super) fn parse(
    canonical: &str,
    mut arguments: IntoIter<Vec<u8>>,
    limits: &Limits,
) -> Result<Request> {
    let read = Allowed {
        replica_count: Side::Read,
        context: false,
        end_key: false,
    };
    let write = Allowed {
        replica_count: Side::Write,
        context: true,
        end_key: false,
    };
    let request = match canonical {
        "consistency" => Request::SetConsistency(connection_consistency(arguments, limits)?),
        "kv.get" => {
            let key = take(&mut arguments);
            let options = options(canonical, arguments, read, limits)?;
            Request::KvGet {
                key,
                consistency: options.consistency,
            }
        }
        "kv.put" => {
            let (key, value) = (take(&mut arguments), take(&mut arguments));
            let options = options(canonical, arguments, write, limits)?;
            Request::KvPut {
                key,
                value,
                context: options.context,
                consistency: options.consistency,
            }
        }
        "kv.del" => {
            let key = take(&mut arguments);
            let options = options(canonical, arguments, write, limits)?;
            Request::KvDelete {
                key,
                context: options.context,
                consistency: options.consistency,
            }
        }
        "kv.scan" => {
            let start_key = take(&mut arguments);
            let count = count(&take(&mut arguments), "count", limits.scan_count_max)?;
            let allowed = Allowed {
                end_key: true,
                ..read
            };
            let options = options(canonical, arguments, allowed, limits)?;
            Request::KvScan {
                start_key,
                count,
                end_key: options.end_key,
                consistency: options.consistency,
            }
        }
        "cluster.topology" => Request::ClusterTopology,
        "cluster.members" => Request::ClusterMembers,
        "link.get" => Request::LinkGet,
        _ => {
            return Err(Error::Command(format!(
                "ERR unhandled command '{canonical}'"
            )))
        }
    };
    Ok(request)
}

fn take(arguments: &mut IntoIter<Vec<u8>>) -> Vec<u8> {
    arguments.next().unwrap_or_default()
}

/// `CONSISTENCY <level>` or `R <n>` and/or `W <n>` in either order.
fn connection_consistency(
    mut arguments: IntoIter<Vec<u8>>,
    limits: &Limits,
) -> Result<Consistency> {
    let first = take(&mut arguments);
    if let Some(level) = Consistency::from_level_name(&first) {
        if arguments.len() > 0 {
            return Err(syntax_error("a named level takes no further arguments"));
        }
        return Ok(level);
    }
    let (mut read, mut write) = (None, None);
    let mut word = Some(first);
    while let Some(name) = word.take() {
        let upper = name.to_ascii_uppercase();
        let slot = match upper.as_slice() {
            b"R" => &mut read,
            b"W" => &mut write,
            _ => return Err(unknown_level(&name)),
        };
        let value = arguments
            .next()
            .ok_or_else(|| syntax_error(&format!("{} needs a replica count", lossy(&name))))?;
        if slot.is_some() {
            return Err(syntax_error(&format!("{} given twice", lossy(&name))));
        }
        *slot = Some(count(&value, "replica count", limits.replica_count_max)?);
        word = arguments.next();
    }
    Ok(Consistency::Counts { read, write })
}

/// Parses `NAME value` option pairs after a command's positional arguments.
fn options(
    command: &str,
    mut arguments: IntoIter<Vec<u8>>,
    allowed: Allowed,
    limits: &Limits,
) -> Result<Options> {
    let mut options = Options::default();
    let mut consistency_option: Option<String> = None;
    while let Some(name) = arguments.next() {
        let upper = String::from_utf8_lossy(&name).to_ascii_uppercase();
        let known = match upper.as_str() {
            "CL" => true,
            "R" => allowed.replica_count == Side::Read,
            "W" => allowed.replica_count == Side::Write,
            "CONTEXT" => allowed.context,
            "END" => allowed.end_key,
            _ => false,
        };
        if !known {
            return Err(syntax_error(&format!(
                "unknown option '{}' for '{command}'",
                lossy(&name)
            )));
        }
        let value = arguments
            .next()
            .ok_or_else(|| syntax_error(&format!("option '{upper}' needs a value")))?;
        match upper.as_str() {
            "CONTEXT" | "END" => {
                let slot = if upper == "CONTEXT" {
                    &mut options.context
                } else {
                    &mut options.end_key
                };
                if slot.replace(value).is_some() {
                    return Err(syntax_error(&format!("option '{upper}' given twice")));
                }
            }
            _ => {
                if let Some(previous) = consistency_option.replace(upper.clone()) {
                    return Err(syntax_error(&format!(
                        "options '{previous}' and '{upper}' both set the consistency"
                    )));
                }
                options.consistency = Some(match upper.as_str() {
                    "CL" => {
                        Consistency::from_level_name(&value).ok_or_else(|| unknown_level(&value))?
                    }
                    "R" => Consistency::Counts {
                        read: Some(count(&value, "replica count", limits.replica_count_max)?),
                        write: None,
                    },
                    _ => Consistency::Counts {
                        read: None,
                        write: Some(count(&value, "replica count", limits.replica_count_max)?),
                    },
                });
            }
        }
    }
    Ok(options)
}

/// A count from 1 to `maximum`.
fn count(argument: &[u8], what: &str, maximum: u32) -> Result<u32> {
    std::str::from_utf8(argument)
        .ok()
        .and_then(|text| text.parse::<u32>().ok())
        .filter(|value| (1..=maximum).contains(value))
        .ok_or_else(|| {
            Error::Command(format!(
                "ERR {what} must be an integer from 1 to {maximum}, got '{}'",
                lossy(argument)
            ))
        })
}

fn unknown_level(word: &[u8]) -> Error {
    Error::Command(format!(
        "ERR unknown consistency level '{}': expected ONE, QUORUM, ALL, LOCAL_QUORUM, \
         EACH_QUORUM or R <n> W <n>",
        lossy(word)
    ))
}

fn lossy(bytes: &[u8]) -> String {
    lossy_prefix(bytes, 128)
}
