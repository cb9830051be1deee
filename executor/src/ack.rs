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

use std::sync::Arc;
use std::time::SystemTime;

use tracing::{debug, warn};

use crate::kafka::{Producer, SendError};
use crate::message::{AcknowledgementMessage, ActivationMessage, EventMessage, InvokerInstanceId};
use crate::metrics::Metrics;
use crate::pool::Start;
use crate::record::{WhiskActivation, epoch_millis};

/// Which acks an activation gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckPlan {
    /// `ResultMessage` first, `CompletionMessage` after it was sent.
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

/// Sends acks (and user events) for this invoker.
#[derive(Debug, Clone)]
pub struct AckSender {
    producer: Producer,
    topic_prefix: String,
    instance: InvokerInstanceId,
    /// `events` topic (with the user-event prefix) when user events are enabled.
    events_topic: Option<String>,
    metrics: Arc<Metrics>,
}

impl AckSender {
    /// An ack sender; `events_topic` is `Some` when user events are enabled.
    pub fn new(
        producer: Producer,
        topic_prefix: String,
        instance: InvokerInstanceId,
        events_topic: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            producer,
            topic_prefix,
            instance,
            events_topic,
            metrics,
        }
    }

    /// This invoker's identity.
    pub fn instance(&self) -> &InvokerInstanceId {
        &self.instance
    }

    /// Sends the acks of `plan` for `activation`; returns once the slot-freeing ack was sent (or
    /// failed for good). Failures are logged and counted: the controller's forced completion then
    /// frees the slot.
    pub async fn acknowledge(
        &self,
        message: &ActivationMessage,
        activation: &WhiskActivation,
        plan: AckPlan,
    ) {
        let transid = message.transid.clone();
        // Every ack of a non-blocking activation goes out shrunk: the controller reads only the id.
        let shrunk = !message.blocking || plan == AckPlan::CombinedShrunk;
        match plan {
            AckPlan::ResultThenCompletion => {
                let result =
                    AcknowledgementMessage::result(transid.clone(), activation.without_logs());
                self.send(message, result, "result", shrunk).await;
                let completion =
                    AcknowledgementMessage::completion(transid, activation, self.instance.clone());
                self.send(message, completion, "completion", shrunk).await;
            }
            AckPlan::Combined | AckPlan::CombinedShrunk => {
                let combined = AcknowledgementMessage::combined(
                    transid,
                    activation.clone(),
                    self.instance.clone(),
                );
                self.send(message, combined, "combined", shrunk).await;
            }
            AckPlan::Completion => {
                let completion =
                    AcknowledgementMessage::completion(transid, activation, self.instance.clone());
                self.send(message, completion, "completion", shrunk).await;
            }
        }
        self.send_event(message, activation).await;
    }

    async fn send(
        &self,
        message: &ActivationMessage,
        ack: AcknowledgementMessage,
        kind: &str,
        shrunk: bool,
    ) {
        let topic = format!("{}{}", self.topic_prefix, message.ack_topic());
        let ack = if shrunk { ack.shrink() } else { ack };
        match self.producer.send(&topic, &ack.to_json()).await {
            Ok(()) => {
                debug!(%topic, kind, shrunk, "ack sent");
                self.metrics.ack(kind, shrunk);
            }
            Err(SendError::TooLarge(bytes)) if !shrunk => {
                warn!(bytes, "ack too large for Kafka: sending it shrunk");
                match self.producer.send(&topic, &ack.shrink().to_json()).await {
                    Ok(()) => self.metrics.ack(kind, true),
                    Err(error) => {
                        warn!(%error, %topic, "shrunk ack failed");
                        self.metrics.ack_failures.inc();
                    }
                }
            }
            Err(error) => {
                warn!(%error, %topic, "ack failed");
                self.metrics.ack_failures.inc();
            }
        }
    }

    async fn send_event(&self, message: &ActivationMessage, activation: &WhiskActivation) {
        let Some(topic) = &self.events_topic else {
            return;
        };
        let source = format!("invoker{}", self.instance.instance);
        let Some(event) = EventMessage::activation(
            source,
            activation,
            message.user.namespace.uuid.clone(),
            epoch_millis(SystemTime::now()),
        ) else {
            return;
        };
        if let Err(error) = self.producer.send(topic, &event.to_json()).await {
            warn!(%error, %topic, "user event failed");
        }
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
