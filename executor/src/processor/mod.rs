//! The path from a parsed message to a finished record, shared by both sources of work (the Kafka
//! invoker and the standalone server).
//!
//! [`Processor::process`] takes one message from `invoker{N}` to its end (docs/protocol.md §3):
//! parse (a malformed message is logged, counted and skipped, with no ack) → blacklist check →
//! fetch the action ([`ActionLoader`]) → limits → [`Pool::run`] → record ([`WhiskActivation`]) →
//! the record handed to the activation store (which writes behind: [`crate::store::RecordQueue`])
//! → acks ([`crate::ack`]), which return once the slot-freeing ack is with the producer. Every
//! parsed message gets exactly one slot-freeing ack: a panic while processing it is caught and
//! answered with a whisk error ([`MSG_INTERNAL`](crate::record::MSG_INTERNAL)). The standalone
//! server enters at [`Processor::activate`] with a message it built itself, and has no acks to
//! send.
//!
//! The controller's health test action is answered in-process ([`health`]).

mod health;
#[cfg(test)]
mod tests;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use factory::{ActivationContext, RunRequest};
use futures::FutureExt;
use tracing::{Instrument, error, info, info_span, warn};

use crate::ack::{AckPlan, AckSender, plan};
use crate::action::ExecutableAction;
use crate::blacklist::Blacklist;
use crate::loader::ActionLoader;
use crate::log_throttle::{LogThrottle, Verdict};
use crate::message::ActivationMessage;
use crate::metrics::{KindLabels, Metrics, StartLabels};
use crate::pool::{Completed, Job, Pool};
use crate::record::{FallbackReason, WhiskActivation};
use crate::store::{ActivationStore, StoreLevel, should_store};

pub use health::{HEALTH_ACTION_NAMESPACE, HEALTH_ACTION_PREFIX, identity, is_health_action};

/// Malformed messages logged per interval; a producer that floods the topic with them cannot flood
/// the log (`invoker_messages_total{result="malformed"}` counts them all).
static MALFORMED_LOG: LogThrottle = LogThrottle::new(5, Duration::from_secs(10));
/// Bytes of a malformed message quoted in its log line.
const MALFORMED_EXCERPT_BYTES: usize = 200;

/// The action name that makes processing panic, in binaries built for tests only (the
/// `fault-injection` feature): the fault-injection suite proves a panic is answered.
#[cfg(any(test, feature = "fault-injection"))]
pub const INJECTED_PANIC_ACTION: &str = "wasm-invoker-injected-panic";

/// An activation's end, before anything is sent or stored.
struct Settled {
    activation: WhiskActivation,
    plan: AckPlan,
    /// Whether the store level applies (false: never stored, as a blacklisted namespace's).
    storable: bool,
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

impl Processor {
    /// Takes one raw message to its end. Returns whether it parsed (and so was answered).
    pub async fn process(&self, payload: &[u8]) -> bool {
        let message = match ActivationMessage::parse(payload) {
            Ok(message) => message,
            Err(error) => {
                self.metrics.message(false);
                if let Verdict::Log { suppressed } = MALFORMED_LOG.admit() {
                    let excerpt = &payload[..payload.len().min(MALFORMED_EXCERPT_BYTES)];
                    let start = String::from_utf8_lossy(excerpt);
                    warn!(%error, message = %start, suppressed, "skipping a message that does not parse (no ack)");
                }
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
        let settled = match AssertUnwindSafe(self.settle(&message)).catch_unwind().await {
            Ok(settled) => settled,
            Err(panic) => {
                let what = factory::error::panic_message(panic.as_ref()).unwrap_or_default();
                error!(panic = %what, "processing the activation panicked: answering with a whisk error");
                self.metrics.panics.inc();
                self.fallback(&message, FallbackReason::Internal)
            }
        };
        let Settled {
            activation,
            plan,
            storable,
        } = settled;
        if storable {
            self.store(&message, &activation).await;
        }
        if let Some(acks) = &self.acks {
            acks.acknowledge(&message, &activation, plan).await;
        }
        activation
    }

    /// Everything but the acks and the record's store: what can fail unexpectedly.
    async fn settle(&self, message: &ActivationMessage) -> Settled {
        if self.blacklist.contains(&message.user.namespace.name) {
            info!(namespace = %message.user.namespace.name, "namespace is blacklisted");
            return self.fallback(message, FallbackReason::Blacklisted);
        }
        #[cfg(any(test, feature = "fault-injection"))]
        if message.action.name == INJECTED_PANIC_ACTION {
            panic!("injected panic (fault-injection hook)");
        }
        if is_health_action(message) {
            return match self.load_health_action(message).await {
                Ok(action) => self.finish(message, &action, identity(message)),
                Err(reason) => self.fallback(message, reason),
            };
        }
        let (loaded, lookup) = self.loader.load_with_lookup(message).await;
        self.metrics.entity_cache_lookup(lookup);
        let action = match loaded {
            Ok(action) => action,
            Err(reason) => return self.fallback(message, reason),
        };
        let completed = self.pool.run(job(message, &action)).await;
        self.finish(message, &action, completed)
    }

    fn fallback(&self, message: &ActivationMessage, reason: FallbackReason) -> Settled {
        let activation = WhiskActivation::fallback(message, &reason, SystemTime::now());
        self.metrics
            .activation("unknown", activation.response.status.code());
        let plan = match reason {
            FallbackReason::Blacklisted => AckPlan::CombinedShrunk,
            _ => AckPlan::Combined,
        };
        Settled {
            activation,
            plan,
            storable: reason.stored(),
        }
    }

    fn finish(
        &self,
        message: &ActivationMessage,
        action: &ExecutableAction,
        completed: Completed,
    ) -> Settled {
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

        Settled {
            plan: plan(message.blocking, action.limits.logs, start),
            activation,
            storable: true,
        }
    }

    /// Hands the record to the activation store when its store level says so. The invoker's store
    /// is a [`crate::store::RecordQueue`] and the standalone server's writes behind too: neither
    /// waits for the database.
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
