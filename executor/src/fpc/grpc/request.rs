//! What a container polls with (OpenWhisk's `ActivationClientProxy` builds the same `FetchRequest`):
//! the action it was created for, its id, whether its code is initialised, the last activation's
//! duration and whether it is still alive. Every call carries a fresh transaction id.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;

use super::proto;
use crate::message::TransactionId;

/// Length of the random part of a fresh transaction id (OpenWhisk's `TransactionId.generateTid`).
const TID_LEN: usize = 32;

/// The invocation namespace of the warm-up call (a system namespace no queue is for).
pub const WARM_UP_NAMESPACE: &str = "whisk.system";
/// The action name of the warm-up call; the scheduler answers it with "no activation" at once.
pub const WARM_UP_FQN_JSON: &str = r#"{"path":"whisk.system","name":"warmUp"}"#;

/// One container's poll, in the forms the scheduler reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRequest {
    /// The namespace the activations are billed to (plain text, e.g. `guest`).
    pub invocation_namespace: String,
    /// The action's `FullyQualifiedEntityName` as JSON text, exactly as the creation message had it
    /// (with version and binding): the scheduler compares it with its queue's.
    pub fqn_json: String,
    /// The action's revision as JSON text, quotes included (`"1-abc"`), or `null`.
    pub rev_json: String,
    /// This container's id, the last segment of its etcd key (plain text).
    pub container_id: String,
    /// Whether the container's code is initialised; the scheduler serves warmed containers first.
    pub warmed: bool,
    /// The duration in ms of the activation that just finished; set only on the poll right after it.
    pub last_duration_ms: Option<i64>,
    /// `false` only on the one goodbye call of a container going away.
    pub alive: bool,
}

impl PollRequest {
    /// The one warm-up call the invoker makes to each scheduler to open the connection early:
    /// every field at its proto default except the warm-up action's namespace, name and `null` rev.
    pub fn warm_up() -> Self {
        Self {
            invocation_namespace: WARM_UP_NAMESPACE.to_string(),
            fqn_json: WARM_UP_FQN_JSON.to_string(),
            rev_json: "null".to_string(),
            container_id: String::new(),
            warmed: false,
            last_duration_ms: None,
            alive: false,
        }
    }

    /// The protobuf message, with a fresh transaction id.
    pub fn to_proto(&self) -> proto::FetchRequest {
        proto::FetchRequest {
            transaction_id: fresh_transaction_id(),
            invocation_namespace: self.invocation_namespace.clone(),
            fqn: self.fqn_json.clone(),
            rev: self.rev_json.clone(),
            container_id: self.container_id.clone(),
            warmed: self.warmed,
            last_duration: self
                .last_duration_ms
                .map(|value| proto::Int64Value { value }),
            alive: self.alive,
        }
    }
}

/// A fresh transaction id as JSON text, `["<32 random alphanumerics>",<now in epoch ms>]`, as
/// OpenWhisk's `TransactionId()` makes one for every `FetchActivation` call.
pub fn fresh_transaction_id() -> String {
    let id: String = rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(TID_LEN)
        .map(char::from)
        .collect();
    // A clock before 1970 is not worth failing a poll for: the start time is only logged.
    let now_millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    TransactionId::new(id, now_millis).as_value().to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn test_fresh_transaction_id_is_an_id_and_a_time() {
        let text = fresh_transaction_id();
        let value: Value = serde_json::from_str(&text).unwrap();
        let parts = value.as_array().unwrap();
        assert_eq!(parts.len(), 2, "{text}");
        let id = parts[0].as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        let millis = parts[1].as_u64().unwrap();
        assert!(millis > 1_600_000_000_000);
        assert_ne!(fresh_transaction_id(), text, "ids are fresh");
    }

    #[test]
    fn test_to_proto_copies_every_field() {
        let request = PollRequest {
            invocation_namespace: "guest".into(),
            fqn_json: r#"{"path":"guest","name":"hello","version":"0.0.1"}"#.into(),
            rev_json: r#""1-abc""#.into(),
            container_id: "c1".into(),
            warmed: true,
            last_duration_ms: Some(42),
            alive: true,
        };
        let wire = request.to_proto();
        assert_eq!(wire.invocation_namespace, "guest");
        assert_eq!(wire.fqn, request.fqn_json);
        assert_eq!(wire.rev, r#""1-abc""#);
        assert_eq!(wire.container_id, "c1");
        assert!(wire.warmed && wire.alive);
        assert_eq!(wire.last_duration, Some(proto::Int64Value { value: 42 }));
        let unset = PollRequest {
            last_duration_ms: None,
            ..request
        };
        assert_eq!(unset.to_proto().last_duration, None);
    }

    #[test]
    fn test_warm_up_request() {
        let wire = PollRequest::warm_up().to_proto();
        assert_eq!(wire.invocation_namespace, "whisk.system");
        assert_eq!(wire.fqn, r#"{"path":"whisk.system","name":"warmUp"}"#);
        assert_eq!(wire.rev, "null");
        assert_eq!(wire.container_id, "");
        assert!(!wire.warmed && !wire.alive);
        assert_eq!(wire.last_duration, None);
    }
}
