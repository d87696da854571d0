//! Accepting connections and reading them: the `Hello` check, then requests to the handler
//! and responses to the calls waiting for them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::{auth, Shared};
use crate::protocol::peer::{decode_frame, encode_frame, Frame, FrameKind, PeerMessage};
use crate::ring::NodeId;
use crate::{Error, Result};

/// Pause after a failed accept (out of file descriptors, say) before trying again, so the
/// loop does not spin.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Accepts connections until aborted; dropping it aborts every connection task.
pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, address) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                log(&shared, &format!("accept failed: {error}"));
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        if connections.len() >= shared.config.inbound_connections_max {
            log(
                &shared,
                &format!(
                    "refused a connection from {address}: {} connections already open",
                    connections.len()
                ),
            );
            continue;
        }
        connections.spawn(serve(Arc::clone(&shared), stream, address));
    }
}

fn log(shared: &Shared, text: &str) {
    log::warn!("peer transport {}: {text}", shared.local.node);
}

/// Serves one inbound connection until it closes or breaks the protocol.
async fn serve(shared: Arc<Shared>, stream: TcpStream, address: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut buffer = Vec::new();
    let limit = shared.config.frame_size_bytes_max;
    let hello = tokio::time::timeout(
        shared.config.connect_timeout(),
        read_frame(&mut reader, &mut buffer, limit),
    )
    .await;
    let checked = match hello {
        Err(_) => Err(Error::PeerProtocol("no Hello in time".to_string())),
        Ok(Ok(None)) => Err(Error::PeerProtocol("closed before Hello".to_string())),
        Ok(Err(error)) => Err(error),
        Ok(Ok(Some(frame))) => match frame.message {
            PeerMessage::Hello {
                node,
                datacenter,
                cluster_name,
            } => shared.check_hello(&node, &datacenter, &cluster_name),
            other => Err(Error::PeerProtocol(format!(
                "first frame is {}, not Hello",
                other.name()
            ))),
        },
    };
    let checked = match (checked, shared.config.cluster_secret.as_deref()) {
        (Ok(peer), Some(secret)) => authenticate(
            &shared,
            &peer,
            secret,
            &mut reader,
            &mut writer,
            &mut buffer,
        )
        .await
        .map(|()| peer),
        (checked, _) => checked,
    };
    let peer = match checked {
        Ok(peer) => peer,
        Err(error) => {
            log(
                &shared,
                &format!("refused a connection from {address}: {error}"),
            );
            // Tell the caller why, so its calls fail with the reason instead of timing out.
            let refusal = Frame {
                kind: FrameKind::OneWay,
                request_id: 0,
                message: PeerMessage::Error {
                    message: error.to_string(),
                },
            };
            if let Ok(bytes) = encode_frame(&refusal, limit) {
                let _ = writer.write_all(&bytes).await;
                let _ = writer.shutdown().await;
            }
            return;
        }
    };
    if let Err(error) = read_messages(&shared, &peer, &mut reader, &mut buffer).await {
        log(
            &shared,
            &format!("closing the connection from {peer} ({address}): {error}"),
        );
    }
}

/// Challenges `peer` (who passed the `Hello` check) to prove the cluster secret: sends a
/// fresh nonce and checks the `AuthProof` that must come next; then answers the caller's own
/// `AuthChallenge` (mutual authentication). Each read is bounded by the connect timeout.
async fn authenticate(
    shared: &Shared,
    peer: &NodeId,
    secret: &str,
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
    buffer: &mut Vec<u8>,
) -> Result<()> {
    let limit = shared.config.frame_size_bytes_max;
    let nonce = auth::new_nonce();
    send(
        writer,
        PeerMessage::AuthChallenge {
            nonce: nonce.clone(),
        },
        limit,
    )
    .await?;
    let PeerMessage::AuthProof { proof } = read_auth(shared, reader, buffer, "AuthProof").await?
    else {
        unreachable!("read_auth returns the message named")
    };
    let valid = auth::verify(
        auth::Role::Caller,
        secret,
        &nonce,
        peer.as_str(),
        shared.local.node.as_str(),
        &shared.config.cluster_name,
        &proof,
    );
    if !valid {
        return Err(auth_failed(&format!(
            "node {peer} failed the cluster secret check (wrong cluster_secret?)"
        )));
    }
    let PeerMessage::AuthChallenge { nonce } =
        read_auth(shared, reader, buffer, "AuthChallenge").await?
    else {
        unreachable!("read_auth returns the message named")
    };
    let proof = auth::prove(
        auth::Role::Acceptor,
        secret,
        &nonce,
        peer.as_str(),
        shared.local.node.as_str(),
        &shared.config.cluster_name,
    );
    send(writer, PeerMessage::AuthProof { proof }, limit).await
}

async fn send(writer: &mut OwnedWriteHalf, message: PeerMessage, limit: usize) -> Result<()> {
    let name = message.name();
    let frame = Frame {
        kind: FrameKind::OneWay,
        request_id: 0,
        message,
    };
    writer
        .write_all(&encode_frame(&frame, limit)?)
        .await
        .map_err(|error| Error::PeerProtocol(format!("sending {name}: {error}")))
}

/// Reads the next frame, which must be the authentication message `expected`.
async fn read_auth(
    shared: &Shared,
    reader: &mut OwnedReadHalf,
    buffer: &mut Vec<u8>,
    expected: &str,
) -> Result<PeerMessage> {
    let limit = shared.config.frame_size_bytes_max;
    let answer = tokio::time::timeout(
        shared.config.connect_timeout(),
        read_frame(reader, buffer, limit),
    )
    .await;
    match answer {
        Err(_) => Err(auth_failed(&format!("no {expected} in time"))),
        Ok(Ok(None)) => Err(auth_failed(&format!("closed before {expected}"))),
        Ok(Err(error)) => Err(error),
        Ok(Ok(Some(frame))) if frame.message.name() == expected => Ok(frame.message),
        Ok(Ok(Some(frame))) => Err(auth_failed(&format!(
            "sent {} instead of {expected} (no cluster_secret configured?)",
            frame.message.name()
        ))),
    }
}

fn auth_failed(detail: &str) -> Error {
    Error::PeerProtocol(format!("authentication failed: {detail}"))
}

/// Most inline requests served before their replies are committed and queued, so a
/// stream that never pauses still gets answers.
const INLINE_BATCH_MAX: usize = 256;

/// Reads frames after `Hello` until the stream ends (`Ok`) or breaks the protocol.
///
/// Every frame already buffered is handled before the next read: responses complete their
/// calls, requests the [`InlineHandler`](super::InlineHandler) takes are served at once
/// (their replies held back), the rest go to the handler on tasks of their own. Before
/// reading again (or after [`INLINE_BATCH_MAX`] requests) the held replies are committed
/// and queued together.
async fn read_messages(
    shared: &Arc<Shared>,
    peer: &NodeId,
    reader: &mut OwnedReadHalf,
    buffer: &mut Vec<u8>,
) -> Result<()> {
    // Handlers in flight; dropped with this future, which aborts them on shutdown.
    let mut handlers = JoinSet::new();
    let limit = shared.config.frame_size_bytes_max;
    let mut frames = FrameReader::default();
    let mut held = HeldReplies::default();
    loop {
        let Some(frame) = frames.buffered(buffer, limit)? else {
            held.send(shared, peer);
            if !frames.fill(reader, buffer).await? {
                return Ok(());
            }
            continue;
        };
        while handlers.try_join_next().is_some() {}
        if handlers.len() >= shared.config.inbound_requests_max {
            held.send(shared, peer);
            // Stop reading until one finishes: TCP pushes back on the sender.
            handlers.join_next().await;
        }
        // LINK.STATS: the frame's transit, when its sender is in this process.
        shared.emulator.note_received(
            peer.as_str(),
            shared.local.node.as_str(),
            frame.request_id,
            crate::net::MessageKind::of(&frame.message),
        );
        match (frame.kind, frame.message) {
            (_, PeerMessage::Hello { .. }) => {
                return Err(Error::PeerProtocol("a second Hello".to_string()));
            }
            (_, message @ (PeerMessage::AuthChallenge { .. } | PeerMessage::AuthProof { .. })) => {
                return Err(Error::PeerProtocol(format!(
                    "{} after the handshake",
                    message.name()
                )));
            }
            (FrameKind::Response, message) => shared.complete(peer, frame.request_id, message),
            (FrameKind::Request, message)
                if shared
                    .inline
                    .get()
                    .is_some_and(|inline| inline.takes(&message)) =>
            {
                if let Some(inline) = shared.inline.get() {
                    let (reply, writes) = inline.serve(peer, message);
                    held.push(frame.request_id, reply, writes);
                    if held.replies.len() >= INLINE_BATCH_MAX {
                        held.send(shared, peer);
                    }
                }
            }
            (kind, message) => {
                handlers.spawn(handle(
                    Arc::clone(shared),
                    peer.clone(),
                    kind,
                    frame.request_id,
                    message,
                ));
            }
        }
    }
}

/// Replies to inline requests, held until their writes are committed.
#[derive(Default)]
struct HeldReplies {
    /// Request id, reply, and whether the reply acknowledges a write.
    replies: Vec<(u64, PeerMessage, bool)>,
    writes: bool,
}

impl HeldReplies {
    fn push(&mut self, request_id: u64, reply: PeerMessage, writes: bool) {
        self.writes |= writes;
        self.replies.push((request_id, reply, writes));
    }

    /// Commits the held writes (once for all of them) and queues every held reply. When the
    /// commit fails, write acknowledgements become errors: a write is acknowledged only
    /// once its log record is written.
    fn send(&mut self, shared: &Shared, peer: &NodeId) {
        if self.replies.is_empty() {
            return;
        }
        let failed = match (self.writes, shared.inline.get()) {
            (true, Some(inline)) => inline.commit().err().map(|error| error.to_string()),
            _ => None,
        };
        self.writes = false;
        for (request_id, reply, writes) in self.replies.drain(..) {
            let reply = match (&failed, writes) {
                (Some(error), true) => PeerMessage::Error {
                    message: format!("the commit log failed: {error}"),
                },
                _ => reply,
            };
            if let Err(error) = shared.enqueue(peer, FrameKind::Response, request_id, reply) {
                log(
                    shared,
                    &format!("could not queue a reply to {peer}: {error}"),
                );
            }
        }
    }
}

/// Runs the handler on one message and queues the reply to a request.
async fn handle(
    shared: Arc<Shared>,
    peer: NodeId,
    kind: FrameKind,
    request_id: u64,
    message: PeerMessage,
) {
    let name = message.name();
    let reply = shared.handler.handle(&peer, message).await;
    if kind != FrameKind::Request {
        return;
    }
    let reply = reply.unwrap_or_else(|| PeerMessage::Error {
        message: format!("no reply to {name}"),
    });
    if let Err(error) = shared.enqueue(&peer, FrameKind::Response, request_id, reply) {
        log(
            &shared,
            &format!("could not queue the reply to {peer}'s {name}: {error}"),
        );
    }
}

/// Reads frames off one connection, dropping consumed bytes once per read rather than once
/// per frame: a 64 KiB read holds dozens of frames, and moving the rest of the buffer down
/// after each one cost a copy of the buffer per frame.
#[derive(Default)]
struct FrameReader {
    /// Bytes at the front of the buffer already decoded.
    consumed: usize,
}

impl FrameReader {
    /// The next whole frame already buffered, if any.
    fn buffered(&mut self, buffer: &[u8], limit: usize) -> Result<Option<Frame>> {
        match decode_frame(&buffer[self.consumed..], limit)? {
            Some((frame, used)) => {
                self.consumed += used;
                Ok(Some(frame))
            }
            None => Ok(None),
        }
    }

    /// Drops the decoded bytes and reads more; `Ok(false)` at a clean end of stream.
    async fn fill(&mut self, reader: &mut OwnedReadHalf, buffer: &mut Vec<u8>) -> Result<bool> {
        buffer.drain(..self.consumed);
        self.consumed = 0;
        buffer.reserve(64 * 1024);
        let read = reader.read_buf(buffer).await.map_err(|error| {
            Error::PeerProtocol(format!("reading from the connection: {error}"))
        })?;
        if read > 0 {
            return Ok(true);
        }
        if buffer.is_empty() {
            Ok(false)
        } else {
            Err(Error::PeerProtocol(format!(
                "stream ended inside a frame ({} bytes buffered)",
                buffer.len()
            )))
        }
    }
}

/// Reads until one whole frame is buffered; `Ok(None)` at a clean end of stream.
async fn read_frame(
    reader: &mut OwnedReadHalf,
    buffer: &mut Vec<u8>,
    limit: usize,
) -> Result<Option<Frame>> {
    loop {
        if let Some((frame, consumed)) = decode_frame(buffer, limit)? {
            buffer.drain(..consumed);
            return Ok(Some(frame));
        }
        buffer.reserve(64 * 1024);
        let read = reader.read_buf(buffer).await.map_err(|error| {
            Error::PeerProtocol(format!("reading from the connection: {error}"))
        })?;
        if read == 0 {
            return if buffer.is_empty() {
                Ok(None)
            } else {
                Err(Error::PeerProtocol(format!(
                    "stream ended inside a frame ({} bytes buffered)",
                    buffer.len()
                )))
            };
        }
    }
}
