//! The REST API subset the standalone server answers, with the controller's paths, status codes
//! and bodies. [`handle`] answers one request (tests call it without a socket) and routes it by
//! resource:
//!
//! - `/ping`, `/api/v1`, `/api/v1/namespaces` in [`info`];
//! - `.../actions[/{name}]` (list, get, put, delete) in [`actions`], the PUT body in
//!   [`action_put`], invokes (`POST`) in [`invoke`];
//! - `.../activations[/{id}[/logs|/result]]` in [`activations`];
//! - `.../packages[/{name}]` (list, get, put, delete, bindings) in [`packages`], actions in packages
//!   (`.../actions/{pkg}/{name}`) in [`package_actions`];
//! - names of actions resolved through their package or binding (`/ns/[pkg/]name`) in
//!   [`resolve`]; sequences (`exec.kind: sequence`) checked and run in [`sequences`];
//! - `.../triggers[/{name}]` (list, get, put, delete, fire) in [`triggers`];
//! - `.../rules[/{name}]` (list, get, put, delete, enable and disable) in [`rules`];
//! - `/api/v1/web/...` in [`web_actions`].
//!
//! What the routes share: [`State`], the listing of packages, triggers and rules ([`listing`]), the accepted kinds ([`KindSet`]), the request as read and its
//! checks ([`request`]) and the CORS headers ([`cors`]); error bodies and replies are in
//! [`super::http`], OpenWhisk's ranges and texts in [`super::validate`].

mod action_put;
mod actions;
mod activations;
mod cors;
mod info;
mod invoke;
mod kinds;
pub(super) mod listing;
mod package_actions;
mod packages;
mod request;
mod resolve;
mod rules;
mod sequences;
mod triggers;
mod web_actions;

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Body;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response};

pub use invoke::MAX_BLOCKING_WAIT;
pub use kinds::KindSet;

use self::cors::{REST_CORS_METHODS, cors, empty_ok};
use self::request::{Call, Reply, Routed, split_path};
use super::auth::Subjects;
use super::backend::Backend;
use super::http::{
    ApiError, MAX_REQUEST_BYTES, REQUEST_ID_HEADER, ResponseBody, content_length, read_body,
    transaction_id,
};
use crate::limits::LimitRanges;

/// Everything a request needs: who may call, which kinds and limits are accepted, and the backend.
#[derive(Clone)]
pub struct State {
    /// The accepted API keys.
    pub subjects: Subjects,
    /// The accepted exec kinds.
    pub kinds: KindSet,
    /// The system ranges a PUT's limits must fall in (the loader checks invokes against the same).
    pub limits: LimitRanges,
    /// Store and processor.
    pub backend: Arc<dyn Backend>,
    /// How long blocking invokes wait before answering 202.
    pub max_blocking_wait: Duration,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

/// Answers one request. Never fails: every error is OpenWhisk's error response. Tests call this
/// directly, without a socket.
pub async fn handle<B>(state: Arc<State>, request: Request<B>) -> Response<ResponseBody>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tid = transaction_id(request.headers());
    let path = request.uri().path();
    let rest_api =
        (path == "/api/v1" || path.starts_with("/api/v1/")) && !path.starts_with("/api/v1/web/");
    let span = tracing::debug_span!(
        "request",
        tid = %tid,
        method = %request.method(),
        path = %request.uri().path()
    );
    let routed = tracing::Instrument::instrument(route(&state, request, &tid), span).await;
    let mut response = match routed {
        Ok(response) => response,
        Err(error) => error.into_response(&tid),
    };
    if let Ok(value) = HeaderValue::from_str(&tid) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    if rest_api {
        cors(&mut response, REST_CORS_METHODS, None);
    }
    response
}

async fn route<B>(state: &State, request: Request<B>, tid: &str) -> Reply
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    let segments = split_path(parts.uri.path())?;
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let query: Vec<(String, String)> = form_urlencoded::parse(raw_query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let is_web = segments.get(2).is_some_and(|s| s == "web");
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    match seg.as_slice() {
        ["ping"] => return info::ping(&parts.method),
        ["api", "v1"] => return info::api_info(&parts.method),
        ["api", "v1", "namespaces", ..] if parts.method == Method::OPTIONS => return Ok(empty_ok()),
        ["api", "v1", "namespaces", ..] | ["api", "v1", "web", ..] => {}
        _ => {
            return Err(ApiError::route_not_found());
        }
    }
    // Authenticate before reading the body, so an anonymous caller cannot make us buffer one.
    let user = if is_web {
        None
    } else {
        Some(state.subjects.authenticate(&parts.headers)?.clone())
    };
    let declared = content_length(&parts.headers);
    let body = read_body(body, declared, MAX_REQUEST_BYTES).await?;
    let call = Call {
        method: parts.method,
        headers: parts.headers,
        segments,
        raw_query,
        query,
        body,
    };
    let Some(user) = user else {
        return web_actions::route(state, &call, tid).await;
    };
    let seg: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    let routed = Routed {
        state,
        call: &call,
        user: &user,
        tid,
    };
    match &seg[3..] {
        [] => info::namespaces(&call.method, &user),
        [ns, "actions", package, name] => package_actions::route(&routed, ns, package, name).await,
        [ns, "actions", rest @ ..] => actions::route(&routed, ns, rest).await,
        [ns, "activations", rest @ ..] => activations::route(&routed, ns, rest).await,
        [ns, "packages", rest @ ..] => packages::route(&routed, ns, rest).await,
        [ns, "triggers", rest @ ..] => triggers::route(&routed, ns, rest).await,
        [ns, "rules", rest @ ..] => rules::route(&routed, ns, rest).await,
        _ => Err(ApiError::route_not_found()),
    }
}
