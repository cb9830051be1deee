//! OpenWhisk's environment names, so that an existing Ansible deployment's variables work unchanged.
//!
//! The names and fields are tabled in the [`crate::config`] docs. Empty values are ignored, as
//! OpenWhisk's `transformEnvironment.sh` does; a value that does not parse names its variable.

use std::collections::HashMap;

use factory::docker::manifest::MANIFEST_ENV;

use super::{ConfigError, FETCH_WAIT_ENV, InvokerConfig};
use crate::bytesize::ByteSize;
use crate::store::StoreLevel;
use crate::store::couchdb::CouchDbConfig;

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
    /// Applies OpenWhisk's environment names (see the module docs) from `env`.
    pub fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<(), ConfigError> {
        let get = |name: &str| env.get(name).filter(|value| !value.is_empty());
        if let Some(value) = get("KAFKA_HOSTS") {
            self.kafka.hosts = value.clone();
        }
        if let Some(value) = get(MANIFEST_ENV) {
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
        if let Some(value) = get(FETCH_WAIT_ENV) {
            self.kafka.fetch_wait_max_ms =
                parse_env(FETCH_WAIT_ENV, value, "a number of milliseconds")?;
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
}
