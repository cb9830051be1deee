//! The Kafka invoker: OpenWhisk's `InvokerReactive` over the pool.
//!
//! [`Invoker::assemble`] builds everything a node needs from its [`InvokerConfig`] (factories,
//! stores, pool, action loader); [`Invoker::run`] is the whole service: topic check, producer,
//! feed, pinger, admin server, blacklist refresh, record queue, and the orderly shutdown. Each
//! message goes through the [`Processor`], the activation path it shares with the standalone
//! server.
//!
//! # Shutdown
//!
//! On SIGTERM (`shutdown`), in this order: ping `isEnabled: false` at once and every second from
//! then on (the controller stops routing here); stop consuming (messages produced from now on stay
//! in Kafka for the next instance); finish the activations already taken, within
//! [`SHUTDOWN_GRACE`]; deliver their acks ([`ACK_FLUSH_GRACE`]) and write their records
//! ([`RECORD_FLUSH_GRACE`]); exit 0.
//!
//! # Fatal conditions
//!
//! A feed that ends, a pinger task that ends, or a producer that cannot be recreated
//! ([`Fatal`]) stops the node the same orderly way, and [`Invoker::run`] returns
//! [`InvokerError::Fatal`]: the process exits non-zero and its supervisor restarts it.

mod node;

use std::sync::Arc;
use std::time::Duration;

use factory::docker::DockerFactory;
use factory::wasm::{WasmError, WasmFactory};
use thiserror::Error;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::clock::SystemClock;
use crate::config::{AdminProtocol, ConfigError, InvokerConfig, InvokerMode, SHUTDOWN_GRACE};
use crate::document::{BuiltinKinds, KindResolver};
use crate::fpc::FpcSettings;
use crate::fpc::etcd::EtcdError;
use crate::kafka::{Delivered, KafkaPlumbingError};
use crate::loader::ActionLoader;
use crate::message::InvokerInstanceId;
use crate::metrics::Metrics;
use crate::ping::Pinger;
use crate::pool::{Pool, PoolError, PoolFactory};
use crate::processor::Processor;
use crate::service;
use crate::store::{ActivationStore, EntityStore, StoreError, StoreLevel, Stores, open_stores};
use crate::tls::{self, TlsError};
pub(crate) use node::Node;

/// How long the acks of finished activations may take to be delivered at shutdown (they are
/// already in the producer's queue; a broker that is away takes them later or never).
pub const ACK_FLUSH_GRACE: Duration = Duration::from_secs(10);
/// How long the queued activation records may take to be written at shutdown; the rest are
/// dropped and counted.
pub const RECORD_FLUSH_GRACE: Duration = Duration::from_secs(10);

/// Errors that stop the invoker from starting.
#[derive(Debug, Error)]
pub enum InvokerError {
    /// The configuration cannot be used (the runtimes manifest, for one).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The stores the configuration names cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The pool refused its configuration.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The wasm factory could not start.
    #[error("cannot start the wasm factory: {0}")]
    Wasm(#[source] WasmError),
    /// Kafka could not be set up.
    #[error(transparent)]
    Kafka(#[from] KafkaPlumbingError),
    /// A part the node cannot work without failed while running (docs: Fatal conditions).
    #[error("the invoker stopped: {0}")]
    Fatal(String),
    /// The admin server's https keystore cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// etcd (FPC mode) could not be reached or refused the lease.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// The admin port could not be bound.
    #[error("cannot listen on port {port}: {source}")]
    Listen {
        /// The port.
        port: u16,
        /// Why.
        source: std::io::Error,
    },
}

impl InvokerError {
    /// Whether the configuration is at fault (rather than this node or a service it needs).
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            Self::Config(_) | Self::Store(_) | Self::Pool(_) | Self::Tls(_)
        )
    }
}

/// What [`Invoker::run`] needs.
pub struct InvokerParts {
    /// This invoker's identity.
    pub instance: InvokerInstanceId,
    /// Kafka bootstrap servers.
    pub kafka_hosts: String,
    /// The feed's `fetch.wait.max.ms` (default [`crate::kafka::DEFAULT_FETCH_WAIT_MAX_MS`]).
    pub fetch_wait_max_ms: u32,
    /// The producer's `linger.ms` (default [`crate::kafka::DEFAULT_PRODUCER_LINGER_MS`]).
    pub producer_linger_ms: f64,
    /// How many messages the feed holds at once ([`InvokerConfig::max_peek`]).
    pub max_peek: usize,
    /// Topic prefix (`whisk.kafka.topics.prefix`).
    pub topic_prefix: String,
    /// The `events` topic (with its prefix) when user events are enabled.
    pub events_topic: Option<String>,
    /// The started pool.
    pub pool: Arc<Pool>,
    /// The action loader.
    pub loader: Arc<ActionLoader>,
    /// The entity store, for the blacklist.
    pub entities: Arc<dyn EntityStore>,
    /// The activation store.
    pub activations: Arc<dyn ActivationStore>,
    /// Store levels (blocking, non-blocking).
    pub store_levels: (StoreLevel, StoreLevel),
    /// Most activation records waiting to be written.
    pub record_queue_capacity: usize,
    /// How long an ack is sent again after its activation.
    pub ack_retry_window: Duration,
    /// Blacklist refresh interval.
    pub blacklist_poll: Duration,
    /// Admin port (0: any free port).
    pub port: u16,
    /// Admin credentials.
    pub admin_credentials: (String, String),
    /// The admin server's TLS, when `http.protocol` is `https` (the keystore read by
    /// [`Invoker::assemble`]); plain HTTP otherwise.
    pub admin_tls: Option<TlsAcceptor>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// OpenWhisk 2.x's scheduler mode, when the configuration selects it
    /// ([`InvokerConfig::invoker_mode`]): [`Invoker::run`] then speaks that protocol
    /// ([`crate::fpc`]).
    pub fpc: Option<FpcSettings>,
}

impl std::fmt::Debug for InvokerParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvokerParts")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// The running Kafka invoker.
#[derive(Debug)]
pub struct Invoker;

impl Invoker {
    /// Builds a node from `config`: the admin server's TLS when `http.protocol` is https; the wasm
    /// factory; the Docker factory for the runtimes manifest's kinds when a manifest is configured
    /// and a daemon answers (else only wasm kinds run, and other kinds get a whisk error); the stores ([`open_stores`]); the started pool
    /// ([`InvokerConfig::pool_config`]) and the action loader. Must be called inside a tokio
    /// runtime. The result is ready for [`Invoker::run`].
    pub async fn assemble(config: &InvokerConfig) -> Result<InvokerParts, InvokerError> {
        // The keystore is read first, so a wrong path or password stops the start before anything
        // is built or started.
        let admin_tls = match config.http.protocol {
            AdminProtocol::Https => {
                let https = &config.http.https;
                let Some(path) = https.keystore_path.as_deref() else {
                    return Err(ConfigError::Invalid(
                        "http.protocol is https but http.https.keystore_path is not set".into(),
                    )
                    .into());
                };
                Some(tls::load_acceptor(path, &https.keystore_password, https.client_auth).await?)
            }
            AdminProtocol::Http => None,
        };
        let wasm = WasmFactory::new(config.wasm.clone()).map_err(InvokerError::Wasm)?;
        let mut factories = vec![PoolFactory::in_process(Arc::new(wasm))];
        let manifest = config.runtimes_manifest().await?;
        let resolver: Arc<dyn KindResolver> = match &manifest {
            Some(manifest) => Arc::new(manifest.clone()),
            None => Arc::new(BuiltinKinds),
        };
        match manifest {
            Some(manifest) => {
                match DockerFactory::connect(config.docker_config(), manifest).await {
                    Ok(docker) => factories.push(PoolFactory::containers(docker)),
                    Err(error) => warn!(%error, "Docker is unavailable: only wasm kinds will run"),
                }
            }
            None => info!("no runtimes manifest: only wasm kinds will run"),
        }

        let Stores {
            entities,
            activations,
        } = open_stores(config)?;
        let pool =
            Arc::new(Pool::start(config.pool_config(), factories, Arc::new(SystemClock)).await?);
        let loader = Arc::new(ActionLoader::new(
            entities.clone(),
            resolver,
            config.limits,
            config.pool.action_cache_size,
        ));
        Ok(InvokerParts {
            instance: config.invoker_instance_id(),
            kafka_hosts: config.kafka.hosts.clone(),
            fetch_wait_max_ms: config.kafka.fetch_wait_max_ms,
            producer_linger_ms: config.kafka.producer_linger_ms,
            max_peek: config.max_peek(pool.max_peek()),
            topic_prefix: config.kafka.topic_prefix.clone(),
            events_topic: config
                .kafka
                .user_events_enabled
                .then(|| format!("{}events", config.kafka.user_event_topic_prefix)),
            pool,
            loader,
            entities,
            activations,
            store_levels: (
                config.activation_store.blocking_level,
                config.activation_store.non_blocking_level,
            ),
            record_queue_capacity: config.activation_store.queue_capacity,
            ack_retry_window: config.kafka.ack_retry_window(),
            blacklist_poll: config.pool.blacklist_poll(),
            port: config.http.port,
            admin_credentials: (config.http.username.clone(), config.http.password.clone()),
            admin_tls,
            metrics: Arc::new(Metrics::new()),
            fpc: (config.invoker_mode() == InvokerMode::Fpc)
                .then(|| FpcSettings::from_config(config)),
        })
    }

    /// Runs the invoker until `shutdown` fires, then drains and stops (OpenWhisk's start order):
    /// the classic protocol, or the scheduler's when [`InvokerParts::fpc`] is set.
    pub async fn run(parts: InvokerParts, shutdown: CancellationToken) -> Result<(), InvokerError> {
        if let Some(settings) = parts.fpc.clone() {
            return crate::fpc::run(parts, settings, shutdown).await;
        }
        let node = Node::start(&parts).await?;
        let mut feed = node.feed(&parts, parts.max_peek)?;
        let pinger = Arc::new(Pinger::start(
            node.producer.clone(),
            format!("{}health", parts.topic_prefix),
            parts.instance.clone(),
        ));
        let address = node.serve_admin(&parts, pinger.clone()).await?;
        node.ready_when_assigned(&feed);
        let admin_protocol = if parts.admin_tls.is_some() {
            "https"
        } else {
            "http"
        };
        info!(invoker = %parts.instance, topic = %node.topic, ?address, admin_protocol, max_peek = parts.max_peek, "invoker started");

        let work = TaskTracker::new();
        let failure = loop {
            tokio::select! {
                () = shutdown.cancelled() => break None,
                reason = node.fatal.raised() => break Some(reason),
                () = pinger.ended() => break Some("the health pinger ended".to_string()),
                delivered = feed.messages.recv() => match delivered {
                    Some(delivered) => spawn_processing(&work, &node.processor, delivered),
                    None => break Some("the Kafka feed ended".to_string()),
                },
            }
        };

        match &failure {
            None => info!(
                "shutting down: pinging disabled, no new messages, finishing the running activations"
            ),
            Some(reason) => error!(%reason, "stopping after a fatal error"),
        }
        service::stopping();
        pinger.drain().await;
        feed.stop().await;
        // Messages already taken (and committed) are still processed.
        while let Ok(delivered) = feed.messages.try_recv() {
            spawn_processing(&work, &node.processor, delivered);
        }
        work.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, work.wait())
            .await
            .is_err()
        {
            warn!("activations still running after the shutdown grace");
        }
        node.flush().await;
        pinger.stop().await;
        node.close(&parts, failure).await
    }
}

/// Processes one delivered message on its own task; its permit goes back to the feed once the
/// slot-freeing ack is with the producer.
fn spawn_processing(work: &TaskTracker, processor: &Arc<Processor>, delivered: Delivered) {
    let processor = processor.clone();
    work.spawn(async move {
        processor.process(&delivered.payload).await;
        drop(delivered.permit);
    });
}
