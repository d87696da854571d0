//! One peer's writer task: orders queued messages by due time, keeps the connection to the
//! peer open (reconnecting with bounded exponential backoff) and writes each message when due.

use std::cmp::{Ordering as CompareOrdering, Reverse};
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::{auth, Shared};
use crate::protocol::peer::{
    decode_frame, encode_frame, set_frame_request_id, Frame, FrameKind, PeerMessage,
    HEADER_SIZE_BYTES,
};
use crate::ring::NodeId;
use crate::{Error, Result};

/// A message waiting for its emulated delay to pass.
pub(super) struct Outgoing {
    /// When the emulated delay ends.
    pub(super) due: Instant,
    /// Sending order, so messages due at the same instant keep it.
    pub(super) sequence: u64,
    /// The encoded frame.
    pub(super) bytes: FrameBytes,
}

/// A frame to write.
pub(super) enum FrameBytes {
    /// Encoded for this message alone.
    Owned(Vec<u8>),
    /// A request encoded once for several peers ([`super::EncodedRequest`]): this call's
    /// header (with its own request id), then the shared frame's payload. Saves copying the
    /// payload (a write's value) once per replica.
    Shared {
        header: [u8; HEADER_SIZE_BYTES],
        frame: Arc<Vec<u8>>,
    },
}

impl FrameBytes {
    /// `frame` (made by `encode_frame`) with `request_id` in its header.
    pub(super) fn for_call(frame: &Arc<Vec<u8>>, request_id: u64) -> FrameBytes {
        let Some(shared_header) = frame.get(..HEADER_SIZE_BYTES) else {
            let mut bytes = frame.to_vec();
            set_frame_request_id(&mut bytes, request_id);
            return FrameBytes::Owned(bytes);
        };
        let mut header = [0; HEADER_SIZE_BYTES];
        header.copy_from_slice(shared_header);
        set_frame_request_id(&mut header, request_id);
        FrameBytes::Shared {
            header,
            frame: Arc::clone(frame),
        }
    }

    async fn write_to<W: tokio::io::AsyncWrite + Unpin>(
        &self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        match self {
            FrameBytes::Owned(bytes) => writer.write_all(bytes).await,
            FrameBytes::Shared { header, frame } => {
                writer.write_all(header).await?;
                writer.write_all(&frame[HEADER_SIZE_BYTES..]).await
            }
        }
    }
}

impl Outgoing {
    fn key(&self) -> (Instant, u64) {
        (self.due, self.sequence)
    }
}

impl PartialEq for Outgoing {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Outgoing {}

impl PartialOrd for Outgoing {
    fn partial_cmp(&self, other: &Self) -> Option<CompareOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Outgoing {
    fn cmp(&self, other: &Self) -> CompareOrdering {
        self.key().cmp(&other.key())
    }
}

/// Bytes read from an outbound connection before it is given up: the peer only ever sends
/// a short refusal on it.
const REFUSAL_SIZE_BYTES_MAX: usize = 64 * 1024;

/// Bytes gathered before a write to the peer's socket (one flush per batch writes less).
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

struct Connection {
    writer: BufWriter<OwnedWriteHalf>,
    reader: OwnedReadHalf,
    received: Vec<u8>,
}

/// Why an outbound connection ended, learned by reading it.
enum Closed {
    /// The peer sent an `Error` frame and closed: it refused us.
    Refused(String),
    /// End of stream: the peer closed the connection (as every peer does when it stops).
    Ended,
    /// A read error, or bytes that make no sense on this connection.
    Lost(String),
}

pub(super) struct Writer {
    shared: Arc<Shared>,
    peer: NodeId,
    address: SocketAddr,
    queued: Arc<AtomicUsize>,
    backoff: Duration,
    next_attempt: Instant,
    /// Whether the last connection attempt failed, so a dead peer is logged once per outage.
    failing: bool,
    /// Whether a connection to the peer ever succeeded: failures before the first are the
    /// peer not being up yet (info), failures after it an outage (warn).
    connected_once: bool,
    /// Shared with the transport: set while the peer, once connected, cannot be connected
    /// to ([`super::PeerTransport::unreachable`]).
    unreachable: Arc<AtomicBool>,
}

impl Writer {
    pub(super) fn new(
        shared: Arc<Shared>,
        peer: NodeId,
        address: SocketAddr,
        queued: Arc<AtomicUsize>,
        unreachable: Arc<AtomicBool>,
    ) -> Self {
        let backoff = Duration::from_millis(shared.config.backoff_initial_ms);
        Writer {
            shared,
            peer,
            address,
            queued,
            backoff,
            next_attempt: Instant::now(),
            failing: false,
            connected_once: false,
            unreachable,
        }
    }

    /// Runs until the queue's sender is dropped (peer removed) or the task is aborted.
    pub(super) async fn run(mut self, mut queue: mpsc::UnboundedReceiver<Outgoing>) {
        let mut scheduled: BinaryHeap<Reverse<Outgoing>> = BinaryHeap::new();
        let mut connection: Option<Connection> = None;
        loop {
            let wake = scheduled.peek().map(|Reverse(next)| match connection {
                Some(_) => next.due,
                None => next.due.max(self.next_attempt),
            });
            tokio::select! {
                received = queue.recv() => match received {
                    Some(outgoing) => {
                        scheduled.push(Reverse(outgoing));
                        // Take everything queued meanwhile, and write what is due at once
                        // (every message, on links without delay): one write for the batch,
                        // without a trip through the timer per message.
                        while let Ok(outgoing) = queue.try_recv() {
                            scheduled.push(Reverse(outgoing));
                        }
                        // Let the tasks already runnable go first: woken by the first
                        // message, this task would run right after its sender (tokio's LIFO
                        // slot) and write one frame per system call while the other client
                        // connections' requests wait to be queued behind it. At redis-benchmark
                        // -P 1 a coordinator wrote 0.8 peer frames per request, one `sendto`
                        // each. With nothing else runnable this returns at once.
                        tokio::task::yield_now().await;
                        while let Ok(outgoing) = queue.try_recv() {
                            scheduled.push(Reverse(outgoing));
                        }
                        let now = Instant::now();
                        let due = scheduled.peek().is_some_and(|Reverse(next)| next.due <= now);
                        if due && (connection.is_some() || now >= self.next_attempt) {
                            self.write_due(&mut scheduled, &mut connection).await;
                        }
                    }
                    None => return,
                },
                () = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                    self.write_due(&mut scheduled, &mut connection).await;
                }
                closed = read_until_closed(connection.as_mut()), if connection.is_some() => {
                    connection = None;
                    self.closed(closed);
                }
            }
        }
    }

    /// Writes every message that is due, connecting first if needed.
    async fn write_due(
        &mut self,
        scheduled: &mut BinaryHeap<Reverse<Outgoing>>,
        connection: &mut Option<Connection>,
    ) {
        let now = Instant::now();
        let patience = self.shared.config.request_timeout();
        while let Some(Reverse(next)) = scheduled.peek() {
            if next.due > now {
                break;
            }
            if next.due + patience <= now {
                // Waited too long for a connection: whoever sent it has given up.
                scheduled.pop();
                self.queued.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
            if connection.is_none() {
                if now < self.next_attempt {
                    break;
                }
                match self.connect().await {
                    Ok(connected) => *connection = Some(connected),
                    Err(error) => {
                        self.connect_failed(error);
                        break;
                    }
                }
            }
            let Some(Reverse(outgoing)) = scheduled.pop() else {
                break;
            };
            self.queued.fetch_sub(1, Ordering::AcqRel);
            if let Some(open) = connection.as_mut() {
                if let Err(error) = outgoing.bytes.write_to(&mut open.writer).await {
                    // The message is lost with the connection, as unacknowledged bytes are
                    // when a real link fails; its caller times out.
                    self.log(&format!("write failed, reconnecting: {error}"));
                    *connection = None;
                }
            }
        }
        if let Some(open) = connection.as_mut() {
            if let Err(error) = open.writer.flush().await {
                self.log(&format!("write failed, reconnecting: {error}"));
                *connection = None;
            }
        }
    }

    async fn connect(&mut self) -> Result<Connection> {
        let timeout = self.shared.config.connect_timeout();
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(self.address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(self.unavailable(error.to_string())),
            Err(_) => {
                return Err(
                    self.unavailable(format!("no connection within {} ms", timeout.as_millis()))
                )
            }
        };
        // Small request and reply frames must not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.into_split();
        // Room for a few dozen value-carrying frames per write.
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, writer);
        let hello = Frame {
            kind: FrameKind::OneWay,
            request_id: 0,
            message: PeerMessage::Hello {
                node: self.shared.local.node.to_string(),
                datacenter: self.shared.local.datacenter.clone(),
                cluster_name: self.shared.config.cluster_name.clone(),
            },
        };
        let bytes = encode_frame(&hello, self.shared.config.frame_size_bytes_max)?;
        writer
            .write_all(&bytes)
            .await
            .map_err(|error| self.unavailable(error.to_string()))?;
        let mut received = Vec::new();
        if let Some(secret) = self.shared.config.cluster_secret.clone() {
            if let Err(error) = self
                .answer_challenge(&secret, &mut writer, &reader, &mut received)
                .await
            {
                // Calls waiting on this peer fail with the reason rather than a timeout.
                self.shared.fail_pending(&self.peer, &error.to_string());
                return Err(error);
            }
        }
        if self.failing {
            self.note("connected again");
        }
        self.failing = false;
        self.connected_once = true;
        if self.unreachable.swap(false, Ordering::Relaxed) {
            self.shared
                .unreachable_peers
                .fetch_sub(1, Ordering::Relaxed);
        }
        self.backoff = Duration::from_millis(self.shared.config.backoff_initial_ms);
        Ok(Connection {
            writer,
            reader,
            received,
        })
    }

    /// With a cluster secret the peer must challenge us right after `Hello`: waits (within
    /// the connect timeout) for its `AuthChallenge` and answers with the proof. A peer that
    /// refuses, or sends no challenge (it has no secret, so it could be anyone), fails the
    /// connection.
    async fn answer_challenge(
        &self,
        secret: &str,
        writer: &mut BufWriter<OwnedWriteHalf>,
        reader: &OwnedReadHalf,
        received: &mut Vec<u8>,
    ) -> Result<()> {
        let limit = self.shared.config.frame_size_bytes_max;
        writer
            .flush()
            .await
            .map_err(|error| self.unavailable(error.to_string()))?;
        let PeerMessage::AuthChallenge { nonce } =
            self.read_auth(reader, received, "AuthChallenge").await?
        else {
            unreachable!("read_auth returns the message named")
        };
        let proof = auth::prove(
            auth::Role::Caller,
            secret,
            &nonce,
            self.shared.local.node.as_str(),
            self.peer.as_str(),
            &self.shared.config.cluster_name,
        );
        // Mutual: challenge the acceptor in the same write, and send nothing else until it
        // proves the secret too.
        let ours = auth::new_nonce();
        for message in [
            PeerMessage::AuthProof { proof },
            PeerMessage::AuthChallenge {
                nonce: ours.clone(),
            },
        ] {
            let frame = Frame {
                kind: FrameKind::OneWay,
                request_id: 0,
                message,
            };
            writer
                .write_all(&encode_frame(&frame, limit)?)
                .await
                .map_err(|error| self.unavailable(error.to_string()))?;
        }
        writer
            .flush()
            .await
            .map_err(|error| self.unavailable(error.to_string()))?;
        let PeerMessage::AuthProof { proof } =
            self.read_auth(reader, received, "AuthProof").await?
        else {
            unreachable!("read_auth returns the message named")
        };
        let valid = auth::verify(
            auth::Role::Acceptor,
            secret,
            &ours,
            self.shared.local.node.as_str(),
            self.peer.as_str(),
            &self.shared.config.cluster_name,
            &proof,
        );
        if valid {
            Ok(())
        } else {
            Err(self.unavailable(format!(
                "authentication failed: {} ({}) failed the cluster secret check \
                 (wrong cluster_secret?)",
                self.peer, self.address
            )))
        }
    }

    /// Reads the peer's next frame during authentication: `expected`, or a refusal.
    async fn read_auth(
        &self,
        reader: &OwnedReadHalf,
        received: &mut Vec<u8>,
        expected: &str,
    ) -> Result<PeerMessage> {
        let timeout = self.shared.config.connect_timeout();
        let frame = match tokio::time::timeout(timeout, read_one(reader, received)).await {
            Err(_) => {
                return Err(self.unavailable(format!(
                    "no {expected} within {} ms (has the peer no cluster_secret?)",
                    timeout.as_millis()
                )))
            }
            Ok(Err(detail)) => return Err(self.unavailable(detail)),
            Ok(Ok(frame)) => frame,
        };
        match frame.message {
            PeerMessage::Error { message } => {
                Err(self.unavailable(format!("refused the connection: {message}")))
            }
            message if message.name() == expected => Ok(message),
            other => Err(self.unavailable(format!("sent {} instead of {expected}", other.name()))),
        }
    }

    fn connect_failed(&mut self, error: Error) {
        if !self.failing {
            let text = format!("cannot connect to {}: {error}", self.address);
            if self.connected_once {
                self.log(&text);
            } else {
                // Peers of a cluster starting together come up one after the other.
                self.note(&text);
            }
        }
        if self.connected_once && !self.unreachable.swap(true, Ordering::Relaxed) {
            self.shared
                .unreachable_peers
                .fetch_add(1, Ordering::Relaxed);
        }
        self.failing = true;
        self.next_attempt = Instant::now() + self.backoff;
        let backoff_max = Duration::from_millis(self.shared.config.backoff_max_ms);
        self.backoff = (self.backoff * 2).min(backoff_max);
    }

    fn closed(&mut self, closed: Closed) {
        match closed {
            Closed::Refused(reason) => {
                self.log(&format!("refused our connection: {reason}"));
                self.shared
                    .fail_pending(&self.peer, &format!("refused the connection: {reason}"));
                // Retrying at once would be refused again; wait as after a failed connect.
                self.failing = true;
                self.next_attempt = Instant::now() + self.backoff;
            }
            Closed::Ended => self.note("connection closed: closed by the peer"),
            Closed::Lost(reason) => self.log(&format!("connection closed: {reason}")),
        }
    }

    fn unavailable(&self, detail: String) -> Error {
        Error::PeerUnavailable {
            peer: self.peer.to_string(),
            detail,
        }
    }

    /// A peer connection's trouble: a write failed, a connect failed, a refusal.
    fn log(&self, text: &str) {
        log::warn!(
            "peer transport {}: peer {}: {text}",
            self.shared.local.node,
            self.peer
        );
    }

    /// A peer connection's ordinary news: connected again, closed by the peer (as every
    /// peer does when it stops).
    fn note(&self, text: &str) {
        log::info!(
            "peer transport {}: peer {}: {text}",
            self.shared.local.node,
            self.peer
        );
    }
}

/// Reads one frame (the peer's challenge or refusal) off a fresh connection, keeping any
/// bytes after it in `received`.
async fn read_one(
    reader: &OwnedReadHalf,
    received: &mut Vec<u8>,
) -> std::result::Result<Frame, String> {
    loop {
        match decode_frame(received, REFUSAL_SIZE_BYTES_MAX) {
            Ok(Some((frame, used))) => {
                received.drain(..used);
                return Ok(frame);
            }
            Ok(None) => {}
            Err(error) => return Err(error.to_string()),
        }
        received.reserve(4096);
        reader.readable().await.map_err(|error| error.to_string())?;
        match reader.try_read_buf(received) {
            Ok(0) => return Err("closed by the peer before authenticating".to_string()),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error.to_string()),
        }
    }
}

/// Reads an outbound connection until it ends. Nothing is expected on it but a refusal.
async fn read_until_closed(connection: Option<&mut Connection>) -> Closed {
    let Some(connection) = connection else {
        return Closed::Lost("no connection".to_string());
    };
    loop {
        match decode_frame(&connection.received, REFUSAL_SIZE_BYTES_MAX) {
            Ok(Some((frame, _))) => {
                return match frame.message {
                    PeerMessage::Error { message } => Closed::Refused(message),
                    PeerMessage::AuthChallenge { .. } => Closed::Refused(
                        "the peer requires a cluster secret and this node has none \
                         (set cluster_secret)"
                            .to_string(),
                    ),
                    other => Closed::Lost(format!("unexpected {} frame", other.name())),
                }
            }
            Ok(None) => {}
            Err(error) => return Closed::Lost(error.to_string()),
        }
        connection.received.reserve(4096);
        match connection.reader.read_buf(&mut connection.received).await {
            Ok(0) => return Closed::Ended,
            Ok(_) => {}
            Err(error) => return Closed::Lost(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::peer::encode_message_frame;

    #[tokio::test]
    async fn a_shared_frame_is_written_with_each_calls_request_id() {
        let message = PeerMessage::Put {
            key: b"k".to_vec(),
            siblings: vec![7; 100],
        };
        let frame =
            Arc::new(encode_message_frame(FrameKind::Request, 0, &message, 1 << 20).unwrap());
        for request_id in [1, 42] {
            let mut written: Vec<u8> = Vec::new();
            let bytes = FrameBytes::for_call(&frame, request_id);
            assert!(matches!(bytes, FrameBytes::Shared { .. }));
            bytes.write_to(&mut written).await.unwrap();
            let (decoded, used) = decode_frame(&written, 1 << 20).unwrap().unwrap();
            assert_eq!(used, written.len());
            assert_eq!(decoded.request_id, request_id);
            assert_eq!(decoded.message, message);
        }
        // The shared frame itself is left as encoded.
        let (original, _) = decode_frame(&frame, 1 << 20).unwrap().unwrap();
        assert_eq!(original.request_id, 0);
    }
}
