//! The Kafka invoker: OpenWhisk's `InvokerReactive` over the pool.
//!
//! [`Processor::process`] takes one message from `invoker{N}` to its end (protocol spec 3.1):
//! parse (a malformed message is logged, counted and skipped, with no ack) → blacklist check →
//! fetch the action ([`ActionLoader`]) → limits → [`Pool::run`] → record ([`WhiskActivation`]) →
//! acks ([`crate::ack`]) in parallel with storing the record. Every parsed message gets exactly one
//! slot-freeing ack.
//!
//! The controller's health test action (`whisk.system/invokerHealthTestAction<C>`, code
//! `function main(params) { return params; }`) is answered in-process with its identity result, so a
//! node without Docker (or without a Node.js runtime) is still found healthy. It is recognised by
//! namespace and name alone and its document is read without resolving its kind (`nodejs:20` needs
//! the runtimes manifest, which such a node may not have); the record keeps the document's kind.
//!
//! [`Invoker`] is the whole service: topic check, producer, pool, feed, pinger, admin server,
//! blacklist refresh, and the orderly shutdown (stop consuming, finish running activations, send
//! their acks and records, one disabled ping).

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use factory::{ActivationContext, Outcome, RunRequest, Status};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::ack::{AckSender, plan};
use crate::action::ExecutableAction;
use crate::admin::{self, Admin};
use crate::kafka::{self, Feed, FeedConfig, KafkaPlumbingError, Producer};
use crate::message::{ActivationMessage, InvokerInstanceId};
use crate::metrics::{KindLabels, Metrics, StartLabels};
use crate::ping::Pinger;
use crate::pool::{Completed, Job, Pool, Start};
use crate::record::{FallbackReason, WhiskActivation};
use crate::store::{
    ActionLoader, ActivationStore, EntityStore, StoreError, StoreLevel, classify, should_store,
};

/// Namespace of the controller's health test actions.
pub const HEALTH_ACTION_NAMESPACE: &str = "whisk.system";
/// Name prefix of the controller's health test actions (`invokerHealthTestAction<C>`).
pub const HEALTH_ACTION_PREFIX: &str = "invokerHealthTestAction";

/// The set of blocked namespaces, refreshed from the subjects database.
#[derive(Debug, Default)]
pub struct Blacklist {
    namespaces: RwLock<BTreeSet<String>>,
}

impl Blacklist {
    /// Whether `namespace` is blocked.
    pub fn contains(&self, namespace: &str) -> bool {
        self.namespaces
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(namespace)
    }

    /// Replaces the set.
    pub fn replace(&self, namespaces: BTreeSet<String>) {
        *self
            .namespaces
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = namespaces;
    }

    /// Reads the set from `store` once; on failure the old set stays.
    pub async fn refresh(&self, store: &dyn EntityStore) {
        match store.blocked_namespaces().await {
            Ok(namespaces) => {
                debug!(count = namespaces.len(), "blacklist refreshed");
                self.replace(namespaces);
            }
            Err(error) => warn!(%error, "blacklist refresh failed; keeping the previous list"),
        }
    }
}

/// Everything one message needs on its way.
pub struct Processor {
    /// The pool.
    pub pool: Arc<Pool>,
    /// Fetches actions.
    pub loader: Arc<ActionLoader>,
    /// Stores records.
    pub activations: Arc<dyn ActivationStore>,
    /// Sends acks and events; `None` for a source without Kafka (the standalone server).
    pub acks: Option<AckSender>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Blocked namespaces.
    pub blacklist: Arc<Blacklist>,
    /// `store-blocking-result-level`.
    pub blocking_level: StoreLevel,
    /// `store-non-blocking-result-level`.
    pub non_blocking_level: StoreLevel,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// Whether a message is the controller's health test action.
pub fn is_health_action(message: &ActivationMessage) -> bool {
    message.action.path == HEALTH_ACTION_NAMESPACE
        && message.action.name.starts_with(HEALTH_ACTION_PREFIX)
}

impl Processor {
    /// Takes one raw message to its end. Returns whether it parsed (and so was answered).
    pub async fn process(&self, payload: &[u8]) -> bool {
        let message = match ActivationMessage::parse(payload) {
            Ok(message) => message,
            Err(error) => {
                self.metrics.message(false);
                let start =
                    String::from_utf8_lossy(&payload[..payload.len().min(200)]).into_owned();
                warn!(%error, message = %start, "skipping a message that does not parse (no ack)");
                return false;
            }
        };
        self.metrics.message(true);
        let span = info_span!("activation", activation_id = %message.activation_id, action = %message.action_doc_id());
        self.activate(message).instrument(span).await;
        true
    }

    /// Runs a parsed message: fallback, health action or pool; then acks and record. Returns the
    /// record (the standalone server answers blocking invokes with it).
    pub async fn activate(&self, message: ActivationMessage) -> WhiskActivation {
        if self.blacklist.contains(&message.user.namespace.name) {
            info!(namespace = %message.user.namespace.name, "namespace is blacklisted");
            return self.fallback(&message, FallbackReason::Blacklisted).await;
        }
        if is_health_action(&message) {
            return match self.load_health_action(&message).await {
                Ok(action) => self.finish(&message, &action, identity(&message)).await,
                Err(reason) => self.fallback(&message, reason).await,
            };
        }
        let (loaded, lookup) = self.loader.load_with_lookup(&message).await;
        self.metrics.entity_cache_lookup(lookup);
        let action = match loaded {
            Ok(action) => action,
            Err(reason) => {
                return self.fallback(&message, reason).await;
            }
        };
        let completed = self.pool.run(job(&message, &action)).await;
        self.finish(&message, &action, completed).await
    }

    /// The health test action's document as an action whose kind is the one stored (no kind
    /// resolution, no code: it runs in-process). A missing or unreadable document is a fallback as
    /// for any action. Its limits are not checked: the controller writes the defaults.
    async fn load_health_action(
        &self,
        message: &ActivationMessage,
    ) -> Result<Arc<ExecutableAction>, FallbackReason> {
        let id = message.action_doc_id();
        let store = self.loader.store();
        let fetched = match store.get_action(&id, message.revision.as_deref()).await {
            Err(StoreError::RevisionMismatch { .. }) => store.get_action(&id, None).await,
            other => other,
        };
        let as_stored = |kind: &str| Some(kind.to_string());
        let action = fetched
            .and_then(|document| Ok(document.into_executable(None, &as_stored)?))
            .map_err(|error| {
                warn!(%error, action = %id, "health test action fetch failed");
                classify(&error)
            })?;
        if !action.executable {
            warn!(action = %id, "the health test action is not executable");
            return Err(FallbackReason::FetchFailed);
        }
        Ok(Arc::new(action))
    }

    async fn fallback(
        &self,
        message: &ActivationMessage,
        reason: FallbackReason,
    ) -> WhiskActivation {
        let activation = WhiskActivation::fallback(message, &reason, SystemTime::now());
        self.metrics
            .activation("unknown", activation.response.status.code());
        let ack = async {
            if let Some(acks) = &self.acks {
                acks.acknowledge(message, &activation, crate::ack::AckPlan::Combined)
                    .await;
            }
        };
        if reason.stored() {
            tokio::join!(ack, self.store(message, &activation));
        } else {
            ack.await;
        }
        activation
    }

    async fn finish(
        &self,
        message: &ActivationMessage,
        action: &ExecutableAction,
        completed: Completed,
    ) -> WhiskActivation {
        let Completed { outcome, start } = completed;
        let work_start = outcome
            .start
            .checked_sub(outcome.init_time.unwrap_or_default())
            .unwrap_or(outcome.start);
        let requested = UNIX_EPOCH + Duration::from_millis(message.transid.start_millis());
        let wait = work_start.duration_since(requested).unwrap_or_default();
        let activation = WhiskActivation::from_outcome(message, action, &outcome, wait);

        let kind = KindLabels {
            kind: action.kind.clone(),
        };
        self.metrics.activation(&action.kind, outcome.status.code());
        self.metrics
            .starts
            .get_or_create(&StartLabels {
                start: start.as_str().into(),
            })
            .inc();
        self.metrics.wait.observe(wait.as_secs_f64());
        self.metrics
            .duration
            .get_or_create(&kind)
            .observe(Duration::from_millis(activation.duration.unwrap_or(0)).as_secs_f64());
        if let Some(init) = outcome.init_time {
            self.metrics
                .init
                .get_or_create(&kind)
                .observe(init.as_secs_f64());
        }

        let plan = plan(message.blocking, action.limits.logs, start);
        let ack = async {
            if let Some(acks) = &self.acks {
                acks.acknowledge(message, &activation, plan).await;
            }
        };
        tokio::join!(ack, self.store(message, &activation));
        activation
    }

    async fn store(&self, message: &ActivationMessage, activation: &WhiskActivation) {
        if !should_store(
            &message.user.limits,
            message.transid.extra_logging(),
            message.blocking,
            activation.response.status,
            self.blocking_level,
            self.non_blocking_level,
        ) {
            return;
        }
        if let Err(error) = self.activations.store(activation).await {
            warn!(%error, "storing the activation record failed");
        }
    }
}

/// The pool job of a message: params without the init args, context, limits.
pub fn job(message: &ActivationMessage, action: &Arc<ExecutableAction>) -> Job {
    let (init_env, params) =
        ExecutableAction::split_init_args(message.params(), &message.init_args);
    let context = ActivationContext {
        activation_id: message.activation_id.to_string(),
        namespace: message.user.namespace.name.clone(),
        action_name: action.action_name(),
        action_version: message
            .action
            .version
            .clone()
            .or_else(|| Some(action.version.clone())),
        transaction_id: message.transid.id().to_string(),
        api_key: if action.provide_api_key {
            message.user.api_key().map(str::to_string)
        } else {
            None
        },
        deadline: SystemTime::now() + action.limits.timeout_duration(),
    };
    Job {
        action: action.clone(),
        namespace: message.user.namespace.name.clone(),
        run: RunRequest {
            params,
            context,
            limits: action.limits,
        },
        init_env,
    }
}

/// The health test action's run: its code is the identity function, so its result is its params.
fn identity(message: &ActivationMessage) -> Completed {
    let now = SystemTime::now();
    let result = match message.params() {
        serde_json::Value::Object(map) => serde_json::Value::Object(map),
        // `main` of a Node.js action must return an object; anything else is what Node would
        // refuse.
        other => serde_json::json!({ "params": other }),
    };
    let size = result.to_string().len();
    Completed {
        outcome: Outcome {
            status: Status::Success,
            result: Some(result),
            size: Some(size),
            logs: Vec::new(),
            start: now,
            end: now,
            init_time: None,
            timed_out: false,
            fuel: None,
            fault: None,
        },
        start: Start::Warm,
    }
}

/// Errors that stop the invoker from starting.
#[derive(Debug, Error)]
pub enum InvokerError {
    /// Kafka could not be set up.
    #[error(transparent)]
    Kafka(#[from] KafkaPlumbingError),
    /// The admin port could not be bound.
    #[error("cannot listen on port {port}: {source}")]
    Listen {
        /// The port.
        port: u16,
        /// Why.
        source: std::io::Error,
    },
}

/// What [`Invoker::run`] needs.
pub struct InvokerParts {
    /// This invoker's identity.
    pub instance: InvokerInstanceId,
    /// Kafka bootstrap servers.
    pub kafka_hosts: String,
    /// The feed's `fetch.wait.max.ms` (default [`kafka::DEFAULT_FETCH_WAIT_MAX_MS`]).
    pub fetch_wait_max_ms: u32,
    /// Topic prefix (`whisk.kafka.topics.prefix`).
    pub topic_prefix: String,
    /// The `events` topic (with its prefix) when user events are enabled.
    pub events_topic: Option<String>,
    /// The started pool.
    pub pool: Arc<Pool>,
    /// The action loader.
    pub loader: Arc<ActionLoader>,
    /// The entity store, for the blacklist.
    pub entities: Arc<dyn EntityStore>,
    /// The activation store.
    pub activations: Arc<dyn ActivationStore>,
    /// Store levels (blocking, non-blocking).
    pub store_levels: (StoreLevel, StoreLevel),
    /// Blacklist refresh interval.
    pub blacklist_poll: Duration,
    /// Admin port (0: any free port).
    pub port: u16,
    /// Admin credentials.
    pub admin_credentials: (String, String),
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for InvokerParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvokerParts")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// Longest time shutdown waits for running activations (OpenWhisk's largest action timeout, plus
/// a margin for acks and records).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(300 + 30);

/// The running Kafka invoker.
#[derive(Debug)]
pub struct Invoker;

impl Invoker {
    /// Runs the invoker until `shutdown` fires, then drains and stops (spec 12.3 start order).
    pub async fn run(parts: InvokerParts, shutdown: CancellationToken) -> Result<(), InvokerError> {
        let topic = format!("{}invoker{}", parts.topic_prefix, parts.instance.instance);
        kafka::ensure_topic(&parts.kafka_hosts, &topic).await?;
        let producer = Producer::new(&parts.kafka_hosts)?;

        let blacklist = Arc::new(Blacklist::default());
        blacklist.refresh(parts.entities.as_ref()).await;
        let background = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn({
            let blacklist = blacklist.clone();
            let entities = parts.entities.clone();
            let cancel = background.clone();
            let every = parts.blacklist_poll.max(Duration::from_secs(1));
            async move {
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(every) => blacklist.refresh(entities.as_ref()).await,
                    }
                }
            }
        });

        let acks = AckSender::new(
            producer.clone(),
            parts.topic_prefix.clone(),
            parts.instance.clone(),
            parts.events_topic.clone(),
            parts.metrics.clone(),
        );
        let processor = Arc::new(Processor {
            pool: parts.pool.clone(),
            loader: parts.loader.clone(),
            activations: parts.activations.clone(),
            acks: Some(acks),
            metrics: parts.metrics.clone(),
            blacklist,
            blocking_level: parts.store_levels.0,
            non_blocking_level: parts.store_levels.1,
        });

        let permits = Arc::new(Semaphore::new(parts.pool.max_peek()));
        let mut feed = Feed::start(
            FeedConfig {
                bootstrap: parts.kafka_hosts.clone(),
                topic: topic.clone(),
                permits,
                fetch_wait_max_ms: parts.fetch_wait_max_ms,
            },
            parts.metrics.clone(),
        )?;

        let pinger = Arc::new(Pinger::start(
            producer.clone(),
            format!("{}health", parts.topic_prefix),
            parts.instance.clone(),
        ));
        let listener = TcpListener::bind(("0.0.0.0", parts.port))
            .await
            .map_err(|source| InvokerError::Listen {
                port: parts.port,
                source,
            })?;
        let admin = Arc::new(Admin {
            pinger: pinger.clone(),
            metrics: parts.metrics.clone(),
            pool: Some(parts.pool.clone()),
            username: parts.admin_credentials.0.clone(),
            password: parts.admin_credentials.1.clone(),
        });
        let address = listener.local_addr().ok();
        tasks.spawn(admin::serve(listener, admin, background.clone()));
        info!(invoker = %parts.instance, %topic, ?address, max_peek = parts.pool.max_peek(), "invoker started");

        let work = TaskTracker::new();
        loop {
            let delivered = tokio::select! {
                () = shutdown.cancelled() => break,
                delivered = feed.messages.recv() => delivered,
            };
            let Some(delivered) = delivered else { break };
            let processor = processor.clone();
            work.spawn(async move {
                processor.process(&delivered.payload).await;
                // The slot is free: let the feed take one more message.
                drop(delivered.permit);
            });
        }

        info!("shutting down: no new messages; finishing the running activations");
        feed.stop().await;
        // Messages already taken (and committed) are still processed.
        while let Ok(delivered) = feed.messages.try_recv() {
            let processor = processor.clone();
            work.spawn(async move {
                processor.process(&delivered.payload).await;
                drop(delivered.permit);
            });
        }
        work.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, work.wait())
            .await
            .is_err()
        {
            warn!("activations still running after the shutdown grace");
        }
        pinger.stop().await;
        background.cancel();
        tasks.close();
        tasks.wait().await;
        parts.pool.shutdown(Duration::from_secs(5)).await;
        producer.flush(Duration::from_secs(10));
        info!("invoker stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::document::{ActionDocument, BuiltinKinds};
    use crate::pool::PoolConfig;
    use crate::record::MSG_INCOMPATIBLE;
    use crate::store::LimitRanges;
    use crate::store::local::LocalStore;
    use factory::Code;
    use serde_json::{Value, json};

    const HEALTH_MESSAGE: &[u8] =
        include_bytes!("../../tests/fixtures/kafka/activation-message-health-test.json");
    const HEALTH_DOCUMENT: &[u8] =
        include_bytes!("../../tests/fixtures/couchdb/action-health-test.json");

    fn health_document() -> Value {
        let mut document: Value = serde_json::from_slice(HEALTH_DOCUMENT).expect("fixture");
        let map = document.as_object_mut().expect("a document object");
        map.remove("_rev");
        map.remove("_id");
        document
    }

    /// A processor over a local store, a pool without any factory and, like a node without Docker,
    /// no runtimes manifest (only the built-in wasm kinds resolve).
    async fn processor(dir: &std::path::Path) -> (Processor, Arc<LocalStore>) {
        let store = Arc::new(LocalStore::new(dir));
        let pool = Pool::start(PoolConfig::default(), Vec::new(), Arc::new(SystemClock))
            .await
            .expect("pool");
        let processor = Processor {
            pool: Arc::new(pool),
            loader: Arc::new(ActionLoader::new(
                store.clone(),
                Arc::new(BuiltinKinds),
                LimitRanges::default(),
                16,
            )),
            activations: store.clone(),
            acks: None,
            metrics: Arc::new(Metrics::new()),
            blacklist: Arc::new(Blacklist::default()),
            blocking_level: StoreLevel::Always,
            non_blocking_level: StoreLevel::Always,
        };
        (processor, store)
    }

    async fn put(store: &LocalStore, document: Value, code: Option<Code>) -> ActionDocument {
        store
            .put_action(
                ActionDocument::from_value(document).expect("document"),
                code,
            )
            .await
            .expect("put action")
    }

    #[tokio::test]
    async fn test_health_action_is_answered_without_a_runtimes_manifest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (processor, store) = processor(dir.path()).await;
        let code = Code::Text("function main(params) { return params; }".into());
        put(&store, health_document(), Some(code.clone())).await;

        let mut message = ActivationMessage::parse(HEALTH_MESSAGE).expect("health message");
        message.content = Some(json!({"probe": 1}));
        assert!(is_health_action(&message));
        let record = processor.activate(message.clone()).await;
        assert_eq!(record.response.status, Status::Success);
        assert_eq!(record.response.result, Some(json!({"probe": 1})));
        assert_eq!(record.annotations.get("kind"), Some(&json!("nodejs:20")));
        assert_eq!(
            record.annotations.get("path"),
            Some(&json!("whisk.system/invokerHealthTestAction0"))
        );
        let stored = store
            .get("whisk.system", message.activation_id.as_str())
            .await
            .expect("the record is stored");
        assert_eq!(stored.response.status, Status::Success);

        // The same document as a user action: its kind does not resolve on this node.
        let mut user = health_document();
        user["namespace"] = json!("guest");
        user["name"] = json!("identity");
        put(&store, user, Some(code)).await;
        let mut other = message.clone();
        other.action.path = "guest".into();
        other.action.name = "identity".into();
        other.activation_id = crate::message::ActivationId::generate();
        assert!(!is_health_action(&other));
        let record = processor.activate(other).await;
        assert_eq!(record.response.status, Status::WhiskError);
        assert_eq!(
            record.response.result,
            Some(json!({"error": MSG_INCOMPATIBLE}))
        );
    }

    #[tokio::test]
    async fn test_entity_cache_lookups_are_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (processor, store) = processor(dir.path()).await;
        let mut document = health_document();
        document["namespace"] = json!("guest");
        document["name"] = json!("box");
        document["exec"] = json!({"kind": "blackbox", "image": "janedoe/box:1", "binary": false});
        let stored = put(&store, document, None).await;
        let mut message = ActivationMessage::parse(HEALTH_MESSAGE).expect("message");
        message.action.path = "guest".into();
        message.action.name = "box".into();
        message.revision = stored.rev.clone();
        assert!(message.revision.is_some());
        // No factory runs blackbox here: each run is a whisk error, but the document loads.
        for _ in 0..3 {
            message.activation_id = crate::message::ActivationId::generate();
            let record = processor.activate(message.clone()).await;
            assert_eq!(record.annotations.get("kind"), Some(&json!("blackbox")));
        }
        // Without a revision the cache is bypassed: a store read, a miss.
        message.revision = None;
        processor.activate(message).await;
        let text = processor.metrics.render(None);
        assert!(
            text.contains(r#"invoker_entity_cache_total{result="miss"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"invoker_entity_cache_total{result="hit"} 2"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn test_missing_health_action_is_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (processor, _store) = processor(dir.path()).await;
        let message = ActivationMessage::parse(HEALTH_MESSAGE).expect("health message");
        let record = processor.activate(message).await;
        assert_eq!(record.response.status, Status::ApplicationError);
        assert_eq!(
            record.response.result,
            Some(json!({"error": crate::record::MSG_NOT_FOUND}))
        );
    }
}
