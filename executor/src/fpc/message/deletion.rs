//! The order to retire an action's old containers on `invoker{N}` (`ContainerDeletionMessage` in
//! `Message.scala`), sent when the action was updated and its queue became outdated. Never acked.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::message::{FullyQualifiedEntityName, TransactionId};

/// An order to shut down the containers of an action's old revision (`ContainerDeletionMessage`):
/// those of `invocation_namespace` whose action equals `action` without version, and whose revision
/// is at most `revision` ([`super::revision_at_most`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDeletionMessage {
    /// The deletion's transaction id (`sid_containerDeletion`).
    pub transid: TransactionId,
    /// The namespace whose containers go.
    pub invocation_namespace: String,
    /// The action (its version is not compared).
    pub action: FullyQualifiedEntityName,
    /// The old revision: containers at this revision or older go. `None` is JSON `null`.
    #[serde(default)]
    pub revision: Option<String>,
    /// The action's metadata as the scheduler sent it (unused by the invoker, kept to round-trip).
    pub whisk_action_meta_data: Value,
}

wire_json!(
    ContainerDeletionMessage,
    "Reads a deletion order from Kafka bytes. [`super::ContainerMessage::parse`] reads either order from `invoker{N}`.",
    "The compact JSON text."
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpc::message::test_support::{assert_bad_values_refused, assert_keys_required};
    use serde_json::json;

    const DELETION: &str = include_str!("../../../tests/fixtures/fpc/deletion.json");

    #[test]
    fn test_golden_deletion_reads_and_round_trips() {
        let message = ContainerDeletionMessage::parse(DELETION.as_bytes()).unwrap();
        assert_eq!(message.transid.id(), "sid_containerDeletion");
        assert_eq!(message.invocation_namespace, "guest");
        assert_eq!(message.action.doc_id(), "guest/hello");
        assert_eq!(message.action.version.as_deref(), Some("0.0.1"));
        assert_eq!(
            message.revision.as_deref(),
            Some("1-4a3f0c2e9b8d7a6f5e4d3c2b1a098765")
        );
        let golden: Value = serde_json::from_str(DELETION).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&message.to_json()).unwrap(),
            golden
        );
    }

    #[test]
    fn test_malformed_deletions_are_errors() {
        let golden: Value = serde_json::from_str(DELETION).unwrap();
        assert_keys_required(
            ContainerDeletionMessage::parse,
            &golden,
            &[
                "transid",
                "invocationNamespace",
                "action",
                "whiskActionMetaData",
            ],
        );
        assert_bad_values_refused(
            ContainerDeletionMessage::parse,
            &golden,
            &[("revision", json!(["1-a"]))],
        );
        let mut value = golden;
        value["revision"] = Value::Null;
        let message = ContainerDeletionMessage::parse(value.to_string().as_bytes()).unwrap();
        assert_eq!(message.revision, None);
        assert_eq!(
            serde_json::to_value(&message).unwrap()["revision"],
            Value::Null
        );
        assert!(ContainerDeletionMessage::parse(b"[]").is_err());
    }
}
