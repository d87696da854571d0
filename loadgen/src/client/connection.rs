//! One TCP connection to a RESP server: requests appended to a write buffer and flushed
//! together, replies parsed in order from a read buffer (pipelining).
//!
//! Connections are opened blocking (so an unreachable target fails before the run
//! starts, with its address in the message) and then handed to a load thread's runtime.

use super::resp::{parse_reply, push_command, ProtocolError, Reply, BULK_BYTES_MAX};
use crate::{Error, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Read buffer size to start with; grows for larger replies.
const READ_BUFFER_BYTES_INITIAL: usize = 64 * 1024;
/// Free space below which the read buffer is compacted or grown before reading.
const READ_SPACE_BYTES_MIN: usize = 16 * 1024;

/// A target address as given and as resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// As the user wrote it (`127.0.0.1:6379`, `localhost:7379`).
    pub name: String,
    pub address: SocketAddr,
}

impl Target {
    /// Resolves `host:port`.
    pub fn resolve(name: &str) -> Result<Target> {
        let invalid = |detail: String| Error::InvalidTarget {
            target: name.to_string(),
            detail,
        };
        let address = name
            .to_socket_addrs()
            .map_err(|error| invalid(format!("not a host:port that resolves ({error})")))?
            .next()
            .ok_or_else(|| invalid("resolves to no address".to_string()))?;
        Ok(Target {
            name: name.to_string(),
            address,
        })
    }
}

/// Opens a blocking connection with a connect timeout; the error names the target.
pub fn connect_blocking(target: &Target, timeout: Duration) -> Result<StdTcpStream> {
    let failed = |reason| Error::Connect {
        target: target.name.clone(),
        reason,
    };
    let stream = StdTcpStream::connect_timeout(&target.address, timeout).map_err(failed)?;
    stream.set_nodelay(true).map_err(failed)?;
    Ok(stream)
}

/// Sends one command on a blocking connection and returns its reply's bytes: the bulk
/// string's content, the status or error text (an error as `Err`). For start-up commands
/// such as `INFO`, not for the measured path.
pub fn command_blocking(
    stream: &mut StdTcpStream,
    target: &Target,
    arguments: &[&[u8]],
    timeout: Duration,
) -> Result<std::result::Result<Vec<u8>, String>> {
    let failed = |detail: String| Error::Connection {
        target: target.name.clone(),
        detail,
    };
    let mut request = Vec::new();
    push_command(&mut request, arguments);
    stream
        .write_all(&request)
        .map_err(|error| failed(format!("write: {error}")))?;
    let deadline = Instant::now() + timeout;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some((reply, _)) = parse_reply(&buffer).map_err(|error| failed(error.to_string()))? {
            return Ok(match reply {
                Reply::Bulk(bytes) | Reply::Status(bytes) => Ok(bytes.to_vec()),
                Reply::Error(text) => Err(String::from_utf8_lossy(text).into_owned()),
                other => Ok(format!("{other:?}").into_bytes()),
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(failed(format!(
                "no reply within {} ms",
                timeout.as_millis()
            )));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|error| failed(error.to_string()))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Err(failed("the server closed the connection".to_string())),
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            Err(error) => return Err(failed(format!("read: {error}"))),
        }
    }
}

/// A pipelined connection on a load thread's runtime.
#[derive(Debug)]
pub struct Connection {
    target: String,
    stream: TcpStream,
    read_buffer: Vec<u8>,
    read_start: usize,
    read_end: usize,
    write_buffer: Vec<u8>,
}

impl Connection {
    /// Takes over a connected blocking stream; must be called inside a tokio runtime.
    pub fn from_std(stream: StdTcpStream, target: &Target) -> Result<Connection> {
        let failed = |error: std::io::Error| Error::Connection {
            target: target.name.clone(),
            detail: error.to_string(),
        };
        stream.set_read_timeout(None).map_err(failed)?;
        stream.set_nonblocking(true).map_err(failed)?;
        let stream = TcpStream::from_std(stream).map_err(failed)?;
        Ok(Connection {
            target: target.name.clone(),
            stream,
            read_buffer: vec![0; READ_BUFFER_BYTES_INITIAL],
            read_start: 0,
            read_end: 0,
            write_buffer: Vec::with_capacity(64 * 1024),
        })
    }

    /// The target's name, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Where requests are appended before [`Self::flush`].
    pub fn write_buffer(&mut self) -> &mut Vec<u8> {
        &mut self.write_buffer
    }

    /// Whether requests wait in the write buffer.
    pub fn has_unflushed(&self) -> bool {
        !self.write_buffer.is_empty()
    }

    /// Sends every buffered request.
    pub async fn flush(&mut self) -> Result<()> {
        if self.write_buffer.is_empty() {
            return Ok(());
        }
        let result = self.stream.write_all(&self.write_buffer).await;
        self.write_buffer.clear();
        result.map_err(|error| self.io_error("write", &error))
    }

    /// An I/O failure, worded plainly when the server closed the connection.
    fn io_error(&self, operation: &str, error: &std::io::Error) -> Error {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
        if matches!(
            error.kind(),
            ConnectionReset | BrokenPipe | ConnectionAborted
        ) {
            self.error(format!(
                "the server closed the connection ({operation}: {error})"
            ))
        } else {
            self.error(format!("{operation}: {error}"))
        }
    }

    /// Waits until the socket has bytes to read (or is closed).
    pub async fn readable(&self) -> Result<()> {
        self.stream
            .readable()
            .await
            .map_err(|error| self.error(format!("read: {error}")))
    }

    /// Polls for bytes to read (or a closed connection), for waiting on several
    /// connections at once.
    pub fn poll_read_ready(
        &self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<()>> {
        self.stream
            .poll_read_ready(context)
            .map_err(|error| self.error(format!("read: {error}")))
    }

    /// Reads what the socket has without waiting; returns the number of bytes read
    /// (0 if none were ready). A closed connection is an error.
    pub fn try_fill(&mut self) -> Result<usize> {
        self.make_room()?;
        match self.stream.try_read(&mut self.read_buffer[self.read_end..]) {
            Ok(0) => Err(self.error("the server closed the connection".to_string())),
            Ok(read) => {
                self.read_end += read;
                Ok(read)
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
            Err(error) => Err(self.io_error("read", &error)),
        }
    }

    /// The next complete reply in the read buffer, if any; hand it to `handle`, which sees
    /// it borrowed from the buffer.
    pub fn next_reply<T>(&mut self, handle: impl FnOnce(&Reply<'_>) -> T) -> Result<Option<T>> {
        let parsed = parse_reply(&self.read_buffer[self.read_start..self.read_end]);
        match parsed {
            Ok(Some((reply, consumed))) => {
                let result = handle(&reply);
                self.read_start += consumed;
                if self.read_start == self.read_end {
                    self.read_start = 0;
                    self.read_end = 0;
                }
                Ok(Some(result))
            }
            Ok(None) => Ok(None),
            Err(ProtocolError(detail)) => Err(self.error(format!("RESP protocol error: {detail}"))),
        }
    }

    fn make_room(&mut self) -> Result<()> {
        if self.read_buffer.len() - self.read_end >= READ_SPACE_BYTES_MIN {
            return Ok(());
        }
        if self.read_start > 0 {
            self.read_buffer
                .copy_within(self.read_start..self.read_end, 0);
            self.read_end -= self.read_start;
            self.read_start = 0;
        }
        if self.read_buffer.len() - self.read_end < READ_SPACE_BYTES_MIN {
            if self.read_buffer.len() > BULK_BYTES_MAX + 2 * READ_BUFFER_BYTES_INITIAL {
                return Err(
                    self.error(format!("reply larger than the {BULK_BYTES_MAX}-byte limit"))
                );
            }
            let grown = self.read_buffer.len() * 2;
            self.read_buffer.resize(grown, 0);
        }
        Ok(())
    }

    /// A mid-run failure of this connection.
    pub fn error(&self, detail: String) -> Error {
        Error::Connection {
            target: self.target.clone(),
            detail,
        }
    }
}
