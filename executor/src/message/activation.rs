//! The activation message on `invoker{N}` (`ActivationMessage` in `Message.scala`): what to run, for
//! whom, and where the acks go.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    ActivationId, ControllerInstanceId, FullyQualifiedEntityName, Identity, MessageError,
    TransactionId, parse_bounded,
};

/// One activation to run: what the controller puts on `invoker{N}` and what the standalone server
/// builds per request. THE `Activation` type of the workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationMessage {
    /// The request's transaction id, echoed unchanged in every ack.
    pub transid: TransactionId,
    /// Where the action document lives (bindings resolved), its version and binding.
    pub action: FullyQualifiedEntityName,
    /// The document revision to run; `None` (`null`) means "latest, bypass the cache".
    pub revision: Option<String>,
    /// Who invokes.
    pub user: Identity,
    /// The id of the record to produce.
    pub activation_id: ActivationId,
    /// Which `completed{C}` topic gets the acks.
    pub root_controller_index: ControllerInstanceId,
    /// Whether a caller waits for the result.
    pub blocking: bool,
    /// The arguments (object, or array); absent means `{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    /// Names of init parameters (go to `/init`'s `env`).
    #[serde(default)]
    pub init_args: Vec<String>,
    /// Parameter name → encryption scheme of values in `content` that are ciphertext.
    #[serde(default)]
    pub locked_args: BTreeMap<String, String>,
    /// Parent activation (a sequence); gives the `causedBy: "sequence"` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<ActivationId>,
    /// Tracing headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<BTreeMap<String, String>>,
}

/// The workspace's one activation type: an [`ActivationMessage`], whichever source made it.
pub type Activation = ActivationMessage;

impl ActivationMessage {
    /// Reads a message from Kafka bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, MessageError> {
        parse_bounded(bytes)
    }

    /// The compact JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a message we hold serializes")
    }

    /// The arguments, `{}` when absent.
    pub fn params(&self) -> Value {
        self.content
            .clone()
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    /// The action's document id (`path/name`).
    pub fn action_doc_id(&self) -> String {
        self.action.doc_id()
    }

    /// The topic the acks go to, without prefix: `completed{C}`.
    pub fn ack_topic(&self) -> String {
        format!("completed{}", self.root_controller_index.as_string)
    }
}
