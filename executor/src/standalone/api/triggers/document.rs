//! The trigger document (`WhiskTrigger` with `_rev` and `entityType`) and the rules it carries:
//! the controller keeps each rule's action and status in its trigger (`ReducedRule`), so that
//! firing reads one document. Also what the trigger, rule and package routes share of the store:
//! the typed read of an entity document, which tells a missing name from one taken by another
//! collection, and its write and delete.

use std::collections::BTreeMap;

use hyper::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::fqn::Fqn;
use crate::document::Parameter;
use crate::standalone::api::State;
use crate::standalone::api::listing::Listed;
use crate::standalone::api::request::store_error;
use crate::standalone::http::{ApiError, messages};

/// The `entityType` of trigger documents.
pub(in crate::standalone::api) const TRIGGER_ENTITY_TYPE: &str = "trigger";

/// A rule's status (`Status`): only these two are ever stored or accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(in crate::standalone::api) enum RuleStatus {
    Active,
    Inactive,
}

impl RuleStatus {
    pub(in crate::standalone::api) fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }
}

/// What a trigger knows of one of its rules (`ReducedRule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::standalone::api) struct ReducedRule {
    pub(in crate::standalone::api) action: Fqn,
    pub(in crate::standalone::api) status: RuleStatus,
}

/// A trigger document as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(in crate::standalone::api) struct TriggerDocument {
    #[serde(rename = "_rev", default, skip_serializing_if = "Option::is_none")]
    pub(in crate::standalone::api) rev: Option<String>,
    #[serde(rename = "entityType")]
    pub(in crate::standalone::api) entity_type: String,
    pub(in crate::standalone::api) namespace: String,
    pub(in crate::standalone::api) name: String,
    #[serde(default)]
    pub(in crate::standalone::api) parameters: Vec<Parameter>,
    pub(in crate::standalone::api) version: String,
    #[serde(default)]
    pub(in crate::standalone::api) publish: bool,
    #[serde(default)]
    pub(in crate::standalone::api) annotations: Vec<Parameter>,
    /// Rule document id (`ns/rule`) to the rule's action and status; absent until a rule is
    /// added, then kept (possibly empty) as the controller keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(in crate::standalone::api) rules: Option<BTreeMap<String, ReducedRule>>,
    #[serde(default)]
    pub(in crate::standalone::api) updated: u64,
}

impl TriggerDocument {
    pub(in crate::standalone::api) fn doc_id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The trigger as the API shows it (`WhiskTrigger.serdes`; `limits` is always `{}`).
    pub(in crate::standalone::api) fn to_json(&self) -> Value {
        let mut value = json!({
            "namespace": self.namespace,
            "name": self.name,
            "parameters": self.parameters,
            "limits": {},
            "version": self.version,
            "publish": self.publish,
            "annotations": self.annotations,
            "updated": self.updated,
        });
        if let (Some(rules), Value::Object(map)) = (&self.rules, &mut value) {
            map.insert("rules".into(), json!(rules));
        }
        value
    }

    /// The status of rule `rule_id` as this trigger records it (`getStatus`): inactive unless
    /// recorded.
    pub(in crate::standalone::api) fn rule_status(&self, rule_id: &str) -> RuleStatus {
        self.rules
            .as_ref()
            .and_then(|rules| rules.get(rule_id))
            .map_or(RuleStatus::Inactive, |rule| rule.status)
    }

    /// `addRule`: records (or replaces) a rule.
    pub(in crate::standalone::api) fn add_rule(&mut self, rule_id: String, rule: ReducedRule) {
        self.rules
            .get_or_insert_with(BTreeMap::new)
            .insert(rule_id, rule);
    }

    /// `removeRule`: forgets a rule (an absent map stays absent).
    pub(in crate::standalone::api) fn remove_rule(&mut self, rule_id: &str) {
        if let Some(rules) = &mut self.rules {
            rules.remove(rule_id);
        }
    }
}

/// The list entry (the `triggers` view) is the default: no parameters, limits or rules.
impl Listed for TriggerDocument {
    const COLLECTION: &'static str = "triggers";
    const ENTITY_TYPE: &'static str = TRIGGER_ENTITY_TYPE;

    fn order(&self) -> (u64, &str) {
        (self.updated, &self.name)
    }
}

/// What a document id holds, read as the entity type asked for.
pub(in crate::standalone::api) enum Typed<T> {
    /// Nothing.
    Missing,
    /// An entity of another collection.
    Other,
    /// A document of this type that cannot be read (logged).
    Corrupt,
    /// The entity.
    Found(T),
}

/// Reads `doc_id` as an entity of `entity_type`.
pub(in crate::standalone::api) async fn read_typed<T: DeserializeOwned>(
    state: &State,
    doc_id: &str,
    entity_type: &str,
) -> Result<Typed<T>, ApiError> {
    let Some(value) = state
        .backend
        .get_entity(doc_id)
        .await
        .map_err(store_error)?
    else {
        return Ok(Typed::Missing);
    };
    if value.get("entityType").and_then(Value::as_str) != Some(entity_type) {
        return Ok(Typed::Other);
    }
    Ok(serde_json::from_value(value).map_or_else(
        |error| {
            tracing::error!(%doc_id, %error, entity_type, "unreadable document");
            Typed::Corrupt
        },
        Typed::Found,
    ))
}

/// The entity `doc_id` of `entity_type`, 404 when missing and 409 (`conformanceMessage`) when the
/// name belongs to another collection, as the controller's `getEntity`, `putEntity` and
/// `deleteEntity` answer.
pub(in crate::standalone::api) async fn existing<T: DeserializeOwned>(
    state: &State,
    doc_id: &str,
    entity_type: &str,
) -> Result<Option<T>, ApiError> {
    match read_typed(state, doc_id, entity_type).await? {
        Typed::Missing => Ok(None),
        Typed::Other => Err(ApiError::new(StatusCode::CONFLICT, messages::CONFORMANCE)),
        Typed::Corrupt => Err(ApiError::internal()),
        Typed::Found(entity) => Ok(Some(entity)),
    }
}

/// The trigger `doc_id` when there is one (`getTrigger`: missing, foreign or unreadable is none;
/// a store failure is still a 500).
pub(in crate::standalone::api) async fn find_trigger(
    state: &State,
    doc_id: &str,
) -> Result<Option<TriggerDocument>, ApiError> {
    match read_typed(state, doc_id, TRIGGER_ENTITY_TYPE).await? {
        Typed::Found(trigger) => Ok(Some(trigger)),
        Typed::Missing | Typed::Other | Typed::Corrupt => Ok(None),
    }
}

/// Writes a trigger at its revision; returns it as stored.
pub(in crate::standalone::api) async fn put_trigger(
    state: &State,
    trigger: &TriggerDocument,
) -> Result<TriggerDocument, ApiError> {
    put_typed(state, &trigger.doc_id(), trigger).await
}

/// Writes a document at its revision (`_rev`; none creates); returns it as stored.
pub(in crate::standalone::api) async fn put_typed<T: Serialize + DeserializeOwned>(
    state: &State,
    doc_id: &str,
    document: &T,
) -> Result<T, ApiError> {
    let value = serde_json::to_value(document).map_err(|error| {
        tracing::error!(%doc_id, %error, "document not serialisable");
        ApiError::internal()
    })?;
    let stored = state
        .backend
        .put_entity(doc_id, value)
        .await
        .map_err(store_error)?;
    serde_json::from_value(stored).map_err(|error| {
        tracing::error!(%doc_id, %error, "stored document unreadable");
        ApiError::internal()
    })
}

/// Deletes the entity document `doc_id` at its revision `rev`.
pub(in crate::standalone::api) async fn delete_document(
    state: &State,
    doc_id: &str,
    rev: Option<&str>,
) -> Result<(), ApiError> {
    state
        .backend
        .delete_entity(doc_id, rev)
        .await
        .map_err(store_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger() -> TriggerDocument {
        TriggerDocument {
            rev: None,
            entity_type: TRIGGER_ENTITY_TYPE.into(),
            namespace: "guest".into(),
            name: "t".into(),
            parameters: Vec::new(),
            version: "0.0.1".into(),
            publish: false,
            annotations: Vec::new(),
            rules: None,
            updated: 0,
        }
    }

    #[test]
    fn test_rules_are_added_replaced_and_removed_as_the_controller_does() {
        let mut t = trigger();
        assert!(t.to_json().get("rules").is_none());
        assert_eq!(t.rule_status("guest/r"), RuleStatus::Inactive);
        let action = Fqn {
            path: "guest".into(),
            name: "a".into(),
        };
        t.add_rule(
            "guest/r".into(),
            ReducedRule {
                action: action.clone(),
                status: RuleStatus::Active,
            },
        );
        assert_eq!(t.rule_status("guest/r"), RuleStatus::Active);
        assert_eq!(
            t.to_json()["rules"],
            json!({"guest/r": {"action": {"path": "guest", "name": "a"}, "status": "active"}})
        );
        t.remove_rule("guest/r");
        assert_eq!(t.to_json()["rules"], json!({}));
        assert_eq!(t.to_json()["limits"], json!({}));
    }
}
