//! The system's ranges of action limits and the check OpenWhisk's invoker makes before running an
//! action (`ActionLimits.checkLimits`): a namespace's own limits (from its subject document, carried
//! in the activation message) override the system range, and a violation becomes an application
//! error whose message is OpenWhisk's own text (`duration 300001 milliseconds exceeds allowed
//! threshold of 300000 milliseconds`).

use factory::Limits;
use serde::{Deserialize, Serialize};

use crate::message::UserLimits;

/// The system's allowed ranges of action limits (`whisk.time-limit`, `whisk.memory`,
/// `whisk.log-limit`, `whisk.concurrency-limit`), which a namespace's own limits override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitRanges {
    /// Smallest timeout, ms. Default 100.
    pub min_timeout_ms: u64,
    /// Largest timeout, ms. Default 300000.
    pub max_timeout_ms: u64,
    /// Smallest memory, MB. Default 128.
    pub min_memory_mb: u64,
    /// Largest memory, MB. Default 512.
    pub max_memory_mb: u64,
    /// Smallest log limit, MB. Default 0.
    pub min_logs_mb: u64,
    /// Largest log limit, MB. Default 10.
    pub max_logs_mb: u64,
    /// Smallest concurrency. Default 1.
    pub min_concurrency: u64,
    /// Largest concurrency. Default 1.
    pub max_concurrency: u64,
}

impl Default for LimitRanges {
    fn default() -> Self {
        Self {
            min_timeout_ms: factory::limits::MIN_TIMEOUT_MS,
            max_timeout_ms: factory::limits::MAX_TIMEOUT_MS,
            min_memory_mb: u64::from(factory::limits::MIN_MEMORY_MB),
            max_memory_mb: u64::from(factory::limits::MAX_MEMORY_MB),
            min_logs_mb: 0,
            max_logs_mb: u64::from(factory::limits::MAX_LOGS_MB),
            min_concurrency: 1,
            max_concurrency: 1,
        }
    }
}

impl LimitRanges {
    /// Checks `limits` against the namespace's limits, each falling back to the system range
    /// (`ActionLimits.checkLimits`). The error is the message recorded as an application error.
    pub fn check(&self, limits: &Limits, user: &UserLimits) -> Result<(), String> {
        fn within(what: &str, value: u64, min: u64, max: u64, unit: &str) -> Result<(), String> {
            if value < min {
                Err(format!(
                    "{what} {value}{unit} below allowed threshold of {min}{unit}"
                ))
            } else if value > max {
                Err(format!(
                    "{what} {value}{unit} exceeds allowed threshold of {max}{unit}"
                ))
            } else {
                Ok(())
            }
        }
        within(
            "duration",
            limits.timeout,
            user.min_action_timeout.unwrap_or(self.min_timeout_ms),
            user.max_action_timeout.unwrap_or(self.max_timeout_ms),
            " milliseconds",
        )?;
        within(
            "memory",
            u64::from(limits.memory),
            user.min_action_memory.unwrap_or(self.min_memory_mb),
            user.max_action_memory.unwrap_or(self.max_memory_mb),
            " MB",
        )?;
        within(
            "logs",
            u64::from(limits.logs),
            user.min_action_logs.unwrap_or(self.min_logs_mb),
            user.max_action_logs.unwrap_or(self.max_logs_mb),
            " MB",
        )?;
        within(
            "concurrency",
            u64::from(limits.concurrency),
            user.min_action_concurrency.unwrap_or(self.min_concurrency),
            user.max_action_concurrency.unwrap_or(self.max_concurrency),
            "",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_limit_ranges_obeyed_and_violated() {
        let ranges = LimitRanges::default();
        let none = UserLimits::default();
        assert!(ranges.check(&Limits::default(), &none).is_ok());
        let too_long = Limits {
            timeout: 300_001,
            ..Limits::default()
        };
        assert_eq!(
            ranges.check(&too_long, &none).unwrap_err(),
            "duration 300001 milliseconds exceeds allowed threshold of 300000 milliseconds"
        );
        let big = Limits {
            memory: 1024,
            ..Limits::default()
        };
        assert_eq!(
            ranges.check(&big, &none).unwrap_err(),
            "memory 1024 MB exceeds allowed threshold of 512 MB"
        );
        let namespace = UserLimits {
            max_action_memory: Some(2048),
            min_action_timeout: Some(1000),
            ..UserLimits::default()
        };
        assert!(ranges.check(&big, &namespace).is_ok());
        let short = Limits {
            timeout: 500,
            ..Limits::default()
        };
        assert_eq!(
            ranges.check(&short, &namespace).unwrap_err(),
            "duration 500 milliseconds below allowed threshold of 1000 milliseconds"
        );
        let concurrent = Limits {
            concurrency: 2,
            ..Limits::default()
        };
        assert_eq!(
            ranges.check(&concurrent, &none).unwrap_err(),
            "concurrency 2 exceeds allowed threshold of 1"
        );
    }
}
