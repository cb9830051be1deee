//! The `[scheduler]` section: which protocol the node speaks, and what OpenWhisk 2.x's scheduler
//! mode ("FPC", [`crate::fpc`]) needs (etcd, the cluster name, its timers).
//!
//! # The mode rule
//!
//! OpenWhisk selects its invoker class with `whisk.spi.InvokerProvider`; its Ansible role sets
//! `CONFIG_whisk_spi_InvokerProvider` to `...FPCInvokerReactive` (and `CONFIG_whisk_etcd_hosts`)
//! when the scheduler is enabled, and to `...InvokerReactive` when it is not. This invoker reads the
//! same names, in this order ([`InvokerConfig::invoker_mode`]):
//!
//! 1. `scheduler.mode` = `classic` or `fpc` (TOML, or `--mode` on the command line) wins;
//! 2. otherwise (`auto`, the default) a provider class name ending in `FPCInvokerReactive` selects
//!    FPC and any other provider class selects classic;
//! 3. otherwise FPC when etcd hosts are configured, classic when they are not. (OpenWhisk's own
//!    default class is the FPC one, but that mode cannot start without etcd, so a node given no
//!    etcd keeps the classic protocol it always spoke.)

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, InvokerConfig};

/// The etcd key root (`whisk.cluster.name`).
pub const DEFAULT_CLUSTER_NAME: &str = "whisk";
/// The etcd lease's time to live, seconds (`whisk.etcd.lease.timeout`; Ansible sets 10).
pub const DEFAULT_LEASE_TIMEOUT_S: u64 = 10;
/// Retry interval of etcd writes (`whisk.scheduler.data-management-service.retry-interval`), ms.
pub const DEFAULT_ETCD_RETRY_MS: u64 = 1_000;
/// Creation orders taken from `invoker{N}` at once (`whisk.invoker.container-creation.max-peek`;
/// Ansible sets 500).
pub const DEFAULT_CREATION_MAX_PEEK: usize = 500;
/// How often the invoker's resource message is refreshed (`whisk.container-pool.memory-sync-interval`), ms.
pub const DEFAULT_MEMORY_SYNC_MS: u64 = 1_000;
/// Containers drained per step while disabled (`whisk.container-pool.batch-deletion-size`).
pub const DEFAULT_BATCH_DELETION_SIZE: usize = 10;

/// Which protocol the node speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeSetting {
    /// Decided by OpenWhisk's own settings (module docs).
    #[default]
    Auto,
    /// OpenWhisk 1.x's `InvokerReactive`: activations on `invoker{N}`, pings on `health`.
    Classic,
    /// OpenWhisk 2.x's `FPCInvokerReactive`: creation orders on `invoker{N}`, etcd, gRPC polls.
    Fpc,
}

/// The mode the node runs in, as decided by [`InvokerConfig::invoker_mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokerMode {
    /// The classic protocol.
    Classic,
    /// The scheduler's protocol.
    Fpc,
}

impl std::fmt::Display for InvokerMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Classic => "classic",
            Self::Fpc => "fpc",
        })
    }
}

/// `[scheduler]`: the mode and what FPC mode needs. Unused in classic mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// `auto`, `classic` or `fpc` (module docs). Default `auto`.
    pub mode: ModeSetting,
    /// The provider class OpenWhisk's settings name (`CONFIG_whisk_spi_InvokerProvider`), read by
    /// the `auto` rule. Default none.
    pub invoker_provider: Option<String>,
    /// etcd client endpoints, `host:port`, comma separated (`CONFIG_whisk_etcd_hosts`). Default
    /// empty.
    pub etcd_hosts: String,
    /// etcd user name (`CONFIG_whisk_etcd_username`); with `etcd_password`, both or neither.
    pub etcd_username: Option<String>,
    /// etcd password (`CONFIG_whisk_etcd_password`).
    pub etcd_password: Option<String>,
    /// The lease's time to live, seconds (`CONFIG_whisk_etcd_lease_timeout`). Default 10.
    pub lease_timeout_s: u64,
    /// Retry interval of etcd writes, ms
    /// (`CONFIG_whisk_scheduler_dataManagementService_retryInterval`). Default 1000.
    pub etcd_retry_ms: u64,
    /// The etcd key root (`CONFIG_whisk_cluster_name`). Default `whisk`.
    pub cluster_name: String,
    /// Creation orders held at once (`CONFIG_whisk_invoker_containerCreation_maxPeek`). Default 500.
    pub creation_max_peek: usize,
    /// Refresh interval of the resource message, ms (`CONFIG_whisk_containerPool_memorySyncInterval`).
    /// Default 1000.
    pub memory_sync_ms: u64,
    /// Containers drained per 5 s step after `/disable`
    /// (`CONFIG_whisk_containerPool_batchDeletionSize`). Default 10.
    pub batch_deletion_size: usize,
    /// Resource tags the scheduler matches against `invoker-resources` annotations
    /// (`CONFIG_whisk_invoker_resource_tags`, comma separated). Default none.
    pub tags: Vec<String>,
    /// Namespaces this invoker is dedicated to (`CONFIG_whisk_invoker_dedicated_namespaces`).
    /// Default none.
    pub dedicated_namespaces: Vec<String>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            mode: ModeSetting::Auto,
            invoker_provider: None,
            etcd_hosts: String::new(),
            etcd_username: None,
            etcd_password: None,
            lease_timeout_s: DEFAULT_LEASE_TIMEOUT_S,
            etcd_retry_ms: DEFAULT_ETCD_RETRY_MS,
            cluster_name: DEFAULT_CLUSTER_NAME.to_string(),
            creation_max_peek: DEFAULT_CREATION_MAX_PEEK,
            memory_sync_ms: DEFAULT_MEMORY_SYNC_MS,
            batch_deletion_size: DEFAULT_BATCH_DELETION_SIZE,
            tags: Vec::new(),
            dedicated_namespaces: Vec::new(),
        }
    }
}

impl SchedulerConfig {
    /// The etcd endpoints, trimmed, empty entries dropped.
    pub fn etcd_endpoints(&self) -> Vec<String> {
        split_list(&self.etcd_hosts)
    }

    /// The lease's time to live.
    pub fn lease_timeout(&self) -> Duration {
        Duration::from_secs(self.lease_timeout_s)
    }

    /// The etcd retry interval.
    pub fn etcd_retry(&self) -> Duration {
        Duration::from_millis(self.etcd_retry_ms)
    }

    /// The resource message's refresh interval.
    pub fn memory_sync(&self) -> Duration {
        Duration::from_millis(self.memory_sync_ms)
    }

    pub(super) fn validate(&self, mode: InvokerMode) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        if self.etcd_username.is_some() != self.etcd_password.is_some() {
            return invalid(
                "scheduler.etcd_username and scheduler.etcd_password go together (both or neither)"
                    .into(),
            );
        }
        if mode != InvokerMode::Fpc {
            return Ok(());
        }
        if self.etcd_endpoints().is_empty() {
            return invalid(
                "FPC mode needs etcd: set CONFIG_whisk_etcd_hosts (scheduler.etcd_hosts)".into(),
            );
        }
        if self.lease_timeout_s < 2 {
            return invalid(format!(
                "scheduler.lease_timeout_s is {}: the lease needs at least 2 s to be kept alive",
                self.lease_timeout_s
            ));
        }
        if self.cluster_name.is_empty() || self.cluster_name.contains('/') {
            return invalid(format!(
                "scheduler.cluster_name {:?} must be non-empty and hold no '/' (it is the etcd key root)",
                self.cluster_name
            ));
        }
        if self.creation_max_peek == 0 || self.etcd_retry_ms == 0 || self.memory_sync_ms == 0 {
            return invalid(
                "scheduler.creation_max_peek, etcd_retry_ms and memory_sync_ms must be above 0"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Splits OpenWhisk's comma-separated lists (`a,b`, ` 'a,b' ` as Ansible quotes them).
pub(super) fn split_list(text: &str) -> Vec<String> {
    let text = text.trim();
    let text = text
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or(text);
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_string)
        .collect()
}

impl InvokerConfig {
    /// The protocol this node speaks (module docs: the mode rule).
    pub fn invoker_mode(&self) -> InvokerMode {
        match self.scheduler.mode {
            ModeSetting::Classic => InvokerMode::Classic,
            ModeSetting::Fpc => InvokerMode::Fpc,
            ModeSetting::Auto => match self.scheduler.invoker_provider.as_deref().map(str::trim) {
                Some(class) if !class.is_empty() => {
                    if class.ends_with("FPCInvokerReactive") {
                        InvokerMode::Fpc
                    } else {
                        InvokerMode::Classic
                    }
                }
                _ if !self.scheduler.etcd_endpoints().is_empty() => InvokerMode::Fpc,
                _ => InvokerMode::Classic,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn mode_of(pairs: &[(&str, &str)]) -> InvokerMode {
        let mut config = InvokerConfig::default();
        config.apply_env(&env(pairs)).expect("env applies");
        config.invoker_mode()
    }

    #[test]
    fn test_mode_rule() {
        assert_eq!(mode_of(&[]), InvokerMode::Classic);
        assert_eq!(
            mode_of(&[("CONFIG_whisk_etcd_hosts", "10.0.0.5:2379")]),
            InvokerMode::Fpc
        );
        assert_eq!(
            mode_of(&[
                ("CONFIG_whisk_etcd_hosts", "10.0.0.5:2379"),
                (
                    "CONFIG_whisk_spi_InvokerProvider",
                    "org.apache.openwhisk.core.invoker.InvokerReactive"
                ),
            ]),
            InvokerMode::Classic
        );
        assert_eq!(
            mode_of(&[(
                "CONFIG_whisk_spi_InvokerProvider",
                "org.apache.openwhisk.core.invoker.FPCInvokerReactive"
            )]),
            InvokerMode::Fpc
        );
        let mut forced = InvokerConfig::default();
        forced.scheduler.etcd_hosts = "127.0.0.1:2379".into();
        forced.scheduler.mode = ModeSetting::Classic;
        assert_eq!(forced.invoker_mode(), InvokerMode::Classic);
    }

    #[test]
    fn test_ansible_values_are_read() {
        let mut config = InvokerConfig::default();
        config
            .apply_env(&env(&[
                ("CONFIG_whisk_etcd_hosts", "10.0.0.5:2379,10.0.0.6:2380"),
                ("CONFIG_whisk_etcd_lease_timeout", "10"),
                ("CONFIG_whisk_etcd_pool_threads", "10"),
                (
                    "CONFIG_whisk_scheduler_dataManagementService_retryInterval",
                    "1 second",
                ),
                ("CONFIG_whisk_invoker_containerCreation_maxPeek", "500"),
                ("CONFIG_whisk_cluster_name", "whisk"),
                ("CONFIG_whisk_invoker_resource_tags", " 'a,b' "),
                ("CONFIG_whisk_invoker_dedicated_namespaces", ""),
                ("CONFIG_whisk_containerPool_memorySyncInterval", "2 seconds"),
                ("CONFIG_whisk_containerPool_batchDeletionSize", "3"),
            ]))
            .expect("env applies");
        let scheduler = &config.scheduler;
        assert_eq!(
            scheduler.etcd_endpoints(),
            ["10.0.0.5:2379", "10.0.0.6:2380"]
        );
        assert_eq!(scheduler.lease_timeout_s, 10);
        assert_eq!(scheduler.etcd_retry_ms, 1_000);
        assert_eq!(scheduler.creation_max_peek, 500);
        assert_eq!(scheduler.tags, ["a", "b"]);
        assert!(scheduler.dedicated_namespaces.is_empty());
        assert_eq!(scheduler.memory_sync_ms, 2_000);
        assert_eq!(scheduler.batch_deletion_size, 3);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn test_fpc_without_etcd_or_with_half_credentials_is_refused() {
        let mut config = InvokerConfig::default();
        config.scheduler.mode = ModeSetting::Fpc;
        let error = config.validate().expect_err("no etcd");
        assert!(
            error.to_string().contains("CONFIG_whisk_etcd_hosts"),
            "{error}"
        );
        config.scheduler.etcd_hosts = "127.0.0.1:2379".into();
        config.scheduler.etcd_username = Some("root".into());
        assert!(config.validate().is_err());
        config.scheduler.etcd_password = Some("pw".into());
        assert!(config.validate().is_ok());
        let mut bad = InvokerConfig::default();
        let error = bad
            .apply_env(&env(&[("CONFIG_whisk_etcd_lease_timeout", "soon")]))
            .expect_err("not a number");
        assert!(
            error
                .to_string()
                .contains("CONFIG_whisk_etcd_lease_timeout")
        );
    }

    #[test]
    fn test_toml_section() {
        let config = InvokerConfig::from_toml_str(
            "[scheduler]\nmode = \"fpc\"\netcd_hosts = \"127.0.0.1:2379\"\ncluster_name = \"test\"\n",
        )
        .expect("toml parses");
        assert_eq!(config.invoker_mode(), InvokerMode::Fpc);
        assert_eq!(config.scheduler.cluster_name, "test");
        assert!(InvokerConfig::from_toml_str("[scheduler]\nmode = \"fast\"\n").is_err());
    }
}
