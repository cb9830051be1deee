//! The web action route, `/api/v1/web/{ns}/default/{name}[.ext][/path]`: anonymous or
//! authenticated callers, the `web-export`, `require-whisk-auth`, `web-custom-options` and
//! `raw-http` annotations, CORS, and the result projected into a response. The HTTP ↔ JSON
//! conversions themselves live in [`crate::standalone::web`].

use factory::Status;
use hyper::header::{self, HeaderValue};
use hyper::{Method, StatusCode};
use serde_json::Value;

use super::State;
use super::cors::{WEB_CORS_METHODS, cors, empty_ok};
use super::invoke::{Outcome, check_final, run};
use super::request::{Call, Reply, existing_action};
use super::resolve::ResolvedAction;
use crate::record::is_truthy;
use crate::standalone::http::{ACTIVATION_ID_HEADER, ApiError, content_length, messages};
use crate::standalone::validate;
use crate::standalone::web::{self, Extension, WebRequest};

/// Serves `/api/v1/web/{ns}/{package}/{name}[.ext][/rest]`: the owner's exported action, run
/// blocking on the request's arguments, its result projected into an HTTP response.
pub(super) async fn route(state: &State, call: &Call, tid: &str) -> Reply {
    let seg: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    // /api/v1/web/{ns}/{package}/{name}[/rest...]
    let [_, _, _, ns, package, name_ext, rest @ ..] = seg.as_slice() else {
        return Err(ApiError::route_not_found());
    };
    if !validate::is_entity_name(ns) || !validate::is_entity_name(package) {
        return Err(ApiError::route_not_found());
    }
    let (name, extension) = Extension::split(name_ext);
    if !validate::is_entity_name(name) {
        return Err(ApiError::route_not_found());
    }
    // A request with valid credentials is the caller's; invalid or none is anonymous.
    let caller = state.subjects.authenticate(&call.headers).ok().cloned();
    let owner = state
        .subjects
        .by_namespace(ns)
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    if *package != "default" {
        return Err(ApiError::not_found());
    }
    let action = existing_action(state, ns, name, false).await?;
    let annotations = &action.document.annotations;
    if !annotations.get("web-export").is_some_and(is_truthy) {
        return Err(ApiError::not_found());
    }
    validate::check_payload_size(content_length(&call.headers).unwrap_or(call.body.len() as u64))?;
    if let Some(required) = annotations.get("require-whisk-auth") {
        let header = call
            .headers
            .get("x-require-whisk-auth")
            .and_then(|v| v.to_str().ok());
        let allowed = match required {
            Value::String(secret) => header == Some(secret.as_str()),
            Value::Number(secret) => header == Some(secret.to_string().as_str()),
            Value::Bool(true) => caller.is_some(),
            Value::Bool(false) => true,
            _ => false,
        };
        if !allowed {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                messages::AUTH_INVALID,
            ));
        }
    }
    // Unless the action answers OPTIONS itself, the server answers preflights and adds the CORS
    // headers (`web-custom-options`).
    let custom_options = annotations.get("web-custom-options").is_some_and(is_truthy);
    let preflight = call.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS);
    if !custom_options && call.method == Method::OPTIONS {
        let mut response = empty_ok();
        cors(&mut response, WEB_CORS_METHODS, preflight);
        return Ok(response);
    }
    let raw = annotations.get("raw-http").is_some_and(is_truthy);
    let path = if rest.is_empty() {
        String::new()
    } else {
        format!("/{}", rest.join("/"))
    };
    let request = WebRequest {
        method: &call.method,
        headers: &call.headers,
        path: &path,
        raw_query: &call.raw_query,
        query: &call.query,
        body: &call.body,
        user: caller.as_ref().map(|c| c.namespace.name.as_str()),
    };
    let args = web::arguments(&request, raw)?;
    check_final(&action.document, args.keys())?;
    // Through the same run as an invoke, so that a web-exported sequence runs its components.
    let action = ResolvedAction {
        document: action.document,
        binding: None,
    };
    let wait = Some(state.max_blocking_wait);
    let activation = match run(state, &owner, action, Some(args), wait, tid).await? {
        Outcome::Done(activation) => activation,
        Outcome::Running(id) => {
            let mut response =
                ApiError::new(StatusCode::ACCEPTED, "Response not yet ready.").into_response(tid);
            if let Ok(value) = HeaderValue::from_str(id.as_str()) {
                response.headers_mut().insert(ACTIVATION_ID_HEADER, value);
            }
            return Ok(response);
        }
    };
    let projected = match activation.response.status {
        Status::Success => activation.response.result.clone(),
        Status::ApplicationError => activation
            .response
            .result
            .as_ref()
            .and_then(|r| r.get("error"))
            .cloned(),
        _ => return Err(ApiError::bad_request(messages::ERROR_PROCESSING_REQUEST)),
    };
    let Some(projected) = projected else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            messages::PROPERTY_NOT_FOUND,
        ));
    };
    let mut response = web::respond(extension, projected)?;
    if let Ok(value) = HeaderValue::from_str(activation.activation_id.as_str()) {
        response.headers_mut().insert(ACTIVATION_ID_HEADER, value);
    }
    if !custom_options {
        cors(&mut response, WEB_CORS_METHODS, preflight);
    }
    Ok(response)
}
