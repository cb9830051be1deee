//! OpenWhisk's CORS headers (`CorsSettings`): on every REST API response, and on web action
//! responses and preflights unless the action answers `OPTIONS` itself.

use bytes::Bytes;
use hyper::Response;
use hyper::header::{self, HeaderValue};

use crate::standalone::http::ResponseBody;

/// `Access-Control-Allow-Methods` of the REST API (`CorsSettings.RestAPIs`).
pub(super) const REST_CORS_METHODS: &str = "GET, DELETE, POST, PUT, HEAD";
/// `Access-Control-Allow-Methods` of web actions (`CorsSettings.WebActions`).
pub(super) const WEB_CORS_METHODS: &str = "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH";
/// `Access-Control-Allow-Headers` unless a preflight asks for others (`CorsSettings.Defaults`).
const CORS_HEADERS: &str =
    "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent";

/// Adds OpenWhisk's CORS headers; `requested` echoes a preflight's `Access-Control-Request-Headers`.
pub(super) fn cors(
    response: &mut Response<ResponseBody>,
    methods: &'static str,
    requested: Option<&HeaderValue>,
) {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        requested
            .cloned()
            .unwrap_or(HeaderValue::from_static(CORS_HEADERS)),
    );
}

/// An empty 200 (answer to `OPTIONS`).
pub(super) fn empty_ok() -> Response<ResponseBody> {
    Response::new(ResponseBody::new(Bytes::new()))
}
