//! The configuration layers, OpenWhisk's names and defaults, and what is derived from them.

use super::*;
use crate::store::StoreLevel;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn test_defaults_are_openwhisks() {
    let config = InvokerConfig::default();
    // OpenWhisk's deployed default (Ansible's `invoker_user_memory: 2048m`).
    assert_eq!(config.pool.user_memory, ByteSize::mb(2048));
    assert_eq!(config.pool.user_memory, DEFAULT_USER_MEMORY);
    assert_eq!(
        crate::pool::PoolConfig::default().user_memory_mb,
        DEFAULT_USER_MEMORY.as_mb()
    );
    assert_eq!(config.kafka.fetch_wait_max_ms, 500);
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
    assert_eq!(
        couch.activation_db,
        crate::store::couchdb::DEFAULT_ACTIVATION_DB
    );
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

/// An environment name of a number of milliseconds, `field` of the configuration: a value is read,
/// an empty one ignored, and a malformed one refused naming the variable.
fn assert_millis_from_env<T>(name: &str, field: fn(&InvokerConfig) -> T)
where
    T: PartialEq + std::fmt::Debug + From<u8>,
{
    let mut config = InvokerConfig::default();
    config.apply_env(&env(&[(name, "20")])).unwrap();
    assert_eq!(field(&config), T::from(20), "{name}");
    config.apply_env(&env(&[(name, "")])).unwrap();
    assert_eq!(
        field(&config),
        T::from(20),
        "{name}: an empty value is ignored"
    );
    let error = config.apply_env(&env(&[(name, "soon")])).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("environment variable {name}=")),
        "{error}"
    );
}

#[test]
fn test_fetch_wait_is_read_with_the_other_environment_names() {
    assert_millis_from_env("CONFIG_whisk_kafka_consumer_fetchMaxWaitMs", |c| {
        c.kafka.fetch_wait_max_ms
    });
    let toml = InvokerConfig::from_toml_str("[kafka]\nfetch_wait_max_ms = 5").unwrap();
    assert_eq!(toml.kafka.fetch_wait_max_ms, 5);
}

#[test]
fn test_producer_linger_comes_from_toml_then_openwhisk_name_and_is_bounded() {
    let name = "CONFIG_whisk_kafka_producer_lingerMs";
    assert_millis_from_env(name, |c| c.kafka.producer_linger_ms);
    assert_eq!(
        InvokerConfig::default().kafka.producer_linger_ms,
        0.5,
        "the acks of a poll batch share a produce request by default"
    );
    let mut config = InvokerConfig::from_toml_str("[kafka]\nproducer_linger_ms = 2").unwrap();
    assert_eq!(config.kafka.producer_linger_ms, 2.0, "an integer is read");
    let toml = InvokerConfig::from_toml_str("[kafka]\nproducer_linger_ms = 0.25").unwrap();
    assert_eq!(toml.kafka.producer_linger_ms, 0.25, "and a fraction");
    config.apply_env(&env(&[(name, "1")])).unwrap();
    assert_eq!(config.kafka.producer_linger_ms, 1.0, "the environment wins");
    config.apply_env(&env(&[(name, "0.2")])).unwrap();
    assert_eq!(config.kafka.producer_linger_ms, 0.2, "and a fraction");
    assert!(config.validate().is_ok());
    config.kafka.producer_linger_ms = 0.0;
    assert!(config.validate().is_ok(), "0 sends each ack at once");
    for refused in [1_000.5, -1.0, f64::NAN, f64::INFINITY] {
        config.kafka.producer_linger_ms = refused;
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("kafka.producer_linger_ms")
                && error.contains("is not between 0 and the most an ack may wait, 1000 ms")
                && error.contains(name),
            "{refused}: {error}"
        );
    }
}

#[test]
fn test_pool_config_is_derived_from_the_invoker_config() {
    let defaults = InvokerConfig::default().pool_config();
    let pool = crate::pool::PoolConfig::default();
    assert_eq!(defaults.user_memory_mb, pool.user_memory_mb);
    assert_eq!(defaults.pause_grace, pool.pause_grace);
    assert_eq!(defaults.idle_timeout, pool.idle_timeout);
    assert_eq!(defaults.prewarm_check_interval, pool.prewarm_check_interval);
    assert_eq!(
        defaults.prewarm_expiration_limit,
        pool.prewarm_expiration_limit
    );
    assert_eq!(defaults.housekeeping_interval, pool.housekeeping_interval);
    assert!(defaults.health_check.is_some());

    let config = InvokerConfig::from_toml_str(
        r#"
        [pool]
        user_memory = "4096 m"
        pause_grace_ms = 50
        idle_container_ms = 7000
        prewarm_expiration_check_ms = 9000
        prewarm_expiration_limit = 3
        "#,
    )
    .unwrap();
    let mapped = config.pool_config();
    assert_eq!(mapped.user_memory_mb, 4096);
    assert_eq!(mapped.pause_grace, Duration::from_millis(50));
    assert_eq!(mapped.idle_timeout, Duration::from_millis(7000));
    assert_eq!(mapped.prewarm_check_interval, Duration::from_millis(9000));
    assert_eq!(mapped.prewarm_expiration_limit, 3);
}

#[test]
fn test_max_peek_follows_openwhisk() {
    let mut config = InvokerConfig::default();
    // Concurrency limit 1: the factor cannot raise it above the container count.
    assert_eq!(config.max_peek(16), 16);
    config.limits.max_concurrency = 10;
    assert_eq!(config.max_peek(16), 80);
    config.pool.concurrent_peek_factor = 0.01;
    assert_eq!(config.max_peek(16), 16);
}

#[tokio::test]
async fn test_manifest_source_text_before_file() {
    let mut config = InvokerConfig::default();
    assert_eq!(config.manifest_source(), None);
    assert!(config.runtimes_manifest().await.unwrap().is_none());
    config.runtimes_manifest_file = Some(PathBuf::from("/nonexistent/runtimes.json"));
    assert!(matches!(
        config.runtimes_manifest().await,
        Err(ConfigError::Manifest(ManifestError::Read { .. }))
    ));
    config.runtimes_manifest = Some("not json".into());
    assert_eq!(
        config.manifest_source(),
        Some(ManifestSource::Text("not json".into()))
    );
    assert!(matches!(
        config.runtimes_manifest().await,
        Err(ConfigError::Manifest(ManifestError::Parse(_)))
    ));
}
