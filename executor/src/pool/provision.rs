//! Containers created ahead of their first activation ([`Pool::provision`]): what OpenWhisk's
//! scheduler-mode invoker does when a container creation order arrives, acking the order once the
//! container exists and before any `/init`.
//!
//! A provisioned container is a prewarm of no stem cell: created, not initialised, keyed by kind,
//! memory and (for a blackbox action) image, and taken by the next job that matches as a prewarm is.
//! It holds memory as any container of its factory does, is health-checked as prewarms are, and is
//! removed [`PoolConfig::idle_timeout`](super::PoolConfig::idle_timeout) after its creation when no
//! job took it. It is never topped up and does not count towards a stem cell's prewarms.

use std::sync::Arc;

use factory::{ContainerSpec, FactoryError, Purpose, Status};
use thiserror::Error;
use tracing::{info, warn};

use super::state::{Needs, Phase, SlotCell, WarmKey};
use super::{Inner, Pool};
use crate::action::ExecutableAction;

/// Why a container could not be provisioned.
#[derive(Debug, Error)]
pub enum ProvisionError {
    /// No factory of the pool runs the action's kind.
    #[error("no factory runs kind '{kind}'")]
    NoFactory {
        /// The action's kind.
        kind: String,
    },
    /// The container does not fit: the action is larger than the pool, or not enough memory is
    /// free even after evicting every idle warm container, or jobs are waiting for memory already.
    #[error(
        "not enough memory for a {needed_mb} MB container: {free_mb} of {user_memory_mb} MB free after evicting idle containers, {waiting} jobs waiting for memory"
    )]
    NotEnoughMemory {
        /// Memory the container needs (MB).
        needed_mb: u64,
        /// Memory free when it was refused (MB).
        free_mb: u64,
        /// The pool's capacity (MB).
        user_memory_mb: u64,
        /// Jobs waiting in the buffer.
        waiting: usize,
    },
    /// The factory could not create the container; [`ProvisionError::status`] says whose fault
    /// that is.
    #[error("the {factory} factory could not create the container: {source}")]
    Create {
        /// The factory's name.
        factory: &'static str,
        /// The factory's typed error ([`FactoryError::BlackboxStart`] when the action's image cannot
        /// be pulled or started).
        #[source]
        source: FactoryError,
    },
    /// The pool is shutting down (or shut down while the container was being created).
    #[error("the pool is shutting down")]
    Closed,
}

impl ProvisionError {
    /// The status an activation would get for this failure: [`Status::DeveloperError`] when the
    /// factory blamed the action (a blackbox image that cannot be pulled or started: OpenWhisk's
    /// `BlackBoxError`), else [`Status::WhiskError`] (OpenWhisk's `WhiskError`).
    pub fn status(&self) -> Status {
        match self {
            ProvisionError::Create { source, .. } => source.status(),
            _ => Status::WhiskError,
        }
    }
}

impl Pool {
    /// Creates one container able to serve `action` (its kind, memory and, for a blackbox action,
    /// image) without running an activation, and returns once it exists. The next [`Pool::run`] of
    /// an action of the same kind, memory and image takes it as [`Start::Prewarmed`](super::Start::Prewarmed):
    /// it initialises it, with no cold start. For the scheduler-mode invoker's container creation
    /// orders, acked after the container exists and before `/init`.
    ///
    /// The container holds memory as any of its factory's containers does (a Docker container its
    /// action's memory, an in-process one none); idle warm containers are evicted to make room as
    /// for a cold start. Unused, it is removed after [`PoolConfig::idle_timeout`](super::PoolConfig::idle_timeout).
    /// Cancelling the call does not cancel the creation: the container is booked all the same.
    pub async fn provision(&self, action: &ExecutableAction) -> Result<(), ProvisionError> {
        self.inner.clone().provision(action).await
    }
}

impl Inner {
    async fn provision(self: Arc<Self>, action: &ExecutableAction) -> Result<(), ProvisionError> {
        let Some(factory) = self.factory_for(&action.kind) else {
            return Err(ProvisionError::NoFactory {
                kind: action.kind.clone(),
            });
        };
        let needs = Needs {
            factory,
            accounting: self.factories[factory].accounting,
            key: WarmKey {
                namespace: String::new(),
                path: String::new(),
                revision: None,
                version: String::new(),
                kind: action.kind.clone(),
                memory_mb: action.limits.memory,
            },
            image: action.image.clone(),
            concurrency: 1,
        };
        let now = self.clock.now();
        let mut effects = Vec::new();
        let booked = self.lock().provision(&needs, now, &mut effects);
        // The evictions, if any, whether or not they made enough room.
        self.apply(effects);
        let cell = booked?;
        let spec = ContainerSpec {
            kind: needs.key.kind,
            image: needs.image,
            memory_mb: needs.key.memory_mb,
            purpose: Purpose::Prewarm,
        };
        // In a task of the pool, so that a caller that goes away does not leave a slot `Starting`
        // forever.
        let inner = self.clone();
        let creation = self
            .tasks
            .spawn(async move { inner.create_provisioned(cell, factory, spec).await });
        creation.await.unwrap_or(Err(ProvisionError::Closed))
    }

    /// Creates the booked container and books it as a prewarm, or frees its place.
    async fn create_provisioned(
        self: Arc<Self>,
        cell: Arc<SlotCell>,
        factory: usize,
        spec: ContainerSpec,
    ) -> Result<(), ProvisionError> {
        let entry = &self.factories[factory];
        let (kind, memory_mb) = (spec.kind.clone(), spec.memory_mb);
        let mut failure = None;
        let created = cell
            .container
            .get_or_init(|| async {
                entry.factory.create(spec).await.map_err(|error| {
                    warn!(%error, %kind, memory_mb, "provisioning a container failed");
                    let outcome = Box::new(error.to_outcome());
                    failure = Some(error);
                    outcome
                })
            })
            .await;
        let now = self.clock.now();
        let mut effects = Vec::new();
        let result = {
            let mut guard = self.lock();
            let state = &mut *guard;
            let result = match created {
                Ok(container) => match state.slots.get_mut(&cell.id) {
                    Some(slot) => {
                        slot.can_pause = container.can_pause();
                        slot.max_concurrency = container.max_concurrency().max(1);
                        slot.phase = Phase::Prewarmed;
                        slot.created = now;
                        slot.last_used = now;
                        state.counters.provisions += 1;
                        info!(container = container.id(), %kind, memory_mb, "container provisioned");
                        Ok(())
                    }
                    // Removed while being created (shutdown): its destroy task waited for the
                    // creation and destroys it.
                    None => Err(ProvisionError::Closed),
                },
                Err(_) => {
                    // Nothing was created, so nothing to destroy: only the memory is given back.
                    if let Some(slot) = state.slots.remove(&cell.id) {
                        state.reserved_mb = state.reserved_mb.saturating_sub(slot.holds_mb);
                    }
                    Err(match failure {
                        Some(source) => ProvisionError::Create {
                            factory: entry.factory.name(),
                            source,
                        },
                        // A destroy (shutdown) got to the container first.
                        None => ProvisionError::Closed,
                    })
                }
            };
            state.drain_buffer(now, &mut effects);
            result
        };
        self.apply(effects);
        result
    }
}

#[cfg(test)]
mod tests {
    //! Provisioning with the test-only factory of [`crate::pool::testing`]: its containers do
    //! nothing, the pool's books and starts are looked at. The real wasm factory is in
    //! `tests/pool.rs`, the real Docker factory in `tests/pool_docker.rs`.

    use std::sync::Arc;
    use std::time::Duration;

    use factory::{FactoryError, ReactivePrewarm, Status, StemCell};

    use super::ProvisionError;
    use crate::action::ExecutableAction;
    use crate::clock::{ManualClock, SystemClock};
    use crate::pool::testing::{CreateFailure, TestFactory, job};
    use crate::pool::{Job, Pool, PoolConfig, PoolFactory, Start};

    const BOUND: Duration = Duration::from_secs(10);

    async fn pool_of(
        factory: Arc<TestFactory>,
        config: PoolConfig,
        clock: Arc<ManualClock>,
    ) -> Pool {
        Pool::start(config, vec![PoolFactory::containers(factory)], clock)
            .await
            .expect("pool")
    }

    fn config() -> PoolConfig {
        PoolConfig {
            health_check: None,
            ..PoolConfig::default()
        }
    }

    /// A pool whose user memory holds one [`job`]'s action and no more, on a factory without stem
    /// cells; with that memory, in MB.
    async fn pool_with_room_for_one_job() -> (Arc<TestFactory>, Pool, u64) {
        let factory = Arc::new(TestFactory::with_stem_cells(Vec::new()));
        let memory = u64::from(job().action.limits.memory);
        let config = PoolConfig {
            user_memory_mb: memory,
            ..config()
        };
        let pool = pool_of(factory.clone(), config, ManualClock::new()).await;
        (factory, pool, memory)
    }

    async fn shutdown(pool: &Pool) {
        tokio::time::timeout(BOUND, pool.shutdown(Duration::from_secs(1)))
            .await
            .expect("shutdown ends");
    }

    /// A job whose action is a blackbox of `image` (still the test kind), named after the image
    /// so that jobs of two images never share a warm container.
    fn job_of_image(image: &str) -> Job {
        let mut job = job();
        let mut action = (*job.action).clone();
        action.image = Some(image.into());
        action.name = image.replace(['/', ':'], "-");
        job.action = Arc::new(action);
        job
    }

    async fn run(pool: &Pool, job: Job) -> Start {
        let completed = tokio::time::timeout(BOUND, pool.run(job))
            .await
            .expect("the job ends");
        assert_eq!(completed.outcome.status, Status::Success);
        completed.start
    }

    #[tokio::test]
    async fn test_provisioned_container_is_taken_by_the_next_run_as_a_prewarm() {
        let factory = Arc::new(TestFactory::with_stem_cells(Vec::new()));
        let pool = pool_of(factory.clone(), config(), ManualClock::new()).await;
        let action = job().action;

        tokio::time::timeout(BOUND, pool.provision(&action))
            .await
            .expect("provision ends")
            .expect("provisioned");
        let stats = pool.stats();
        assert_eq!((stats.prewarmed, stats.starting), (1, 0));
        assert_eq!(stats.reserved_mb, u64::from(action.limits.memory));
        assert_eq!(stats.counters.provisions, 1);
        assert_eq!(factory.created(), 1);

        assert_eq!(run(&pool, job()).await, Start::Prewarmed);
        let stats = pool.stats();
        assert_eq!((stats.prewarmed, stats.warm), (0, 1));
        assert_eq!(stats.counters.cold_starts, 0);
        // Taken, not replaced: a provisioned container is no stem cell.
        assert_eq!(factory.created(), 1);
        assert_eq!(stats.reserved_mb, u64::from(action.limits.memory));
        shutdown(&pool).await;
    }

    #[tokio::test]
    async fn test_provisioned_blackbox_serves_its_image_only() {
        let factory = Arc::new(TestFactory::with_stem_cells(Vec::new()));
        let pool = pool_of(factory.clone(), config(), ManualClock::new()).await;
        let blackbox = job_of_image("example/one:1");
        pool.provision(&blackbox.action).await.expect("provisioned");

        // Another image (or none) does not take it.
        assert_eq!(run(&pool, job_of_image("example/two:1")).await, Start::Cold);
        assert_eq!(pool.stats().prewarmed, 1);
        // Its own image does.
        assert_eq!(run(&pool, blackbox).await, Start::Prewarmed);
        assert_eq!(pool.stats().prewarmed, 0);
        shutdown(&pool).await;
    }

    #[tokio::test]
    async fn test_provision_without_memory_fails_and_leaves_the_books_unchanged() {
        let (factory, pool, memory) = pool_with_room_for_one_job().await;
        pool.provision(&job().action).await.expect("the first fits");
        let before = pool.stats();

        // The pool is full and nothing is idle to evict.
        let error = pool
            .provision(&job().action)
            .await
            .expect_err("no memory left");
        assert!(
            matches!(
                error,
                ProvisionError::NotEnoughMemory {
                    needed_mb,
                    free_mb: 0,
                    ..
                } if needed_mb == memory
            ),
            "{error:?}"
        );
        assert_eq!(error.status(), Status::WhiskError);
        let after = pool.stats();
        assert_eq!(
            (after.reserved_mb, after.prewarmed, after.starting),
            (before.reserved_mb, before.prewarmed, before.starting)
        );
        assert_eq!(factory.created(), 1);

        // An action larger than the pool is refused the same way, whatever is free.
        let mut big = (*job().action).clone();
        big.limits.memory = u32::try_from(memory).expect("small") * 2;
        let error = pool.provision(&big).await.expect_err("too big");
        assert!(matches!(error, ProvisionError::NotEnoughMemory { .. }));
        shutdown(&pool).await;
    }

    #[tokio::test]
    async fn test_provision_evicts_an_idle_warm_container_as_a_cold_start_does() {
        let (_, pool, memory) = pool_with_room_for_one_job().await;
        assert_eq!(run(&pool, job()).await, Start::Cold);
        assert_eq!(pool.stats().warm, 1);

        pool.provision(&job_of_image("example/one:1").action)
            .await
            .expect("room made by eviction");
        let stats = pool.stats();
        assert_eq!((stats.warm, stats.prewarmed), (0, 1));
        assert_eq!(stats.counters.evictions, 1);
        assert_eq!(stats.reserved_mb, memory);
        shutdown(&pool).await;
    }

    #[tokio::test]
    async fn test_failed_creation_carries_the_factorys_typed_error() {
        for (failure, status) in [
            (CreateFailure::Blackbox, Status::DeveloperError),
            (CreateFailure::Provision, Status::WhiskError),
        ] {
            let factory = Arc::new(TestFactory::failing_creates(failure));
            let pool = pool_of(factory.clone(), config(), ManualClock::new()).await;
            let error = tokio::time::timeout(BOUND, pool.provision(&job().action))
                .await
                .expect("provision ends")
                .expect_err("creation fails");
            match (&error, failure) {
                (
                    ProvisionError::Create {
                        factory: "test",
                        source: FactoryError::BlackboxStart { .. },
                    },
                    CreateFailure::Blackbox,
                )
                | (
                    ProvisionError::Create {
                        factory: "test",
                        source: FactoryError::Provision { .. },
                    },
                    CreateFailure::Provision,
                ) => {}
                _ => panic!("{failure:?} gave {error:?}"),
            }
            assert_eq!(error.status(), status);
            let stats = pool.stats();
            assert_eq!(
                (stats.reserved_mb, stats.prewarmed, stats.starting),
                (0, 0, 0)
            );
            assert_eq!(stats.counters.provisions, 0);
            shutdown(&pool).await;
            // Nothing was created, so nothing was destroyed.
            assert_eq!(factory.destroyed(), 0);
        }
    }

    #[tokio::test]
    async fn test_unknown_kind_and_closed_pool_are_refused() {
        let factory = Arc::new(TestFactory::with_stem_cells(Vec::new()));
        let pool = Pool::start(
            config(),
            vec![PoolFactory::containers(factory.clone())],
            Arc::new(SystemClock),
        )
        .await
        .expect("pool");
        let mut other: ExecutableAction = (*job().action).clone();
        other.kind = "nodejs:20".into();
        let error = pool.provision(&other).await.expect_err("no factory");
        assert!(
            matches!(&error, ProvisionError::NoFactory { kind } if kind == "nodejs:20"),
            "{error:?}"
        );
        shutdown(&pool).await;
        let error = pool.provision(&job().action).await.expect_err("closed");
        assert!(matches!(error, ProvisionError::Closed), "{error:?}");
        assert_eq!(factory.created(), 0);
    }

    #[tokio::test]
    async fn test_unused_provisioned_container_expires_after_the_idle_timeout() {
        let factory = Arc::new(TestFactory::with_stem_cells(Vec::new()));
        let clock = ManualClock::new();
        let pool = pool_of(factory.clone(), config(), clock.clone()).await;
        pool.provision(&job().action).await.expect("provisioned");

        clock.advance(config().idle_timeout - Duration::from_secs(1));
        pool.housekeep().await;
        assert_eq!(pool.stats().prewarmed, 1);

        clock.advance(Duration::from_secs(1));
        pool.housekeep().await;
        let stats = pool.stats();
        assert_eq!((stats.prewarmed, stats.reserved_mb), (0, 0));
        assert_eq!(stats.counters.provision_expiries, 1);
        crate::pool::testing::until("the destroy", || factory.destroyed() == 1).await;
        // Not replaced.
        assert_eq!(factory.created(), 1);
        shutdown(&pool).await;
    }

    #[tokio::test]
    async fn test_stem_cells_keep_their_count_beside_a_provisioned_container() {
        let stem_cell = StemCell {
            kind: crate::pool::testing::TestFactory::KIND.into(),
            memory_mb: job().action.limits.memory,
            initial_count: 1,
            reactive: Some(ReactivePrewarm {
                min_count: 1,
                max_count: 1,
                ttl: Duration::from_secs(60),
                threshold: 1,
                increment: 1,
            }),
        };
        let factory = Arc::new(TestFactory::with_stem_cells(vec![stem_cell]));
        let clock = ManualClock::new();
        let pool = pool_of(factory.clone(), config(), clock.clone()).await;
        crate::pool::testing::until("the stem cell", || pool.stats().prewarmed == 1).await;
        pool.provision(&job().action).await.expect("provisioned");
        assert_eq!(pool.stats().prewarmed, 2);
        assert_eq!(factory.created(), 2);

        // The job takes the provisioned one: the stem cell stays, no top-up is needed.
        assert_eq!(run(&pool, job()).await, Start::Prewarmed);
        assert_eq!(pool.stats().prewarmed, 1);
        pool.housekeep().await;
        assert_eq!(pool.stats().prewarmed, 1);
        assert_eq!(factory.created(), 2);

        // A second provisioned one outlives the stem cell's ttl (its own timer is the idle
        // timeout); the expired stem cell is replaced, the provisioned one is not counted for it.
        pool.provision(&job().action).await.expect("provisioned");
        clock.advance(Duration::from_secs(61));
        pool.housekeep().await;
        crate::pool::testing::until("the stem cell's replacement", || {
            pool.stats().prewarmed == 2
        })
        .await;
        assert_eq!(factory.created(), 4);
        assert_eq!(pool.stats().counters.provision_expiries, 0);
        shutdown(&pool).await;
    }
}
