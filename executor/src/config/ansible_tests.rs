//! The environment OpenWhisk's Ansible role gives its invoker (`fixtures/ansible/invoker-env.txt`,
//! rendered with OpenWhisk's defaults): taken whole, the implemented names act, empty values are
//! unset, the names with no use here never fail and are listed by [`ignored_env_names`].

use super::*;

/// The fixture: one `NAME=value` per line, values as Ansible renders them.
const ANSIBLE_ENV: &str = include_str!("../../tests/fixtures/ansible/invoker-env.txt");

fn ansible_env() -> HashMap<String, String> {
    let mut env = HashMap::new();
    for line in ANSIBLE_ENV.lines() {
        let (name, value) = line.split_once('=').expect("fixture lines are NAME=value");
        assert!(
            env.insert(name.to_string(), value.to_string()).is_none(),
            "{name} twice in the fixture"
        );
    }
    env
}

/// The fixture with some lines replaced or added.
fn ansible_env_with(changes: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env = ansible_env();
    for (name, value) in changes {
        env.insert(name.to_string(), value.to_string());
    }
    env
}

fn load(env: &HashMap<String, String>) -> Result<InvokerConfig, ConfigError> {
    InvokerConfig::load(None, env, &ConfigOverrides::default())
}

#[tokio::test]
async fn test_ansible_env_loads_whole_and_its_values_act() {
    let env = ansible_env();
    assert_eq!(
        env.len(),
        100,
        "99 names of the role's block plus dnsServers_0"
    );
    let config = load(&env).unwrap();
    assert_eq!(config.kafka.hosts, "10.0.0.11:9093");
    assert_eq!(config.kafka.topic_prefix, "");
    assert!(!config.kafka.user_events_enabled);
    let couch = config.couchdb.clone().expect("CouchDB is on");
    assert_eq!(
        (couch.protocol.as_str(), couch.host.as_str(), couch.port),
        ("http", "10.0.0.12", 5984)
    );
    assert_eq!(
        (couch.username.as_str(), couch.password.as_str()),
        ("whisk_admin", "some_passw0rd")
    );
    assert_eq!(
        (
            couch.entity_db.as_str(),
            couch.activation_db.as_str(),
            couch.auth_db.as_str()
        ),
        (
            "whisk_prod_whisks",
            "whisk_prod_activations",
            "whisk_prod_subjects"
        )
    );
    assert_eq!(config.pool.user_memory, ByteSize::mb(2048));
    assert_eq!(config.pool_config().user_memory_mb, 2048);
    assert_eq!(config.api_host.url(), "https://10.0.0.10:443");
    assert_eq!(config.docker_config().api_host, "https://10.0.0.10:443");
    assert_eq!(config.http.port, 8080);
    assert_eq!(
        (config.http.username.as_str(), config.http.password.as_str()),
        ("invoker.user", "invoker.pass")
    );
    let pool = config.pool_config();
    assert_eq!(pool.pause_grace, Duration::from_secs(10));
    assert_eq!(pool.idle_timeout, Duration::from_secs(600));
    assert_eq!(pool.prewarm_check_interval, Duration::from_secs(600));
    assert_eq!(config.docker.network, "bridge");
    assert_eq!(config.docker.extra_env, ["__OW_ALLOW_CONCURRENT=false"]);
    assert!(
        config.docker.dns_servers.is_empty(),
        "dnsServers_0 is empty"
    );
    assert_eq!(config.limits, LimitRanges::default());
    assert_eq!(config.http.protocol, AdminProtocol::Https);
    assert_eq!(
        config.http.https,
        HttpsConfig {
            keystore_path: Some(PathBuf::from("/conf/invoker-openwhisk-keystore.p12")),
            keystore_password: "openwhisk".into(),
            keystore_flavor: "PKCS12".into(),
            client_auth: true,
        }
    );
    let manifest = config.runtimes_manifest().await.unwrap();
    assert!(manifest.is_some(), "RUNTIMES_MANIFEST is read");
}

/// What an operator's inventory variables render to, replacing the defaults: each one acts.
#[test]
fn test_operator_values_in_the_ansible_env_act() {
    let config = load(&ansible_env_with(&[
        ("CONFIG_whisk_kafka_topics_prefix", "staging_"),
        ("CONFIG_whisk_kafka_topics_userEvent_prefix", "staging_ev_"),
        ("CONFIG_whisk_userEvents_enabled", "true"),
        ("CONFIG_whisk_kafka_common_securityProtocol", "plaintext"),
        ("CONFIG_whisk_containerPool_userMemory", "4g"),
        ("CONFIG_whisk_invoker_username", "ops"),
        ("CONFIG_whisk_invoker_password", "s3cret"),
        ("WHISK_API_HOST_NAME", "api.example.org"),
        ("WHISK_API_HOST_PROTO", "http"),
        ("WHISK_API_HOST_PORT", "9001"),
        (
            "CONFIG_whisk_containerProxy_timeouts_pauseGrace",
            "50 seconds",
        ),
        (
            "CONFIG_whisk_containerProxy_timeouts_idleContainer",
            "20 minutes",
        ),
        (
            "CONFIG_whisk_containerPool_prewarmExpirationCheckInterval",
            "90s",
        ),
        ("CONFIG_whisk_memory_min", "64 m"),
        ("CONFIG_whisk_memory_max", "1024 m"),
        ("CONFIG_whisk_namespaceDefaultLimit_memory_max", "768 m"),
        ("CONFIG_whisk_timeLimit_min", "50 ms"),
        ("CONFIG_whisk_timeLimit_max", "10 minutes"),
        ("CONFIG_whisk_concurrencyLimit_max", "50"),
        ("CONFIG_whisk_activation_payload_max", "2 m"),
        (
            "CONFIG_whisk_containerFactory_containerArgs_network",
            "openwhisk",
        ),
        (
            "CONFIG_whisk_containerFactory_containerArgs_dnsServers_0",
            "10.0.0.2",
        ),
        (
            "CONFIG_whisk_containerFactory_containerArgs_dnsServers_1",
            "10.0.0.3",
        ),
        (
            "CONFIG_whisk_containerFactory_containerArgs_dnsServers_10",
            "10.0.0.4",
        ),
        (
            "CONFIG_whisk_containerFactory_containerArgs_extraEnvVars_0",
            "__OW_ALLOW_CONCURRENT=true",
        ),
        (
            "CONFIG_whisk_containerFactory_runtimesRegistry_url",
            "reg.local/",
        ),
        ("CONFIG_whisk_docker_client_parallelRuns", "20"),
        ("CONFIG_whisk_containerPool_userCpus", "2.5"),
        (
            "CONFIG_whisk_activation_storeBlockingResultLevel",
            "STORE_FAILURES",
        ),
    ]))
    .unwrap();
    assert_eq!(config.topic("invoker0"), "staging_invoker0");
    assert_eq!(config.kafka.user_event_topic_prefix, "staging_ev_");
    assert!(config.kafka.user_events_enabled);
    assert_eq!(config.pool.user_memory.as_mb(), 4096);
    assert_eq!(config.invoker_instance_id().user_memory.as_mb(), 4096);
    assert_eq!(
        (config.http.username.as_str(), config.http.password.as_str()),
        ("ops", "s3cret")
    );
    assert_eq!(
        config.docker_config().api_host,
        "http://api.example.org:9001"
    );
    let pool = config.pool_config();
    assert_eq!(pool.pause_grace, Duration::from_secs(50));
    assert_eq!(pool.idle_timeout, Duration::from_secs(1200));
    assert_eq!(pool.prewarm_check_interval, Duration::from_secs(90));
    let limits = config.limits;
    assert_eq!((limits.min_memory_mb, limits.max_memory_mb), (64, 768));
    assert_eq!(
        (limits.min_timeout_ms, limits.max_timeout_ms),
        (50, 600_000)
    );
    assert_eq!((limits.min_concurrency, limits.max_concurrency), (1, 50));
    assert_eq!(config.max_peek(16), 400, "16 × 50 × 0.5");
    assert_eq!(config.activation_store.payload_max, ByteSize::mb(2));
    assert_eq!(
        config.activation_store.blocking_level,
        crate::store::StoreLevel::Failures
    );
    let docker = config.docker_config();
    assert_eq!(docker.network, "openwhisk");
    assert_eq!(docker.dns_servers, ["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    assert_eq!(docker.extra_env, ["__OW_ALLOW_CONCURRENT=true"]);
    assert_eq!(docker.runtimes_registry.as_deref(), Some("reg.local/"));
    assert_eq!(docker.user_images_registry, None, "an empty url is unset");
    assert_eq!(docker.parallel_runs, 20);
    assert_eq!(docker.user_cpus, Some(2.5));
    assert_eq!(docker.max_result_bytes, 2 << 20);
}

#[test]
fn test_empty_ansible_values_are_unset() {
    let empty: HashMap<String, String> = ansible_env()
        .into_keys()
        .map(|name| (name, String::new()))
        .collect();
    assert_eq!(load(&empty).unwrap(), InvokerConfig::default());
    assert!(ignored_env_names(&empty).is_empty());
}

#[test]
fn test_unusable_values_of_implemented_names_are_errors_naming_them() {
    for (name, value) in [
        ("PORT", "http"),
        ("WHISK_API_HOST_PORT", "443x"),
        ("CONFIG_whisk_couchdb_port", "couch"),
        ("CONFIG_whisk_kafka_common_securityProtocol", "SSL"),
        ("CONFIG_whisk_kafka_consumer_fetchMaxWaitMs", "soon"),
        ("CONFIG_whisk_userEvents_enabled", "yes"),
        ("CONFIG_whisk_containerPool_userMemory", "lots"),
        (
            "CONFIG_whisk_containerProxy_timeouts_pauseGrace",
            "10 fortnights",
        ),
        (
            "CONFIG_whisk_containerProxy_timeouts_idleContainer",
            "minutes",
        ),
        (
            "CONFIG_whisk_containerPool_prewarmExpirationCheckInterval",
            "-1 s",
        ),
        ("CONFIG_whisk_memory_max", "big"),
        ("CONFIG_whisk_timeLimit_max", "5 parsecs"),
        ("CONFIG_whisk_concurrencyLimit_min", "many"),
        ("CONFIG_whisk_namespaceDefaultLimit_memory_min", "-1 m"),
        (
            "CONFIG_whisk_namespaceDefaultLimit_timeLimit_max",
            "1.5.2 s",
        ),
        (
            "CONFIG_whisk_namespaceDefaultLimit_concurrencyLimit_max",
            "2.5",
        ),
        ("CONFIG_whisk_activation_payload_max", "1 x"),
        (
            "CONFIG_whisk_activation_storeNonBlockingResultLevel",
            "ALWAYS",
        ),
        ("CONFIG_whisk_docker_client_parallelRuns", "-2"),
        ("CONFIG_whisk_containerPool_userCpus", "0"),
        (
            "CONFIG_whisk_containerFactory_containerArgs_dnsServers_first",
            "10.0.0.2",
        ),
    ] {
        let error = load(&ansible_env_with(&[(name, value)]))
            .expect_err(&format!("{name}={value:?} is accepted"));
        assert!(
            matches!(&error, ConfigError::Env { name: named, .. } if named == name),
            "{name}={value:?}: {error}"
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("environment variable {name}=")),
            "{error}"
        );
    }
}

/// The info line's list: the fixture's ignored names that hold a value, sorted, and nothing else.
#[test]
fn test_ignored_names_are_listed_and_never_fail() {
    let env = ansible_env();
    let mut expected = vec![
        "JAVA_OPTS",
        "JMX_REMOTE",
        "OPENWHISK_ENCODED_CONFIG",
        "TZ",
        "ZOOKEEPER_HOSTS",
        "WHISK_LOGS_DIR",
        "METRICS_KAMON",
        "METRICS_KAMON_TAGS",
        "METRICS_LOG",
        "DB_WHISK_ACTIONS",
        "DB_WHISK_ACTIVATIONS",
        "DB_WHISK_AUTHS",
        "CONFIG_kamon_statsd_port",
        "CONFIG_logback_log_level",
        "CONFIG_whisk_containerPool_pekkoClient",
        "CONFIG_whisk_containerPool_prewarmExpirationCheckInitDelay",
        "CONFIG_whisk_containerPool_prewarmExpirationCheckIntervalVariance",
        "CONFIG_whisk_containerPool_prewarmMaxRetryLimit",
        "CONFIG_whisk_containerPool_prewarmPromotion",
        "CONFIG_whisk_containerProxy_timeouts_keepingDuration",
        "CONFIG_whisk_couchdb_provider",
        "CONFIG_whisk_docker_containerFactory_useRunc",
        "CONFIG_whisk_kafka_common_sslKeystoreLocation",
        "CONFIG_whisk_kafka_common_sslKeystorePassword",
        "CONFIG_whisk_kafka_common_sslTruststoreLocation",
        "CONFIG_whisk_kafka_common_sslTruststorePassword",
        "CONFIG_whisk_kafka_replicationFactor",
        "CONFIG_whisk_spi_LogStoreProvider",
        "CONFIG_whisk_transactions_header",
    ];
    expected.sort_unstable();
    assert_eq!(ignored_env_names(&env), expected);

    // Every name of the role's block is known to the tables, none only by its `CONFIG_` prefix.
    for name in env.keys() {
        assert!(
            matches!(
                classify_env_name(name),
                EnvName::Implemented | EnvName::Elsewhere | EnvName::Ignored
            ),
            "{name} is {:?}",
            classify_env_name(name)
        );
    }

    // The role's later extensions (scheduler, Elasticsearch, MongoDB), odd values in ignored names,
    // an unknown `CONFIG_` name and the command line's and admin TLS's names: all accepted.
    let extended = ansible_env_with(&[
        ("CONFIG_whisk_etcd_hosts", "10.0.0.13:2379"),
        ("CONFIG_whisk_etcd_lease_timeout", "10"),
        ("CONFIG_whisk_etcd_pool_threads", "10"),
        (
            "CONFIG_whisk_scheduler_dataManagementService_retryInterval",
            "1 second",
        ),
        ("CONFIG_whisk_invoker_containerCreation_maxPeek", "500"),
        (
            "CONFIG_whisk_spi_InvokerProvider",
            "org.apache.openwhisk.core.invoker.FPCInvokerReactive",
        ),
        (
            "CONFIG_whisk_activationStore_elasticsearch_hosts",
            "10.0.0.14:9200",
        ),
        ("CONFIG_whisk_mongodb_uri", "mongodb://10.0.0.15:27017"),
        ("CONFIG_whisk_memory_std", "lots"),
        ("CONFIG_whisk_kafka_replicationFactor", "many"),
        ("CONFIG_whisk_someFutureSetting", "on"),
        ("INVOKER_OPTS", "--not-a-flag"),
        ("CONFIG_whisk_invoker_https_keystorePassword", "openwhisk"),
        ("PATH", "/usr/bin"),
    ]);
    // The scheduler's settings select and configure FPC mode (config::scheduler).
    let config = load(&extended).unwrap();
    assert_eq!(config.invoker_mode(), super::InvokerMode::Fpc);
    assert_eq!(config.scheduler.etcd_endpoints(), ["10.0.0.13:2379"]);
    let listed = ignored_env_names(&extended);
    assert!(listed.is_sorted());
    for name in [
        "CONFIG_whisk_etcd_pool_threads",
        "CONFIG_whisk_activationStore_elasticsearch_hosts",
        "CONFIG_whisk_mongodb_uri",
        "CONFIG_whisk_memory_std",
        "CONFIG_whisk_someFutureSetting",
    ] {
        assert!(listed.iter().any(|n| n == name), "{name} not listed");
    }
    for name in [
        "CONFIG_whisk_etcd_hosts",
        "CONFIG_whisk_invoker_containerCreation_maxPeek",
        "CONFIG_whisk_spi_InvokerProvider",
        "INVOKER_OPTS",
        "CONFIG_whisk_invoker_protocol",
        "CONFIG_whisk_invoker_https_keystorePassword",
        "PATH",
        "KAFKA_HOSTS",
    ] {
        assert!(!listed.iter().any(|n| n == name), "{name} listed");
    }
    assert_eq!(
        listed.len(),
        expected.len() + 5,
        "the five new ignored names (the scheduler's five others act)"
    );
}

/// The admin server's https settings: parsed in any case, refused when unusable, with the name.
#[test]
fn test_admin_https_settings() {
    let config = load(&ansible_env_with(&[
        ("CONFIG_whisk_invoker_protocol", "HTTP"),
        ("CONFIG_whisk_invoker_https_clientAuth", "False"),
    ]))
    .unwrap();
    assert_eq!(config.http.protocol, AdminProtocol::Http);
    assert!(!config.http.https.client_auth);

    for (name, value, expected) in [
        (
            "CONFIG_whisk_invoker_protocol",
            "ftp",
            "CONFIG_whisk_invoker_protocol",
        ),
        ("CONFIG_whisk_invoker_https_clientAuth", "yes", "clientAuth"),
        (
            "CONFIG_whisk_invoker_https_keystoreFlavor",
            "JKS",
            "only PKCS12",
        ),
    ] {
        let error = load(&ansible_env_with(&[(name, value)]))
            .and_then(|config| config.validate().map(|()| config))
            .expect_err(name);
        assert!(
            error.to_string().contains(expected),
            "{name}={value}: {error}"
        );
    }
    // https without a keystore path: the empty value counts as unset.
    let error = load(&ansible_env_with(&[(
        "CONFIG_whisk_invoker_https_keystorePath",
        "",
    )]))
    .and_then(|config| config.validate().map(|()| config))
    .expect_err("no keystore");
    assert!(error.to_string().contains("keystore_path"), "{error}");
}
