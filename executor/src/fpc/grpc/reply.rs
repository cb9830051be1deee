//! The answer to a poll. `FetchResponse.activationMessage` is JSON text `{"message": ...}` whose
//! value is either an `ActivationMessage` or one of the scheduler's queue errors, told apart by their
//! `type` field (the scheduler's `MemoryQueueErrorSerdes`). Each case maps to what OpenWhisk's
//! `ActivationClientProxy` does next, so the container's loop matches on [`FetchReply`] alone.

use serde::Deserialize;
use serde_json::Value;

use crate::message::ActivationMessage;

/// The scheduler's answer when nothing is queued (poll timed out, idle queue, warm-up, goodbye).
pub const NO_ACTIVATION_JSON: &str = r#"{"message":{"noActivationMessage":"no activation message exist","type":"NoActivationMessage"}}"#;
/// The scheduler's answer when it has no queue for the action (it is not, or no longer, the leader).
pub const NO_MEMORY_QUEUE_JSON: &str =
    r#"{"message":{"noMemoryQueue":"no memory queue exist","type":"NoMemoryQueue"}}"#;
/// The scheduler's answer when its queue is for another revision or name of the action. The
/// capital `M` in `actionMisMatch` is upstream's.
pub const ACTION_MISMATCH_JSON: &str =
    r#"{"message":{"actionMisMatch":"action version does not match","type":"ActionMismatch"}}"#;

/// What a poll returned, read into the container's next step.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchReply {
    /// An activation to run (boxed: it is large next to the other cases).
    Activation(Box<ActivationMessage>),
    /// Nothing queued: poll again (or stop polling once the container has been idle long enough).
    NoActivation,
    /// This scheduler has no queue for the action: look the queue's leader up in etcd and poll there.
    NoMemoryQueue,
    /// The queue is for another revision of the action: destroy the container.
    ActionMismatch,
    /// The answer is not JSON: poll again.
    NotJson,
    /// The answer is JSON of the wrong shape (the reason says how): destroy the container.
    WrongShape(String),
}

impl FetchReply {
    /// Reads `FetchResponse.activationMessage`. Never fails: every text is one of the cases.
    pub fn parse(text: &str) -> Self {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return Self::NotJson;
        };
        let Some(message) = value.as_object().and_then(|object| object.get("message")) else {
            return Self::WrongShape("not an object with a `message` field".to_string());
        };
        match message.get("type").and_then(Value::as_str) {
            Some("NoActivationMessage") => return Self::NoActivation,
            Some("NoMemoryQueue") => return Self::NoMemoryQueue,
            Some("ActionMismatch") => return Self::ActionMismatch,
            _ => {}
        }
        // Read from the text again, not from `value`: serde_json's map sorts keys, and the
        // activation's arguments should reach the action in the order the controller wrote them.
        #[derive(Deserialize)]
        struct Envelope {
            message: ActivationMessage,
        }
        match serde_json::from_str::<Envelope>(text) {
            Ok(envelope) => Self::Activation(Box::new(envelope.message)),
            Err(error) => Self::WrongShape(format!("not an activation message: {error}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIVATION: &str = r#"{"transid":["tid1",1717000000000],"action":{"path":"guest","name":"hello","version":"0.0.1"},"revision":"1-abc","user":{"subject":"guest","namespace":{"name":"guest","uuid":"23bc46b1-71f6-4ed5-8c54-816aa4f8c502"},"authkey":{"api_key":"23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"},"rights":["READ","PUT","DELETE","ACTIVATE"],"limits":{}},"activationId":"f6d4b4e0e1b44fd894b4e0e1b48fd8a1","rootControllerIndex":{"asString":"0","instanceType":"controller"},"blocking":true,"content":{"z":1,"a":2},"initArgs":[],"lockedArgs":{}}"#;

    #[test]
    fn test_activation() {
        let reply = FetchReply::parse(&format!(r#"{{"message":{ACTIVATION}}}"#));
        let FetchReply::Activation(activation) = reply else {
            panic!("{reply:?}");
        };
        assert_eq!(
            activation.activation_id.as_str(),
            "f6d4b4e0e1b44fd894b4e0e1b48fd8a1"
        );
        assert_eq!(activation.action.doc_id(), "guest/hello");
        assert_eq!(activation.revision.as_deref(), Some("1-abc"));
        assert_eq!(activation.transid.id(), "tid1");
        assert!(activation.blocking);
    }

    #[test]
    fn test_queue_errors() {
        assert_eq!(
            FetchReply::parse(NO_ACTIVATION_JSON),
            FetchReply::NoActivation
        );
        assert_eq!(
            FetchReply::parse(NO_MEMORY_QUEUE_JSON),
            FetchReply::NoMemoryQueue
        );
        assert_eq!(
            FetchReply::parse(ACTION_MISMATCH_JSON),
            FetchReply::ActionMismatch
        );
        // Recognised by `type` alone, whatever else the object holds and in any key order.
        assert_eq!(
            FetchReply::parse(r#"{"message":{"type":"NoMemoryQueue"}}"#),
            FetchReply::NoMemoryQueue
        );
    }

    #[test]
    fn test_not_json() {
        for text in ["", "garbage", "{", r#"{"message":"#, "\u{0}"] {
            assert_eq!(FetchReply::parse(text), FetchReply::NotJson, "{text:?}");
        }
    }

    #[test]
    fn test_wrong_shape() {
        for text in [
            "null",
            "42",
            r#""text""#,
            "[]",
            "{}",
            r#"{"msg":{}}"#,
            r#"{"message":null}"#,
            r#"{"message":{}}"#,
            r#"{"message":{"type":"SomethingElse"}}"#,
            r#"{"message":{"transid":["a",1]}}"#,
        ] {
            assert!(
                matches!(FetchReply::parse(text), FetchReply::WrongShape(_)),
                "{text}"
            );
        }
    }
}
