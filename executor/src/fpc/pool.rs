//! The scheduler-ordered containers of this node: OpenWhisk's `FunctionPullingContainerPool`.
//!
//! A container here is what the scheduler counts and polls with: an id, the action (invocation
//! namespace, action, revision) it serves, its memory, and a task that long-polls the scheduler
//! for it ([`super::container`]). The activations it fetches run through the same [`Processor`]
//! and [`crate::pool::Pool`] as classic mode, so both factories serve it: a wasm action's
//! container is a warm pooled module (the creation ack leaves in microseconds), a Docker action's
//! activations run in real containers that the pool creates, reuses, pauses and removes.
//!
//! # Memory
//!
//! [`PoolBooks`] hold the memory of every container that is not paused: `busy` (polling or
//! running), `in progress` (being created or resumed). `freeMemory` in the health key is the user
//! memory minus both, as OpenWhisk computes it: paused containers are not subtracted. A creation
//! order whose memory exceeds the free memory is answered `ResourceNotEnoughError`; paused
//! containers hold no memory of these books (the pool evicts the real containers behind them when
//! it needs room), so there is nothing to evict first.
//!
//! # Orders
//!
//! - creation ([`FpcPool::create`]): a paused container of the same (invocation namespace, action,
//!   revision) is resumed; otherwise a new container is started. Its success ack is sent once its
//!   existing-container key is requested and its gRPC client exists, before the first poll.
//! - deletion ([`FpcPool::delete`]): every container of the action in that invocation namespace
//!   whose revision generation is at most the order's drains (paused ones are removed at once);
//!   containers that never ran an activation drain whatever their revision.
//! - `/disable` ([`FpcPool::disable`]): new creation orders are refused and every
//!   [`DRAIN_STEP`] up to `batch-deletion-size` containers drain, running ones first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

use super::container::{self, Control, Slot};
use super::etcd::Registry;
use super::health::{HealthManager, MemoryReport};
use super::message::{
    ContainerCreationAckMessage, ContainerCreationError, ContainerCreationMessage,
    ContainerDeletionMessage, revision_at_most,
};
use crate::action::ExecutableAction;
use crate::kafka::Producer;
use crate::message::InvokerInstanceId;
use crate::processor::Processor;

/// How often a disabled invoker drains another batch of containers (OpenWhisk's 5 s).
pub const DRAIN_STEP: Duration = Duration::from_secs(5);

/// A creation order that passed its checks, with the action it names.
#[derive(Debug)]
pub struct Creation {
    /// The order.
    pub order: ContainerCreationMessage,
    /// Its action, as read at the order's revision.
    pub action: Arc<ExecutableAction>,
}

/// The timers of a container (`whisk.container-proxy.timeouts`).
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    /// Idle time before a container stops polling and pauses (`pause-grace`, 10 s).
    pub pause_grace: Duration,
    /// Paused time before a container is removed (`idle-container`, 10 minutes).
    pub idle_container: Duration,
}

/// Where a container is in its life, for the books and `/pool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Being created or resumed: `inProgressMemory`.
    InProgress,
    /// Polling or running: `busyMemory`.
    Busy,
    /// Paused: polls stopped, keys moved to `warmed/`.
    Paused,
    /// Draining: no new polls, finishing what it took.
    Draining,
}

/// One container in the books.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) slot: Arc<Slot>,
    pub(super) phase: Phase,
    /// When it last changed phase (paused containers are drained oldest first).
    pub(super) since: Instant,
    pub(super) control: mpsc::UnboundedSender<Control>,
}

/// The containers and their memory.
#[derive(Debug, Default)]
pub(super) struct PoolBooks {
    pub(super) containers: HashMap<String, Entry>,
}

impl PoolBooks {
    fn memory(&self) -> MemoryReport {
        let mut report = MemoryReport::default();
        for entry in self.containers.values() {
            match entry.phase {
                Phase::InProgress => report.in_progress_mb += entry.slot.memory_mb,
                Phase::Busy | Phase::Draining => report.busy_mb += entry.slot.memory_mb,
                Phase::Paused => {}
            }
        }
        report
    }
}

/// What every container task shares.
pub(super) struct Shared {
    pub(super) cluster: String,
    pub(super) instance: InvokerInstanceId,
    pub(super) registry: Arc<Registry>,
    pub(super) processor: Arc<Processor>,
    pub(super) producer: Producer,
    pub(super) topic_prefix: String,
    pub(super) health: Arc<HealthManager>,
    pub(super) timers: Timers,
    pub(super) user_memory_mb: u64,
    pub(super) books: Mutex<PoolBooks>,
    pub(super) tasks: TaskTracker,
    pub(super) disabled: AtomicBool,
    /// Cancelled at shutdown: containers drain.
    pub(super) shutdown: CancellationToken,
    /// Creation orders a container could not serve after all (it went away as they arrived),
    /// served again by [`FpcPool::create`].
    redispatch: mpsc::UnboundedSender<Creation>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Serves `order` again, from the pool's dispatcher task (a container task cannot call
    /// [`FpcPool::create`], which spawns container tasks, without a cycle in their types).
    pub(super) fn redispatch(&self, creation: Creation) {
        if let Err(mpsc::error::SendError(creation)) = self.redispatch.send(creation) {
            warn!(creation_id = %creation.order.creation_id, "the pool is gone: creation order dropped");
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, PoolBooks> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets a container's phase and publishes the new memory figures.
    pub(super) async fn set_phase(&self, id: &str, phase: Phase) {
        let report = {
            let mut books = self.lock();
            if let Some(entry) = books.containers.get_mut(id) {
                entry.phase = phase;
                entry.since = Instant::now();
            }
            books.memory()
        };
        self.health.memory(report).await;
    }

    /// Removes a container from the books and publishes the new memory figures.
    pub(super) async fn forget(&self, id: &str) {
        let report = {
            let mut books = self.lock();
            books.containers.remove(id);
            books.memory()
        };
        self.health.memory(report).await;
    }

    /// Sends a creation ack to `creationAck{S}`.
    pub(super) async fn ack(&self, ack: ContainerCreationAckMessage, scheduler: &str) {
        let topic = format!("{}creationAck{}", self.topic_prefix, scheduler);
        if let Err(error) = self.producer.send(&topic, &ack.to_json()).await {
            warn!(%error, %topic, "the creation ack was not delivered");
        }
    }

    /// Answers a creation order with an error.
    pub(super) async fn refuse(
        &self,
        order: &ContainerCreationMessage,
        error: ContainerCreationError,
        reason: String,
    ) {
        info!(creation_id = %order.creation_id, ?error, %reason, "creation order refused");
        let ack = ContainerCreationAckMessage::failure(order, &self.instance, error, reason);
        self.ack(ack, &order.root_scheduler_index.as_string).await;
    }
}

/// The pool of scheduler-ordered containers (module docs).
#[derive(Debug, Clone)]
pub struct FpcPool {
    shared: Arc<Shared>,
}

/// What [`FpcPool::new`] needs.
pub struct FpcPoolParts {
    /// The etcd key root.
    pub cluster: String,
    /// This invoker.
    pub instance: InvokerInstanceId,
    /// The etcd registry.
    pub registry: Arc<Registry>,
    /// The activation path.
    pub processor: Arc<Processor>,
    /// Kafka producer for creation acks.
    pub producer: Producer,
    /// Topic prefix.
    pub topic_prefix: String,
    /// The health key's publisher.
    pub health: Arc<HealthManager>,
    /// Container timers.
    pub timers: Timers,
    /// User memory, MB.
    pub user_memory_mb: u64,
}

impl FpcPool {
    /// An empty pool, with its dispatcher task (must be called inside a tokio runtime).
    pub fn new(parts: FpcPoolParts) -> Self {
        let (redispatch, mut orders) = mpsc::unbounded_channel();
        let pool = Self {
            shared: Arc::new(Shared {
                cluster: parts.cluster,
                instance: parts.instance,
                registry: parts.registry,
                processor: parts.processor,
                producer: parts.producer,
                topic_prefix: parts.topic_prefix,
                health: parts.health,
                timers: parts.timers,
                user_memory_mb: parts.user_memory_mb,
                books: Mutex::new(PoolBooks::default()),
                tasks: TaskTracker::new(),
                disabled: AtomicBool::new(false),
                shutdown: CancellationToken::new(),
                redispatch,
            }),
        };
        let dispatcher = pool.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = dispatcher.shared.shutdown.cancelled() => return,
                    creation = orders.recv() => match creation {
                        Some(creation) => dispatcher.create(creation).await,
                        None => return,
                    },
                }
            }
        });
        pool
    }

    /// Serves a creation order whose action was found and checked (module docs: Orders).
    pub async fn create(&self, creation: Creation) {
        let shared = &self.shared;
        let order = &creation.order;
        if shared.disabled.load(Ordering::SeqCst) || shared.shutdown.is_cancelled() {
            // OpenWhisk's invoker answers `ShuttingDownError`, a name its own scheduler cannot
            // read (the job then times out after 20 s); `WhiskError` is read and rescheduled at
            // once (docs/fpc.md, "Choices").
            let reason = format!(
                "creationId: {}, invoker is shutting down, reschedule {}",
                order.creation_id,
                order.action.doc_id()
            );
            shared
                .refuse(order, ContainerCreationError::WhiskError, reason)
                .await;
            return;
        }
        // A paused container of the same action takes it; else (none, or it went away
        // meanwhile) a new one.
        let Some(creation) = self.resume_paused(creation) else {
            return;
        };
        let order = &creation.order;
        let memory_mb = order
            .memory_mb()
            .unwrap_or(crate::pool::MIN_ACTION_MEMORY_MB);
        let (tx, rx) = mpsc::unbounded_channel();
        let slot = Arc::new(Slot::new(&shared.instance, order, memory_mb));
        let admitted = {
            let mut books = shared.lock();
            let used = books.memory();
            let free = shared
                .user_memory_mb
                .saturating_sub(used.busy_mb + used.in_progress_mb);
            let admitted = memory_mb <= free;
            if admitted {
                books.containers.insert(
                    slot.id.clone(),
                    Entry {
                        slot: slot.clone(),
                        phase: Phase::InProgress,
                        since: Instant::now(),
                        control: tx,
                    },
                );
            }
            admitted
        };
        if !admitted {
            let reason = format!(
                "creationId: {}, invoker[{}] doesn't have enough resource for container: {}",
                order.creation_id,
                shared.instance,
                fqn_text(order)
            );
            shared
                .refuse(
                    order,
                    ContainerCreationError::ResourceNotEnoughError,
                    reason,
                )
                .await;
            return;
        }
        let report = shared.lock().memory();
        shared.health.memory(report).await;
        let span =
            info_span!("container", container_id = %slot.id, action = %order.action.doc_id());
        let task = container::run(self.shared.clone(), slot, creation, rx).instrument(span);
        shared.tasks.spawn(task);
    }

    /// Hands a creation to a paused container of the same action, or gives it back.
    fn resume_paused(&self, creation: Creation) -> Option<Creation> {
        let mut books = self.shared.lock();
        let candidate = books
            .containers
            .values_mut()
            .filter(|entry| entry.phase == Phase::Paused && entry.slot.serves(&creation.order))
            .min_by_key(|entry| entry.since);
        let Some(entry) = candidate else {
            return Some(creation);
        };
        if let Err(mpsc::error::SendError(Control::Resume(creation))) =
            entry.control.send(Control::Resume(Box::new(creation)))
        {
            // Its task has ended: it no longer serves anything.
            return Some(*creation);
        }
        entry.phase = Phase::InProgress;
        entry.since = Instant::now();
        None
    }

    /// Answers a creation order with an error (the order checks of [`super::orders`]).
    pub(super) async fn refuse(
        &self,
        order: &ContainerCreationMessage,
        error: ContainerCreationError,
        reason: String,
    ) {
        self.shared.refuse(order, error, reason).await;
    }

    /// Serves a deletion order (module docs: Orders).
    pub fn delete(&self, order: &ContainerDeletionMessage) {
        let doc_id = order.action.doc_id();
        let books = self.shared.lock();
        for entry in books.containers.values() {
            let slot = &entry.slot;
            if slot.invocation_namespace != order.invocation_namespace || slot.doc_id != doc_id {
                continue;
            }
            let outdated = !slot.has_run()
                || revision_at_most(slot.revision.as_deref(), order.revision.as_deref());
            if outdated {
                info!(container_id = %slot.id, "deletion order: draining");
                let _ = entry.control.send(Control::Drain);
            }
        }
    }

    /// `/disable`: refuse new orders and drain every container, a batch every [`DRAIN_STEP`].
    /// Returns whether the pool was enabled.
    pub fn disable(&self, batch: usize) -> bool {
        let was_enabled = !self.shared.disabled.swap(true, Ordering::SeqCst);
        if was_enabled {
            let pool = self.clone();
            let batch = batch.max(1);
            self.shared.tasks.spawn(async move {
                loop {
                    if !pool.shared.disabled.load(Ordering::SeqCst) {
                        return;
                    }
                    let remaining = pool.drain_batch(batch);
                    if remaining == 0 {
                        return;
                    }
                    tokio::select! {
                        () = pool.shared.shutdown.cancelled() => return,
                        () = tokio::time::sleep(DRAIN_STEP) => {}
                    }
                }
            });
        }
        was_enabled
    }

    /// `/enable`: creation orders are served again. Returns whether the pool was disabled.
    pub fn enable(&self) -> bool {
        self.shared.disabled.swap(false, Ordering::SeqCst)
    }

    /// Drains up to `batch` containers not draining yet, busy ones first; returns how many
    /// containers are left in the books.
    fn drain_batch(&self, batch: usize) -> usize {
        let books = self.shared.lock();
        let mut candidates: Vec<&Entry> = books
            .containers
            .values()
            .filter(|entry| entry.phase != Phase::Draining)
            .collect();
        candidates.sort_by_key(|entry| (entry.phase == Phase::Paused, entry.since));
        for entry in candidates.into_iter().take(batch) {
            let _ = entry.control.send(Control::Drain);
        }
        books.containers.len()
    }

    /// Containers busy, paused or in progress (`/pool/count`; there are no prewarm containers in
    /// these books).
    pub fn count(&self) -> usize {
        self.shared.lock().containers.len()
    }

    /// OpenWhisk's `TotalContainerPoolState` for `/pool`.
    pub fn state_json(&self) -> serde_json::Value {
        let books = self.shared.lock();
        let list = |phases: &[Phase]| {
            let containers: Vec<serde_json::Value> = books
                .containers
                .values()
                .filter(|entry| phases.contains(&entry.phase))
                .map(|entry| {
                    serde_json::json!({
                        "containerId": entry.slot.id,
                        "namespace": entry.slot.invocation_namespace,
                        "action": entry.slot.doc_id,
                        "kind": entry.slot.kind,
                    })
                })
                .collect();
            serde_json::json!({"total": containers.len(), "containers": containers})
        };
        let in_progress = books
            .containers
            .values()
            .filter(|entry| entry.phase == Phase::InProgress)
            .count();
        serde_json::json!({
            "totalContainers": books.containers.len(),
            "inProgressCount": in_progress,
            "prewarmedPool": {"total": 0, "countsByKind": {}},
            "busyPool": list(&[Phase::Busy, Phase::Draining]),
            "pausedPool": list(&[Phase::Paused]),
        })
    }

    /// The memory figures of the health key.
    pub fn memory(&self) -> MemoryReport {
        self.shared.lock().memory()
    }

    /// Shutdown: drains every container and waits at most `grace` for them to finish.
    pub async fn shutdown(&self, grace: Duration) {
        self.shared.disabled.store(true, Ordering::SeqCst);
        {
            let books = self.shared.lock();
            for entry in books.containers.values() {
                let _ = entry.control.send(Control::Drain);
            }
        }
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        if tokio::time::timeout(grace, self.shared.tasks.wait())
            .await
            .is_err()
        {
            warn!("containers still draining after the shutdown grace");
        }
    }
}

/// The action as OpenWhisk names it in reasons: `ns/name@version`.
pub(super) fn fqn_text(order: &ContainerCreationMessage) -> String {
    match &order.action.version {
        Some(version) => format!("{}@{version}", order.action.doc_id()),
        None => order.action.doc_id(),
    }
}
