//! Acknowledgements to the controller (docs/protocol.md §4): which acks an activation gets, in which
//! order, shrunk or whole, and the user event that goes with each slot-freeing one.
//!
//! | case | acks |
//! |---|---|
//! | blocking, logs collected (log limit > 0) | `ResultMessage` (logs emptied), then `CompletionMessage` |
//! | blocking, log limit 0 | `CombinedCompletionAndResultMessage` |
//! | non-blocking | `CompletionMessage` |
//! | no container ran (fetch error, limits, start failure) | Combined (shrunk when non-blocking) |
//! | namespace blacklisted | Combined, always shrunk (as OpenWhisk's `InvokerReactive`) |
//! | aborted with another job's failed start or init | blocking: Combined; non-blocking: Completion |
//!
//! Every ack of a non-blocking activation is sent shrunk; a blocking one that Kafka refuses as too large
//! is re-sent shrunk. `isSystemError` is true only for status 3. The transid is echoed unchanged.
//!
//! [`AckSender::acknowledge`] returns once the acks are in the producer's queue, so the
//! activation's slot is free at once; their delivery goes on in the background, usually without a
//! task of its own ([`delivery`]):
//! an ack the broker does not take is sent again until [`DEFAULT_ACK_RETRY_WINDOW`] (configurable)
//! after its activation ended.

mod delivery;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::fatal::Fatal;
use crate::kafka::Producer;
use crate::message::{AcknowledgementMessage, ActivationMessage, EventMessage, InvokerInstanceId};
use crate::metrics::Metrics;
use crate::pool::Start;
use crate::record::{WhiskActivation, epoch_millis};

use delivery::Ack;

/// How long an ack is sent again after its activation ended (`kafka.ack_retry_window_ms`):
/// 5 minutes, past the controller's forced completion (the action's timeout + 1 minute) for the
/// default timeout, so an outage of the broker that long still loses no ack.
pub const DEFAULT_ACK_RETRY_WINDOW: Duration = Duration::from_secs(300);

/// Which acks an activation gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckPlan {
    /// `ResultMessage` first, then `CompletionMessage`, handed to the producer in that order.
    ResultThenCompletion,
    /// One `CombinedCompletionAndResultMessage`.
    Combined,
    /// One `CompletionMessage`.
    Completion,
    /// One `CombinedCompletionAndResultMessage`, shrunk to the activation id even for a blocking
    /// activation: OpenWhisk's refusal of a blacklisted namespace, whose record never reaches the
    /// caller (`InvokerReactive` acks it as if it were non-blocking).
    CombinedShrunk,
}

/// The acks of an activation that ended with `start`.
pub fn plan(blocking: bool, log_limit_mb: u32, start: Start) -> AckPlan {
    match start {
        Start::NotStarted => AckPlan::Combined,
        Start::Aborted if blocking => AckPlan::Combined,
        Start::Aborted => AckPlan::Completion,
        _ if !blocking => AckPlan::Completion,
        _ if log_limit_mb == 0 => AckPlan::Combined,
        _ => AckPlan::ResultThenCompletion,
    }
}

/// Sends acks (and user events) for this invoker. Clones share the deliveries in progress.
#[derive(Debug, Clone)]
pub struct AckSender {
    producer: Producer,
    topic_prefix: String,
    instance: InvokerInstanceId,
    /// `events` topic (with the user-event prefix) when user events are enabled.
    events_topic: Option<String>,
    metrics: Arc<Metrics>,
    retry_window: Duration,
    deliveries: TaskTracker,
    fatal: Fatal,
}

impl AckSender {
    /// An ack sender; `events_topic` is `Some` when user events are enabled. Acks are sent again
    /// for `retry_window` after their activation; a producer that cannot be replaced raises
    /// `fatal`.
    pub fn new(
        producer: Producer,
        topic_prefix: String,
        instance: InvokerInstanceId,
        events_topic: Option<String>,
        metrics: Arc<Metrics>,
        retry_window: Duration,
        fatal: Fatal,
    ) -> Self {
        Self {
            producer,
            topic_prefix,
            instance,
            events_topic,
            metrics,
            retry_window,
            deliveries: TaskTracker::new(),
            fatal,
        }
    }

    /// This invoker's identity.
    pub fn instance(&self) -> &InvokerInstanceId {
        &self.instance
    }

    /// Hands the acks of `plan` for `activation` (and its user event) to the producer, in order;
    /// returns once the slot-freeing ack is in the producer's queue (or was given up). Delivery,
    /// and sending again what the broker did not take, goes on in the background.
    pub async fn acknowledge(
        &self,
        message: &ActivationMessage,
        activation: &WhiskActivation,
        plan: AckPlan,
    ) {
        let transid = message.transid.clone();
        // Every ack of a non-blocking activation goes out shrunk: the controller reads only the id.
        let shrunk = !message.blocking || plan == AckPlan::CombinedShrunk;
        let instance = self.instance.clone();
        let acks = match plan {
            AckPlan::ResultThenCompletion => vec![
                Ack::new(
                    "result",
                    AcknowledgementMessage::result(transid.clone(), activation.without_logs()),
                    shrunk,
                ),
                Ack::new(
                    "completion",
                    AcknowledgementMessage::completion(transid, activation, instance),
                    shrunk,
                ),
            ],
            AckPlan::Combined | AckPlan::CombinedShrunk => vec![Ack::new(
                "combined",
                AcknowledgementMessage::combined(transid, activation.clone(), instance),
                shrunk,
            )],
            AckPlan::Completion => vec![Ack::new(
                "completion",
                AcknowledgementMessage::completion(transid, activation, instance),
                shrunk,
            )],
        };
        let topic = format!("{}{}", self.topic_prefix, message.ack_topic());
        let mut event = self.event(message, activation);
        let acks = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => self.hand_over_inline(&runtime, &topic, acks, &mut event),
            Err(_) => acks,
        };
        if acks.is_empty() {
            return;
        }
        let (handed, handed_over) = oneshot::channel();
        let sender = self.clone();
        self.deliveries.spawn(
            async move { sender.deliver(topic, acks, event, handed).await }.in_current_span(),
        );
        // An error means the delivery task ended without saying: it gave up (and counted it).
        let _ = handed_over.await;
    }

    /// Waits (at most `grace`) until every ack handed over so far was delivered or given up.
    pub async fn flush(&self, grace: Duration) -> bool {
        self.deliveries.close();
        let done = tokio::time::timeout(grace, self.deliveries.wait())
            .await
            .is_ok();
        self.deliveries.reopen();
        done
    }

    /// The user event of `activation` as (topic, JSON), when user events are enabled.
    fn event(
        &self,
        message: &ActivationMessage,
        activation: &WhiskActivation,
    ) -> Option<(String, String)> {
        let topic = self.events_topic.clone()?;
        let source = format!("invoker{}", self.instance.instance);
        let event = EventMessage::activation(
            source,
            activation,
            message.user.namespace.uuid.clone(),
            epoch_millis(SystemTime::now()),
        )?;
        Some((topic, event.to_json()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_plan_follows_spec_4_1() {
        assert_eq!(plan(true, 10, Start::Cold), AckPlan::ResultThenCompletion);
        assert_eq!(plan(true, 10, Start::Warm), AckPlan::ResultThenCompletion);
        assert_eq!(plan(true, 0, Start::Warm), AckPlan::Combined);
        assert_eq!(plan(false, 10, Start::Warm), AckPlan::Completion);
        assert_eq!(plan(false, 0, Start::Prewarmed), AckPlan::Completion);
        assert_eq!(plan(false, 10, Start::NotStarted), AckPlan::Combined);
        assert_eq!(plan(true, 10, Start::NotStarted), AckPlan::Combined);
        assert_eq!(plan(true, 10, Start::Aborted), AckPlan::Combined);
        assert_eq!(plan(false, 10, Start::Aborted), AckPlan::Completion);
    }
}
