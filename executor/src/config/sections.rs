//! The sections of the invoker's configuration (`[instance]`, `[kafka]`, `[local_store]`, `[pool]`,
//! `[activation_store]`, `[http]` with `[http.https]`, `[api_host]`), each with OpenWhisk's defaults. The `[couchdb]`
//! section is [`crate::store::couchdb::CouchDbConfig`], next to the store that reads it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    DEFAULT_API_HOST_PORT, DEFAULT_API_HOST_PROTO, DEFAULT_BLACKLIST_POLL_MS,
    DEFAULT_CONCURRENT_PEEK_FACTOR, DEFAULT_HTTP_PASSWORD, DEFAULT_HTTP_PORT,
    DEFAULT_HTTP_USERNAME, DEFAULT_KAFKA_HOSTS, DEFAULT_LOCAL_STORE_DIR, DEFAULT_PAYLOAD_MAX,
    DEFAULT_USER_MEMORY,
};
use crate::bytesize::ByteSize;
use crate::store::StoreLevel;

/// Which invoker this is (docs/protocol.md §1).
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

/// Kafka (docs/protocol.md §1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Longest time the broker may hold a fetch when no data is there, ms
    /// (`whisk.kafka.consumer.fetch-max-wait-ms`). Default 500. Lower it for a broker that holds
    /// every fetch for the whole wait (Tansu), where it is the latency floor of every activation.
    pub fetch_wait_max_ms: u32,
    /// How long the producer holds a record for others to share its produce request, ms
    /// (`whisk.kafka.producer.linger-ms`, the Kafka client's `linger.ms`; fractions allowed, as
    /// librdkafka's). Default 0.5 ([`crate::kafka::DEFAULT_PRODUCER_LINGER_MS`]): the acks of one
    /// poll batch share a request, for up to half a millisecond on an ack. 0 sends each ack at
    /// once, as OpenWhisk's own invoker; at most 1000.
    pub producer_linger_ms: f64,
    /// How long an ack the broker did not take is sent again, ms, counted from the end of its
    /// activation. Default 300000 (5 minutes): past the controller's forced completion (the
    /// action's timeout + 1 minute) for every default timeout, so a broker that is away for
    /// minutes still gets every ack ([`crate::ack::DEFAULT_ACK_RETRY_WINDOW`]).
    pub ack_retry_window_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            hosts: DEFAULT_KAFKA_HOSTS.to_string(),
            topic_prefix: String::new(),
            user_events_enabled: false,
            user_event_topic_prefix: String::new(),
            fetch_wait_max_ms: crate::kafka::DEFAULT_FETCH_WAIT_MAX_MS,
            producer_linger_ms: crate::kafka::DEFAULT_PRODUCER_LINGER_MS,
            ack_retry_window_ms: millis(crate::ack::DEFAULT_ACK_RETRY_WINDOW),
        }
    }
}

impl KafkaConfig {
    /// `ack_retry_window_ms` as a duration.
    pub fn ack_retry_window(&self) -> Duration {
        Duration::from_millis(self.ack_retry_window_ms)
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

/// The container pool: the `[pool]` section, OpenWhisk's `whisk.container-pool` and
/// `container-proxy.timeouts` names. [`InvokerConfig::pool_config`] turns it into the pool's own
/// [`crate::pool::PoolConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerPoolConfig {
    /// Memory for all action containers together (`whisk.container-pool.user-memory`), ByteSize
    /// text. Default `2048 m` ([`DEFAULT_USER_MEMORY`]).
    pub user_memory: ByteSize,
    /// `concurrent-peek-factor`, in (0, 1]: with a concurrency limit above 1, the feed takes up to
    /// `maxContainers × limits.max_concurrency × factor` messages at once. Default 0.5.
    pub concurrent_peek_factor: f64,
    /// Idle time before a container is paused, ms. Default 10000.
    pub pause_grace_ms: u64,
    /// Time an idle (paused) container is kept before removal, ms. Default 600000.
    pub idle_container_ms: u64,
    /// Interval of the prewarm expiry check, ms. Default 600000.
    pub prewarm_expiration_check_ms: u64,
    /// Most expired prewarms removed per check (`prewarm-expiration-limit`). Default 100.
    pub prewarm_expiration_limit: usize,
    /// Interval of the namespace blacklist refresh, ms. Default 300000.
    pub blacklist_poll_ms: u64,
    /// Bytes of executable actions (their code, mostly) kept in the loader's cache, ByteSize text.
    /// Default `256 m` ([`crate::loader::DEFAULT_ACTION_CACHE_BYTES`]).
    pub action_cache_size: ByteSize,
}

/// A duration as whole milliseconds, for the `_ms` fields.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Default for ContainerPoolConfig {
    fn default() -> Self {
        Self {
            user_memory: DEFAULT_USER_MEMORY,
            concurrent_peek_factor: DEFAULT_CONCURRENT_PEEK_FACTOR,
            pause_grace_ms: millis(crate::pool::DEFAULT_PAUSE_GRACE),
            idle_container_ms: millis(crate::pool::DEFAULT_IDLE_TIMEOUT),
            prewarm_expiration_check_ms: millis(crate::pool::DEFAULT_PREWARM_CHECK_INTERVAL),
            prewarm_expiration_limit: crate::pool::DEFAULT_PREWARM_EXPIRATION_LIMIT,
            blacklist_poll_ms: DEFAULT_BLACKLIST_POLL_MS,
            action_cache_size: crate::loader::DEFAULT_ACTION_CACHE_BYTES,
        }
    }
}

impl ContainerPoolConfig {
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

/// What is stored (docs/protocol.md §8) and how large results may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivationStoreConfig {
    /// Level for blocking activations. Default `STORE_ALWAYS`.
    pub blocking_level: StoreLevel,
    /// Level for non-blocking activations. Default `STORE_ALWAYS`.
    pub non_blocking_level: StoreLevel,
    /// Largest result (`whisk.activation.payload.max`), ByteSize text. Default `1 m`.
    pub payload_max: ByteSize,
    /// Records waiting to be written at most; beyond it new records are dropped and counted
    /// (`invoker_activation_records_dropped_total`). Default 10000
    /// ([`crate::store::DEFAULT_RECORD_QUEUE_CAPACITY`]).
    pub queue_capacity: usize,
}

impl Default for ActivationStoreConfig {
    fn default() -> Self {
        Self {
            blocking_level: StoreLevel::Always,
            non_blocking_level: StoreLevel::Always,
            payload_max: DEFAULT_PAYLOAD_MAX,
            queue_capacity: crate::store::DEFAULT_RECORD_QUEUE_CAPACITY,
        }
    }
}

/// The admin HTTP server (OpenWhisk's `whisk.invoker` HTTP settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Port (`PORT`). Default 8080.
    pub port: u16,
    /// Basic-auth user of `/enable`, `/disable`, `/isEnabled`. Default `invoker.user`.
    pub username: String,
    /// Its password. Default `invoker.pass`.
    pub password: String,
    /// `http` or `https` (`CONFIG_whisk_invoker_protocol`). Default `http`, as when nothing is set
    /// (OpenWhisk's Ansible deployment sets `https`).
    pub protocol: AdminProtocol,
    /// The keystore and client authentication of `https` (`[http.https]`); read only when
    /// `protocol` is `https`.
    pub https: HttpsConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            port: DEFAULT_HTTP_PORT,
            username: DEFAULT_HTTP_USERNAME.to_string(),
            password: DEFAULT_HTTP_PASSWORD.to_string(),
            protocol: AdminProtocol::Http,
            https: HttpsConfig::default(),
        }
    }
}

/// What the admin server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminProtocol {
    /// Plain HTTP/1.1.
    #[default]
    Http,
    /// HTTP/1.1 over TLS with the keystore of [`HttpsConfig`] ([`crate::tls`]).
    Https,
}

impl AdminProtocol {
    /// `http` or `https` (case-insensitive, surrounding spaces ignored), as OpenWhisk's setting.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            _ => None,
        }
    }
}

/// The admin server's TLS settings (OpenWhisk's `whisk.invoker.https`). The keystore is read when
/// the invoker starts; a missing or unreadable one stops the start with an error naming its path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpsConfig {
    /// The PKCS12 keystore: the server's key and certificate, and the client certificates trusted
    /// (`CONFIG_whisk_invoker_https_keystorePath`; Ansible:
    /// `/conf/invoker-openwhisk-keystore.p12`). Default none, required for `https`.
    pub keystore_path: Option<PathBuf>,
    /// Its password (`CONFIG_whisk_invoker_https_keystorePassword`; Ansible: `openwhisk`).
    /// Default empty.
    pub keystore_password: String,
    /// Its format (`CONFIG_whisk_invoker_https_keystoreFlavor`); only `PKCS12` (any case) is
    /// read. Default `PKCS12`.
    pub keystore_flavor: String,
    /// Whether a client must present one of the keystore's certificates
    /// (`CONFIG_whisk_invoker_https_clientAuth`). Default true, as OpenWhisk deploys it.
    pub client_auth: bool,
}

impl Default for HttpsConfig {
    fn default() -> Self {
        Self {
            keystore_path: None,
            keystore_password: String::new(),
            keystore_flavor: crate::tls::KEYSTORE_FLAVOR_PKCS12.to_string(),
            client_auth: true,
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
