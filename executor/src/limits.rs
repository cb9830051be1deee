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

/// One action limit, as OpenWhisk's threshold messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// `timeout`, in milliseconds (the message says `duration`).
    Timeout,
    /// `memory`, in MB.
    Memory,
    /// `logs`, in MB (the message says `log`, OpenWhisk's `LogLimit.logLimitFieldName`).
    Logs,
    /// `concurrency`, activations per container.
    Concurrency,
}

impl LimitRanges {
    /// Checks `limits` against the namespace's limits, each falling back to the system range
    /// (`ActionLimits.checkLimits`). The error is the message recorded as an application error.
    pub fn check(&self, limits: &Limits, user: &UserLimits) -> Result<(), String> {
        let (min, max) = self.range(LimitKind::Timeout);
        Self::within(
            LimitKind::Timeout,
            i64::try_from(limits.timeout).unwrap_or(i64::MAX),
            user.min_action_timeout.unwrap_or(min),
            user.max_action_timeout.unwrap_or(max),
        )?;
        let (min, max) = self.range(LimitKind::Memory);
        Self::within(
            LimitKind::Memory,
            i64::from(limits.memory),
            user.min_action_memory.unwrap_or(min),
            user.max_action_memory.unwrap_or(max),
        )?;
        let (min, max) = self.range(LimitKind::Logs);
        Self::within(
            LimitKind::Logs,
            i64::from(limits.logs),
            user.min_action_logs.unwrap_or(min),
            user.max_action_logs.unwrap_or(max),
        )?;
        let (min, max) = self.range(LimitKind::Concurrency);
        Self::within(
            LimitKind::Concurrency,
            i64::from(limits.concurrency),
            user.min_action_concurrency.unwrap_or(min),
            user.max_action_concurrency.unwrap_or(max),
        )
    }

    /// The system range `(min, max)` of one limit.
    pub fn range(&self, kind: LimitKind) -> (u64, u64) {
        match kind {
            LimitKind::Timeout => (self.min_timeout_ms, self.max_timeout_ms),
            LimitKind::Memory => (self.min_memory_mb, self.max_memory_mb),
            LimitKind::Logs => (self.min_logs_mb, self.max_logs_mb),
            LimitKind::Concurrency => (self.min_concurrency, self.max_concurrency),
        }
    }

    /// Checks one limit's `value` against `min..=max` with OpenWhisk's message
    /// (`Messages.sizeBelowAllowedThreshold` and friends): the one source of these texts, for the
    /// invoker's records and the standalone server's PUT alike. Signed, because a PUT may ask for
    /// a negative value and is answered with the same message.
    pub fn within(kind: LimitKind, value: i64, min: u64, max: u64) -> Result<(), String> {
        let (what, unit) = match kind {
            LimitKind::Timeout => ("duration", " milliseconds"),
            LimitKind::Memory => ("memory", " MB"),
            LimitKind::Logs => ("log", " MB"),
            LimitKind::Concurrency => ("concurrency", ""),
        };
        let wide = i128::from(value);
        if wide < i128::from(min) {
            Err(format!(
                "{what} {value}{unit} below allowed threshold of {min}{unit}"
            ))
        } else if wide > i128::from(max) {
            Err(format!(
                "{what} {value}{unit} exceeds allowed threshold of {max}{unit}"
            ))
        } else {
            Ok(())
        }
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
        let chatty = Limits {
            logs: 11,
            ..Limits::default()
        };
        assert_eq!(
            ranges.check(&chatty, &none).unwrap_err(),
            "log 11 MB exceeds allowed threshold of 10 MB"
        );
    }
}
