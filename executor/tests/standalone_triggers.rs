//! Triggers and rules on the standalone server, over real HTTP with the real wasm factory, pool,
//! processor and local store: their lifecycles and statuses, every error with the controller's
//! status and text, and firing (active rules' actions run with the merged arguments, the trigger's
//! record says what became of every rule).

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

const NOT_FOUND: &str = "The requested resource does not exist.";
const CONFORMANCE: &str = "Resource by this name exists but is not in this collection.";
const TRIGGERS: &str = "/api/v1/namespaces/_/triggers";
const RULES: &str = "/api/v1/namespaces/_/rules";

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

fn echo(parameters: Value) -> Value {
    json!({"exec": {"kind": "wasm:wasip1", "code": wasm_base64("echo")}, "parameters": parameters})
}

async fn create_action(node: &Node, name: &str, parameters: Value) {
    let path = format!("/api/v1/namespaces/_/actions/{name}");
    ok(&node.call(Method::PUT, &path, Some(echo(parameters))).await);
}

async fn create_trigger(node: &Node, name: &str, body: Value) -> Reply {
    let reply = node
        .call(Method::PUT, &format!("{TRIGGERS}/{name}"), Some(body))
        .await;
    ok(&reply);
    reply
}

async fn create_rule(node: &Node, name: &str, trigger: &str, action: &str) -> Reply {
    let body = json!({"trigger": format!("/_/{trigger}"), "action": format!("/_/{action}")});
    let reply = node
        .call(Method::PUT, &format!("{RULES}/{name}"), Some(body))
        .await;
    ok(&reply);
    reply
}

async fn set_status(node: &Node, rule: &str, status: &str) -> Reply {
    node.call(
        Method::POST,
        &format!("{RULES}/{rule}"),
        Some(json!({ "status": status })),
    )
    .await
}

/// Polls for an activation record of the guest namespace.
async fn wait_activation(node: &Node, id: &str) -> Value {
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
        assert!(Instant::now() < deadline, "activation {id} never stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The activations of `name` in the guest namespace.
async fn activations_of(node: &Node, name: &str) -> Vec<Value> {
    let reply = node
        .call(
            Method::GET,
            &format!("/api/v1/namespaces/_/activations?name={name}"),
            None,
        )
        .await;
    ok(&reply);
    reply.body.as_array().cloned().unwrap_or_default()
}

/// The trigger record's log lines, parsed.
fn rule_logs(record: &Value) -> Vec<Value> {
    record["logs"]
        .as_array()
        .expect("a trigger record has logs")
        .iter()
        .map(|line| serde_json::from_str(line.as_str().expect("log lines are strings")).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_trigger_lifecycle_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let created = create_trigger(
        &node,
        "t",
        json!({"parameters": [{"key": "x", "value": 1}], "annotations": [{"key": "a", "value": true}]}),
    )
    .await;
    assert_eq!(created.body["namespace"], "guest");
    assert_eq!(created.body["name"], "t");
    assert_eq!(created.body["version"], "0.0.1");
    assert_eq!(created.body["publish"], false);
    assert_eq!(created.body["limits"], json!({}));
    assert_eq!(
        created.body["parameters"],
        json!([{"key": "x", "value": 1}])
    );
    assert!(created.body.get("rules").is_none(), "{}", created.text);

    let again = node
        .call(Method::PUT, &format!("{TRIGGERS}/t"), Some(json!({})))
        .await;
    assert_error(&again, StatusCode::CONFLICT, "resource already exists");
    let updated = node
        .call(
            Method::PUT,
            &format!("{TRIGGERS}/t?overwrite=true"),
            Some(json!({"publish": true})),
        )
        .await;
    ok(&updated);
    assert_eq!(updated.body["version"], "0.0.2");
    assert_eq!(updated.body["publish"], true);
    assert_eq!(
        updated.body["parameters"],
        json!([{"key": "x", "value": 1}])
    );
    let got = node.call(Method::GET, &format!("{TRIGGERS}/t"), None).await;
    ok(&got);
    assert_eq!(got.body, updated.body);

    create_trigger(&node, "u", json!({})).await;
    let list = node.call(Method::GET, TRIGGERS, None).await;
    ok(&list);
    let names: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["u", "t"], "most recently updated first");
    assert!(list.body[0].get("parameters").is_none(), "{}", list.text);
    let count = node
        .call(Method::GET, &format!("{TRIGGERS}?count=true"), None)
        .await;
    assert_eq!(count.body, json!({"triggers": 2}));
    let page = node
        .call(Method::GET, &format!("{TRIGGERS}?skip=1&limit=1"), None)
        .await;
    assert_eq!(page.body.as_array().unwrap().len(), 1);
    assert_eq!(page.body[0]["name"], "t");
    let bad_limit = node
        .call(Method::GET, &format!("{TRIGGERS}?limit=-1"), None)
        .await;
    assert_error(
        &bad_limit,
        StatusCode::BAD_REQUEST,
        "The query parameter 'limit' was malformed:\nThe value '-1' is not in the range of 0 to 200 for triggers.",
    );

    // Errors with the controller's texts.
    let missing = node
        .call(Method::GET, &format!("{TRIGGERS}/nope"), None)
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, NOT_FOUND);
    let fire_missing = node
        .call(Method::POST, &format!("{TRIGGERS}/nope"), Some(json!({})))
        .await;
    assert_error(&fire_missing, StatusCode::NOT_FOUND, NOT_FOUND);
    let illegal = node
        .call(Method::PUT, &format!("{TRIGGERS}/-t"), Some(json!({})))
        .await;
    assert_error(
        &illegal,
        StatusCode::BAD_REQUEST,
        "The name of the entity contains illegal characters.",
    );
    let feed = node
        .call(
            Method::PUT,
            &format!("{TRIGGERS}/fed"),
            Some(json!({"annotations": [{"key": "feed", "value": "a%b"}]})),
        )
        .await;
    assert_error(&feed, StatusCode::BAD_REQUEST, "Feed name is not valid");
    let big = "x".repeat(1024 * 1024);
    let too_big = node
        .call(
            Method::PUT,
            &format!("{TRIGGERS}/big"),
            Some(json!({"parameters": [{"key": "k", "value": big}]})),
        )
        .await;
    assert_error(
        &too_big,
        StatusCode::PAYLOAD_TOO_LARGE,
        "parameters larger than allowed: 1048579 > 1048576 bytes.",
    );
    let payload = serde_json::to_vec(&json!({ "k": big })).unwrap();
    let too_big_fire = node
        .send(
            Method::POST,
            &format!("{TRIGGERS}/t"),
            Some(GUEST_KEY),
            &[("content-type", "application/json")],
            payload.clone(),
        )
        .await;
    assert_error(
        &too_big_fire,
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "Request larger than allowed: {} > 1048576 bytes.",
            payload.len()
        ),
    );
    let not_json = node
        .send(
            Method::PUT,
            &format!("{TRIGGERS}/nj"),
            Some(GUEST_KEY),
            &[("content-type", "application/json")],
            b"[1]".to_vec(),
        )
        .await;
    assert_error(
        &not_json,
        StatusCode::BAD_REQUEST,
        "The request content was malformed:\nJSON object expected",
    );
    create_action(&node, "act", json!([])).await;
    let conformance = node
        .call(Method::GET, &format!("{TRIGGERS}/act"), None)
        .await;
    assert_error(&conformance, StatusCode::CONFLICT, CONFORMANCE);
    let conformance_put = node
        .call(
            Method::PUT,
            &format!("{TRIGGERS}/act?overwrite=true"),
            Some(json!({})),
        )
        .await;
    assert_error(&conformance_put, StatusCode::CONFLICT, CONFORMANCE);
    let theirs = node
        .call_as(
            OTHER_KEY,
            Method::GET,
            "/api/v1/namespaces/guest/triggers/t",
            None,
        )
        .await;
    assert_error(
        &theirs,
        StatusCode::FORBIDDEN,
        "The supplied authentication is not authorized to access 'guest/t'.",
    );
    let patch = node
        .call(Method::PATCH, &format!("{TRIGGERS}/t"), None)
        .await;
    assert_error(
        &patch,
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP method not allowed, supported methods: GET, PUT, DELETE, POST",
    );

    let deleted = node
        .call(Method::DELETE, &format!("{TRIGGERS}/t"), None)
        .await;
    ok(&deleted);
    assert_eq!(deleted.body["name"], "t");
    let gone = node
        .call(Method::DELETE, &format!("{TRIGGERS}/t"), None)
        .await;
    assert_error(&gone, StatusCode::NOT_FOUND, NOT_FOUND);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_rule_lifecycle_status_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    create_action(&node, "a", json!([])).await;
    create_trigger(&node, "t", json!({})).await;

    // Creation errors, in the controller's order.
    let no_action = node
        .call(
            Method::PUT,
            &format!("{RULES}/r"),
            Some(json!({"trigger": "/_/t"})),
        )
        .await;
    assert_error(
        &no_action,
        StatusCode::BAD_REQUEST,
        "rule requires a valid trigger and a valid action",
    );
    let no_trigger = node
        .call(
            Method::PUT,
            &format!("{RULES}/r"),
            Some(json!({"trigger": "/_/nope", "action": "/_/a"})),
        )
        .await;
    assert_error(
        &no_trigger,
        StatusCode::BAD_REQUEST,
        "trigger /guest/nope does not exist",
    );
    let missing_action = node
        .call(
            Method::PUT,
            &format!("{RULES}/r"),
            Some(json!({"trigger": "/_/t", "action": "/_/nope"})),
        )
        .await;
    assert_error(
        &missing_action,
        StatusCode::BAD_REQUEST,
        "action /guest/nope does not exist",
    );
    let short = node
        .call(
            Method::PUT,
            &format!("{RULES}/r"),
            Some(json!({"trigger": "t", "action": "/_/a"})),
        )
        .await;
    assert_error(
        &short,
        StatusCode::BAD_REQUEST,
        "The request content was malformed:\nrequirement failed: The fully qualified name of the entity must contain at least the namespace and the name of the entity.",
    );
    let foreign = node
        .call(
            Method::PUT,
            &format!("{RULES}/r"),
            Some(json!({"trigger": "/other/t", "action": "/_/a"})),
        )
        .await;
    assert_error(
        &foreign,
        StatusCode::FORBIDDEN,
        "The supplied authentication is not authorized to access 'other/t'.",
    );

    // Create: active, and recorded in the trigger.
    let created = create_rule(&node, "r", "t", "a").await;
    assert_eq!(
        created.body,
        json!({
            "namespace": "guest", "name": "r", "status": "active",
            "trigger": {"path": "guest", "name": "t"}, "action": {"path": "guest", "name": "a"},
            "version": "0.0.1", "publish": false, "annotations": [],
            "updated": created.body["updated"],
        })
    );
    let trigger = node.call(Method::GET, &format!("{TRIGGERS}/t"), None).await;
    assert_eq!(
        trigger.body["rules"],
        json!({"guest/r": {"action": {"path": "guest", "name": "a"}, "status": "active"}})
    );
    let again = node
        .call(
            Method::PUT,
            &format!("{RULES}/r"),
            Some(json!({"trigger": "/_/t", "action": "/_/a"})),
        )
        .await;
    assert_error(&again, StatusCode::CONFLICT, "resource already exists");

    // Disable, enable, and the status they leave.
    let disabled = set_status(&node, "r", "inactive").await;
    ok(&disabled);
    assert_eq!(disabled.text, "OK");
    let got = node.call(Method::GET, &format!("{RULES}/r"), None).await;
    assert_eq!(got.body["status"], "inactive");
    let trigger = node.call(Method::GET, &format!("{TRIGGERS}/t"), None).await;
    assert_eq!(trigger.body["rules"]["guest/r"]["status"], "inactive");
    ok(&set_status(&node, "r", "inactive").await);
    let bad_status = set_status(&node, "r", "on").await;
    assert_error(
        &bad_status,
        StatusCode::BAD_REQUEST,
        "The request content was malformed:\nrequirement failed: on is not a recognized rule state",
    );
    let updated = node
        .call(
            Method::PUT,
            &format!("{RULES}/r?overwrite=true"),
            Some(json!({"annotations": [{"key": "k", "value": 1}]})),
        )
        .await;
    ok(&updated);
    assert_eq!(updated.body["version"], "0.0.2");
    assert_eq!(
        updated.body["status"], "inactive",
        "an update keeps the status"
    );
    ok(&set_status(&node, "r", "active").await);
    let got = node.call(Method::GET, &format!("{RULES}/r"), None).await;
    assert_eq!(got.body["status"], "active");

    // A rule moved to another trigger leaves the old one.
    create_trigger(&node, "t2", json!({})).await;
    let moved = node
        .call(
            Method::PUT,
            &format!("{RULES}/r?overwrite=true"),
            Some(json!({"trigger": "/guest/t2"})),
        )
        .await;
    ok(&moved);
    assert_eq!(
        moved.body["trigger"],
        json!({"path": "guest", "name": "t2"})
    );
    assert_eq!(moved.body["status"], "active");
    let old = node.call(Method::GET, &format!("{TRIGGERS}/t"), None).await;
    assert_eq!(old.body["rules"], json!({}));
    let new = node
        .call(Method::GET, &format!("{TRIGGERS}/t2"), None)
        .await;
    assert_eq!(new.body["rules"]["guest/r"]["status"], "active");

    // Lists carry no status.
    let list = node.call(Method::GET, RULES, None).await;
    ok(&list);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(list.body[0]["name"], "r");
    assert!(list.body[0].get("status").is_none(), "{}", list.text);
    let count = node
        .call(Method::GET, &format!("{RULES}?count=true"), None)
        .await;
    assert_eq!(count.body, json!({"rules": 1}));

    // Delete: the trigger forgets it.
    let deleted = node.call(Method::DELETE, &format!("{RULES}/r"), None).await;
    ok(&deleted);
    assert_eq!(deleted.body["status"], "inactive");
    let t2 = node
        .call(Method::GET, &format!("{TRIGGERS}/t2"), None)
        .await;
    assert_eq!(t2.body["rules"], json!({}));
    let gone = node.call(Method::GET, &format!("{RULES}/r"), None).await;
    assert_error(&gone, StatusCode::NOT_FOUND, NOT_FOUND);
    let enable_gone = set_status(&node, "r", "active").await;
    assert_error(&enable_gone, StatusCode::NOT_FOUND, NOT_FOUND);

    // Deleting a trigger leaves its rules, which then read inactive and cannot be enabled.
    create_rule(&node, "orphan", "t", "a").await;
    ok(&node
        .call(Method::DELETE, &format!("{TRIGGERS}/t"), None)
        .await);
    let orphan = node
        .call(Method::GET, &format!("{RULES}/orphan"), None)
        .await;
    ok(&orphan);
    assert_eq!(orphan.body["status"], "inactive");
    let enable = set_status(&node, "orphan", "active").await;
    assert_error(
        &enable,
        StatusCode::NOT_FOUND,
        "Only rules with existing triggers can be activated",
    );
    let conformance = node.call(Method::GET, &format!("{RULES}/a"), None).await;
    assert_error(&conformance, StatusCode::CONFLICT, CONFORMANCE);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_firing_runs_only_active_rules_with_merged_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    create_action(&node, "a1", json!([{"key": "p", "value": "action"}])).await;
    create_action(&node, "a2", json!([])).await;
    create_trigger(
        &node,
        "t",
        json!({"parameters": [{"key": "x", "value": "trigger"}, {"key": "y", "value": "trigger"}]}),
    )
    .await;
    create_rule(&node, "r1", "t", "a1").await;
    create_rule(&node, "r2", "t", "a2").await;
    ok(&set_status(&node, "r2", "inactive").await);

    let fired = node
        .send(
            Method::POST,
            &format!("{TRIGGERS}/t"),
            Some(GUEST_KEY),
            &[("content-type", "application/json"), ("x-fired-by", "test")],
            br#"{"y":"payload","z":1}"#.to_vec(),
        )
        .await;
    assert_eq!(fired.status, StatusCode::ACCEPTED, "{}", fired.text);
    let id = fired.body["activationId"].as_str().unwrap().to_string();
    assert_eq!(fired.headers["x-openwhisk-activation-id"], id.as_str());

    // The trigger's record: the payload as result, one log line per rule.
    let record = wait_activation(&node, &id).await;
    assert_eq!(record["name"], "t");
    assert_eq!(record["namespace"], "guest");
    assert_eq!(record["end"], 0);
    assert_eq!(record["response"]["success"], true);
    assert_eq!(
        record["response"]["result"],
        json!({"y": "payload", "z": 1})
    );
    let logs = rule_logs(&record);
    assert_eq!(logs.len(), 2, "{logs:?}");
    let fired_id = logs[0]["activationId"].as_str().unwrap().to_string();
    assert_eq!(
        logs,
        vec![
            json!({"statusCode": 0, "success": true, "activationId": fired_id, "rule": "guest/r1", "action": "guest/a1"}),
            json!({"statusCode": 1, "success": false, "rule": "guest/r2", "action": "guest/a2",
                   "error": "Rule 'guest/r2' is inactive, action 'guest/a2' was not activated."}),
        ]
    );

    // The active rule's action ran with action < trigger < headers < payload, without a cause.
    let run = wait_activation(&node, &fired_id).await;
    assert_eq!(run["name"], "a1");
    assert!(run.get("cause").is_none(), "{run}");
    let result = &run["response"]["result"];
    assert_eq!(result["p"], "action");
    assert_eq!(result["x"], "trigger");
    assert_eq!(result["y"], "payload");
    assert_eq!(result["z"], 1);
    assert_eq!(result["__ow_headers"]["x-fired-by"], "test");
    assert!(result["__ow_headers"].get("content-type").is_none());
    assert_eq!(activations_of(&node, "a1").await.len(), 1);
    assert_eq!(activations_of(&node, "a2").await.len(), 0);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_firing_without_active_rules_and_with_a_missing_action() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    create_trigger(&node, "lonely", json!({})).await;
    let none = node
        .call(
            Method::POST,
            &format!("{TRIGGERS}/lonely"),
            Some(json!({"a": 1})),
        )
        .await;
    assert_eq!(none.status, StatusCode::NO_CONTENT, "{}", none.text);
    assert!(none.text.is_empty());
    assert_eq!(activations_of(&node, "lonely").await.len(), 0);

    create_action(&node, "a", json!([])).await;
    create_trigger(&node, "t", json!({})).await;
    create_rule(&node, "r", "t", "a").await;
    ok(&set_status(&node, "r", "inactive").await);
    let inactive = node
        .call(Method::POST, &format!("{TRIGGERS}/t"), None)
        .await;
    assert_eq!(inactive.status, StatusCode::NO_CONTENT, "{}", inactive.text);
    assert_eq!(activations_of(&node, "t").await.len(), 0);

    ok(&set_status(&node, "r", "active").await);
    ok(&node
        .call(Method::DELETE, "/api/v1/namespaces/_/actions/a", None)
        .await);
    let fired = node
        .call(Method::POST, &format!("{TRIGGERS}/t"), None)
        .await;
    assert_eq!(fired.status, StatusCode::ACCEPTED, "{}", fired.text);
    let record = wait_activation(&node, fired.body["activationId"].as_str().unwrap()).await;
    assert_eq!(record["response"]["result"], json!({}));
    assert_eq!(
        rule_logs(&record),
        vec![
            json!({"statusCode": 1, "success": false, "error": NOT_FOUND,
                    "rule": "guest/r", "action": "guest/a"})
        ]
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_rules_fire_actions_in_packages_and_through_bindings() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let package = json!({"parameters": [{"key": "from", "value": "package"}]});
    ok(&node
        .call(
            Method::PUT,
            "/api/v1/namespaces/_/packages/pkg",
            Some(package),
        )
        .await);
    let binding = json!({"binding": {"namespace": "_", "name": "pkg"},
                         "parameters": [{"key": "from", "value": "binding"}]});
    ok(&node
        .call(
            Method::PUT,
            "/api/v1/namespaces/_/packages/bound",
            Some(binding),
        )
        .await);
    create_action(&node, "pkg/echo", json!([])).await;
    create_trigger(&node, "t", json!({})).await;
    create_rule(&node, "via-pkg", "t", "pkg/echo").await;
    create_rule(&node, "via-binding", "t", "bound/echo").await;
    // Rules share the namespace's names with packages, actions and triggers.
    let taken = node
        .call(
            Method::PUT,
            &format!("{RULES}/pkg"),
            Some(json!({"trigger": "/_/t", "action": "/_/pkg/echo"})),
        )
        .await;
    assert_error(&taken, StatusCode::CONFLICT, CONFORMANCE);
    let missing = node
        .call(
            Method::PUT,
            &format!("{RULES}/nope"),
            Some(json!({"trigger": "/_/t", "action": "/_/nopkg/echo"})),
        )
        .await;
    assert_error(
        &missing,
        StatusCode::BAD_REQUEST,
        "action /guest/nopkg/echo does not exist",
    );

    let fired = node
        .call(
            Method::POST,
            &format!("{TRIGGERS}/t"),
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(fired.status, StatusCode::ACCEPTED, "{}", fired.text);
    let record = wait_activation(&node, fired.body["activationId"].as_str().unwrap()).await;
    let logs = rule_logs(&record);
    assert_eq!(logs.len(), 2, "{logs:?}");
    for (entry, (rule, action, from)) in logs.iter().zip([
        ("guest/via-binding", "guest/bound/echo", "binding"),
        ("guest/via-pkg", "guest/pkg/echo", "package"),
    ]) {
        assert_eq!(entry["rule"], rule);
        assert_eq!(entry["action"], action);
        assert_eq!(entry["success"], true, "{entry}");
        let run = wait_activation(&node, entry["activationId"].as_str().unwrap()).await;
        assert_eq!(run["response"]["result"]["from"], from, "{run}");
        assert_eq!(run["response"]["result"]["n"], 1);
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_rule_fires_a_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    create_action(&node, "first", json!([{"key": "step", "value": "first"}])).await;
    create_action(&node, "second", json!([])).await;
    let sequence = json!({"exec": {"kind": "sequence", "components": ["/_/first", "/_/second"]}});
    ok(&node
        .call(
            Method::PUT,
            "/api/v1/namespaces/_/actions/both",
            Some(sequence),
        )
        .await);
    create_trigger(&node, "t", json!({})).await;
    create_rule(&node, "r", "t", "both").await;
    let fired = node
        .call(
            Method::POST,
            &format!("{TRIGGERS}/t"),
            Some(json!({"n": 2})),
        )
        .await;
    assert_eq!(fired.status, StatusCode::ACCEPTED, "{}", fired.text);
    let record = wait_activation(&node, fired.body["activationId"].as_str().unwrap()).await;
    let logs = rule_logs(&record);
    assert_eq!(logs[0]["success"], true, "{logs:?}");
    let run = wait_activation(&node, logs[0]["activationId"].as_str().unwrap()).await;
    assert_eq!(run["name"], "both");
    assert!(run.get("cause").is_none(), "{run}");
    // The sequence record's result is its last component's: the first's output, passed on.
    assert_eq!(run["response"]["result"]["step"], "first", "{run}");
    assert_eq!(run["response"]["result"]["n"], 2, "{run}");
    assert_eq!(run["logs"].as_array().map(Vec::len), Some(2), "{run}");
    node.stop().await;
}
