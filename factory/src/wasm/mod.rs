//! The wasm factory: actions of kind `wasm:wasip1` (WASI preview 1 commands) run in-process, each
//! activation in a fresh pooled wasmtime instance.
//!
//! This wraps wasmtime narrowly, in the contract's terms (`actions/README.md`): a module, an action's
//! limits, an activation's params and context in; an [`Outcome`](crate::Outcome) out. Start at
//! [`WasmFactory::new`] with a [`WasmConfig`]; the executor then drives it through the
//! [`Factory`]/[`Container`] interface like any runtime.
//!
//! How it is put together, one module per concept:
//!
//! - [`config`]: [`WasmConfig`], every operator setting with its default.
//! - [`engine`]: one [`wasmtime::Engine`] per factory (pooling allocator, epoch interruption, fuel
//!   when configured) and its epoch ticker thread.
//! - [`code`]: from `exec.code` (raw module or zip) to module bytes, refusing anything that is not a
//!   WASI preview 1 command.
//! - [`cache`]: modules compiled once per SHA-256 digest and shared by every action with the same
//!   code; bounded in memory, optionally kept on disk (authenticated, see its docs).
//! - [`limits`]: the memory limiter of a store.
//! - [`output`]: capture of stdout/stderr into the log and the result line, within their caps.
//! - [`poll`]: WASI `poll_oneoff` bounded by the activation's deadline, so that a sleeping guest
//!   is stopped at its timeout like a running one.
//! - [`scratch`]: the optional per-activation `/tmp`.
//! - [`activation`]: one activation on the calling tokio worker, input to outcome.
//! - [`idle_reset`]: a finished activation's slot reset when its worker goes idle, after the answer
//!   (runtimes opt in with [`reset_idle_slots`] as their park hook).
//! - [`container`]: the `Container` implementation, [`WasmContainer`].
//! - [`error`]: [`WasmError`], the factory's own failures.
//!
//! Faults ([`crate::ContainerFault`]): none arise here, so every outcome has `fault: None`. Logs are
//! captured in-process as the guest writes them (nothing to collect afterwards that could fail), and
//! a container cannot refuse an activation (no runtime process to shut down or lose after a resume;
//! each activation gets a fresh instance). What fails is the activation, and its status says so.
//!
//! Concurrency: wasm runs on tokio's worker threads with wasmtime's async support: each guest runs
//! on a fiber and gives its worker back at every epoch tick (a CPU-bound guest shares the worker
//! with every other task, one tick at a time) and whenever it waits (a sleep is a tokio timer), so
//! an activation costs no thread and no cross-thread hand-off. As many activations are in flight
//! as the pool has slots; a semaphore with one permit per slot makes further activations wait
//! instead of failing. Compilation (init) still runs on a blocking thread: it cannot yield.

pub mod activation;
pub mod cache;
pub mod code;
pub mod config;
pub mod container;
pub mod engine;
pub mod error;
pub mod idle_reset;
pub mod limits;
pub mod output;
pub mod poll;
pub mod scratch;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::sync::Semaphore;
use wasmtime::{Linker, Module, Store};
use wasmtime_wasi::WasiCtxBuilder;

use crate::container::{Code, Container, ContainerSpec, Factory, Health};
use crate::error::FactoryError;

pub use self::activation::{ActivationState, MAX_ARGV_PARAMS_BYTES};
pub use self::cache::{CacheMetrics, CodeDigest, CompiledModule, Source};
pub use self::code::CodeError;
pub use self::config::{FuelMode, ScratchConfig, WASM_WASIP1_KIND, WasmConfig};
pub use self::container::WasmContainer;
pub use self::error::WasmError;
pub use self::idle_reset::reset_idle_slots;

use self::cache::{ModuleCache, digest_of};
use self::engine::{RunningGuard, WasmEngine};
use self::error::describe;
use self::limits::ActivationLimiter;

/// The wasm factory. Cheap to share: clones share one engine, pool and cache.
#[derive(Clone)]
pub struct WasmFactory {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WasmFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmFactory")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// State shared by the factory and its containers.
pub(crate) struct Shared {
    pub(crate) config: WasmConfig,
    pub(crate) engine: WasmEngine,
    linker: Linker<ActivationState>,
    cache: ModuleCache,
    /// One permit per pool instance slot, taken before instantiating.
    pub(crate) slots: Arc<Semaphore>,
    next_container: AtomicU64,
    activations: AtomicU64,
}

impl Shared {
    /// Counts an activation as running (and in the total) while the guard lives.
    pub(crate) fn running(&self) -> RunningGuard<'_> {
        self.activations.fetch_add(1, Ordering::Relaxed);
        self.engine.activation_started()
    }

    /// The compiled module for an action's code, through the cache, and where it came from.
    /// Blocking.
    pub(crate) fn resolve(
        &self,
        code: Option<&Code>,
        main: Option<&str>,
    ) -> Result<(Arc<CompiledModule>, Source), WasmError> {
        let bytes = code::extract(code, main)?;
        code::check_header(&bytes)?;
        let digest = digest_of(&bytes);
        let engine = self.engine.engine();
        let (module, source) = self.cache.get_or_compile(
            engine,
            digest,
            || Module::new(engine, &bytes).map_err(|error| CodeError::Compile(describe(&error))),
            |module| self.prepare(digest, &module),
        )?;
        tracing::debug!(digest = %hex::encode(digest), ?source, "wasm module ready");
        Ok((module, source))
    }

    /// Checks a compiled module's interface and links it.
    fn prepare(&self, digest: CodeDigest, module: &Module) -> Result<CompiledModule, CodeError> {
        code::check_interface(module)?;
        let pre = self
            .linker
            .instantiate_pre(module)
            .map_err(|error| CodeError::Link(describe(&error)))?;
        Ok(CompiledModule::new(digest, pre))
    }
}

/// Live numbers for an occupancy gauge and cache metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasmMetrics {
    /// Instance slots in the pool ([`WasmConfig::pool_instances`]).
    pub instance_slots: u32,
    /// Slots taken by running activations now.
    pub instance_slots_in_use: u32,
    /// Activations executing now.
    pub activations_running: u64,
    /// Activations executed since start.
    pub activations_total: u64,
    /// Core instances the pooling allocator has handed out now.
    pub pool_core_instances: u64,
    /// Linear memories the pooling allocator has handed out now.
    pub pool_memories: u64,
    /// Unused pool memory slots still holding a warm (affine) image.
    pub pool_unused_warm_memories: u64,
    /// Bytes kept resident in unused pool memory slots.
    pub pool_unused_memory_bytes_resident: u64,
    /// The module cache.
    pub cache: CacheMetrics,
    /// Whether the epoch ticker runs (without it timeouts are not enforced).
    pub ticker_alive: bool,
}

impl WasmFactory {
    /// Builds the engine (pooling allocator sized by `config`), starts the epoch ticker, links
    /// WASI preview 1 and opens the disk cache when configured. Needs no tokio runtime.
    ///
    /// # Errors
    ///
    /// [`WasmError::Config`] for a bad setting, [`WasmError::Engine`] when wasmtime refuses the
    /// configuration (e.g. the pool does not fit the address space), [`WasmError::Cache`] when the
    /// disk cache directory cannot be used or is not private.
    pub fn new(config: WasmConfig) -> Result<Self, WasmError> {
        config.validate()?;
        let engine = WasmEngine::new(&config)?;
        let mut linker = Linker::new(engine.engine());
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, ActivationState::wasi)
            .and_then(|()| poll::shadow_poll_oneoff(&mut linker))
            .map_err(|error| WasmError::Linker {
                reason: describe(&error),
            })?;
        let cache = ModuleCache::new(
            config.cache_max_bytes,
            config.disk_cache_dir.as_deref(),
            engine.compatibility(),
        )?;
        let slots = usize::try_from(config.pool_instances)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Ok(Self {
            shared: Arc::new(Shared {
                engine,
                linker,
                cache,
                slots: Arc::new(Semaphore::new(slots)),
                next_container: AtomicU64::new(0),
                activations: AtomicU64::new(0),
                config,
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &WasmConfig {
        &self.shared.config
    }

    /// Live metrics: pool occupancy, activations, cache.
    pub fn metrics(&self) -> WasmMetrics {
        let shared = &self.shared;
        let in_use = shared
            .config
            .pool_instances
            .saturating_sub(u32::try_from(shared.slots.available_permits()).unwrap_or(u32::MAX));
        let pool = shared.engine.engine().pooling_allocator_metrics();
        let field =
            |get: fn(&wasmtime::PoolingAllocatorMetrics) -> u64| pool.as_ref().map_or(0, get);
        WasmMetrics {
            instance_slots: shared.config.pool_instances,
            instance_slots_in_use: in_use,
            activations_running: shared.engine.running(),
            activations_total: shared.activations.load(Ordering::Relaxed),
            pool_core_instances: field(|p| p.core_instances()),
            pool_memories: field(|p| p.memories() as u64),
            pool_unused_warm_memories: field(|p| u64::from(p.unused_warm_memories())),
            pool_unused_memory_bytes_resident: field(|p| p.unused_memory_bytes_resident() as u64),
            cache: shared.cache.metrics(),
            ticker_alive: shared.engine.ticker_alive(),
        }
    }

    /// The module for `code` through the cache (memory, disk, or compiled now), and where it came
    /// from. Blocking: compiling takes tens to hundreds of milliseconds. What [`Container::init`]
    /// does, without the timeout; for benches and tools.
    pub fn load(
        &self,
        code: &Code,
        main: Option<&str>,
    ) -> Result<(Arc<CompiledModule>, Source), WasmError> {
        self.shared.resolve(Some(code), main)
    }

    /// Validates, compiles and links a module, bypassing the cache entirely. Blocking. For benches
    /// measuring compilation.
    pub fn compile(&self, wasm: &[u8]) -> Result<CompiledModule, WasmError> {
        code::check_header(wasm)?;
        let module = Module::new(self.shared.engine.engine(), wasm)
            .map_err(|error| CodeError::Compile(describe(&error)))?;
        Ok(self.shared.prepare(digest_of(wasm), &module)?)
    }

    /// Creates a store, WASI context and instance of `module` and gives them back as an activation
    /// does, without running it: the cost of a warm start's instantiation alone, set up as an
    /// activation is. Given back means dropped (the slot reset) here, or on a worker whose runtime
    /// resets idle slots ([`reset_idle_slots`]) at that worker's next idle moment. It does not take
    /// a pool slot permit, so callers must not run more of these at once than the pool has slots.
    pub async fn instantiate_only(&self, module: &CompiledModule) -> Result<(), WasmError> {
        let shared = &self.shared;
        let memory_bytes = usize::try_from(shared.config.max_memory_bytes()).unwrap_or(usize::MAX);
        let timeout = crate::limits::Limits::default().timeout_duration();
        let deadline = std::time::Instant::now().checked_add(timeout);
        let state = ActivationState::new(
            WasiCtxBuilder::new().build_p1(),
            ActivationLimiter::new(memory_bytes),
            deadline,
        );
        let mut store = Store::new(shared.engine.engine(), state);
        store.limiter(|state| state.limiter());
        if let Some(fuel) = shared.config.fuel.budget(crate::limits::DEFAULT_TIMEOUT_MS) {
            store
                .set_fuel(fuel)
                .map_err(|error| WasmError::Instantiate {
                    reason: describe(&error),
                })?;
        }
        activation::arm_deadline(&mut store, None);
        instantiate_in(module.instance_pre(), &mut store).await?;
        idle_reset::release(store);
        Ok(())
    }

    /// wasmtime's own share of [`instantiate_only`](Self::instantiate_only), for benches: `module`
    /// linked with every import a trap and no store data, instantiated on this factory's engine
    /// and pool. What `instantiate_only` costs beyond [`BareInstantiation::instantiate`] is the
    /// activation's own setup (WASI context, limiter, fuel, deadline). Blocking: it links once.
    pub fn bare_instantiation(
        &self,
        module: &CompiledModule,
    ) -> Result<BareInstantiation, WasmError> {
        let engine = self.shared.engine.engine();
        let module = module.instance_pre().module();
        let mut linker = Linker::<()>::new(engine);
        let pre = linker
            .define_unknown_imports_as_traps(module)
            .and_then(|()| linker.instantiate_pre(module))
            .map_err(|error| WasmError::Linker {
                reason: describe(&error),
            })?;
        Ok(BareInstantiation { pre })
    }

    /// Drops every compiled module from memory (the disk cache stays), so the next load comes from
    /// disk or compilation. For benches.
    pub fn clear_memory_cache(&self) {
        self.shared.cache.clear_memory();
    }

    /// Forgets which disk cache files this process has authenticated, as a restart does, so the
    /// next load of each checks its tag again. For benches comparing a first load with later ones.
    pub fn forget_checked_files(&self) {
        self.shared.cache.forget_checked_files();
    }
}

/// A module linked for [`WasmFactory::bare_instantiation`]: instances with nothing of an
/// activation around them, the floor an activation's instantiation stands on.
pub struct BareInstantiation {
    pre: wasmtime::InstancePre<()>,
}

impl std::fmt::Debug for BareInstantiation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BareInstantiation").finish_non_exhaustive()
    }
}

impl BareInstantiation {
    /// Creates an empty store and an instance in it, and drops both (which resets the pool slot
    /// here, never deferred). Takes no pool permit either, as [`WasmFactory::instantiate_only`].
    pub async fn instantiate(&self) -> Result<(), WasmError> {
        let mut store = Store::new(self.pre.module().engine(), ());
        instantiate_in(&self.pre, &mut store).await
    }
}

/// Instantiates `pre` in `store` (the instance lives, and holds its pool slot, until the store is
/// dropped).
async fn instantiate_in<T: Send + 'static>(
    pre: &wasmtime::InstancePre<T>,
    store: &mut Store<T>,
) -> Result<(), WasmError> {
    pre.instantiate_async(store)
        .await
        .map_err(|error| WasmError::Instantiate {
            reason: describe(&error),
        })?;
    Ok(())
}

#[async_trait]
impl Factory for WasmFactory {
    fn name(&self) -> &'static str {
        "wasm"
    }

    fn supports(&self, kind: &str) -> bool {
        self.shared.config.kinds.iter().any(|k| k == kind)
    }

    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>, FactoryError> {
        if !self.supports(&spec.kind) {
            return Err(FactoryError::UnsupportedKind {
                factory: "wasm",
                kind: spec.kind,
            });
        }
        let n = self.shared.next_container.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(WasmContainer::new(
            format!("wasm-{n}"),
            spec,
            Arc::clone(&self.shared),
        )))
    }

    async fn health(&self) -> Health {
        if self.shared.engine.ticker_alive() {
            Health::Healthy
        } else {
            Health::Unhealthy("the wasm epoch ticker stopped: timeouts are not enforced".into())
        }
    }
}
