//! OpenWhisk's Kafka wire types (`C/core/connector/Message.scala` and friends), read and written
//! exactly as the Scala controller and invoker do.
//!
//! [`ActivationMessage`] is THE activation type of the workspace: the Kafka source parses it from
//! `invoker{N}` and the standalone REST server builds one per request, so the pool and the record
//! builder see one shape whatever the source. Acks ([`AcknowledgementMessage`]), health pings
//! ([`PingMessage`]) and user events ([`EventMessage`]) are the invoker's replies.
//!
//! Parsing never panics: malformed input is a [`MessageError`]. Key order is not significant anywhere
//! (spray-json objects are maps); `None` fields are omitted, every other field is always written.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::bytesize::ByteSize;
use crate::record::WhiskActivation;

/// Largest message the invoker accepts or produces: `payload.max` (1 MiB) + `serdes-overhead` (6068),
/// OpenWhisk's `MAX_ACTIVATION_LIMIT`. Bounds what a peer can make us parse.
pub const MAX_MESSAGE_BYTES: usize = 1_048_576 + 6068;

/// Longest controller instance id OpenWhisk accepts (`ControllerInstanceId`).
const MAX_CONTROLLER_ID_LEN: usize = 128;

/// Longest activation id accepted; real ones are 32 hex characters.
const MAX_ACTIVATION_ID_LEN: usize = 32;

/// Transaction id of the controller's invoker health test actions.
pub const SID_INVOKER_HEALTH: &str = "sid_invokerHealth";
/// Transaction id that replaces an unreadable one.
pub const SID_UNKNOWN: &str = "sid_unknown";
/// Transaction id of prewarm work.
pub const SID_INVOKER_WARMUP: &str = "sid_invokerWarmup";
/// Transaction id of pause / resume / destroy work.
pub const SID_INVOKER_NANNY: &str = "sid_invokerNanny";
/// Transaction id of invoker start-up and clean-up.
pub const SID_INVOKER: &str = "sid_invoker";

/// A message that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The bytes are larger than [`MAX_MESSAGE_BYTES`].
    #[error("message of {0} bytes exceeds the limit of {MAX_MESSAGE_BYTES} bytes")]
    TooLarge(usize),
    /// The bytes are not UTF-8.
    #[error("message is not UTF-8: {0}")]
    Utf8(#[from] std::str::Utf8Error),
    /// The JSON is malformed or does not have the message's shape.
    #[error("malformed message: {0}")]
    Json(#[from] serde_json::Error),
}

fn parse_bounded<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, MessageError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge(bytes.len()));
    }
    let text = std::str::from_utf8(bytes)?;
    Ok(serde_json::from_str(text)?)
}

// ------------------------------------------------------------------------------------------------
// TransactionId

/// A transaction id (`C/common/TransactionId.scala`): `[id, start]`, `[id, start, true]`,
/// `[id, start, true, parent]` or `[id, start, parent]`.
///
/// The JSON value a message carried is kept and written back unchanged, because the controller
/// recognises health-action acks by comparing the whole value. Unreadable forms read as
/// `sid_unknown` (still echoed as they came).
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionId {
    raw: Value,
    id: String,
    start_millis: u64,
    extra_logging: bool,
    parent: Option<Box<TransactionId>>,
}

impl TransactionId {
    /// A new transaction id `[id, start_millis]` (for work the invoker starts itself).
    pub fn new(id: impl Into<String>, start_millis: u64) -> Self {
        let id = id.into();
        Self {
            raw: Value::Array(vec![Value::String(id.clone()), Value::from(start_millis)]),
            id,
            start_millis,
            extra_logging: false,
            parent: None,
        }
    }

    /// Reads a transaction id from its JSON value; never fails (unreadable → `sid_unknown`).
    pub fn from_value(raw: Value) -> Self {
        match Self::parse_parts(&raw) {
            Some((id, start_millis, extra_logging, parent)) => Self {
                raw,
                id,
                start_millis,
                extra_logging,
                parent,
            },
            None => Self {
                raw,
                id: SID_UNKNOWN.to_string(),
                start_millis: 0,
                extra_logging: false,
                parent: None,
            },
        }
    }

    #[allow(
        clippy::type_complexity,
        reason = "a private tuple of the parsed parts"
    )]
    fn parse_parts(raw: &Value) -> Option<(String, u64, bool, Option<Box<TransactionId>>)> {
        let items = raw.as_array()?;
        let id = items.first()?.as_str()?.to_string();
        let start = items.get(1)?.as_u64()?;
        let (extra, parent) = match &items[2..] {
            [] => (false, None),
            [Value::Bool(extra)] => (*extra, None),
            [Value::Bool(extra), parent @ Value::Array(_)] => (*extra, Some(parent)),
            [parent @ Value::Array(_)] => (false, Some(parent)),
            _ => return None,
        };
        let parent = match parent {
            Some(parent) => {
                let parent = Self::from_value(parent.clone());
                if parent.id == SID_UNKNOWN && parent.start_millis == 0 {
                    return None;
                }
                Some(Box::new(parent))
            }
            None => None,
        };
        Some((id, start, extra, parent))
    }

    /// The id part (`__OW_TRANSACTION_ID`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the controller received the request, in epoch milliseconds (the origin of `waitTime`).
    pub fn start_millis(&self) -> u64 {
        self.start_millis
    }

    /// Whether extra logging is on (such activations are always stored).
    pub fn extra_logging(&self) -> bool {
        self.extra_logging
    }

    /// The parent transaction (sequence components).
    pub fn parent(&self) -> Option<&TransactionId> {
        self.parent.as_deref()
    }

    /// The JSON value as it will be written (the received one, unchanged).
    pub fn as_value(&self) -> &Value {
        &self.raw
    }

    /// Whether this is the controller's health-action transaction.
    pub fn is_invoker_health(&self) -> bool {
        self.id == SID_INVOKER_HEALTH
    }
}

impl Serialize for TransactionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TransactionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::from_value(Value::deserialize(deserializer)?))
    }
}

// ------------------------------------------------------------------------------------------------
// Instance ids

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
        let valid = !as_string.is_empty()
            && as_string.len() <= MAX_CONTROLLER_ID_LEN
            && as_string
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if valid {
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

// ------------------------------------------------------------------------------------------------
// Names and identities

/// An activation id: 32 lowercase hex characters normally; read also from a JSON number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ActivationId(String);

impl ActivationId {
    /// A fresh random id (UUID v4 without dashes).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// An id from text, checked: 1 to 32 hex digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.is_empty()
            && text.len() <= MAX_ACTIVATION_ID_LEN
            && text.chars().all(|c| c.is_ascii_hexdigit())
        {
            Ok(Self(text.to_string()))
        } else {
            Err(format!(
                "invalid activation id {:?}",
                text.chars().take(64).collect::<String>()
            ))
        }
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActivationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ActivationId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => ActivationId::parse(&text).map_err(D::Error::custom),
            Value::Number(number) if number.is_u64() => {
                ActivationId::parse(&number.to_string()).map_err(D::Error::custom)
            }
            other => Err(D::Error::custom(format!(
                "activation id must be a string or a number, not {other}"
            ))),
        }
    }
}

/// `FullyQualifiedEntityName`: where the action document lives, its version and the binding it was
/// invoked through. Written as an object; read also from a plain `"ns/pkg/name"` string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FullyQualifiedEntityName {
    /// `ns` or `ns/pkg`.
    pub path: String,
    /// The entity name.
    pub name: String,
    /// The version (`0.0.1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The binding the user invoked through (`guest/mybinding`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
}

impl FullyQualifiedEntityName {
    /// The document id: `path/name`. Also the `path` annotation.
    pub fn doc_id(&self) -> String {
        format!("{}/{}", self.path, self.name)
    }

    /// The namespace alone (the first path segment).
    pub fn namespace(&self) -> &str {
        self.path.split('/').next().unwrap_or(&self.path)
    }

    fn from_text(text: &str) -> Result<Self, String> {
        let text = text.trim_start_matches('/');
        match text.rsplit_once('/') {
            Some((path, name)) if !path.is_empty() && !name.is_empty() => Ok(Self {
                path: path.to_string(),
                name: name.to_string(),
                version: None,
                binding: None,
            }),
            _ => Err(format!("invalid entity name {text:?}")),
        }
    }
}

impl<'de> Deserialize<'de> for FullyQualifiedEntityName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            path: String,
            name: String,
            #[serde(default)]
            version: Option<String>,
            #[serde(default)]
            binding: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Object(Wire),
            Text(String),
        }
        match Either::deserialize(deserializer)? {
            Either::Object(wire) => {
                if wire.path.is_empty() || wire.name.is_empty() {
                    return Err(D::Error::custom("entity path and name must not be empty"));
                }
                Ok(Self {
                    path: wire.path,
                    name: wire.name,
                    version: wire.version,
                    binding: wire.binding,
                })
            }
            Either::Text(text) => Self::from_text(&text).map_err(D::Error::custom),
        }
    }
}

/// The invoking namespace (`{"name":"guest","uuid":"..."}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// The namespace name; the activation record's `namespace`.
    pub name: String,
    /// The namespace's uuid; `userId` in user events.
    pub uuid: String,
}

/// Per-namespace limits (`UserLimits`); every field optional. Unknown keys are kept and written back.
/// The invoker uses `storeActivations`, the min/max action limits and the payload sizes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserLimits {
    /// Invocations per minute allowed (controller-side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocations_per_minute: Option<i64>,
    /// Concurrent invocations allowed (controller-side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_invocations: Option<i64>,
    /// Trigger fires per minute allowed (controller-side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fires_per_minute: Option<i64>,
    /// Kinds the namespace may create (controller-side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_kinds: Option<Vec<String>>,
    /// `false`: the invoker must not store this namespace's activation records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_activations: Option<bool>,
    /// Smallest action memory, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action_memory: Option<u64>,
    /// Largest action memory, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_memory: Option<u64>,
    /// Smallest action log limit, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action_logs: Option<u64>,
    /// Largest action log limit, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_logs: Option<u64>,
    /// Smallest action timeout, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action_timeout: Option<u64>,
    /// Largest action timeout, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_timeout: Option<u64>,
    /// Smallest intra-container concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action_concurrency: Option<u64>,
    /// Largest intra-container concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_concurrency: Option<u64>,
    /// Largest parameters (controller-side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parameter_size: Option<ByteSize>,
    /// Largest result before truncation (capped by the system's payload limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload_size: Option<ByteSize>,
    /// Bytes kept of an oversize result in its error message (capped by the system's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation_size: Option<ByteSize>,
    /// FPC only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmed_container_keeping_count: Option<i64>,
    /// FPC only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmed_container_keeping_timeout: Option<String>,
    /// FPC only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_instances: Option<i64>,
    /// Keys this version does not know, kept so that re-serialization loses nothing.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The invoking identity (`user`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The authenticated subject.
    pub subject: String,
    /// The invoking namespace.
    pub namespace: Namespace,
    /// The key's environment map, `{"api_key":"<uuid>:<secret>"}` for basic-auth keys.
    pub authkey: BTreeMap<String, String>,
    /// `READ`, `PUT`, `DELETE`, `ACTIVATE`, `REJECT`.
    pub rights: Vec<String>,
    /// Namespace limits, `{}` when none are overridden.
    #[serde(default)]
    pub limits: UserLimits,
}

impl Identity {
    /// The caller's API key (`uuid:key`), passed to actions unless `provide-api-key` is falsy.
    pub fn api_key(&self) -> Option<&str> {
        self.authkey.get("api_key").map(String::as_str)
    }
}

// ------------------------------------------------------------------------------------------------
// ActivationMessage

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

// ------------------------------------------------------------------------------------------------
// Acks

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

// ------------------------------------------------------------------------------------------------
// Pings

/// A health ping on `health` (`PingMessage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PingMessage {
    /// This invoker.
    pub name: InvokerInstanceId,
    /// `false` only in the single ping `POST /disable` sends; missing reads as `true`.
    #[serde(default = "enabled")]
    pub is_enabled: bool,
}

fn enabled() -> bool {
    true
}

impl PingMessage {
    /// A ping saying whether this invoker takes work.
    pub fn new(name: InvokerInstanceId, is_enabled: bool) -> Self {
        Self { name, is_enabled }
    }

    /// Reads a ping from Kafka bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, MessageError> {
        parse_bounded(bytes)
    }

    /// The compact JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a ping serializes")
    }
}

// ------------------------------------------------------------------------------------------------
// User events

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
    fn test_transaction_id_forms_and_echo() {
        let forms = [
            json!(["abc", 1]),
            json!(["abc", 1, true]),
            json!(["abc", 1, true, ["p", 0]]),
            json!(["abc", 1, ["p", 0]]),
        ];
        for form in forms {
            let tid: TransactionId = serde_json::from_value(form.clone()).unwrap();
            assert_eq!(tid.id(), "abc");
            assert_eq!(tid.start_millis(), 1);
            assert_eq!(serde_json::to_value(&tid).unwrap(), form);
        }
        let tid: TransactionId = serde_json::from_value(json!(["abc", 1, true, ["p", 7]])).unwrap();
        assert!(tid.extra_logging());
        assert_eq!(tid.parent().unwrap().start_millis(), 7);
        for odd in [
            json!("x"),
            json!([1, 2]),
            json!(["a"]),
            json!(["a", 1, "x"]),
        ] {
            let tid: TransactionId = serde_json::from_value(odd.clone()).unwrap();
            assert_eq!(tid.id(), SID_UNKNOWN);
            assert_eq!(serde_json::to_value(&tid).unwrap(), odd);
        }
    }

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

    #[test]
    fn test_entity_name_string_form_and_activation_id_number() {
        let name: FullyQualifiedEntityName = serde_json::from_value(json!("ns/pkg/a")).unwrap();
        assert_eq!(name.path, "ns/pkg");
        assert_eq!(name.name, "a");
        assert!(serde_json::from_value::<FullyQualifiedEntityName>(json!("a")).is_err());
        let id: ActivationId = serde_json::from_value(json!(12345)).unwrap();
        assert_eq!(id.as_str(), "12345");
        assert!(serde_json::from_value::<ActivationId>(json!("not-hex!")).is_err());
    }

    #[test]
    fn test_malformed_messages_are_errors() {
        assert!(matches!(
            ActivationMessage::parse(b"{"),
            Err(MessageError::Json(_))
        ));
        assert!(matches!(
            ActivationMessage::parse(&[0xff, 0xfe]),
            Err(MessageError::Utf8(_))
        ));
        assert!(matches!(
            ActivationMessage::parse(&vec![b' '; MAX_MESSAGE_BYTES + 1]),
            Err(MessageError::TooLarge(_))
        ));
        assert!(matches!(
            ActivationMessage::parse(br#"{"transid":["a",1]}"#),
            Err(MessageError::Json(_))
        ));
    }

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

    #[test]
    fn test_ping_missing_is_enabled_reads_true() {
        let instance = InvokerInstanceId::new(3, ByteSize::mb(1024), None, None);
        let ping: PingMessage = serde_json::from_value(json!({"name": instance})).unwrap();
        assert!(ping.is_enabled);
    }
}
