//! The one wasmtime [`Engine`] of a factory: pooling instance allocator, epoch interruption, fuel
//! when the operator asks for it, and the epoch ticker that makes timeouts work.
//!
//! Every module is compiled by this engine and every instance runs on it, so its configuration is
//! fixed at start: compiled code depends on it (fuel metering above all), which is why the on-disk
//! cache is keyed by [`Engine::precompile_compatibility_hash`].
//!
//! The ticker is one thread per engine (not per activation). It holds only a weak reference and
//! ends on the first tick after the engine is dropped, like Spin's `maybe_spawn_epoch_ticker`.

use std::hash::{Hash, Hasher};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use wasmtime::{
    Config, Enabled, Engine, EngineWeak, InstanceAllocationStrategy, PoolingAllocationConfig,
};

use super::config::WasmConfig;
use super::error::{WasmError, describe};

/// Most elements of an instance's table (the indirect-call table of a Rust or C program holds one
/// entry per address-taken function: a few thousand at most). Threat: a module declaring a huge
/// table makes every pool slot reserve room for it.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The engine and its ticker.
pub(crate) struct WasmEngine {
    engine: Engine,
    ticker: JoinHandle<()>,
    tick: Duration,
    compatibility: [u8; 32],
}

impl std::fmt::Debug for WasmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmEngine")
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

impl WasmEngine {
    /// Builds the engine for `config` (already validated) and starts its ticker.
    pub(crate) fn new(config: &WasmConfig) -> Result<Self, WasmError> {
        let mut pool = PoolingAllocationConfig::default();
        let slots = config.pool_instances;
        let max_memory_bytes =
            usize::try_from(config.max_memory_bytes()).map_err(|_| WasmError::Config {
                field: "max_memory_mb",
                reason: "does not fit this host".into(),
            })?;
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .total_stacks(slots)
            // A WASI command has one memory and one table; anything more is refused at init.
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .table_elements(MAX_TABLE_ELEMENTS)
            // Each slot is sized for the largest memory an action may have; an action's own limit
            // is enforced below that by its store's limiter.
            .max_memory_size(max_memory_bytes);
        // Reset a finished instance's dirty pages in place rather than madvise them away (see
        // `WasmConfig::keep_resident_bytes`); PAGEMAP_SCAN (Linux 6.7+) finds the dirty ones.
        let keep_resident = usize::try_from(config.keep_resident_bytes).unwrap_or(usize::MAX);
        pool.linear_memory_keep_resident(keep_resident)
            .table_keep_resident(keep_resident)
            .pagemap_scan(Enabled::Auto);

        let mut wasmtime_config = Config::new();
        wasmtime_config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .epoch_interruption(true)
            .consume_fuel(config.fuel.is_on());
        let engine = Engine::new(&wasmtime_config).map_err(|error| WasmError::Engine {
            reason: describe(&error),
        })?;
        let compatibility = compatibility_digest(&engine);
        let ticker = spawn_epoch_ticker(engine.weak(), config.epoch_tick())?;
        Ok(Self {
            engine,
            ticker,
            tick: config.epoch_tick(),
            compatibility,
        })
    }

    /// The engine.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// SHA-256 of the engine's [`Engine::precompile_compatibility_hash`]: equal exactly when
    /// artifacts compiled by one engine can be loaded by the other.
    pub(crate) fn compatibility(&self) -> &[u8; 32] {
        &self.compatibility
    }

    /// Whether the ticker still runs (it only ends when the engine is gone, or if it panicked).
    pub(crate) fn ticker_alive(&self) -> bool {
        !self.ticker.is_finished()
    }

    /// The epoch deadline, in ticks beyond the current epoch, for a wall-clock `timeout`: enough
    /// whole ticks to cover it, plus one for the tick already in progress (its remainder may be
    /// arbitrarily short). The action is thus stopped between `timeout` and `timeout` + one tick.
    pub(crate) fn deadline_ticks(&self, timeout: Duration) -> u64 {
        ticks_for(timeout, self.tick)
    }
}

/// See [`WasmEngine::deadline_ticks`].
fn ticks_for(timeout: Duration, tick: Duration) -> u64 {
    let tick_nanos = tick.as_nanos().max(1);
    let whole = timeout.as_nanos().div_ceil(tick_nanos);
    u64::try_from(whole).unwrap_or(u64::MAX).saturating_add(1)
}

/// Starts the thread that advances the engine's epoch every `tick`, for as long as the engine lives.
fn spawn_epoch_ticker(engine: EngineWeak, tick: Duration) -> Result<JoinHandle<()>, WasmError> {
    std::thread::Builder::new()
        .name("wasm-epoch-ticker".into())
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map_err(WasmError::Ticker)
}

/// Feeds a [`Hash`] value into SHA-256, so that the compatibility hash has a stable, wide digest
/// (std's `DefaultHasher` is 64 bits and may change between Rust releases).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(
            digest[..8]
                .try_into()
                .expect("a SHA-256 digest has 32 bytes"),
        )
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn compatibility_digest(engine: &Engine) -> [u8; 32] {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::config::FuelMode;

    #[test]
    fn test_deadline_covers_the_timeout_plus_the_tick_in_progress() {
        let tick = Duration::from_millis(10);
        assert_eq!(ticks_for(Duration::from_millis(300), tick), 31);
        assert_eq!(ticks_for(Duration::from_millis(301), tick), 32);
        assert_eq!(ticks_for(Duration::ZERO, tick), 1);
        assert_eq!(ticks_for(Duration::MAX, Duration::from_nanos(1)), u64::MAX);
    }

    #[test]
    fn test_fuel_changes_the_compatibility_hash() {
        let small = WasmConfig {
            pool_instances: 2,
            ..WasmConfig::default()
        };
        let without = WasmEngine::new(&small).unwrap();
        let again = WasmEngine::new(&small).unwrap();
        let with = WasmEngine::new(&WasmConfig {
            fuel: FuelMode::Fixed(1),
            ..small
        })
        .unwrap();
        assert_eq!(without.compatibility(), again.compatibility());
        assert_ne!(without.compatibility(), with.compatibility());
    }

    #[test]
    fn test_ticker_ends_with_the_engine() {
        let config = WasmConfig {
            pool_instances: 1,
            epoch_tick_ms: 1,
            ..WasmConfig::default()
        };
        let engine = WasmEngine::new(&config).unwrap();
        assert!(engine.ticker_alive());
        let WasmEngine { engine, ticker, .. } = engine;
        drop(engine);
        // The ticker notices at its next tick; join proves it ended.
        ticker.join().unwrap();
    }
}
