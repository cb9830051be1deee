//! The one wasmtime [`Engine`] of a factory: pooling instance allocator, async support, epoch
//! interruption, fuel when the operator asks for it, and the epoch ticker that makes timeouts work.
//!
//! Guests run on tokio's worker threads (wasmtime's `async` feature: each `*_async` call runs on a
//! fiber whose stack comes from the pool), so a guest must give its worker back regularly: every epoch tick, the
//! activation's deadline callback either yields to the scheduler or, past the deadline, interrupts
//! (see [`activation`](super::activation)). The tick is thus both the timeout's precision and the
//! longest a CPU-bound guest holds a worker (but for a first slice on a quiet engine, below).
//!
//! Every module is compiled by this engine and every instance runs on it, so its configuration is
//! fixed at start: compiled code depends on it (fuel metering above all), which is why the on-disk
//! cache is keyed by [`Engine::precompile_compatibility_hash`].
//!
//! The ticker is one thread per engine (not per activation). It holds only a weak reference and
//! ends on the first tick after the engine is dropped, like Spin's `maybe_spawn_epoch_ticker`.
//! A 1 ms tick is 1,000 wake-ups a second, and on a VM each costs tens of microseconds of CPU (a
//! timer interrupt and two context switches), so the ticker keeps its pace only while it is needed:
//!
//! - **Busy**: a tick found an activation running. It ticks every `tick`.
//! - **Quiet**: [`QUIET_TICKS_TO_SLOW`] ticks in a row found none running (activations come and go
//!   between ticks, as behind a Kafka feed where most of the time is spent waiting for the broker).
//!   It ticks every [`QUIET_TICK_FACTOR`] × `tick` until a tick finds one running again. So a guest
//!   that starts on a quiet engine has its first slice (and its first look at its deadline) after
//!   at most that long; from then on the engine is busy and every slice is one tick.
//! - **Parked**: no activation has run for [`IDLE_PARK_AFTER`]. The next activation to start wakes
//!   it ([`Activity`]): an idle invoker costs no CPU, and a busy one pays nothing per activation
//!   (only the first after an idle second unparks the thread).

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// How long the ticker goes on ticking after the last activation ended before it parks.
pub const IDLE_PARK_AFTER: Duration = Duration::from_secs(1);

/// Ticks in a row that must find no activation running before the ticker slows down: more than
/// one, so that a single unlucky sample between two short activations does not slow it.
pub const QUIET_TICKS_TO_SLOW: u32 = 3;

/// How many ticks one tick of a quiet engine lasts (see the module docs): 10 ms with the default
/// 1 ms tick, Spin's own default epoch interval.
pub const QUIET_TICK_FACTOR: u32 = 10;

/// How long a parked ticker sleeps before it looks whether its engine still exists.
const PARKED_CHECK: Duration = Duration::from_secs(1);

/// What the ticker and the activations share: how many activations run, and whether the ticker
/// is parked (so that the activation that ends its idleness wakes it).
#[derive(Debug, Default)]
pub(crate) struct Activity {
    running: AtomicU64,
    parked: AtomicBool,
    /// Whether the ticker ticks at the quiet pace (for tests and diagnostics).
    quiet: AtomicBool,
}

impl Activity {
    /// Activations running now.
    pub(crate) fn running(&self) -> u64 {
        self.running.load(Ordering::Relaxed)
    }
}

/// The engine and its ticker.
pub(crate) struct WasmEngine {
    engine: Engine,
    ticker: JoinHandle<()>,
    activity: Arc<Activity>,
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
        // One slot per activation permit, and a reserve for the finished stores waiting for their
        // worker's idle moment (`idle_reset`), so that a waiting store never holds up an activation.
        let slots = config
            .pool_instances
            .saturating_add(super::idle_reset::MAX_DEFERRED_RESETS);
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
        let activity = Arc::new(Activity::default());
        let ticker = spawn_epoch_ticker(engine.weak(), config.epoch_tick(), Arc::clone(&activity))?;
        Ok(Self {
            engine,
            ticker,
            activity,
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

    /// Activations running now.
    pub(crate) fn running(&self) -> u64 {
        self.activity.running()
    }

    /// Counts an activation as running, waking the ticker if it is parked; the count goes down
    /// when the returned guard is dropped.
    pub(crate) fn activation_started(&self) -> RunningGuard<'_> {
        // SeqCst pairs with the ticker's: either it sees this activation before parking, or this
        // sees it parked and wakes it.
        self.activity.running.fetch_add(1, Ordering::SeqCst);
        if self.activity.parked.load(Ordering::SeqCst) {
            self.ticker.thread().unpark();
        }
        RunningGuard(&self.activity)
    }
}

/// Counts an activation as running while alive.
pub(crate) struct RunningGuard<'a>(&'a Activity);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Starts the thread that advances the engine's epoch every `tick`, for as long as the engine lives,
/// slower while quiet and parked while idle (see the module docs).
fn spawn_epoch_ticker(
    engine: EngineWeak,
    tick: Duration,
    activity: Arc<Activity>,
) -> Result<JoinHandle<()>, WasmError> {
    let quiet_tick = tick.saturating_mul(QUIET_TICK_FACTOR);
    std::thread::Builder::new()
        .name("wasm-epoch-ticker".into())
        .spawn(move || {
            // Ticks in a row that found no activation running, and since when none has run.
            let mut quiet_ticks: u32 = 0;
            let mut idle_since: Option<Instant> = None;
            loop {
                let quiet = quiet_ticks >= QUIET_TICKS_TO_SLOW;
                activity.quiet.store(quiet, Ordering::Relaxed);
                std::thread::sleep(if quiet { quiet_tick } else { tick });
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
                if activity.running.load(Ordering::SeqCst) > 0 {
                    quiet_ticks = 0;
                    idle_since = None;
                    continue;
                }
                quiet_ticks = quiet_ticks.saturating_add(1);
                if idle_since.get_or_insert_with(Instant::now).elapsed() < IDLE_PARK_AFTER {
                    continue;
                }
                activity.parked.store(true, Ordering::SeqCst);
                // An activation that started before `parked` was set was not told to wake us.
                while activity.running.load(Ordering::SeqCst) == 0 {
                    std::thread::park_timeout(PARKED_CHECK);
                    if engine.upgrade().is_none() {
                        return;
                    }
                }
                activity.parked.store(false, Ordering::SeqCst);
                // Woken by an activation: busy again.
                quiet_ticks = 0;
                idle_since = None;
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

    /// An engine of one slot whose ticker ticks every millisecond.
    fn ticking_engine() -> WasmEngine {
        let config = WasmConfig {
            pool_instances: 1,
            epoch_tick_ms: 1,
            ..WasmConfig::default()
        };
        WasmEngine::new(&config).unwrap()
    }

    #[test]
    fn test_ticker_ends_with_the_engine() {
        let engine = ticking_engine();
        assert!(engine.ticker_alive());
        let WasmEngine { engine, ticker, .. } = engine;
        drop(engine);
        // The ticker notices at its next tick; join proves it ended.
        ticker.join().unwrap();
    }

    /// Waits (at most `within`) until `flag` (one of the ticker's) is `value`.
    fn wait_for(flag: &AtomicBool, value: bool, within: Duration) -> bool {
        let until = std::time::Instant::now() + within;
        while std::time::Instant::now() < until {
            if flag.load(Ordering::SeqCst) == value {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    fn wait_parked(engine: &WasmEngine, parked: bool, within: Duration) -> bool {
        wait_for(&engine.activity.parked, parked, within)
    }

    fn wait_quiet(engine: &WasmEngine, quiet: bool, within: Duration) -> bool {
        wait_for(&engine.activity.quiet, quiet, within)
    }

    #[test]
    fn test_ticker_slows_down_while_no_activation_runs_and_speeds_up_for_one() {
        let engine = ticking_engine();
        // Quiet after a few ticks with nothing running, long before it would park.
        assert!(wait_quiet(&engine, true, IDLE_PARK_AFTER / 2));
        assert!(!engine.activity.parked.load(Ordering::SeqCst));
        // Busy again at the first quiet tick (10 ms) that finds an activation running.
        let running = engine.activation_started();
        assert!(wait_quiet(&engine, false, IDLE_PARK_AFTER / 2));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!engine.activity.quiet.load(Ordering::Relaxed));
        drop(running);
        assert!(wait_quiet(&engine, true, IDLE_PARK_AFTER / 2));
    }

    #[test]
    fn test_ticker_parks_when_idle_and_an_activation_wakes_it() {
        let engine = ticking_engine();
        assert!(wait_parked(&engine, true, IDLE_PARK_AFTER * 5));
        // Woken by the activation itself, not by its periodic look at the engine.
        let running = engine.activation_started();
        assert!(wait_parked(&engine, false, PARKED_CHECK / 2));
        assert_eq!(engine.running(), 1);
        // It keeps ticking while the activation runs.
        std::thread::sleep(IDLE_PARK_AFTER + Duration::from_millis(200));
        assert!(!engine.activity.parked.load(Ordering::SeqCst));
        drop(running);
        assert_eq!(engine.running(), 0);
        assert!(wait_parked(&engine, true, IDLE_PARK_AFTER * 5));
        let WasmEngine { engine, ticker, .. } = engine;
        drop(engine);
        // A parked ticker notices the engine is gone within its periodic look.
        ticker.join().unwrap();
    }
}
