//! The trigger routes, `/api/v1/namespaces/{ns}/triggers[/{name}]`: list, get, create or update
//! (PUT), delete, and fire (POST, in [`fire`]), with the controller's statuses and texts. The
//! document and the rules it carries are in [`document`], the fully qualified names rules use in
//! [`fqn`]. A trigger's rules are its own business: deleting a trigger leaves its rules, which then
//! read as inactive (`Triggers.remove` confirms nothing).

pub(super) mod document;
mod fire;
pub(super) mod fqn;

use std::time::SystemTime;

use hyper::StatusCode;
use serde_json::{Map, Value};

use self::document::{
    TRIGGER_ENTITY_TYPE, TriggerDocument, delete_document, existing, put_trigger,
};
use super::State;
use super::action_put::{ActionPut, into_parameters, parse_action_put, replaced, up_patch};
use super::listing;
use super::request::{Call, EntityRoute, Reply, Routed, entity_route};
use crate::document::{DEFAULT_VERSION, Parameter};
use crate::record::epoch_millis;
use crate::standalone::http::{ApiError, json_object_body, json_response, messages};
use crate::standalone::validate;

/// The controller's text for a `feed` annotation that is not an entity path.
const FEED_NOT_VALID: &str = "Feed name is not valid";
/// The annotation naming a trigger's feed action (`Parameters.Feed`).
const FEED_ANNOTATION: &str = "feed";

/// Routes `/api/v1/namespaces/{ns}/triggers/{rest}` (`rest` = what follows `triggers`).
pub(super) async fn route(routed: &Routed<'_>, ns: &str, rest: &[&str]) -> Reply {
    let (state, call) = (routed.state, routed.call);
    match entity_route(routed, ns, rest)? {
        EntityRoute::List(ns) => listing::list::<TriggerDocument>(state, call, &ns).await,
        EntityRoute::Get(trigger) => {
            let trigger = read_trigger(state, &trigger.doc_id).await?;
            Ok(json_response(StatusCode::OK, &trigger.to_json()))
        }
        EntityRoute::Put(trigger) => put(state, call, &trigger.ns, &trigger.name).await,
        EntityRoute::Delete(trigger) => delete(state, &trigger.doc_id).await,
        EntityRoute::Post(trigger) => {
            fire::fire(state, call, routed.user, &trigger.doc_id, routed.tid).await
        }
    }
}

/// The trigger `doc_id`: 404 when missing, 409 when the name is another collection's.
async fn read_trigger(state: &State, doc_id: &str) -> Result<TriggerDocument, ApiError> {
    existing(state, doc_id, TRIGGER_ENTITY_TYPE)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// Reads the fields a trigger or rule PUT shares with an action's (parameters, annotations,
/// version, publish), checked and sized as for an action (`LimitedWhiskEntityPut` first, 413), and
/// returns them with the whole body. `limits` is left to the caller: a trigger's are
/// `TriggerLimits` (any object), a rule has none.
pub(super) fn parse_entity_put(
    state: &State,
    call: &Call,
) -> Result<(ActionPut, Map<String, Value>), ApiError> {
    let Some(mut body) = json_object_body(&call.headers, &call.body)? else {
        return Err(ApiError::bad_request(messages::malformed_content(
            "Object expected",
        )));
    };
    let limits = body.remove("limits");
    let without_limits = Call {
        method: call.method.clone(),
        headers: call.headers.clone(),
        segments: Vec::new(),
        raw_query: String::new(),
        query: Vec::new(),
        body: serde_json::to_vec(&body)
            .map_err(|_| ApiError::internal())?
            .into(),
    };
    let put = parse_action_put(&state.kinds, &state.limits, &without_limits)?;
    if let Some(limits) = limits {
        body.insert("limits".into(), limits);
    }
    Ok((put, body))
}

async fn put(state: &State, call: &Call, ns: &str, name: &str) -> Reply {
    let overwrite = call.flag("overwrite")?;
    let (put, body) = parse_entity_put(state, call)?;
    // `TriggerLimits` has no fields: any object reads, anything else does not.
    if let Some(limits) = body.get("limits")
        && !limits.is_null()
        && !limits.is_object()
    {
        return Err(ApiError::bad_request(messages::malformed_content(
            "Object expected",
        )));
    }
    let doc_id = format!("{ns}/{name}");
    let old = existing::<TriggerDocument>(state, &doc_id, TRIGGER_ENTITY_TYPE).await?;
    let annotations = put.annotations.map(into_parameters);
    let trigger = match replaced(old, overwrite)? {
        // An update keeps the rules; only a new trigger's feed annotation is checked.
        Some(old) => TriggerDocument {
            parameters: put.parameters.unwrap_or(old.parameters),
            version: put.version.unwrap_or_else(|| up_patch(&old.version)),
            publish: put.publish.unwrap_or(old.publish),
            annotations: annotations.unwrap_or(old.annotations),
            updated: epoch_millis(SystemTime::now()),
            ..old
        },
        None => {
            let annotations = annotations.unwrap_or_default();
            check_feed(&annotations)?;
            TriggerDocument {
                rev: None,
                entity_type: TRIGGER_ENTITY_TYPE.into(),
                namespace: ns.to_string(),
                name: name.to_string(),
                parameters: put.parameters.unwrap_or_default(),
                version: put.version.unwrap_or_else(|| DEFAULT_VERSION.to_string()),
                publish: put.publish.unwrap_or(false),
                annotations,
                rules: None,
                updated: epoch_millis(SystemTime::now()),
            }
        }
    };
    let stored = put_trigger(state, &trigger).await?;
    Ok(json_response(StatusCode::OK, &stored.to_json()))
}

/// `validateTriggerFeed`: a `feed` annotation must be an entity path (`ns/pkg/name`, `ns/name` or
/// `name`).
fn check_feed(annotations: &[Parameter]) -> Result<(), ApiError> {
    let Some(feed) = annotations.iter().find(|a| a.key == FEED_ANNOTATION) else {
        return Ok(());
    };
    let valid = feed.value.as_str().is_some_and(|path| {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        !parts.is_empty() && parts.iter().all(|p| validate::is_entity_name(p))
    });
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(FEED_NOT_VALID))
    }
}

async fn delete(state: &State, doc_id: &str) -> Reply {
    let trigger = read_trigger(state, doc_id).await?;
    delete_document(state, doc_id, trigger.rev.as_deref()).await?;
    Ok(json_response(StatusCode::OK, &trigger.to_json()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn test_feed_annotations_must_be_entity_paths() {
        let feed = |value: Value| vec![Parameter::new(FEED_ANNOTATION, value)];
        assert!(check_feed(&[]).is_ok());
        assert!(check_feed(&feed(json!("/whisk.system/alarms/alarm"))).is_ok());
        assert!(check_feed(&feed(json!("alarm"))).is_ok());
        assert_eq!(
            check_feed(&feed(json!("a%b"))).unwrap_err().message,
            FEED_NOT_VALID
        );
        assert!(check_feed(&feed(json!(1))).is_err());
    }
}
