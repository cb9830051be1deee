//! The invoker's answer to a creation order, on `creationAck{S}` (`ContainerCreationAckMessage` in
//! `Message.scala`): the order echoed, this invoker's id, and on failure why.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ContainerCreationError, ContainerCreationMessage, CreationId};
use crate::message::{FullyQualifiedEntityName, InvokerInstanceId, TransactionId};

/// A creation ack (`ContainerCreationAckMessage`). Everything but `root_invoker_index`, `error` and
/// `reason` is the order's, echoed: the scheduler matches the ack to its job by `creation_id` and
/// reschedules from these fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerCreationAckMessage {
    /// The order's transaction id.
    pub transid: TransactionId,
    /// The order's creation id.
    pub creation_id: CreationId,
    /// The order's invocation namespace.
    pub invocation_namespace: String,
    /// The order's action, exactly as it came.
    pub action: FullyQualifiedEntityName,
    /// The order's revision (`null` when empty).
    #[serde(default)]
    pub revision: Option<String>,
    /// The order's `whiskActionMetaData` (the ack's key is `actionMetaData`).
    pub action_meta_data: Value,
    /// This invoker.
    pub root_invoker_index: InvokerInstanceId,
    /// The order's scheduler host.
    pub scheduler_host: String,
    /// The order's gRPC port.
    pub rpc_port: u16,
    /// The order's retry count.
    pub retry_count: u32,
    /// Why the creation failed; absent on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ContainerCreationError>,
    /// A human-readable reason; absent on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ContainerCreationAckMessage {
    /// The ack of a container that now exists (or was resumed).
    pub fn success(order: &ContainerCreationMessage, invoker: &InvokerInstanceId) -> Self {
        Self {
            transid: order.transid.clone(),
            creation_id: order.creation_id.clone(),
            invocation_namespace: order.invocation_namespace.clone(),
            action: order.action.clone(),
            revision: order.revision.clone(),
            action_meta_data: order.whisk_action_meta_data.clone(),
            root_invoker_index: invoker.clone(),
            scheduler_host: order.scheduler_host.clone(),
            rpc_port: order.rpc_port,
            retry_count: order.retry_count,
            error: None,
            reason: None,
        }
    }

    /// The ack of a creation that failed with `error` for `reason`.
    pub fn failure(
        order: &ContainerCreationMessage,
        invoker: &InvokerInstanceId,
        error: ContainerCreationError,
        reason: String,
    ) -> Self {
        Self {
            error: Some(error),
            reason: Some(reason),
            ..Self::success(order, invoker)
        }
    }

    /// Whether this ack reports a container (no error).
    pub fn is_success(&self) -> bool {
        self.error.is_none()
    }
}

wire_json!(
    ContainerCreationAckMessage,
    "Reads an ack from Kafka bytes (what a scheduler does).",
    "The compact JSON text, as the Kafka record's value."
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytesize::ByteSize;
    use crate::fpc::message::test_support::{assert_bad_values_refused, assert_keys_required};
    use serde_json::json;

    const CREATION: &str = include_str!("../../../tests/fixtures/fpc/creation.json");
    // The success ack of `creation.json` from invoker 0 (`--uniqueName 0`, 2048 MB). `userMemory`
    // is in bytes, the form the Scala invoker writes after reading its configuration.
    const ACK_SUCCESS: &str = include_str!("../../../tests/fixtures/fpc/ack_success.json");
    const ACK_FAILURE: &str = include_str!("../../../tests/fixtures/fpc/ack_failure.json");

    fn order() -> ContainerCreationMessage {
        ContainerCreationMessage::parse(CREATION.as_bytes()).unwrap()
    }

    fn invoker0() -> InvokerInstanceId {
        InvokerInstanceId::new(0, ByteSize::mb(2048), Some("0".into()), None)
    }

    fn json_of(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn test_success_ack_matches_golden() {
        let ack = ContainerCreationAckMessage::success(&order(), &invoker0());
        assert!(ack.is_success());
        let written = json_of(&ack.to_json());
        assert_eq!(written, json_of(ACK_SUCCESS));
        assert!(written.get("error").is_none() && written.get("reason").is_none());
        // The metadata goes back unchanged, under its ack name.
        assert_eq!(
            written["actionMetaData"],
            json_of(CREATION)["whiskActionMetaData"]
        );
    }

    #[test]
    fn test_failure_ack_matches_golden() {
        let order = order();
        let reason = format!(
            "creationId: {}, invoker[{}] doesn't have enough resource for container: guest/hello@0.0.1",
            order.creation_id,
            invoker0()
        );
        let ack = ContainerCreationAckMessage::failure(
            &order,
            &invoker0(),
            ContainerCreationError::ResourceNotEnoughError,
            reason,
        );
        assert!(!ack.is_success());
        assert_eq!(json_of(&ack.to_json()), json_of(ACK_FAILURE));
    }

    #[test]
    fn test_acks_round_trip_and_echo_retry_count_and_null_revision() {
        let mut value = json_of(CREATION);
        value["retryCount"] = json!(4);
        value["revision"] = Value::Null;
        let order: ContainerCreationMessage = serde_json::from_value(value).unwrap();
        for ack in [
            ContainerCreationAckMessage::success(&order, &invoker0()),
            ContainerCreationAckMessage::failure(
                &order,
                &invoker0(),
                ContainerCreationError::DBFetchError,
                "Action could not be found or may have been deleted.".into(),
            ),
        ] {
            let written = json_of(&ack.to_json());
            assert_eq!(written["retryCount"], 4);
            assert_eq!(written["revision"], Value::Null);
            let read = ContainerCreationAckMessage::parse(ack.to_json().as_bytes()).unwrap();
            assert_eq!(read, ack);
        }
        // The spec's own sample writes the memory in MB; read just the same.
        let mut value = json_of(ACK_SUCCESS);
        value["rootInvokerIndex"]["userMemory"] = json!("2048 MB");
        let read = ContainerCreationAckMessage::parse(value.to_string().as_bytes()).unwrap();
        assert_eq!(read.root_invoker_index, invoker0());
        for text in [ACK_SUCCESS, ACK_FAILURE] {
            let read = ContainerCreationAckMessage::parse(text.as_bytes()).unwrap();
            assert_eq!(json_of(&read.to_json()), json_of(text));
        }
    }

    #[test]
    fn test_malformed_acks_are_errors() {
        let golden = json_of(ACK_FAILURE);
        assert_keys_required(
            ContainerCreationAckMessage::parse,
            &golden,
            &[
                "transid",
                "creationId",
                "invocationNamespace",
                "action",
                "actionMetaData",
                "rootInvokerIndex",
                "schedulerHost",
                "rpcPort",
                "retryCount",
            ],
        );
        assert_bad_values_refused(
            ContainerCreationAckMessage::parse,
            &golden,
            &[("error", json!("NoSuchError"))],
        );
        let mut value = golden;
        value["rootInvokerIndex"]["instanceType"] = json!("controller");
        assert!(ContainerCreationAckMessage::parse(value.to_string().as_bytes()).is_err());
        assert!(ContainerCreationAckMessage::parse(b"{\"transid\":").is_err());
    }
}
