//! The io_uring backend: a dedicated thread runs a `tokio_uring` runtime that owns the file
//! and performs writes and syncs submitted by callers, who block on the reply.
//!
//! Requests are served concurrently (each in its own task on the uring thread) so that a
//! periodic `fdatasync` does not hold back a write issued meanwhile. The request queue needs
//! no explicit bound: every caller waits for its reply before sending another request, so
//! the queue never holds more requests than there are threads using the file.

use crate::{Error, Result};
use std::collections::VecDeque;
use std::fs::File;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::thread::JoinHandle;

/// Submission queue entries of each file's ring: requests are few at a time (see the module
/// comment), so a small ring suffices.
const RING_ENTRIES: u32 = 64;

/// Largest write buffer kept for reuse between writes; larger ones are freed so that one
/// huge record does not pin its memory for the life of the file.
const SPARE_BUFFER_BYTES_MAX: usize = 8 << 20;

pub(super) struct UringFile {
    queue: Arc<RequestQueue>,
    /// A second descriptor for the rare operations the uring thread need not do (truncate,
    /// length): `tokio-uring` offers no ftruncate or fstat.
    control: Option<File>,
    thread: Option<JoinHandle<io::Result<()>>>,
    spare_buffer: parking_lot::Mutex<Vec<u8>>,
}

type WriteReply = (io::Result<()>, Vec<u8>);

enum Request {
    Write {
        buffer: Vec<u8>,
        offset: u64,
        /// Sync after the write, saving a second round trip to the uring thread.
        sync: bool,
        reply: SyncSender<WriteReply>,
    },
    Sync {
        reply: SyncSender<io::Result<()>>,
    },
}

impl UringFile {
    /// Starts the uring thread for `file`, or reports why io_uring cannot run here.
    pub(super) fn start(file: File) -> Result<UringFile> {
        let control = file
            .try_clone()
            .map_err(|error| Error::BackendUnavailable {
                backend: "uring",
                detail: format!("cannot duplicate the file descriptor: {error}"),
            })?;
        let queue = Arc::new(RequestQueue::default());
        let (setup_sender, setup_receiver) = sync_channel::<io::Result<()>>(1);
        let thread_queue = queue.clone();
        let thread = std::thread::Builder::new()
            .name("wal-uring".to_string())
            .spawn(move || run(file, thread_queue, setup_sender))
            .map_err(|error| Error::BackendUnavailable {
                backend: "uring",
                detail: format!("cannot start the io_uring thread: {error}"),
            })?;
        let setup = setup_receiver
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the io_uring thread exited during setup")));
        if let Err(error) = setup {
            // The thread has already returned; its result adds nothing to the setup error.
            let _ = thread.join();
            return Err(Error::BackendUnavailable {
                backend: "uring",
                detail: format!("io_uring setup failed: {error}"),
            });
        }
        Ok(UringFile {
            queue,
            control: Some(control),
            thread: Some(thread),
            spare_buffer: parking_lot::Mutex::new(Vec::new()),
        })
    }

    pub(super) fn write_at(&self, data: &[u8], offset: u64, sync: bool) -> io::Result<()> {
        // io_uring needs a buffer it owns until the kernel is done with it, hence the copy;
        // the buffer comes back with the reply and is kept for the next write.
        let mut buffer = std::mem::take(&mut *self.spare_buffer.lock());
        buffer.clear();
        buffer.extend_from_slice(data);
        let (reply, receiver) = sync_channel(1);
        self.queue.push(Request::Write {
            buffer,
            offset,
            sync,
            reply,
        })?;
        let (result, buffer) = receiver.recv().map_err(|_| thread_gone())?;
        if buffer.capacity() <= SPARE_BUFFER_BYTES_MAX {
            *self.spare_buffer.lock() = buffer;
        }
        result
    }

    pub(super) fn sync_data(&self) -> io::Result<()> {
        let (reply, receiver) = sync_channel(1);
        self.queue.push(Request::Sync { reply })?;
        receiver.recv().map_err(|_| thread_gone())?
    }

    pub(super) fn truncate(&self, length: u64) -> io::Result<()> {
        self.control()?.set_len(length)
    }

    pub(super) fn length(&self) -> io::Result<u64> {
        Ok(self.control()?.metadata()?.len())
    }

    fn control(&self) -> io::Result<&File> {
        self.control
            .as_ref()
            .ok_or_else(|| io::Error::other("the file is closed"))
    }

    pub(super) fn close(mut self) -> io::Result<()> {
        self.queue.close();
        let thread_result = match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| thread_gone())?,
            None => Ok(()),
        };
        let control_result = match self.control.take() {
            Some(control) => super::portable::close_file(control),
            None => Ok(()),
        };
        thread_result.and(control_result)
    }
}

/// A handle dropped without `close` (say, during unwinding) must still stop its thread,
/// which would otherwise wait for requests forever.
impl Drop for UringFile {
    fn drop(&mut self) {
        self.queue.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn thread_gone() -> io::Error {
    io::Error::other("the io_uring thread stopped")
}

fn run(file: File, queue: Arc<RequestQueue>, setup: SyncSender<io::Result<()>>) -> io::Result<()> {
    let runtime = match tokio_uring::Runtime::new(tokio_uring::builder().entries(RING_ENTRIES)) {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = setup.send(Err(error));
            return Ok(());
        }
    };
    // The receiver waits for this message; if it is gone there is nobody left to serve.
    if setup.send(Ok(())).is_err() {
        return Ok(());
    }
    runtime.block_on(serve(file, queue))
}

async fn serve(file: File, queue: Arc<RequestQueue>) -> io::Result<()> {
    let file = Rc::new(tokio_uring::fs::File::from_std(file));
    while let Some(request) = queue.next().await {
        let file = file.clone();
        tokio_uring::spawn(async move {
            match request {
                Request::Write {
                    buffer,
                    offset,
                    sync,
                    reply,
                } => {
                    let (mut result, buffer) = file.write_all_at(buffer, offset).await;
                    if sync && result.is_ok() {
                        result = file.sync_data().await;
                    }
                    let reply_value = (result, buffer);
                    // A caller that vanished no longer needs the answer.
                    let _ = reply.send(reply_value);
                }
                Request::Sync { reply } => {
                    let _ = reply.send(file.sync_data().await);
                }
            }
        });
    }
    // Callers block until answered and `close` consumes the handle, so every task has
    // replied by now; a task may still hold its clone for an instant, hence the fallback.
    match Rc::try_unwrap(file) {
        Ok(file) => file.close().await,
        Err(_) => Ok(()),
    }
}

/// A multi-producer queue whose consumer is an async task on the uring thread.
#[derive(Default)]
struct RequestQueue {
    state: parking_lot::Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    requests: VecDeque<Request>,
    waker: Option<Waker>,
    closed: bool,
}

impl RequestQueue {
    fn push(&self, request: Request) -> io::Result<()> {
        let waker = {
            let mut state = self.state.lock();
            if state.closed {
                return Err(io::Error::other("the file is closed"));
            }
            state.requests.push_back(request);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    fn close(&self) {
        let waker = {
            let mut state = self.state.lock();
            state.closed = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    async fn next(&self) -> Option<Request> {
        poll_fn(|context| {
            let mut state = self.state.lock();
            if let Some(request) = state.requests.pop_front() {
                return Poll::Ready(Some(request));
            }
            if state.closed {
                return Poll::Ready(None);
            }
            state.waker = Some(context.waker().clone());
            Poll::Pending
        })
        .await
    }
}
