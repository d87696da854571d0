//! What each request does. Data commands go through the [`Backend`](super::Backend); the
//! Redis view of a key (GET, MGET, EXISTS) resolves siblings by last-write-wins, while the
//! `KV.*` commands show every sibling and take the causal context back.

use super::admin;
use super::connection::Session;
use super::ReadReply;
use super::ServerContext;
use crate::protocol::{error_reply_text, resp, Consistency, Request};
use crate::version::codec::latest_value;
use crate::version::{SiblingSet, VectorClock, Version};
use crate::{Error, Result};

/// Whether the connection carries on after a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep serving.
    Continue,
    /// Send what is buffered, then close.
    Close,
}

/// Executes `request`, appending its reply to `output`. A failure becomes an error reply;
/// only `QUIT` closes the connection.
pub async fn execute(
    context: &ServerContext,
    session: &mut Session,
    request: Request,
    output: &mut Vec<u8>,
) -> Flow {
    if !session.authenticated
        && !matches!(
            request,
            Request::Auth(_) | Request::Hello { .. } | Request::Quit
        )
    {
        resp::write_error(output, "NOAUTH Authentication required.");
        return Flow::Continue;
    }
    let reply_start = output.len();
    match execute_request(context, session, request, output).await {
        Ok(flow) => flow,
        Err(error) => {
            // A half-written reply (an MGET failing midway) would desynchronise the client.
            output.truncate(reply_start);
            resp::write_error(output, &command_error_text(&error));
            Flow::Continue
        }
    }
}

/// Reply text for a failed command. A sibling bound (`LimitExceeded`) is an ordinary
/// command error here, not the framing error that variant means in the codec.
fn command_error_text(error: &Error) -> String {
    match error {
        Error::LimitExceeded { .. } => format!("ERR {error}"),
        other => error_reply_text(other),
    }
}

async fn execute_request(
    context: &ServerContext,
    session: &mut Session,
    request: Request,
    output: &mut Vec<u8>,
) -> Result<Flow> {
    let backend = context.backend.as_ref();
    let default_consistency = session_consistency(context, session);
    let level = |requested: Option<Consistency>| requested.unwrap_or(default_consistency);
    match request {
        Request::Ping { message: None } => resp::write_simple_string(output, "PONG"),
        Request::Ping {
            message: Some(message),
        }
        | Request::Echo { message } => resp::write_bulk(output, &message),
        request @ (Request::Get { .. } | Request::Set { .. }) => {
            execute_data(context, default_consistency, request, output).await?
        }
        Request::MultiGet { keys } => {
            resp::write_array_header(output, keys.len());
            for key in keys {
                let set = backend.read(key, default_consistency).await?;
                write_latest(output, set.as_ref());
            }
        }
        Request::Delete { keys } => {
            let mut deleted = 0;
            for key in keys {
                let Some(set) = backend.read(key.clone(), default_consistency).await? else {
                    continue;
                };
                if set.is_deleted() {
                    continue;
                }
                // The set's own context: the tombstone supersedes every sibling.
                backend
                    .write(key, set.context(), None, default_consistency)
                    .await?;
                deleted += 1;
            }
            resp::write_integer(output, deleted);
        }
        Request::Exists { keys } => {
            let mut existing = 0;
            for key in keys {
                let set = backend.read(key, default_consistency).await?;
                if set.is_some_and(|set| !set.is_deleted()) {
                    existing += 1;
                }
            }
            resp::write_integer(output, existing);
        }
        Request::SetConsistency(consistency) => {
            backend.check_consistency(consistency)?;
            session.consistency = Some(consistency);
            resp::write_ok(output);
        }
        Request::KvGet { key, consistency } => {
            let set = backend
                .read(key, level(consistency))
                .await?
                .unwrap_or_default();
            write_versioned(output, &set);
        }
        Request::KvPut {
            key,
            value,
            context: client_context,
            consistency,
        } => {
            check_value(context, &value)?;
            let clock = decode_context(client_context.as_deref())?;
            backend
                .write(key, clock, Some(value), level(consistency))
                .await?;
            resp::write_ok(output);
        }
        Request::KvDelete {
            key,
            context: client_context,
            consistency,
        } => {
            let clock = decode_context(client_context.as_deref())?;
            backend.write(key, clock, None, level(consistency)).await?;
            resp::write_ok(output);
        }
        Request::KvScan {
            start_key,
            count,
            end_key,
            consistency,
        } => {
            let rows = backend
                .scan(start_key, end_key, count as usize, level(consistency))
                .await?;
            let live: Vec<_> = rows
                .into_iter()
                .filter(|(_, set)| !set.is_deleted())
                .collect();
            resp::write_array_header(output, live.len());
            for (key, set) in &live {
                resp::write_array_header(output, 2);
                resp::write_bulk(output, key);
                write_versioned(output, set);
            }
        }
        Request::ClusterTopology => match backend.topology() {
            Some(lines) => {
                resp::write_array_header(output, lines.len());
                for line in &lines {
                    resp::write_bulk(output, line.as_bytes());
                }
            }
            None => resp::write_error(output, "ERR this node serves alone: it has no cluster"),
        },
        Request::ClusterMembers => match backend.members() {
            Some(lines) => {
                resp::write_array_header(output, lines.len());
                for line in &lines {
                    resp::write_bulk(output, line.as_bytes());
                }
            }
            None => resp::write_error(output, "ERR this node serves alone: it has no cluster"),
        },
        Request::ClusterChange(change) => {
            let lines = backend.scaling(change).await?;
            resp::write_array_header(output, lines.len());
            for line in &lines {
                resp::write_bulk(output, line.as_bytes());
            }
        }
        Request::AntiEntropy { run } => {
            let lines = if run {
                backend.antientropy_run().await?
            } else {
                backend.antientropy_roots()?
            };
            resp::write_array_header(output, lines.len());
            for line in &lines {
                resp::write_bulk(output, line.as_bytes());
            }
        }
        Request::LinkGet => {
            let lines = context.links.describe_lines();
            resp::write_array_header(output, lines.len());
            for line in &lines {
                resp::write_bulk(output, line.as_bytes());
            }
        }
        Request::LinkUpdate { change, local } => {
            let reply = context.links.apply(change, local).await?;
            resp::write_simple_string(output, &reply);
        }
        Request::Quit => {
            resp::write_ok(output);
            return Ok(Flow::Close);
        }
        other => admin::execute(context, session, other, output)?,
    }
    Ok(Flow::Continue)
}

/// Whether `request` may run concurrently with its neighbours in a pipelined batch (see
/// [`execute_concurrent`]): a GET or SET, which touches one key and no session state.
pub fn is_concurrent(request: &Request) -> bool {
    matches!(request, Request::Get { .. } | Request::Set { .. })
}

/// The key a [`is_concurrent`] request touches, and whether it writes it.
pub fn concurrent_key(request: &Request) -> Option<(&[u8], bool)> {
    match request {
        Request::Get { key } => Some((key, false)),
        Request::Set { key, .. } => Some((key, true)),
        _ => None,
    }
}

/// Executes GETs and SETs of an authenticated session at once. The caller makes sure no key written by one of them is
/// touched by another, so the outcome is that of executing them in order; what it gains is
/// that a coordinator waits for the replicas of all of them together instead of one round
/// trip after another.
///
/// The GETs go to the backend together
/// ([`Backend::read_many_for_get`](super::Backend::read_many_for_get): the coordinator asks
/// each replica once for all of them), and so do the SETs
/// ([`Backend::write_many`](super::Backend::write_many)); the replies are appended to
/// `output` in request order.
pub async fn execute_concurrent(
    context: &ServerContext,
    session: &Session,
    requests: Vec<Request>,
    output: &mut Vec<u8>,
) {
    /// Where a request's reply comes from.
    enum Source {
        Get,
        Set,
        /// A SET refused before reaching the backend (its value is too large).
        Refused(Error),
    }
    let consistency = session_consistency(context, session);
    let mut gets = Vec::new();
    let mut sets = Vec::new();
    let mut sources = Vec::with_capacity(requests.len());
    for request in requests {
        match request {
            Request::Get { key } => {
                sources.push(Source::Get);
                gets.push(key);
            }
            Request::Set { key, value } => match check_value(context, &value) {
                Ok(()) => {
                    sources.push(Source::Set);
                    sets.push((key, value));
                }
                Err(error) => sources.push(Source::Refused(error)),
            },
            other => sources.push(Source::Refused(Error::Command(format!(
                "ERR internal: {} is not a data command",
                other.name()
            )))),
        }
    }
    let backend = context.backend.as_ref();
    let (read, written) = tokio::join!(
        async {
            match gets.len() {
                0 => Vec::new(),
                _ => backend.read_many_for_get(gets, consistency).await,
            }
        },
        async {
            match sets.len() {
                0 => Vec::new(),
                _ => backend.write_many(sets, consistency).await,
            }
        }
    );
    let mut read = read.into_iter();
    let mut written = written.into_iter();
    let lost = || {
        Err(Error::Command(
            "ERR internal: a batch returned too few replies".to_string(),
        ))
    };
    for source in sources {
        let start = output.len();
        let result = match source {
            Source::Get => match read.next() {
                Some(result) => result.and_then(|reply| write_get_reply(output, reply)),
                None => lost(),
            },
            Source::Set => match written.next() {
                Some(result) => result.map(|()| resp::write_ok(output)),
                None => lost(),
            },
            Source::Refused(error) => Err(error),
        };
        reply_or_error(output, start, result);
    }
}

/// Executes one [`is_concurrent`] request of an authenticated session, appending its
/// reply (or error) to `output`.
pub async fn execute_one(
    context: &ServerContext,
    session: &Session,
    request: Request,
    output: &mut Vec<u8>,
) {
    let consistency = session_consistency(context, session);
    let reply_start = output.len();
    let result = execute_data(context, consistency, request, output).await;
    reply_or_error(output, reply_start, result);
}

/// The consistency a session's data commands run at: its own (`CONSISTENCY`), else the
/// node's default.
fn session_consistency(context: &ServerContext, session: &Session) -> Consistency {
    session
        .consistency
        .unwrap_or(context.config.default_consistency)
}

/// Leaves a data command's reply in `output` from `reply_start` on, or replaces whatever
/// it wrote there with its error reply.
fn reply_or_error(output: &mut Vec<u8>, reply_start: usize, result: Result<()>) {
    if let Err(error) = result {
        output.truncate(reply_start);
        resp::write_error(output, &command_error_text(&error));
    }
}

/// GET or SET of an authenticated session on a backend that executes them in place
/// ([`Backend::inline_local`](super::Backend::inline_local)): the reply, or the error
/// reply, is appended to `output`. Same outcome as [`execute_one`], without a future.
pub fn execute_inline(
    context: &ServerContext,
    local: &super::LocalBackend,
    session: &Session,
    request: Request,
    output: &mut Vec<u8>,
) {
    let consistency = session_consistency(context, session);
    let reply_start = output.len();
    let result = match request {
        Request::Get { key } => local.get_inline(&key, consistency, output),
        Request::Set { key, value } => check_value(context, &value)
            .and_then(|()| local.set_inline(&key, value, consistency))
            .map(|()| resp::write_ok(output)),
        other => Err(Error::Command(format!(
            "ERR internal: {} is not a data command",
            other.name()
        ))),
    };
    reply_or_error(output, reply_start, result);
}

/// [`execute_inline`] for a GET or SET read in place ([`resp::DataFrame`]): `buffer` holds
/// the frame's bytes, which the frame's ranges index. The GET path allocates nothing.
pub fn execute_data_frame(
    context: &ServerContext,
    local: &super::LocalBackend,
    session: &Session,
    buffer: &[u8],
    frame: resp::DataFrame,
    output: &mut Vec<u8>,
) {
    let consistency = session_consistency(context, session);
    let reply_start = output.len();
    let result = match frame {
        resp::DataFrame::Get { key } => local.get_inline(&buffer[key], consistency, output),
        resp::DataFrame::Set { key, value } => {
            let value = &buffer[value];
            check_value(context, value)
                .and_then(|()| local.set_inline(&buffer[key], value.to_vec(), consistency))
                .map(|()| resp::write_ok(output))
        }
    };
    reply_or_error(output, reply_start, result);
}

/// GET and SET: the commands of a benchmark's hot path.
async fn execute_data(
    context: &ServerContext,
    consistency: Consistency,
    request: Request,
    output: &mut Vec<u8>,
) -> Result<()> {
    let backend = context.backend.as_ref();
    match request {
        Request::Get { key } => {
            write_get_reply(output, backend.read_for_get(key, consistency).await?)?;
        }
        Request::Set { key, value } => {
            check_value(context, &value)?;
            // Context-free: on one coordinator a blind write supersedes that coordinator's
            // earlier writes (see crate::version, "Counters"), which is Redis's SET.
            backend
                .write(key, VectorClock::new(), Some(value), consistency)
                .await?;
            resp::write_ok(output);
        }
        other => {
            return Err(Error::Command(format!(
                "ERR internal: {} is not a data command",
                other.name()
            )))
        }
    }
    Ok(())
}

/// A plain GET's reply: the newest value of what the backend read, or a null bulk.
fn write_get_reply(output: &mut Vec<u8>, reply: ReadReply) -> Result<()> {
    match reply {
        ReadReply::Decoded(set) => write_latest(output, set.as_ref()),
        ReadReply::Encoded(bytes) => {
            match bytes.as_deref().map(latest_value).transpose()?.flatten() {
                Some(value) => resp::write_bulk(output, value),
                None => resp::write_null_bulk(output),
            }
        }
    }
    Ok(())
}

/// The version GET shows: the latest by `(timestamp_ms, writer)`, as last-write-wins would
/// keep; a tombstone winner reads as absent.
pub fn latest_version(set: &SiblingSet) -> Option<&Version> {
    set.versions.iter().max_by(|left, right| {
        (left.timestamp_ms, &left.writer).cmp(&(right.timestamp_ms, &right.writer))
    })
}

fn write_latest(output: &mut Vec<u8>, set: Option<&SiblingSet>) {
    match set
        .and_then(latest_version)
        .and_then(|version| version.value.as_deref())
    {
        Some(value) => resp::write_bulk(output, value),
        None => resp::write_null_bulk(output),
    }
}

fn write_versioned(output: &mut Vec<u8>, set: &SiblingSet) {
    let context = set.context().encode();
    let siblings = set.versions.iter().map(|version| version.value.as_deref());
    resp::write_versioned_reply(output, &context, siblings);
}

/// Checked here too (not only in the store) so an oversized value is refused before any
/// storage work, with the same wording whatever the backend.
fn check_value(context: &ServerContext, value: &[u8]) -> Result<()> {
    let limit = context.backend.value_bytes_max();
    if value.len() > limit {
        return Err(Error::Command(format!(
            "ERR value of {} bytes exceeds the limit of {limit} bytes",
            value.len()
        )));
    }
    Ok(())
}

fn decode_context(context: Option<&[u8]>) -> Result<VectorClock> {
    match context {
        None | Some([]) => Ok(VectorClock::new()),
        Some(bytes) => VectorClock::decode(bytes)
            .map_err(|error| Error::Command(format!("ERR invalid CONTEXT: {error}"))),
    }
}
