//! The path from a parsed message to a finished record, shared by both sources of work (the Kafka
//! invoker and the standalone server).
//!
//! [`Processor::process`] takes one message from `invoker{N}` to its end (docs/protocol.md §3):
//! parse (a malformed message is logged, counted and skipped, with no ack) → blacklist check →
//! fetch the action ([`ActionLoader`]) → limits → [`Pool::run`] → record ([`WhiskActivation`]) →
//! acks ([`crate::ack`]) in parallel with storing the record. Every parsed message gets exactly one
//! slot-freeing ack. The standalone server enters at [`Processor::activate`] with a message it built
//! itself, and has no acks to send.
//!
//! The controller's health test action is answered in-process ([`health`]).

mod health;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use factory::{ActivationContext, RunRequest};
use tracing::{Instrument, info, info_span, warn};

use crate::ack::{AckPlan, AckSender, plan};
use crate::action::ExecutableAction;
use crate::blacklist::Blacklist;
use crate::loader::ActionLoader;
use crate::message::ActivationMessage;
use crate::metrics::{KindLabels, Metrics, StartLabels};
use crate::pool::{Completed, Job, Pool};
use crate::record::{FallbackReason, WhiskActivation};
use crate::store::{ActivationStore, StoreLevel, should_store};

pub use health::{HEALTH_ACTION_NAMESPACE, HEALTH_ACTION_PREFIX, identity, is_health_action};

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

    async fn fallback(
        &self,
        message: &ActivationMessage,
        reason: FallbackReason,
    ) -> WhiskActivation {
        let activation = WhiskActivation::fallback(message, &reason, SystemTime::now());
        self.metrics
            .activation("unknown", activation.response.status.code());
        let plan = match reason {
            FallbackReason::Blacklisted => AckPlan::CombinedShrunk,
            _ => AckPlan::Combined,
        };
        let ack = async {
            if let Some(acks) = &self.acks {
                acks.acknowledge(message, &activation, plan).await;
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
