//! The standalone server with both factories: Docker kinds from the runtimes manifest run in real
//! containers (the test runtime image `wasm-invoker/action-proxy:test`, built by
//! scripts/build-test-image) next to wasm actions, through the same REST API.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use executor::pool::{PoolConfig, PoolFactory};
use executor::standalone::auth::GUEST_KEY;
use executor::standalone::{KindSet, Standalone, StandaloneConfig};
use factory::Factory as _;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// Bound of one request (a cold Docker start included).
const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_docker_and_wasm_kinds_side_by_side() {
    let manifest_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../factory/tests/docker/runtimes.json");
    let manifest = factory::docker::Manifest::from_file(&manifest_path).expect("the test manifest");
    let kinds = KindSet::new(
        manifest
            .runtimes()
            .map(|r| (r.family.clone(), r.kind.clone(), r.default)),
    );
    let docker_config = factory::docker::DockerConfig {
        name_prefix: "wsksatest".into(),
        ..factory::docker::DockerConfig::default()
    };
    let docker = factory::docker::DockerFactory::connect(docker_config, manifest)
        .await
        .expect("a running Docker daemon (scripts/test starts one)");
    let wasm = factory::wasm::WasmFactory::new(factory::wasm::WasmConfig::default())
        .expect("wasmtime starts");

    let dir = tempfile::tempdir().unwrap();
    let mut config = StandaloneConfig::new(dir.path());
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.kinds = kinds;
    config.pool = PoolConfig {
        user_memory_mb: 1024,
        ..PoolConfig::default()
    };
    let node = Standalone::start(
        config,
        vec![
            PoolFactory::in_process(Arc::new(wasm)),
            PoolFactory::containers(docker.clone()),
        ],
    )
    .await
    .expect("node starts");
    let base = format!("http://{}", node.local_addr());
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(GUEST_KEY)
    );
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let call = |method: Method, path: String, body: Value| {
        let request = Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let client = client.clone();
        async move {
            let response = tokio::time::timeout(WAIT, client.request(request))
                .await
                .expect("in time")
                .expect("answered");
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };

    let native =
        std::fs::read(ow_action::artifacts::native_binary("echo").expect("native echo builds"))
            .unwrap();
    let native = base64::engine::general_purpose::STANDARD.encode(native);
    let wasm_echo =
        std::fs::read(ow_action::artifacts::wasm_module("echo").expect("wasm echo builds"))
            .unwrap();
    let wasm_echo = base64::engine::general_purpose::STANDARD.encode(wasm_echo);
    let actions = [
        (
            "docker-echo",
            json!({"kind": "native:default", "code": native}),
        ),
        (
            "wasm-echo",
            json!({"kind": "wasm:wasip1", "code": wasm_echo}),
        ),
    ];
    for (name, exec) in &actions {
        let (status, body) = call(
            Method::PUT,
            format!("/api/v1/namespaces/_/actions/{name}"),
            json!({"exec": exec}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, created) = call(
        Method::GET,
        "/api/v1/namespaces/_/actions/docker-echo?code=false".into(),
        Value::Null,
    )
    .await;
    assert_eq!(
        created["exec"]["kind"], "native:test",
        "native:default resolves through the manifest"
    );

    for (name, _) in &actions {
        for i in 0..3 {
            let (status, body) = call(
                Method::POST,
                format!("/api/v1/namespaces/_/actions/{name}?blocking=true"),
                json!({"i": i, "who": name}),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{name}: {body}");
            assert_eq!(body["response"]["result"], json!({"i": i, "who": name}));
        }
    }
    let (status, body) = call(
        Method::PUT,
        "/api/v1/namespaces/_/actions/x".into(),
        json!({"exec": {"kind": "nodejs:20", "code": "x"}}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "kinds outside the manifest are refused: {body}"
    );

    node.shutdown(Duration::from_secs(30)).await;
    docker.cleanup().await.expect("containers removed");
}
