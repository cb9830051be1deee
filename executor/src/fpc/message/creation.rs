//! The order to create a container on `invoker{N}` (`ContainerCreationMessage` in `Message.scala`):
//! for which action and namespace, and which scheduler's gRPC server its container pulls from.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CreationId, SchedulerInstanceId};
use crate::message::{FullyQualifiedEntityName, TransactionId};

/// Namespace of the scheduler's warm-up orders (`WarmUp.warmUpAction`).
const WARM_UP_PATH: &str = "whisk.system";
/// Name of the scheduler's warm-up action.
const WARM_UP_NAME: &str = "warmUp";

/// An order to create a container for an action (`ContainerCreationMessage`).
///
/// `whiskActionMetaData` is kept as the JSON that came, to be echoed in the ack as `actionMetaData`:
/// OpenWhisk's reader rejects metadata whose `exec.kind` it does not know and then cannot ack at
/// all, whereas keeping it raw lets the invoker ack every order it can read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerCreationMessage {
    /// The creation's transaction id (`sid_containerCreation`), echoed in the ack.
    pub transid: TransactionId,
    /// The namespace whose limits apply and whose activations the container pulls.
    pub invocation_namespace: String,
    /// The action with its version (and binding): echoed exactly, since the scheduler compares it
    /// whole with its queue's name.
    pub action: FullyQualifiedEntityName,
    /// The action's document revision; `None` is JSON `null` (an empty `DocRevision`).
    #[serde(default)]
    pub revision: Option<String>,
    /// The action's metadata as the scheduler sent it.
    pub whisk_action_meta_data: Value,
    /// The scheduler to ack to: topic `creationAck{asString}`.
    pub root_scheduler_index: SchedulerInstanceId,
    /// The host of the scheduler's gRPC server.
    pub scheduler_host: String,
    /// Its gRPC port.
    pub rpc_port: u16,
    /// How many times the scheduler rescheduled this creation; echoed (its retry budget).
    pub retry_count: u32,
    /// The creation job's id, echoed.
    pub creation_id: CreationId,
}

impl ContainerCreationMessage {
    /// Whether this is the scheduler's warm-up order (action `whisk.system/warmUp`, no version, no
    /// binding), which the invoker drops without a container or an ack.
    pub fn is_warm_up(&self) -> bool {
        self.action.path == WARM_UP_PATH
            && self.action.name == WARM_UP_NAME
            && self.action.version.is_none()
            && self.action.binding.is_none()
    }

    /// The topic the ack goes to, without prefix: `creationAck{S}`.
    pub fn ack_topic(&self) -> String {
        format!("creationAck{}", self.root_scheduler_index.as_string)
    }

    /// The action's memory limit in MB (`limits.memory`), if the metadata has a readable one.
    pub fn memory_mb(&self) -> Option<u64> {
        self.limit("memory")?.as_u64()
    }

    /// The action's runtime kind (`exec.kind`), e.g. `nodejs:20` or `blackbox`.
    pub fn kind(&self) -> Option<&str> {
        self.whisk_action_meta_data
            .get("exec")?
            .get("kind")?
            .as_str()
    }

    /// The image of a blackbox action (`exec.image`).
    pub fn image(&self) -> Option<&str> {
        self.whisk_action_meta_data
            .get("exec")?
            .get("image")?
            .as_str()
    }

    /// How many activations one container may run at once (`limits.concurrency`). OpenWhisk's
    /// default, 1, when absent or not a positive whole number that fits in 32 bits.
    pub fn concurrency(&self) -> u32 {
        self.limit("concurrency")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n > 0)
            .unwrap_or(1)
    }

    fn limit(&self, name: &str) -> Option<&Value> {
        self.whisk_action_meta_data.get("limits")?.get(name)
    }
}

wire_json!(
    ContainerCreationMessage,
    "Reads a creation order from Kafka bytes. [`super::ContainerMessage::parse`] reads either order from `invoker{N}`.",
    "The compact JSON text."
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpc::message::MessageError;
    use crate::fpc::message::test_support::{assert_bad_values_refused, assert_keys_required};
    use serde_json::json;

    const CREATION: &str = include_str!("../../../tests/fixtures/fpc/creation.json");
    const WARM_UP: &str = include_str!("../../../tests/fixtures/fpc/warm_up.json");

    #[test]
    fn test_golden_creation_reads_every_field() {
        let message = ContainerCreationMessage::parse(CREATION.as_bytes()).unwrap();
        assert_eq!(message.transid.id(), "sid_containerCreation");
        assert_eq!(message.transid.start_millis(), 1717000000000);
        assert_eq!(message.invocation_namespace, "guest");
        assert_eq!(message.action.path, "guest");
        assert_eq!(message.action.name, "hello");
        assert_eq!(message.action.version.as_deref(), Some("0.0.1"));
        assert_eq!(message.action.binding, None);
        assert_eq!(
            message.revision.as_deref(),
            Some("1-4a3f0c2e9b8d7a6f5e4d3c2b1a098765")
        );
        assert_eq!(message.root_scheduler_index.as_string, "0");
        assert_eq!(message.ack_topic(), "creationAck0");
        assert_eq!(message.scheduler_host, "10.0.0.5");
        assert_eq!(message.rpc_port, 13001);
        assert_eq!(message.retry_count, 0);
        assert_eq!(
            message.creation_id.as_str(),
            "9f1c7a2b3d4e4f5a8b6c7d8e9f0a1b2c"
        );
        assert_eq!(message.memory_mb(), Some(256));
        assert_eq!(message.kind(), Some("nodejs:20"));
        assert_eq!(message.image(), None);
        assert_eq!(message.concurrency(), 1);
        assert!(!message.is_warm_up());
    }

    #[test]
    fn test_golden_creation_round_trips() {
        let golden: Value = serde_json::from_str(CREATION).unwrap();
        let message = ContainerCreationMessage::parse(CREATION.as_bytes()).unwrap();
        let written: Value = serde_json::from_str(&message.to_json()).unwrap();
        assert_eq!(written, golden);
        assert_eq!(
            ContainerCreationMessage::parse(message.to_json().as_bytes()).unwrap(),
            message
        );
    }

    #[test]
    fn test_action_with_binding_and_package_is_written_back_exactly() {
        let mut value: Value = serde_json::from_str(CREATION).unwrap();
        value["action"] = json!({"path": "guest/pkg", "name": "hello", "version": "0.0.2",
            "binding": "guest/mybinding"});
        value["retryCount"] = json!(3);
        let message: ContainerCreationMessage = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(message.action.binding.as_deref(), Some("guest/mybinding"));
        assert_eq!(serde_json::to_value(&message).unwrap(), value);
    }

    #[test]
    fn test_warm_up_order_is_recognised() {
        let message = ContainerCreationMessage::parse(WARM_UP.as_bytes()).unwrap();
        assert!(message.is_warm_up());
        assert_eq!(message.revision, None);
        assert_eq!(message.rpc_port, 0);
        assert_eq!(message.scheduler_host, "");
        // `null` is written back, not omitted: OpenWhisk's `DocRevision` writes an empty one so.
        let written: Value = serde_json::from_str(&message.to_json()).unwrap();
        assert_eq!(written, serde_json::from_str::<Value>(WARM_UP).unwrap());
        assert_eq!(written["revision"], Value::Null);

        let mut not_warm_up: Value = serde_json::from_str(WARM_UP).unwrap();
        not_warm_up["action"]["version"] = json!("0.0.1");
        let message: ContainerCreationMessage = serde_json::from_value(not_warm_up).unwrap();
        assert!(!message.is_warm_up());
        let mut bound: Value = serde_json::from_str(WARM_UP).unwrap();
        bound["action"]["binding"] = json!("whisk.system/b");
        let message: ContainerCreationMessage = serde_json::from_value(bound).unwrap();
        assert!(!message.is_warm_up());
    }

    #[test]
    fn test_metadata_accessors_on_blackbox_and_odd_metadata() {
        let mut value: Value = serde_json::from_str(CREATION).unwrap();
        value["whiskActionMetaData"]["exec"] =
            json!({"kind": "blackbox", "image": "me/img:1", "binary": false});
        value["whiskActionMetaData"]["limits"]["concurrency"] = json!(200);
        let message: ContainerCreationMessage = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(message.kind(), Some("blackbox"));
        assert_eq!(message.image(), Some("me/img:1"));
        assert_eq!(message.concurrency(), 200);

        for concurrency in [
            json!(0),
            json!(-1),
            json!("2"),
            json!(1.5),
            json!(1u64 << 40),
        ] {
            value["whiskActionMetaData"]["limits"]["concurrency"] = concurrency;
            let message: ContainerCreationMessage = serde_json::from_value(value.clone()).unwrap();
            assert_eq!(message.concurrency(), 1);
        }
        // An unknown kind or no limits at all still reads: the invoker must be able to ack it.
        value["whiskActionMetaData"] = json!({"exec": {"kind": "cobol:85"}});
        let message: ContainerCreationMessage = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(message.kind(), Some("cobol:85"));
        assert_eq!(message.memory_mb(), None);
        assert_eq!(message.concurrency(), 1);
        value["whiskActionMetaData"] = json!("not an object");
        let message: ContainerCreationMessage = serde_json::from_value(value).unwrap();
        assert_eq!(
            (message.kind(), message.image(), message.memory_mb()),
            (None, None, None)
        );
    }

    #[test]
    fn test_numeric_creation_id_is_read_from_its_digits() {
        let mut value: Value = serde_json::from_str(CREATION).unwrap();
        value.as_object_mut().unwrap().remove("creationId");
        let text = value.to_string();
        let text = format!(
            "{},\"creationId\":12345678901234567890123456789012}}",
            text.strip_suffix('}').unwrap()
        );
        let message = ContainerCreationMessage::parse(text.as_bytes()).unwrap();
        assert_eq!(
            message.creation_id.as_str(),
            "12345678901234567890123456789012"
        );
        let short = text.replace("12345678901234567890123456789012", "1234");
        assert!(ContainerCreationMessage::parse(short.as_bytes()).is_err());
    }

    #[test]
    fn test_malformed_creations_are_errors() {
        let golden: Value = serde_json::from_str(CREATION).unwrap();
        assert_keys_required(
            ContainerCreationMessage::parse,
            &golden,
            &[
                "transid",
                "invocationNamespace",
                "action",
                "whiskActionMetaData",
                "rootSchedulerIndex",
                "schedulerHost",
                "rpcPort",
                "retryCount",
                "creationId",
            ],
        );
        assert_bad_values_refused(
            ContainerCreationMessage::parse,
            &golden,
            &[
                ("creationId", json!("9F1C7A2B3D4E4F5A8B6C7D8E9F0A1B2C")),
                ("creationId", json!("abc")),
                ("rpcPort", json!(65536)),
                ("retryCount", json!(-1)),
                ("revision", json!(3)),
                ("action", json!({"path": "", "name": "x"})),
                ("rootSchedulerIndex", json!({"asString": "../x"})),
                ("rootSchedulerIndex", json!("0")),
            ],
        );
        assert!(matches!(
            ContainerCreationMessage::parse(b"{"),
            Err(MessageError::Json(_))
        ));
        assert!(matches!(
            ContainerCreationMessage::parse(&[0xff, 0xfe]),
            Err(MessageError::Utf8(_))
        ));
        assert!(matches!(
            ContainerCreationMessage::parse(&vec![b' '; crate::message::MAX_MESSAGE_BYTES + 1]),
            Err(MessageError::TooLarge(_))
        ));
    }
}
