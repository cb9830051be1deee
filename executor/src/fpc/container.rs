//! One scheduler-ordered container's life: OpenWhisk's `FunctionPullingContainerProxy` and
//! `ActivationClientProxy` in one task.
//!
//! 1. **Created**: the pool has provisioned a container for the action
//!    ([`crate::pool::Pool::provision`]: a real Docker container, or an in-process handle for wasm;
//!    a failure is the creation's error ack, `BlackBoxError` when the image is at fault), its gRPC
//!    client to the order's scheduler exists, its existing-container key
//!    `{cluster}/namespace/{invNs}/{fqn}/{rev}/invoker{N}/container/{id}` is written, the success ack
//!    goes to `creationAck{S}`.
//! 2. **Polling**: one `FetchActivation` long poll at a time until its first activation ran
//!    (`warmed = false`), then up to the action's concurrency (`warmed = true`). Each fetched
//!    activation runs through the [`crate::processor::Processor`] (acks to `completed{C}`, the
//!    record to the store); the poll issued after it carries its duration (`lastDuration`).
//!    - "no activation": poll again at once (after [`MIN_POLL_INTERVAL`] when the answer came
//!      back faster than that, so an idle scheduler queue that answers at once is not a hot loop);
//!      once nothing ran for `pause-grace`, stop polling and pause (or, never used, go away).
//!    - "no memory queue", or a gRPC error: ask etcd for the queue's leader
//!      (`{cluster}/queue/{invNs}/{fqn}/leader`) and poll there; no leader: go away.
//!    - "action mismatch", an answer of the wrong shape, an unresolvable scheduler host: go away.
//!    - an answer that is not JSON: poll again.
//! 3. **Paused**: the existing key is replaced by the warmed key
//!    `{cluster}/warmed/{invNs}/{fqn}/{rev}/invoker/{N}/container/{id}`; a creation order for the
//!    same action resumes it (keys swapped back, success ack, a new client when the order names
//!    another scheduler); after `idle-container` it goes away.
//! 4. **Draining** (deletion order, `/disable`, shutdown): the existing key is deleted first, no
//!    new polls; what outstanding polls bring still runs; then it goes away.
//! 5. **Gone**: keys deleted, one goodbye poll (`alive = false`) unless the channel broke, out of
//!    the books.
//!
//! The container behind it belongs to the [`crate::pool::Pool`]: the first activation takes the
//! provisioned one (it is initialised then, as OpenWhisk's are), and the pool pauses, reuses and
//! removes real containers by its own timers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use factory::Status;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, info_span, warn};

use super::etcd::keys;
use super::grpc::{ActivationClient, FetchReply, GrpcError, PollRequest, SchedulerEndpoint};
use super::message::{
    ContainerCreationAckMessage, ContainerCreationError, ContainerCreationMessage,
    SchedulerEndpoints,
};
use super::pool::{Creation, Phase, Shared, fqn_text};
use crate::message::{ActivationMessage, InvokerInstanceId};
use crate::pool::ProvisionError;

/// The shortest time between two polls of one container when the scheduler answers "no
/// activation" at once (an idle queue does): OpenWhisk polls again with no pause at all.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// What the pool tells a container.
#[derive(Debug)]
pub(super) enum Control {
    /// A creation order for this paused container's action.
    Resume(Box<Creation>),
    /// Finish what was taken and go away.
    Drain,
}

/// What a container is, fixed at its creation.
#[derive(Debug)]
pub(super) struct Slot {
    /// The id the scheduler sees (no `/`; the last segment of its etcd keys).
    pub(super) id: String,
    /// The namespace whose quota the container counts against.
    pub(super) invocation_namespace: String,
    /// The action's document id (`ns[/pkg]/name`).
    pub(super) doc_id: String,
    /// The action as the order named it (with version and binding), as the JSON text every poll
    /// echoes.
    fqn_json: String,
    /// The revision as the polls carry it: JSON text, quotes included (`null` when none).
    rev_json: String,
    /// The action's revision.
    pub(super) revision: Option<String>,
    /// The action's kind, for `/pool`.
    pub(super) kind: String,
    /// Its memory limit, MB.
    pub(super) memory_mb: u64,
    /// Activations at once (`limits.concurrency`).
    concurrency: usize,
    /// Whether it has run an activation (a deletion order drains never-used containers whatever
    /// their revision).
    ran: AtomicBool,
}

impl Slot {
    pub(super) fn new(
        instance: &InvokerInstanceId,
        order: &ContainerCreationMessage,
        memory_mb: u64,
    ) -> Self {
        Self {
            id: format!(
                "{}_{}",
                instance.container_prefix(),
                uuid::Uuid::new_v4().simple()
            ),
            invocation_namespace: order.invocation_namespace.clone(),
            doc_id: order.action.doc_id(),
            fqn_json: serde_json::to_string(&order.action).unwrap_or_default(),
            rev_json: serde_json::to_string(&order.revision).unwrap_or_else(|_| "null".into()),
            revision: order.revision.clone(),
            kind: order.kind().unwrap_or("unknown").to_string(),
            memory_mb,
            concurrency: usize::try_from(order.concurrency()).unwrap_or(1).max(1),
            ran: AtomicBool::new(false),
        }
    }

    /// Whether a creation order is for this container's action (invocation namespace, action,
    /// revision).
    pub(super) fn serves(&self, order: &ContainerCreationMessage) -> bool {
        self.invocation_namespace == order.invocation_namespace
            && self.doc_id == order.action.doc_id()
            && self.revision == order.revision
    }

    pub(super) fn has_run(&self) -> bool {
        self.ran.load(Ordering::SeqCst)
    }

    fn poll(&self, warmed: bool, last_duration_ms: Option<i64>, alive: bool) -> PollRequest {
        PollRequest {
            invocation_namespace: self.invocation_namespace.clone(),
            fqn_json: self.fqn_json.clone(),
            rev_json: self.rev_json.clone(),
            container_id: self.id.clone(),
            warmed,
            last_duration_ms,
            alive,
        }
    }
}

/// Why the polling phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Idle for `pause-grace` after running something.
    Pause,
    /// Drained, idle without ever running, or the scheduler side is gone.
    Remove,
}

/// The task of one container (module docs). `order` is the creation order that made it.
pub(super) async fn run(
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    creation: Creation,
    mut control: UnboundedReceiver<Control>,
) {
    let order = &creation.order;
    if let Err(error) = shared.processor.pool.provision(&creation.action).await {
        let (kind, reason) = match &error {
            ProvisionError::NotEnoughMemory { .. } => (
                ContainerCreationError::ResourceNotEnoughError,
                format!(
                    "creationId: {}, invoker[{}] doesn't have enough resource for container: {}",
                    order.creation_id,
                    shared.instance,
                    fqn_text(order)
                ),
            ),
            // The factory blamed the action: its image cannot be pulled or started.
            _ if error.status() == Status::DeveloperError => {
                (ContainerCreationError::BlackBoxError, error.to_string())
            }
            _ => (ContainerCreationError::WhiskError, error.to_string()),
        };
        warn!(%error, "the container could not be created");
        shared.refuse(order, kind, reason).await;
        finish(&shared, &slot, control).await;
        return;
    }
    let endpoint = SchedulerEndpoint {
        host: order.scheduler_host.clone(),
        port: order.rpc_port,
    };
    let client = match ActivationClient::new(endpoint) {
        Ok(client) => client,
        Err(error) => {
            warn!(%error, "cannot create the activation client");
            shared
                .refuse(
                    order,
                    ContainerCreationError::UnknownError,
                    "ContainerProxy init failed.".into(),
                )
                .await;
            shared.health.sample(false).await;
            finish(&shared, &slot, control).await;
            return;
        }
    };
    let key = |format: fn(&str, &str, &str, Option<&str>, u32, &str) -> String| {
        format(
            &shared.cluster,
            &slot.invocation_namespace,
            &slot.doc_id,
            slot.revision.as_deref(),
            shared.instance.instance,
            &slot.id,
        )
    };
    let mut proxy = Proxy {
        existing_key: key(keys::existing_container_key),
        warmed_key: key(keys::warmed_container_key),
        shared,
        slot,
        client: Some(client),
        warmed: false,
    };
    proxy
        .shared
        .registry
        .put(proxy.existing_key.clone(), String::new())
        .await;
    proxy.acknowledge(order).await;
    info!("container created");
    loop {
        proxy.shared.set_phase(&proxy.slot.id, Phase::Busy).await;
        match proxy.serve(&mut control).await {
            Stop::Remove => break,
            Stop::Pause => match proxy.pause(&mut control).await {
                Some(creation) => proxy.resume(&creation.order).await,
                None => break,
            },
        }
    }
    proxy.remove().await;
    finish(&proxy.shared, &proxy.slot, control).await;
}

/// Out of the books; creation orders that reached the container while it was going away are
/// served by the pool again (a new container).
async fn finish(shared: &Arc<Shared>, slot: &Slot, mut control: UnboundedReceiver<Control>) {
    shared.forget(&slot.id).await;
    control.close();
    while let Some(message) = control.recv().await {
        if let Control::Resume(creation) = message {
            shared.redispatch(*creation);
        }
    }
    info!("container removed");
}

/// The polling side of one container.
struct Proxy {
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    /// `None` once the channel broke (no goodbye is sent on a broken channel).
    client: Option<ActivationClient>,
    warmed: bool,
    existing_key: String,
    warmed_key: String,
}

/// One finished poll.
type Polled = (Result<FetchReply, GrpcError>, Duration);

impl Proxy {
    async fn acknowledge(&self, order: &ContainerCreationMessage) {
        let ack = ContainerCreationAckMessage::success(order, &self.shared.instance);
        self.shared
            .ack(ack, &order.root_scheduler_index.as_string)
            .await;
    }

    fn spawn_poll(&self, polls: &mut JoinSet<Polled>, last_duration: Option<i64>, delay: bool) {
        let Some(client) = self.client.clone() else {
            return;
        };
        let request = self.slot.poll(self.warmed, last_duration, true);
        polls.spawn(async move {
            if delay {
                tokio::time::sleep(MIN_POLL_INTERVAL).await;
            }
            let sent = Instant::now();
            let reply = client.fetch(&request).await;
            (reply, sent.elapsed())
        });
    }

    /// Polls and runs until the container should pause or go away.
    async fn serve(&mut self, control: &mut UnboundedReceiver<Control>) -> Stop {
        let mut polls: JoinSet<Polled> = JoinSet::new();
        let mut runs: JoinSet<(Option<u64>, bool)> = JoinSet::new();
        let mut last_duration: Option<i64> = None;
        let mut last_activity = Instant::now();
        let mut leaving: Option<Stop> = None;
        let mut delay_next = false;
        let mut control_open = true;
        loop {
            if leaving.is_none() && self.client.is_some() {
                let target = if self.warmed {
                    self.slot.concurrency
                } else {
                    1
                };
                while polls.len() + runs.len() < target {
                    self.spawn_poll(&mut polls, last_duration.take(), delay_next);
                    delay_next = false;
                }
            }
            if polls.is_empty() && runs.is_empty() {
                return leaving.unwrap_or(Stop::Remove);
            }
            tokio::select! {
                Some(joined) = polls.join_next() => {
                    let Ok((reply, took)) = joined else {
                        continue;
                    };
                    match reply {
                        Ok(FetchReply::Activation(message)) => {
                            last_activity = Instant::now();
                            if leaving == Some(Stop::Pause) {
                                leaving = None;
                            }
                            self.spawn_run(&mut runs, *message);
                        }
                        Ok(FetchReply::NoActivation) => {
                            if leaving.is_none()
                                && runs.is_empty()
                                && last_activity.elapsed() >= self.shared.timers.pause_grace
                            {
                                leaving = Some(if self.warmed { Stop::Pause } else { Stop::Remove });
                            }
                            delay_next = took < MIN_POLL_INTERVAL;
                        }
                        Ok(FetchReply::NotJson) => {
                            debug!("the scheduler's answer is not JSON: polling again");
                            delay_next = took < MIN_POLL_INTERVAL;
                        }
                        Ok(FetchReply::NoMemoryQueue) => {
                            if leaving.is_none() && !self.follow_leader(false).await {
                                leaving = Some(Stop::Remove);
                            }
                        }
                        Err(error) if !error.is_unresolvable_host() => {
                            warn!(%error, "polling the scheduler failed");
                            if leaving.is_none() && !self.follow_leader(true).await {
                                leaving = Some(Stop::Remove);
                            }
                        }
                        Err(error) => {
                            warn!(%error, "the scheduler's host cannot be resolved: removing the container");
                            self.client = None;
                            leaving = Some(Stop::Remove);
                        }
                        Ok(FetchReply::ActionMismatch) => {
                            info!("the scheduler's queue holds another revision: removing the container");
                            leaving = Some(Stop::Remove);
                        }
                        Ok(FetchReply::WrongShape(text)) => {
                            warn!(answer = %text, "the scheduler's answer has the wrong shape: removing the container");
                            leaving = Some(Stop::Remove);
                        }
                    }
                }
                Some(joined) = runs.join_next() => {
                    let (duration, ok) = joined.unwrap_or((None, false));
                    self.warmed = true;
                    self.slot.ran.store(true, Ordering::SeqCst);
                    last_duration = duration.and_then(|d| i64::try_from(d).ok());
                    last_activity = Instant::now();
                    self.shared.health.sample(ok).await;
                }
                message = control.recv(), if control_open => match message {
                    Some(Control::Drain) => {
                        info!("draining");
                        self.shared.set_phase(&self.slot.id, Phase::Draining).await;
                        // Deleted first, so the scheduler stops counting on this container.
                        self.shared.registry.delete(&self.existing_key).await;
                        leaving = Some(Stop::Remove);
                    }
                    Some(Control::Resume(creation)) => {
                        // The pool resumes paused containers only; an order that raced with this
                        // container's resume is served by a new one.
                        self.shared.redispatch(*creation);
                    }
                    None => control_open = false,
                },
            }
        }
    }

    fn spawn_run(&self, runs: &mut JoinSet<(Option<u64>, bool)>, message: ActivationMessage) {
        let processor = self.shared.processor.clone();
        let span = info_span!("activation", activation_id = %message.activation_id);
        runs.spawn(
            async move {
                let activation = processor.activate(message).await;
                let ok = activation.response.status != Status::WhiskError;
                (activation.duration, ok)
            }
            .instrument(span),
        );
    }

    /// After "no memory queue" or a failed poll: the queue's leader from etcd, and a client to it.
    /// `broken` says the old channel failed (no goodbye on it). Returns whether polling goes on.
    async fn follow_leader(&mut self, broken: bool) -> bool {
        let old = self.client.take();
        if !broken && let Some(old) = &old {
            old.goodbye(&self.slot.poll(self.warmed, None, false)).await;
        }
        let key = keys::queue_leader_key(
            &self.shared.cluster,
            &self.slot.invocation_namespace,
            &self.slot.doc_id,
        );
        let leader = match self.shared.registry.get(&key).await {
            Ok(Some(value)) => serde_json::from_str::<SchedulerEndpoints>(&value).ok(),
            Ok(None) => None,
            Err(error) => {
                warn!(%error, %key, "cannot read the queue's leader");
                None
            }
        };
        let Some(leader) = leader else {
            info!(%key, "no queue leader: removing the container");
            return false;
        };
        let endpoint = SchedulerEndpoint {
            host: leader.host,
            port: leader.rpc_port,
        };
        info!(%endpoint, "polling the queue's leader");
        match ActivationClient::new(endpoint) {
            Ok(client) => {
                self.client = Some(client);
                true
            }
            Err(error) => {
                warn!(%error, "cannot create a client to the queue's leader");
                false
            }
        }
    }

    /// Paused until a creation order resumes it (returned) or it should go away (`None`).
    async fn pause(&mut self, control: &mut UnboundedReceiver<Control>) -> Option<Box<Creation>> {
        info!("pausing");
        self.shared.set_phase(&self.slot.id, Phase::Paused).await;
        let registry = &self.shared.registry;
        registry.delete(&self.existing_key).await;
        registry.put(self.warmed_key.clone(), String::new()).await;
        tokio::select! {
            message = control.recv() => match message {
                Some(Control::Resume(creation)) => Some(creation),
                Some(Control::Drain) | None => None,
            },
            () = tokio::time::sleep(self.shared.timers.idle_container) => {
                info!("paused for idle-container: removing");
                None
            }
        }
    }

    /// Back from pause for `order`.
    async fn resume(&mut self, order: &ContainerCreationMessage) {
        info!(creation_id = %order.creation_id, "resuming");
        let registry = &self.shared.registry;
        registry.delete(&self.warmed_key).await;
        registry.put(self.existing_key.clone(), String::new()).await;
        let endpoint = SchedulerEndpoint {
            host: order.scheduler_host.clone(),
            port: order.rpc_port,
        };
        let same = self
            .client
            .as_ref()
            .is_some_and(|client| *client.endpoint() == endpoint);
        if !same {
            if let Some(old) = self.client.take() {
                old.goodbye(&self.slot.poll(self.warmed, None, false)).await;
            }
            match ActivationClient::new(endpoint) {
                Ok(client) => self.client = Some(client),
                Err(error) => warn!(%error, "cannot create the activation client"),
            }
        }
        self.acknowledge(order).await;
    }

    /// Keys deleted and one goodbye poll (module docs, step 5).
    async fn remove(&mut self) {
        let registry = &self.shared.registry;
        registry.delete(&self.existing_key).await;
        registry.delete(&self.warmed_key).await;
        if let Some(client) = self.client.take() {
            client
                .goodbye(&self.slot.poll(self.warmed, None, false))
                .await;
        }
    }
}
