//! HTTP plumbing of the standalone server: the connection bounds it is served within ([`serve`],
//! [`SERVE_LIMITS`]), transaction ids, OpenWhisk's error body
//! `{"error": "...", "code": "<transaction id>"}`, JSON replies and bounded body reading.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use rand::Rng;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::api::{State, handle};
use crate::serve::ServeLimits;

/// The bounds of the standalone server's connections (see [`crate::serve`]):
///
/// - 512 connections at once: every blocking invoke holds its connection for as long as its action
///   runs, so honest use is bounded by the pool's capacity rather than by request rate; 512 stays
///   under the common 1024-descriptor default with room for the store's files. Further connections
///   wait in the listen backlog;
/// - 30 s to send a request head, also the longest a keep-alive connection may sit idle (bounds the
///   sockets an anonymous client can hold without sending anything);
/// - no bound on a connection's age: a blocking invoke legitimately lasts its action's time limit.
pub const SERVE_LIMITS: ServeLimits = ServeLimits {
    max_connections: 512,
    header_read_timeout: Duration::from_secs(30),
    max_connection_age: None,
};

/// Serves the standalone API for `state` on `listener` within [`SERVE_LIMITS`] until `cancel`
/// fires, then lets open requests finish (see [`crate::serve::serve`]).
pub async fn serve(listener: TcpListener, state: Arc<State>, cancel: CancellationToken) {
    let handler = move |request| {
        let state = Arc::clone(&state);
        async move { handle(state, request).await }
    };
    crate::serve::serve(listener, SERVE_LIMITS, handler, cancel).await;
}

/// The body type of every response the server writes.
pub type ResponseBody = Full<Bytes>;

/// The header carrying the transaction id, in requests (from nginx or the client) and responses.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The header naming the activation a response belongs to (`CustomHeaders.ActivationIdHeader`).
pub const ACTIVATION_ID_HEADER: &str = "x-openwhisk-activation-id";
/// Transaction ids of system work start with this; a client may not claim one (`TransactionId.systemPrefix`).
const SYSTEM_TID_PREFIX: &str = "sid_";
/// Longest client-supplied request id kept; a longer one is replaced, so a client cannot make every
/// error body and log line carry kilobytes of its text.
const MAX_REQUEST_ID_LEN: usize = 128;
/// Length of a generated transaction id (`TransactionId.generateTid`: 32 alphanumerics).
const GENERATED_TID_LEN: usize = 32;

/// Largest request body read at all, Pekko's `parsing.max-content-length = 50m` in the controller.
/// Bounds the memory one request can hold before any field is looked at.
pub const MAX_REQUEST_BYTES: usize = 50 * 1024 * 1024;

/// A request that ends in an error response: status and OpenWhisk's message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The response status.
    pub status: StatusCode,
    /// The `error` text; `None` answers with the status's default text as OpenWhisk does.
    pub message: String,
    /// Extra headers (the basic-auth challenge on 401).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with a status and a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 with OpenWhisk's `resourceDoesNotExist`.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, messages::RESOURCE_DOES_NOT_EXIST)
    }

    /// 404 for a path no route matches, with Pekko's default text.
    pub fn route_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, messages::ROUTE_NOT_FOUND)
    }

    /// 500 with the status's default text (what the controller answers when a store fails).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            messages::INTERNAL_SERVER_ERROR,
        )
    }

    /// 413 for a field that is larger than allowed (`Messages.entityTooBig`).
    pub fn too_big(field: &str, is: u64, allowed: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{field} larger than allowed: {is} > {allowed} bytes."),
        )
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The response: `{"error": message, "code": transid}` as OpenWhisk's `ErrorResponse`.
    pub fn into_response(self, transid: &str) -> Response<ResponseBody> {
        let mut response = json_response(
            self.status,
            &json!({"error": self.message.trim(), "code": transid}),
        );
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

/// The texts OpenWhisk's controller answers with (`ErrorResponse.scala` `Messages`, Pekko's rejection
/// handler defaults), so that clients matching on them keep working.
pub mod messages {
    /// 404 for a missing entity.
    pub const RESOURCE_DOES_NOT_EXIST: &str = "The requested resource does not exist.";
    /// 404 for a path no route matches (Pekko's default).
    pub const ROUTE_NOT_FOUND: &str = "The requested resource could not be found.";
    /// 500.
    pub const INTERNAL_SERVER_ERROR: &str = "There was an internal server error.";
    /// 401 without credentials (Pekko's `CredentialsMissing`).
    pub const AUTH_MISSING: &str =
        "The resource requires authentication, which was not supplied with the request";
    /// 401 with wrong credentials (Pekko's `CredentialsRejected`).
    pub const AUTH_INVALID: &str = "The supplied authentication is invalid";
    /// 409 on PUT of an existing entity without `overwrite=true`.
    pub const RESOURCE_EXISTS: &str = "resource already exists";
    /// 409 when a concurrent update won.
    pub const CONFLICT: &str = "Concurrent modification to resource detected.";
    /// 409 when the name is taken by an entity of another collection (`conformanceMessage`).
    pub const CONFORMANCE: &str = "Resource by this name exists but is not in this collection.";
    /// 400 for an entity name outside OpenWhisk's pattern.
    pub const ENTITY_NAME_ILLEGAL: &str = "The name of the entity contains illegal characters.";
    /// 400 for a namespace outside OpenWhisk's pattern.
    pub const NAMESPACE_ILLEGAL: &str = "The namespace contains illegal characters.";
    /// 400 for an activation id that is not hex.
    pub const ACTIVATION_ID_ILLEGAL: &str = "The activation id is not valid.";
    /// 400 when the request would set reserved or final parameters.
    pub const PARAMETERS_NOT_ALLOWED: &str =
        "Request defines parameters that are not allowed (e.g., reserved properties).";
    /// 400 when `count` and `docs` are both asked for.
    pub const DOCS_NOT_ALLOWED_WITH_COUNT: &str =
        "The parameter 'docs' is not permitted with 'count'.";
    /// 404 from a web action whose result lacks the projected property.
    pub const PROPERTY_NOT_FOUND: &str = "Response does not include requested property.";
    /// 400 from a web action whose activation failed.
    pub const ERROR_PROCESSING_REQUEST: &str = "There was an error processing your request.";
    /// 400 from a `.http` web action whose content type header is unusable.
    pub const HTTP_CONTENT_TYPE_ERROR: &str =
        "Response type in header did not match generated content type.";
    /// 400 from a `.http` web action whose content type cannot be parsed.
    pub const HTTP_UNKNOWN_CONTENT_TYPE: &str = "Response did not specify a known content-type.";
    /// 415 for a body that is not JSON where JSON is required (Pekko's rejection text).
    pub const UNSUPPORTED_CONTENT_TYPE: &str =
        "The request's Content-Type is not supported. Expected:\napplication/json";
    /// 403 for another namespace's resources.
    pub fn not_authorized(resource: &str) -> String {
        format!("The supplied authentication is not authorized to access '{resource}'.")
    }
    /// 405 (Pekko's `MethodRejection` text).
    pub fn method_not_allowed(allowed: &[&str]) -> String {
        format!(
            "HTTP method not allowed, supported methods: {}",
            allowed.join(", ")
        )
    }
    /// 400 for a body that is not the JSON expected (Pekko's `MalformedRequestContentRejection`).
    pub fn malformed_content(reason: &str) -> String {
        format!("The request content was malformed:\n{reason}")
    }
    /// 400 for a bad query parameter (Pekko's `MalformedQueryParamRejection`).
    pub fn malformed_query(name: &str, reason: &str) -> String {
        format!("The query parameter '{name}' was malformed:\n{reason}")
    }
    /// 406 for a web action extension that is not supported.
    pub fn extension_not_supported() -> String {
        "Extension must be specified and one of [.http, .json, .html, .svg, .text].".to_string()
    }
    /// 400 from a web action whose result is not of the extension's media type.
    pub fn invalid_media(media: &str) -> String {
        format!("Response is not valid '{media}'.")
    }
    /// 413 for a body over the server's absolute cap (Pekko's `max-content-length` text).
    pub fn content_length_exceeded(length: u64, limit: usize) -> String {
        format!(
            "Request Content-Length of {length} bytes exceeds the configured limit of {limit} bytes"
        )
    }
}

/// A JSON response with OpenWhisk's compact printing.
pub fn json_response(status: StatusCode, value: &Value) -> Response<ResponseBody> {
    let text = serde_json::to_vec(value).expect("a serde_json::Value always serializes");
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A plain text response.
pub fn text_response(status: StatusCode, text: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(text.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    response
}

/// The transaction id of a request: the client's `X-Request-ID` when usable, else 32 random
/// alphanumerics, as `BasicHttpService.assignId` does.
pub fn transaction_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_LEN
                && !id.starts_with(SYSTEM_TID_PREFIX)
                && id.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_string)
        .unwrap_or_else(generate_tid)
}

/// 32 random alphanumerics.
pub fn generate_tid() -> String {
    rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(GENERATED_TID_LEN)
        .map(char::from)
        .collect()
}

/// Reads a whole request body, at most `limit` bytes; a longer body is a 413.
pub async fn read_body<B>(body: B, declared: Option<u64>, limit: usize) -> Result<Bytes, ApiError>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Some(length) = declared
        && length > limit as u64
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            messages::content_length_exceeded(length, limit),
        ));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => {
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    messages::content_length_exceeded(declared.unwrap_or(limit as u64 + 1), limit),
                ))
            } else {
                Err(ApiError::bad_request(messages::malformed_content(
                    &error.to_string(),
                )))
            }
        }
    }
}

/// The declared `Content-Length`, when the request has a readable one.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse().ok())
}

/// The media type of a request (`application/json` of `application/json; charset=utf-8`), lower case.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = essence(value);
    (!media.is_empty()).then_some(media)
}

/// The media type of a content type without its parameters (`application/json` of
/// `application/json; charset=utf-8`), lower case; empty when there is none.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a media type is JSON (`application/json` or `*/*+json`), as `isJsonFamily`.
pub fn is_json_family(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

/// Reads an optional JSON object body the way the controller's `emptyEntityToJsObject` does: empty
/// is `None`, anything else must be a JSON object sent as JSON (or without a content type).
pub fn json_object_body(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<serde_json::Map<String, Value>>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if let Some(media) = media_type(headers)
        && !is_json_family(&media)
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            messages::UNSUPPORTED_CONTENT_TYPE,
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(ApiError::bad_request(messages::malformed_content(
            "JSON object expected",
        ))),
        Err(error) => Err(ApiError::bad_request(messages::malformed_content(
            &error.to_string(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_error_body_is_openwhisks_shape() {
        let response = ApiError::not_found().into_response("tid42");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn test_transaction_id_takes_the_clients_unless_system_or_odd() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc123"));
        assert_eq!(transaction_id(&headers), "abc123");
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("sid_invoker"));
        let generated = transaction_id(&headers);
        assert_eq!(generated.len(), 32);
        assert!(generated.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn test_json_object_body_follows_the_controller() {
        let mut headers = HeaderMap::new();
        assert_eq!(json_object_body(&headers, b"").unwrap(), None);
        assert!(json_object_body(&headers, br#"{"a":1}"#).unwrap().is_some());
        assert_eq!(
            json_object_body(&headers, b"[1]").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(
            json_object_body(&headers, br#"{"a":1}"#)
                .unwrap_err()
                .status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
