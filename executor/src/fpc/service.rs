//! The FPC invoker as a service: OpenWhisk's `FPCInvokerReactive` start order and shutdown.
//!
//! Start: the `invoker{N}` topic; etcd (lease, lease key); the health manager, enabled (status
//! `unhealthy`, then `up` once the self-test passes); the container pool and its memory reports
//! every `memory-sync-interval`; the consumer of creation and deletion orders; the scheduler
//! warm-up (one `FetchActivation` to every scheduler under `{cluster}/scheduler/`, again for every
//! new one); the admin server.
//!
//! Shutdown (SIGTERM): status `down`; no new orders; every container drains (its activations
//! finish, are acknowledged and stored) within the shutdown grace; acks and records flushed; the
//! lease revoked, so that the scheduler sees every key of this node go at once (OpenWhisk's
//! invoker lets them expire with the lease's TTL).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use super::etcd::{EtcdConfig, PrefixEvent, Registry, keys};
use super::grpc::{SchedulerEndpoint, warm_up};
use super::health::HealthManager;
use super::message::SchedulerStates;
use super::orders::Orders;
use super::pool::{FpcPool, FpcPoolParts, Timers};
use crate::admin::Switch;
use crate::config::{InvokerConfig, SHUTDOWN_GRACE};
use crate::invoker::{InvokerError, InvokerParts, Node};
use crate::limits::LimitRanges;
use crate::message::InvokerInstanceId;
use crate::processor::{HEALTH_ACTION_NAMESPACE, HEALTH_ACTION_PREFIX};
use crate::service;

/// What FPC mode needs beyond the classic parts, from the configuration's `[scheduler]` and
/// `[pool]` sections.
#[derive(Debug, Clone)]
pub struct FpcSettings {
    /// The etcd key root.
    pub cluster: String,
    /// etcd.
    pub etcd: EtcdConfig,
    /// Container timers.
    pub timers: Timers,
    /// Resource tags.
    pub tags: Vec<String>,
    /// Dedicated namespaces.
    pub dedicated_namespaces: Vec<String>,
    /// Orders held at once.
    pub creation_max_peek: usize,
    /// Refresh interval of the resource message.
    pub memory_sync: Duration,
    /// Containers drained per step after `/disable`.
    pub batch_deletion_size: usize,
    /// The node's limit ranges (checked at creation).
    pub ranges: LimitRanges,
}

impl FpcSettings {
    /// The settings of `config`.
    pub fn from_config(config: &InvokerConfig) -> Self {
        let scheduler = &config.scheduler;
        Self {
            cluster: scheduler.cluster_name.clone(),
            etcd: EtcdConfig {
                endpoints: scheduler.etcd_endpoints(),
                credentials: scheduler
                    .etcd_username
                    .clone()
                    .zip(scheduler.etcd_password.clone()),
                lease_ttl: scheduler.lease_timeout(),
                retry_interval: scheduler.etcd_retry(),
            },
            timers: Timers {
                pause_grace: config.pool.pause_grace(),
                idle_container: config.pool.idle_container(),
            },
            tags: scheduler.tags.clone(),
            dedicated_namespaces: scheduler.dedicated_namespaces.clone(),
            creation_max_peek: scheduler.creation_max_peek,
            memory_sync: scheduler.memory_sync(),
            batch_deletion_size: scheduler.batch_deletion_size,
            ranges: config.limits,
        }
    }
}

/// The path of this invoker's etcd keys: `invoker{N}[/{uniqueName}[/{displayedName}]]`.
fn instance_path(instance: &InvokerInstanceId) -> String {
    keys::instance_path(
        instance.instance,
        instance.unique_name.as_deref(),
        instance.displayed_name.as_deref(),
    )
}

/// Runs the FPC invoker until `shutdown` fires (module docs).
pub async fn run(
    parts: InvokerParts,
    settings: FpcSettings,
    shutdown: CancellationToken,
) -> Result<(), InvokerError> {
    let instance = parts.instance.clone();
    let node = Node::start(&parts).await?;
    let lease_key = keys::lease_key(&settings.cluster, &instance_path(&instance));
    let registry =
        Registry::start(settings.etcd.clone(), lease_key, node.background.clone()).await?;
    let health = HealthManager::new(
        registry.clone(),
        keys::invoker_key(
            &settings.cluster,
            instance.instance,
            instance.unique_name.as_deref(),
            instance.displayed_name.as_deref(),
        ),
        instance.user_memory.as_mb(),
        settings.tags.clone(),
        settings.dedicated_namespaces.clone(),
        parts.entities.clone(),
        format!(
            "{HEALTH_ACTION_NAMESPACE}/{HEALTH_ACTION_PREFIX}{}",
            instance.instance
        ),
    );
    let pool = FpcPool::new(FpcPoolParts {
        cluster: settings.cluster.clone(),
        instance: instance.clone(),
        registry: registry.clone(),
        processor: node.processor.clone(),
        producer: node.producer.clone(),
        topic_prefix: parts.topic_prefix.clone(),
        health: health.clone(),
        timers: settings.timers,
        user_memory_mb: instance.user_memory.as_mb(),
    });
    let orders = Arc::new(Orders {
        pool: pool.clone(),
        loader: parts.loader.clone(),
        ranges: settings.ranges,
    });

    let switch = Arc::new(FpcSwitch {
        name: instance.to_string(),
        pool: pool.clone(),
        health: health.clone(),
        warm_up: WarmUp {
            registry: registry.clone(),
            prefix: keys::scheduler_prefix(&settings.cluster),
            running: Mutex::new(None),
        },
        batch_deletion_size: settings.batch_deletion_size,
    });
    switch.enable().await;
    node.tasks.spawn({
        let health = health.clone();
        let pool = pool.clone();
        let cancel = node.background.clone();
        let every = settings.memory_sync;
        async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    // Phase changes publish at once; this recomputes the books every
                    // memory-sync-interval, as OpenWhisk's pool reports them.
                    () = tokio::time::sleep(every) => health.memory(pool.memory()).await,
                }
            }
        }
    });

    let mut feed = node.feed(&parts, settings.creation_max_peek)?;
    let address = node.serve_admin(&parts, switch.clone()).await?;
    node.ready_when_assigned(&feed);
    info!(invoker = %instance, topic = %node.topic, ?address, cluster = %settings.cluster,
        lease = registry.lease_id(), "FPC invoker started");

    let work = TaskTracker::new();
    let failure = loop {
        tokio::select! {
            () = shutdown.cancelled() => break None,
            reason = node.fatal.raised() => break Some(reason),
            delivered = feed.messages.recv() => match delivered {
                Some(delivered) => {
                    let orders = orders.clone();
                    work.spawn(async move {
                        orders.handle(&delivered.payload).await;
                        // The order is with the pool (or answered): the next one may come.
                        drop(delivered.permit);
                    });
                }
                None => break Some("the Kafka feed ended".to_string()),
            },
        }
    };
    match &failure {
        None => info!("shutting down: status down, no new orders, draining the containers"),
        Some(reason) => error!(%reason, "stopping after a fatal error"),
    }
    service::stopping();
    switch.warm_up.stop();
    health.disable().await;
    feed.stop().await;
    while let Ok(delivered) = feed.messages.try_recv() {
        // Orders already taken are answered (creations now with a shutting-down error).
        orders.handle(&delivered.payload).await;
    }
    work.close();
    work.wait().await;
    pool.shutdown(SHUTDOWN_GRACE).await;
    node.flush().await;
    registry.shutdown(true).await;
    node.close(&parts, failure).await
}

/// The scheduler warm-up (OpenWhisk's `WarmUp`): runs while the invoker is enabled.
#[derive(Debug)]
struct WarmUp {
    registry: Arc<Registry>,
    prefix: String,
    running: Mutex<Option<CancellationToken>>,
}

impl WarmUp {
    /// Starts watching `{cluster}/scheduler/` (again after a stop: every scheduler is warmed anew).
    fn start(&self) {
        let cancel = CancellationToken::new();
        if let Some(old) = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(cancel.clone())
        {
            old.cancel();
        }
        let mut events = self.registry.watch_prefix(self.prefix.clone());
        tokio::spawn(async move {
            let mut warmed: HashSet<String> = HashSet::new();
            loop {
                let event = tokio::select! {
                    () = cancel.cancelled() => return,
                    event = events.recv() => event,
                };
                match event {
                    Some(PrefixEvent::Put { key, value }) => {
                        if warmed.contains(&key) {
                            continue;
                        }
                        match serde_json::from_str::<SchedulerStates>(&value) {
                            Ok(states) => {
                                let endpoint = SchedulerEndpoint {
                                    host: states.endpoints.host.clone(),
                                    port: states.endpoints.rpc_port,
                                };
                                debug!(%key, %endpoint, "warming up a scheduler");
                                warm_up(&endpoint).await;
                                warmed.insert(key);
                            }
                            Err(error) => {
                                warn!(%key, %error, "a scheduler key that does not parse")
                            }
                        }
                    }
                    Some(PrefixEvent::Delete { key }) => {
                        warmed.remove(&key);
                    }
                    None => return,
                }
            }
        });
    }

    fn stop(&self) {
        if let Some(cancel) = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            cancel.cancel();
        }
    }

    fn is_running(&self) -> bool {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

/// `/enable`, `/disable`, `/isEnabled`, `/pool` and `/pool/count` of OpenWhisk's `FPCInvokerServer`.
#[derive(Debug)]
struct FpcSwitch {
    name: String,
    pool: FpcPool,
    health: Arc<HealthManager>,
    warm_up: WarmUp,
    batch_deletion_size: usize,
}

#[async_trait]
impl Switch for FpcSwitch {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn is_enabled(&self) -> bool {
        self.warm_up.is_running()
    }

    async fn enable(&self) -> bool {
        let was_disabled = self.pool.enable();
        self.health.enable().await;
        self.warm_up.start();
        info!("enabled");
        was_disabled
    }

    async fn disable(&self) -> bool {
        self.health.disable().await;
        let was_enabled = self.pool.disable(self.batch_deletion_size);
        self.warm_up.stop();
        info!("disabled: draining the containers");
        was_enabled
    }

    fn says_already(&self) -> bool {
        false
    }

    fn pool_count(&self) -> Option<usize> {
        Some(self.pool.count())
    }

    fn pool_state(&self) -> Option<serde_json::Value> {
        Some(self.pool.state_json())
    }
}
