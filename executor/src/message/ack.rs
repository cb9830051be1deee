//! The acknowledgements on `completed{C}` (`AcknowledgementMessage` in `Message.scala`): a result, a
//! slot release, or both in one, each with the whole activation or (shrunk) its id.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{ActivationId, InvokerInstanceId, MessageError, TransactionId, parse_bounded};
use crate::record::WhiskActivation;

/// The activation in a result-carrying ack: the whole record, or (shrunk) its id.
#[derive(Debug, Clone, PartialEq)]
pub enum AckResponse {
    /// The whole activation (without `_id`/`entityType`/`updated`).
    Activation(Box<WhiskActivation>),
    /// Only the id (non-blocking, or too large for Kafka).
    Id(ActivationId),
}

impl AckResponse {
    /// The activation id either way.
    pub fn activation_id(&self) -> &ActivationId {
        match self {
            AckResponse::Activation(activation) => &activation.activation_id,
            AckResponse::Id(id) => id,
        }
    }
}

impl Serialize for AckResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AckResponse::Activation(activation) => activation.serialize(serializer),
            AckResponse::Id(id) => id.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for AckResponse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => ActivationId::parse(&text)
                .map(AckResponse::Id)
                .map_err(D::Error::custom),
            value @ Value::Object(_) => serde_json::from_value(value)
                .map(|activation| AckResponse::Activation(Box::new(activation)))
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "ack response must be an activation or an id, not {other}"
            ))),
        }
    }
}

/// An acknowledgement on `completed{C}` (`AcknowledgementMessage`). The reader dispatches on keys:
/// `instance` and `response` → Combined; only `instance` → Completion; otherwise → Result.
#[derive(Debug, Clone, PartialEq)]
pub enum AcknowledgementMessage {
    /// `ResultMessage`: carries the result, frees no slot.
    Result {
        /// The message's transaction id.
        transid: TransactionId,
        /// The activation (with empty logs) or its id.
        response: AckResponse,
    },
    /// `CompletionMessage`: frees the slot.
    Completion {
        /// The message's transaction id.
        transid: TransactionId,
        /// The activation id.
        activation_id: ActivationId,
        /// Status 3.
        is_system_error: bool,
        /// This invoker.
        instance: InvokerInstanceId,
    },
    /// `CombinedCompletionAndResultMessage`: result and slot release in one.
    Combined {
        /// The message's transaction id.
        transid: TransactionId,
        /// The activation or its id.
        response: AckResponse,
        /// Status 3.
        is_system_error: bool,
        /// This invoker.
        instance: InvokerInstanceId,
    },
}

impl AcknowledgementMessage {
    /// A `ResultMessage` with the whole activation (the caller empties the logs, as OpenWhisk does).
    pub fn result(transid: TransactionId, activation: WhiskActivation) -> Self {
        Self::Result {
            transid,
            response: AckResponse::Activation(Box::new(activation)),
        }
    }

    /// A `CompletionMessage` for `activation`.
    pub fn completion(
        transid: TransactionId,
        activation: &WhiskActivation,
        instance: InvokerInstanceId,
    ) -> Self {
        Self::Completion {
            transid,
            activation_id: activation.activation_id.clone(),
            is_system_error: activation.is_system_error(),
            instance,
        }
    }

    /// A `CombinedCompletionAndResultMessage` with the whole activation.
    pub fn combined(
        transid: TransactionId,
        activation: WhiskActivation,
        instance: InvokerInstanceId,
    ) -> Self {
        Self::Combined {
            transid,
            is_system_error: activation.is_system_error(),
            response: AckResponse::Activation(Box::new(activation)),
            instance,
        }
    }

    /// Reads an ack from Kafka bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, MessageError> {
        parse_bounded(bytes)
    }

    /// The compact JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an ack we hold serializes")
    }

    /// The same ack with the activation replaced by its id (non-blocking acks, or too large).
    pub fn shrink(self) -> Self {
        let shrink = |response: AckResponse| AckResponse::Id(response.activation_id().clone());
        match self {
            Self::Result { transid, response } => Self::Result {
                transid,
                response: shrink(response),
            },
            Self::Combined {
                transid,
                response,
                is_system_error,
                instance,
            } => Self::Combined {
                transid,
                response: shrink(response),
                is_system_error,
                instance,
            },
            completion @ Self::Completion { .. } => completion,
        }
    }

    /// Whether this ack frees the controller's slot (Completion or Combined).
    pub fn frees_slot(&self) -> bool {
        !matches!(self, Self::Result { .. })
    }

    /// The transaction id.
    pub fn transid(&self) -> &TransactionId {
        match self {
            Self::Result { transid, .. }
            | Self::Completion { transid, .. }
            | Self::Combined { transid, .. } => transid,
        }
    }

    /// The activation id.
    pub fn activation_id(&self) -> &ActivationId {
        match self {
            Self::Result { response, .. } | Self::Combined { response, .. } => {
                response.activation_id()
            }
            Self::Completion { activation_id, .. } => activation_id,
        }
    }
}

impl Serialize for AcknowledgementMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            transid: &'a TransactionId,
            #[serde(skip_serializing_if = "Option::is_none")]
            activation_id: Option<&'a ActivationId>,
            #[serde(skip_serializing_if = "Option::is_none")]
            response: Option<&'a AckResponse>,
            #[serde(skip_serializing_if = "Option::is_none")]
            is_system_error: Option<bool>,
            #[serde(skip_serializing_if = "Option::is_none")]
            instance: Option<&'a InvokerInstanceId>,
        }
        let wire = match self {
            Self::Result { transid, response } => Wire {
                transid,
                activation_id: None,
                response: Some(response),
                is_system_error: None,
                instance: None,
            },
            Self::Completion {
                transid,
                activation_id,
                is_system_error,
                instance,
            } => Wire {
                transid,
                activation_id: Some(activation_id),
                response: None,
                is_system_error: Some(*is_system_error),
                instance: Some(instance),
            },
            Self::Combined {
                transid,
                response,
                is_system_error,
                instance,
            } => Wire {
                transid,
                activation_id: None,
                response: Some(response),
                is_system_error: Some(*is_system_error),
                instance: Some(instance),
            },
        };
        wire.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AcknowledgementMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            transid: TransactionId,
            #[serde(default)]
            activation_id: Option<ActivationId>,
            #[serde(default)]
            response: Option<AckResponse>,
            #[serde(default)]
            is_system_error: Option<bool>,
            #[serde(default)]
            instance: Option<InvokerInstanceId>,
        }
        let wire = Wire::deserialize(deserializer)?;
        match (wire.instance, wire.response) {
            (Some(instance), Some(response)) => {
                let is_system_error = wire.is_system_error.unwrap_or(false);
                Ok(Self::Combined {
                    transid: wire.transid,
                    response,
                    is_system_error,
                    instance,
                })
            }
            (Some(instance), None) => Ok(Self::Completion {
                transid: wire.transid,
                activation_id: wire
                    .activation_id
                    .ok_or_else(|| D::Error::missing_field("activationId"))?,
                is_system_error: wire.is_system_error.unwrap_or(false),
                instance,
            }),
            (None, Some(response)) => Ok(Self::Result {
                transid: wire.transid,
                response,
            }),
            (None, None) => Err(D::Error::missing_field("response")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytesize::ByteSize;
    use serde_json::json;

    #[test]
    fn test_ack_dispatch_on_keys() {
        let instance = InvokerInstanceId::new(0, ByteSize::mb(1024), None, None);
        let completion = json!({"transid": ["t", 1], "activationId": "ab", "instance": instance});
        let ack: AcknowledgementMessage = serde_json::from_value(completion).unwrap();
        assert!(matches!(
            ack,
            AcknowledgementMessage::Completion {
                is_system_error: false,
                ..
            }
        ));
        let combined = json!({"transid": ["t", 1], "response": "ab", "instance": instance});
        let ack: AcknowledgementMessage = serde_json::from_value(combined).unwrap();
        assert!(ack.frees_slot());
        assert_eq!(ack.activation_id().as_str(), "ab");
        let written = serde_json::to_value(&ack).unwrap();
        assert_eq!(written["isSystemError"], json!(false));
        let result = json!({"transid": ["t", 1], "response": "ab"});
        let ack: AcknowledgementMessage = serde_json::from_value(result).unwrap();
        assert!(!ack.frees_slot());
        assert!(
            serde_json::from_value::<AcknowledgementMessage>(json!({"transid": ["t", 1]})).is_err()
        );
    }
}
