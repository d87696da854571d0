//! Event-loop threads for client connections, as Redis runs its clients: each thread is a
//! current-thread tokio runtime with its own epoll, and a connection stays on the thread it
//! was given (round robin at accept) for its whole life. No task moves between threads,
//! so a request wakes no other thread, and the group commit of one thread's connections
//! needs no hand-off.
//!
//! Measured under redis-benchmark `-t set -c 50 -d 1024 -P 1` on two cores (2026-11-30),
//! per request, the multi-thread scheduler's two workers against one connection thread:
//! futex 0.207 -> 0.001 (workers waking each other to steal), epoll_wait 0.29 -> 0.07,
//! commit-log writes 0.150 -> 0.032 (the commits of all 50 connections grouped on one
//! thread), server CPU 33-37 -> 27 us. Two connection threads split the group commit
//! again (0.118 writes per request).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::{Error, Result};

/// Running connection threads; stopped (after their connections) when dropped.
pub struct ConnectionThreads {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stop: Option<watch::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl ConnectionThreads {
    /// Starts `count` threads (at least 1), each running a current-thread runtime with I/O
    /// and timers enabled until the set is dropped.
    pub fn start(count: usize) -> Result<ConnectionThreads> {
        let (stop, stopped) = watch::channel(());
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        for index in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| Error::Io {
                    context: format!("cannot start connection thread {index}'s runtime"),
                    error,
                })?;
            handles.push(runtime.handle().clone());
            let mut stopped = stopped.clone();
            let thread = std::thread::Builder::new()
                .name(format!("kvnode-conn-{index}"))
                .spawn(move || {
                    // `changed` fails once the sender is dropped: the set was dropped.
                    runtime.block_on(async move { while stopped.changed().await.is_ok() {} });
                    // Connections have finished by then; never wait here for a storage
                    // call still running on the blocking pool.
                    runtime.shutdown_background();
                })
                .map_err(|error| Error::Io {
                    context: format!("cannot start connection thread {index}"),
                    error,
                })?;
            threads.push(thread);
        }
        Ok(ConnectionThreads {
            handles,
            next: AtomicUsize::new(0),
            stop: Some(stop),
            threads,
        })
    }

    /// How many threads serve connections.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Always false: a set has at least one thread.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The runtime of the thread the next connection goes to (round robin).
    pub fn next_handle(&self) -> &Handle {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[index]
    }
}

impl Drop for ConnectionThreads {
    fn drop(&mut self) {
        drop(self.stop.take());
        // Joined only when it cannot be one of these threads dropping its own set (that
        // would wait for itself): the threads end on their own in either case.
        let current = std::thread::current().id();
        if self
            .threads
            .iter()
            .all(|thread| thread.thread().id() != current)
            && Handle::try_current().is_err()
        {
            for thread in self.threads.drain(..) {
                let _ = thread.join();
            }
        }
    }
}
