//! 1,000 concurrent blocking invokes of the wasm `echo` action over HTTP all succeed with their own
//! result. Bounded in count and time; no performance assertion (the bench measures speed).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use executor::pool::{PoolConfig, PoolFactory};
use executor::standalone::auth::GUEST_KEY;
use executor::standalone::{Standalone, StandaloneConfig};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::{Value, json};

/// Invokes in flight at once.
const CONCURRENT: usize = 1000;
/// Bound of the whole load.
const LOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the client keeps an idle connection: well below the standalone server's 30 s
/// keep-alive (header read) timeout.
const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_thousand_concurrent_blocking_invokes_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StandaloneConfig::new(dir.path());
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.pool = PoolConfig {
        user_memory_mb: 2048,
        ..PoolConfig::default()
    };
    let wasm = factory::wasm::WasmFactory::new(factory::wasm::WasmConfig::default())
        .expect("wasmtime starts");
    let node = Standalone::start(config, vec![PoolFactory::in_process(Arc::new(wasm))])
        .await
        .expect("node starts");
    let base = format!("http://{}", node.local_addr());
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(GUEST_KEY)
    );
    // Past 512 connections the server leaves new ones in its backlog until a served one closes. A
    // client that kept its idle connections open would hold those slots until the server's 30 s
    // keep-alive timeout, and could reuse one just as the server closes it (a client `SendRequest`
    // error, seen once on a loaded machine). So the client closes idle connections itself, well
    // before the server would, as any HTTP client should.
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(CLIENT_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .build_http::<Full<Bytes>>();

    let echo =
        std::fs::read(ow_action::artifacts::wasm_module("echo").expect("echo builds")).unwrap();
    let body = json!({"exec": {"kind": "wasm:wasip1", "code": base64::engine::general_purpose::STANDARD.encode(echo)}, "limits": {"memory": 128}});
    let put = Request::builder()
        .method(Method::PUT)
        .uri(format!("{base}/api/v1/namespaces/_/actions/echo"))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())))
        .unwrap();
    assert_eq!(client.request(put).await.unwrap().status(), StatusCode::OK);

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONCURRENT {
        let client = client.clone();
        let uri = format!("{base}/api/v1/namespaces/_/actions/echo?blocking=true&result=true");
        let auth = auth.clone();
        tasks.spawn(async move {
            let request = Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header("authorization", auth)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(json!({"i": i}).to_string())))
                .unwrap();
            let response = client
                .request(request)
                .await
                .map_err(|e| format!("request {i}: {e}"))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body {i}: {e}"))?
                .to_bytes();
            let value: Value =
                serde_json::from_slice(&bytes).map_err(|e| format!("json {i}: {e}"))?;
            if status != StatusCode::OK || value != json!({"i": i}) {
                return Err(format!("invoke {i}: {status} {value}"));
            }
            Ok::<_, String>(())
        });
    }
    let outcome = tokio::time::timeout(LOAD_TIMEOUT, async {
        let mut failures = Vec::new();
        let mut done = 0;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(())) => done += 1,
                Ok(Err(error)) => failures.push(error),
                Err(error) => failures.push(error.to_string()),
            }
        }
        (done, failures)
    })
    .await;
    let (done, failures) = outcome.expect("the load finishes in time");
    assert!(
        failures.is_empty(),
        "{} failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(done, CONCURRENT);
    node.shutdown(Duration::from_secs(30)).await;
}
