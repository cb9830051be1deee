//! Namespaces, packages, bindings and actions in packages on the standalone server, over real HTTP
//! with the real wasm factory, pool, processor and local store: every route's success, and every
//! error with the controller's status and text, for the caller's own namespace and for another's.

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

async fn start(dir: &std::path::Path) -> Node {
    let subjects = Subjects::new([
        (GUEST_KEY.to_string(), "guest".to_string()),
        (OTHER_KEY.to_string(), "other".to_string()),
    ])
    .unwrap();
    Node::start_with(dir, subjects).await
}

async fn guest(node: &Node, method: Method, path: &str, body: Option<Value>) -> Reply {
    node.call_as(GUEST_KEY, method, path, body).await
}

async fn other(node: &Node, method: Method, path: &str, body: Option<Value>) -> Reply {
    node.call_as(OTHER_KEY, method, path, body).await
}

fn ok(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

fn echo(parameters: Value) -> Value {
    json!({"exec": {"kind": "wasm:wasip1", "code": wasm_base64("echo")}, "parameters": parameters})
}

fn not_authorized(resource: &str) -> String {
    format!("The supplied authentication is not authorized to access '{resource}'.")
}

const NOT_FOUND: &str = "The requested resource does not exist.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_namespaces_list_the_callers_own() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let mine = guest(&node, Method::GET, "/api/v1/namespaces", None).await;
    ok(&mine);
    assert_eq!(mine.body, json!(["guest"]));
    let theirs = other(&node, Method::GET, "/api/v1/namespaces", None).await;
    assert_eq!(theirs.body, json!(["other"]));
    let refused = guest(&node, Method::POST, "/api/v1/namespaces", None).await;
    assert_error(
        &refused,
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP method not allowed, supported methods: GET",
    );
    let anonymous = node
        .call_as("nobody:secret", Method::GET, "/api/v1/namespaces", None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_package_lifecycle_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let path = "/api/v1/namespaces/_/packages/tools";

    let created = guest(
        &node,
        Method::PUT,
        path,
        Some(json!({"parameters": [{"key": "a", "value": 1}], "annotations": [{"key": "description", "value": "d"}, {"key": "binding", "value": "forged"}]})),
    )
    .await;
    ok(&created);
    assert_eq!(created.body["namespace"], "guest");
    assert_eq!(created.body["name"], "tools");
    assert_eq!(created.body["binding"], json!({}));
    assert_eq!(created.body["version"], "0.0.1");
    assert_eq!(created.body["publish"], false);
    assert_eq!(
        created.body["parameters"],
        json!([{"key": "a", "value": 1}])
    );
    // A `binding` annotation is the controller's own: a PUT cannot set one.
    assert_eq!(
        created.body["annotations"],
        json!([{"key": "description", "value": "d"}])
    );

    let again = guest(&node, Method::PUT, path, Some(json!({}))).await;
    assert_error(&again, StatusCode::CONFLICT, "resource already exists");

    let updated = guest(
        &node,
        Method::PUT,
        &format!("{path}?overwrite=true"),
        Some(json!({"parameters": [{"key": "b", "value": 2}], "publish": true})),
    )
    .await;
    ok(&updated);
    assert_eq!(updated.body["version"], "0.0.2");
    assert_eq!(updated.body["publish"], true);
    assert_eq!(
        updated.body["parameters"],
        json!([{"key": "b", "value": 2}])
    );
    assert_eq!(
        updated.body["annotations"],
        json!([{"key": "description", "value": "d"}])
    );

    let got = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/guest/packages/tools",
        None,
    )
    .await;
    ok(&got);
    assert_eq!(got.body["actions"], json!([]));
    assert_eq!(got.body["feeds"], json!([]));
    assert_eq!(got.body["parameters"], json!([{"key": "b", "value": 2}]));

    for name in ["second", "third"] {
        let reply = guest(
            &node,
            Method::PUT,
            &format!("/api/v1/namespaces/_/packages/{name}"),
            Some(json!({})),
        )
        .await;
        ok(&reply);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let list = guest(&node, Method::GET, "/api/v1/namespaces/_/packages", None).await;
    ok(&list);
    let names: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["third", "second", "tools"]);
    assert_eq!(list.body[2]["binding"], false);
    assert!(list.body[2].get("parameters").is_none());
    let page = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/_/packages?skip=1&limit=1",
        None,
    )
    .await;
    assert_eq!(page.body.as_array().unwrap().len(), 1);
    assert_eq!(page.body[0]["name"], "second");
    let count = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/_/packages?count=true",
        None,
    )
    .await;
    assert_eq!(count.body, json!({"packages": 3}));
    let bad_limit = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/_/packages?limit=x",
        None,
    )
    .await;
    assert_eq!(
        bad_limit.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_limit.text
    );

    let reserved = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/default",
        Some(json!({})),
    )
    .await;
    assert_error(
        &reserved,
        StatusCode::BAD_REQUEST,
        "Package name 'default' is reserved.",
    );
    let bad_name = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/-bad",
        Some(json!({})),
    )
    .await;
    assert_error(
        &bad_name,
        StatusCode::BAD_REQUEST,
        "The name of the entity contains illegal characters.",
    );
    let bad_parameters = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/p",
        Some(json!({"parameters": {"a": 1}})),
    )
    .await;
    assert_eq!(bad_parameters.status, StatusCode::BAD_REQUEST);
    let posted = guest(&node, Method::POST, path, Some(json!({}))).await;
    assert_error(
        &posted,
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP method not allowed, supported methods: GET, PUT, DELETE",
    );

    // An action's name is not a package's.
    let action = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/actions/act",
        Some(echo(json!([]))),
    )
    .await;
    ok(&action);
    let conformance = "Resource by this name exists but is not in this collection.";
    for method in [Method::GET, Method::DELETE] {
        let reply = guest(&node, method, "/api/v1/namespaces/_/packages/act", None).await;
        assert_error(&reply, StatusCode::CONFLICT, conformance);
    }

    let deleted = guest(&node, Method::DELETE, path, None).await;
    ok(&deleted);
    assert_eq!(deleted.body["name"], "tools");
    for method in [Method::GET, Method::DELETE] {
        let reply = guest(&node, method, path, None).await;
        assert_error(&reply, StatusCode::NOT_FOUND, NOT_FOUND);
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_actions_in_packages() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let package = "/api/v1/namespaces/_/packages/util";
    ok(&guest(
        &node,
        Method::PUT,
        package,
        Some(json!({"parameters": [{"key": "a", "value": 1}, {"key": "b", "value": 2}]})),
    )
    .await);

    let missing = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/actions/nopkg/echo",
        Some(echo(json!([]))),
    )
    .await;
    assert_error(&missing, StatusCode::NOT_FOUND, NOT_FOUND);

    let action = "/api/v1/namespaces/_/actions/util/echo";
    let created = guest(
        &node,
        Method::PUT,
        action,
        Some(echo(json!([{"key": "b", "value": 3}]))),
    )
    .await;
    ok(&created);
    assert_eq!(created.body["namespace"], "guest/util");
    assert_eq!(
        created.body["parameters"],
        json!([{"key": "b", "value": 3}])
    );
    let again = guest(&node, Method::PUT, action, Some(echo(json!([])))).await;
    assert_error(&again, StatusCode::CONFLICT, "resource already exists");

    // Reads merge the package's parameters under the action's.
    let got = guest(&node, Method::GET, &format!("{action}?code=false"), None).await;
    ok(&got);
    assert_eq!(got.body["namespace"], "guest/util");
    assert_eq!(
        got.body["parameters"],
        json!([{"key": "a", "value": 1}, {"key": "b", "value": 3}])
    );
    // The action is in the package, not at the top of the namespace.
    let listed = guest(&node, Method::GET, "/api/v1/namespaces/_/actions", None).await;
    assert_eq!(listed.body, json!([]));
    let top = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/_/actions/echo",
        None,
    )
    .await;
    assert_error(&top, StatusCode::NOT_FOUND, NOT_FOUND);

    let shown = guest(&node, Method::GET, package, None).await;
    ok(&shown);
    assert_eq!(shown.body["actions"].as_array().unwrap().len(), 1);
    assert_eq!(shown.body["actions"][0]["name"], "echo");
    assert_eq!(shown.body["actions"][0]["version"], "0.0.1");
    assert_eq!(shown.body["feeds"], json!([]));

    // Invokes: package < action < payload.
    let result = guest(
        &node,
        Method::POST,
        &format!("{action}?blocking=true&result=true"),
        Some(json!({"c": 4})),
    )
    .await;
    ok(&result);
    assert_eq!(result.body, json!({"a": 1, "b": 3, "c": 4}));
    let full = guest(
        &node,
        Method::POST,
        &format!("{action}?blocking=true"),
        Some(json!({})),
    )
    .await;
    ok(&full);
    let path = full.body["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "path")
        .map(|a| a["value"].clone());
    assert_eq!(path, Some(json!("guest/util/echo")));
    let queued = guest(&node, Method::POST, action, Some(json!({"c": 5}))).await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{}", queued.text);
    let id = queued.body["activationId"].as_str().unwrap().to_string();
    let record = wait_for_activation(&node, &id).await;
    assert_eq!(
        record["response"]["result"],
        json!({"a": 1, "b": 3, "c": 5})
    );

    // A package holding an action is not deleted unless forced.
    let refused = guest(&node, Method::DELETE, package, None).await;
    assert_error(
        &refused,
        StatusCode::CONFLICT,
        "Package not empty (contains 1 entity). Set force param or delete package contents.",
    );
    ok(&guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/actions/util/second",
        Some(echo(json!([]))),
    )
    .await);
    let refused = guest(&node, Method::DELETE, package, None).await;
    assert_error(
        &refused,
        StatusCode::CONFLICT,
        "Package not empty (contains 2 entities). Set force param or delete package contents.",
    );
    let deleted = guest(&node, Method::DELETE, action, None).await;
    ok(&deleted);
    assert_eq!(deleted.body["namespace"], "guest/util");
    let gone = guest(&node, Method::GET, action, None).await;
    assert_error(&gone, StatusCode::NOT_FOUND, NOT_FOUND);
    let forced = guest(
        &node,
        Method::DELETE,
        &format!("{package}?force=true"),
        None,
    )
    .await;
    ok(&forced);
    let second = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/_/actions/util/second",
        None,
    )
    .await;
    assert_error(&second, StatusCode::NOT_FOUND, NOT_FOUND);
    node.stop().await;
}

async fn wait_for_activation(node: &Node, id: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let reply = guest(
            node,
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
async fn test_bindings() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    ok(&guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/lib",
        Some(json!({"parameters": [{"key": "a", "value": 1}, {"key": "b", "value": 2}]})),
    )
    .await);
    ok(&guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/actions/lib/echo",
        Some(echo(json!([{"key": "c", "value": 3}]))),
    )
    .await);
    ok(&guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/actions/plain",
        Some(echo(json!([]))),
    )
    .await);

    let to_missing = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/bound",
        Some(json!({"binding": {"namespace": "_", "name": "nothing"}})),
    )
    .await;
    assert_error(
        &to_missing,
        StatusCode::BAD_REQUEST,
        "Binding references a package that does not exist.",
    );
    let to_action = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/bound",
        Some(json!({"binding": {"namespace": "guest", "name": "plain"}})),
    )
    .await;
    assert_error(
        &to_action,
        StatusCode::CONFLICT,
        "Cannot bind to a resource that is not a package.",
    );

    let bound = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/bound",
        Some(json!({"binding": {"namespace": "_", "name": "lib"}, "parameters": [{"key": "b", "value": 4}, {"key": "d", "value": 5}]})),
    )
    .await;
    ok(&bound);
    assert_eq!(
        bound.body["binding"],
        json!({"namespace": "guest", "name": "lib"})
    );
    assert_eq!(
        bound.body["annotations"],
        json!([{"key": "binding", "value": {"namespace": "guest", "name": "lib"}}])
    );

    // A binding reads as itself, with its package's parameters under its own and its actions.
    let got = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/_/packages/bound",
        None,
    )
    .await;
    ok(&got);
    assert_eq!(got.body["name"], "bound");
    assert_eq!(
        got.body["binding"],
        json!({"namespace": "guest", "name": "lib"})
    );
    assert_eq!(
        got.body["parameters"],
        json!([{"key": "a", "value": 1}, {"key": "b", "value": 4}, {"key": "d", "value": 5}])
    );
    assert_eq!(got.body["actions"][0]["name"], "echo");
    let listed = guest(&node, Method::GET, "/api/v1/namespaces/_/packages", None).await;
    let entry = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "bound")
        .cloned()
        .unwrap();
    assert_eq!(
        entry["binding"],
        json!({"namespace": "guest", "name": "lib"})
    );

    let to_binding = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/twice",
        Some(json!({"binding": {"namespace": "_", "name": "bound"}})),
    )
    .await;
    assert_error(
        &to_binding,
        StatusCode::BAD_REQUEST,
        "Cannot bind to another package binding.",
    );
    let convert = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/lib?overwrite=true",
        Some(json!({"binding": {"namespace": "_", "name": "bound"}})),
    )
    .await;
    assert_error(
        &convert,
        StatusCode::BAD_REQUEST,
        "Cannot bind to another package binding.",
    );
    ok(&guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/other-lib",
        Some(json!({})),
    )
    .await);
    let convert = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/lib?overwrite=true",
        Some(json!({"binding": {"namespace": "_", "name": "other-lib"}})),
    )
    .await;
    assert_error(
        &convert,
        StatusCode::CONFLICT,
        "Resource is a package and cannot be converted into a binding.",
    );
    let malformed = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/broken",
        Some(json!({"binding": "lib"})),
    )
    .await;
    assert_eq!(
        malformed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        malformed.text
    );

    // A binding holds no actions of its own.
    for method in [Method::PUT, Method::DELETE] {
        let reply = guest(
            &node,
            method,
            "/api/v1/namespaces/_/actions/bound/echo",
            Some(echo(json!([]))),
        )
        .await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "Operation not permitted on package binding.",
        );
    }

    // Through the binding: package < binding < action < payload.
    let action = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/_/actions/bound/echo?code=false",
        None,
    )
    .await;
    ok(&action);
    assert_eq!(action.body["namespace"], "guest/lib");
    let result = guest(
        &node,
        Method::POST,
        "/api/v1/namespaces/_/actions/bound/echo?blocking=true&result=true",
        Some(json!({"d": 6})),
    )
    .await;
    ok(&result);
    assert_eq!(result.body, json!({"a": 1, "b": 4, "c": 3, "d": 6}));
    let full = guest(
        &node,
        Method::POST,
        "/api/v1/namespaces/_/actions/bound/echo?blocking=true",
        Some(json!({})),
    )
    .await;
    ok(&full);
    let annotation = |key: &str| {
        full.body["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| a["value"].clone())
    };
    assert_eq!(annotation("path"), Some(json!("guest/lib/echo")));
    assert_eq!(annotation("binding"), Some(json!("guest/bound")));
    let missing = guest(
        &node,
        Method::POST,
        "/api/v1/namespaces/_/actions/bound/nothing?blocking=true",
        Some(json!({})),
    )
    .await;
    assert_error(&missing, StatusCode::NOT_FOUND, NOT_FOUND);

    // A binding goes even while its package holds actions.
    ok(&guest(
        &node,
        Method::DELETE,
        "/api/v1/namespaces/_/packages/bound",
        None,
    )
    .await);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_other_namespaces_packages() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    // `other` owns a private and a published package, each with an action.
    for (name, publish) in [("private", false), ("public", true)] {
        ok(&other(
            &node,
            Method::PUT,
            &format!("/api/v1/namespaces/_/packages/{name}"),
            Some(json!({"publish": publish, "parameters": [{"key": "a", "value": name}]})),
        )
        .await);
        ok(&other(
            &node,
            Method::PUT,
            &format!("/api/v1/namespaces/_/actions/{name}/echo"),
            Some(echo(json!([]))),
        )
        .await);
    }

    // Reads: a published package is anyone's; a private or missing one is 403 alike.
    let public = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/other/packages/public",
        None,
    )
    .await;
    ok(&public);
    assert_eq!(public.body["actions"][0]["name"], "echo");
    for name in ["private", "missing"] {
        let reply = guest(
            &node,
            Method::GET,
            &format!("/api/v1/namespaces/other/packages/{name}"),
            None,
        )
        .await;
        assert_error(
            &reply,
            StatusCode::FORBIDDEN,
            &not_authorized(&format!("other/{name}")),
        );
    }
    let listed = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/other/packages",
        None,
    )
    .await;
    ok(&listed);
    let names: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["public"]);
    let own_list = other(&node, Method::GET, "/api/v1/namespaces/_/packages", None).await;
    assert_eq!(own_list.body.as_array().unwrap().len(), 2);
    // A published binding is not listed for others either.
    ok(&other(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/alias",
        Some(json!({"binding": {"namespace": "_", "name": "public"}, "publish": true})),
    )
    .await);
    let listed = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/other/packages",
        None,
    )
    .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "{}", listed.text);
    let alias = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/other/packages/alias",
        None,
    )
    .await;
    assert_error(
        &alias,
        StatusCode::FORBIDDEN,
        &not_authorized("other/alias"),
    );

    // Writes into another namespace are refused, published or not.
    for method in [Method::PUT, Method::DELETE] {
        let reply = guest(
            &node,
            method.clone(),
            "/api/v1/namespaces/other/packages/public",
            Some(json!({})),
        )
        .await;
        assert_error(
            &reply,
            StatusCode::FORBIDDEN,
            &not_authorized("other/public"),
        );
        let reply = guest(
            &node,
            method,
            "/api/v1/namespaces/other/actions/public/echo",
            Some(echo(json!([]))),
        )
        .await;
        assert_error(
            &reply,
            StatusCode::FORBIDDEN,
            &not_authorized("other/public/echo"),
        );
    }

    // Invokes: a published package's action runs with its parameters; a private one's is 403.
    let result = guest(
        &node,
        Method::POST,
        "/api/v1/namespaces/other/actions/public/echo?blocking=true&result=true",
        Some(json!({"b": 2})),
    )
    .await;
    ok(&result);
    assert_eq!(result.body, json!({"a": "public", "b": 2}));
    let private = guest(
        &node,
        Method::POST,
        "/api/v1/namespaces/other/actions/private/echo?blocking=true",
        Some(json!({})),
    )
    .await;
    assert_error(
        &private,
        StatusCode::FORBIDDEN,
        &not_authorized("other/private/echo"),
    );

    // Bindings: to a published package of another namespace, yes; to a private one, 403.
    let refused = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/mine",
        Some(json!({"binding": {"namespace": "other", "name": "private"}})),
    )
    .await;
    assert_error(
        &refused,
        StatusCode::FORBIDDEN,
        &not_authorized("other/private"),
    );
    let bound = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/mine",
        Some(json!({"binding": {"namespace": "other", "name": "public"}, "parameters": [{"key": "c", "value": 3}]})),
    )
    .await;
    ok(&bound);
    let result = guest(
        &node,
        Method::POST,
        "/api/v1/namespaces/_/actions/mine/echo?blocking=true&result=true",
        Some(json!({})),
    )
    .await;
    ok(&result);
    assert_eq!(result.body, json!({"a": "public", "c": 3}));
    // Another namespace's binding is not readable, even of a published package.
    let theirs = other(
        &node,
        Method::GET,
        "/api/v1/namespaces/guest/packages/mine",
        None,
    )
    .await;
    assert_error(
        &theirs,
        StatusCode::FORBIDDEN,
        &not_authorized("guest/mine"),
    );
    // Once the package is private, the binding no longer reads.
    ok(&other(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/public?overwrite=true",
        Some(json!({"publish": false})),
    )
    .await);
    let hidden = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/_/packages/mine",
        None,
    )
    .await;
    assert_error(
        &hidden,
        StatusCode::FORBIDDEN,
        &not_authorized("guest/mine"),
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_package_names_and_sizes_obeyed_and_violated() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    // 256 characters is the controller's limit, for packages, actions in them and top-level
    // actions alike (the local store shortens file names too long for the file system).
    let longest = format!("p{}", "x".repeat(255));
    let stored = guest(
        &node,
        Method::PUT,
        &format!("/api/v1/namespaces/_/packages/{longest}"),
        Some(json!({})),
    )
    .await;
    ok(&stored);
    let action = echo(json!([]));
    for path in [
        format!("/api/v1/namespaces/_/actions/{longest}/{longest}"),
        format!("/api/v1/namespaces/_/actions/a{}", &longest[1..]),
    ] {
        ok(&guest(&node, Method::PUT, &path, Some(action.clone())).await);
        let read = guest(&node, Method::GET, &path, None).await;
        ok(&read);
        assert_eq!(read.body["name"].as_str().map(str::len), Some(256));
    }
    // A top-level action cannot take a package's name, nor be read or deleted through it.
    let taken = format!("/api/v1/namespaces/_/actions/{longest}");
    for (method, body) in [
        (Method::PUT, Some(action.clone())),
        (Method::GET, None),
        (Method::DELETE, None),
    ] {
        assert_error(
            &guest(&node, method, &taken, body).await,
            StatusCode::CONFLICT,
            "Resource by this name exists but is not in this collection.",
        );
    }
    let listed = guest(
        &node,
        Method::GET,
        &format!("/api/v1/namespaces/_/packages/{longest}"),
        None,
    )
    .await;
    assert_eq!(
        listed.body["actions"][0]["name"],
        json!(longest),
        "{:?}",
        listed.body
    );
    let too_long = guest(
        &node,
        Method::PUT,
        &format!("/api/v1/namespaces/_/packages/{longest}x"),
        Some(json!({})),
    )
    .await;
    assert_error(
        &too_long,
        StatusCode::BAD_REQUEST,
        "Name segement longer than allowed: 257 > 256.",
    );
    let in_package = guest(
        &node,
        Method::GET,
        &format!("/api/v1/namespaces/_/actions/{longest}/-bad"),
        None,
    )
    .await;
    assert_error(
        &in_package,
        StatusCode::BAD_REQUEST,
        "The name of the entity contains illegal characters.",
    );

    // Parameters and annotations: at most 1 MiB each, as for actions.
    let limit = 1024 * 1024;
    let fits = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/params",
        Some(json!({"parameters": [{"key": "k", "value": "v".repeat(limit - 1 - 2)}]})),
    )
    .await;
    ok(&fits);
    let over = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/params2",
        Some(json!({"parameters": [{"key": "k", "value": "v".repeat(limit - 2)}]})),
    )
    .await;
    assert_error(
        &over,
        StatusCode::PAYLOAD_TOO_LARGE,
        "parameters larger than allowed: 1048577 > 1048576 bytes.",
    );
    let annotations = guest(
        &node,
        Method::PUT,
        "/api/v1/namespaces/_/packages/params3",
        Some(json!({"annotations": [{"key": "k", "value": "v".repeat(limit)}]})),
    )
    .await;
    assert_error(
        &annotations,
        StatusCode::PAYLOAD_TOO_LARGE,
        "annotations larger than allowed: 1048579 > 1048576 bytes.",
    );
    let missing = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/_/packages/params2",
        None,
    )
    .await;
    assert_error(&missing, StatusCode::NOT_FOUND, NOT_FOUND);
    let deep = guest(
        &node,
        Method::GET,
        "/api/v1/namespaces/_/packages/a/b",
        None,
    )
    .await;
    assert_error(
        &deep,
        StatusCode::NOT_FOUND,
        "The requested resource could not be found.",
    );
    node.stop().await;
}
