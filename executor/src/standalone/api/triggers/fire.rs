//! Firing a trigger, `POST /api/v1/namespaces/{ns}/triggers/{name}`, as `Triggers.activate` does:
//! with no active rule the answer is 204 and nothing is recorded; otherwise every active rule's
//! action is invoked (non-blocking) with the trigger's parameters under the request's headers
//! (`__ow_headers`) under the payload, the trigger's own activation record is written with the
//! payload as its result and one log line per rule saying what became of it, and the answer is 202
//! with the trigger's activation id.
//!
//! The controller posts each invoke to its own REST API as the caller; here the invoke goes
//! through the same action routes in-process (so actions in packages, bindings and sequences behave
//! exactly as a client's invoke would), without a connection to ourselves. The invokes are
//! non-blocking, so the 202 waits only for them to be accepted, not for the actions to run; as in
//! the controller, the actions' records carry no `cause`.

use std::time::SystemTime;

use bytes::Bytes;
use factory::Status;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::document::{RuleStatus, TRIGGER_ENTITY_TYPE, TriggerDocument, existing};
use super::fqn::Fqn;
use crate::message::{ActivationId, Identity};
use crate::record::{ActivationResponse, Annotations, WhiskActivation, epoch_millis};
use crate::standalone::api::request::{Call, Reply, Routed};
use crate::standalone::api::{State, actions, package_actions};
use crate::standalone::http::{
    ACTIVATION_ID_HEADER, ApiError, content_length, json_object_body, json_response, messages,
};
use crate::standalone::validate;

/// The parameter carrying the fire request's headers (`WebApiDirectives.headers`).
const HEADERS_PARAMETER: &str = "__ow_headers";
/// The header Pekko adds to every request and the controller leaves out of `__ow_headers`.
const TIMEOUT_ACCESS_HEADER: &str = "timeout-access";

/// `Messages.triggerWithInactiveRule`.
fn inactive_rule(rule: &str, action: &str) -> String {
    format!("Rule '{rule}' is inactive, action '{action}' was not activated.")
}

/// What became of one rule when its trigger fired (`RuleActivationResult`), a log line of the
/// trigger's record.
#[derive(Debug, Clone, PartialEq)]
struct RuleOutcome {
    status: Status,
    rule: String,
    action: String,
    /// The action's activation id, or why it was not invoked.
    response: Result<String, String>,
}

impl RuleOutcome {
    fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("statusCode".into(), json!(self.status.code()));
        map.insert("success".into(), json!(self.status == Status::Success));
        match &self.response {
            Ok(id) => map.insert("activationId".into(), json!(id)),
            Err(error) => map.insert("error".into(), json!(error)),
        };
        map.insert("rule".into(), json!(self.rule));
        map.insert("action".into(), json!(self.action));
        Value::Object(map)
    }
}

/// Fires the trigger `doc_id`.
pub(super) async fn fire(
    state: &State,
    call: &Call,
    user: &Identity,
    doc_id: &str,
    tid: &str,
) -> Reply {
    validate::check_payload_size(content_length(&call.headers).unwrap_or(call.body.len() as u64))?;
    let payload = json_object_body(&call.headers, &call.body)?;
    let trigger: TriggerDocument = existing(state, doc_id, TRIGGER_ENTITY_TYPE)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let rules = trigger.rules.clone().unwrap_or_default();
    if !rules.values().any(|rule| rule.status == RuleStatus::Active) {
        tracing::debug!(%doc_id, "trigger without an active rule fired: no record");
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        return Ok(response);
    }
    let activation_id = ActivationId::generate();
    let start = epoch_millis(SystemTime::now());
    let args = arguments(&trigger, &call.headers, payload.as_ref());
    let mut outcomes = Vec::with_capacity(rules.len());
    for (rule, reduced) in &rules {
        let action = reduced.action.doc_id();
        let response = match reduced.status {
            RuleStatus::Inactive => Err((Status::ApplicationError, inactive_rule(rule, &action))),
            RuleStatus::Active => invoke(state, user, &reduced.action, &args, tid).await,
        };
        let (status, response) = match response {
            Ok(id) => (Status::Success, Ok(id)),
            Err((status, error)) => (status, Err(error)),
        };
        outcomes.push(RuleOutcome {
            status,
            rule: rule.clone(),
            action,
            response,
        });
    }
    let record = WhiskActivation {
        // Every activation lands in the caller's namespace, whatever the trigger's.
        namespace: user.namespace.name.clone(),
        name: trigger.name.clone(),
        subject: user.subject.clone(),
        activation_id: activation_id.clone(),
        start,
        // `Instant.EPOCH`: a trigger's record has no end.
        end: 0,
        cause: None,
        response: ActivationResponse {
            status: Status::Success,
            result: Some(Value::Object(payload.unwrap_or_default())),
            size: None,
        },
        logs: outcomes.iter().map(|o| o.to_json().to_string()).collect(),
        version: trigger.version.clone(),
        publish: false,
        annotations: Annotations::new(),
        duration: None,
    };
    // As the controller's `storeAfterCheck` after its answer: a failure is logged, not answered.
    if let Err(error) = state.backend.store_activation(&record).await {
        tracing::error!(activation_id = %activation_id, %error, "trigger record not stored");
    }
    let mut response = json_response(
        StatusCode::ACCEPTED,
        &json!({"activationId": activation_id.as_str()}),
    );
    if let Ok(value) = HeaderValue::from_str(activation_id.as_str()) {
        response.headers_mut().insert(ACTIVATION_ID_HEADER, value);
    }
    Ok(response)
}

/// The arguments of the rules' actions: the trigger's parameters, then `__ow_headers` (the
/// request's headers, names lower case, the entity's own headers left out as Pekko keeps them
/// apart), then the payload's fields, each over the ones before.
fn arguments(
    trigger: &TriggerDocument,
    headers: &HeaderMap,
    payload: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let mut args: Map<String, Value> = trigger
        .parameters
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    let mut shown = Map::new();
    for (name, value) in headers {
        if name == header::CONTENT_TYPE
            || name == header::CONTENT_LENGTH
            || name.as_str() == TIMEOUT_ACCESS_HEADER
        {
            continue;
        }
        shown.insert(
            name.as_str().to_string(),
            Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    args.insert(HEADERS_PARAMETER.into(), Value::Object(shown));
    if let Some(payload) = payload {
        args.extend(payload.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    args
}

/// Invokes `action` non-blocking with `args` as `user`, through the action routes a client's
/// `POST .../actions/[{pkg}/]{name}` takes. `Ok` is the activation id; `Err` the status the
/// trigger's record gives the failure (whisk error for a 5xx, application error otherwise) and the
/// error text the invoke answered.
async fn invoke(
    state: &State,
    user: &Identity,
    action: &Fqn,
    args: &Map<String, Value>,
    tid: &str,
) -> Result<String, (Status, String)> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::to_vec(args).map_err(|_| {
        (
            Status::WhiskError,
            messages::INTERNAL_SERVER_ERROR.to_string(),
        )
    })?;
    let ns = action.namespace();
    let mut segments = vec![
        "api".to_string(),
        "v1".into(),
        "namespaces".into(),
        ns.into(),
        "actions".into(),
    ];
    segments.extend(action.package().map(str::to_string));
    segments.push(action.name.clone());
    let call = Call {
        method: Method::POST,
        headers,
        segments,
        raw_query: String::new(),
        query: Vec::new(),
        body: Bytes::from(body),
    };
    let invoke = Routed {
        state,
        call: &call,
        user,
        tid,
    };
    let routed = match action.package() {
        Some(package) => package_actions::route(&invoke, ns, package, &action.name).await,
        None => actions::route(&invoke, ns, &[&action.name]).await,
    };
    let failure = |status: StatusCode, error: String| {
        let kind = if status.is_server_error() {
            Status::WhiskError
        } else {
            Status::ApplicationError
        };
        tracing::debug!(action = %action.doc_id(), %status, %error, "trigger-fired action not invoked");
        (kind, error)
    };
    let response = routed.map_err(|error| failure(error.status, error.message))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status == StatusCode::OK || status == StatusCode::ACCEPTED {
        if let Some(id) = value.get("activationId").and_then(Value::as_str) {
            return Ok(id.to_string());
        }
        return Err(failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            messages::INTERNAL_SERVER_ERROR.to_string(),
        ));
    }
    let error = value.get("error").and_then(Value::as_str).map_or_else(
        || messages::INTERNAL_SERVER_ERROR.to_string(),
        str::to_string,
    );
    Err(failure(status, error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Parameter;

    #[test]
    fn test_arguments_are_parameters_under_headers_under_payload() {
        let trigger = TriggerDocument {
            rev: None,
            entity_type: TRIGGER_ENTITY_TYPE.into(),
            namespace: "guest".into(),
            name: "t".into(),
            parameters: vec![Parameter::new("a", json!(1)), Parameter::new("b", json!(2))],
            version: "0.0.1".into(),
            publish: false,
            annotations: Vec::new(),
            rules: None,
            updated: 0,
        };
        let mut headers = HeaderMap::new();
        headers.insert("X-Foo", HeaderValue::from_static("bar"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let payload = json!({"b": 3, "c": 4});
        let args = arguments(&trigger, &headers, payload.as_object());
        assert_eq!(
            Value::Object(args),
            json!({"a": 1, "b": 3, "c": 4, "__ow_headers": {"x-foo": "bar"}})
        );
    }

    #[test]
    fn test_rule_outcomes_are_written_as_the_controller_writes_them() {
        let ok = RuleOutcome {
            status: Status::Success,
            rule: "guest/r".into(),
            action: "guest/a".into(),
            response: Ok("abc".into()),
        };
        assert_eq!(
            ok.to_json(),
            json!({"statusCode": 0, "success": true, "activationId": "abc", "rule": "guest/r", "action": "guest/a"})
        );
        let off = RuleOutcome {
            status: Status::ApplicationError,
            rule: "guest/r".into(),
            action: "guest/a".into(),
            response: Err(inactive_rule("guest/r", "guest/a")),
        };
        assert_eq!(
            off.to_json()["error"],
            json!("Rule 'guest/r' is inactive, action 'guest/a' was not activated.")
        );
        assert_eq!(off.to_json()["success"], json!(false));
    }
}
