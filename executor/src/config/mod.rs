//! The one configuration of an invoker node: [`InvokerConfig`].
//!
//! Layers, later ones winning: the defaults here (OpenWhisk's own, `IR/application.conf` and
//! `CR/application.conf`), a TOML file ([`InvokerConfig::from_toml_str`], every section optional, a
//! misspelt key an error), OpenWhisk's environment names ([`InvokerConfig::apply_env`], so that an
//! existing Ansible deployment's variables work unchanged), then command-line flags
//! ([`InvokerConfig::apply_overrides`]).
//!
//! Environment names read (the whole list, and what happens to the ~100 other names OpenWhisk's
//! Ansible role passes, is in the `env` module: every name is accepted, the ones below act, the ones
//! with no use here are named in one info line, [`ignored_env_names`]). An empty value counts as
//! unset for every name, as OpenWhisk's start script drops it; a non-empty value that cannot be used
//! is an error naming the variable.
//!
//! | variable | field |
//! |---|---|
//! | `KAFKA_HOSTS` | `kafka.hosts` |
//! | `RUNTIMES_MANIFEST` | `runtimes_manifest` (JSON text) |
//! | `PORT` | `http.port` |
//! | `WHISK_API_HOST_NAME` / `_PROTO` / `_PORT` | `api_host.name` / `.proto` / `.port` |
//! | `CONFIG_whisk_couchdb_protocol` / `_host` / `_port` / `_username` / `_password` | `couchdb.*` |
//! | `CONFIG_whisk_couchdb_databases_WhiskEntity` / `_WhiskActivation` / `_WhiskAuth` | `couchdb.entity_db` / `.activation_db` / `.auth_db` |
//! | `CONFIG_whisk_kafka_topics_prefix` | `kafka.topic_prefix` |
//! | `CONFIG_whisk_kafka_topics_userEvent_prefix` | `kafka.user_event_topic_prefix` |
//! | `CONFIG_whisk_kafka_consumer_fetchMaxWaitMs` | `kafka.fetch_wait_max_ms` |
//! | `CONFIG_whisk_kafka_producer_lingerMs` | `kafka.producer_linger_ms` |
//! | `CONFIG_whisk_kafka_common_securityProtocol` | checked: only `PLAINTEXT` (any case) is accepted |
//! | `CONFIG_whisk_userEvents_enabled` | `kafka.user_events_enabled` (`true` / `false`) |
//! | `CONFIG_whisk_invoker_username` / `_password` | `http.username` / `.password` |
//! | `CONFIG_whisk_invoker_protocol` | `http.protocol` (`http` / `https`, any case) |
//! | `CONFIG_whisk_invoker_https_keystorePath` / `_keystorePassword` | `http.https.keystore_path` / `.keystore_password` |
//! | `CONFIG_whisk_invoker_https_keystoreFlavor` | `http.https.keystore_flavor` (only `PKCS12`, any case) |
//! | `CONFIG_whisk_invoker_https_clientAuth` | `http.https.client_auth` (`true` / `false`) |
//! | `CONFIG_whisk_activation_storeBlockingResultLevel` / `storeNonBlockingResultLevel` | `activation_store.*_level` |
//! | `CONFIG_whisk_activation_payload_max` | `activation_store.payload_max` (ByteSize) |
//! | `CONFIG_whisk_containerPool_userMemory` | `pool.user_memory` (ByteSize: `2048m`, `2048 m`; default 2048 MB) |
//! | `CONFIG_whisk_containerProxy_timeouts_pauseGrace` | `pool.pause_grace_ms` (HOCON duration: `10 seconds`) |
//! | `CONFIG_whisk_containerProxy_timeouts_idleContainer` | `pool.idle_container_ms` (duration: `10 minutes`) |
//! | `CONFIG_whisk_containerPool_prewarmExpirationCheckInterval` | `pool.prewarm_expiration_check_ms` (duration) |
//! | `CONFIG_whisk_memory_min` / `_max` | `limits.min_memory_mb` / `.max_memory_mb` (ByteSize, whole MB) |
//! | `CONFIG_whisk_timeLimit_min` / `_max` | `limits.min_timeout_ms` / `.max_timeout_ms` (duration) |
//! | `CONFIG_whisk_concurrencyLimit_min` / `_max` | `limits.min_concurrency` / `.max_concurrency` |
//! | `CONFIG_whisk_namespaceDefaultLimit_{memory,timeLimit,concurrencyLimit}_{min,max}` | the same `limits` fields, winning over the three rows above |
//! | `CONFIG_whisk_containerFactory_containerArgs_network` | `docker.network` |
//! | `CONFIG_whisk_containerFactory_containerArgs_dnsServers_<N>` | `docker.dns_servers`, in index order |
//! | `CONFIG_whisk_containerFactory_containerArgs_extraEnvVars_<N>` | `docker.extra_env` (`KEY=VALUE`), in index order |
//! | `CONFIG_whisk_containerFactory_runtimesRegistry_url` / `userImagesRegistry_url` | `docker.runtimes_registry` / `.user_images_registry` |
//! | `CONFIG_whisk_docker_client_parallelRuns` | `docker.parallel_runs` |
//! | `CONFIG_whisk_containerPool_userCpus` | `docker.user_cpus` (a positive number) |
//!
//! Durations are HOCON's: a number, optional spaces and a unit (`ns`, `us`, `ms`, `s`, `m`, `h`,
//! `d` or their long names, such as `second`, `minutes`); a bare number is milliseconds. The limits
//! of the last rows are the range a namespace without limits of its own is held to
//! ([`crate::limits::LimitRanges`]); both OpenWhisk groups of names set it, the namespace defaults
//! last. `INVOKER_OPTS` is accepted and not read here (the command line's).
//!
//! With `http.protocol = "https"` the admin server serves TLS with the PKCS12 keystore at
//! `http.https.keystore_path` ([`crate::tls`]); [`InvokerConfig::validate`] requires the path and
//! the `PKCS12` flavor, and the keystore itself is read when the invoker starts, so a missing or
//! unreadable file, or a wrong password, stops the start with an error naming the path.
//!
//! Any `CONFIG_whisk_couchdb_*` variable above turns CouchDB on (with defaults for the rest); without
//! CouchDB the node uses the local directory store at `local_store.dir`.
//!
//! One set of defaults: the user memory is OpenWhisk's *deployed* default, 2048 MB (the value its
//! Ansible deployment sets, `invoker_user_memory: 2048m`; the invoker's `application.conf` fallback
//! says `1024 m`), and the pool's own configuration ([`crate::pool::PoolConfig`]) is derived from this
//! one by [`InvokerConfig::pool_config`], never written twice. `pool.concurrent_peek_factor` is
//! OpenWhisk's: the feed takes `max(maxContainers, maxContainers × limits.max_concurrency ×
//! factor)` messages at once ([`InvokerConfig::max_peek`]); with the default concurrency limit of 1
//! it changes nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use factory::docker::manifest::ManifestError;
use factory::docker::{DockerConfig, Manifest};
use factory::wasm::WasmConfig;
use serde::{Deserialize, Serialize};

use crate::bytesize::ByteSize;
use crate::limits::LimitRanges;
use crate::message::InvokerInstanceId;
use crate::pool::HealthCheckConfig;
use crate::store::couchdb::CouchDbConfig;

#[cfg(test)]
mod ansible_tests;
mod env;
mod manifest;
mod scheduler;
mod sections;
#[cfg(test)]
mod tests;

pub use env::{
    ELSEWHERE, EnvName, IGNORED, IGNORED_PREFIXES, IMPLEMENTED, IMPLEMENTED_INDEXED,
    classify_env_name, ignored_env_names,
};
pub use manifest::ManifestSource;
pub use scheduler::{
    DEFAULT_BATCH_DELETION_SIZE, DEFAULT_CLUSTER_NAME, DEFAULT_CREATION_MAX_PEEK,
    DEFAULT_ETCD_RETRY_MS, DEFAULT_LEASE_TIMEOUT_S, DEFAULT_MEMORY_SYNC_MS, InvokerMode,
    ModeSetting, SchedulerConfig,
};
pub use sections::{
    ActivationStoreConfig, AdminProtocol, ApiHostConfig, ContainerPoolConfig, HttpConfig,
    HttpsConfig, InstanceConfig, KafkaConfig, LocalStoreConfig,
};

/// Default Kafka bootstrap servers.
pub const DEFAULT_KAFKA_HOSTS: &str = "127.0.0.1:9092";
/// Default user memory (`whisk.container-pool.user-memory`): 2048 MB, OpenWhisk's deployed default
/// (the value OpenWhisk's Ansible deployment sets, `invoker_user_memory: 2048m`, rather than the
/// `1024 m` fallback of the invoker's `application.conf`). The pool's default is this value too.
pub const DEFAULT_USER_MEMORY: ByteSize = ByteSize::mb(2048);
/// Default `concurrent-peek-factor` (`whisk.container-pool.concurrent-peek-factor`).
pub const DEFAULT_CONCURRENT_PEEK_FACTOR: f64 = 0.5;
/// Default blacklist refresh (`whisk.blacklist.poll-interval`, 5 minutes), ms.
pub const DEFAULT_BLACKLIST_POLL_MS: u64 = 300_000;
/// Default admin HTTP port (`PORT` in OpenWhisk's image).
pub const DEFAULT_HTTP_PORT: u16 = 8080;
/// Default admin user (`whisk.invoker.username`).
pub const DEFAULT_HTTP_USERNAME: &str = "invoker.user";
/// Default admin password (`whisk.invoker.password`).
pub const DEFAULT_HTTP_PASSWORD: &str = "invoker.pass";
/// Default largest result and invoke payload (`whisk.activation.payload.max`, 1 MiB): the factories'
/// result cap, so both sides of the boundary agree.
pub const DEFAULT_PAYLOAD_MAX: ByteSize =
    ByteSize::bytes(factory::limits::DEFAULT_MAX_RESULT_BYTES as u64);
/// Default local store directory.
pub const DEFAULT_LOCAL_STORE_DIR: &str = "./wasm-invoker-data";
/// Default API host protocol (`WHISK_API_HOST_PROTO`).
pub const DEFAULT_API_HOST_PROTO: &str = "https";
/// Default API host port (`WHISK_API_HOST_PORT`).
pub const DEFAULT_API_HOST_PORT: u16 = 443;
/// Longest time a shutdown (Kafka invoker or standalone server) waits for running activations:
/// OpenWhisk's largest action timeout, plus a margin for their acks and records.
pub const SHUTDOWN_GRACE: Duration =
    Duration::from_millis(factory::limits::MAX_TIMEOUT_MS + SHUTDOWN_MARGIN_MS);
/// The margin of [`SHUTDOWN_GRACE`] after the largest action timeout, ms.
const SHUTDOWN_MARGIN_MS: u64 = 30_000;
/// OpenWhisk's environment name of the Kafka consumer's `fetch.wait.max.ms`
/// (`whisk.kafka.consumer.fetch-max-wait-ms`).
pub const FETCH_WAIT_ENV: &str = "CONFIG_whisk_kafka_consumer_fetchMaxWaitMs";
/// The environment name of `kafka.producer_linger_ms` (OpenWhisk passes every
/// `whisk.kafka.producer` key to its Kafka client, `linger-ms` as `linger.ms`).
pub const LINGER_ENV: &str = "CONFIG_whisk_kafka_producer_lingerMs";

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or names an unknown key.
    #[error("invalid config file: {0}")]
    Toml(#[from] toml::de::Error),
    /// The runtimes manifest cannot be read or is not valid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// An environment variable holds a value that cannot be used.
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// Why it is unusable.
        reason: String,
    },
    /// A combination of values that cannot work.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The invoker's whole configuration. Every section and field is optional in TOML.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InvokerConfig {
    /// Which invoker this is.
    pub instance: InstanceConfig,
    /// Kafka.
    pub kafka: KafkaConfig,
    /// CouchDB; default none (the local store is used).
    pub couchdb: Option<CouchDbConfig>,
    /// The local store (used when `couchdb` is none).
    pub local_store: LocalStoreConfig,
    /// The pool.
    pub pool: ContainerPoolConfig,
    /// Allowed ranges of action limits (system defaults: timeout 100..=300000 ms, memory
    /// 128..=512 MB, logs 0..=10 MB, concurrency 1..=1).
    pub limits: LimitRanges,
    /// Store levels and payload cap.
    pub activation_store: ActivationStoreConfig,
    /// Admin HTTP.
    pub http: HttpConfig,
    /// API host.
    pub api_host: ApiHostConfig,
    /// The runtimes manifest as JSON text (`RUNTIMES_MANIFEST`). Default none.
    pub runtimes_manifest: Option<String>,
    /// A file holding the runtimes manifest, read when `runtimes_manifest` is none. Default none.
    pub runtimes_manifest_file: Option<PathBuf>,
    /// The wasm factory (`[wasm]`).
    pub wasm: WasmConfig,
    /// The Docker factory (`[docker]`); its `name_prefix`, `user_memory_mb`, `api_host` and
    /// `max_result_bytes` are derived from the sections above by [`InvokerConfig::docker_config`].
    pub docker: DockerConfig,
    /// The protocol (classic or OpenWhisk 2.x's scheduler) and what the scheduler's needs
    /// (`[scheduler]`; [`InvokerConfig::invoker_mode`] has the rule).
    pub scheduler: SchedulerConfig,
}

/// Values given on the command line, applied last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigOverrides {
    /// `--id`.
    pub id: Option<u32>,
    /// `--uniqueName`.
    pub unique_name: Option<String>,
    /// `--displayedName`.
    pub displayed_name: Option<String>,
    /// Kafka bootstrap servers.
    pub kafka_hosts: Option<String>,
    /// Admin HTTP port.
    pub port: Option<u16>,
    /// Local store directory.
    pub local_store_dir: Option<PathBuf>,
    /// User memory.
    pub user_memory: Option<ByteSize>,
    /// `--mode`: the protocol, over `scheduler.mode`.
    pub mode: Option<ModeSetting>,
}

impl InvokerConfig {
    /// Reads a TOML configuration (defaults for everything missing).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    /// Reads the TOML file at `path`, or the defaults when `path` is none.
    pub fn from_file(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            None => Ok(Self::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                Self::from_toml_str(&text)
            }
        }
    }

    /// File (or defaults), then `env`, then `overrides`, then [`InvokerConfig::validate`].
    pub fn load(
        path: Option<&Path>,
        env: &HashMap<String, String>,
        overrides: &ConfigOverrides,
    ) -> Result<Self, ConfigError> {
        let mut config = Self::from_file(path)?;
        config.apply_env(env)?;
        config.apply_overrides(overrides);
        config.validate()?;
        Ok(config)
    }

    /// Applies command-line values.
    pub fn apply_overrides(&mut self, overrides: &ConfigOverrides) {
        if let Some(id) = overrides.id {
            self.instance.id = id;
        }
        if let Some(name) = &overrides.unique_name {
            self.instance.unique_name = Some(name.clone());
        }
        if let Some(name) = &overrides.displayed_name {
            self.instance.displayed_name = Some(name.clone());
        }
        if let Some(hosts) = &overrides.kafka_hosts {
            self.kafka.hosts = hosts.clone();
        }
        if let Some(port) = overrides.port {
            self.http.port = port;
        }
        if let Some(dir) = &overrides.local_store_dir {
            self.local_store.dir = dir.clone();
        }
        if let Some(memory) = overrides.user_memory {
            self.pool.user_memory = memory;
        }
        if let Some(mode) = overrides.mode {
            self.scheduler.mode = mode;
        }
    }

    /// Checks values that cannot work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        self.scheduler.validate(self.invoker_mode())?;
        if let Some(couch) = &self.couchdb
            && couch.protocol != "http"
        {
            return invalid(format!(
                "couchdb.protocol {:?}: only http is supported",
                couch.protocol
            ));
        }
        let ranges = &self.limits;
        if ranges.min_timeout_ms > ranges.max_timeout_ms
            || ranges.min_memory_mb > ranges.max_memory_mb
            || ranges.min_logs_mb > ranges.max_logs_mb
            || ranges.min_concurrency > ranges.max_concurrency
        {
            return invalid("limits: a minimum is above its maximum".to_string());
        }
        if self.pool.user_memory.as_mb() < ranges.min_memory_mb {
            return invalid(format!(
                "pool.user_memory {} is below the smallest action memory ({} MB)",
                self.pool.user_memory, ranges.min_memory_mb
            ));
        }
        if !(self.pool.concurrent_peek_factor > 0.0 && self.pool.concurrent_peek_factor <= 1.0) {
            return invalid(format!(
                "pool.concurrent_peek_factor {} is not in (0, 1]",
                self.pool.concurrent_peek_factor
            ));
        }
        if self.kafka.hosts.trim().is_empty() {
            return invalid("kafka.hosts is empty".to_string());
        }
        // The negated comparison also refuses NaN.
        if !(0.0..=crate::kafka::MAX_PRODUCER_LINGER_MS).contains(&self.kafka.producer_linger_ms) {
            return invalid(format!(
                "kafka.producer_linger_ms {} is not between 0 and the most an ack may wait, {} ms \
                 ({LINGER_ENV})",
                self.kafka.producer_linger_ms,
                crate::kafka::MAX_PRODUCER_LINGER_MS
            ));
        }
        if self.http.protocol == AdminProtocol::Https {
            let https = &self.http.https;
            if https.keystore_path.is_none() {
                return invalid(
                    "http.protocol is https but http.https.keystore_path is not set \
                     (CONFIG_whisk_invoker_https_keystorePath)"
                        .to_string(),
                );
            }
            if !https
                .keystore_flavor
                .trim()
                .eq_ignore_ascii_case(crate::tls::KEYSTORE_FLAVOR_PKCS12)
            {
                return invalid(format!(
                    "http.https.keystore_flavor {:?} (CONFIG_whisk_invoker_https_keystoreFlavor): \
                     only PKCS12 keystores are read",
                    https.keystore_flavor
                ));
            }
        }
        Ok(())
    }

    /// This invoker's identity for pings and acks.
    pub fn invoker_instance_id(&self) -> InvokerInstanceId {
        InvokerInstanceId::new(
            self.instance.id,
            self.pool.user_memory,
            self.instance.unique_name.clone(),
            self.instance.displayed_name.clone(),
        )
    }

    /// The Docker factory's configuration with the invoker-level values filled in: the container
    /// name prefix (`wsk<uniqueName><id>`), user memory, API host and payload cap.
    pub fn docker_config(&self) -> DockerConfig {
        let mut docker = self.docker.clone();
        docker.name_prefix = self.invoker_instance_id().container_prefix();
        docker.user_memory_mb = self.pool.user_memory.as_mb();
        let api_host = self.api_host.url();
        if !api_host.is_empty() {
            docker.api_host = api_host;
        }
        docker.max_result_bytes =
            usize::try_from(self.activation_store.payload_max.as_bytes()).unwrap_or(usize::MAX);
        docker
    }

    /// Where the runtimes manifest comes from: `runtimes_manifest` (the text), else
    /// `runtimes_manifest_file`, else none.
    pub fn manifest_source(&self) -> Option<ManifestSource> {
        self.runtimes_manifest
            .clone()
            .map(ManifestSource::Text)
            .or_else(|| {
                self.runtimes_manifest_file
                    .clone()
                    .map(ManifestSource::File)
            })
    }

    /// The runtimes manifest ([`InvokerConfig::manifest_source`]), read and parsed; none when none
    /// is configured.
    pub async fn runtimes_manifest(&self) -> Result<Option<Manifest>, ConfigError> {
        match self.manifest_source() {
            Some(source) => Ok(Some(source.load().await?)),
            None => Ok(None),
        }
    }

    /// The pool's configuration: memory and timers from `[pool]`, health checks on (OpenWhisk's
    /// defaults), the housekeeping tick the pool's own.
    pub fn pool_config(&self) -> crate::pool::PoolConfig {
        crate::pool::PoolConfig {
            user_memory_mb: self.pool.user_memory.as_mb(),
            pause_grace: self.pool.pause_grace(),
            idle_timeout: self.pool.idle_container(),
            prewarm_check_interval: self.pool.prewarm_expiration_check(),
            prewarm_expiration_limit: self.pool.prewarm_expiration_limit,
            health_check: Some(HealthCheckConfig::default()),
            ..crate::pool::PoolConfig::default()
        }
    }

    /// How many messages the feed holds at once (OpenWhisk's `InvokerReactive.maxPeek`):
    /// `max(max_containers, ⌊max_containers × limits.max_concurrency × concurrent_peek_factor⌋)`,
    /// where `max_containers` is the pool's [`crate::pool::Pool::max_peek`] (user memory / 128 MB).
    pub fn max_peek(&self, max_containers: usize) -> usize {
        // Floored as OpenWhisk's `toInt`; the counts are far below 2^52, so f64 is exact enough.
        let concurrent = (max_containers as f64
            * self.limits.max_concurrency as f64
            * self.pool.concurrent_peek_factor) as usize;
        max_containers.max(concurrent)
    }

    /// The Kafka topic a name maps to, with the prefix (`invoker0` → `<prefix>invoker0`).
    pub fn topic(&self, name: &str) -> String {
        format!("{}{}", self.kafka.topic_prefix, name)
    }
}
