//! The namespace blacklist (docs/protocol.md §7): the namespaces whose activations are refused with OpenWhisk's
//! "namespace is blacklisted" record instead of running.
//!
//! The set is read from the subjects database's `namespaceThrottlings/blockedNamespaces` view
//! ([`EntityStore::blocked_namespaces`]) and refreshed on a timer by the Kafka invoker; the
//! standalone server keeps it empty. A failed refresh keeps the previous set, as OpenWhisk's
//! `NamespaceBlacklist` does, so a database hiccup neither unblocks nor blocks anyone.

use std::collections::BTreeSet;
use std::sync::RwLock;

use tracing::{debug, warn};

use crate::store::EntityStore;

/// The set of blocked namespaces, refreshed from the subjects database.
#[derive(Debug, Default)]
pub struct Blacklist {
    namespaces: RwLock<BTreeSet<String>>,
}

impl Blacklist {
    /// Whether `namespace` is blocked.
    pub fn contains(&self, namespace: &str) -> bool {
        self.namespaces
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(namespace)
    }

    /// Replaces the set.
    pub fn replace(&self, namespaces: BTreeSet<String>) {
        *self
            .namespaces
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = namespaces;
    }

    /// Reads the set from `store` once; on failure the old set stays.
    pub async fn refresh(&self, store: &dyn EntityStore) {
        match store.blocked_namespaces().await {
            Ok(namespaces) => {
                debug!(count = namespaces.len(), "blacklist refreshed");
                self.replace(namespaces);
            }
            Err(error) => warn!(%error, "blacklist refresh failed; keeping the previous list"),
        }
    }
}
