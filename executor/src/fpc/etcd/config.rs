//! How to reach etcd and the timers of the lease and of the writes.

use std::time::Duration;

/// Upstream's keep-alive period: one `LeaseKeepAlive` every 500 ms from the grant.
pub const KEEP_ALIVE_PERIOD: Duration = Duration::from_millis(500);

/// The etcd settings of an FPC invoker (`whisk.etcd.*` and the data-management retry interval).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `whisk.etcd.hosts`: `host:port` client endpoints (plaintext gRPC).
    pub endpoints: Vec<String>,
    /// `whisk.etcd.username` and `whisk.etcd.password`, which upstream requires together.
    pub credentials: Option<(String, String)>,
    /// `whisk.etcd.lease.timeout`: the lease TTL. Upstream has no default in its conf files;
    /// the default here is Ansible's 10 s. etcd counts whole seconds (rounded up here, at least 1).
    pub lease_ttl: Duration,
    /// `whisk.scheduler.data-management-service.retry-interval` (default 1 s): how long a failed
    /// write or lease grant waits before it is tried again.
    pub retry_interval: Duration,
}

impl Default for EtcdConfig {
    /// `127.0.0.1:2379`, no credentials, TTL 10 s (Ansible), retry every 1 s.
    fn default() -> Self {
        Self {
            endpoints: vec!["127.0.0.1:2379".to_owned()],
            credentials: None,
            lease_ttl: Duration::from_secs(10),
            retry_interval: Duration::from_secs(1),
        }
    }
}

impl EtcdConfig {
    /// The TTL in the whole seconds etcd grants: rounded up, at least 1.
    pub fn ttl_seconds(&self) -> i64 {
        let millis = self.lease_ttl.as_millis().max(1);
        i64::try_from(millis.div_ceil(1000)).unwrap_or(i64::MAX)
    }

    /// How often the lease is kept alive: upstream's 500 ms, or a third of the TTL if that is
    /// shorter, so that two lost keep-alives never expire the lease.
    pub fn keep_alive_period(&self) -> Duration {
        KEEP_ALIVE_PERIOD.min(self.lease_ttl / 3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_ansibles() {
        let config = EtcdConfig::default();
        assert_eq!(config.ttl_seconds(), 10);
        assert_eq!(config.retry_interval, Duration::from_secs(1));
        assert_eq!(config.keep_alive_period(), Duration::from_millis(500));
    }

    #[test]
    fn short_ttls_round_up_and_keep_alive_faster() {
        let config = EtcdConfig {
            lease_ttl: Duration::from_millis(1200),
            ..EtcdConfig::default()
        };
        assert_eq!(config.ttl_seconds(), 2);
        assert_eq!(config.keep_alive_period(), Duration::from_millis(400));
        let zero = EtcdConfig {
            lease_ttl: Duration::ZERO,
            ..EtcdConfig::default()
        };
        assert_eq!(zero.ttl_seconds(), 1);
    }
}
