//! Who sends and who receives (`InstanceId.scala`): the controller's id, which names the
//! `completed{C}` topic, and this invoker's id, sent in every ping and slot-freeing ack.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bytesize::ByteSize;

/// Longest instance id OpenWhisk accepts (`InstanceId.MAX_NAME_LENGTH`).
const MAX_INSTANCE_ID_LEN: usize = 128;

/// Whether `text` is a valid OpenWhisk instance id (controllers', schedulers'):
/// `[a-zA-Z0-9._-]+`, at most 128 characters.
pub(crate) fn is_valid_instance_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_INSTANCE_ID_LEN
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A controller's identity (`{"asString":"0","instanceType":"controller"}`); selects the
/// `completed{asString}` topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ControllerInstanceId {
    /// The id text (`[a-zA-Z0-9._-]+`, at most 128 characters).
    pub as_string: String,
}

impl ControllerInstanceId {
    /// A controller id, checked like OpenWhisk's reader.
    pub fn new(as_string: impl Into<String>) -> Result<Self, String> {
        let as_string = as_string.into();
        if is_valid_instance_id(&as_string) {
            Ok(Self { as_string })
        } else {
            Err(format!("invalid controller instance id {as_string:?}"))
        }
    }
}

impl Serialize for ControllerInstanceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            as_string: &'a str,
            instance_type: &'static str,
        }
        Wire {
            as_string: &self.as_string,
            instance_type: "controller",
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ControllerInstanceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            as_string: String,
            // Legacy controllers omit it.
            instance_type: Option<String>,
        }
        let wire = Wire::deserialize(deserializer)?;
        if let Some(kind) = &wire.instance_type
            && kind != "controller"
        {
            return Err(D::Error::custom(format!(
                "instanceType {kind:?} is not \"controller\""
            )));
        }
        ControllerInstanceId::new(wire.as_string).map_err(D::Error::custom)
    }
}

/// This invoker's identity (`InvokerInstanceId`), sent in every ping and slot-freeing ack. Written
/// with `"instanceType":"invoker"`; read only when it says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "InvokerWire", into = "InvokerWire")]
pub struct InvokerInstanceId {
    /// The instance number N (topic `invoker{N}`).
    pub instance: u32,
    /// Memory for user containers; sets the controller's capacity for this invoker.
    pub user_memory: ByteSize,
    /// FPC only.
    pub busy_memory: Option<ByteSize>,
    /// Resource tags (FPC scheduling); written even when empty.
    pub tags: Vec<String>,
    /// Namespaces dedicated to this invoker (FPC); written even when empty.
    pub dedicated_namespaces: Vec<String>,
    /// The unique name (`--uniqueName`).
    pub unique_name: Option<String>,
    /// A friendlier name for the controller's logs (`--displayedName`).
    pub displayed_name: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvokerWire {
    instance: u32,
    user_memory: ByteSize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    busy_memory: Option<ByteSize>,
    instance_type: String,
    tags: Vec<String>,
    dedicated_namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unique_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    displayed_name: Option<String>,
}

impl TryFrom<InvokerWire> for InvokerInstanceId {
    type Error = String;

    fn try_from(wire: InvokerWire) -> Result<Self, Self::Error> {
        if wire.instance_type != "invoker" {
            return Err(format!(
                "instanceType {:?} is not \"invoker\"",
                wire.instance_type
            ));
        }
        Ok(Self {
            instance: wire.instance,
            user_memory: wire.user_memory,
            busy_memory: wire.busy_memory,
            tags: wire.tags,
            dedicated_namespaces: wire.dedicated_namespaces,
            unique_name: wire.unique_name,
            displayed_name: wire.displayed_name,
        })
    }
}

impl From<InvokerInstanceId> for InvokerWire {
    fn from(id: InvokerInstanceId) -> Self {
        Self {
            instance: id.instance,
            user_memory: id.user_memory,
            busy_memory: id.busy_memory,
            instance_type: "invoker".to_string(),
            tags: id.tags,
            dedicated_namespaces: id.dedicated_namespaces,
            unique_name: id.unique_name,
            displayed_name: id.displayed_name,
        }
    }
}

impl InvokerInstanceId {
    /// An invoker id with no tags or dedicated namespaces.
    pub fn new(
        instance: u32,
        user_memory: ByteSize,
        unique_name: Option<String>,
        displayed_name: Option<String>,
    ) -> Self {
        Self {
            instance,
            user_memory,
            busy_memory: None,
            tags: Vec::new(),
            dedicated_namespaces: Vec::new(),
            unique_name,
            displayed_name,
        }
    }

    /// The Docker container name prefix, `wsk` + unique name + instance, filtered to letters,
    /// digits and `_ . -` (`ContainerFactory.scala`).
    pub fn container_prefix(&self) -> String {
        format!(
            "wsk{}{}",
            self.unique_name.as_deref().unwrap_or(""),
            self.instance
        )
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .collect()
    }
}

impl fmt::Display for InvokerInstanceId {
    /// `invoker<N>[/uniqueName][/displayedName]`, the text of the admin routes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invoker{}", self.instance)?;
        if let Some(name) = &self.unique_name {
            write!(f, "/{name}")?;
        }
        if let Some(name) = &self.displayed_name {
            write!(f, "/{name}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_controller_id_legacy_and_invalid() {
        let id: ControllerInstanceId = serde_json::from_value(json!({"asString": "0"})).unwrap();
        assert_eq!(
            serde_json::to_value(&id).unwrap(),
            json!({"asString": "0", "instanceType": "controller"})
        );
        assert!(
            serde_json::from_value::<ControllerInstanceId>(json!({"asString": "a b"})).is_err()
        );
        assert!(
            serde_json::from_value::<ControllerInstanceId>(
                json!({"asString": "0", "instanceType": "invoker"})
            )
            .is_err()
        );
    }

    #[test]
    fn test_invoker_id_display_and_type() {
        let mut id = InvokerInstanceId::new(0, ByteSize::mb(2048), Some("0".into()), None);
        assert_eq!(id.to_string(), "invoker0/0");
        assert_eq!(id.container_prefix(), "wsk00");
        id.displayed_name = Some("edge".into());
        assert_eq!(id.to_string(), "invoker0/0/edge");
        let json = serde_json::to_value(&id).unwrap();
        assert_eq!(json["instanceType"], "invoker");
        assert_eq!(json["userMemory"], "2147483648 B");
        let mut bad = json.clone();
        bad["instanceType"] = json!("controller");
        assert!(serde_json::from_value::<InvokerInstanceId>(bad).is_err());
    }
}
