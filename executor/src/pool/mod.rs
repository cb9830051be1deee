//! The container pool: the only caller of the [`factory`] interface and the only place that decides
//! which container runs what.
//!
//! Both sources of work (the Kafka invoker and the standalone server) hand every activation to
//! [`Pool::run`] as a [`Job`] and get back a [`Completed`]: the factory's [`Outcome`] (with `init_time`
//! set when this job initialised the container) and how the job was started.
//!
//! # Rules (OpenWhisk's `ContainerPool` / `ContainerProxy`, protocol spec section 10)
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
//! - **Failures**: after a developer or whisk error (status 2 or 3), and after any run whose logs end
//!   with OpenWhisk's collection-failure notice ([`factory::logs::collection_failed`]; the activation
//!   keeps its outcome and partial logs), the container is destroyed. A failed
//!   init ends the activation that caused it and every job that was waiting on that init with the same
//!   outcome. A container that cannot be resumed is destroyed and the job is scheduled again.
//! - **Reschedule** (OpenWhisk's `ContainerHealthError`): an init or run whose outcome
//!   [`Outcome::needs_reschedule`] (the runtime answered 503, or was unreachable right after a
//!   resume) is never answered: its container is destroyed and the job is placed again, on another
//!   container, at most [`MAX_RESCHEDULES`] times; after that the whisk error stands. The signal is
//!   the factory's runtime-neutral outcome, so the pool needs no runtime's types.
//! - **Timers** (read from the [`Clock`]): an idle container that can pause is paused after
//!   [`PoolConfig::pause_grace`] and removed [`PoolConfig::idle_timeout`] later; one that cannot pause
//!   is removed after `idle_timeout`. Prewarms of reactive stem cells expire after their `ttl` and are
//!   topped up from recent cold starts every [`PoolConfig::prewarm_check_interval`]. Idle and prewarmed
//!   containers are health-checked every [`HealthCheckConfig::period`]; `max_fails` failures in a row
//!   replace them.
//!
//! The pool owns its background task (the housekeeping ticker) and every destroy or prewarm task it
//! starts: they stop when the pool is dropped, and [`Pool::shutdown`] waits for them.
//!
//! # Backpressure
//!
//! [`Pool::max_peek`] is how many jobs a source should hand over at once (`user memory / 128 MB`, as
//! OpenWhisk's `maxPeek`): a source that holds a permit per job in flight never queues more than that,
//! so a flood waits in Kafka, not in memory.

mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use factory::outcome::messages;
use factory::{ContainerSpec, Factory, Health, InitRequest, Outcome, Purpose, RunRequest, Status};
use thiserror::Error;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::action::ExecutableAction;
use crate::clock::Clock;

pub use state::PoolCounters;
use state::{Effect, Needs, Phase, Place, Placement, PrewarmCell, State, WarmKey};

/// OpenWhisk's pause grace: an idle container is paused after 10 s without work.
pub const DEFAULT_PAUSE_GRACE: Duration = Duration::from_secs(10);
/// OpenWhisk's idle-container timeout: a paused container is removed after 10 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// How often the pool looks at its timers.
pub const DEFAULT_HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);
/// OpenWhisk's `prewarm-expiration-check-interval` (10 minutes).
pub const DEFAULT_PREWARM_CHECK_INTERVAL: Duration = Duration::from_secs(600);
/// OpenWhisk's smallest action memory (`whisk.memory.min`), the divisor of `maxPeek`.
pub const MIN_ACTION_MEMORY_MB: u64 = 128;
/// Most prewarms removed by one expiry check (OpenWhisk's `prewarm-expiration-limit`).
pub const PREWARM_EXPIRATION_LIMIT: usize = 100;
/// Most times one job is placed again after its container refused it ([`Outcome::needs_reschedule`]).
/// Threat: a runtime that answers every `/init` or `/run` with 503 would otherwise bounce a job from
/// container to container forever (OpenWhisk has no bound); after this many the whisk error is the
/// job's outcome.
pub const MAX_RESCHEDULES: u32 = 3;

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
    /// Memory shared by all containers and activations, in MB. Default 2048
    /// ([`crate::config::DEFAULT_USER_MEMORY`], ansible's `invoker_user_memory`).
    pub user_memory_mb: u64,
    /// Idle time before a pausable container is paused. Default 10 s.
    pub pause_grace: Duration,
    /// Time a paused (or, if it cannot pause, idle) container is kept before removal. Default 10 min.
    pub idle_timeout: Duration,
    /// How often the timers are looked at. Default 1 s.
    pub housekeeping_interval: Duration,
    /// Time between two expiry checks of reactive prewarms. Default 10 min.
    pub prewarm_check_interval: Duration,
    /// Most expired prewarms removed by one expiry check (`prewarm-expiration-limit`). Default
    /// [`PREWARM_EXPIRATION_LIMIT`].
    pub prewarm_expiration_limit: usize,
    /// Health checks of idle containers; `None` turns them off. Default on, 3 s, 3 failures.
    pub health_check: Option<HealthCheckConfig>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            user_memory_mb: crate::config::DEFAULT_USER_MEMORY.as_mb(),
            pause_grace: DEFAULT_PAUSE_GRACE,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            housekeeping_interval: DEFAULT_HOUSEKEEPING_INTERVAL,
            prewarm_check_interval: DEFAULT_PREWARM_CHECK_INTERVAL,
            prewarm_expiration_limit: PREWARM_EXPIRATION_LIMIT,
            health_check: Some(HealthCheckConfig::default()),
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

/// One activation to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// The action, as the entity store resolved it.
    pub action: Arc<ExecutableAction>,
    /// The invoking namespace (`user.namespace.name`); containers are never shared across namespaces.
    pub namespace: String,
    /// Parameters, activation context and limits of the run.
    pub run: RunRequest,
    /// The init parameters (`initArgs`) as environment strings, used if this job initialises the
    /// container.
    pub init_env: BTreeMap<String, String>,
}

/// How a job got its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Start {
    /// A container already initialised for this action (or being initialised by another job).
    Warm,
    /// A prewarmed stem cell, initialised by this job.
    Prewarmed,
    /// A new container, created and initialised by this job.
    Cold,
    /// No container ran the job: none could be created, no factory runs the kind, or the action does
    /// not fit in the pool at all. OpenWhisk answers these with one Combined ack.
    NotStarted,
    /// The job waited on a container whose creation or init failed and was aborted with that
    /// failure.
    Aborted,
}

impl Start {
    /// The label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Start::Warm => "warm",
            Start::Prewarmed => "prewarmed",
            Start::Cold => "cold",
            Start::NotStarted => "not_started",
            Start::Aborted => "aborted",
        }
    }
}

/// The end of a job.
#[derive(Debug, Clone)]
pub struct Completed {
    /// What the activation produced; `init_time` is set when this job initialised the container.
    pub outcome: Outcome,
    /// How the job got its container.
    pub start: Start,
}

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

/// What one attempt to run a job on a placement ended in.
enum Attempt {
    Done(Completed),
    /// The container went away under the job (resume failed): schedule it again.
    Again,
    /// The container refused the job ([`Outcome::needs_reschedule`]; it is being destroyed):
    /// schedule it again unless [`MAX_RESCHEDULES`] are spent, then this is the job's end.
    Reschedule(Completed),
}

/// Holds one placed activation's capacity; releases it when finished or dropped (a cancelled job
/// never leaks capacity; its container is then destroyed, since its state is unknown).
struct ActiveGuard {
    inner: Arc<Inner>,
    id: u64,
    activation_mb: u64,
    done: bool,
}

impl ActiveGuard {
    fn finish(mut self, keep: bool) {
        self.done = true;
        self.inner.finish(self.id, self.activation_mb, keep);
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if !self.done {
            self.inner.finish(self.id, self.activation_mb, false);
        }
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

    async fn run(self: Arc<Self>, job: Job) -> Completed {
        let action = &job.action;
        let Some(factory) = self.factory_for(&action.kind) else {
            warn!(kind = %action.kind, "no factory runs this kind");
            return not_started(messages::RESOURCE_ERROR);
        };
        let memory_mb = action.limits.memory;
        if u64::from(memory_mb) > self.config.user_memory_mb {
            warn!(
                memory_mb,
                user_memory_mb = self.config.user_memory_mb,
                "action does not fit in the pool"
            );
            return not_started(messages::RESOURCE_ERROR);
        }
        let needs = Needs {
            factory,
            accounting: self.factories[factory].accounting,
            key: WarmKey {
                namespace: job.namespace.clone(),
                path: action.path(),
                revision: action.revision.clone(),
                version: action.version.clone(),
                kind: action.kind.clone(),
                memory_mb,
            },
            concurrency: action.limits.concurrency.max(1),
        };
        let mut reschedules = 0;
        loop {
            let placement = match self.place_or_wait(&needs) {
                Ok(placement) => placement,
                Err(Some(rx)) => match rx.await {
                    Ok(placement) => placement,
                    Err(_) => return not_started(messages::RESOURCE_ERROR),
                },
                Err(None) => return not_started(messages::RESOURCE_ERROR),
            };
            match self.clone().attempt(&job, &needs, placement).await {
                Attempt::Done(completed) => return completed,
                Attempt::Again => continue,
                Attempt::Reschedule(completed) => {
                    if reschedules >= MAX_RESCHEDULES {
                        warn!(
                            reschedules,
                            "container refused the job again: giving up rescheduling"
                        );
                        return completed;
                    }
                    reschedules += 1;
                    self.lock().counters.reschedules += 1;
                    info!(
                        reschedules,
                        "container refused the job: destroying it and scheduling the job again"
                    );
                }
            }
        }
    }

    /// Places the job now, or queues it (`Err(Some(receiver))`), or refuses it because the pool is
    /// closed (`Err(None)`).
    fn place_or_wait(
        self: &Arc<Self>,
        needs: &Needs,
    ) -> Result<Placement, Option<oneshot::Receiver<Placement>>> {
        let now = self.clock.now();
        let mut effects = Vec::new();
        let result = {
            let mut state = self.lock();
            if state.closed {
                Err(None)
            } else if !state.buffer.is_empty() {
                // Others wait already: queue behind them to keep arrival order.
                Err(Some(enqueue(&mut state, needs)))
            } else {
                match state.place(needs, now, &mut effects) {
                    Place::Placed(placement) => Ok(placement),
                    Place::Full => Err(Some(enqueue(&mut state, needs))),
                }
            }
        };
        if matches!(result, Err(Some(_))) {
            debug!("pool full: job buffered");
        }
        self.apply(effects);
        result
    }

    async fn attempt(self: Arc<Self>, job: &Job, needs: &Needs, placement: Placement) -> Attempt {
        let cell = placement.cell.clone();
        let guard = ActiveGuard {
            inner: self.clone(),
            id: cell.id,
            activation_mb: placement.activation_mb,
            done: false,
        };
        let entry = &self.factories[needs.factory];

        // The container: created by this job (cold) or by whoever got there first.
        let mut did_create = false;
        let created = cell
            .container
            .get_or_init(|| async {
                did_create = true;
                let spec = ContainerSpec {
                    kind: job.action.kind.clone(),
                    image: job.action.image.clone(),
                    memory_mb: job.action.limits.memory,
                    purpose: Purpose::Cold {
                        namespace: job.namespace.clone(),
                        action: job.action.name.clone(),
                    },
                };
                entry.factory.create(spec).await.map_err(|error| {
                    warn!(%error, factory = entry.factory.name(), "container creation failed");
                    Box::new(error.to_outcome())
                })
            })
            .await;
        let container = match created {
            Ok(container) => container.clone(),
            Err(outcome) => {
                guard.finish(false);
                return Attempt::Done(if did_create {
                    Completed {
                        outcome: (**outcome).clone(),
                        start: Start::NotStarted,
                    }
                } else {
                    Completed {
                        outcome: Outcome::instant_error(Status::WhiskError, messages::ABNORMAL_RUN),
                        start: Start::Aborted,
                    }
                });
            }
        };
        if did_create {
            let mut state = self.lock();
            if let Some(slot) = state.slots.get_mut(&cell.id) {
                slot.can_pause = container.can_pause();
                slot.max_concurrency = match needs.accounting {
                    Accounting::PerActivation => container.max_concurrency().max(1),
                    Accounting::PerContainer => {
                        needs.concurrency.min(container.max_concurrency()).max(1)
                    }
                };
                if slot.phase == Phase::Starting {
                    slot.phase = Phase::Ready;
                }
            }
        }

        if placement.resume {
            match container.resume().await {
                Ok(()) => {
                    let mut state = self.lock();
                    if let Some(slot) = state.slots.get_mut(&cell.id)
                        && slot.phase == Phase::Resuming
                    {
                        slot.phase = Phase::Ready;
                    }
                }
                Err(error) => {
                    warn!(%error, container = container.id(), "resume failed: destroying it and scheduling the job again");
                    guard.finish(false);
                    return Attempt::Again;
                }
            }
        }

        // The init: done once per container, by the first job that gets here.
        let mut did_init = false;
        let initialised = cell
            .init
            .get_or_init(|| async {
                did_init = true;
                let init = InitRequest {
                    name: job.action.name.clone(),
                    main: job.action.main.clone(),
                    code: job.action.code.clone(),
                    env: job.init_env.clone(),
                    context: job.run.context.clone(),
                    limits: job.run.limits,
                };
                container.init(init).await
            })
            .await
            .clone();
        let init_done = match initialised {
            Ok(done) => done,
            Err(outcome) => {
                guard.finish(false);
                let start = if did_init {
                    placement.start
                } else {
                    Start::Aborted
                };
                let completed = Completed {
                    outcome: *outcome,
                    start,
                };
                // Jobs that waited on a refused init go elsewhere too.
                return if completed.outcome.needs_reschedule() {
                    Attempt::Reschedule(completed)
                } else {
                    Attempt::Done(completed)
                };
            }
        };

        let mut outcome = container.run(job.run.clone()).await;
        if did_init && outcome.init_time.is_none() {
            outcome.init_time = Some(init_done.duration());
        }
        if !did_init {
            // Only the job that initialised the container reports an init time.
            outcome.init_time = None;
        }
        let start = if did_init || did_create {
            placement.start
        } else {
            Start::Warm
        };
        if outcome.needs_reschedule() {
            guard.finish(false);
            return Attempt::Reschedule(Completed { outcome, start });
        }
        let logs_failed = factory::logs::collection_failed(&outcome.logs);
        let keep = outcome.status.keeps_container() && !logs_failed;
        if logs_failed {
            self.lock().counters.log_failure_removals += 1;
            debug!(
                status = outcome.status.code(),
                container = container.id(),
                "destroying the container after its logs could not be collected"
            );
        } else if !keep {
            debug!(
                status = outcome.status.code(),
                container = container.id(),
                "destroying the container after a failed run"
            );
        }
        guard.finish(keep);
        Attempt::Done(Completed { outcome, start })
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

    async fn create_prewarm(
        self: Arc<Self>,
        cell: Arc<state::SlotCell>,
        factory: usize,
        kind: String,
        memory_mb: u32,
    ) {
        let entry = &self.factories[factory];
        let spec = ContainerSpec {
            kind: kind.clone(),
            image: None,
            memory_mb,
            purpose: Purpose::Prewarm,
        };
        let created = cell
            .container
            .get_or_init(|| async {
                entry.factory.create(spec).await.map_err(|error| {
                    warn!(%error, %kind, memory_mb, "prewarm creation failed");
                    Box::new(error.to_outcome())
                })
            })
            .await;
        let now = self.clock.now();
        let mut effects = Vec::new();
        {
            let mut state = self.lock();
            let still_booked = state.slots.contains_key(&cell.id);
            match created {
                Ok(container) if still_booked => {
                    let slot = state
                        .slots
                        .get_mut(&cell.id)
                        .expect("presence checked just above");
                    slot.can_pause = container.can_pause();
                    slot.max_concurrency = container.max_concurrency().max(1);
                    slot.phase = Phase::Prewarmed;
                    slot.created = now;
                    slot.last_used = now;
                    info!(container = container.id(), %kind, memory_mb, "prewarm ready");
                    state.drain_buffer(now, &mut effects);
                }
                Ok(_) => {
                    // Removed while being created (shutdown): its destroy task waited for the
                    // creation and destroys it.
                }
                Err(_) => {
                    // No retry until the next top-up, so that a broken runtime is not hammered.
                    if let Some(slot) = state.slots.remove(&cell.id) {
                        state.reserved_mb = state.reserved_mb.saturating_sub(slot.holds_mb);
                    }
                    state.drain_buffer(now, &mut effects);
                }
            }
        }
        self.apply(effects);
    }

    fn spawn_ticker(self: &Arc<Self>) {
        let weak: Weak<Inner> = Arc::downgrade(self);
        let cancel = self.cancel.clone();
        let clock = self.clock.clone();
        let interval = self.config.housekeeping_interval;
        self.tasks.spawn(async move {
            let mut last_prewarm_check = clock.now();
            let mut last_health_check = clock.now();
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = clock.sleep(interval) => {}
                }
                let Some(inner) = weak.upgrade() else { break };
                let now = inner.clock.now();
                inner.housekeep_timers(now);
                if now.duration_since(last_prewarm_check) >= inner.config.prewarm_check_interval {
                    last_prewarm_check = now;
                    inner.check_prewarms(now);
                }
                if let Some(health) = inner.config.health_check
                    && now.duration_since(last_health_check) >= health.period
                {
                    last_health_check = now;
                    inner.clone().health_checks(health).await;
                }
                inner.pause_due().await;
            }
        });
    }

    async fn housekeep(self: &Arc<Self>) {
        let now = self.clock.now();
        self.housekeep_timers(now);
        self.check_prewarms(now);
        if let Some(health) = self.config.health_check {
            self.clone().health_checks(health).await;
        }
        self.pause_due().await;
    }

    /// Removes containers idle for too long (the pauses happen in [`Inner::pause_due`]).
    fn housekeep_timers(self: &Arc<Self>, now: Instant) {
        let grace = self.config.pause_grace;
        let idle = self.config.idle_timeout;
        let mut effects = Vec::new();
        {
            let mut state = self.lock();
            let expired: Vec<u64> = state
                .slots
                .values()
                .filter(|slot| slot.key.is_some() && slot.active == 0)
                .filter(|slot| {
                    let idle_for = now.saturating_duration_since(slot.last_used);
                    match slot.phase {
                        Phase::Paused => idle_for >= grace + idle,
                        Phase::Ready => !slot.can_pause && idle_for >= idle,
                        _ => false,
                    }
                })
                .map(|slot| slot.cell.id)
                .collect();
            for id in expired {
                if state.remove_slot(id, &mut effects).is_some() {
                    state.counters.idle_removals += 1;
                }
            }
            state.drain_buffer(now, &mut effects);
        }
        self.apply(effects);
    }

    /// Pauses idle containers whose pause grace is over and waits for the pauses.
    async fn pause_due(self: &Arc<Self>) {
        let now = self.clock.now();
        let grace = self.config.pause_grace;
        let due: Vec<Arc<state::SlotCell>> = {
            let mut state = self.lock();
            let mut due = Vec::new();
            for slot in state.slots.values_mut() {
                if slot.phase == Phase::Ready
                    && slot.key.is_some()
                    && slot.active == 0
                    && slot.can_pause
                    && now.saturating_duration_since(slot.last_used) >= grace
                {
                    slot.phase = Phase::Pausing;
                    due.push(slot.cell.clone());
                }
            }
            due
        };
        let pauses = due.into_iter().map(|cell| async move {
            let result = match cell.created() {
                Some(container) => container.pause().await.map_err(|error| error.to_string()),
                None => Err("container missing".to_string()),
            };
            (cell, result)
        });
        let results = futures::future::join_all(pauses).await;
        let now = self.clock.now();
        let mut effects = Vec::new();
        {
            let mut state = self.lock();
            for (cell, result) in results {
                match result {
                    Ok(()) => {
                        if let Some(slot) = state.slots.get_mut(&cell.id)
                            && slot.phase == Phase::Pausing
                        {
                            slot.phase = Phase::Paused;
                            state.counters.pauses += 1;
                        }
                    }
                    Err(error) => {
                        warn!(%error, "pause failed: removing the container");
                        state.remove_slot(cell.id, &mut effects);
                    }
                }
            }
            state.drain_buffer(now, &mut effects);
        }
        self.apply(effects);
    }

    /// Expires reactive prewarms older than their ttl, recomputes how many to keep from the cold
    /// starts since the last check, and tops up.
    fn check_prewarms(self: &Arc<Self>, now: Instant) {
        let mut effects = Vec::new();
        {
            let mut state = self.lock();
            let mut expired = Vec::new();
            for (index, prewarm) in state.prewarms.iter().enumerate() {
                if let Some(reactive) = &prewarm.cell.reactive {
                    expired.extend(
                        state
                            .slots
                            .values()
                            .filter(|slot| {
                                slot.phase == Phase::Prewarmed
                                    && slot.key.is_none()
                                    && slot.prewarm_cell == Some(index)
                                    && now.saturating_duration_since(slot.created) >= reactive.ttl
                            })
                            .map(|slot| slot.cell.id),
                    );
                }
            }
            expired.truncate(PREWARM_EXPIRATION_LIMIT);
            for id in expired {
                state.remove_slot(id, &mut effects);
            }
            for prewarm in &mut state.prewarms {
                if let Some(reactive) = &prewarm.cell.reactive {
                    let wanted = (prewarm.cold_starts / reactive.threshold.max(1))
                        .saturating_mul(reactive.increment);
                    prewarm.desired = wanted.max(reactive.min_count).min(reactive.max_count);
                    prewarm.cold_starts = 0;
                }
            }
            state.top_up_prewarms(now, &mut effects);
        }
        self.apply(effects);
    }

    /// Probes idle and prewarmed containers and replaces those that failed too often.
    async fn health_checks(self: Arc<Self>, health: HealthCheckConfig) {
        let probes: Vec<Arc<state::SlotCell>> = {
            let state = self.lock();
            state
                .slots
                .values()
                .filter(|slot| {
                    slot.active == 0 && matches!(slot.phase, Phase::Ready | Phase::Prewarmed)
                })
                .map(|slot| slot.cell.clone())
                .collect()
        };
        let checks = probes.into_iter().map(|cell| async move {
            let status = match cell.created() {
                Some(container) => container.health().await,
                None => Health::Healthy,
            };
            (cell, status)
        });
        let results = futures::future::join_all(checks).await;
        let now = self.clock.now();
        let mut effects = Vec::new();
        {
            let mut state = self.lock();
            let mut replaced_prewarm = false;
            for (cell, status) in results {
                let Some(slot) = state.slots.get_mut(&cell.id) else {
                    continue;
                };
                match status {
                    Health::Healthy => slot.health_fails = 0,
                    Health::Unhealthy(reason) => {
                        slot.health_fails += 1;
                        warn!(%reason, fails = slot.health_fails, "container health check failed");
                        let idle = slot.active == 0
                            && matches!(slot.phase, Phase::Ready | Phase::Prewarmed);
                        if slot.health_fails >= health.max_fails && idle {
                            replaced_prewarm |= slot.key.is_none();
                            state.remove_slot(cell.id, &mut effects);
                            state.counters.health_removals += 1;
                        }
                    }
                }
            }
            if replaced_prewarm {
                state.top_up_prewarms(now, &mut effects);
            }
            state.drain_buffer(now, &mut effects);
        }
        self.apply(effects);
    }
}

fn enqueue(state: &mut State, needs: &Needs) -> oneshot::Receiver<Placement> {
    let (tx, rx) = oneshot::channel();
    state.buffer.push_back(state::Waiting {
        needs: needs.clone(),
        tx,
    });
    state.counters.buffered += 1;
    rx
}

fn not_started(message: &str) -> Completed {
    Completed {
        outcome: Outcome::instant_error(Status::WhiskError, message),
        start: Start::NotStarted,
    }
}

#[cfg(test)]
mod tests {
    //! The reschedule bound, with a test-only factory whose containers refuse (as a runtime
    //! answering 503 does) a set number of inits or runs, then work as the identity function. It
    //! tests the pool's handling of the factory's signal, not a runtime; the real Docker path is in
    //! `tests/pool_docker.rs`.

    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::SystemTime;

    use async_trait::async_trait;
    use factory::{ActivationContext, Container, FactoryError, InitDone, Limits};
    use serde_json::json;

    use super::*;
    use crate::clock::SystemClock;

    /// Which call of a container refuses.
    #[derive(Debug, Clone, Copy)]
    enum Refuse {
        Init,
        Run,
    }

    #[derive(Debug)]
    struct Refusing {
        refuse: Refuse,
        /// How many containers refuse before the rest work.
        refusals: AtomicU32,
        created: AtomicU32,
        destroyed: Arc<AtomicU32>,
    }

    #[derive(Debug)]
    struct RefusingContainer {
        id: String,
        refuse: Option<Refuse>,
        destroyed: Arc<AtomicU32>,
    }

    #[async_trait]
    impl Container for RefusingContainer {
        fn id(&self) -> &str {
            &self.id
        }

        fn max_concurrency(&self) -> u32 {
            1
        }

        async fn init(&self, _init: InitRequest) -> Result<InitDone, Box<Outcome>> {
            let now = SystemTime::now();
            match self.refuse {
                Some(Refuse::Init) => Err(Box::new(Outcome::reschedule(now, now))),
                _ => Ok(InitDone {
                    start: now,
                    end: now,
                }),
            }
        }

        async fn run(&self, run: RunRequest) -> Outcome {
            let now = SystemTime::now();
            match self.refuse {
                Some(Refuse::Run) => Outcome::reschedule(now, now),
                _ => Outcome {
                    status: Status::Success,
                    result: Some(run.params),
                    size: None,
                    logs: Vec::new(),
                    start: now,
                    end: now,
                    init_time: None,
                    timed_out: false,
                    fuel: None,
                },
            }
        }

        async fn destroy(&self) -> Result<(), FactoryError> {
            self.destroyed.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }

        async fn health(&self) -> Health {
            Health::Healthy
        }
    }

    #[async_trait]
    impl Factory for Refusing {
        fn name(&self) -> &'static str {
            "refusing"
        }

        fn supports(&self, kind: &str) -> bool {
            kind == "test:refusing"
        }

        async fn create(&self, _spec: ContainerSpec) -> Result<Arc<dyn Container>, FactoryError> {
            let n = self.created.fetch_add(1, Ordering::SeqCst);
            let refuses = self
                .refusals
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(1)
                })
                .is_ok();
            Ok(Arc::new(RefusingContainer {
                id: format!("refusing-{n}"),
                refuse: refuses.then_some(self.refuse),
                destroyed: self.destroyed.clone(),
            }))
        }

        async fn health(&self) -> Health {
            Health::Healthy
        }
    }

    fn job() -> Job {
        let action = Arc::new(ExecutableAction {
            namespace: "guest".into(),
            name: "refused".into(),
            revision: Some("1-abc".into()),
            version: "0.0.1".into(),
            kind: "test:refusing".into(),
            image: None,
            code: None,
            main: None,
            limits: Limits::default(),
            provide_api_key: false,
            parameters: serde_json::Map::new(),
            init_parameters: Vec::new(),
            annotations: Vec::new(),
            executable: true,
        });
        Job {
            namespace: "guest".into(),
            run: RunRequest {
                params: json!({"n": 1}),
                context: ActivationContext {
                    activation_id: "0123456789abcdef0123456789abcdef".into(),
                    namespace: "guest".into(),
                    action_name: action.action_name(),
                    action_version: Some("0.0.1".into()),
                    transaction_id: "tid".into(),
                    api_key: None,
                    deadline: SystemTime::now() + Duration::from_secs(60),
                },
                limits: action.limits,
            },
            init_env: BTreeMap::new(),
            action,
        }
    }

    /// Runs one job on a pool whose first `refusals` containers refuse `refuse`; returns what it
    /// ended in, the containers created and the pool's reschedule count.
    async fn refused(refuse: Refuse, refusals: u32) -> (Completed, u32, u64) {
        let factory = Arc::new(Refusing {
            refuse,
            refusals: AtomicU32::new(refusals),
            created: AtomicU32::new(0),
            destroyed: Arc::new(AtomicU32::new(0)),
        });
        let config = PoolConfig {
            health_check: None,
            ..PoolConfig::default()
        };
        let pool = Pool::start(
            config,
            vec![PoolFactory::containers(factory.clone())],
            Arc::new(SystemClock),
        )
        .await
        .expect("pool");
        let completed = tokio::time::timeout(Duration::from_secs(10), pool.run(job()))
            .await
            .expect("the job ends");
        let reschedules = pool.stats().counters.reschedules;
        pool.shutdown(Duration::from_secs(1)).await;
        // Every container the pool made is destroyed, the refusing ones at once.
        assert_eq!(
            factory.destroyed.load(Ordering::SeqCst),
            factory.created.load(Ordering::SeqCst)
        );
        (
            completed,
            factory.created.load(Ordering::SeqCst),
            reschedules,
        )
    }

    #[tokio::test]
    async fn test_refused_jobs_are_rescheduled_up_to_the_bound() {
        for refuse in [Refuse::Init, Refuse::Run] {
            // Obeyed: three refusals, the fourth container runs the job.
            let (completed, created, reschedules) = refused(refuse, MAX_RESCHEDULES).await;
            assert_eq!(completed.outcome.status, Status::Success, "{refuse:?}");
            assert_eq!(completed.outcome.result, Some(json!({"n": 1})));
            assert_eq!(completed.start, Start::Cold);
            assert_eq!(created, MAX_RESCHEDULES + 1);
            assert_eq!(reschedules, u64::from(MAX_RESCHEDULES));

            // Violated: one refusal more and the whisk error stands.
            let (completed, created, reschedules) = refused(refuse, MAX_RESCHEDULES + 1).await;
            assert_eq!(completed.outcome.status, Status::WhiskError, "{refuse:?}");
            assert_eq!(
                completed.outcome.result,
                Some(json!({"error": messages::RESCHEDULE}))
            );
            assert!(completed.outcome.needs_reschedule());
            assert_eq!(created, MAX_RESCHEDULES + 1);
            assert_eq!(reschedules, u64::from(MAX_RESCHEDULES));
        }
    }
}
