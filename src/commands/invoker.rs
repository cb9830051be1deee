//! `wasm-invoker invoker`: the drop-in OpenWhisk invoker. Consumes `invoker{N}` from Kafka, runs
//! activations (wasm in-process, other kinds in Docker), answers on `completed{C}`, pings `health`,
//! serves the admin routes on `PORT`, and stores records in CouchDB (or a local directory).
//!
//! Configuration: a TOML file (`--config`), then OpenWhisk's environment names (`KAFKA_HOSTS`, `PORT`,
//! `RUNTIMES_MANIFEST`, `WHISK_API_HOST_*`, `CONFIG_whisk_*`, ...), then these flags. Without a
//! runtimes manifest, or without a reachable Docker daemon, only wasm kinds run (other kinds get a
//! whisk error); the controller's health test action is answered in-process either way.
//!
//! `CONFIG_whisk_kafka_consumer_fetchMaxWaitMs` sets the consumer's `fetch.wait.max.ms` (OpenWhisk's
//! `whisk.kafka.consumer.fetch-max-wait-ms`, default 500): lower it for a broker that holds every
//! fetch for the whole wait (Tansu), where it is the latency floor of every activation.
//!
//! Stops on SIGTERM or Ctrl-C: no new messages, running activations finish and are acknowledged
//! and stored, one disabled ping, exit 0.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use clap::Args;
use executor::clock::SystemClock;
use executor::config::{ConfigOverrides, InvokerConfig};
use executor::document::KindResolver;
use executor::invoker::{Invoker, InvokerParts};
use executor::metrics::Metrics;
use executor::pool::{HealthCheckConfig, Pool, PoolConfig, PoolFactory};
use executor::store::couchdb::{CouchActivationStore, CouchEntityStore};
use executor::store::local::LocalStore;
use executor::store::{ActionLoader, ActivationStore, EntityStore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::ExitStatus;

/// Arguments of `wasm-invoker invoker`.
#[derive(Debug, Args)]
pub struct InvokerArgs {
    /// The instance number N: this invoker consumes topic `invoker{N}` (OpenWhisk's `--id`).
    #[arg(long)]
    pub id: Option<u32>,

    /// A stable unique name, part of the identity the controller sees (OpenWhisk's `--uniqueName`).
    #[arg(long = "unique-name", alias = "uniqueName", value_name = "S")]
    pub unique_name: Option<String>,

    /// A friendlier name for the controller's logs (OpenWhisk's `--displayedName`).
    #[arg(long = "displayed-name", alias = "displayedName", value_name = "S")]
    pub displayed_name: Option<String>,

    /// A TOML configuration file; environment variables and flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Runs the invoker until SIGTERM / Ctrl-C.
pub fn execute(args: InvokerArgs) -> ExitStatus {
    let runtime = match super::runtime() {
        Ok(runtime) => runtime,
        Err(status) => return status,
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitStatus::Success,
        Err(InvokerCommandError::Config(error)) => {
            eprintln!("error: {error:#}");
            ExitStatus::DeveloperError
        }
        Err(InvokerCommandError::Internal(error)) => {
            eprintln!("error: {error:#}");
            ExitStatus::InternalError
        }
    }
}

enum InvokerCommandError {
    /// The configuration or the command line is wrong.
    Config(anyhow::Error),
    /// Something we need failed.
    Internal(anyhow::Error),
}

async fn run(args: InvokerArgs) -> Result<(), InvokerCommandError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let overrides = ConfigOverrides {
        id: args.id,
        unique_name: args.unique_name,
        displayed_name: args.displayed_name,
        ..ConfigOverrides::default()
    };
    let config = InvokerConfig::load(args.config.as_deref(), &env, &overrides)
        .context("invalid configuration")
        .map_err(InvokerCommandError::Config)?;

    // Factories: wasm in-process; Docker for the manifest's kinds when a manifest is configured.
    let wasm = factory::wasm::WasmFactory::new(config.wasm.clone()).map_err(|error| {
        InvokerCommandError::Internal(anyhow!(error).context("cannot start wasmtime"))
    })?;
    let mut factories = vec![PoolFactory::in_process(Arc::new(wasm))];
    let manifest_text = config
        .runtimes_manifest_text()
        .context("cannot read the runtimes manifest")
        .map_err(InvokerCommandError::Config)?;
    let parse_manifest = |text: &str| {
        factory::docker::Manifest::from_json(text).map_err(|error| {
            InvokerCommandError::Config(anyhow!(error).context("invalid runtimes manifest"))
        })
    };
    let resolver: Arc<dyn KindResolver> = match &manifest_text {
        Some(text) => {
            let manifest = parse_manifest(text)?;
            Arc::new(move |kind: &str| manifest.runtime(kind).map(|runtime| runtime.kind.clone()))
        }
        None => Arc::new(executor::document::BuiltinKinds),
    };
    match &manifest_text {
        Some(text) => {
            match factory::docker::DockerFactory::connect(
                config.docker_config(),
                parse_manifest(text)?,
            )
            .await
            {
                Ok(docker) => factories.push(PoolFactory::containers(docker)),
                Err(error) => warn!(%error, "Docker is unavailable: only wasm kinds will run"),
            }
        }
        None => info!("no runtimes manifest: only wasm kinds will run"),
    }

    // Stores.
    let (entities, activations): (Arc<dyn EntityStore>, Arc<dyn ActivationStore>) =
        match &config.couchdb {
            Some(couch) => (
                Arc::new(CouchEntityStore::new(couch).map_err(|error| {
                    InvokerCommandError::Config(anyhow!(error).context("CouchDB entity store"))
                })?),
                Arc::new(CouchActivationStore::new(couch).map_err(|error| {
                    InvokerCommandError::Config(anyhow!(error).context("CouchDB activation store"))
                })?),
            ),
            None => {
                let local = Arc::new(LocalStore::new(config.local_store.dir.clone()));
                (local.clone(), local)
            }
        };

    let pool_config = PoolConfig {
        user_memory_mb: config.pool.user_memory.as_mb(),
        pause_grace: config.pool.pause_grace(),
        idle_timeout: config.pool.idle_container(),
        prewarm_check_interval: config.pool.prewarm_expiration_check(),
        health_check: Some(HealthCheckConfig::default()),
        ..PoolConfig::default()
    };
    let pool = Pool::start(pool_config, factories, Arc::new(SystemClock))
        .await
        .map_err(|error| InvokerCommandError::Config(anyhow!(error)))?;
    let loader = Arc::new(ActionLoader::new(
        entities.clone(),
        resolver,
        config.limits,
        config.pool.action_cache_entries,
    ));

    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            wait_for_signal().await;
            info!("signal received: shutting down");
            shutdown.cancel();
        }
    });

    let parts = InvokerParts {
        instance: config.invoker_instance_id(),
        kafka_hosts: config.kafka.hosts.clone(),
        fetch_wait_max_ms: fetch_wait_max_ms(&env).map_err(InvokerCommandError::Config)?,
        topic_prefix: config.kafka.topic_prefix.clone(),
        events_topic: config
            .kafka
            .user_events_enabled
            .then(|| format!("{}events", config.kafka.user_event_topic_prefix)),
        pool: Arc::new(pool),
        loader,
        entities,
        activations,
        store_levels: (
            config.activation_store.blocking_level,
            config.activation_store.non_blocking_level,
        ),
        blacklist_poll: config.pool.blacklist_poll(),
        port: config.http.port,
        admin_credentials: (config.http.username.clone(), config.http.password.clone()),
        metrics: Arc::new(Metrics::new()),
    };
    Invoker::run(parts, shutdown)
        .await
        .map_err(|error| InvokerCommandError::Internal(anyhow!(error)))
}

/// `CONFIG_whisk_kafka_consumer_fetchMaxWaitMs`, or OpenWhisk's default.
fn fetch_wait_max_ms(env: &HashMap<String, String>) -> anyhow::Result<u32> {
    const NAME: &str = "CONFIG_whisk_kafka_consumer_fetchMaxWaitMs";
    match env
        .get(NAME)
        .map(|value| value.trim())
        .filter(|value| !value.is_empty())
    {
        None => Ok(executor::kafka::DEFAULT_FETCH_WAIT_MAX_MS),
        Some(value) => value
            .parse()
            .with_context(|| format!("{NAME}={value:?} is not a number of milliseconds")),
    }
}

/// Completes on SIGTERM or Ctrl-C.
async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the invoker");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
