//! The pool's bookkeeping: which containers exist, what each holds, and the scheduling decision for one
//! job. Everything here is synchronous and runs under the pool's lock; the async work a decision
//! implies (create, resume, destroy) is returned as [`Effect`]s and done after the lock is released.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use factory::{Container, InitDone, Outcome, StemCell};
use tokio::sync::{OnceCell, oneshot};

use super::{Accounting, ProvisionError, Start};

/// Identifies warm containers that may serve a job: OpenWhisk never reuses a container for another
/// action, another revision of it, or another invoking namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct WarmKey {
    /// The invoking namespace.
    pub namespace: String,
    /// `ns/name` or `ns/pkg/name` of the action.
    pub path: String,
    /// The document revision (None for stores without revisions).
    pub revision: Option<String>,
    /// The action's version.
    pub version: String,
    /// The exec kind.
    pub kind: String,
    /// The action's memory in MB (a container's size).
    pub memory_mb: u32,
}

/// What the scheduler needs to know about a job.
#[derive(Debug, Clone)]
pub(crate) struct Needs {
    /// Index of the factory that runs the kind.
    pub factory: usize,
    /// How that factory's memory is counted.
    pub accounting: Accounting,
    /// The warm-reuse key.
    pub key: WarmKey,
    /// The blackbox image (`exec.image`); `None` for managed kinds. A container made from one image
    /// serves only that image, so a prewarm is taken only by a job of the same image.
    pub image: Option<String>,
    /// `limits.concurrency`, at least 1.
    pub concurrency: u32,
}

impl Needs {
    /// Memory a container of this job holds for its whole life (MB).
    pub fn container_mb(&self) -> u64 {
        match self.accounting {
            Accounting::PerContainer => u64::from(self.key.memory_mb),
            Accounting::PerActivation => 0,
        }
    }

    /// Memory each running activation of this job holds while it runs (MB).
    pub fn activation_mb(&self) -> u64 {
        match self.accounting {
            Accounting::PerContainer => 0,
            Accounting::PerActivation => u64::from(self.key.memory_mb),
        }
    }
}

/// What a container's cell finally holds once creation was attempted: the container, or the
/// outcome the creating job got.
pub(crate) type Created = Result<Arc<dyn Container>, Box<Outcome>>;
/// What a container's init cell holds: the init interval, or the failed init's outcome.
pub(crate) type Initialised = Result<InitDone, Box<Outcome>>;

/// The shared, async part of a container slot: the container once created and the init once done.
/// Jobs that join a container still being created or initialised wait on these cells.
#[derive(Debug)]
pub(crate) struct SlotCell {
    /// The slot's id in [`State::slots`].
    pub id: u64,
    /// Set by whoever created the container.
    pub container: OnceCell<Created>,
    /// Set by the job that initialised the container.
    pub init: OnceCell<Initialised>,
}

impl SlotCell {
    fn new(id: u64) -> Arc<Self> {
        Arc::new(Self {
            id,
            container: OnceCell::new(),
            init: OnceCell::new(),
        })
    }

    /// The container, when it was created successfully.
    pub fn created(&self) -> Option<Arc<dyn Container>> {
        match self.container.get() {
            Some(Ok(container)) => Some(container.clone()),
            _ => None,
        }
    }
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Being created (cold for a job, or a prewarm).
    Starting,
    /// A created stem cell waiting for a matching job.
    Prewarmed,
    /// Created (and possibly initialised) for its key; runs jobs.
    Ready,
    /// Being paused after the pause grace.
    Pausing,
    /// Paused; a job resumes it.
    Paused,
    /// Being resumed for a job.
    Resuming,
    /// Will be destroyed once its last activation ends; takes no new jobs.
    Removing,
}

/// One container (or container-to-be) of the pool.
#[derive(Debug)]
pub(crate) struct Slot {
    pub factory: usize,
    pub kind: String,
    pub memory_mb: u32,
    /// The image it was created from ([`Needs::image`]); `None` for managed kinds.
    pub image: Option<String>,
    /// Memory this container itself holds (MB): its size for Docker-style accounting, else 0.
    pub holds_mb: u64,
    /// The (action, namespace) it serves; `None` for a prewarm.
    pub key: Option<WarmKey>,
    pub phase: Phase,
    pub active: u32,
    pub max_concurrency: u32,
    pub can_pause: bool,
    pub last_used: Instant,
    pub created: Instant,
    pub health_fails: u32,
    /// The stem cell it was created for, while it is still an unused prewarm.
    pub prewarm_cell: Option<usize>,
    pub cell: Arc<SlotCell>,
}

impl Slot {
    /// Whether the slot is a container provisioned ahead of its first activation
    /// ([`super::Pool::provision`]) that no job has taken yet: a prewarm of no stem cell.
    pub fn provisioned(&self) -> bool {
        self.key.is_none() && self.prewarm_cell.is_none()
    }

    /// Whether the slot is an idle warm container that eviction may take.
    fn evictable(&self) -> bool {
        self.holds_mb > 0
            && self.key.is_some()
            && self.active == 0
            && matches!(self.phase, Phase::Ready | Phase::Paused)
    }
}

/// One stem-cell configuration and its reactive bookkeeping.
#[derive(Debug)]
pub(crate) struct PrewarmCell {
    pub factory: usize,
    pub accounting: Accounting,
    pub cell: StemCell,
    /// How many prewarms to keep now.
    pub desired: u32,
    /// Cold starts of this kind and memory since the last expiry check.
    pub cold_starts: u32,
}

/// A decision for one job: the container it goes to and what it still has to do there.
#[derive(Debug)]
pub(crate) struct Placement {
    pub cell: Arc<SlotCell>,
    /// How the job starts (cold, prewarm, warm); [`Start::Warm`] also for joining a container that
    /// another job is creating or initialising.
    pub start: Start,
    /// The container is paused and must be resumed first.
    pub resume: bool,
    /// Memory this activation holds until it ends (MB).
    pub activation_mb: u64,
}

/// A job waiting for capacity, in arrival order.
#[derive(Debug)]
pub(crate) struct Waiting {
    pub needs: Needs,
    pub tx: oneshot::Sender<Placement>,
}

/// Async work a decision implies, done after the lock is released.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Destroy this container (already removed from the books).
    Destroy(Arc<SlotCell>),
    /// Create a prewarm for the slot.
    CreatePrewarm {
        cell: Arc<SlotCell>,
        factory: usize,
        kind: String,
        memory_mb: u32,
    },
    /// A placement that nobody took (its waiter went away): undo it.
    Abandon(Placement),
}

/// The result of trying to place a job.
#[derive(Debug)]
pub(crate) enum Place {
    /// The job has a container.
    Placed(Placement),
    /// Not now: wait in the buffer.
    Full,
}

/// Counters kept by the pool, for metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolCounters {
    /// Jobs that created a container.
    pub cold_starts: u64,
    /// Jobs that took a prewarmed container.
    pub prewarm_starts: u64,
    /// Jobs that reused a warm container.
    pub warm_starts: u64,
    /// Idle containers evicted to make room.
    pub evictions: u64,
    /// Jobs that had to wait in the buffer.
    pub buffered: u64,
    /// Containers paused after the pause grace.
    pub pauses: u64,
    /// Containers removed after the idle timeout.
    pub idle_removals: u64,
    /// Containers removed because their health check failed.
    pub health_removals: u64,
    /// Jobs placed again because their container refused them (`ContainerFault::Refused`).
    pub reschedules: u64,
    /// Containers destroyed because an activation's log collection failed.
    pub log_failure_removals: u64,
    /// Containers created ahead of their first activation ([`super::Pool::provision`]).
    pub provisions: u64,
    /// Provisioned containers removed because no job took them within the idle timeout.
    pub provision_expiries: u64,
}

/// All of the pool's books.
#[derive(Debug)]
pub(crate) struct State {
    pub user_memory_mb: u64,
    pub next_id: u64,
    pub slots: BTreeMap<u64, Slot>,
    pub reserved_mb: u64,
    pub buffer: VecDeque<Waiting>,
    pub prewarms: Vec<PrewarmCell>,
    pub active: u64,
    pub closed: bool,
    pub counters: PoolCounters,
}

impl State {
    pub fn new(user_memory_mb: u64, prewarms: Vec<PrewarmCell>) -> Self {
        Self {
            user_memory_mb,
            next_id: 1,
            slots: BTreeMap::new(),
            reserved_mb: 0,
            buffer: VecDeque::new(),
            prewarms,
            active: 0,
            closed: false,
            counters: PoolCounters::default(),
        }
    }

    /// Memory not reserved by anything (MB).
    pub fn free_mb(&self) -> u64 {
        self.user_memory_mb.saturating_sub(self.reserved_mb)
    }

    fn new_slot(&mut self, needs: &Needs, key: Option<WarmKey>, now: Instant) -> Arc<SlotCell> {
        let id = self.next_id;
        self.next_id += 1;
        let cell = SlotCell::new(id);
        let holds_mb = needs.container_mb();
        self.reserved_mb += holds_mb;
        self.slots.insert(
            id,
            Slot {
                factory: needs.factory,
                kind: needs.key.kind.clone(),
                memory_mb: needs.key.memory_mb,
                image: needs.image.clone(),
                holds_mb,
                key,
                phase: Phase::Starting,
                active: 0,
                max_concurrency: match needs.accounting {
                    // Unknown until the container exists; an in-process runtime runs many at once.
                    Accounting::PerActivation => u32::MAX,
                    Accounting::PerContainer => needs.concurrency.max(1),
                },
                can_pause: false,
                last_used: now,
                created: now,
                health_fails: 0,
                prewarm_cell: None,
                cell: cell.clone(),
            },
        );
        cell
    }

    /// Removes a slot from the books, releasing what it holds, and says to destroy it.
    pub fn remove_slot(&mut self, id: u64, effects: &mut Vec<Effect>) -> Option<Slot> {
        let slot = self.slots.remove(&id)?;
        self.reserved_mb = self.reserved_mb.saturating_sub(slot.holds_mb);
        effects.push(Effect::Destroy(slot.cell.clone()));
        Some(slot)
    }

    /// Tries to place a job now (steps 1-4 of OpenWhisk's `ContainerPool.schedule`).
    pub fn place(&mut self, needs: &Needs, now: Instant, effects: &mut Vec<Effect>) -> Place {
        let activation_mb = needs.activation_mb();

        // 1. A container of the same key with spare concurrency: running or idle first, then one
        // being created, then a paused one.
        let warm = self
            .slots
            .values()
            .filter(|slot| {
                slot.key.as_ref() == Some(&needs.key)
                    && slot.active < slot.max_concurrency
                    && matches!(slot.phase, Phase::Ready | Phase::Starting | Phase::Paused)
            })
            .min_by_key(|slot| match slot.phase {
                Phase::Ready => 0,
                Phase::Starting => 1,
                _ => 2,
            })
            .map(|slot| slot.cell.id);
        if let Some(id) = warm {
            if activation_mb > self.free_mb() && !self.evict(activation_mb, effects) {
                return Place::Full;
            }
            let slot = self.slots.get_mut(&id).expect("slot id found just above");
            let resume = slot.phase == Phase::Paused;
            if resume {
                slot.phase = Phase::Resuming;
            }
            slot.active += 1;
            slot.last_used = now;
            let cell = slot.cell.clone();
            self.reserved_mb += activation_mb;
            self.active += 1;
            self.counters.warm_starts += 1;
            return Place::Placed(Placement {
                cell,
                start: Start::Warm,
                resume,
                activation_mb,
            });
        }

        // 2. A prewarmed container of exactly this kind, memory and image (no memory check: it
        // already holds its memory). One provisioned for this job's action goes first: it was made
        // for it, and a stem cell taken instead would need a top-up.
        let prewarm = self
            .slots
            .values()
            .filter(|slot| {
                slot.phase == Phase::Prewarmed
                    && slot.key.is_none()
                    && slot.factory == needs.factory
                    && slot.kind == needs.key.kind
                    && slot.memory_mb == needs.key.memory_mb
                    && slot.image == needs.image
            })
            .min_by_key(|slot| (!slot.provisioned(), slot.cell.id))
            .map(|slot| slot.cell.id);
        if let Some(id) = prewarm
            && (activation_mb <= self.free_mb() || self.evict(activation_mb, effects))
        {
            let slot = self.slots.get_mut(&id).expect("slot id found just above");
            slot.key = Some(needs.key.clone());
            slot.phase = Phase::Ready;
            slot.prewarm_cell = None;
            slot.active = 1;
            slot.last_used = now;
            let cell = slot.cell.clone();
            self.reserved_mb += activation_mb;
            self.active += 1;
            self.counters.prewarm_starts += 1;
            // A replacement starts at once.
            self.top_up_prewarms(now, effects);
            return Place::Placed(Placement {
                cell,
                start: Start::Prewarmed,
                resume: false,
                activation_mb,
            });
        }

        // 3./4. A cold container, after evicting idle ones if that makes room.
        let needed = needs.container_mb() + activation_mb;
        if needed > self.free_mb() && !self.evict(needed, effects) {
            return Place::Full;
        }
        let cell = self.new_slot(needs, Some(needs.key.clone()), now);
        let slot = self
            .slots
            .get_mut(&cell.id)
            .expect("slot inserted just above");
        slot.active = 1;
        self.reserved_mb += activation_mb;
        self.active += 1;
        self.counters.cold_starts += 1;
        for prewarm in &mut self.prewarms {
            if prewarm.factory == needs.factory
                && prewarm.cell.kind == needs.key.kind
                && prewarm.cell.memory_mb == needs.key.memory_mb
            {
                prewarm.cold_starts += 1;
            }
        }
        Place::Placed(Placement {
            cell,
            start: Start::Cold,
            resume: false,
            activation_mb,
        })
    }

    /// Books a container to be created ahead of its first activation ([`super::Pool::provision`]):
    /// a prewarm of no stem cell, `Starting` until created. Memory is found as for a cold start
    /// (evicting idle warm containers), except that a container that holds memory is not booked
    /// while jobs wait for memory in the buffer: they came first.
    pub fn provision(
        &mut self,
        needs: &Needs,
        now: Instant,
        effects: &mut Vec<Effect>,
    ) -> Result<Arc<SlotCell>, ProvisionError> {
        if self.closed {
            return Err(ProvisionError::Closed);
        }
        let needed = needs.container_mb();
        let too_big = u64::from(needs.key.memory_mb) > self.user_memory_mb;
        let queued = needed > 0 && !self.buffer.is_empty();
        if too_big || queued || (needed > self.free_mb() && !self.evict(needed, effects)) {
            return Err(ProvisionError::NotEnoughMemory {
                // An action larger than the pool is refused whatever the factory's accounting.
                needed_mb: if too_big {
                    u64::from(needs.key.memory_mb)
                } else {
                    needed
                },
                free_mb: self.free_mb(),
                user_memory_mb: self.user_memory_mb,
                waiting: self.buffer.len(),
            });
        }
        Ok(self.new_slot(needs, None, now))
    }

    /// Evicts idle warm containers, least recently used first, until `needed_mb` is free. Evicts
    /// nothing when even all of them would not make enough room.
    fn evict(&mut self, needed_mb: u64, effects: &mut Vec<Effect>) -> bool {
        let mut idle: Vec<(Instant, u64, u64)> = self
            .slots
            .values()
            .filter(|slot| slot.evictable())
            .map(|slot| (slot.last_used, slot.cell.id, slot.holds_mb))
            .collect();
        let idle_mb: u64 = idle.iter().map(|(_, _, mb)| mb).sum();
        if self.free_mb() + idle_mb < needed_mb {
            return false;
        }
        idle.sort();
        for (_, id, _) in idle {
            if self.free_mb() >= needed_mb {
                break;
            }
            if self.remove_slot(id, effects).is_some() {
                self.counters.evictions += 1;
            }
        }
        true
    }

    /// Starts prewarms until every stem cell has its desired count, as far as memory allows.
    pub fn top_up_prewarms(&mut self, now: Instant, effects: &mut Vec<Effect>) {
        if self.closed {
            return;
        }
        for index in 0..self.prewarms.len() {
            let count = self
                .slots
                .values()
                .filter(|slot| slot.key.is_none() && slot.prewarm_cell == Some(index))
                .count() as u64;
            let prewarm = &self.prewarms[index];
            let missing = u64::from(prewarm.desired).saturating_sub(count);
            let needs = Needs {
                factory: prewarm.factory,
                accounting: prewarm.accounting,
                key: WarmKey {
                    namespace: String::new(),
                    path: String::new(),
                    revision: None,
                    version: String::new(),
                    kind: prewarm.cell.kind.clone(),
                    memory_mb: prewarm.cell.memory_mb,
                },
                image: None,
                concurrency: 1,
            };
            for _ in 0..missing {
                if needs.container_mb() > self.free_mb() {
                    break;
                }
                let cell = self.new_slot(&needs, None, now);
                let slot = self
                    .slots
                    .get_mut(&cell.id)
                    .expect("slot inserted just above");
                slot.prewarm_cell = Some(index);
                effects.push(Effect::CreatePrewarm {
                    cell,
                    factory: needs.factory,
                    kind: needs.key.kind.clone(),
                    memory_mb: needs.key.memory_mb,
                });
            }
        }
    }

    /// Gives capacity to buffered jobs, oldest first; stops at the first that still does not fit,
    /// so that order is kept.
    pub fn drain_buffer(&mut self, now: Instant, effects: &mut Vec<Effect>) {
        while let Some(front) = self.buffer.front() {
            if front.tx.is_closed() {
                self.buffer.pop_front();
                continue;
            }
            let needs = front.needs.clone();
            match self.place(&needs, now, effects) {
                Place::Placed(placement) => {
                    let waiting = self.buffer.pop_front().expect("front checked just above");
                    if let Err(placement) = waiting.tx.send(placement) {
                        effects.push(Effect::Abandon(placement));
                    }
                }
                Place::Full => break,
            }
        }
    }

    /// Ends one activation on a slot: releases its memory and, when the container must go
    /// (`keep` false, or it was already marked), removes it once nothing runs on it any more.
    pub fn finish(
        &mut self,
        id: u64,
        activation_mb: u64,
        keep: bool,
        now: Instant,
        effects: &mut Vec<Effect>,
    ) {
        self.reserved_mb = self.reserved_mb.saturating_sub(activation_mb);
        self.active = self.active.saturating_sub(1);
        let remove = match self.slots.get_mut(&id) {
            Some(slot) => {
                slot.active = slot.active.saturating_sub(1);
                slot.last_used = now;
                if !keep {
                    slot.phase = Phase::Removing;
                } else if matches!(slot.phase, Phase::Starting | Phase::Resuming) {
                    slot.phase = Phase::Ready;
                }
                slot.phase == Phase::Removing && slot.active == 0
            }
            None => false,
        };
        if remove {
            self.remove_slot(id, effects);
        }
        self.drain_buffer(now, effects);
    }
}
