//! One client connection: read, decode every complete frame, execute them in order, and
//! send all their replies in one write, so a pipelined batch costs one syscall each way.

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
    loop {
        if input.capacity() - input.len() < READ_CHUNK_BYTES {
            input.reserve(READ_CHUNK_BYTES);
        }
        let read = tokio::select! {
            read = stream.read_buf(&mut input) => read,
            _ = shutdown.changed() => break,
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
        if !output.is_empty() && stream.write_all(&output).await.is_err() {
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

/// Executes every complete frame in `input`, appending replies to `output` (flushing it to
/// `stream` past [`OUTPUT_FLUSH_BYTES`]), and drops the consumed bytes.
async fn execute_buffered(
    context: &ServerContext,
    session: &mut Session,
    decoder: &mut Decoder,
    input: &mut Vec<u8>,
    output: &mut Vec<u8>,
    stream: &mut TcpStream,
) -> Flow {
    let mut consumed = 0;
    let flow = loop {
        let frame = match decoder.decode(&input[consumed..]) {
            Ok(None) => break Flow::Continue,
            Ok(Some((frame, used))) => {
                consumed += used;
                frame
            }
            Err(error) => {
                // Every decoder error is a framing error (`closes_connection`): the stream
                // cannot be resynchronised, so say why, then close (as Redis).
                resp::write_error(output, &error_reply_text(&error));
                break Flow::Close;
            }
        };
        context
            .counters
            .commands_processed
            .fetch_add(1, Ordering::Relaxed);
        let flow = match Request::parse(frame, &context.config.limits) {
            Ok(request) => commands::execute(context, session, request, output).await,
            Err(error) => {
                resp::write_error(output, &error_reply_text(&error));
                Flow::Continue
            }
        };
        if flow == Flow::Close {
            break Flow::Close;
        }
        if output.len() >= OUTPUT_FLUSH_BYTES {
            if stream.write_all(output).await.is_err() {
                break Flow::Close;
            }
            output.clear();
        }
    };
    input.drain(..consumed);
    flow
}
