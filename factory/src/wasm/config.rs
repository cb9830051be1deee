//! The operator's configuration of the wasm factory: [`WasmConfig`], with every default in one
//! place ([`WasmConfig::default`]).
//!
//! The executor embeds it in its TOML file (`#[serde(default, deny_unknown_fields)]`: a missing field
//! takes its default, a misspelt one is an error). [`WasmConfig::validate`] checks the values;
//! [`WasmFactory::new`](super::WasmFactory::new) calls it.
//!
//! ```toml
//! # Every field is optional; these are the defaults unless noted.
//! kinds = ["wasm:wasip1"]
//! pool_instances = 256
//! max_memory_mb = 512
//! cache_max_bytes = 536870912
//! disk_cache_dir = "/var/cache/wasm-invoker"   # default: none
//! fuel = { per_millisecond_of_timeout = 1000000 } # default: "off"
//! api_host = "https://openwhisk.example:443"     # default: none
//! max_result_bytes = 1048576
//! epoch_tick_ms = 1
//! keep_resident_bytes = 1048576
//!
//! [scratch]
//! enabled = true                                 # default: false
//! max_bytes = 67108864
//! max_entries = 4096
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::limits::{DEFAULT_MAX_RESULT_BYTES, MAX_MEMORY_MB};

use super::error::WasmError;

/// The kind every deployment runs as wasm.
pub const WASM_WASIP1_KIND: &str = "wasm:wasip1";

/// Default number of instance slots in the pool: how many activations run at once.
///
/// 256 keeps two cores saturated with a deep queue of short activations while the address space
/// the pool reserves stays ~1 TiB (each slot reserves ~4 GiB of virtual memory so that bounds
/// checks can be elided), well inside x86-64's 128 TiB.
pub const DEFAULT_POOL_INSTANCES: u32 = 256;

/// Default bound on the compiled code kept in memory: 512 MiB, room for a few thousand typical
/// (100-300 KiB) Rust actions.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// Default epoch tick: 1 ms. A timeout is enforced to within one tick, and a CPU-bound guest gives
/// its tokio worker back every tick, so the tick bounds how long other activations and the
/// invoker's own tasks wait for a worker. A tick costs the ticker thread one wake-up and atomic
/// increment (1,000 a second: well under 1 % of a core), and wasm one compare per loop back-edge.
pub const DEFAULT_EPOCH_TICK_MS: u64 = 1;

/// Default bytes of each pool slot's memory and table kept resident between instances: 1 MiB, about
/// what a small Rust action dirties (its stack top, data and first heap pages).
pub const DEFAULT_KEEP_RESIDENT_BYTES: u64 = 1024 * 1024;

/// Default cap on a scratch `/tmp`: 64 MiB.
pub const DEFAULT_SCRATCH_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Default cap on the number of files and directories in a scratch `/tmp`.
pub const DEFAULT_SCRATCH_MAX_ENTRIES: u64 = 4096;

/// Smallest epoch tick accepted: a faster ticker would burn a core waking up.
const MIN_EPOCH_TICK_MS: u64 = 1;
/// Largest epoch tick accepted: a slower one makes OpenWhisk's 100 ms minimum timeout meaningless.
const MAX_EPOCH_TICK_MS: u64 = 1000;

/// The CPU budget of an activation, in wasmtime fuel units (most instructions cost one unit).
///
/// Fuel changes the compiled code (every block counts fuel), so the engine is built with fuel
/// metering on exactly when this is not [`FuelMode::Off`]; compiled modules on disk are keyed by the
/// engine configuration and never mix.
///
/// In TOML: `fuel = "off"`, `fuel = { fixed = 100000000 }` or
/// `fuel = { per_millisecond_of_timeout = 1000000 }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FuelMode {
    /// No budget: only the timeout bounds an activation. No metering cost.
    #[default]
    Off,
    /// The same budget for every activation.
    Fixed(u64),
    /// A budget of this many units per millisecond of the action's `timeout` limit, so that a longer
    /// timeout buys proportionally more CPU.
    PerMillisecondOfTimeout(u64),
}

impl FuelMode {
    /// Whether fuel is metered at all.
    pub fn is_on(self) -> bool {
        !matches!(self, FuelMode::Off)
    }

    /// The budget of one activation whose timeout is `timeout_ms`, or `None` when fuel is off.
    pub fn budget(self, timeout_ms: u64) -> Option<u64> {
        match self {
            FuelMode::Off => None,
            FuelMode::Fixed(fuel) => Some(fuel),
            FuelMode::PerMillisecondOfTimeout(per_ms) => Some(per_ms.saturating_mul(timeout_ms)),
        }
    }
}

/// A fresh, empty directory mounted read-write at `/tmp` for each activation, deleted when it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScratchConfig {
    /// Whether activations get a scratch `/tmp`. Default `false`: no filesystem at all.
    pub enabled: bool,
    /// Where the scratch directories are created (one `tempfile` directory per activation). Default
    /// `None`: the host's temporary directory (`$TMPDIR` or `/tmp`).
    pub parent_dir: Option<PathBuf>,
    /// Most bytes of disk (allocated blocks, so sparse files count what they really use) one
    /// activation may hold in its scratch directory. Default 64 MiB.
    ///
    /// Enforced by measuring the directory every 10 ms while the action runs and once more at the
    /// end: an action that goes over is stopped with a developer error. Between two measurements an
    /// action can overshoot by what it writes in 10 ms plus one tick, and a single host call (one
    /// `fd_write` of up to 16 MiB) is measured after it returns: put scratch directories on a
    /// filesystem with room for `pool_instances` × (cap + action memory), or on a size-limited
    /// mount.
    pub max_bytes: u64,
    /// Most files and directories one activation may create in its scratch directory (inode
    /// exhaustion, and the cost of measuring the directory). Default 4096.
    pub max_entries: u64,
}

impl Default for ScratchConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            parent_dir: None,
            max_bytes: DEFAULT_SCRATCH_MAX_BYTES,
            max_entries: DEFAULT_SCRATCH_MAX_ENTRIES,
        }
    }
}

/// The wasm factory's configuration. Every field has a default (see [`WasmConfig::default`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WasmConfig {
    /// The kinds this factory runs; all follow the wasm action contract. Default `["wasm:wasip1"]`.
    pub kinds: Vec<String>,
    /// Instance slots of the pooling allocator: the most activations running at once. More wait
    /// for a slot (they never fail for lack of one). Default 256; at least 1. Each slot reserves
    /// ~4 GiB of virtual address space (not memory) plus one table and one instance record. The
    /// pool has [`MAX_DEFERRED_RESETS`](super::idle_reset::MAX_DEFERRED_RESETS) slots more, for
    /// finished instances waiting for their worker's idle moment to be reset.
    pub pool_instances: u32,
    /// Largest linear memory any instance may have, in MB (MiB): the size of each pool memory slot.
    /// An action's `memory` limit above this is cut to it. Default 512 (OpenWhisk's
    /// `whisk.memory.max`); between 1 and 4096.
    pub max_memory_mb: u32,
    /// Bound on the compiled code kept in memory, in bytes; least recently used modules are
    /// dropped beyond it (containers already using a module keep it). Default 512 MiB.
    pub cache_max_bytes: u64,
    /// Directory for compiled modules kept between restarts. Default `None`: no disk cache.
    ///
    /// Created with mode 0700 when missing. It holds a per-cache secret key (`cache.key`, 0600) and
    /// one file per module, each authenticated with that key: files the cache did not write are
    /// never loaded (see [`cache`](super::cache)).
    pub disk_cache_dir: Option<PathBuf>,
    /// CPU budget per activation. Default [`FuelMode::Off`].
    pub fuel: FuelMode,
    /// Per-activation scratch `/tmp`. Default off.
    pub scratch: ScratchConfig,
    /// `__OW_API_HOST` given to every activation. Default `None`: the variable is not set.
    pub api_host: Option<String>,
    /// Largest result, in bytes of its JSON line; a longer one is an application error with
    /// OpenWhisk's truncation message. Default 1 MiB (`whisk.activation.payload.max`).
    pub max_result_bytes: usize,
    /// Interval of the epoch ticker, in milliseconds. Default 1; between 1 and 1000. A timeout
    /// fires between `timeout` and `timeout` + one tick, and a running guest yields its tokio
    /// worker to other tasks once per tick. While no activation runs the ticker ticks 10 times
    /// slower (and parks after a second), so a guest that starts on such a quiet engine runs its
    /// first slice for up to 10 ticks.
    pub epoch_tick_ms: u64,
    /// Bytes of each pool slot's linear memory, and of its table, that are reset in place (to the
    /// module's initial image or zeros, only the pages actually dirtied when the kernel offers
    /// `PAGEMAP_SCAN`) instead of being released with `madvise` when an instance ends. Default
    /// 1 MiB; 0 releases everything.
    ///
    /// Either way the next instance sees exactly the initial contents. Keeping pages resident
    /// saves the next instance its page faults and the process a TLB shootdown across cores per
    /// `madvise`, at the cost of up to this many bytes of resident memory per warm slot
    /// (`pool_instances` × 2 × this, at most).
    pub keep_resident_bytes: u64,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            kinds: vec![WASM_WASIP1_KIND.to_string()],
            pool_instances: DEFAULT_POOL_INSTANCES,
            max_memory_mb: MAX_MEMORY_MB,
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            disk_cache_dir: None,
            fuel: FuelMode::Off,
            scratch: ScratchConfig::default(),
            api_host: None,
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
            epoch_tick_ms: DEFAULT_EPOCH_TICK_MS,
            keep_resident_bytes: DEFAULT_KEEP_RESIDENT_BYTES,
        }
    }
}

/// Largest `max_memory_mb`: a 32-bit wasm memory cannot exceed 4 GiB.
const MAX_MAX_MEMORY_MB: u32 = 4096;

impl WasmConfig {
    /// Checks every value; the first bad one is reported.
    pub fn validate(&self) -> Result<(), WasmError> {
        let invalid =
            |field: &'static str, reason: String| Err(WasmError::Config { field, reason });
        if self.kinds.is_empty() {
            return invalid("kinds", "at least one kind is needed".into());
        }
        if self.pool_instances == 0 {
            return invalid("pool_instances", "must be at least 1".into());
        }
        if self.max_memory_mb == 0 || self.max_memory_mb > MAX_MAX_MEMORY_MB {
            return invalid(
                "max_memory_mb",
                format!(
                    "must be between 1 and {MAX_MAX_MEMORY_MB}, not {}",
                    self.max_memory_mb
                ),
            );
        }
        if !(MIN_EPOCH_TICK_MS..=MAX_EPOCH_TICK_MS).contains(&self.epoch_tick_ms) {
            return invalid(
                "epoch_tick_ms",
                format!(
                    "must be between {MIN_EPOCH_TICK_MS} and {MAX_EPOCH_TICK_MS}, not {}",
                    self.epoch_tick_ms
                ),
            );
        }
        if self.max_result_bytes == 0 {
            return invalid("max_result_bytes", "must be at least 1".into());
        }
        Ok(())
    }

    /// The epoch tick as a `Duration`.
    pub fn epoch_tick(&self) -> Duration {
        Duration::from_millis(self.epoch_tick_ms)
    }

    /// The pool's memory slot size in bytes.
    pub fn max_memory_bytes(&self) -> u64 {
        u64::from(self.max_memory_mb) * crate::limits::BYTES_PER_MB
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_defaults_are_valid_and_safe() {
        let config = WasmConfig::default();
        config.validate().unwrap();
        assert_eq!(config.kinds, vec!["wasm:wasip1".to_string()]);
        assert_eq!(config.fuel, FuelMode::Off);
        assert!(!config.scratch.enabled);
        assert_eq!(config.disk_cache_dir, None);
        assert_eq!(config.api_host, None);
        assert_eq!(config.max_result_bytes, 1024 * 1024);
    }

    #[test]
    fn test_fuel_budget_per_millisecond_scales_with_timeout() {
        assert_eq!(FuelMode::Off.budget(1000), None);
        assert_eq!(FuelMode::Fixed(7).budget(1000), Some(7));
        assert_eq!(
            FuelMode::PerMillisecondOfTimeout(3).budget(1000),
            Some(3000)
        );
        assert_eq!(
            FuelMode::PerMillisecondOfTimeout(u64::MAX).budget(2),
            Some(u64::MAX)
        );
    }

    #[test]
    fn test_config_reads_from_json_with_defaults_and_rejects_unknown_fields() {
        let config: WasmConfig = serde_json::from_str(
            r#"{"pool_instances": 8, "fuel": {"fixed": 5}, "scratch": {"enabled": true}}"#,
        )
        .unwrap();
        assert_eq!(config.pool_instances, 8);
        assert_eq!(config.fuel, FuelMode::Fixed(5));
        assert!(config.scratch.enabled);
        assert_eq!(config.scratch.max_bytes, DEFAULT_SCRATCH_MAX_BYTES);
        let off: WasmConfig = serde_json::from_str(r#"{"fuel": "off"}"#).unwrap();
        assert_eq!(off.fuel, FuelMode::Off);
        assert!(serde_json::from_str::<WasmConfig>(r#"{"pool_size": 8}"#).is_err());
    }

    #[test]
    fn test_the_documented_toml_example_parses() {
        let docs = include_str!("config.rs");
        let start = docs.find("//! ```toml").expect("the example") + "//! ```toml".len();
        let end = start + docs[start..].find("//! ```").expect("its end");
        let toml: String = docs[start..end]
            .lines()
            .map(|line| {
                line.trim_start()
                    .trim_start_matches("//!")
                    .trim_start_matches(' ')
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config: WasmConfig = toml::from_str(&toml).expect("the example is valid TOML");
        config.validate().unwrap();
        assert_eq!(config.fuel, FuelMode::PerMillisecondOfTimeout(1_000_000));
        assert!(config.scratch.enabled);
    }

    #[test]
    fn test_validate_rejects_bad_values() {
        let config = WasmConfig {
            pool_instances: 0,
            ..WasmConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(WasmError::Config {
                field: "pool_instances",
                ..
            })
        ));
        let config = WasmConfig {
            epoch_tick_ms: 0,
            ..WasmConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(WasmError::Config {
                field: "epoch_tick_ms",
                ..
            })
        ));
    }
}
