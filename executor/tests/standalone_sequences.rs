//! Sequences on the standalone server, over real HTTP with the real wasm factory, pool, processor
//! and local store: the PUT checks with the controller's statuses and texts, the sequence document
//! as GET and list show it, and invokes (blocking, non-blocking, nested, failing) with the records
//! of the sequence and of its components.

#[path = "support/standalone.rs"]
#[allow(
    dead_code,
    reason = "the shared support module has more than these cases use"
)]
mod standalone;

use std::time::{Duration, Instant};

use executor::standalone::auth::{GUEST_KEY, Subjects};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use standalone::{Node, Reply, WAIT, assert_error, wasm_base64};

/// A second key, for namespace `other`.
const OTHER_KEY: &str =
    "0b4e3e8a-2c6d-4b8e-9a51-6f3a7d1c2e90:OtherSecretOtherSecretOtherSecretOtherSecretOtherSecret";

const HELLO_NAME_ERROR: &str = "The parameter \"name\" must be a string.";

async fn start(dir: &std::path::Path) -> Node {
    let subjects = Subjects::new([
        (GUEST_KEY.to_string(), "guest".to_string()),
        (OTHER_KEY.to_string(), "other".to_string()),
    ])
    .unwrap();
    Node::start_with(dir, subjects).await
}

fn ok(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

fn wasm(name: &str) -> Value {
    json!({"exec": {"kind": "wasm:wasip1", "code": wasm_base64(name)}})
}

fn sequence(components: &[&str]) -> Value {
    json!({"exec": {"kind": "sequence", "components": components}})
}

async fn put(node: &Node, key: &str, path: &str, body: Value) -> Reply {
    node.call_as(
        key,
        Method::PUT,
        &format!("/api/v1/namespaces/_/{path}"),
        Some(body),
    )
    .await
}

async fn invoke(node: &Node, action: &str, query: &str, payload: Value) -> Reply {
    node.call(
        Method::POST,
        &format!("/api/v1/namespaces/_/actions/{action}?{query}"),
        Some(payload),
    )
    .await
}

/// The activation record `id` of the guest, once stored.
async fn stored(node: &Node, id: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let reply = node
            .call(
                Method::GET,
                &format!("/api/v1/namespaces/_/activations/{id}"),
                None,
            )
            .await;
        if reply.status == StatusCode::OK {
            return reply.body;
        }
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
        assert!(Instant::now() < deadline, "activation {id} not stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of annotation `key` of an entity or record, `Null` when absent.
fn annotation(entity: &Value, key: &str) -> Value {
    entity["annotations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["key"] == key)
        .map_or(Value::Null, |a| a["value"].clone())
}

/// The component activation ids a sequence record lists in `logs`.
fn logs(record: &Value) -> Vec<String> {
    record["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|id| id.as_str().expect("an activation id").to_string())
        .collect()
}

/// `echo`, `hello` and a package `utils` (parameter `name`) holding `hello` too.
async fn actions(node: &Node) {
    ok(&put(node, GUEST_KEY, "actions/echo", wasm("echo")).await);
    ok(&put(node, GUEST_KEY, "actions/hello", wasm("hello")).await);
    ok(&put(
        node,
        GUEST_KEY,
        "packages/utils",
        json!({"parameters": [{"key": "name", "value": "Pkg"}]}),
    )
    .await);
    ok(&put(node, GUEST_KEY, "actions/utils/hello", wasm("hello")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sequences_are_created_shown_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    actions(&node).await;

    let created = put(
        &node,
        GUEST_KEY,
        "actions/greet",
        json!({
            "exec": {"kind": "sequence", "components": ["/_/echo", "/_/utils/hello", "guest/echo"]},
            "parameters": [{"key": "ignored", "value": 1}],
            "annotations": [{"key": "description", "value": "d"}],
        }),
    )
    .await;
    ok(&created);
    let components = json!(["/guest/echo", "/guest/utils/hello", "/guest/echo"]);
    assert_eq!(
        created.body["exec"],
        json!({"kind": "sequence", "components": components})
    );
    // The controller keeps no parameters of a sequence but its components.
    assert_eq!(
        created.body["parameters"],
        json!([{"key": "_actions", "value": components}])
    );
    assert_eq!(annotation(&created.body, "exec"), "sequence");
    assert_eq!(annotation(&created.body, "description"), "d");
    assert_eq!(created.body["namespace"], "guest");

    let got = node
        .call(Method::GET, "/api/v1/namespaces/_/actions/greet", None)
        .await;
    ok(&got);
    assert_eq!(got.body["exec"], created.body["exec"]);
    assert_eq!(got.body["parameters"], created.body["parameters"]);

    let list = node
        .call(Method::GET, "/api/v1/namespaces/_/actions", None)
        .await;
    ok(&list);
    let entry = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "greet")
        .expect("the sequence is listed")
        .clone();
    assert_eq!(entry["exec"], json!({"binary": false}));
    assert_eq!(annotation(&entry, "exec"), "sequence");

    // In a package: the sequence's namespace is the package's path.
    let packaged = put(
        &node,
        GUEST_KEY,
        "actions/utils/greet",
        sequence(&["/_/utils/hello"]),
    )
    .await;
    ok(&packaged);
    assert_eq!(packaged.body["namespace"], "guest/utils");
    assert_eq!(
        packaged.body["exec"]["components"],
        json!(["/guest/utils/hello"])
    );

    // Updating a sequence into an action drops `_actions`; a sequence update keeps no parameters.
    let replaced = put(
        &node,
        GUEST_KEY,
        "actions/greet?overwrite=true",
        wasm("echo"),
    )
    .await;
    ok(&replaced);
    assert_eq!(replaced.body["parameters"], json!([]));
    assert_eq!(annotation(&replaced.body, "exec"), "wasm:wasip1");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_sequence_puts_are_refused_as_the_controller_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    actions(&node).await;
    ok(&put(&node, OTHER_KEY, "actions/theirs", wasm("echo")).await);
    ok(&put(&node, OTHER_KEY, "packages/private", json!({})).await);
    ok(&put(&node, OTHER_KEY, "actions/private/x", wasm("echo")).await);
    ok(&put(
        &node,
        OTHER_KEY,
        "packages/public",
        json!({"publish": true}),
    )
    .await);
    ok(&put(&node, OTHER_KEY, "actions/public/x", wasm("echo")).await);

    let missing = put(
        &node,
        GUEST_KEY,
        "actions/s",
        sequence(&["/_/echo", "/_/nope"]),
    )
    .await;
    assert_error(
        &missing,
        StatusCode::BAD_REQUEST,
        "Sequence component does not exist.",
    );
    let missing_in_package = put(&node, GUEST_KEY, "actions/s", sequence(&["/_/utils/nope"])).await;
    assert_error(
        &missing_in_package,
        StatusCode::BAD_REQUEST,
        "Sequence component does not exist.",
    );
    // The caller's own missing package fails the entitlement check: 404.
    let no_package = put(&node, GUEST_KEY, "actions/s", sequence(&["/_/nopkg/x"])).await;
    assert_error(
        &no_package,
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );

    // Another namespace's entities: only its published packages' actions.
    let private = put(
        &node,
        GUEST_KEY,
        "actions/s",
        sequence(&["/other/private/x", "/other/theirs", "/_/echo"]),
    )
    .await;
    assert_error(
        &private,
        StatusCode::FORBIDDEN,
        "The supplied authentication is not authorized to access 'other/private, other/theirs'.",
    );
    ok(&put(
        &node,
        GUEST_KEY,
        "actions/s",
        sequence(&["/other/public/x", "/_/echo"]),
    )
    .await);

    let too_long: Vec<&str> = vec!["/_/echo"; 51];
    let long = put(&node, GUEST_KEY, "actions/long", sequence(&too_long)).await;
    assert_error(
        &long,
        StatusCode::BAD_REQUEST,
        "Too many actions in the sequence.",
    );
    // The count inlines nested sequences: 50 atomic actions and one more is too many.
    let fifty: Vec<&str> = vec!["/_/echo"; 50];
    ok(&put(&node, GUEST_KEY, "actions/fifty", sequence(&fifty)).await);
    let nested = put(
        &node,
        GUEST_KEY,
        "actions/long",
        sequence(&["/_/fifty", "/_/echo"]),
    )
    .await;
    assert_error(
        &nested,
        StatusCode::BAD_REQUEST,
        "Too many actions in the sequence.",
    );
    let empty = put(&node, GUEST_KEY, "actions/long", sequence(&[])).await;
    assert_error(
        &empty,
        StatusCode::BAD_REQUEST,
        "No component specified for the sequence.",
    );

    // Recursion, directly or through another sequence.
    ok(&put(&node, GUEST_KEY, "actions/a", sequence(&["/_/echo"])).await);
    let itself = put(
        &node,
        GUEST_KEY,
        "actions/a?overwrite=true",
        sequence(&["/_/a"]),
    )
    .await;
    assert_error(
        &itself,
        StatusCode::BAD_REQUEST,
        "Sequence may not refer to itself.",
    );
    ok(&put(&node, GUEST_KEY, "actions/b", sequence(&["/_/a"])).await);
    let cycle = put(
        &node,
        GUEST_KEY,
        "actions/a?overwrite=true",
        sequence(&["/_/b"]),
    )
    .await;
    assert_error(
        &cycle,
        StatusCode::BAD_REQUEST,
        "Sequence may not refer to itself.",
    );
    // An action turned into a sequence of itself.
    let echo_itself = put(
        &node,
        GUEST_KEY,
        "actions/echo?overwrite=true",
        sequence(&["/_/echo"]),
    )
    .await;
    assert_error(
        &echo_itself,
        StatusCode::BAD_REQUEST,
        "Sequence may not refer to itself.",
    );

    let malformed = put(&node, GUEST_KEY, "actions/m", sequence(&["echo"])).await;
    assert_eq!(
        malformed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        malformed.text
    );
    assert!(
        malformed.body["error"]
            .as_str()
            .unwrap()
            .starts_with("The request content was malformed:"),
        "{}",
        malformed.text
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_three_wasm_steps_pass_results_along() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    actions(&node).await;
    ok(&put(
        &node,
        GUEST_KEY,
        "actions/greet",
        sequence(&["/_/echo", "/_/utils/hello", "/_/echo"]),
    )
    .await);

    let reply = invoke(&node, "greet", "blocking=true", json!({"name": "Ada"})).await;
    ok(&reply);
    let record = &reply.body;
    let id = record["activationId"].as_str().unwrap();
    assert_eq!(reply.headers["x-openwhisk-activation-id"], id);
    assert_eq!(
        record["response"]["result"],
        json!({"greeting": "Hello, Ada!"})
    );
    assert_eq!(record["response"]["status"], "success");
    assert_eq!(record["name"], "greet");
    assert_eq!(record["namespace"], "guest");
    assert!(record.get("cause").is_none(), "{record}");
    assert_eq!(annotation(record, "topmost"), true);
    assert_eq!(annotation(record, "kind"), "sequence");
    assert_eq!(annotation(record, "path"), "guest/greet");
    assert_eq!(annotation(record, "causedBy"), Value::Null);
    assert_eq!(annotation(record, "limits")["memory"], 256);
    let ids = logs(record);
    assert_eq!(ids.len(), 3);
    let mut total = 0;
    for (step, component) in ids.iter().enumerate() {
        let activation = stored(&node, component).await;
        assert_eq!(activation["cause"], id, "{activation}");
        assert_eq!(annotation(&activation, "causedBy"), "sequence");
        let name = if step == 1 { "hello" } else { "echo" };
        assert_eq!(activation["name"], name);
        total += activation["duration"].as_u64().unwrap();
    }
    assert_eq!(record["duration"].as_u64().unwrap(), total);
    let path = annotation(&stored(&node, &ids[1]).await, "path");
    assert_eq!(path, "guest/utils/hello");
    // The record is stored as it was answered.
    let again = stored(&node, id).await;
    assert_eq!(again["logs"], record["logs"]);
    assert_eq!(again["response"], record["response"]);

    // The package's parameter reaches the component when nothing overrides it; `result=true`.
    let defaulted = invoke(&node, "greet", "blocking=true&result=true", json!({})).await;
    ok(&defaulted);
    assert_eq!(defaulted.body, json!({"greeting": "Hello, Pkg!"}));

    // Through a package (and a binding): the same run, the binding recorded on the sequence.
    ok(&put(
        &node,
        GUEST_KEY,
        "actions/utils/greet",
        sequence(&["/_/echo", "/_/utils/hello"]),
    )
    .await);
    ok(&put(
        &node,
        GUEST_KEY,
        "packages/mine",
        json!({"binding": {"namespace": "_", "name": "utils"}}),
    )
    .await);
    let bound = invoke(&node, "mine/greet", "blocking=true", json!({"name": "Bo"})).await;
    ok(&bound);
    assert_eq!(
        bound.body["response"]["result"],
        json!({"greeting": "Hello, Bo!"})
    );
    assert_eq!(annotation(&bound.body, "path"), "guest/utils/greet");
    assert_eq!(annotation(&bound.body, "binding"), "guest/mine");

    // A web-exported sequence runs its components too, its last result projected.
    let mut exported = sequence(&["/_/echo", "/_/hello"]);
    exported["annotations"] = json!([{"key": "web-export", "value": true}]);
    ok(&put(&node, GUEST_KEY, "actions/webgreet", exported).await);
    let web = node
        .send(
            Method::GET,
            "/api/v1/web/guest/default/webgreet.json?name=Web",
            None,
            &[],
            Vec::new(),
        )
        .await;
    ok(&web);
    assert_eq!(web.body, json!({"greeting": "Hello, Web!"}));
    let web_id = web.headers["x-openwhisk-activation-id"].to_str().unwrap();
    let web_record = stored(&node, web_id).await;
    assert_eq!(annotation(&web_record, "kind"), "sequence");
    assert_eq!(logs(&web_record).len(), 2);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_failing_component_stops_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    actions(&node).await;
    ok(&put(
        &node,
        GUEST_KEY,
        "actions/greet",
        sequence(&["/_/echo", "/_/hello", "/_/echo"]),
    )
    .await);

    let reply = invoke(&node, "greet", "blocking=true", json!({"name": 5})).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text);
    let record = &reply.body;
    assert_eq!(record["response"]["status"], "application error");
    assert_eq!(
        record["response"]["result"],
        json!({"error": HELLO_NAME_ERROR})
    );
    let ids = logs(record);
    assert_eq!(ids.len(), 2);
    let failed = stored(&node, &ids[1]).await;
    assert_eq!(failed["name"], "hello");
    assert_eq!(failed["response"], record["response"]);

    // A component deleted after the PUT: the sequence ends with the controller's error.
    ok(&node
        .call(Method::DELETE, "/api/v1/namespaces/_/actions/hello", None)
        .await);
    let gone = invoke(&node, "greet", "blocking=true", json!({"name": "Ada"})).await;
    assert_eq!(gone.status, StatusCode::BAD_GATEWAY, "{}", gone.text);
    assert_eq!(
        gone.body["response"]["result"],
        json!({"error": "Sequence component does not exist."})
    );
    assert_eq!(logs(&gone.body).len(), 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_non_blocking_and_nested_sequences_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    actions(&node).await;
    ok(&put(
        &node,
        GUEST_KEY,
        "actions/inner",
        sequence(&["/_/hello", "/_/echo"]),
    )
    .await);
    ok(&put(
        &node,
        GUEST_KEY,
        "actions/outer",
        sequence(&["/_/echo", "/_/inner"]),
    )
    .await);

    let accepted = invoke(&node, "outer", "", json!({"name": "Cy"})).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text);
    let id = accepted.body["activationId"].as_str().unwrap().to_string();
    let record = stored(&node, &id).await;
    assert_eq!(
        record["response"]["result"],
        json!({"greeting": "Hello, Cy!"})
    );
    let ids = logs(&record);
    assert_eq!(ids.len(), 2);
    // The inner sequence is one step of the outer, with a record of its own.
    let inner = stored(&node, &ids[1]).await;
    assert_eq!(inner["name"], "inner");
    assert_eq!(inner["cause"], id.as_str());
    assert_eq!(annotation(&inner, "topmost"), false);
    assert_eq!(annotation(&inner, "causedBy"), "sequence");
    assert_eq!(annotation(&inner, "kind"), "sequence");
    let inner_ids = logs(&inner);
    assert_eq!(inner_ids.len(), 2);
    let hello = stored(&node, &inner_ids[0]).await;
    assert_eq!(hello["cause"], inner["activationId"]);
    let echo = stored(&node, &ids[0]).await;
    assert_eq!(
        record["duration"].as_u64().unwrap(),
        echo["duration"].as_u64().unwrap() + inner["duration"].as_u64().unwrap()
    );

    // Entitlement is checked again at invoke: a component whose package became private is 403.
    ok(&put(
        &node,
        OTHER_KEY,
        "packages/public",
        json!({"publish": true}),
    )
    .await);
    ok(&put(&node, OTHER_KEY, "actions/public/x", wasm("echo")).await);
    ok(&put(
        &node,
        GUEST_KEY,
        "actions/theirs",
        sequence(&["/other/public/x"]),
    )
    .await);
    ok(&invoke(&node, "theirs", "blocking=true", json!({})).await);
    ok(&put(
        &node,
        OTHER_KEY,
        "packages/public?overwrite=true",
        json!({"publish": false}),
    )
    .await);
    let refused = invoke(&node, "theirs", "blocking=true", json!({})).await;
    assert_error(
        &refused,
        StatusCode::FORBIDDEN,
        "The supplied authentication is not authorized to access 'other/public'.",
    );
    node.stop().await;
}
