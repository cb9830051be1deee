//! The rule routes, `/api/v1/namespaces/{ns}/rules[/{name}]`: list, get, create or update (PUT),
//! delete, and enable or disable (POST `{"status": "active"|"inactive"}`), as `Rules.scala` does.
//!
//! A rule document names its trigger and action; its status is not in it but in the trigger's
//! `rules` map (`ReducedRule`), which is what firing reads. So creating a rule records it, active,
//! in its trigger; enabling and disabling rewrite that entry; deleting removes it; and a rule whose
//! trigger is gone (or does not list it) reads as inactive.

use std::collections::BTreeSet;
use std::time::SystemTime;

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::State;
use super::action_put::{into_parameters, replaced, up_patch};
use super::listing::{self, Listed};
use super::packages::{Lookup, lookup};
use super::request::{Call, EntityRoute, Reply, Routed, entity_route, store_error};
use super::triggers::document::{
    ReducedRule, RuleStatus, TRIGGER_ENTITY_TYPE, TriggerDocument, Typed, delete_document,
    existing, find_trigger, put_trigger, put_typed, read_typed,
};
use super::triggers::fqn::Fqn;
use super::triggers::parse_entity_put;
use crate::document::{self, Parameter};
use crate::record::epoch_millis;
use crate::standalone::http::{ApiError, json_object_body, json_response, messages, text_response};

/// The `entityType` of rule documents.
const RULE_ENTITY_TYPE: &str = "rule";

/// The controller's texts for rules.
mod text {
    /// A new rule without both names.
    pub(super) const TRIGGER_AND_ACTION_REQUIRED: &str =
        "rule requires a valid trigger and a valid action";
    /// Enabling a rule whose trigger is gone.
    pub(super) const TRIGGER_REQUIRED: &str = "Only rules with existing triggers can be activated";
    /// An enable or disable without a body (Pekko's `RequestEntityExpectedRejection`).
    pub(super) const ENTITY_EXPECTED: &str = "Request entity expected but not supplied";

    pub(super) fn does_not_exist(what: &str, name: &str) -> String {
        format!("{what} {name} does not exist")
    }

    pub(super) fn unrecognized_state(state: &str) -> String {
        format!("requirement failed: {state} is not a recognized rule state")
    }
}

/// The list entry is the rule as GET shows it, without a status.
impl Listed for RuleDocument {
    const COLLECTION: &'static str = "rules";
    const ENTITY_TYPE: &'static str = RULE_ENTITY_TYPE;

    fn order(&self) -> (u64, &str) {
        (self.updated, &self.name)
    }

    fn summary(&self) -> Value {
        self.to_json()
    }
}

/// A rule document as stored (`WhiskRule` with `_rev` and `entityType`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RuleDocument {
    #[serde(rename = "_rev", default, skip_serializing_if = "Option::is_none")]
    rev: Option<String>,
    #[serde(rename = "entityType")]
    entity_type: String,
    namespace: String,
    name: String,
    trigger: Fqn,
    action: Fqn,
    version: String,
    #[serde(default)]
    publish: bool,
    #[serde(default)]
    annotations: Vec<Parameter>,
    #[serde(default)]
    updated: u64,
}

impl RuleDocument {
    fn doc_id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The rule as a list shows it (`WhiskRule.serdes`: no status).
    fn to_json(&self) -> Value {
        json!({
            "namespace": self.namespace,
            "name": self.name,
            "trigger": self.trigger,
            "action": self.action,
            "version": self.version,
            "publish": self.publish,
            "annotations": self.annotations,
            "updated": self.updated,
        })
    }

    /// The rule as GET, PUT and DELETE answer it (`WhiskRuleResponse`): with a status.
    fn with_status(&self, status: RuleStatus) -> Value {
        let mut value = self.to_json();
        if let Value::Object(map) = &mut value {
            map.insert("status".into(), json!(status.as_str()));
        }
        value
    }
}

/// Routes `/api/v1/namespaces/{ns}/rules/{rest}` (`rest` = what follows `rules`).
pub(super) async fn route(routed: &Routed<'_>, ns: &str, rest: &[&str]) -> Reply {
    let (state, call) = (routed.state, routed.call);
    match entity_route(routed, ns, rest)? {
        EntityRoute::List(ns) => listing::list::<RuleDocument>(state, call, &ns).await,
        EntityRoute::Get(rule) => get_rule(state, &rule.doc_id).await,
        EntityRoute::Put(rule) => put_rule(state, call, &rule.ns, &rule.name).await,
        EntityRoute::Delete(rule) => delete_rule(state, &rule.doc_id).await,
        EntityRoute::Post(rule) => change_status(state, call, &rule.doc_id).await,
    }
}

/// The rule `doc_id`: 404 when missing, 409 when the name is another collection's.
async fn read_rule(state: &State, doc_id: &str) -> Result<RuleDocument, ApiError> {
    existing(state, doc_id, RULE_ENTITY_TYPE)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// The status of `rule` as its trigger records it (inactive when the trigger is gone).
async fn status_of(state: &State, rule: &RuleDocument) -> Result<RuleStatus, ApiError> {
    let trigger = find_trigger(state, &rule.trigger.doc_id()).await?;
    Ok(trigger.map_or(RuleStatus::Inactive, |t| t.rule_status(&rule.doc_id())))
}

async fn get_rule(state: &State, doc_id: &str) -> Reply {
    let rule = read_rule(state, doc_id).await?;
    let status = status_of(state, &rule).await?;
    Ok(json_response(StatusCode::OK, &rule.with_status(status)))
}

/// Reads a PUT's `trigger` or `action` (absent or null is none) and resolves `_`.
fn read_name(
    body: &serde_json::Map<String, Value>,
    key: &str,
    own: &str,
) -> Result<Option<Fqn>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => Fqn::read(value)
            .map(|fqn| Some(fqn.resolve(own)))
            .map_err(|reason| ApiError::bad_request(messages::malformed_content(&reason))),
    }
}

/// The entitlement check on the entities a rule refers to (`referencedEntities`, READ): the
/// caller's own are readable; of another namespace only an action of a published package is. The
/// 403 names every refused one, sorted.
async fn check_references(
    state: &State,
    own: &str,
    trigger: Option<&Fqn>,
    action: Option<&Fqn>,
) -> Result<(), ApiError> {
    let mut refused = BTreeSet::new();
    if let Some(trigger) = trigger.filter(|t| t.namespace() != own) {
        refused.insert(trigger.doc_id());
    }
    if let Some(action) = action.filter(|a| a.namespace() != own) {
        let published = match action.package() {
            Some(_) => matches!(
                lookup(state, &action.path).await?,
                Lookup::Package(package) if package.publish && package.binding.is_none()
            ),
            None => false,
        };
        if !published {
            refused.insert(action.doc_id());
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = refused.into_iter().collect();
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        messages::not_authorized(&names.join(", ")),
    ))
}

/// `checkTriggerAndActionExist`: the trigger, then the action (through a binding to its package's),
/// must exist; otherwise 400 naming the missing one.
async fn check_exist(
    state: &State,
    trigger: &Fqn,
    action: &Fqn,
) -> Result<TriggerDocument, ApiError> {
    let missing = |what: &str, fqn: &Fqn| {
        ApiError::bad_request(text::does_not_exist(what, &fqn.with_leading_slash()))
    };
    let found =
        match read_typed::<TriggerDocument>(state, &trigger.doc_id(), TRIGGER_ENTITY_TYPE).await? {
            Typed::Found(found) => found,
            Typed::Corrupt => {
                return Err(ApiError::bad_request(format!(
                    "trigger {} is corrupted",
                    trigger.with_leading_slash()
                )));
            }
            Typed::Missing | Typed::Other => return Err(missing("trigger", trigger)),
        };
    // `WhiskAction.resolveAction`: an action named through a binding is its package's.
    let resolved = match action.package() {
        Some(_) => match lookup(state, &action.path).await? {
            Lookup::Package(package) => match &package.binding {
                Some(binding) => format!("{}/{}", binding.doc_id(), action.name),
                None => action.doc_id(),
            },
            Lookup::Missing | Lookup::Other => return Err(missing("action", action)),
        },
        None => action.doc_id(),
    };
    let exists = state
        .backend
        .get_action(&resolved, false)
        .await
        .map_err(store_error)?
        .is_some();
    if !exists {
        return Err(missing("action", action));
    }
    Ok(found)
}

async fn put_rule(state: &State, call: &Call, ns: &str, name: &str) -> Reply {
    let overwrite = call.flag("overwrite")?;
    let (put, body) = parse_entity_put(state, call)?;
    let trigger = read_name(&body, "trigger", ns)?;
    let action = read_name(&body, "action", ns)?;
    check_references(state, ns, trigger.as_ref(), action.as_ref()).await?;
    let doc_id = format!("{ns}/{name}");
    let old = existing::<RuleDocument>(state, &doc_id, RULE_ENTITY_TYPE).await?;
    let annotations = put.annotations.map(into_parameters);
    let rule = match replaced(old, overwrite)? {
        Some(old) => {
            // An update keeps the status the old trigger records, and moves the rule to the new
            // trigger when it changed.
            let old_trigger = find_trigger(state, &old.trigger.doc_id()).await?;
            let status = old_trigger
                .as_ref()
                .map_or(RuleStatus::Inactive, |t| t.rule_status(&doc_id));
            let new_trigger = trigger.clone().unwrap_or_else(|| old.trigger.clone());
            let new_action = action.unwrap_or_else(|| old.action.clone());
            let mut target = check_exist(state, &new_trigger, &new_action).await?;
            if trigger.is_some()
                && new_trigger != old.trigger
                && let Some(mut previous) = old_trigger
            {
                previous.remove_rule(&doc_id);
                put_trigger(state, &previous).await?;
            }
            target.add_rule(
                doc_id.clone(),
                ReducedRule {
                    action: new_action.clone(),
                    status,
                },
            );
            put_trigger(state, &target).await?;
            RuleDocument {
                trigger: new_trigger,
                action: new_action,
                version: put.version.unwrap_or_else(|| up_patch(&old.version)),
                publish: put.publish.unwrap_or(old.publish),
                annotations: annotations.unwrap_or(old.annotations),
                updated: epoch_millis(SystemTime::now()),
                ..old
            }
        }
        None => {
            let (Some(trigger), Some(action)) = (trigger, action) else {
                return Err(ApiError::bad_request(text::TRIGGER_AND_ACTION_REQUIRED));
            };
            let mut target = check_exist(state, &trigger, &action).await?;
            target.add_rule(
                doc_id.clone(),
                ReducedRule {
                    action: action.clone(),
                    status: RuleStatus::Active,
                },
            );
            put_trigger(state, &target).await?;
            RuleDocument {
                rev: None,
                entity_type: RULE_ENTITY_TYPE.into(),
                namespace: ns.to_string(),
                name: name.to_string(),
                trigger,
                action,
                version: put
                    .version
                    .unwrap_or_else(|| document::DEFAULT_VERSION.to_string()),
                publish: put.publish.unwrap_or(false),
                annotations: annotations.unwrap_or_default(),
                updated: epoch_millis(SystemTime::now()),
            }
        }
    };
    let stored = put_typed(state, &doc_id, &rule).await?;
    // With `overwrite` the status is read back from the trigger; a plain create is active.
    let status = if overwrite {
        status_of(state, &stored).await?
    } else {
        RuleStatus::Active
    };
    Ok(json_response(StatusCode::OK, &stored.with_status(status)))
}

async fn delete_rule(state: &State, doc_id: &str) -> Reply {
    let rule = read_rule(state, doc_id).await?;
    if let Some(mut trigger) = find_trigger(state, &rule.trigger.doc_id()).await? {
        trigger.remove_rule(doc_id);
        put_trigger(state, &trigger).await?;
    }
    delete_document(state, doc_id, rule.rev.as_deref()).await?;
    Ok(json_response(
        StatusCode::OK,
        &rule.with_status(RuleStatus::Inactive),
    ))
}

/// Reads `{"status": "active"|"inactive"}` (`Status.serdesRestricted`).
fn requested_status(call: &Call) -> Result<RuleStatus, ApiError> {
    let malformed = |reason: &str| ApiError::bad_request(messages::malformed_content(reason));
    let Some(body) = json_object_body(&call.headers, &call.body)? else {
        return Err(ApiError::bad_request(text::ENTITY_EXPECTED));
    };
    match body.get("status") {
        Some(Value::String(status)) => match status.trim() {
            "active" => Ok(RuleStatus::Active),
            "inactive" => Ok(RuleStatus::Inactive),
            "" => Err(malformed("requirement failed: argument undefined")),
            other => Err(malformed(&text::unrecognized_state(other))),
        },
        Some(other) => Err(malformed(&format!(
            "{other} (of class {})",
            spray_class(other)
        ))),
        None => Err(malformed("key not found: status")),
    }
}

/// The spray-json class name of a JSON value, as the controller's match error shows it.
fn spray_class(value: &Value) -> &'static str {
    match value {
        Value::Null => "spray.json.JsNull$",
        Value::Bool(true) => "spray.json.JsTrue$",
        Value::Bool(false) => "spray.json.JsFalse$",
        Value::Number(_) => "spray.json.JsNumber",
        Value::String(_) => "spray.json.JsString",
        Value::Array(_) => "spray.json.JsArray",
        Value::Object(_) => "spray.json.JsObject",
    }
}

/// Enables or disables a rule: rewrites its entry in its trigger when the status changes; a
/// request for the status it has is a plain 200.
async fn change_status(state: &State, call: &Call, doc_id: &str) -> Reply {
    let requested = requested_status(call)?;
    let rule = read_rule(state, doc_id).await?;
    let current = status_of(state, &rule).await?;
    if requested != current {
        let Some(mut trigger) = find_trigger(state, &rule.trigger.doc_id()).await? else {
            return Err(ApiError::new(StatusCode::NOT_FOUND, text::TRIGGER_REQUIRED));
        };
        trigger.add_rule(
            doc_id.to_string(),
            ReducedRule {
                action: rule.action.clone(),
                status: requested,
            },
        );
        put_trigger(state, &trigger).await?;
    }
    // `complete(OK)`: Pekko's text body for the status.
    Ok(text_response(StatusCode::OK, "OK"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use hyper::Method;

    fn post(body: &str) -> Call {
        Call {
            method: Method::POST,
            headers: hyper::HeaderMap::new(),
            segments: Vec::new(),
            raw_query: String::new(),
            query: Vec::new(),
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn test_status_requests_follow_the_restricted_serdes() {
        assert_eq!(
            requested_status(&post(r#"{"status":"active"}"#)).unwrap(),
            RuleStatus::Active
        );
        assert_eq!(
            requested_status(&post(r#"{"status":"inactive"}"#)).unwrap(),
            RuleStatus::Inactive
        );
        assert_eq!(
            requested_status(&post(r#"{"status":"on"}"#))
                .unwrap_err()
                .message,
            "The request content was malformed:\nrequirement failed: on is not a recognized rule state"
        );
        assert_eq!(
            requested_status(&post("{}")).unwrap_err().message,
            "The request content was malformed:\nkey not found: status"
        );
        assert_eq!(
            requested_status(&post("")).unwrap_err().message,
            text::ENTITY_EXPECTED
        );
    }
}
