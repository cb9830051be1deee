//! The pool's timers and prewarms, looked at by its ticker (or by [`super::Pool::housekeep`] in
//! tests with a manual clock): pausing idle containers after the pause grace, removing them after
//! the idle timeout, expiring and topping up reactive prewarms, health checks of idle and prewarmed
//! containers. Each decision is taken under the lock; pauses, probes and creations run after it.

use std::sync::{Arc, Weak};
use std::time::Instant;

use factory::{ContainerSpec, Health, Purpose};
use tracing::{info, warn};

use super::Inner;
use super::config::HealthCheckConfig;
use super::state::{Phase, SlotCell};

impl Inner {
    /// Creates one prewarm (the effect of a top-up) and books it as
    /// ready, or frees its place when creation failed.
    pub(super) async fn create_prewarm(
        self: Arc<Self>,
        cell: Arc<SlotCell>,
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

    /// Starts the ticker that looks at the timers every [`PoolConfig::housekeeping_interval`]
    /// (prewarm expiry and health checks at their own, longer periods).
    ///
    /// [`PoolConfig::housekeeping_interval`]: super::PoolConfig::housekeeping_interval
    pub(super) fn spawn_ticker(self: &Arc<Self>) {
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

    /// Every timer at once (what [`super::Pool::housekeep`] does).
    pub(super) async fn housekeep(self: &Arc<Self>) {
        let now = self.clock.now();
        self.housekeep_timers(now);
        self.check_prewarms(now);
        if let Some(health) = self.config.health_check {
            self.clone().health_checks(health).await;
        }
        self.pause_due().await;
    }

    /// Removes containers idle for too long, and provisioned containers unused for as long (the
    /// pauses happen in [`Inner::pause_due`]).
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
            // A provisioned container that no job took is removed like an idle container that
            // cannot pause: `idle_timeout` after it was created (it has no stem cell, so no ttl, and
            // is never topped up).
            let unused: Vec<u64> = state
                .slots
                .values()
                .filter(|slot| {
                    slot.phase == Phase::Prewarmed
                        && slot.provisioned()
                        && now.saturating_duration_since(slot.created) >= idle
                })
                .map(|slot| slot.cell.id)
                .collect();
            for id in unused {
                if state.remove_slot(id, &mut effects).is_some() {
                    state.counters.provision_expiries += 1;
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
        let due: Vec<Arc<SlotCell>> = {
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

    /// Expires reactive prewarms older than their ttl (at most
    /// [`PoolConfig::prewarm_expiration_limit`](super::PoolConfig::prewarm_expiration_limit) of
    /// them, the oldest cells first), recomputes how many to keep from the cold starts since the
    /// last check, and tops up.
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
            expired.truncate(self.config.prewarm_expiration_limit);
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
        let probes: Vec<Arc<SlotCell>> = {
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

#[cfg(test)]
mod tests {
    //! The prewarm expiration limit, with the test-only factory of [`crate::pool::testing`]: its
    //! containers do nothing, only the pool's books are looked at.

    use std::sync::Arc;
    use std::time::Duration;

    use factory::{ReactivePrewarm, StemCell};

    use crate::clock::ManualClock;
    use crate::pool::testing::{TestFactory, until};
    use crate::pool::{Pool, PoolConfig, PoolFactory};

    #[tokio::test]
    async fn test_expiry_removes_at_most_the_limit_per_check() {
        let stem_cell = StemCell {
            kind: TestFactory::KIND.into(),
            memory_mb: 128,
            initial_count: 5,
            reactive: Some(ReactivePrewarm {
                min_count: 0,
                max_count: 5,
                ttl: Duration::from_secs(60),
                threshold: 1,
                increment: 1,
            }),
        };
        let factory = Arc::new(TestFactory::with_stem_cells(vec![stem_cell]));
        let clock = ManualClock::new();
        let config = PoolConfig {
            health_check: None,
            prewarm_expiration_limit: 2,
            ..PoolConfig::default()
        };
        let pool = Pool::start(
            config,
            vec![PoolFactory::containers(factory)],
            clock.clone(),
        )
        .await
        .expect("pool");
        until("five prewarms", || pool.stats().prewarmed == 5).await;

        // Younger than the ttl: none expires.
        clock.advance(Duration::from_secs(59));
        pool.housekeep().await;
        assert_eq!(pool.stats().prewarmed, 5);

        // All five expired: each check removes two (obeyed at the limit), never more, and with no
        // cold starts (min_count 0) none is replaced.
        clock.advance(Duration::from_secs(2));
        for left in [3, 1, 0] {
            pool.housekeep().await;
            assert_eq!(pool.stats().prewarmed, left);
        }
        tokio::time::timeout(
            Duration::from_secs(10),
            pool.shutdown(Duration::from_secs(1)),
        )
        .await
        .expect("shutdown ends");
    }
}
