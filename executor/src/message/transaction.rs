//! The transaction id every message carries (`TransactionId.scala`), and the `sid_` ids of the work the
//! invoker starts itself.
//!
//! Kept as the JSON value it arrived as, because the controller compares the echoed value whole.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

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
}
