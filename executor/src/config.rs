//! The one configuration of an invoker node: [`InvokerConfig`].
//!
//! Layers, later ones winning: the defaults here (OpenWhisk's own, `IR/application.conf` and
//! `CR/application.conf`), a TOML file ([`InvokerConfig::from_toml_str`], every section optional, a
//! misspelt key an error), OpenWhisk's environment names ([`InvokerConfig::apply_env`], so that an
//! existing Ansible deployment's variables work unchanged), then command-line flags
//! ([`InvokerConfig::apply_overrides`]).
//!
//! Environment names read (empty values are ignored, as OpenWhisk's `transformEnvironment.sh` does):
//!
//! | variable | field |
//! |---|---|
//! | `KAFKA_HOSTS` | `kafka.hosts` |
//! | `RUNTIMES_MANIFEST` | `runtimes_manifest` (JSON text) |
//! | `PORT` | `http.port` |
//! | `WHISK_API_HOST_NAME` / `_PROTO` / `_PORT` | `api_host.name` / `.proto` / `.port` |
//! | `CONFIG_whisk_couchdb_protocol` / `_host` / `_port` / `_username` / `_password` | `couchdb.*` |
//! | `CONFIG_whisk_couchdb_databases_WhiskEntity` / `_WhiskActivation` / `_WhiskAuth` | `couchdb.entity_db` / `.activation_db` / `.auth_db` |
//! | `CONFIG_whisk_containerPool_userMemory` | `pool.user_memory` (ByteSize: `2048 m`) |
//! | `CONFIG_whisk_kafka_topics_prefix` | `kafka.topic_prefix` |
//! | `CONFIG_whisk_userEvents_enabled` | `kafka.user_events_enabled` |
//! | `CONFIG_whisk_invoker_username` / `_password` | `http.username` / `.password` |
//! | `CONFIG_whisk_activation_storeBlockingResultLevel` / `storeNonBlockingResultLevel` | `activation_store.*_level` |
//!
//! Any `CONFIG_whisk_couchdb_*` variable turns CouchDB on (with defaults for the rest); without
//! CouchDB the node uses the local directory store at `local_store.dir`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use factory::docker::DockerConfig;
use factory::wasm::WasmConfig;
use serde::{Deserialize, Serialize};

use crate::bytesize::ByteSize;
use crate::message::InvokerInstanceId;
use crate::store::{LimitRanges, StoreLevel};

/// Default Kafka bootstrap servers.
pub const DEFAULT_KAFKA_HOSTS: &str = "127.0.0.1:9092";
/// Default user memory, OpenWhisk's `whisk.container-pool.user-memory` (`1024 m`).
pub const DEFAULT_USER_MEMORY: ByteSize = ByteSize::mb(1024);
/// Default idle time before a container is paused (`container-proxy.timeouts.pause-grace`), ms.
pub const DEFAULT_PAUSE_GRACE_MS: u64 = 10_000;
/// Default time a paused container is kept (`container-proxy.timeouts.idle-container`), ms.
pub const DEFAULT_IDLE_CONTAINER_MS: u64 = 600_000;
/// Default interval of the prewarm expiry check (`prewarm-expiration-check-interval`), ms.
pub const DEFAULT_PREWARM_EXPIRATION_CHECK_MS: u64 = 600_000;
/// Default most expired prewarms removed per check (`prewarm-expiration-limit`).
pub const DEFAULT_PREWARM_EXPIRATION_LIMIT: u32 = 100;
/// Default `concurrent-peek-factor`.
pub const DEFAULT_CONCURRENT_PEEK_FACTOR: f64 = 0.5;
/// Default blacklist refresh (`whisk.blacklist.poll-interval`, 5 minutes), ms.
pub const DEFAULT_BLACKLIST_POLL_MS: u64 = 300_000;
/// Default admin HTTP port (`PORT` in OpenWhisk's image).
pub const DEFAULT_HTTP_PORT: u16 = 8080;
/// Default admin user (`whisk.invoker.username`).
pub const DEFAULT_HTTP_USERNAME: &str = "invoker.user";
/// Default admin password (`whisk.invoker.password`).
pub const DEFAULT_HTTP_PASSWORD: &str = "invoker.pass";
/// Default largest result (`whisk.activation.payload.max`, 1 MiB).
pub const DEFAULT_PAYLOAD_MAX: ByteSize = ByteSize::mb(1);
/// Default CouchDB port.
pub const DEFAULT_COUCHDB_PORT: u16 = 5984;
/// Default entities database (Ansible's `whisks` with the local prefix).
pub const DEFAULT_ENTITY_DB: &str = "whisk_local_whisks";
/// Default activations database.
pub const DEFAULT_ACTIVATION_DB: &str = "whisk_local_activations";
/// Default subjects database.
pub const DEFAULT_AUTH_DB: &str = "whisk_local_subjects";
/// Default local store directory.
pub const DEFAULT_LOCAL_STORE_DIR: &str = "./wasm-invoker-data";
/// Default API host protocol (`WHISK_API_HOST_PROTO`).
pub const DEFAULT_API_HOST_PROTO: &str = "https";
/// Default API host port (`WHISK_API_HOST_PORT`).
pub const DEFAULT_API_HOST_PORT: u16 = 443;

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

/// Which invoker this is (spec 1.5).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstanceConfig {
    /// The instance number N (topic `invoker{N}`, `--id`). Default 0.
    pub id: u32,
    /// The unique name (`--uniqueName`); Ansible passes the index. Default none.
    pub unique_name: Option<String>,
    /// The name the controller logs (`--displayedName`). Default none.
    pub displayed_name: Option<String>,
}

/// Kafka (spec 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated (`KAFKA_HOSTS`). Default `127.0.0.1:9092`.
    pub hosts: String,
    /// Prefix of every topic (`whisk.kafka.topics.prefix`). Default empty.
    pub topic_prefix: String,
    /// Whether activation events go to `events` (`whisk.user-events.enabled`). Default false.
    pub user_events_enabled: bool,
    /// Prefix of the events topic (`whisk.kafka.topics.user-event.prefix`). Default empty.
    pub user_event_topic_prefix: String,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            hosts: DEFAULT_KAFKA_HOSTS.to_string(),
            topic_prefix: String::new(),
            user_events_enabled: false,
            user_event_topic_prefix: String::new(),
        }
    }
}

/// CouchDB (spec 6.1). Present only when the node uses CouchDB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CouchDbConfig {
    /// `http` (only `http` is supported). Default `http`.
    pub protocol: String,
    /// Host name or address. Default `127.0.0.1`.
    pub host: String,
    /// Port. Default 5984.
    pub port: u16,
    /// Basic-auth user. Default empty (no auth).
    pub username: String,
    /// Basic-auth password. Default empty.
    pub password: String,
    /// Entities database (`WhiskEntity`). Default `whisk_local_whisks`.
    pub entity_db: String,
    /// Activations database (`WhiskActivation`). Default `whisk_local_activations`.
    pub activation_db: String,
    /// Subjects database (`WhiskAuth`), for the blacklist view. Default `whisk_local_subjects`.
    pub auth_db: String,
}

impl Default for CouchDbConfig {
    fn default() -> Self {
        Self {
            protocol: "http".to_string(),
            host: "127.0.0.1".to_string(),
            port: DEFAULT_COUCHDB_PORT,
            username: String::new(),
            password: String::new(),
            entity_db: DEFAULT_ENTITY_DB.to_string(),
            activation_db: DEFAULT_ACTIVATION_DB.to_string(),
            auth_db: DEFAULT_AUTH_DB.to_string(),
        }
    }
}

/// The local directory store, used when no CouchDB is configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalStoreConfig {
    /// The directory. Default `./wasm-invoker-data`.
    pub dir: PathBuf,
}

impl Default for LocalStoreConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from(DEFAULT_LOCAL_STORE_DIR),
        }
    }
}

/// The container pool (spec 10, 12.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Memory for all action containers together (`whisk.container-pool.user-memory`), ByteSize
    /// text. Default `1024 m`.
    pub user_memory: ByteSize,
    /// `concurrent-peek-factor`, in (0, 1]. Default 0.5.
    pub concurrent_peek_factor: f64,
    /// Idle time before a container is paused, ms. Default 10000.
    pub pause_grace_ms: u64,
    /// Time an idle (paused) container is kept before removal, ms. Default 600000.
    pub idle_container_ms: u64,
    /// Interval of the prewarm expiry check, ms. Default 600000.
    pub prewarm_expiration_check_ms: u64,
    /// Most expired prewarms removed per check. Default 100.
    pub prewarm_expiration_limit: u32,
    /// Interval of the namespace blacklist refresh, ms. Default 300000.
    pub blacklist_poll_ms: u64,
    /// Executable actions kept in the loader's cache. Default 1024.
    pub action_cache_entries: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            user_memory: DEFAULT_USER_MEMORY,
            concurrent_peek_factor: DEFAULT_CONCURRENT_PEEK_FACTOR,
            pause_grace_ms: DEFAULT_PAUSE_GRACE_MS,
            idle_container_ms: DEFAULT_IDLE_CONTAINER_MS,
            prewarm_expiration_check_ms: DEFAULT_PREWARM_EXPIRATION_CHECK_MS,
            prewarm_expiration_limit: DEFAULT_PREWARM_EXPIRATION_LIMIT,
            blacklist_poll_ms: DEFAULT_BLACKLIST_POLL_MS,
            action_cache_entries: crate::store::DEFAULT_ACTION_CACHE_ENTRIES,
        }
    }
}

impl PoolConfig {
    /// `pause_grace_ms` as a duration.
    pub fn pause_grace(&self) -> Duration {
        Duration::from_millis(self.pause_grace_ms)
    }

    /// `idle_container_ms` as a duration.
    pub fn idle_container(&self) -> Duration {
        Duration::from_millis(self.idle_container_ms)
    }

    /// `prewarm_expiration_check_ms` as a duration.
    pub fn prewarm_expiration_check(&self) -> Duration {
        Duration::from_millis(self.prewarm_expiration_check_ms)
    }

    /// `blacklist_poll_ms` as a duration.
    pub fn blacklist_poll(&self) -> Duration {
        Duration::from_millis(self.blacklist_poll_ms)
    }
}

/// What is stored (spec 7.5) and how large results may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivationStoreConfig {
    /// Level for blocking activations. Default `STORE_ALWAYS`.
    pub blocking_level: StoreLevel,
    /// Level for non-blocking activations. Default `STORE_ALWAYS`.
    pub non_blocking_level: StoreLevel,
    /// Largest result (`whisk.activation.payload.max`), ByteSize text. Default `1 m`.
    pub payload_max: ByteSize,
}

impl Default for ActivationStoreConfig {
    fn default() -> Self {
        Self {
            blocking_level: StoreLevel::Always,
            non_blocking_level: StoreLevel::Always,
            payload_max: DEFAULT_PAYLOAD_MAX,
        }
    }
}

/// The admin HTTP server (spec 12.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Port (`PORT`). Default 8080.
    pub port: u16,
    /// Basic-auth user of `/enable`, `/disable`, `/isEnabled`. Default `invoker.user`.
    pub username: String,
    /// Its password. Default `invoker.pass`.
    pub password: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            port: DEFAULT_HTTP_PORT,
            username: DEFAULT_HTTP_USERNAME.to_string(),
            password: DEFAULT_HTTP_PASSWORD.to_string(),
        }
    }
}

/// The OpenWhisk API host actions call back (`__OW_API_HOST`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiHostConfig {
    /// Host name (`WHISK_API_HOST_NAME`). Default empty (no API host).
    pub name: String,
    /// Protocol (`WHISK_API_HOST_PROTO`). Default `https`.
    pub proto: String,
    /// Port (`WHISK_API_HOST_PORT`). Default 443.
    pub port: u16,
}

impl Default for ApiHostConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            proto: DEFAULT_API_HOST_PROTO.to_string(),
            port: DEFAULT_API_HOST_PORT,
        }
    }
}

impl ApiHostConfig {
    /// `<proto>://<name>:<port>`, or empty when no name is set.
    pub fn url(&self) -> String {
        if self.name.is_empty() {
            String::new()
        } else {
            format!("{}://{}:{}", self.proto, self.name, self.port)
        }
    }
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
    pub pool: PoolConfig,
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
}

fn env_error(name: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Env {
        name: name.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn parse_env<T: std::str::FromStr>(name: &str, value: &str, what: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| env_error(name, value, format!("expected {what}")))
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

    /// Applies OpenWhisk's environment names (see the module docs) from `env`.
    pub fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<(), ConfigError> {
        let get = |name: &str| env.get(name).filter(|value| !value.is_empty());
        if let Some(value) = get("KAFKA_HOSTS") {
            self.kafka.hosts = value.clone();
        }
        if let Some(value) = get("RUNTIMES_MANIFEST") {
            self.runtimes_manifest = Some(value.clone());
        }
        if let Some(value) = get("PORT") {
            self.http.port = parse_env("PORT", value, "a port number")?;
        }
        if let Some(value) = get("WHISK_API_HOST_NAME") {
            self.api_host.name = value.clone();
        }
        if let Some(value) = get("WHISK_API_HOST_PROTO") {
            self.api_host.proto = value.clone();
        }
        if let Some(value) = get("WHISK_API_HOST_PORT") {
            self.api_host.port = parse_env("WHISK_API_HOST_PORT", value, "a port number")?;
        }
        const COUCH: [&str; 8] = [
            "CONFIG_whisk_couchdb_protocol",
            "CONFIG_whisk_couchdb_host",
            "CONFIG_whisk_couchdb_port",
            "CONFIG_whisk_couchdb_username",
            "CONFIG_whisk_couchdb_password",
            "CONFIG_whisk_couchdb_databases_WhiskEntity",
            "CONFIG_whisk_couchdb_databases_WhiskActivation",
            "CONFIG_whisk_couchdb_databases_WhiskAuth",
        ];
        if COUCH.iter().any(|name| get(name).is_some()) {
            let couch = self.couchdb.get_or_insert_with(CouchDbConfig::default);
            for name in COUCH {
                let Some(value) = get(name) else { continue };
                match name {
                    "CONFIG_whisk_couchdb_protocol" => couch.protocol = value.clone(),
                    "CONFIG_whisk_couchdb_host" => couch.host = value.clone(),
                    "CONFIG_whisk_couchdb_port" => {
                        couch.port = parse_env(name, value, "a port number")?
                    }
                    "CONFIG_whisk_couchdb_username" => couch.username = value.clone(),
                    "CONFIG_whisk_couchdb_password" => couch.password = value.clone(),
                    "CONFIG_whisk_couchdb_databases_WhiskEntity" => couch.entity_db = value.clone(),
                    "CONFIG_whisk_couchdb_databases_WhiskActivation" => {
                        couch.activation_db = value.clone()
                    }
                    _ => couch.auth_db = value.clone(),
                }
            }
        }
        if let Some(value) = get("CONFIG_whisk_containerPool_userMemory") {
            self.pool.user_memory = ByteSize::parse(value).map_err(|error| {
                env_error(
                    "CONFIG_whisk_containerPool_userMemory",
                    value,
                    error.to_string(),
                )
            })?;
        }
        if let Some(value) = get("CONFIG_whisk_kafka_topics_prefix") {
            self.kafka.topic_prefix = value.clone();
        }
        if let Some(value) = get("CONFIG_whisk_userEvents_enabled") {
            self.kafka.user_events_enabled =
                parse_env("CONFIG_whisk_userEvents_enabled", value, "true or false")?;
        }
        if let Some(value) = get("CONFIG_whisk_invoker_username") {
            self.http.username = value.clone();
        }
        if let Some(value) = get("CONFIG_whisk_invoker_password") {
            self.http.password = value.clone();
        }
        for (name, level) in [
            (
                "CONFIG_whisk_activation_storeBlockingResultLevel",
                &mut self.activation_store.blocking_level,
            ),
            (
                "CONFIG_whisk_activation_storeNonBlockingResultLevel",
                &mut self.activation_store.non_blocking_level,
            ),
        ] {
            if let Some(value) = get(name) {
                *level = StoreLevel::parse(value.trim()).ok_or_else(|| {
                    env_error(
                        name,
                        value,
                        "expected STORE_ALWAYS, STORE_FAILURES or STORE_FAILURES_NOT_APPLICATION_ERRORS",
                    )
                })?;
            }
        }
        Ok(())
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
    }

    /// Checks values that cannot work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
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

    /// The runtimes manifest text: `runtimes_manifest`, else the file's content, else none.
    pub fn runtimes_manifest_text(&self) -> Result<Option<String>, ConfigError> {
        if let Some(text) = &self.runtimes_manifest {
            return Ok(Some(text.clone()));
        }
        match &self.runtimes_manifest_file {
            Some(path) => {
                std::fs::read_to_string(path)
                    .map(Some)
                    .map_err(|source| ConfigError::Io {
                        path: path.clone(),
                        source,
                    })
            }
            None => Ok(None),
        }
    }

    /// The Kafka topic a name maps to, with the prefix (`invoker0` → `<prefix>invoker0`).
    pub fn topic(&self, name: &str) -> String {
        format!("{}{}", self.kafka.topic_prefix, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn test_defaults_are_openwhisks() {
        let config = InvokerConfig::default();
        assert_eq!(config.pool.user_memory, ByteSize::mb(1024));
        assert_eq!(config.http.port, 8080);
        assert_eq!(config.http.username, "invoker.user");
        assert!(config.couchdb.is_none());
        assert_eq!(config.limits.max_memory_mb, 512);
        assert_eq!(config.activation_store.payload_max.as_bytes(), 1 << 20);
        config.validate().unwrap();
        assert_eq!(InvokerConfig::from_toml_str("").unwrap(), config);
    }

    #[test]
    fn test_toml_sections_and_unknown_keys() {
        let config = InvokerConfig::from_toml_str(
            r#"
            [instance]
            id = 3
            unique_name = "edge"
            [pool]
            user_memory = "2048 m"
            [couchdb]
            host = "db"
            [activation_store]
            blocking_level = "STORE_FAILURES"
            [limits]
            max_memory_mb = 2048
            "#,
        )
        .unwrap();
        assert_eq!(config.instance.id, 3);
        assert_eq!(config.pool.user_memory.as_mb(), 2048);
        assert_eq!(config.couchdb.as_ref().unwrap().host, "db");
        assert_eq!(config.couchdb.as_ref().unwrap().port, 5984);
        assert_eq!(config.activation_store.blocking_level, StoreLevel::Failures);
        assert_eq!(config.limits.max_memory_mb, 2048);
        assert_eq!(config.limits.min_memory_mb, 128);
        assert_eq!(config.invoker_instance_id().to_string(), "invoker3/edge");
        assert_eq!(config.docker_config().name_prefix, "wskedge3");
        assert!(InvokerConfig::from_toml_str("[pool]\nuser_mem = 1").is_err());
        assert!(InvokerConfig::from_toml_str("bogus = 1").is_err());
    }

    #[test]
    fn test_openwhisk_environment_overrides() {
        let mut config = InvokerConfig::default();
        config
            .apply_env(&env(&[
                ("KAFKA_HOSTS", "kafka:9093"),
                ("PORT", "12001"),
                ("WHISK_API_HOST_NAME", "ow.example"),
                ("CONFIG_whisk_couchdb_host", "couch"),
                ("CONFIG_whisk_couchdb_port", "5985"),
                ("CONFIG_whisk_couchdb_username", "admin"),
                ("CONFIG_whisk_couchdb_databases_WhiskEntity", "p_whisks"),
                ("CONFIG_whisk_containerPool_userMemory", "2048m"),
                ("CONFIG_whisk_couchdb_password", ""),
            ]))
            .unwrap();
        assert_eq!(config.kafka.hosts, "kafka:9093");
        assert_eq!(config.http.port, 12001);
        assert_eq!(config.api_host.url(), "https://ow.example:443");
        let couch = config.couchdb.clone().unwrap();
        assert_eq!((couch.host.as_str(), couch.port), ("couch", 5985));
        assert_eq!(couch.entity_db, "p_whisks");
        assert_eq!(couch.activation_db, DEFAULT_ACTIVATION_DB);
        assert_eq!(config.pool.user_memory.as_mb(), 2048);
        assert_eq!(
            config.invoker_instance_id().user_memory.to_string(),
            "2147483648 B"
        );
    }

    #[test]
    fn test_malformed_environment_names_the_variable() {
        let mut config = InvokerConfig::default();
        let error = config
            .apply_env(&env(&[("CONFIG_whisk_containerPool_userMemory", "lots")]))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("CONFIG_whisk_containerPool_userMemory"),
            "{error}"
        );
        let error = config.apply_env(&env(&[("PORT", "http")])).unwrap_err();
        assert!(
            error.to_string().starts_with("environment variable PORT="),
            "{error}"
        );
    }

    #[test]
    fn test_overrides_win_and_validation() {
        let overrides = ConfigOverrides {
            id: Some(7),
            port: Some(9000),
            ..ConfigOverrides::default()
        };
        let config = InvokerConfig::load(None, &env(&[("PORT", "12001")]), &overrides).unwrap();
        assert_eq!(config.instance.id, 7);
        assert_eq!(config.http.port, 9000);
        let mut bad = InvokerConfig::default();
        bad.pool.user_memory = ByteSize::mb(64);
        assert!(bad.validate().is_err());
        bad = InvokerConfig::default();
        bad.couchdb = Some(CouchDbConfig {
            protocol: "https".into(),
            ..CouchDbConfig::default()
        });
        assert!(bad.validate().is_err());
    }
}
