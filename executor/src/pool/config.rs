//! What a pool is built from: its parameters ([`PoolConfig`], [`HealthCheckConfig`]) with OpenWhisk's
//! defaults, and the factories it drives with how each one's memory is counted ([`PoolFactory`],
//! [`Accounting`]).
//!
//! The operator's settings live in [`crate::config`]; the defaults shared with it (user memory, the
//! prewarm expiration limit) are read from there, so each is defined once.

use std::sync::Arc;
use std::time::Duration;

use factory::Factory;

/// OpenWhisk's pause grace: an idle container is paused after 10 s without work.
pub const DEFAULT_PAUSE_GRACE: Duration = Duration::from_secs(10);
/// OpenWhisk's idle-container timeout: a paused container is removed after 10 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// How often the pool looks at its timers.
pub const DEFAULT_HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);
/// OpenWhisk's `prewarm-expiration-check-interval` (10 minutes).
pub const DEFAULT_PREWARM_CHECK_INTERVAL: Duration = Duration::from_secs(600);
/// OpenWhisk's `prewarm-expiration-limit`: most expired prewarms removed by one check.
pub const DEFAULT_PREWARM_EXPIRATION_LIMIT: usize = 100;
/// OpenWhisk's smallest action memory (`whisk.memory.min`), the divisor of `maxPeek`.
pub const MIN_ACTION_MEMORY_MB: u64 = 128;

/// Container TCP health checks of idle and prewarmed containers
/// (`whisk.container-proxy.action-health-check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// Time between two checks of one container. Default 3 s.
    pub period: Duration,
    /// Failed checks in a row after which the container is replaced. Default 3.
    pub max_fails: u32,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            period: Duration::from_secs(3),
            max_fails: 3,
        }
    }
}

/// The pool's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Memory shared by all containers and activations, in MB. Default
    /// [`crate::config::DEFAULT_USER_MEMORY`] (2048 MB, OpenWhisk's deployed
    /// `invoker_user_memory`).
    pub user_memory_mb: u64,
    /// Idle time before a pausable container is paused. Default 10 s.
    pub pause_grace: Duration,
    /// Time a paused (or, if it cannot pause, idle) container is kept before removal. Default 10 min.
    pub idle_timeout: Duration,
    /// How often the timers are looked at. Default 1 s.
    pub housekeeping_interval: Duration,
    /// Time between two expiry checks of reactive prewarms. Default 10 min.
    pub prewarm_check_interval: Duration,
    /// Health checks of idle containers; `None` turns them off. Default on, 3 s, 3 failures.
    pub health_check: Option<HealthCheckConfig>,
    /// Most expired reactive prewarms removed by one expiry check (OpenWhisk's
    /// `prewarm-expiration-limit`), so that a mass expiry is spread over several checks instead of
    /// destroying a whole fleet at once. Default [`DEFAULT_PREWARM_EXPIRATION_LIMIT`] (100).
    pub prewarm_expiration_limit: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            user_memory_mb: crate::config::DEFAULT_USER_MEMORY.as_mb(),
            pause_grace: DEFAULT_PAUSE_GRACE,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            housekeeping_interval: DEFAULT_HOUSEKEEPING_INTERVAL,
            prewarm_check_interval: DEFAULT_PREWARM_CHECK_INTERVAL,
            health_check: Some(HealthCheckConfig::default()),
            prewarm_expiration_limit: DEFAULT_PREWARM_EXPIRATION_LIMIT,
        }
    }
}

/// How a factory's use of memory is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accounting {
    /// Each running activation holds its action's memory; idle containers hold none (wasm).
    PerActivation,
    /// Each container holds its action's memory for its whole life (Docker).
    PerContainer,
}

/// A factory and how the pool counts its memory.
#[derive(Clone)]
pub struct PoolFactory {
    /// The factory.
    pub factory: Arc<dyn Factory>,
    /// How its memory is counted.
    pub accounting: Accounting,
}

impl PoolFactory {
    /// An in-process factory (wasm): memory per running activation.
    pub fn in_process(factory: Arc<dyn Factory>) -> Self {
        Self {
            factory,
            accounting: Accounting::PerActivation,
        }
    }

    /// A factory of real containers (Docker): memory per container.
    pub fn containers(factory: Arc<dyn Factory>) -> Self {
        Self {
            factory,
            accounting: Accounting::PerContainer,
        }
    }
}

impl std::fmt::Debug for PoolFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolFactory")
            .field("factory", &self.factory.name())
            .field("accounting", &self.accounting)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_defaults_are_openwhisks() {
        let config = PoolConfig::default();
        assert_eq!(
            config.user_memory_mb,
            crate::config::DEFAULT_USER_MEMORY.as_mb()
        );
        assert_eq!(config.pause_grace, Duration::from_secs(10));
        assert_eq!(config.idle_timeout, Duration::from_secs(600));
        assert_eq!(config.prewarm_check_interval, Duration::from_secs(600));
        assert_eq!(config.prewarm_expiration_limit, 100);
        assert_eq!(
            config.health_check,
            Some(HealthCheckConfig {
                period: Duration::from_secs(3),
                max_fails: 3,
            })
        );
    }
}
