//! A standalone node over real HTTP for tests: the real wasm factory, pool, processor and local
//! store under a temporary directory, a hyper client, and OpenWhisk's error-body check.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use executor::pool::{PoolConfig, PoolFactory};
use executor::standalone::auth::{GUEST_KEY, Subjects};
use executor::standalone::{Standalone, StandaloneConfig};
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Bound of any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(60);

/// A running node and a client for it.
pub struct Node {
    node: Option<Standalone>,
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A response, its body read (as JSON when it is JSON, else `Null`).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

/// The real wasm factory, as the pool of a test node gets it.
pub fn wasm_factory() -> PoolFactory {
    let wasm = factory::wasm::WasmFactory::new(factory::wasm::WasmConfig::default())
        .expect("wasmtime starts");
    PoolFactory::in_process(Arc::new(wasm))
}

impl Node {
    /// Starts a node storing under `dir` with the default subjects (the guest key).
    pub async fn start(dir: &std::path::Path) -> Node {
        Self::start_with(dir, StandaloneConfig::new(dir).subjects).await
    }

    /// Starts a node storing under `dir` that accepts `subjects`.
    pub async fn start_with(dir: &std::path::Path, subjects: Subjects) -> Node {
        let mut config = StandaloneConfig::new(dir);
        config.addr = "127.0.0.1:0".parse().unwrap();
        config.subjects = subjects;
        config.pool = PoolConfig {
            user_memory_mb: 1024,
            ..PoolConfig::default()
        };
        let node = Standalone::start(config, vec![wasm_factory()])
            .await
            .expect("node starts");
        let base = format!("http://{}", node.local_addr());
        let client = Client::builder(TokioExecutor::new()).build_http();
        Node {
            node: Some(node),
            base,
            client,
        }
    }

    /// Shuts the node down.
    pub async fn stop(mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown(Duration::from_secs(10)).await;
        }
    }

    /// Sends one request: `auth` as basic credentials when given, `headers`, and `body` as is.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        if let Some(key) = auth {
            let encoded = base64::engine::general_purpose::STANDARD.encode(key);
            request = request.header(header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        let response = tokio::time::timeout(WAIT, self.client.request(request))
            .await
            .expect("in time")
            .expect("answered");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// Sends `body` (JSON when given) as the holder of `key`.
    pub async fn call_as(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        match body {
            Some(body) => {
                self.send(
                    method,
                    path,
                    Some(key),
                    &[("content-type", "application/json")],
                    serde_json::to_vec(&body).unwrap(),
                )
                .await
            }
            None => self.send(method, path, Some(key), &[], Vec::new()).await,
        }
    }

    /// Sends `body` (JSON when given) as the guest.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(GUEST_KEY, method, path, body).await
    }
}

/// The base64 of an example action's wasm module.
pub fn wasm_base64(name: &str) -> String {
    let path = ow_action::artifacts::wasm_module(name).expect("example action builds");
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
}

/// Asserts OpenWhisk's error response: the status, `{"error": message, "code": <transaction id>}`
/// and the transaction id in `x-request-id`.
pub fn assert_error(reply: &Reply, status: StatusCode, message: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.body["error"], message, "{}", reply.text);
    let code = reply.body["code"]
        .as_str()
        .expect("error bodies carry the transaction id");
    assert_eq!(reply.headers["x-request-id"], code);
}
