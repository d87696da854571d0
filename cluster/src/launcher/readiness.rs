//! Knowing when a launched node serves: a `kvnode` process prints one ready line on
//! stdout; any node, wherever it runs, answers `PING` on its client address.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// What `kvnode` prints on stdout once it serves (see `src/bin/kvnode.rs`).
pub const READY_MARKER: &str = "serving clients on";

/// Waits up to `timeout` for the first line of `stdout` and says whether it is the ready
/// line. The rest of the output is drained on a background thread until the process
/// closes it: a later line on a closed pipe would fail the node's print.
pub fn wait_for_ready_line<R: Read + Send + 'static>(stdout: Option<R>, timeout: Duration) -> bool {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        if let Some(stdout) = stdout {
            let mut reader = BufReader::new(stdout);
            let _ = reader.read_line(&mut line);
            let _ = sender.send(line);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        } else {
            let _ = sender.send(line);
        }
    });
    receiver
        .recv_timeout(timeout)
        .unwrap_or_default()
        .contains(READY_MARKER)
}

/// Sends `PING` to `address` until it answers `+PONG`, for at most `timeout`.
pub fn wait_until_serving(address: SocketAddr, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let last_error = match ping(address, deadline) {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        if Instant::now() >= deadline {
            return Err(Error::Stopped(format!(
                "node at {address} did not answer PING within {} ms: {last_error}",
                timeout.as_millis()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ping(address: SocketAddr, deadline: Instant) -> std::io::Result<()> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    let mut stream = TcpStream::connect_timeout(&address, left)?;
    stream.set_read_timeout(Some(left))?;
    stream.write_all(b"*1\r\n$4\r\nPING\r\n")?;
    let mut line = String::new();
    BufReader::new(stream.take(512)).read_line(&mut line)?;
    // A node with `requirepass` refuses PING before AUTH, but it does serve.
    if line.starts_with("+PONG") || line.starts_with("-NOAUTH") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("unexpected reply {line:?}")))
    }
}
