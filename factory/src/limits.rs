//! An action's resource limits, in OpenWhisk's units and with OpenWhisk's system defaults.
//!
//! This is the one `Limits` type of the workspace: the executor reads it straight out of action
//! documents (the field names are OpenWhisk's `limits` object) and both factories enforce it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default action timeout, OpenWhisk's `whisk.time-limit.std` (1 minute).
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;
/// Smallest timeout OpenWhisk accepts (`whisk.time-limit.min`).
pub const MIN_TIMEOUT_MS: u64 = 100;
/// Largest timeout OpenWhisk accepts (`whisk.time-limit.max`, 5 minutes).
pub const MAX_TIMEOUT_MS: u64 = 300_000;
/// Default action memory, OpenWhisk's `whisk.memory.std` (256 MB).
pub const DEFAULT_MEMORY_MB: u32 = 256;
/// Smallest memory OpenWhisk accepts (`whisk.memory.min`).
pub const MIN_MEMORY_MB: u32 = 128;
/// Largest memory OpenWhisk accepts (`whisk.memory.max`).
pub const MAX_MEMORY_MB: u32 = 512;
/// Default log limit, OpenWhisk's `whisk.log-limit.std` (10 MB).
pub const DEFAULT_LOGS_MB: u32 = 10;
/// Largest log limit OpenWhisk accepts (`whisk.log-limit.max`).
pub const MAX_LOGS_MB: u32 = 10;
/// Default intra-container concurrency (`whisk.concurrency-limit.std`).
pub const DEFAULT_CONCURRENCY: u32 = 1;
/// Default cap on a result, OpenWhisk's `whisk.activation.payload.max` (1 MiB).
pub const DEFAULT_MAX_RESULT_BYTES: usize = 1024 * 1024;
/// Number of bytes in OpenWhisk's "MB" (it means MiB everywhere).
pub const BYTES_PER_MB: u64 = 1024 * 1024;

/// An action's limits as stored in its document (`{"timeout":60000,"memory":256,"logs":10,"concurrency":1}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock limit of one activation (and of an init), in milliseconds. Default 60000.
    pub timeout: u64,
    /// Memory of the action, in MB (MiB). Default 256.
    pub memory: u32,
    /// Bytes of logs kept per activation, in MB (MiB); 0 keeps none. Default 10.
    #[serde(default = "default_logs")]
    pub logs: u32,
    /// Activations one container may run at once. Default 1.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
}

fn default_logs() -> u32 {
    DEFAULT_LOGS_MB
}

fn default_concurrency() -> u32 {
    DEFAULT_CONCURRENCY
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT_MS,
            memory: DEFAULT_MEMORY_MB,
            logs: DEFAULT_LOGS_MB,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

impl Limits {
    /// The timeout as a `Duration`.
    pub fn timeout_duration(&self) -> Duration {
        Duration::from_millis(self.timeout)
    }

    /// The memory limit in bytes.
    pub fn memory_bytes(&self) -> u64 {
        u64::from(self.memory) * BYTES_PER_MB
    }

    /// The log limit in bytes.
    pub fn log_bytes(&self) -> u64 {
        u64::from(self.logs) * BYTES_PER_MB
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_limits_read_openwhisk_json_with_defaults() {
        let limits: Limits = serde_json::from_str(r#"{"timeout":30000,"memory":128}"#).unwrap();
        assert_eq!(limits.timeout, 30_000);
        assert_eq!(limits.memory, 128);
        assert_eq!(limits.logs, DEFAULT_LOGS_MB);
        assert_eq!(limits.concurrency, 1);
        assert_eq!(limits.memory_bytes(), 128 * 1024 * 1024);
    }

    #[test]
    fn test_limits_write_openwhisk_json() {
        let json = serde_json::to_value(Limits::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"timeout":60000,"memory":256,"logs":10,"concurrency":1})
        );
    }
}
