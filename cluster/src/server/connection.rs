//! One client connection: read, decode every complete frame, execute them in order, and
//! send all their replies in one write, so a pipelined batch costs one syscall each way.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::commands::{self, Flow};
use super::ServerContext;
use crate::protocol::{error_reply_text, resp, Consistency, Decoder, Request};

/// Replies are flushed mid-batch once this many bytes are waiting, so a long pipeline of
/// large reads holds a bounded amount of reply memory.
pub const OUTPUT_FLUSH_BYTES: usize = 1 << 20;

/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Input gathered before a batch executes, at most (a larger pipeline runs in batches).
const BATCH_INPUT_BYTES: usize = 256 * 1024;

/// Per-connection state that commands change.
pub struct Session {
    /// `CLIENT ID`.
    pub client_id: u64,
    /// `CLIENT SETNAME`; `None` when unset or cleared.
    pub name: Option<Vec<u8>>,
    /// `CONSISTENCY`: the connection's default, over the node's.
    pub consistency: Option<Consistency>,
    /// False until `AUTH` succeeds when the node has a `requirepass`.
    pub authenticated: bool,
}

/// Serves one client until it disconnects, sends `QUIT`, breaks the protocol, or the node
/// shuts down (then the batch being executed still completes and is replied to).
pub async fn serve_connection(
    mut stream: TcpStream,
    context: Arc<ServerContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Small replies should leave at once, not wait for Nagle's timer.
    let _ = stream.set_nodelay(true);
    context
        .counters
        .connected_clients
        .fetch_add(1, Ordering::Relaxed);
    let mut session = Session {
        client_id: context.counters.next_client_id(),
        name: None,
        consistency: None,
        authenticated: context.config.requirepass.is_none(),
    };
    let mut decoder = Decoder::new(context.config.limits.clone());
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK_BYTES);
    let mut output: Vec<u8> = Vec::with_capacity(READ_CHUNK_BYTES);
    // One shutdown future for the connection's life, not one registered and dropped
    // again per read.
    let mut stopping = std::pin::pin!(shutdown.changed());
    loop {
        if input.capacity() - input.len() < READ_CHUNK_BYTES {
            input.reserve(READ_CHUNK_BYTES);
        }
        let read = tokio::select! {
            read = stream.read_buf(&mut input) => read,
            _ = &mut stopping => break,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => read_available(&stream, &mut input),
        }
        let flow = execute_buffered(
            &context,
            &mut session,
            &mut decoder,
            &mut input,
            &mut output,
            &mut stream,
        )
        .await;
        if !output.is_empty() && send_replies(&context, &mut stream, &output).await.is_err() {
            break;
        }
        output.clear();
        if flow == Flow::Close {
            break;
        }
    }
    let _ = stream.shutdown().await;
    context
        .counters
        .connected_clients
        .fetch_sub(1, Ordering::Relaxed);
}

/// Sends replies once the writes they acknowledge are durable per the commit-log policy
/// ([`Backend::commit_async`](super::Backend::commit_async): one log write for a pipelined
/// batch, shared with the other connections ready at the same time). When
/// that fails nothing is sent and the connection closes: the client gets no
/// acknowledgement, as for a lost connection.
async fn send_replies(
    context: &ServerContext,
    stream: &mut TcpStream,
    output: &[u8],
) -> std::result::Result<(), ()> {
    if let Err(error) = context.backend.commit_async().await {
        log::error!("kvnode: closing a client connection: the commit log failed: {error}");
        return Err(());
    }
    stream.write_all(output).await.map_err(drop)
}

/// Appends what else the socket already holds, up to [`BATCH_INPUT_BYTES`], without
/// waiting. A pipelined batch larger than one read (16 SETs of 1 KiB) then executes and is
/// answered as one, instead of as one big and one small batch with a write each. An end of
/// stream or an error is left for the next awaited read to report.
fn read_available(stream: &TcpStream, input: &mut Vec<u8>) {
    while input.len() < BATCH_INPUT_BYTES {
        if input.capacity() - input.len() < READ_CHUNK_BYTES {
            input.reserve(READ_CHUNK_BYTES);
        }
        match stream.try_read_buf(input) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Most requests of a pipelined batch executed at once (see [`execute_buffered`]).
const CONCURRENT_REQUESTS_MAX: usize = 128;

/// Executes every complete frame in `input`, appending replies to `output` (flushing it to
/// `stream` past [`OUTPUT_FLUSH_BYTES`]), and drops the consumed bytes.
///
/// When the backend gains from it ([`Backend::concurrent_requests`](super::Backend)), a run
/// of consecutive GETs and SETs in which no written key appears twice executes
/// concurrently, replies still in request order: the outcome is that of executing them one
/// after the other, but a coordinator waits for their replicas together.
async fn execute_buffered(
    context: &ServerContext,
    session: &mut Session,
    decoder: &mut Decoder,
    input: &mut Vec<u8>,
    output: &mut Vec<u8>,
    stream: &mut TcpStream,
) -> Flow {
    let concurrent = context.backend.concurrent_requests();
    let inline = context.backend.inline_local();
    let mut consumed = 0;
    // Counted once per batch: one contended atomic add instead of one per request.
    let mut processed = 0;
    let mut group: Vec<Request> = Vec::new();
    let mut group_keys: HashMap<Vec<u8>, bool> = HashMap::new();
    let flow = loop {
        // The hot path: a plain GET or SET executed straight from the input bytes, with
        // no request built (the same outcome as the general path below).
        let data = match inline {
            Some(local) if session.authenticated && group.is_empty() => decoder
                .decode_data(&input[consumed..])
                .map(|decoded| (local, decoded)),
            _ => None,
        };
        if let Some((local, (frame, used))) = data {
            let bytes = &input[consumed..consumed + used];
            commands::execute_data_frame(context, local, session, bytes, frame, output);
            consumed += used;
            processed += 1;
            if output.len() >= OUTPUT_FLUSH_BYTES {
                if send_replies(context, stream, output).await.is_err() {
                    break Flow::Close;
                }
                output.clear();
            }
            continue;
        }
        // A plain GET or SET becomes its request straight from the input bytes: two
        // copies (key, value) instead of an argument vector of four and an upper-cased
        // command name (the same request `Request::parse` builds).
        let parsed = if let Some((frame, used)) = decoder.decode_data(&input[consumed..]) {
            let bytes = &input[consumed..consumed + used];
            consumed += used;
            Ok(data_request(bytes, frame))
        } else {
            let frame = match decoder.decode(&input[consumed..]) {
                Ok(None) => break Flow::Continue,
                Ok(Some((frame, used))) => {
                    consumed += used;
                    frame
                }
                Err(error) => {
                    run_group(context, session, &mut group, &mut group_keys, output).await;
                    // Every decoder error is a framing error (`closes_connection`): the
                    // stream cannot be resynchronised, so say why, then close (as Redis).
                    resp::write_error(output, &error_reply_text(&error));
                    break Flow::Close;
                }
            };
            Request::parse(frame, &context.config.limits)
        };
        processed += 1;
        let flow = match parsed {
            Ok(request)
                if inline.is_some()
                    && session.authenticated
                    && commands::is_concurrent(&request) =>
            {
                if let Some(local) = inline {
                    commands::execute_inline(context, local, session, request, output);
                }
                Flow::Continue
            }
            Ok(request)
                if concurrent && session.authenticated && commands::is_concurrent(&request) =>
            {
                if !fits_group(&group, &group_keys, &request) {
                    run_group(context, session, &mut group, &mut group_keys, output).await;
                }
                if let Some((key, writes)) = commands::concurrent_key(&request) {
                    *group_keys.entry(key.to_vec()).or_insert(false) |= writes;
                }
                group.push(request);
                continue;
            }
            Ok(request) => {
                run_group(context, session, &mut group, &mut group_keys, output).await;
                // INFO among them reports the commands before it.
                context
                    .counters
                    .commands_processed
                    .fetch_add(std::mem::take(&mut processed), Ordering::Relaxed);
                commands::execute(context, session, request, output).await
            }
            Err(error) => {
                run_group(context, session, &mut group, &mut group_keys, output).await;
                resp::write_error(output, &error_reply_text(&error));
                Flow::Continue
            }
        };
        if flow == Flow::Close {
            break Flow::Close;
        }
        if output.len() >= OUTPUT_FLUSH_BYTES {
            if send_replies(context, stream, output).await.is_err() {
                break Flow::Close;
            }
            output.clear();
        }
    };
    if flow == Flow::Continue {
        run_group(context, session, &mut group, &mut group_keys, output).await;
    }
    context
        .counters
        .commands_processed
        .fetch_add(processed, Ordering::Relaxed);
    input.drain(..consumed);
    flow
}

/// The request of a GET or SET found by [`Decoder::decode_data`] in `bytes`.
fn data_request(bytes: &[u8], frame: resp::DataFrame) -> Request {
    match frame {
        resp::DataFrame::Get { key } => Request::Get {
            key: bytes[key].to_vec(),
        },
        resp::DataFrame::Set { key, value } => Request::Set {
            key: bytes[key].to_vec(),
            value: bytes[value].to_vec(),
        },
    }
}

/// Whether `request` can join `group` without changing what executing in order would do:
/// neither it nor a member writes a key the other touches.
fn fits_group(group: &[Request], keys: &HashMap<Vec<u8>, bool>, request: &Request) -> bool {
    if group.len() >= CONCURRENT_REQUESTS_MAX {
        return false;
    }
    match commands::concurrent_key(request) {
        Some((key, writes)) => match keys.get(key) {
            None => true,
            Some(written) => !writes && !written,
        },
        None => false,
    }
}

/// Executes the gathered concurrent requests and appends their replies in order.
async fn run_group(
    context: &ServerContext,
    session: &Session,
    group: &mut Vec<Request>,
    keys: &mut HashMap<Vec<u8>, bool>,
    output: &mut Vec<u8>,
) {
    keys.clear();
    match group.len() {
        0 => {}
        1 => {
            if let Some(request) = group.pop() {
                commands::execute_one(context, session, request, output).await;
            }
        }
        _ => {
            let requests = std::mem::take(group);
            commands::execute_concurrent(context, session, requests, output).await;
        }
    }
}
