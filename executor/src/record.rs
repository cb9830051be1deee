//! The activation record (`WhiskActivation`, docs/protocol.md §8) and its builders.
//!
//! One record per activation, built once by [`WhiskActivation::from_outcome`] (a container ran) or
//! [`WhiskActivation::fallback`] (the invoker refused it before any container), then sent in acks
//! (plain form), stored ([`ActivationDocument`], with `_id`, `entityType`, `updated`) and shown by the
//! standalone REST server ([`WhiskActivation::to_extended_json`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use factory::{Outcome, Status};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::action::ExecutableAction;
use crate::message::{ActivationId, ActivationMessage};

/// Epoch milliseconds of a time (0 before the epoch).
pub fn epoch_millis(time: SystemTime) -> u64 {
    u64::try_from(
        time.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// Milliseconds of a duration, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// OpenWhisk's truthiness of a parameter or annotation value (`Parameter.scala isTruthy`): a bool as
/// it is, a number when not 0, a string when not empty, `null` false, anything else true.
pub fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Null => false,
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// An ordered `[{"key":..,"value":..}]` list (annotations of actions and activations).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Annotations(pub Vec<(String, Value)>);

impl Annotations {
    /// An empty list.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Appends `key: value`, replacing an earlier value of the same key in place.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(existing, _)| *existing == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(existing, _)| existing == key)
            .map(|(_, value)| value)
    }

    /// The truthiness of `key`, or `default` when it is absent.
    pub fn is_truthy(&self, key: &str, default: bool) -> bool {
        self.get(key).map(is_truthy).unwrap_or(default)
    }

    /// The entries as a JSON array of `{key, value}`.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("annotations serialize")
    }
}

impl Serialize for Annotations {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Entry<'a> {
            key: &'a str,
            value: &'a Value,
        }
        serializer.collect_seq(self.0.iter().map(|(key, value)| Entry { key, value }))
    }
}

impl<'de> Deserialize<'de> for Annotations {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Entry {
            key: String,
            #[serde(default)]
            value: Value,
        }
        let entries = Vec::<Entry>::deserialize(deserializer)?;
        Ok(Self(
            entries
                .into_iter()
                .map(|entry| (entry.key, entry.value))
                .collect(),
        ))
    }
}

/// `response` of an activation (`ActivationResult.scala`): `{"statusCode", "result"?, "size"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationResponse {
    /// Status 0-3, written as `statusCode`.
    #[serde(rename = "statusCode", with = "status_code")]
    pub status: Status,
    /// The result; `{"error": ...}` for every failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Length of the raw container response, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

mod status_code {
    use super::*;

    pub fn serialize<S: Serializer>(status: &Status, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(status.code())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Status, D::Error> {
        let code = u64::deserialize(deserializer)?;
        Status::from_code(code)
            .ok_or_else(|| D::Error::custom(format!("statusCode {code} is not 0..3")))
    }
}

impl ActivationResponse {
    /// An error response `{"error": message}` with `status`.
    pub fn error(status: Status, message: impl Into<String>) -> Self {
        Self {
            status,
            result: Some(factory::outcome::error_result(message.into())),
            size: None,
        }
    }

    /// The REST API's form (`toExtendedJson`): `statusCode` replaced by `status` text and `success`.
    pub fn to_extended_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("status".into(), Value::String(self.status.as_text().into()));
        map.insert(
            "success".into(),
            Value::Bool(self.status == Status::Success),
        );
        if let Some(result) = &self.result {
            map.insert("result".into(), result.clone());
        }
        if let Some(size) = self.size {
            map.insert("size".into(), Value::from(size));
        }
        Value::Object(map)
    }
}

/// An epoch-millisecond instant, read also from an ISO-8601 string.
mod instant {
    use super::*;

    pub fn serialize<S: Serializer>(millis: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(*millis)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Number(number) => number
                .as_u64()
                .or_else(|| number.as_f64().filter(|n| *n >= 0.0).map(|n| n as u64))
                .ok_or_else(|| D::Error::custom(format!("invalid instant {number}"))),
            Value::String(text) => {
                let parsed = time::OffsetDateTime::parse(
                    &text,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|error| D::Error::custom(format!("invalid instant {text:?}: {error}")))?;
                let millis = parsed.unix_timestamp_nanos() / 1_000_000;
                u64::try_from(millis)
                    .map_err(|_| D::Error::custom(format!("instant {text:?} is before 1970")))
            }
            other => Err(D::Error::custom(format!("invalid instant {other}"))),
        }
    }
}

/// An activation record as it travels in acks (`WhiskActivation`, `jsonFormat13`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhiskActivation {
    /// The invoking namespace (`user.namespace.name`), not the action's.
    pub namespace: String,
    /// The action's name (no package).
    pub name: String,
    /// `user.subject`.
    pub subject: String,
    /// The activation id.
    pub activation_id: ActivationId,
    /// Epoch ms: run start moved back by the init time.
    #[serde(with = "instant")]
    pub start: u64,
    /// Epoch ms: end of the run (or of a failed init).
    #[serde(with = "instant")]
    pub end: u64,
    /// The parent activation (sequence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<ActivationId>,
    /// Status, result, size.
    pub response: ActivationResponse,
    /// Formatted log lines.
    pub logs: Vec<String>,
    /// The action's version.
    pub version: String,
    /// Always `false` from the invoker.
    pub publish: bool,
    /// `limits`, `path`, `kind`, `timeout`, `causedBy`, `initTime`, `waitTime`, `binding` (and `fuel`).
    pub annotations: Annotations,
    /// `end - start` in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
}

/// Why the invoker refused an activation before any container ran (docs/protocol.md §3), with OpenWhisk's
/// exact status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FallbackReason {
    /// The invoking namespace is blacklisted (application error; never stored).
    Blacklisted,
    /// The action document does not exist (application error).
    NotFound,
    /// The action's limits fall outside the namespace's (application error with the limit message).
    LimitViolation(String),
    /// The document is unreadable or of the wrong type (whisk error).
    Incompatible,
    /// Anything else, including non-executable actions such as sequences (whisk error).
    FetchFailed,
    /// The invoker itself failed while processing the activation (a panic, caught): whisk error.
    Internal,
}

/// `Messages.namespacesBlacklisted`.
pub const MSG_BLACKLISTED: &str = "The action was not invoked due to a blacklisted namespace.";
/// `Messages.actionRemovedWhileInvoking`.
pub const MSG_NOT_FOUND: &str = "Action could not be found or may have been deleted.";
/// `Messages.actionMismatchWhileInvoking`.
pub const MSG_INCOMPATIBLE: &str = "Action version is not compatible and cannot be invoked.";
/// `Messages.actionFetchErrorWhileInvoking`.
pub const MSG_FETCH_FAILED: &str = "Action could not be fetched.";
/// Ours: OpenWhisk's invoker has no caught-panic path (an actor that fails loses the activation).
pub const MSG_INTERNAL: &str = "The invoker failed while processing the activation.";

impl FallbackReason {
    /// The status OpenWhisk records.
    pub fn status(&self) -> Status {
        match self {
            Self::Blacklisted | Self::NotFound | Self::LimitViolation(_) => {
                Status::ApplicationError
            }
            Self::Incompatible | Self::FetchFailed | Self::Internal => Status::WhiskError,
        }
    }

    /// The error message OpenWhisk records.
    pub fn message(&self) -> &str {
        match self {
            Self::Blacklisted => MSG_BLACKLISTED,
            Self::NotFound => MSG_NOT_FOUND,
            Self::LimitViolation(message) => message,
            Self::Incompatible => MSG_INCOMPATIBLE,
            Self::FetchFailed => MSG_FETCH_FAILED,
            Self::Internal => MSG_INTERNAL,
        }
    }

    /// Whether the record is stored (everything but blacklisted namespaces).
    pub fn stored(&self) -> bool {
        !matches!(self, Self::Blacklisted)
    }
}

impl WhiskActivation {
    /// The record of an activation a container ran (`ContainerProxy.constructWhiskActivation`).
    ///
    /// `outcome.start` is the run start; when `outcome.init_time` is set, the record starts that much
    /// earlier. `wait_time` is from the transid start to the start of init (or of run when warm).
    pub fn from_outcome(
        message: &ActivationMessage,
        action: &ExecutableAction,
        outcome: &Outcome,
        wait_time: Duration,
    ) -> Self {
        let run_start = epoch_millis(outcome.start);
        let init_ms = outcome.init_time.map(millis);
        let start = run_start.saturating_sub(init_ms.unwrap_or(0));
        let end = epoch_millis(outcome.end).max(start);
        let mut annotations = Annotations::new();
        annotations.set(
            "limits",
            serde_json::to_value(action.limits).expect("limits serialize"),
        );
        annotations.set("path", action.path());
        annotations.set("kind", action.kind.clone());
        annotations.set("timeout", outcome.timed_out);
        if message.cause.is_some() {
            annotations.set("causedBy", "sequence");
        }
        if let Some(init_ms) = init_ms {
            annotations.set("initTime", init_ms);
        }
        annotations.set("waitTime", millis(wait_time));
        if let Some(binding) = &message.action.binding {
            annotations.set("binding", binding.clone());
        }
        if let Some(fuel) = outcome.fuel {
            annotations.set("fuel", fuel);
        }
        Self {
            namespace: message.user.namespace.name.clone(),
            name: action.name.clone(),
            subject: message.user.subject.clone(),
            activation_id: message.activation_id.clone(),
            start,
            end,
            cause: message.cause.clone(),
            response: ActivationResponse {
                status: outcome.status,
                result: outcome.result.clone(),
                size: outcome.size.map(|size| size as u64),
            },
            logs: outcome.logs.clone(),
            version: action.version.clone(),
            publish: false,
            annotations,
            duration: Some(end - start),
        }
    }

    /// The fallback record of an activation the invoker refused (`InvokerReactive`): start = end =
    /// `now`, duration 0, annotations `path`, `kind: "unknown"` and `causedBy` when caused.
    pub fn fallback(message: &ActivationMessage, reason: &FallbackReason, now: SystemTime) -> Self {
        let now = epoch_millis(now);
        let mut annotations = Annotations::new();
        annotations.set("path", message.action.doc_id());
        annotations.set("kind", "unknown");
        if message.cause.is_some() {
            annotations.set("causedBy", "sequence");
        }
        Self {
            namespace: message.user.namespace.name.clone(),
            name: message.action.name.clone(),
            subject: message.user.subject.clone(),
            activation_id: message.activation_id.clone(),
            start: now,
            end: now,
            cause: message.cause.clone(),
            response: ActivationResponse::error(reason.status(), reason.message()),
            logs: Vec::new(),
            version: message
                .action
                .version
                .clone()
                .unwrap_or_else(|| crate::document::DEFAULT_VERSION.to_string()),
            publish: false,
            annotations,
            duration: Some(0),
        }
    }

    /// Whether the controller counts this as a system error (status 3).
    pub fn is_system_error(&self) -> bool {
        self.response.status == Status::WhiskError
    }

    /// The same record without logs (what a `ResultMessage` carries while logs are collected).
    pub fn without_logs(&self) -> Self {
        Self {
            logs: Vec::new(),
            ..self.clone()
        }
    }

    /// The document id in the activations database: `<namespace>/<activationId>`.
    pub fn doc_id(&self) -> String {
        format!("{}/{}", self.namespace, self.activation_id)
    }

    /// The stored form, `updated` = `now`.
    pub fn to_document(&self, now: SystemTime) -> ActivationDocument {
        ActivationDocument {
            id: self.doc_id(),
            rev: None,
            entity_type: ACTIVATION_ENTITY_TYPE.to_string(),
            updated: epoch_millis(now),
            activation: self.clone(),
        }
    }

    /// The stored form ([`WhiskActivation::to_document`]) written as JSON at the end of `out`,
    /// without copying the record or building a `serde_json::Value` first: the record queue writes
    /// every record of the invoker this way. On an error `out` is left as it was.
    pub fn write_document(&self, now: SystemTime, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let start = out.len();
        let document = DocumentRef {
            id: self.doc_id(),
            entity_type: ACTIVATION_ENTITY_TYPE,
            updated: epoch_millis(now),
            activation: self,
        };
        serde_json::to_writer(&mut *out, &document).inspect_err(|_| out.truncate(start))
    }

    /// The REST API's view (`toExtendedJson`): `response` with `status` text and `success`.
    pub fn to_extended_json(&self) -> Value {
        let mut value = serde_json::to_value(self).expect("an activation serializes");
        if let Value::Object(map) = &mut value {
            map.insert("response".into(), self.response.to_extended_json());
        }
        value
    }
}

/// `entityType` of stored activations.
pub const ACTIVATION_ENTITY_TYPE: &str = "activation";

/// An activation as stored in the activations database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationDocument {
    /// `<namespace>/<activationId>`.
    #[serde(rename = "_id")]
    pub id: String,
    /// The revision, when read back from CouchDB.
    #[serde(rename = "_rev", default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
    /// `"activation"`.
    #[serde(rename = "entityType")]
    pub entity_type: String,
    /// Epoch ms when the document was made.
    pub updated: u64,
    /// The record.
    #[serde(flatten)]
    pub activation: WhiskActivation,
}

/// [`ActivationDocument`] over a borrowed record, for writing only: the same fields, the same JSON.
#[derive(Serialize)]
struct DocumentRef<'a> {
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "entityType")]
    entity_type: &'static str,
    updated: u64,
    #[serde(flatten)]
    activation: &'a WhiskActivation,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_truthiness_follows_openwhisk() {
        assert!(!is_truthy(&json!(false)));
        assert!(!is_truthy(&json!(0)));
        assert!(!is_truthy(&json!("")));
        assert!(!is_truthy(&Value::Null));
        assert!(is_truthy(&json!(1)));
        assert!(is_truthy(&json!("no")));
        assert!(is_truthy(&json!({})));
    }

    #[test]
    fn test_response_extended_view() {
        let response = ActivationResponse::error(Status::DeveloperError, "boom");
        assert_eq!(
            response.to_extended_json(),
            json!({"status": "action developer error", "success": false, "result": {"error": "boom"}})
        );
        let status: Result<ActivationResponse, _> =
            serde_json::from_value(json!({"statusCode": 4}));
        assert!(status.is_err());
    }

    #[test]
    fn test_instant_reads_iso_strings() {
        #[derive(Deserialize)]
        struct T {
            #[serde(with = "instant")]
            at: u64,
        }
        let t: T = serde_json::from_value(json!({"at": "2025-03-14T09:26:53.259Z"})).unwrap();
        assert_eq!(t.at, 1_741_944_413_259);
    }

    #[test]
    fn test_written_document_is_the_stored_form() {
        let activation: WhiskActivation = serde_json::from_value(json!({
            "namespace": "guest", "name": "a", "subject": "guest",
            "activationId": "0123456789abcdef0123456789abcdef", "start": 1, "end": 2,
            "cause": "fedcba9876543210fedcba9876543210",
            "response": {"statusCode": 0, "result": {"n": 1, "s": "x\"y"}},
            "logs": ["line"], "version": "0.0.1", "publish": false, "duration": 1,
            "annotations": [{"key": "path", "value": "guest/a"}]
        }))
        .expect("a valid record");
        let now = UNIX_EPOCH + Duration::from_millis(42);
        let mut out = b"[".to_vec();
        activation.write_document(now, &mut out).expect("written");
        let written: Value = serde_json::from_slice(&out[1..]).expect("JSON");
        let expected = serde_json::to_value(activation.to_document(now)).expect("serializes");
        assert_eq!(written, expected);
        let read: ActivationDocument = serde_json::from_slice(&out[1..]).expect("reads back");
        assert_eq!(read.activation, activation);
        assert_eq!(&out[..1], b"[", "appended");
    }

    #[test]
    fn test_fallback_reasons() {
        assert_eq!(FallbackReason::NotFound.status(), Status::ApplicationError);
        assert_eq!(FallbackReason::FetchFailed.status(), Status::WhiskError);
        assert_eq!(FallbackReason::Incompatible.message(), MSG_INCOMPATIBLE);
        assert!(!FallbackReason::Blacklisted.stored());
        let limit = FallbackReason::LimitViolation("too much".into());
        assert_eq!(limit.message(), "too much");
    }
}
