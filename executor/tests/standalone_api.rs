//! The standalone server over real HTTP, with the real wasm factory, pool, processor and local store:
//! every route, and every error with OpenWhisk's status and text (obeyed/violated pairs for limits
//! and sizes).

#[path = "support/standalone.rs"]
mod standalone;

use std::io::Write as _;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use executor::pool::PoolConfig;
use executor::standalone::auth::GUEST_KEY;
use executor::standalone::{Standalone, StandaloneConfig};
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};
use standalone::{Node, Reply, WAIT, assert_error, wasm_base64, wasm_factory};

fn zipped(name: &str) -> Vec<u8> {
    let path = ow_action::artifacts::wasm_module(name).expect("example action builds");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(
        format!("{name}.wasm"),
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(&std::fs::read(path).unwrap()).unwrap();
    zip.finish().unwrap().into_inner()
}

async fn create(node: &Node, name: &str, body: Value) -> Reply {
    node.call(
        Method::PUT,
        &format!("/api/v1/namespaces/_/actions/{name}"),
        Some(body),
    )
    .await
}

async fn wait_for_activation(node: &Node, id: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let reply = node
            .call(
                Method::GET,
                &format!("/api/v1/namespaces/guest/activations/{id}"),
                None,
            )
            .await;
        if reply.status == StatusCode::OK {
            return reply.body;
        }
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
        assert!(
            Instant::now() < deadline,
            "activation {id} not stored in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_ping_info_and_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;

    let ping = node.send(Method::GET, "/ping", None, &[], Vec::new()).await;
    assert_eq!((ping.status, ping.text.as_str()), (StatusCode::OK, "pong"));
    let info = node
        .send(Method::GET, "/api/v1", None, &[], Vec::new())
        .await;
    assert_eq!(info.status, StatusCode::OK);
    assert_eq!(info.body["api_version_path"], "v1");
    assert_eq!(info.body["description"], "OpenWhisk API");

    let missing = node
        .send(
            Method::GET,
            "/api/v1/namespaces/_/actions",
            None,
            &[],
            Vec::new(),
        )
        .await;
    assert_error(
        &missing,
        StatusCode::UNAUTHORIZED,
        "The resource requires authentication, which was not supplied with the request",
    );
    assert_eq!(
        missing.headers[header::WWW_AUTHENTICATE],
        "Basic realm=\"OpenWhisk secure realm\""
    );
    let wrong_key = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:wrong";
    let wrong = node
        .send(
            Method::GET,
            "/api/v1/namespaces/_/actions",
            Some(wrong_key),
            &[],
            Vec::new(),
        )
        .await;
    assert_error(
        &wrong,
        StatusCode::UNAUTHORIZED,
        "The supplied authentication is invalid",
    );
    let right = node
        .call(Method::GET, "/api/v1/namespaces/_/actions", None)
        .await;
    assert_eq!(right.status, StatusCode::OK);
    assert_eq!(right.body, json!([]));
    assert_eq!(right.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let preflight = node
        .send(
            Method::OPTIONS,
            "/api/v1/namespaces/_/actions/x",
            None,
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(preflight.status, StatusCode::OK);
    assert_eq!(
        preflight.headers[header::ACCESS_CONTROL_ALLOW_METHODS],
        "GET, DELETE, POST, PUT, HEAD"
    );
    let namespaces = node.call(Method::GET, "/api/v1/namespaces", None).await;
    assert_eq!(namespaces.body, json!(["guest"]));

    let other = node
        .call(Method::GET, "/api/v1/namespaces/someone/actions/x", None)
        .await;
    assert_error(
        &other,
        StatusCode::FORBIDDEN,
        "The supplied authentication is not authorized to access 'someone/x'.",
    );
    let nowhere = node.call(Method::GET, "/api/v1/nowhere", None).await;
    assert_error(
        &nowhere,
        StatusCode::NOT_FOUND,
        "The requested resource could not be found.",
    );
    let patch = node
        .call(Method::PATCH, "/api/v1/namespaces/_/actions/x", None)
        .await;
    assert_error(
        &patch,
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP method not allowed, supported methods: GET, PUT, DELETE, POST",
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_action_lifecycle_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let code = wasm_base64("hello");
    let body = json!({"exec": {"kind": "wasm:wasip1", "code": code}, "parameters": [{"key": "name", "value": "Ada"}]});

    let created = create(&node, "hello", body.clone()).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.body["namespace"], "guest");
    assert_eq!(created.body["version"], "0.0.1");
    assert_eq!(created.body["exec"]["binary"], true);
    assert_eq!(
        created.body["limits"],
        json!({"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1})
    );
    assert_eq!(
        created.body["annotations"],
        json!([{"key": "provide-api-key", "value": false}, {"key": "exec", "value": "wasm:wasip1"}])
    );

    let again = create(&node, "hello", body.clone()).await;
    assert_error(&again, StatusCode::CONFLICT, "resource already exists");
    let overwritten = node
        .call(
            Method::PUT,
            "/api/v1/namespaces/_/actions/hello?overwrite=true",
            Some(json!({"limits": {"memory": 128}})),
        )
        .await;
    assert_eq!(overwritten.status, StatusCode::OK, "{}", overwritten.text);
    assert_eq!(overwritten.body["version"], "0.0.2");
    assert_eq!(overwritten.body["limits"]["memory"], 128);
    assert_eq!(
        overwritten.body["exec"]["code"], code,
        "an update without exec keeps the code"
    );

    let fetched = node
        .call(Method::GET, "/api/v1/namespaces/guest/actions/hello", None)
        .await;
    assert_eq!(fetched.body["exec"]["code"], code);
    assert_eq!(
        fetched.body["parameters"],
        json!([{"key": "name", "value": "Ada"}])
    );
    let without = node
        .call(
            Method::GET,
            "/api/v1/namespaces/guest/actions/hello?code=false",
            None,
        )
        .await;
    assert!(without.body["exec"].get("code").is_none());
    let list = node
        .call(Method::GET, "/api/v1/namespaces/_/actions?limit=5", None)
        .await;
    assert_eq!(list.body.as_array().map(Vec::len), Some(1));
    assert_eq!(list.body[0]["name"], "hello");
    assert_eq!(list.body[0]["exec"], json!({"binary": true}));
    let count = node
        .call(Method::GET, "/api/v1/namespaces/_/actions?count=true", None)
        .await;
    assert_eq!(count.body, json!({"actions": 1}));

    let result = node
        .call(
            Method::POST,
            "/api/v1/namespaces/_/actions/hello?blocking=true&result=true",
            None,
        )
        .await;
    assert_eq!(
        (result.status, result.body.clone()),
        (StatusCode::OK, json!({"greeting": "Hello, Ada!"}))
    );

    let deleted = node
        .call(Method::DELETE, "/api/v1/namespaces/_/actions/hello", None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["name"], "hello");
    let gone = node
        .call(Method::GET, "/api/v1/namespaces/_/actions/hello", None)
        .await;
    assert_error(
        &gone,
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    let gone = node
        .call(Method::DELETE, "/api/v1/namespaces/_/actions/hello", None)
        .await;
    assert_error(
        &gone,
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    let gone = node
        .call(
            Method::POST,
            "/api/v1/namespaces/_/actions/hello?blocking=true",
            None,
        )
        .await;
    assert_error(
        &gone,
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    let in_package = node
        .call(Method::GET, "/api/v1/namespaces/_/actions/pkg/hello", None)
        .await;
    assert_error(
        &in_package,
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );

    let no_exec = create(&node, "nothing", json!({"parameters": []})).await;
    assert_error(&no_exec, StatusCode::BAD_REQUEST, "exec undefined");
    let bad_kind = create(
        &node,
        "x",
        json!({"exec": {"kind": "cobol:85", "code": "x"}}),
    )
    .await;
    assert_eq!(bad_kind.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_kind.body["error"]
            .as_str()
            .unwrap()
            .starts_with("The request content was malformed:\nThe specified runtime 'cobol:85' is not supported by this platform."),
        "{}",
        bad_kind.text
    );
    let bad_name = create(&node, "bad%24name", body.clone()).await;
    assert_error(
        &bad_name,
        StatusCode::BAD_REQUEST,
        "The name of the entity contains illegal characters.",
    );
    let not_json = node
        .send(
            Method::PUT,
            "/api/v1/namespaces/_/actions/x",
            Some(GUEST_KEY),
            &[("content-type", "application/json")],
            b"{".to_vec(),
        )
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_limits_obeyed_and_violated() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let code = wasm_base64("echo");
    let cases = [
        (
            json!({"memory": 128}),
            json!({"memory": 127}),
            "memory 127 MB below allowed threshold of 128 MB",
        ),
        (
            json!({"memory": 512}),
            json!({"memory": 513}),
            "memory 513 MB exceeds allowed threshold of 512 MB",
        ),
        (
            json!({"timeout": 100}),
            json!({"timeout": 99}),
            "duration 99 milliseconds below allowed threshold of 100 milliseconds",
        ),
        (
            json!({"timeout": 300000}),
            json!({"timeout": 300001}),
            "duration 300001 milliseconds exceeds allowed threshold of 300000 milliseconds",
        ),
        (
            json!({"logs": 0}),
            json!({"logs": -1}),
            "log -1 MB below allowed threshold of 0 MB",
        ),
        (
            json!({"logs": 10}),
            json!({"logs": 11}),
            "log 11 MB exceeds allowed threshold of 10 MB",
        ),
        (
            json!({"concurrency": 1}),
            json!({"concurrency": 2}),
            "concurrency 2 exceeds allowed threshold of 1",
        ),
        (
            json!({"concurrency": 1}),
            json!({"concurrency": 0}),
            "concurrency 0 below allowed threshold of 1",
        ),
    ];
    for (index, (obeyed, violated, message)) in cases.into_iter().enumerate() {
        let name = format!("limits{index}");
        let bad = create(
            &node,
            &name,
            json!({"exec": {"kind": "wasm:wasip1", "code": code}, "limits": violated}),
        )
        .await;
        assert_error(&bad, StatusCode::BAD_REQUEST, message);
        let good = create(
            &node,
            &name,
            json!({"exec": {"kind": "wasm:wasip1", "code": code}, "limits": obeyed}),
        )
        .await;
        assert_eq!(good.status, StatusCode::OK, "{}", good.text);
        for (key, value) in obeyed.as_object().unwrap() {
            assert_eq!(&good.body["limits"][key], value);
        }
    }
    let list = node
        .call(
            Method::GET,
            "/api/v1/namespaces/_/actions?limit=3&skip=1",
            None,
        )
        .await;
    let list = list.body.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert!(
        list.windows(2)
            .all(|w| w[0]["updated"].as_u64() >= w[1]["updated"].as_u64()),
        "most recently updated first"
    );
    let count = node
        .call(Method::GET, "/api/v1/namespaces/_/actions?count=true", None)
        .await;
    assert_eq!(count.body, json!({"actions": 8}));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sizes_obeyed_and_violated() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let code = wasm_base64("echo");

    // Parameters: key bytes plus the compact JSON of each value, at most 1 MiB.
    let limit = 1024 * 1024;
    let at_limit = "v".repeat(limit - 1 - 2);
    let ok = create(&node, "params", json!({"exec": {"kind": "wasm:wasip1", "code": code}, "parameters": [{"key": "k", "value": at_limit}]})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let over = "v".repeat(limit - 2);
    let too_big = create(&node, "params2", json!({"exec": {"kind": "wasm:wasip1", "code": code}, "parameters": [{"key": "k", "value": over}]})).await;
    assert_error(
        &too_big,
        StatusCode::PAYLOAD_TOO_LARGE,
        "parameters larger than allowed: 1048577 > 1048576 bytes.",
    );
    let annotations = create(&node, "params3", json!({"exec": {"kind": "wasm:wasip1", "code": code}, "annotations": [{"key": "k", "value": "v".repeat(limit)}]})).await;
    assert_error(
        &annotations,
        StatusCode::PAYLOAD_TOO_LARGE,
        "annotations larger than allowed: 1048579 > 1048576 bytes.",
    );

    // Code: at most 48 MiB.
    let exec_limit = 48 * 1024 * 1024;
    let huge = "A".repeat(exec_limit + 4);
    let too_big = create(
        &node,
        "huge",
        json!({"exec": {"kind": "wasm:wasip1", "code": huge}}),
    )
    .await;
    assert_error(
        &too_big,
        StatusCode::PAYLOAD_TOO_LARGE,
        "exec larger than allowed: 50331652 > 50331648 bytes.",
    );

    // Invoke payloads: at most 1 MiB (hello ignores `p`, so its result stays small).
    let hello = create(
        &node,
        "hello",
        json!({"exec": {"kind": "wasm:wasip1", "code": wasm_base64("hello")}}),
    )
    .await;
    assert_eq!(hello.status, StatusCode::OK);
    let payload = |n: usize| json!({"p": "x".repeat(n - 8)});
    let at = serde_json::to_vec(&payload(limit)).unwrap();
    assert_eq!(at.len(), limit);
    let ok = node
        .send(
            Method::POST,
            "/api/v1/namespaces/_/actions/hello?blocking=true&result=true",
            Some(GUEST_KEY),
            &[("content-type", "application/json")],
            at,
        )
        .await;
    assert_eq!(
        (ok.status, ok.body),
        (StatusCode::OK, json!({"greeting": "Hello, stranger!"}))
    );
    let over = serde_json::to_vec(&payload(limit + 1)).unwrap();
    let too_big = node
        .send(
            Method::POST,
            "/api/v1/namespaces/_/actions/hello?blocking=true",
            Some(GUEST_KEY),
            &[("content-type", "application/json")],
            over,
        )
        .await;
    assert_error(
        &too_big,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request larger than allowed: 1048577 > 1048576 bytes.",
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_invokes_and_activations() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let zip = base64::engine::general_purpose::STANDARD.encode(zipped("hello"));
    let created = create(
        &node,
        "hello",
        json!({"exec": {"kind": "wasm:wasip1", "code": zip}}),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let echo = create(
        &node,
        "echo",
        json!({"exec": {"kind": "wasm:wasip1", "code": wasm_base64("echo")}, "parameters": [{"key": "a", "value": 1}, {"key": "b", "value": 2}]}),
    )
    .await;
    assert_eq!(echo.status, StatusCode::OK);

    // Blocking: the whole activation (extended view), then only the result.
    let since = executor::record::epoch_millis(std::time::SystemTime::now());
    let blocking = node
        .call(
            Method::POST,
            "/api/v1/namespaces/_/actions/hello?blocking=true",
            Some(json!({"name": "Ada"})),
        )
        .await;
    assert_eq!(blocking.status, StatusCode::OK, "{}", blocking.text);
    let id = blocking.body["activationId"].as_str().unwrap().to_string();
    assert_eq!(blocking.headers["x-openwhisk-activation-id"], id.as_str());
    assert_eq!(blocking.body["response"]["status"], "success");
    assert_eq!(blocking.body["response"]["success"], true);
    assert_eq!(
        blocking.body["response"]["result"],
        json!({"greeting": "Hello, Ada!"})
    );
    assert_eq!(blocking.body["namespace"], "guest");
    assert_eq!(blocking.body["subject"], "guest");
    assert!(blocking.body["duration"].is_u64());
    let result = node
        .call(
            Method::POST,
            "/api/v1/namespaces/_/actions/hello?blocking=true&result=true",
            Some(json!({"name": "Bo"})),
        )
        .await;
    assert_eq!(result.body, json!({"greeting": "Hello, Bo!"}));

    // Parameters: the action's, then the request's (which win).
    let merged = node
        .call(
            Method::POST,
            "/api/v1/namespaces/_/actions/echo?blocking=true&result=true",
            Some(json!({"b": 3, "c": 4})),
        )
        .await;
    assert_eq!(merged.body, json!({"a": 1, "b": 3, "c": 4}));

    // Application error: 502 with the activation (or its result).
    let failed = node
        .call(
            Method::POST,
            "/api/v1/namespaces/_/actions/hello?blocking=true",
            Some(json!({"name": 7})),
        )
        .await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY);
    assert_eq!(failed.body["response"]["status"], "application error");
    assert_eq!(
        failed.body["response"]["result"],
        json!({"error": "The parameter \"name\" must be a string."})
    );
    let failed = node
        .call(
            Method::POST,
            "/api/v1/namespaces/_/actions/hello?blocking=true&result=true",
            Some(json!({"name": 7})),
        )
        .await;
    assert_eq!(
        (failed.status, failed.body),
        (
            StatusCode::BAD_GATEWAY,
            json!({"error": "The parameter \"name\" must be a string."})
        )
    );

    // Non-blocking: 202 with only the id; the record appears in the store.
    let queued = node
        .call(
            Method::POST,
            "/api/v1/namespaces/_/actions/hello",
            Some(json!({"name": "Cy"})),
        )
        .await;
    assert_eq!(queued.status, StatusCode::ACCEPTED);
    let queued_id = queued.body["activationId"].as_str().unwrap().to_string();
    assert_eq!(queued.body.as_object().unwrap().len(), 1);
    let stored = wait_for_activation(&node, &queued_id).await;
    assert_eq!(
        stored["response"]["result"],
        json!({"greeting": "Hello, Cy!"})
    );
    assert_eq!(stored["response"]["status"], "success");
    let annotations: Vec<&str> = stored["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    for key in ["limits", "path", "kind", "timeout", "waitTime"] {
        assert!(annotations.contains(&key), "{key} in {annotations:?}");
    }

    let logs = node
        .call(
            Method::GET,
            &format!("/api/v1/namespaces/_/activations/{queued_id}/logs"),
            None,
        )
        .await;
    let lines = logs.body["logs"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.as_str().unwrap().ends_with("stdout: greeting Cy")),
        "{lines:?}"
    );
    let response = node
        .call(
            Method::GET,
            &format!("/api/v1/namespaces/_/activations/{queued_id}/result"),
            None,
        )
        .await;
    assert_eq!(response.body["status"], "success");
    assert_eq!(response.body["success"], true);
    assert_eq!(response.body["result"], json!({"greeting": "Hello, Cy!"}));
    assert!(response.body.get("statusCode").is_none());

    // Lists: newest first, summaries unless docs=true, name filter, skip/limit, since/upto, count.
    let all = node
        .call(
            Method::GET,
            "/api/v1/namespaces/_/activations?limit=0",
            None,
        )
        .await;
    let all = all.body.as_array().unwrap().clone();
    assert_eq!(all.len(), 6);
    assert!(
        all.windows(2)
            .all(|w| w[0]["start"].as_u64() >= w[1]["start"].as_u64())
    );
    assert!(all[0].get("response").is_none() && all[0].get("logs").is_none());
    assert!(all[0]["statusCode"].is_u64());
    let docs = node
        .call(
            Method::GET,
            "/api/v1/namespaces/_/activations?docs=true&limit=1",
            None,
        )
        .await;
    assert_eq!(docs.body.as_array().unwrap().len(), 1);
    assert!(docs.body[0]["response"]["status"].is_string());
    let by_name = node
        .call(
            Method::GET,
            "/api/v1/namespaces/_/activations?name=echo",
            None,
        )
        .await;
    assert_eq!(by_name.body.as_array().unwrap().len(), 1);
    let skipped = node
        .call(Method::GET, "/api/v1/namespaces/_/activations?skip=5", None)
        .await;
    assert_eq!(skipped.body.as_array().unwrap().len(), 1);
    let upto = node
        .call(
            Method::GET,
            &format!(
                "/api/v1/namespaces/_/activations?upto={}",
                since.saturating_sub(1)
            ),
            None,
        )
        .await;
    assert_eq!(upto.body, json!([]));
    let since = node
        .call(
            Method::GET,
            &format!("/api/v1/namespaces/_/activations?since={since}"),
            None,
        )
        .await;
    assert_eq!(since.body.as_array().unwrap().len(), 6);
    let count = node
        .call(
            Method::GET,
            "/api/v1/namespaces/_/activations?count=true&name=hello",
            None,
        )
        .await;
    assert_eq!(count.body, json!({"activations": 5}));

    // Errors of the activation routes.
    let bad_limit = node
        .call(
            Method::GET,
            "/api/v1/namespaces/_/activations?limit=201",
            None,
        )
        .await;
    assert_error(
        &bad_limit,
        StatusCode::BAD_REQUEST,
        "The query parameter 'limit' was malformed:\nThe value '201' is not in the range of 0 to 200 for activations.",
    );
    let bad_since = node
        .call(
            Method::GET,
            "/api/v1/namespaces/_/activations?since=yesterday",
            None,
        )
        .await;
    assert_error(
        &bad_since,
        StatusCode::BAD_REQUEST,
        "The query parameter 'since' was malformed:\nParameter is not a valid value for epoch seconds: yesterday",
    );
    let short = node
        .call(Method::GET, "/api/v1/namespaces/_/activations/abc", None)
        .await;
    assert_error(
        &short,
        StatusCode::BAD_REQUEST,
        "Activation id length is 3 but must be 32.",
    );
    let missing = node
        .call(
            Method::GET,
            &format!("/api/v1/namespaces/_/activations/{}", "0".repeat(32)),
            None,
        )
        .await;
    assert_error(
        &missing,
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    let missing = node
        .call(
            Method::GET,
            &format!("/api/v1/namespaces/_/activations/{}/logs", "0".repeat(32)),
            None,
        )
        .await;
    assert_error(
        &missing,
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_web_actions() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let web = json!([{"key": "web-export", "value": true}]);
    let hello = create(
        &node,
        "hello",
        json!({"exec": {"kind": "wasm:wasip1", "code": wasm_base64("hello")}, "annotations": web}),
    )
    .await;
    assert_eq!(hello.status, StatusCode::OK);
    let echo = create(
        &node,
        "echo",
        json!({"exec": {"kind": "wasm:wasip1", "code": wasm_base64("echo")}, "annotations": web}),
    )
    .await;
    assert_eq!(echo.status, StatusCode::OK);
    let private = create(
        &node,
        "private",
        json!({"exec": {"kind": "wasm:wasip1", "code": wasm_base64("echo")}}),
    )
    .await;
    assert_eq!(private.status, StatusCode::OK);

    // .json: query parameters become parameters; no credentials needed.
    let json = node
        .send(
            Method::GET,
            "/api/v1/web/guest/default/hello.json?name=Ada",
            None,
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        (json.status, json.body),
        (StatusCode::OK, json!({"greeting": "Hello, Ada!"}))
    );

    // The request context: method, headers, path after the name; JSON body fields merged.
    let context = node
        .send(
            Method::POST,
            "/api/v1/web/guest/default/echo.json/a/b?q=1",
            None,
            &[("content-type", "application/json"), ("x-custom", "yes")],
            br#"{"z": true}"#.to_vec(),
        )
        .await;
    assert_eq!(context.status, StatusCode::OK, "{}", context.text);
    assert_eq!(context.body["__ow_method"], "post");
    assert_eq!(context.body["__ow_path"], "/a/b");
    assert_eq!(context.body["__ow_headers"]["x-custom"], "yes");
    assert_eq!(context.body["q"], "1");
    assert_eq!(context.body["z"], true);

    // .http (and no extension): statusCode, headers and body of the result make the response.
    let reply = json!({"statusCode": 201, "headers": {"x-made-by": "echo", "content-type": "text/plain"}, "body": "made"});
    for path in [
        "/api/v1/web/guest/default/echo.http",
        "/api/v1/web/guest/default/echo",
    ] {
        let http = node
            .send(
                Method::POST,
                path,
                None,
                &[("content-type", "application/json")],
                serde_json::to_vec(&reply).unwrap(),
            )
            .await;
        assert_eq!(http.status, StatusCode::CREATED, "{}", http.text);
        assert_eq!(http.headers["x-made-by"], "echo");
        assert_eq!(
            http.headers[header::CONTENT_TYPE],
            HeaderValue::from_static("text/plain; charset=UTF-8")
        );
        assert_eq!(http.text, "made");
    }

    // Preflights are answered without running the action.
    let preflight = node
        .send(
            Method::OPTIONS,
            "/api/v1/web/guest/default/echo.json",
            None,
            &[("access-control-request-headers", "x-custom")],
            Vec::new(),
        )
        .await;
    assert_eq!(preflight.status, StatusCode::OK);
    assert_eq!(
        preflight.headers[header::ACCESS_CONTROL_ALLOW_HEADERS],
        "x-custom"
    );
    assert_eq!(preflight.text, "");

    // Errors: not exported, missing, reserved parameters, unknown namespace.
    let hidden = node
        .send(
            Method::GET,
            "/api/v1/web/guest/default/private.json",
            None,
            &[],
            Vec::new(),
        )
        .await;
    assert_error(
        &hidden,
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    let missing = node
        .send(
            Method::GET,
            "/api/v1/web/guest/default/nothing.json",
            None,
            &[],
            Vec::new(),
        )
        .await;
    assert_error(
        &missing,
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    let reserved = node
        .send(
            Method::GET,
            "/api/v1/web/guest/default/echo.json?__ow_method=put",
            None,
            &[],
            Vec::new(),
        )
        .await;
    assert_error(
        &reserved,
        StatusCode::BAD_REQUEST,
        "Request defines parameters that are not allowed (e.g., reserved properties).",
    );
    let nobody = node
        .send(
            Method::GET,
            "/api/v1/web/nobody/default/echo.json",
            None,
            &[],
            Vec::new(),
        )
        .await;
    assert_error(
        &nobody,
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    let app_error = node
        .send(
            Method::GET,
            "/api/v1/web/guest/default/hello.json?name=",
            None,
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        app_error.status,
        StatusCode::OK,
        "an empty string is still a string: {}",
        app_error.text
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_restart_keeps_actions_and_activations() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let created = create(
        &node,
        "hello",
        json!({"exec": {"kind": "wasm:wasip1", "code": wasm_base64("hello")}}),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK);
    let first = node
        .call(
            Method::POST,
            "/api/v1/namespaces/_/actions/hello?blocking=true",
            Some(json!({"name": "Ada"})),
        )
        .await;
    let id = first.body["activationId"].as_str().unwrap().to_string();
    node.stop().await;

    let node = Node::start(dir.path()).await;
    let action = node
        .call(Method::GET, "/api/v1/namespaces/_/actions/hello", None)
        .await;
    assert_eq!(action.status, StatusCode::OK);
    assert_eq!(action.body["exec"]["code"], created.body["exec"]["code"]);
    let activation = node
        .call(
            Method::GET,
            &format!("/api/v1/namespaces/_/activations/{id}"),
            None,
        )
        .await;
    assert_eq!(activation.status, StatusCode::OK);
    assert_eq!(
        activation.body["response"]["result"],
        json!({"greeting": "Hello, Ada!"})
    );
    let again = node
        .call(
            Method::POST,
            "/api/v1/namespaces/_/actions/hello?blocking=true&result=true",
            Some(json!({"name": "Bo"})),
        )
        .await;
    assert_eq!(again.body, json!({"greeting": "Hello, Bo!"}));
    let list = node
        .call(Method::GET, "/api/v1/namespaces/_/activations", None)
        .await;
    assert_eq!(list.body.as_array().unwrap().len(), 2);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_handle_answers_without_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StandaloneConfig::new(dir.path());
    config.pool = PoolConfig {
        user_memory_mb: 512,
        ..PoolConfig::default()
    };
    let assembled = Standalone::assemble(config, vec![wasm_factory()])
        .await
        .expect("node assembles");
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(GUEST_KEY)
    );
    let request = |method: Method, path: &str, body: Value| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, &auth)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };
    let put = json!({"exec": {"kind": "wasm:wasip1", "code": wasm_base64("hello")}, "annotations": [
        {"key": "web-export", "value": true}, {"key": "require-whisk-auth", "value": "s3cret"}]});
    let response = executor::standalone::handle(
        assembled.state.clone(),
        request(Method::PUT, "/api/v1/namespaces/_/actions/hello", put),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = executor::standalone::handle(
        assembled.state.clone(),
        request(
            Method::POST,
            "/api/v1/namespaces/_/actions/hello?blocking=true&result=true",
            json!({"name": "Ada"}),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"greeting": "Hello, Ada!"})
    );

    // A web action that requires a secret header: refused without it, served with it.
    let web = |secret: Option<&str>| {
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri("/api/v1/web/guest/default/hello.json?name=Bo");
        if let Some(secret) = secret {
            builder = builder.header("x-require-whisk-auth", secret);
        }
        builder.body(Full::new(Bytes::new())).unwrap()
    };
    let refused = executor::standalone::handle(assembled.state.clone(), web(None)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let refused = executor::standalone::handle(assembled.state.clone(), web(Some("nope"))).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let served = executor::standalone::handle(assembled.state.clone(), web(Some("s3cret"))).await;
    assert_eq!(served.status(), StatusCode::OK);
    let body = served.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"greeting": "Hello, Bo!"})
    );
    // `.http` (the default) of a result without statusCode/body: 204, no content.
    let empty = executor::standalone::handle(
        assembled.state.clone(),
        Request::builder()
            .uri("/api/v1/web/guest/default/hello")
            .header("x-require-whisk-auth", "s3cret")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(empty.status(), StatusCode::NO_CONTENT);

    assembled.pool.shutdown(Duration::from_secs(10)).await;
    assembled.records.flush(Duration::from_secs(10)).await;
}
