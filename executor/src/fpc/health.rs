//! The invoker's health as the scheduler and the controller read it: OpenWhisk's
//! `InvokerHealthManager`, published as the etcd key `{cluster}/invokers/{N}[/{u}[/{d}]]`.
//!
//! States and what they publish: `Offline` → `down`, `Unhealthy` → `unhealthy`, `Healthy` → `up`
//! (never anything else: the controller's health listing fails on any other status). Start is
//! `Offline` with nothing published; [`HealthManager::enable`] (at start and on `/enable`) moves to
//! `Unhealthy` and runs the self-test until it passes; [`HealthManager::disable`] moves to `Offline`
//! and ignores samples until the next enable.
//!
//! Every finished activation is a sample: `true` unless it ended in a whisk (system) error. The last
//! [`SAMPLE_WINDOW`] samples decide: fewer than [`UNHEALTHY_FAILURES`] failures is `Healthy`, more
//! is `Unhealthy`, and a fall back to `Unhealthy` starts the self-test again.
//!
//! **The self-test.** OpenWhisk's FPC invoker writes a Node.js health action to the entity store and
//! runs it in a container of its own until one run succeeds. Nothing outside the invoker depends on
//! that mechanism (the scheduler reads only the status), and a wasm node may have no Docker at all,
//! so this invoker's self-test is what an activation needs from the node besides the factories: one
//! read of the health action's document from the entity store (found or not found both prove the
//! store answers). The factories are exercised by the samples of real activations.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::etcd::Registry;
use super::message::{InvokerResourceMessage, InvokerStatus};
use crate::store::{EntityStore, StoreError};

/// Samples remembered (OpenWhisk's `InvokerHealthManager` buffer).
pub const SAMPLE_WINDOW: usize = 10;
/// Failures among the remembered samples that make the invoker unhealthy.
pub const UNHEALTHY_FAILURES: usize = 3;
/// Pause between two failed self-tests.
pub const SELF_TEST_RETRY: Duration = Duration::from_secs(1);

/// The health state machine (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// Disabled, or not enabled yet: `down`.
    Offline,
    /// Enabled, the self-test or the samples not good yet: `unhealthy`.
    Unhealthy,
    /// `up`: the scheduler may send creation orders.
    Healthy,
}

impl HealthState {
    fn status(self) -> InvokerStatus {
        match self {
            Self::Offline => InvokerStatus::Down,
            Self::Unhealthy => InvokerStatus::Unhealthy,
            Self::Healthy => InvokerStatus::Up,
        }
    }
}

/// The memory figures of the resource message, MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryReport {
    /// Memory of containers that are initialised or running.
    pub busy_mb: u64,
    /// Memory of containers being created or resumed.
    pub in_progress_mb: u64,
}

struct Inner {
    state: HealthState,
    samples: VecDeque<bool>,
    memory: MemoryReport,
    published: bool,
    /// Cancels the running self-test, if any.
    self_test: Option<CancellationToken>,
}

/// Publishes the invoker's health key (module docs).
pub struct HealthManager {
    registry: Arc<Registry>,
    key: String,
    user_memory_mb: u64,
    tags: Vec<String>,
    dedicated_namespaces: Vec<String>,
    entities: Arc<dyn EntityStore>,
    self_test_doc: String,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for HealthManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthManager")
            .field("key", &self.key)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl HealthManager {
    /// A manager in state `Offline` that publishes nothing until [`HealthManager::enable`].
    /// `key` is the invoker's health key, `self_test_doc` the document its self-test reads.
    pub fn new(
        registry: Arc<Registry>,
        key: String,
        user_memory_mb: u64,
        tags: Vec<String>,
        dedicated_namespaces: Vec<String>,
        entities: Arc<dyn EntityStore>,
        self_test_doc: String,
    ) -> Arc<Self> {
        Arc::new(Self {
            registry,
            key,
            user_memory_mb,
            tags,
            dedicated_namespaces,
            entities,
            self_test_doc,
            inner: Mutex::new(Inner {
                state: HealthState::Offline,
                samples: VecDeque::with_capacity(SAMPLE_WINDOW),
                memory: MemoryReport::default(),
                published: false,
                self_test: None,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current state.
    pub fn state(&self) -> HealthState {
        self.lock().state
    }

    /// The resource message as it would be published now.
    pub fn resource_message(&self) -> InvokerResourceMessage {
        let inner = self.lock();
        self.message_of(&inner)
    }

    fn message_of(&self, inner: &Inner) -> InvokerResourceMessage {
        let MemoryReport {
            busy_mb,
            in_progress_mb,
        } = inner.memory;
        InvokerResourceMessage {
            status: inner.state.status(),
            free_memory: self
                .user_memory_mb
                .saturating_sub(busy_mb)
                .saturating_sub(in_progress_mb),
            busy_memory: busy_mb,
            in_progress_memory: in_progress_mb,
            tags: self.tags.clone(),
            dedicated_namespaces: self.dedicated_namespaces.clone(),
        }
    }

    /// Publishes the current state and memory (the registry skips a put of an unchanged value).
    async fn publish(&self) {
        let value = {
            let mut inner = self.lock();
            if inner.state == HealthState::Offline && !inner.published {
                return;
            }
            inner.published = true;
            self.message_of(&inner)
        };
        match serde_json::to_string(&value) {
            Ok(text) => self.registry.put(self.key.clone(), text).await,
            Err(error) => warn!(%error, "cannot serialise the resource message"),
        }
    }

    /// `Enable`: from any state to `Unhealthy`, published, and the self-test started (at start and
    /// on `/enable`).
    pub async fn enable(self: &Arc<Self>) {
        let token = {
            let mut inner = self.lock();
            inner.state = HealthState::Unhealthy;
            inner.samples.clear();
            inner.published = true;
            self.restart_self_test(&mut inner)
        };
        self.publish().await;
        self.spawn_self_test(token);
    }

    /// `/disable` (and shutdown): `Offline`, published as `down`; samples are ignored from now on.
    pub async fn disable(&self) {
        {
            let mut inner = self.lock();
            inner.state = HealthState::Offline;
            inner.published = true;
            if let Some(token) = inner.self_test.take() {
                token.cancel();
            }
        }
        self.publish().await;
    }

    /// New memory figures from the pool: published when they changed.
    pub async fn memory(&self, report: MemoryReport) {
        let changed = {
            let mut inner = self.lock();
            let changed = inner.memory != report;
            inner.memory = report;
            changed
        };
        if changed {
            self.publish().await;
        }
    }

    /// One activation's health: `ok` unless it ended in a whisk error.
    pub async fn sample(self: &Arc<Self>, ok: bool) {
        let (changed, token) = {
            let mut inner = self.lock();
            if inner.state == HealthState::Offline {
                return;
            }
            if inner.samples.len() == SAMPLE_WINDOW {
                inner.samples.pop_front();
            }
            inner.samples.push_back(ok);
            let failures = inner.samples.iter().filter(|ok| !**ok).count();
            let next = if failures < UNHEALTHY_FAILURES {
                HealthState::Healthy
            } else {
                HealthState::Unhealthy
            };
            let before = inner.state;
            inner.state = next;
            let token = match (before, next) {
                (HealthState::Healthy, HealthState::Unhealthy) => {
                    Some(self.restart_self_test(&mut inner))
                }
                (_, HealthState::Healthy) => {
                    if let Some(token) = inner.self_test.take() {
                        token.cancel();
                    }
                    None
                }
                _ => None,
            };
            (before != next, token)
        };
        if changed {
            info!(state = ?self.state(), "invoker health changed");
            self.publish().await;
        }
        if let Some(token) = token {
            self.spawn_self_test(token);
        }
    }

    fn restart_self_test(&self, inner: &mut Inner) -> CancellationToken {
        if let Some(token) = inner.self_test.take() {
            token.cancel();
        }
        let token = CancellationToken::new();
        inner.self_test = Some(token.clone());
        token
    }

    fn spawn_self_test(self: &Arc<Self>, token: CancellationToken) {
        let manager = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let passed = tokio::select! {
                    () = token.cancelled() => return,
                    passed = manager.self_test() => passed,
                };
                if token.is_cancelled() {
                    return;
                }
                manager.sample(passed).await;
                if passed {
                    return;
                }
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(SELF_TEST_RETRY) => {}
                }
            }
        });
    }

    async fn self_test(&self) -> bool {
        match self.entities.get_action(&self.self_test_doc, None).await {
            Ok(_) | Err(StoreError::NotFound) => true,
            Err(error) => {
                warn!(%error, "health self-test: the entity store did not answer");
                false
            }
        }
    }
}
