//! The routes that describe the server and the caller: `GET /ping`, `GET /api/v1` (the API info)
//! and `GET /api/v1/namespaces` (the caller's namespaces).

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::request::{Reply, only};
use crate::message::Identity;
use crate::standalone::http::{json_response, text_response};

/// `GET /ping`: `pong`.
pub(super) fn ping(method: &Method) -> Reply {
    only(method, &["GET"])?;
    Ok(text_response(StatusCode::OK, "pong"))
}

/// `GET /api/v1`.
pub(super) fn api_info(method: &Method) -> Reply {
    only(method, &["GET"])?;
    Ok(json_response(StatusCode::OK, &api_info_body()))
}

/// `GET /api/v1/namespaces`: the one namespace of the caller's key.
pub(super) fn namespaces(method: &Method, user: &Identity) -> Reply {
    only(method, &["GET"])?;
    Ok(json_response(StatusCode::OK, &json!([user.namespace.name])))
}

/// The body of `GET /api/v1`.
fn api_info_body() -> Value {
    json!({
        "description": "OpenWhisk API",
        "api_version": "1.0.0",
        "api_version_path": "v1",
        "build": env!("CARGO_PKG_VERSION"),
        "buildno": concat!("wasm-invoker-", env!("CARGO_PKG_VERSION")),
        "swagger_paths": {"ui": "/docs", "api-docs": "/api-docs"}
    })
}
