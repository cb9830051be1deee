//! The standalone server: one process serving OpenWhisk's controller REST API for its programming
//! model (actions, activations, web actions, namespaces, packages and bindings, sequences, triggers
//! and rules), backed by an embedded store under a data directory, with the `/whisk.system/utils`
//! catalog installed at start ([`catalog`]).
//!
//! It is a second *source* feeding the same pool and record builder as the Kafka invoker: every
//! invoke becomes one [`crate::message::ActivationMessage`], exactly as the controller would have
//! put it on `invoker{N}`, and goes through the same processor ([`crate::processor::Processor`]).
//!
//! [`api::handle`] answers one request (tests call it without a socket); [`Server`] binds a listener
//! and serves HTTP/1.1 connections with it until shut down.

pub mod api;
pub mod auth;
pub mod backend;
pub mod catalog;
pub mod http;
pub mod validate;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use api::{KindSet, State, handle};

use crate::blacklist::Blacklist;
use crate::clock::SystemClock;
use crate::limits::LimitRanges;
use crate::loader::{ActionLoader, DEFAULT_ACTION_CACHE_BYTES};
use crate::metrics::Metrics;
use crate::pool::{Pool, PoolConfig, PoolFactory};
use crate::processor::Processor;
use crate::store::local::LocalStore;
use crate::store::write_behind::WriteBehind;
use crate::store::{ActivationStore, EntityStore, StoreLevel};

/// OpenWhisk's standalone port (`wsk` and the npm client's local default).
pub const DEFAULT_PORT: u16 = 3233;

/// A running standalone server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and serves `state` until [`Server::shutdown`].
    pub async fn bind(addr: SocketAddr, state: Arc<State>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(http::serve(listener, state, cancel.clone()));
        tracing::info!(%addr, "standalone server listening");
        Ok(Self {
            addr,
            cancel,
            tasks,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets open requests finish (up to `grace`), and returns.
    pub async fn shutdown(self, grace: Duration) {
        self.cancel.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("standalone server: connections still open after the grace period");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// How a standalone node is set up. Every field documents its default.
#[derive(Debug, Clone)]
pub struct StandaloneConfig {
    /// Where the server listens. Default `127.0.0.1:3233`.
    pub addr: SocketAddr,
    /// The embedded store's directory: action documents and activation records live here and
    /// survive restarts. No default: the command line picks one.
    pub data_dir: std::path::PathBuf,
    /// The accepted API keys. Default: OpenWhisk's guest key for namespace `guest`.
    pub subjects: auth::Subjects,
    /// The exec kinds accepted on PUT. Default: `wasm:wasip1` only (the command adds the runtimes
    /// manifest's kinds when Docker answers).
    pub kinds: KindSet,
    /// The pool's parameters (memory in MB, timers). Default: [`PoolConfig::default`] (2048 MB).
    pub pool: PoolConfig,
    /// How long blocking invokes wait before answering 202. Default 60 s.
    pub max_blocking_wait: Duration,
}

impl StandaloneConfig {
    /// The defaults, storing under `data_dir`.
    pub fn new(data_dir: impl Into<std::path::PathBuf>) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            data_dir: data_dir.into(),
            subjects: auth::Subjects::default(),
            kinds: KindSet::new([]),
            pool: PoolConfig::default(),
            max_blocking_wait: api::MAX_BLOCKING_WAIT,
        }
    }
}

/// Why a standalone node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// The pool refused its configuration.
    #[error(transparent)]
    Pool(#[from] crate::pool::PoolError),
    /// The data directory cannot be used.
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The catalog (`/whisk.system/utils`) could not be installed in the store.
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    /// The port cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// What [`Standalone::assemble`] builds.
#[derive(Debug)]
pub struct Assembled {
    /// The request state, for [`handle`].
    pub state: Arc<State>,
    /// The pool, to shut down.
    pub pool: Arc<Pool>,
    /// The write-behind activation store, to flush at shutdown.
    pub records: Arc<WriteBehind>,
}

/// A running standalone node: server, processor, pool and store.
#[derive(Debug)]
pub struct Standalone {
    server: Server,
    pool: Arc<Pool>,
    records: Arc<WriteBehind>,
}

impl Standalone {
    /// Opens the store under `config.data_dir`, starts the pool over `factories` (asked in order
    /// which one runs a kind), builds the processor (the Kafka invoker's, without acks) and serves.
    pub async fn start(
        config: StandaloneConfig,
        factories: Vec<PoolFactory>,
    ) -> Result<Self, StandaloneError> {
        let addr = config.addr;
        let Assembled {
            state,
            pool,
            records,
        } = Self::assemble(config, factories).await?;
        let server = Server::bind(addr, state)
            .await
            .map_err(|source| StandaloneError::Bind { addr, source })?;
        Ok(Self {
            server,
            pool,
            records,
        })
    }

    /// Everything [`Standalone::start`] builds except the listener: the request state (for
    /// [`handle`]), the pool and the write-behind record store (to shut down and flush).
    pub async fn assemble(
        config: StandaloneConfig,
        factories: Vec<PoolFactory>,
    ) -> Result<Assembled, StandaloneError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StandaloneError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let store = Arc::new(LocalStore::new(config.data_dir.clone()));
        let entities: Arc<dyn EntityStore> = store.clone();
        let records = Arc::new(WriteBehind::new(store));
        let activations: Arc<dyn ActivationStore> = records.clone();
        let pool =
            Arc::new(Pool::start(config.pool.clone(), factories, Arc::new(SystemClock)).await?);
        let limits = LimitRanges::default();
        let loader = Arc::new(ActionLoader::new(
            Arc::clone(&entities),
            Arc::new(config.kinds.clone()),
            limits,
            DEFAULT_ACTION_CACHE_BYTES,
        ));
        let processor = Arc::new(Processor {
            pool: Arc::clone(&pool),
            loader,
            activations: Arc::clone(&activations),
            acks: None,
            metrics: Arc::new(Metrics::new()),
            blacklist: Arc::new(Blacklist::default()),
            blocking_level: StoreLevel::default(),
            non_blocking_level: StoreLevel::default(),
        });
        let backend = Arc::new(backend::StoreBackend::new(processor));
        let installed = catalog::install(backend.as_ref()).await?;
        if !installed.written.is_empty() {
            tracing::info!(written = ?installed.written, "catalog installed");
        }
        let state = Arc::new(State {
            subjects: config.subjects,
            kinds: config.kinds,
            limits,
            backend,
            max_blocking_wait: config.max_blocking_wait,
        });
        Ok(Assembled {
            state,
            pool,
            records,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Stops serving, waits for running activations (up to `grace`) and stops the pool.
    pub async fn shutdown(self, grace: Duration) {
        self.server.shutdown(grace).await;
        self.pool.shutdown(grace).await;
        self.records.flush(grace).await;
    }
}
