//! User events on `events` (`EventMessage`, `Activation` and `Metric` in `Message.scala`): one
//! `Activation` event per slot-freeing ack when user events are enabled.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::record::WhiskActivation;

/// A user event on `events` (`EventMessage`), sent with every slot-freeing ack when enabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMessage {
    /// `invoker<N>`.
    pub source: String,
    /// The event body.
    pub body: EventBody,
    /// The activation's subject.
    pub subject: String,
    /// The activation's namespace.
    pub namespace: String,
    /// The namespace uuid.
    pub user_id: String,
    /// `Activation` or `Metric`.
    pub event_type: String,
    /// Epoch ms when built.
    pub timestamp: u64,
}

/// The body of an [`EventMessage`]: a body with `metricName` is a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventBody {
    /// A metric (from controllers only).
    Metric(MetricEvent),
    /// An activation.
    Activation(ActivationEvent),
}

/// A `Metric` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricEvent {
    /// The metric's name.
    pub metric_name: String,
    /// Its value.
    pub metric_value: i64,
}

/// An `Activation` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationEvent {
    /// The `path` annotation.
    pub name: String,
    /// The activation id.
    pub activation_id: String,
    /// 0..=3.
    pub status_code: u8,
    /// Milliseconds.
    pub duration: u64,
    /// Milliseconds, 0 when absent.
    pub wait_time: u64,
    /// Milliseconds, 0 when absent.
    pub init_time: u64,
    /// The `kind` annotation.
    pub kind: String,
    /// Whether the action is a conductor.
    pub conductor: bool,
    /// MB from the `limits` annotation, 0 if absent.
    pub memory: u64,
    /// The `causedBy` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caused_by: Option<String>,
    /// `response.size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// `result.error.statusCode` or `result.statusCode`; 400 when not a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_defined_status_code: Option<i64>,
}

/// HTTP 400, what a non-numeric user-defined status code becomes.
const BAD_REQUEST: i64 = 400;

impl ActivationEvent {
    /// The event of an activation; `None` when it lacks the `path` or `kind` annotation.
    pub fn from_activation(activation: &WhiskActivation) -> Option<Self> {
        let annotations = &activation.annotations;
        let name = annotations.get("path")?.as_str()?.to_string();
        let kind = annotations.get("kind")?.as_str()?.to_string();
        let number = |key: &str| annotations.get(key).and_then(Value::as_u64).unwrap_or(0);
        let memory = annotations
            .get("limits")
            .and_then(|limits| limits.get("memory"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let user_defined_status_code = activation.response.result.as_ref().and_then(|result| {
            let code = result
                .get("error")
                .and_then(|error| error.get("statusCode"))
                .or_else(|| result.get("statusCode"))?;
            Some(code.as_i64().unwrap_or(BAD_REQUEST))
        });
        Some(Self {
            name,
            activation_id: activation.activation_id.to_string(),
            status_code: activation.response.status.code(),
            duration: activation.duration.unwrap_or(0),
            wait_time: number("waitTime"),
            init_time: number("initTime"),
            kind,
            conductor: annotations.is_truthy("conductor", false),
            memory,
            caused_by: annotations
                .get("causedBy")
                .and_then(Value::as_str)
                .map(str::to_string),
            size: activation.response.size,
            user_defined_status_code,
        })
    }
}

impl EventMessage {
    /// The `Activation` event for `activation`, from invoker `source` (`invoker<N>`) at `timestamp`;
    /// `None` when the activation lacks the `path` or `kind` annotation.
    pub fn activation(
        source: impl Into<String>,
        activation: &WhiskActivation,
        user_id: impl Into<String>,
        timestamp: u64,
    ) -> Option<Self> {
        Some(Self {
            source: source.into(),
            body: EventBody::Activation(ActivationEvent::from_activation(activation)?),
            subject: activation.subject.clone(),
            namespace: activation.namespace.clone(),
            user_id: user_id.into(),
            event_type: "Activation".to_string(),
            timestamp,
        })
    }

    /// The compact JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_user_defined_status_code_rules() {
        let record = |result: Value| -> WhiskActivation {
            serde_json::from_value(json!({
                "namespace": "guest", "name": "a", "subject": "guest",
                "activationId": "ab", "start": 1, "end": 2,
                "response": {"statusCode": 1, "result": result},
                "logs": [], "version": "0.0.1", "publish": false, "duration": 1,
                "annotations": [{"key": "path", "value": "guest/a"}, {"key": "kind", "value": "nodejs:20"},
                                {"key": "limits", "value": {"memory": 256}}]
            }))
            .unwrap()
        };
        let code = |result: Value| {
            ActivationEvent::from_activation(&record(result))
                .unwrap()
                .user_defined_status_code
        };
        assert_eq!(code(json!({"error": {"statusCode": 404}})), Some(404));
        assert_eq!(code(json!({"statusCode": 201, "body": "x"})), Some(201));
        assert_eq!(code(json!({"error": {"statusCode": "teapot"}})), Some(400));
        assert_eq!(code(json!({"error": "plain"})), None);
        assert_eq!(code(json!({"payload": 1})), None);
        let event = ActivationEvent::from_activation(&record(json!({}))).unwrap();
        assert_eq!(
            (event.memory, event.init_time, event.wait_time),
            (256, 0, 0)
        );
        let mut bare = record(json!({}));
        bare.annotations.0.retain(|(key, _)| key != "kind");
        assert!(ActivationEvent::from_activation(&bare).is_none());
    }
}
