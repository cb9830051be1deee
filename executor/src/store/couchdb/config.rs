//! Where the CouchDB stores connect: [`CouchDbConfig`], the `[couchdb]` section of the invoker's
//! configuration (filled from OpenWhisk's `CONFIG_whisk_couchdb_*` names by
//! [`crate::config::InvokerConfig::apply_env`]). It lives next to the stores that read it.

use serde::{Deserialize, Serialize};

/// Default CouchDB port.
pub const DEFAULT_COUCHDB_PORT: u16 = 5984;
/// Default entities database (Ansible's `whisks` with the local prefix).
pub const DEFAULT_ENTITY_DB: &str = "whisk_local_whisks";
/// Default activations database.
pub const DEFAULT_ACTIVATION_DB: &str = "whisk_local_activations";
/// Default subjects database.
pub const DEFAULT_AUTH_DB: &str = "whisk_local_subjects";

/// CouchDB (docs/protocol.md §7). Present only when the node uses CouchDB.
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
