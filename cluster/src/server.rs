//! The client-facing server: RESP over TCP, so `redis-cli`, `redis-benchmark` and client
//! libraries work unchanged.
//!
//! [`RunningNode::start`] opens the local store, binds the client address and serves until
//! [`RunningNode::stop`]: the listener closes, each connection finishes the batch of
//! commands it is executing and flushes its replies, and the engine is closed (synced).
//!
//! - [`backend`]: the [`Backend`] trait between the server and the data, with the
//!   single-node [`LocalBackend`]; with other members the node uses
//!   [`crate::coordinator::Coordinator`] instead.
//! - [`connection`]: one client: read, decode every complete frame, execute in order,
//!   reply in one write (pipelining).
//! - [`commands`]: what each request does; [`admin`]: INFO, COMMAND, CONFIG, CLIENT, HELLO.
//! - [`threads`]: optional Redis-like event-loop threads for the connections
//!   ([`ServeOptions::connection_threads`]).

pub mod admin;
pub mod backend;
pub mod commands;
pub mod connection;
pub mod threads;

pub use backend::{join_all, Backend, BoxFuture, LocalBackend, ReadReply, ScanRows};
pub use threads::ConnectionThreads;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::config::NodeConfig;
use crate::coordinator::{Coordinator, LinkControl};
use crate::store::LocalStore;
use crate::{Error, Result};

/// How long shutdown waits for connections to finish their in-flight commands before
/// dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What every connection of a node shares.
pub struct ServerContext {
    /// The node's configuration (validated).
    pub config: NodeConfig,
    /// Where data requests go.
    pub backend: Arc<dyn Backend>,
    /// When the server started, for INFO's uptime.
    pub started: Instant,
    /// Counters for INFO.
    pub counters: ServerCounters,
    /// The link emulator's admin side (`LINK.*`); on a node without members it changes an
    /// emulator no message passes through.
    pub links: Arc<LinkControl>,
}

/// Server-wide counters, updated with relaxed atomics (they are only reported).
#[derive(Default)]
pub struct ServerCounters {
    /// Connections accepted since start; also the source of `CLIENT ID`.
    pub connections_received: AtomicU64,
    /// Connections open now.
    pub connected_clients: AtomicU64,
    /// Requests executed (errors included).
    pub commands_processed: AtomicU64,
}

/// How a node runs its client connections (not part of [`NodeConfig`]: a property of the
/// process, not of the node).
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// Event-loop threads for client connections, each a current-thread runtime holding
    /// its connections for life (see [`threads`]). 0 (the default) serves every
    /// connection as a task of the runtime that called [`RunningNode::start_with`].
    pub connection_threads: usize,
}

/// A node serving clients on a background task.
pub struct RunningNode {
    client_address: SocketAddr,
    backend: Arc<dyn Backend>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<()>>,
    threads: Option<Arc<ConnectionThreads>>,
}

impl RunningNode {
    /// Opens the store in `config.data_dir`, binds `config.client_address` and starts
    /// serving, with every connection a task of the calling runtime. `config` must already
    /// be validated.
    pub async fn start(config: NodeConfig) -> Result<RunningNode> {
        Self::start_with(config, ServeOptions::default()).await
    }

    /// [`RunningNode::start`] with `options` saying where connections run.
    pub async fn start_with(config: NodeConfig, options: ServeOptions) -> Result<RunningNode> {
        let listener = TcpListener::bind(config.client_address)
            .await
            .map_err(|error| Error::Io {
                context: format!("cannot listen for clients on {}", config.client_address),
                error,
            })?;
        let client_address = listener.local_addr().map_err(|error| Error::Io {
            context: "cannot read the client listener's address".into(),
            error,
        })?;
        let directory = config.data_dir.clone();
        let engine_options = config.engine.clone();
        let versions = config.versions.clone();
        // Opening replays the commit log: blocking work, kept off the reactor.
        let store = tokio::task::spawn_blocking(move || {
            LocalStore::open(&directory, engine_options, versions)
        })
        .await
        .map_err(|error| Error::Stopped(format!("opening the store failed: {error}")))??;
        let store = Arc::new(store);
        // With other members the node coordinates over the ring; alone it keeps one replica.
        let (backend, coordinator): (Arc<dyn Backend>, Option<Arc<Coordinator>>) =
            if config.members.len() > 1 {
                let coordinator = Coordinator::start(&config, Arc::clone(&store)).await?;
                (coordinator.clone(), Some(coordinator))
            } else {
                let local = LocalBackend::new(Arc::clone(&store), config.node_id.clone());
                (Arc::new(local), None)
            };
        let links = match &coordinator {
            Some(coordinator) => coordinator.links(),
            None => Arc::new(LinkControl::new(
                &config.node_id,
                &config.datacenter,
                &config.links,
            )?),
        };
        let context = Arc::new(ServerContext {
            links,
            config,
            backend: Arc::clone(&backend),
            started: Instant::now(),
            counters: ServerCounters::default(),
        });
        let threads = match options.connection_threads {
            0 => None,
            count => Some(Arc::new(ConnectionThreads::start(count)?)),
        };
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let serve_threads = threads.clone();
        let task = tokio::spawn(async move {
            serve(
                listener,
                Arc::clone(&context),
                shutdown_receiver,
                serve_threads,
            )
            .await;
            drop(context);
            if let Some(coordinator) = coordinator {
                coordinator.shutdown().await;
            }
            close_store(store).await
        });
        Ok(RunningNode {
            client_address,
            backend,
            shutdown,
            task,
            threads,
        })
    }

    /// The node's data layer, as its clients reach it (for in-process tests and tools).
    pub fn backend(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.backend)
    }

    /// The address clients connect to (the bound one, so port 0 resolves).
    pub fn client_address(&self) -> SocketAddr {
        self.client_address
    }

    /// Stops accepting, lets connections finish their in-flight commands, closes the store.
    pub async fn stop(self) -> Result<()> {
        // An error means the serving task already ended; joining it reports why.
        let _ = self.shutdown.send(true);
        let result = self
            .task
            .await
            .map_err(|error| Error::Stopped(format!("server task failed: {error}")))?;
        // The connections have finished: their threads may go.
        drop(self.threads);
        result
    }
}

/// Accepts until shutdown, at most `client_connections_max` connections at once, then
/// waits (up to [`SHUTDOWN_GRACE`]) for the connections to finish.
async fn serve(
    listener: TcpListener,
    context: Arc<ServerContext>,
    mut shutdown: watch::Receiver<bool>,
    threads: Option<Arc<ConnectionThreads>>,
) {
    let permits = Arc::new(Semaphore::new(context.config.client_connections_max));
    let mut connections = JoinSet::new();
    loop {
        // Taking the permit before accepting leaves excess clients in the kernel's accept
        // queue instead of accepting and dropping them.
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        // Reap finished connections so the set stays as large as the open ones.
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, _peer)) => {
                let context = Arc::clone(&context);
                let shutdown = shutdown.clone();
                match &threads {
                    None => {
                        connections.spawn(async move {
                            connection::serve_connection(stream, context, shutdown).await;
                            drop(permit);
                        });
                    }
                    Some(threads) => {
                        // A socket belongs to the reactor that registered it: hand it over
                        // unregistered, and register it on the connection's own thread.
                        let Ok(stream) = stream.into_std() else {
                            continue;
                        };
                        connections.spawn_on(
                            async move {
                                if let Ok(stream) = tokio::net::TcpStream::from_std(stream) {
                                    connection::serve_connection(stream, context, shutdown).await;
                                }
                                drop(permit);
                            },
                            threads.next_handle(),
                        );
                    }
                }
            }
            // Per-connection failures (the client reset before accept, EMFILE) must not
            // end the server; back off briefly so a full fd table does not spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
}

async fn close_store(store: Arc<LocalStore>) -> Result<()> {
    tokio::task::spawn_blocking(move || match Arc::try_unwrap(store) {
        Ok(store) => store.close(),
        // A storage call outlived its connection (shutdown grace ran out); the engine's
        // Drop still syncs and stops its threads when that call ends.
        Err(_) => Ok(()),
    })
    .await
    .map_err(|error| Error::Stopped(format!("closing the store failed: {error}")))?
}

impl ServerCounters {
    /// The next `CLIENT ID`, counting connections.
    pub fn next_client_id(&self) -> u64 {
        self.connections_received.fetch_add(1, Ordering::Relaxed) + 1
    }
}
