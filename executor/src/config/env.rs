//! OpenWhisk's environment names, so that an existing Ansible deployment's variables work unchanged.
//!
//! OpenWhisk's Ansible role hands its invoker about a hundred variables, and an operator may add more
//! through the role's extra environment. This invoker takes all of them, in four kinds
//! ([`classify_env_name`]):
//!
//! - **implemented** ([`IMPLEMENTED`], and the indexed lists [`IMPLEMENTED_INDEXED`]): they act, on
//!   the fields tabled in the [`crate::config`] docs;
//! - **handled elsewhere** ([`ELSEWHERE`]): `INVOKER_OPTS` (the command line's business),
//!   accepted without a word here;
//! - **ignored** ([`IGNORED`], [`IGNORED_PREFIXES`], and any other `CONFIG_*` name): settings that
//!   only the Scala invoker has a use for (the JVM, JMX, Kamon, ZooKeeper, runc, the classic SPI
//!   providers, topic creation tuning, the scheduler-based invoker, the Elasticsearch and MongoDB
//!   stores). They never fail a start; the ones that hold a value are named in one info line per
//!   [`InvokerConfig::apply_env`] ([`ignored_env_names`]);
//! - **foreign**: every other name (`PATH`, `HOME`, ...), not ours to judge.
//!
//! Empty values count as unset for every name, as OpenWhisk's own start script drops them before
//! the JVM sees them. A non-empty value that an implemented name cannot use is an error naming the
//! variable.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use factory::docker::manifest::MANIFEST_ENV;
use tracing::info;

use super::scheduler::split_list;
use super::{AdminProtocol, ConfigError, FETCH_WAIT_ENV, InvokerConfig, LINGER_ENV};
use crate::bytesize::ByteSize;
use crate::store::StoreLevel;
use crate::store::couchdb::CouchDbConfig;

/// Every name that acts (see the [`crate::config`] docs for the field each one sets).
pub const IMPLEMENTED: &[&str] = &[
    "KAFKA_HOSTS",
    MANIFEST_ENV,
    "PORT",
    "WHISK_API_HOST_NAME",
    "WHISK_API_HOST_PROTO",
    "WHISK_API_HOST_PORT",
    "CONFIG_whisk_couchdb_protocol",
    "CONFIG_whisk_couchdb_host",
    "CONFIG_whisk_couchdb_port",
    "CONFIG_whisk_couchdb_username",
    "CONFIG_whisk_couchdb_password",
    "CONFIG_whisk_couchdb_databases_WhiskEntity",
    "CONFIG_whisk_couchdb_databases_WhiskActivation",
    "CONFIG_whisk_couchdb_databases_WhiskAuth",
    "CONFIG_whisk_kafka_topics_prefix",
    "CONFIG_whisk_kafka_topics_userEvent_prefix",
    FETCH_WAIT_ENV,
    LINGER_ENV,
    KAFKA_SECURITY_PROTOCOL_ENV,
    "CONFIG_whisk_userEvents_enabled",
    "CONFIG_whisk_invoker_username",
    "CONFIG_whisk_invoker_password",
    "CONFIG_whisk_invoker_protocol",
    "CONFIG_whisk_invoker_https_keystorePath",
    "CONFIG_whisk_invoker_https_keystorePassword",
    "CONFIG_whisk_invoker_https_keystoreFlavor",
    "CONFIG_whisk_invoker_https_clientAuth",
    "CONFIG_whisk_activation_storeBlockingResultLevel",
    "CONFIG_whisk_activation_storeNonBlockingResultLevel",
    "CONFIG_whisk_activation_payload_max",
    "CONFIG_whisk_containerPool_userMemory",
    "CONFIG_whisk_containerPool_userCpus",
    "CONFIG_whisk_containerPool_prewarmExpirationCheckInterval",
    "CONFIG_whisk_containerProxy_timeouts_idleContainer",
    "CONFIG_whisk_containerProxy_timeouts_pauseGrace",
    "CONFIG_whisk_memory_min",
    "CONFIG_whisk_memory_max",
    "CONFIG_whisk_timeLimit_min",
    "CONFIG_whisk_timeLimit_max",
    "CONFIG_whisk_concurrencyLimit_min",
    "CONFIG_whisk_concurrencyLimit_max",
    "CONFIG_whisk_namespaceDefaultLimit_memory_min",
    "CONFIG_whisk_namespaceDefaultLimit_memory_max",
    "CONFIG_whisk_namespaceDefaultLimit_timeLimit_min",
    "CONFIG_whisk_namespaceDefaultLimit_timeLimit_max",
    "CONFIG_whisk_namespaceDefaultLimit_concurrencyLimit_min",
    "CONFIG_whisk_namespaceDefaultLimit_concurrencyLimit_max",
    "CONFIG_whisk_containerFactory_containerArgs_network",
    "CONFIG_whisk_containerFactory_runtimesRegistry_url",
    "CONFIG_whisk_containerFactory_userImagesRegistry_url",
    "CONFIG_whisk_docker_client_parallelRuns",
    // The protocol and OpenWhisk 2.x's scheduler mode (`config::scheduler`).
    SPI_INVOKER_PROVIDER_ENV,
    "CONFIG_whisk_etcd_hosts",
    "CONFIG_whisk_etcd_username",
    "CONFIG_whisk_etcd_password",
    "CONFIG_whisk_etcd_lease_timeout",
    "CONFIG_whisk_scheduler_dataManagementService_retryInterval",
    "CONFIG_whisk_cluster_name",
    "CONFIG_whisk_invoker_containerCreation_maxPeek",
    "CONFIG_whisk_containerPool_memorySyncInterval",
    "CONFIG_whisk_containerPool_batchDeletionSize",
    "CONFIG_whisk_invoker_resource_tags",
    "CONFIG_whisk_invoker_dedicated_namespaces",
];

/// The prefix of the CouchDB names in [`IMPLEMENTED`] (`CONFIG_whisk_couchdb_provider`, which
/// starts alike, is [`IGNORED`]).
const COUCHDB_ENV_PREFIX: &str = "CONFIG_whisk_couchdb_";

/// OpenWhisk's invoker class (`whisk.spi.InvokerProvider`), which selects the protocol.
pub const SPI_INVOKER_PROVIDER_ENV: &str = "CONFIG_whisk_spi_InvokerProvider";

/// The container DNS servers, one variable per entry (`..._dnsServers_0`, `_1`, ...).
pub const DNS_SERVERS_PREFIX: &str = "CONFIG_whisk_containerFactory_containerArgs_dnsServers_";
/// The extra container environment, one `KEY=VALUE` per variable (`..._extraEnvVars_0`, ...).
pub const EXTRA_ENV_PREFIX: &str = "CONFIG_whisk_containerFactory_containerArgs_extraEnvVars_";
/// Implemented lists, one variable per entry, `<prefix><index>`.
pub const IMPLEMENTED_INDEXED: &[&str] = &[DNS_SERVERS_PREFIX, EXTRA_ENV_PREFIX];

/// OpenWhisk's name of the Kafka clients' security protocol; only `PLAINTEXT` can be served.
pub const KAFKA_SECURITY_PROTOCOL_ENV: &str = "CONFIG_whisk_kafka_common_securityProtocol";

/// Names another part of the program reads (the command line's `INVOKER_OPTS`). Entries ending in
/// `_` are prefixes.
pub const ELSEWHERE: &[&str] = &["INVOKER_OPTS"];

/// Names that only the Scala invoker has a use for, accepted and ignored.
pub const IGNORED: &[&str] = &[
    // The JVM, its remote management and its configuration file.
    "JAVA_OPTS",
    "JMX_REMOTE",
    "OPENWHISK_ENCODED_CONFIG",
    "TZ",
    "CONFIG_logback_log_level",
    // Kamon metrics (ours are on the admin server's /metrics).
    "METRICS_KAMON",
    "METRICS_KAMON_TAGS",
    "METRICS_LOG",
    // ZooKeeper (not used by a Kafka client).
    "ZOOKEEPER_HOSTS",
    // Where the Ansible role mounts the log directory; we log to standard output.
    "WHISK_LOGS_DIR",
    // Duplicates of the CouchDB database names for older start scripts.
    "DB_WHISK_ACTIONS",
    "DB_WHISK_ACTIVATIONS",
    "DB_WHISK_AUTHS",
    // CouchDB and Cloudant speak the same HTTP API.
    "CONFIG_whisk_couchdb_provider",
    // Tuning of topic creation: ours creates `invoker{N}` with fixed settings.
    "CONFIG_whisk_kafka_replicationFactor",
    "CONFIG_whisk_kafka_topics_invoker_retentionBytes",
    "CONFIG_whisk_kafka_topics_invoker_retentionMs",
    "CONFIG_whisk_kakfa_topics_invoker_segmentBytes",
    // The controller's defaults for new actions; the invoker only checks ranges.
    "CONFIG_whisk_memory_std",
    "CONFIG_whisk_timeLimit_std",
    "CONFIG_whisk_concurrencyLimit_std",
    // Docker details of the Scala container factory and pool.
    "CONFIG_whisk_docker_containerFactory_useRunc",
    "CONFIG_whisk_runtimes_bypassPullForLocalImages",
    "CONFIG_whisk_runtimes_localImagePrefix",
    "INVOKER_CONTAINER_POLICY",
    "CONFIG_whisk_containerPool_pekkoClient",
    "CONFIG_whisk_containerPool_prewarmExpirationCheckInitDelay",
    "CONFIG_whisk_containerPool_prewarmExpirationCheckIntervalVariance",
    "CONFIG_whisk_containerPool_prewarmPromotion",
    "CONFIG_whisk_containerPool_prewarmMaxRetryLimit",
    "CONFIG_whisk_transactions_header",
    // The scheduler mode's "warmed container keeping" (paused containers are removed after
    // idle-container here, as with OpenWhisk's default keeping count of 0).
    "CONFIG_whisk_containerProxy_timeouts_keepingDuration",
];

/// Prefixes of ignored names: Kamon, the SPI provider classes, Kafka TLS files (the security
/// protocol itself is checked), CouchDB design document names, the scheduler's etcd, and the
/// Elasticsearch and MongoDB stores.
pub const IGNORED_PREFIXES: &[&str] = &[
    "CONFIG_kamon_",
    "CONFIG_whisk_spi_",
    "CONFIG_whisk_kafka_common_ssl",
    "CONFIG_whisk_db_",
    "CONFIG_whisk_etcd_",
    "CONFIG_whisk_scheduler_",
    "CONFIG_whisk_activationStore_elasticsearch_",
    "CONFIG_whisk_mongodb_",
];

/// What an environment name is to this invoker (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvName {
    /// It acts.
    Implemented,
    /// Another part of the program reads it, or it is accepted silently for now.
    Elsewhere,
    /// Known to have no use here.
    Ignored,
    /// A `CONFIG_*` name none of the tables knows (a setting of the Scala invoker's
    /// `application.conf`, or a misspelling): ignored too.
    UnknownConfig,
    /// Not OpenWhisk's.
    Foreign,
}

/// Which kind `name` is (module docs).
pub fn classify_env_name(name: &str) -> EnvName {
    let listed = |table: &[&str]| {
        table.iter().any(|entry| {
            if entry.ends_with('_') {
                name.starts_with(entry)
            } else {
                name == *entry
            }
        })
    };
    if IMPLEMENTED.contains(&name) || IMPLEMENTED_INDEXED.iter().any(|p| name.starts_with(p)) {
        EnvName::Implemented
    } else if listed(ELSEWHERE) {
        EnvName::Elsewhere
    } else if IGNORED.contains(&name) || IGNORED_PREFIXES.iter().any(|p| name.starts_with(p)) {
        EnvName::Ignored
    } else if name.starts_with("CONFIG_") {
        EnvName::UnknownConfig
    } else {
        EnvName::Foreign
    }
}

/// The names in `env` that hold a value and are ignored ([`EnvName::Ignored`] or
/// [`EnvName::UnknownConfig`]), sorted: what the info line of [`InvokerConfig::apply_env`] lists.
pub fn ignored_env_names(env: &HashMap<String, String>) -> Vec<String> {
    let mut names: Vec<String> = env
        .iter()
        .filter(|(name, value)| {
            !value.is_empty()
                && matches!(
                    classify_env_name(name),
                    EnvName::Ignored | EnvName::UnknownConfig
                )
        })
        .map(|(name, _)| name.clone())
        .collect();
    names.sort();
    names
}

fn env_error(name: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Env {
        name: name.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Reads a HOCON duration as OpenWhisk's settings hold them (`10 minutes`, `10 seconds`, `500 ms`,
/// `1 second`): a number, optional spaces and a unit; a bare number is milliseconds, as in HOCON.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let nanos_per_unit: u64 = match unit.trim_start() {
        "ns" | "nano" | "nanos" | "nanosecond" | "nanoseconds" => 1,
        "us" | "micro" | "micros" | "microsecond" | "microseconds" => 1_000,
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1_000_000,
        "s" | "second" | "seconds" => 1_000_000_000,
        "m" | "minute" | "minutes" => 60_000_000_000,
        "h" | "hour" | "hours" => 3_600_000_000_000,
        "d" | "day" | "days" => 86_400_000_000_000,
        _ => return None,
    };
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(nanos_per_unit).map(Duration::from_nanos);
    }
    let fraction: f64 = number.parse().ok()?;
    let nanos = (fraction * nanos_per_unit as f64).round();
    (nanos.is_finite() && nanos >= 0.0 && nanos <= u64::MAX as f64)
        .then(|| Duration::from_nanos(nanos as u64))
}

/// A duration as whole milliseconds, for the `_ms` fields.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The environment as the variables OpenWhisk's names can be read from: every getter treats an
/// empty value as unset and names the variable in its error.
struct Vars<'a>(&'a HashMap<String, String>);

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }

    fn parse<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ConfigError> {
        self.get(name)
            .map(|value| {
                value
                    .trim()
                    .parse()
                    .map_err(|_| env_error(name, value, format!("expected {what}")))
            })
            .transpose()
    }

    fn bytes(&self, name: &str) -> Result<Option<ByteSize>, ConfigError> {
        self.get(name)
            .map(|value| {
                ByteSize::parse(value).map_err(|error| env_error(name, value, error.to_string()))
            })
            .transpose()
    }

    fn millis(&self, name: &str) -> Result<Option<u64>, ConfigError> {
        self.get(name)
            .map(|value| {
                parse_duration(value).map(millis).ok_or_else(|| {
                    env_error(
                        name,
                        value,
                        "expected a duration such as \"10 seconds\", \"10 minutes\" or \"500 ms\"",
                    )
                })
            })
            .transpose()
    }

    /// The entries `<prefix>0`, `<prefix>1`, ... that hold a value, in index order; none when no
    /// entry holds one.
    fn indexed(&self, prefix: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let mut entries = Vec::new();
        for (name, value) in self.0 {
            let Some(index) = name.strip_prefix(prefix) else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            let index: usize = index
                .parse()
                .map_err(|_| env_error(name, value, format!("expected {prefix}<index>")))?;
            entries.push((index, value.clone()));
        }
        entries.sort();
        Ok((!entries.is_empty()).then(|| entries.into_iter().map(|(_, v)| v).collect()))
    }
}

/// Sets `field` to `value` when there is one.
fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

impl InvokerConfig {
    /// Applies OpenWhisk's environment names (see the module docs) from `env`, then logs, in one
    /// info line, the ignored names that hold a value ([`ignored_env_names`]).
    pub fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<(), ConfigError> {
        let vars = Vars(env);
        self.apply_kafka_env(&vars)?;
        self.apply_couchdb_env(&vars)?;
        self.apply_pool_env(&vars)?;
        self.apply_limits_env(&vars)?;
        self.apply_docker_env(&vars)?;
        set(
            &mut self.runtimes_manifest,
            vars.string(MANIFEST_ENV).map(Some),
        );
        set(&mut self.http.port, vars.parse("PORT", "a port number")?);
        set(
            &mut self.http.username,
            vars.string("CONFIG_whisk_invoker_username"),
        );
        set(
            &mut self.http.password,
            vars.string("CONFIG_whisk_invoker_password"),
        );
        self.apply_admin_tls_env(&vars)?;
        self.apply_scheduler_env(&vars)?;
        set(&mut self.api_host.name, vars.string("WHISK_API_HOST_NAME"));
        set(
            &mut self.api_host.proto,
            vars.string("WHISK_API_HOST_PROTO"),
        );
        set(
            &mut self.api_host.port,
            vars.parse("WHISK_API_HOST_PORT", "a port number")?,
        );
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
            if let Some(value) = vars.get(name) {
                *level = StoreLevel::parse(value.trim()).ok_or_else(|| {
                    env_error(
                        name,
                        value,
                        "expected STORE_ALWAYS, STORE_FAILURES or STORE_FAILURES_NOT_APPLICATION_ERRORS",
                    )
                })?;
            }
        }
        set(
            &mut self.activation_store.payload_max,
            vars.bytes("CONFIG_whisk_activation_payload_max")?,
        );
        let ignored = ignored_env_names(env);
        if !ignored.is_empty() {
            info!(
                names = %ignored.join(","),
                "OpenWhisk environment settings with no use in this invoker, ignored"
            );
        }
        Ok(())
    }

    /// The admin server's protocol and keystore; the flavor and the keystore's presence are
    /// checked by [`InvokerConfig::validate`], the keystore read when the invoker starts.
    fn apply_admin_tls_env(&mut self, vars: &Vars<'_>) -> Result<(), ConfigError> {
        const PROTOCOL: &str = "CONFIG_whisk_invoker_protocol";
        if let Some(value) = vars.get(PROTOCOL) {
            self.http.protocol = AdminProtocol::parse(value)
                .ok_or_else(|| env_error(PROTOCOL, value, "expected http or https"))?;
        }
        let https = &mut self.http.https;
        set(
            &mut https.keystore_path,
            vars.string("CONFIG_whisk_invoker_https_keystorePath")
                .map(|path| Some(PathBuf::from(path))),
        );
        set(
            &mut https.keystore_password,
            vars.string("CONFIG_whisk_invoker_https_keystorePassword"),
        );
        set(
            &mut https.keystore_flavor,
            vars.string("CONFIG_whisk_invoker_https_keystoreFlavor"),
        );
        // Any case, as the Scala invoker's `toBoolean`: an inventory's YAML `false` renders `False`.
        const CLIENT_AUTH: &str = "CONFIG_whisk_invoker_https_clientAuth";
        if let Some(value) = vars.get(CLIENT_AUTH) {
            https.client_auth = match value.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(env_error(CLIENT_AUTH, value, "expected true or false")),
            };
        }
        Ok(())
    }

    fn apply_scheduler_env(&mut self, vars: &Vars) -> Result<(), ConfigError> {
        let scheduler = &mut self.scheduler;
        set(
            &mut scheduler.invoker_provider,
            vars.string(SPI_INVOKER_PROVIDER_ENV).map(Some),
        );
        set(
            &mut scheduler.etcd_hosts,
            vars.string("CONFIG_whisk_etcd_hosts"),
        );
        set(
            &mut scheduler.etcd_username,
            vars.string("CONFIG_whisk_etcd_username").map(Some),
        );
        set(
            &mut scheduler.etcd_password,
            vars.string("CONFIG_whisk_etcd_password").map(Some),
        );
        set(
            &mut scheduler.lease_timeout_s,
            vars.parse("CONFIG_whisk_etcd_lease_timeout", "a number of seconds")?,
        );
        set(
            &mut scheduler.etcd_retry_ms,
            vars.millis("CONFIG_whisk_scheduler_dataManagementService_retryInterval")?,
        );
        set(
            &mut scheduler.cluster_name,
            vars.string("CONFIG_whisk_cluster_name")
                .map(|name| name.trim().to_lowercase()),
        );
        set(
            &mut scheduler.creation_max_peek,
            vars.parse("CONFIG_whisk_invoker_containerCreation_maxPeek", "a count")?,
        );
        set(
            &mut scheduler.memory_sync_ms,
            vars.millis("CONFIG_whisk_containerPool_memorySyncInterval")?,
        );
        set(
            &mut scheduler.batch_deletion_size,
            vars.parse("CONFIG_whisk_containerPool_batchDeletionSize", "a count")?,
        );
        set(
            &mut scheduler.tags,
            vars.get("CONFIG_whisk_invoker_resource_tags")
                .map(split_list),
        );
        set(
            &mut scheduler.dedicated_namespaces,
            vars.get("CONFIG_whisk_invoker_dedicated_namespaces")
                .map(split_list),
        );
        Ok(())
    }

    fn apply_kafka_env(&mut self, vars: &Vars<'_>) -> Result<(), ConfigError> {
        set(&mut self.kafka.hosts, vars.string("KAFKA_HOSTS"));
        set(
            &mut self.kafka.topic_prefix,
            vars.string("CONFIG_whisk_kafka_topics_prefix"),
        );
        set(
            &mut self.kafka.user_event_topic_prefix,
            vars.string("CONFIG_whisk_kafka_topics_userEvent_prefix"),
        );
        set(
            &mut self.kafka.fetch_wait_max_ms,
            vars.parse(FETCH_WAIT_ENV, "a number of milliseconds")?,
        );
        set(
            &mut self.kafka.producer_linger_ms,
            vars.parse(LINGER_ENV, "a number of milliseconds")?,
        );
        set(
            &mut self.kafka.user_events_enabled,
            vars.parse("CONFIG_whisk_userEvents_enabled", "true or false")?,
        );
        // The clients always speak plaintext; a deployment that set up TLS or SASL for its broker
        // would otherwise fail later, at every connection, with a less helpful message.
        if let Some(value) = vars.get(KAFKA_SECURITY_PROTOCOL_ENV)
            && !value.trim().eq_ignore_ascii_case("PLAINTEXT")
        {
            return Err(env_error(
                KAFKA_SECURITY_PROTOCOL_ENV,
                value,
                "only PLAINTEXT is supported",
            ));
        }
        Ok(())
    }

    fn apply_couchdb_env(&mut self, vars: &Vars<'_>) -> Result<(), ConfigError> {
        // The CouchDB section exists when one of its implemented names holds a value.
        let mut couch_names = IMPLEMENTED
            .iter()
            .filter(|name| name.starts_with(COUCHDB_ENV_PREFIX));
        if couch_names.all(|name| vars.get(name).is_none()) {
            return Ok(());
        }
        let couch = self.couchdb.get_or_insert_with(CouchDbConfig::default);
        set(
            &mut couch.protocol,
            vars.string("CONFIG_whisk_couchdb_protocol"),
        );
        set(&mut couch.host, vars.string("CONFIG_whisk_couchdb_host"));
        set(
            &mut couch.port,
            vars.parse("CONFIG_whisk_couchdb_port", "a port number")?,
        );
        set(
            &mut couch.username,
            vars.string("CONFIG_whisk_couchdb_username"),
        );
        set(
            &mut couch.password,
            vars.string("CONFIG_whisk_couchdb_password"),
        );
        set(
            &mut couch.entity_db,
            vars.string("CONFIG_whisk_couchdb_databases_WhiskEntity"),
        );
        set(
            &mut couch.activation_db,
            vars.string("CONFIG_whisk_couchdb_databases_WhiskActivation"),
        );
        set(
            &mut couch.auth_db,
            vars.string("CONFIG_whisk_couchdb_databases_WhiskAuth"),
        );
        Ok(())
    }

    fn apply_pool_env(&mut self, vars: &Vars<'_>) -> Result<(), ConfigError> {
        let pool = &mut self.pool;
        set(
            &mut pool.user_memory,
            vars.bytes("CONFIG_whisk_containerPool_userMemory")?,
        );
        set(
            &mut pool.pause_grace_ms,
            vars.millis("CONFIG_whisk_containerProxy_timeouts_pauseGrace")?,
        );
        set(
            &mut pool.idle_container_ms,
            vars.millis("CONFIG_whisk_containerProxy_timeouts_idleContainer")?,
        );
        set(
            &mut pool.prewarm_expiration_check_ms,
            vars.millis("CONFIG_whisk_containerPool_prewarmExpirationCheckInterval")?,
        );
        Ok(())
    }

    /// The system ranges first, then the namespace defaults: both are the range a namespace without
    /// limits of its own is held to, and OpenWhisk prefers the namespace defaults when they are set.
    fn apply_limits_env(&mut self, vars: &Vars<'_>) -> Result<(), ConfigError> {
        let limits = &mut self.limits;
        for prefix in ["CONFIG_whisk_", "CONFIG_whisk_namespaceDefaultLimit_"] {
            let name = |setting: &str| format!("{prefix}{setting}");
            for (setting, field) in [
                ("memory_min", &mut limits.min_memory_mb),
                ("memory_max", &mut limits.max_memory_mb),
            ] {
                set(field, vars.bytes(&name(setting))?.map(ByteSize::as_mb));
            }
            for (setting, field) in [
                ("timeLimit_min", &mut limits.min_timeout_ms),
                ("timeLimit_max", &mut limits.max_timeout_ms),
            ] {
                set(field, vars.millis(&name(setting))?);
            }
            for (setting, field) in [
                ("concurrencyLimit_min", &mut limits.min_concurrency),
                ("concurrencyLimit_max", &mut limits.max_concurrency),
            ] {
                set(field, vars.parse(&name(setting), "a whole number")?);
            }
        }
        Ok(())
    }

    fn apply_docker_env(&mut self, vars: &Vars<'_>) -> Result<(), ConfigError> {
        let docker = &mut self.docker;
        set(
            &mut docker.network,
            vars.string("CONFIG_whisk_containerFactory_containerArgs_network"),
        );
        set(&mut docker.dns_servers, vars.indexed(DNS_SERVERS_PREFIX)?);
        set(&mut docker.extra_env, vars.indexed(EXTRA_ENV_PREFIX)?);
        set(
            &mut docker.runtimes_registry,
            vars.string("CONFIG_whisk_containerFactory_runtimesRegistry_url")
                .map(Some),
        );
        set(
            &mut docker.user_images_registry,
            vars.string("CONFIG_whisk_containerFactory_userImagesRegistry_url")
                .map(Some),
        );
        set(
            &mut docker.parallel_runs,
            vars.parse("CONFIG_whisk_docker_client_parallelRuns", "a whole number")?,
        );
        const CPUS: &str = "CONFIG_whisk_containerPool_userCpus";
        if let Some(value) = vars.get(CPUS) {
            let cpus = value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|cpus| cpus.is_finite() && *cpus > 0.0)
                .ok_or_else(|| env_error(CPUS, value, "expected a positive number of CPUs"))?;
            docker.user_cpus = Some(cpus);
        }
        Ok(())
    }
}
