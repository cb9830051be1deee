//! The container pool: the only caller of the [`factory`] interface and the only place that decides
//! which container runs what.
//!
//! Both sources of work (the Kafka invoker and the standalone server) hand every activation to
//! [`Pool::run`] as a [`Job`] and get back a [`Completed`]: the factory's [`Outcome`] (with `init_time`
//! set when this job initialised the container) and how the job was started.
//!
//! # Rules (OpenWhisk's `ContainerPool` / `ContainerProxy`)
//!
//! - **Capacity is memory.** [`PoolConfig::user_memory_mb`] is shared by everything. A factory whose
//!   containers are real processes ([`Accounting::PerContainer`], Docker) reserves an action's memory
//!   for every container, busy, idle, paused or prewarmed. An in-process factory
//!   ([`Accounting::PerActivation`], wasm) reserves an action's memory for each *running* activation;
//!   its containers are shared by all activations of one action and namespace and run as many at
//!   once as memory allows.
//! - **Scheduling**, for each job in arrival order: a container of the same (invoking namespace, action,
//!   revision) with spare concurrency; else a prewarmed container of the same kind and memory; else a
//!   cold container if memory allows; else evict idle warm containers least recently used first and
//!   start a cold one; else wait in a FIFO buffer until capacity frees.
//! - **Provisioning** ([`Pool::provision`], for the scheduler-mode invoker's container creation
//!   orders): one container for an action's kind, memory and (blackbox) image is created without
//!   an activation and booked as a prewarm of no stem cell: created, not initialised. The next job of
//!   that kind, memory and image takes it (before any stem cell) as [`Start::Prewarmed`]. Memory is
//!   found as for a cold start (evicting idle warm containers), but never ahead of jobs already
//!   waiting for it; else [`ProvisionError::NotEnoughMemory`]. A failed creation is
//!   [`ProvisionError::Create`] with the factory's typed error, whose status says whether the action
//!   is to blame ([`FactoryError::BlackboxStart`](factory::FactoryError::BlackboxStart)) or the system.
//! - **Failures**: after a developer or whisk error (status 2 or 3), and after any run whose logs
//!   could not be collected ([`ContainerFault::LogsLost`](factory::ContainerFault::LogsLost); the activation keeps its outcome and
//!   partial logs), the container is destroyed. A failed init ends the activation that caused it and
//!   every job that was waiting on that init with the same outcome. A container that cannot be
//!   resumed is destroyed and the job is scheduled again.
//! - **Reschedule** (OpenWhisk's `ContainerHealthError`): an init or run whose outcome carries
//!   [`ContainerFault::Refused`](factory::ContainerFault::Refused) (the runtime answered 503, or was unreachable right after a resume)
//!   is never answered: its container is destroyed and the job is placed again, on another
//!   container, at most [`MAX_RESCHEDULES`] times; after that the whisk error stands. The signals are
//!   typed fields of the factory's runtime-neutral outcome, set where the factory saw the condition:
//!   the pool reads no result text, no log line and no runtime's types.
//! - **Timers** (read from the [`Clock`]): an idle container that can pause is paused after
//!   [`PoolConfig::pause_grace`] and removed [`PoolConfig::idle_timeout`] later; one that cannot pause
//!   is removed after `idle_timeout`. Prewarms of reactive stem cells expire after their `ttl` and are
//!   topped up from recent cold starts every [`PoolConfig::prewarm_check_interval`] (at most
//!   [`PoolConfig::prewarm_expiration_limit`] removed per check). A provisioned container that no
//!   job took is removed `idle_timeout` after its creation and not replaced; it never counts
//!   towards a stem cell's prewarms. Idle and prewarmed
//!   containers are health-checked every [`HealthCheckConfig::period`]; `max_fails` failures in a row
//!   replace them.
//!
//! At start the pool asks every factory to remove the containers a previous run left behind
//! ([`factory::Factory::cleanup`], as OpenWhisk's invoker does), so that they hold no memory the books do not
//! know of.
//!
//! The pool owns its background task (the housekeeping ticker) and every destroy or prewarm task it
//! starts: they stop when the pool is dropped, and [`Pool::shutdown`] waits for them.
//!
//! # Backpressure
//!
//! [`Pool::max_peek`] is how many jobs a source should hand over at once (`user memory / 128 MB`, as
//! OpenWhisk's `maxPeek`): a source that holds a permit per job in flight never queues more than that,
//! so a flood waits in Kafka, not in memory.
//!
//! # Where things are
//!
//! - this module: [`Pool`], its lifecycle (start, shutdown) and the effects of its decisions;
//! - `config`: [`PoolConfig`], [`HealthCheckConfig`], [`PoolFactory`] and their defaults;
//! - `job`: [`Job`], [`Completed`], [`Start`];
//! - `state`: the books and the scheduling decision, synchronous, under the lock;
//! - `provision`: [`Pool::provision`] and [`ProvisionError`];
//! - `attempt`: one job's way through the pool, step by step (create, resume, init, run);
//! - `housekeeping`: the timers (pause, idle removal, prewarm expiry and top-up, health checks).

mod attempt;
mod config;
mod housekeeping;
mod job;
mod provision;
mod state;
#[cfg(test)]
mod testing;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use factory::outcome::messages;
use factory::{Outcome, Status};
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info_span, warn};

use crate::clock::Clock;

pub use attempt::MAX_RESCHEDULES;
pub use config::{
    Accounting, DEFAULT_HOUSEKEEPING_INTERVAL, DEFAULT_IDLE_TIMEOUT, DEFAULT_PAUSE_GRACE,
    DEFAULT_PREWARM_CHECK_INTERVAL, DEFAULT_PREWARM_EXPIRATION_LIMIT, HealthCheckConfig,
    MIN_ACTION_MEMORY_MB, PoolConfig, PoolFactory,
};
pub use job::{Completed, Job, Start};
pub use provision::ProvisionError;
pub use state::PoolCounters;
use state::{Effect, Phase, PrewarmCell, State};

/// A snapshot of the pool for metrics and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    /// The configured capacity (MB).
    pub user_memory_mb: u64,
    /// Memory reserved by containers and running activations (MB).
    pub reserved_mb: u64,
    /// Activations running (placed and not yet finished).
    pub active: u64,
    /// Jobs waiting in the buffer.
    pub buffered: usize,
    /// Containers being created (cold or prewarm).
    pub starting: usize,
    /// Unused prewarmed containers.
    pub prewarmed: usize,
    /// Warm containers (busy or idle, not paused).
    pub warm: usize,
    /// Paused (or pausing, resuming) containers.
    pub paused: usize,
    /// Counters since start.
    pub counters: PoolCounters,
}

/// Errors of building or stopping a pool.
#[derive(Debug, Error)]
pub enum PoolError {
    /// The configuration cannot work.
    #[error("invalid pool configuration: {0}")]
    Config(String),
}

/// The container pool. Cheap to share behind an `Arc`; see the module docs for its rules.
#[derive(Debug)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    config: PoolConfig,
    factories: Vec<PoolFactory>,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("config", &self.config)
            .field("factories", &self.factories)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Starts a pool: cleans up what the factories left behind, starts the initial prewarms and the
    /// housekeeping ticker. `factories` are asked in order which one runs a kind.
    pub async fn start(
        config: PoolConfig,
        factories: Vec<PoolFactory>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, PoolError> {
        if config.user_memory_mb < MIN_ACTION_MEMORY_MB {
            return Err(PoolError::Config(format!(
                "user memory {} MB is below the smallest action memory {MIN_ACTION_MEMORY_MB} MB",
                config.user_memory_mb
            )));
        }
        if config.housekeeping_interval.is_zero() {
            return Err(PoolError::Config(
                "the housekeeping interval is zero".into(),
            ));
        }
        for entry in &factories {
            if let Err(error) = entry.factory.cleanup().await {
                warn!(factory = entry.factory.name(), %error, "cleanup of leftover containers failed");
            }
        }
        let mut prewarms = Vec::new();
        for (index, entry) in factories.iter().enumerate() {
            for cell in entry.factory.stem_cells() {
                prewarms.push(PrewarmCell {
                    factory: index,
                    accounting: entry.accounting,
                    desired: cell.initial_count,
                    cold_starts: 0,
                    cell,
                });
            }
        }
        let inner = Arc::new(Inner {
            state: Mutex::new(State::new(config.user_memory_mb, prewarms)),
            config,
            factories,
            clock,
            tasks: TaskTracker::new(),
            cancel: CancellationToken::new(),
        });
        let mut effects = Vec::new();
        let now = inner.clock.now();
        inner.lock().top_up_prewarms(now, &mut effects);
        inner.apply(effects);
        inner.spawn_ticker();
        Ok(Self { inner })
    }

    /// How many jobs a source should have in flight at most: `user memory / 128 MB`, at least 1.
    pub fn max_peek(&self) -> usize {
        usize::try_from(self.inner.config.user_memory_mb / MIN_ACTION_MEMORY_MB)
            .unwrap_or(usize::MAX)
            .max(1)
    }

    /// The pool's configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// Runs one job to its end: waits for capacity, gets a container (warm, prewarmed, cold), resumes
    /// or initialises it as needed, runs the activation and releases the capacity. Never fails: every
    /// failure is an [`Outcome`] with OpenWhisk's status and message.
    pub async fn run(&self, job: Job) -> Completed {
        let span = info_span!("pool_run", activation_id = %job.run.context.activation_id);
        self.inner.clone().run(job).instrument(span).await
    }

    /// A snapshot of the books.
    pub fn stats(&self) -> PoolStats {
        let state = self.inner.lock();
        let mut stats = PoolStats {
            user_memory_mb: state.user_memory_mb,
            reserved_mb: state.reserved_mb,
            active: state.active,
            buffered: state.buffer.len(),
            counters: state.counters,
            ..PoolStats::default()
        };
        for slot in state.slots.values() {
            match slot.phase {
                Phase::Starting => stats.starting += 1,
                Phase::Prewarmed => stats.prewarmed += 1,
                Phase::Ready | Phase::Removing => stats.warm += 1,
                Phase::Pausing | Phase::Paused | Phase::Resuming => stats.paused += 1,
            }
        }
        stats
    }

    /// Looks at every timer now (pause, idle removal, prewarm expiry, health checks) and waits for
    /// the pauses and probes this starts. The ticker calls this every
    /// [`PoolConfig::housekeeping_interval`]; tests with a manual clock call it after advancing.
    pub async fn housekeep(&self) {
        self.inner.housekeep().await;
    }

    /// Stops the pool: no new jobs, waits (at most `grace`) for running and buffered jobs to end,
    /// destroys every container, waits for all tasks and lets the factories clean up.
    pub async fn shutdown(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let busy = {
                let state = self.inner.lock();
                state.active > 0 || !state.buffer.is_empty()
            };
            if !busy || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.inner.cancel.cancel();
        let mut effects = Vec::new();
        {
            let mut state = self.inner.lock();
            state.closed = true;
            state.buffer.clear();
            let ids: Vec<u64> = state.slots.keys().copied().collect();
            for id in ids {
                state.remove_slot(id, &mut effects);
            }
        }
        self.inner.apply(effects);
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        for entry in &self.inner.factories {
            if let Err(error) = entry.factory.cleanup().await {
                warn!(factory = entry.factory.name(), %error, "cleanup at shutdown failed");
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Stops the ticker; destroy and prewarm tasks already started finish on their own.
        self.inner.cancel.cancel();
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The books stay consistent between statements, so a panic elsewhere leaves them usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn factory_for(&self, kind: &str) -> Option<usize> {
        self.factories
            .iter()
            .position(|entry| entry.factory.supports(kind))
    }

    fn finish(self: &Arc<Self>, id: u64, activation_mb: u64, keep: bool) {
        let now = self.clock.now();
        let mut effects = Vec::new();
        self.lock()
            .finish(id, activation_mb, keep, now, &mut effects);
        self.apply(effects);
    }

    /// Carries out what a decision implies.
    fn apply(self: &Arc<Self>, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Destroy(cell) => {
                    self.tasks.spawn(async move {
                        // A container still being created is waited for, then destroyed; one whose
                        // creation failed (or never began) has nothing to destroy.
                        let created = cell.container.get_or_init(|| async {
                            Err(Box::new(Outcome::instant_error(
                                Status::WhiskError,
                                messages::RESOURCE_ERROR,
                            )))
                        });
                        if let Ok(container) = created.await
                            && let Err(error) = container.destroy().await
                        {
                            warn!(%error, container = container.id(), "destroy failed");
                        }
                    });
                }
                Effect::CreatePrewarm {
                    cell,
                    factory,
                    kind,
                    memory_mb,
                } => {
                    let inner = self.clone();
                    self.tasks.spawn(async move {
                        inner.create_prewarm(cell, factory, kind, memory_mb).await;
                    });
                }
                Effect::Abandon(placement) => {
                    // Nobody took it: release it like a failed job (its container is left alone if
                    // it is shared, destroyed if it was made for the job).
                    let keep = placement.start == Start::Warm;
                    let now = self.clock.now();
                    let mut effects = Vec::new();
                    self.lock().finish(
                        placement.cell.id,
                        placement.activation_mb,
                        keep,
                        now,
                        &mut effects,
                    );
                    self.apply(effects);
                }
            }
        }
    }
}
