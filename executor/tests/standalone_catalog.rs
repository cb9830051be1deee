//! The standalone server's catalog, `/whisk.system/utils`, over real HTTP with the real wasm
//! factory, pool, processor and local store: installed at first start, public to every namespace,
//! each utility answering what OpenWhisk's Node.js original (`apache/openwhisk-catalog`,
//! `packages/utils/*.js`) answers, and restarts that leave it alone unless it was changed.

#[path = "support/standalone.rs"]
#[allow(
    dead_code,
    reason = "the shared support module has more than these cases use"
)]
mod standalone;

use executor::standalone::auth::{GUEST_KEY, Subjects};
use executor::standalone::catalog;
use executor::standalone::{Standalone, StandaloneConfig};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use standalone::{Node, Reply, wasm_base64, wasm_factory};

/// A key for namespace `whisk.system` (OpenWhisk's system key is not a default subject here).
const SYSTEM_KEY: &str = "789c46b1-71f6-4ed5-8c54-816aa4f8c502:abczO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
/// A key for namespace `other`.
const OTHER_KEY: &str =
    "0b4e3e8a-2c6d-4b8e-9a51-6f3a7d1c2e90:OtherSecretOtherSecretOtherSecretOtherSecretOtherSecret";

/// The catalog's actions, sorted.
const UTILITIES: [&str; 7] = ["cat", "date", "echo", "head", "namespace", "sort", "split"];

async fn start(dir: &std::path::Path) -> Node {
    let subjects = Subjects::new([
        (GUEST_KEY.to_string(), "guest".to_string()),
        (OTHER_KEY.to_string(), "other".to_string()),
        (SYSTEM_KEY.to_string(), "whisk.system".to_string()),
    ])
    .unwrap();
    Node::start_with(dir, subjects).await
}

fn ok(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

/// Invokes `/whisk.system/utils/<name>` blocking as the holder of `key` and returns the reply
/// (its body the result).
async fn invoke_as(node: &Node, key: &str, name: &str, params: Value) -> Reply {
    node.call_as(
        key,
        Method::POST,
        &format!("/api/v1/namespaces/whisk.system/actions/utils/{name}?blocking=true&result=true"),
        Some(params),
    )
    .await
}

/// The result of `/whisk.system/utils/<name>` invoked by the guest with `params`.
async fn result(node: &Node, name: &str, params: Value) -> Value {
    let reply = invoke_as(node, GUEST_KEY, name, params).await;
    ok(&reply);
    reply.body
}

/// The `updated` time of every catalog document (package first), as the API shows them.
async fn updated_times(node: &Node) -> Vec<Value> {
    let package = node
        .call(
            Method::GET,
            "/api/v1/namespaces/whisk.system/packages/utils",
            None,
        )
        .await;
    ok(&package);
    let mut times = vec![package.body["updated"].clone()];
    for name in UTILITIES {
        let action = node
            .call(
                Method::GET,
                &format!("/api/v1/namespaces/whisk.system/actions/utils/{name}?code=false"),
                None,
            )
            .await;
        ok(&action);
        times.push(action.body["updated"].clone());
    }
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_each_utility_answers_as_the_catalogs_js_action() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let lines = json!(["seven", "eight", "nine"]);

    // The catalog's own samples (manifest.yaml) and tests (UtilsTests.scala).
    let echo = json!({"payload": "Five fuzzy felines"});
    assert_eq!(result(&node, "echo", echo.clone()).await, echo);
    assert_eq!(result(&node, "echo", json!({})).await, json!({}));
    assert_eq!(
        result(&node, "cat", json!({"lines": lines})).await,
        json!({"lines": lines, "payload": "seven\neight\nnine"})
    );
    assert_eq!(
        result(&node, "cat", json!({"lines": [4, 2, 3]})).await,
        json!({"lines": [4, 2, 3], "payload": "4\n2\n3"})
    );
    assert_eq!(
        result(&node, "sort", json!({"lines": lines})).await,
        json!({"lines": ["eight", "nine", "seven"], "length": 3})
    );
    assert_eq!(
        result(&node, "sort", json!({"lines": [4, 2, 3]})).await,
        json!({"lines": [2, 3, 4], "length": 3})
    );
    assert_eq!(
        result(&node, "head", json!({"lines": lines, "num": 2})).await,
        json!({"lines": ["seven", "eight"], "num": 2})
    );
    assert_eq!(
        result(&node, "head", json!({"lines": [4, 2, 3], "num": 2})).await,
        json!({"lines": [4, 2], "num": 2})
    );
    assert_eq!(
        result(
            &node,
            "split",
            json!({"payload": "seven,eight,nine", "separator": ","})
        )
        .await,
        json!({"lines": lines, "payload": "seven,eight,nine"})
    );
    assert_eq!(
        result(&node, "namespace", json!({})).await,
        json!({"namespace": "guest"})
    );

    // JavaScript's defaults and conversions, as the .js files apply them.
    assert_eq!(
        result(&node, "cat", json!({})).await,
        json!({"lines": [], "payload": ""})
    );
    assert_eq!(
        result(
            &node,
            "cat",
            json!({"lines": [1.5, true, null, 1e21, [1, 2]]})
        )
        .await,
        json!({"lines": [1.5, true, null, 1e21, [1, 2]], "payload": "1.5\ntrue\n\n1e+21\n1,2"})
    );
    // Numbers as `Number.prototype.toString` prints them.
    assert_eq!(
        result(
            &node,
            "cat",
            json!({"lines": [0.000001, 1e-7, 1.5e300, 100, -2.5]})
        )
        .await["payload"],
        "0.000001\n1e-7\n1.5e+300\n100\n-2.5"
    );
    // `Array.prototype.sort` compares strings, so 10 sorts before 9; it is stable.
    assert_eq!(
        result(&node, "sort", json!({"lines": [10, 9, 1, "b", "B", "a"]})).await,
        json!({"lines": [1, 10, 9, "B", "a", "b"], "length": 6})
    );
    assert_eq!(
        result(&node, "head", json!({"lines": lines})).await,
        json!({"lines": ["seven"], "num": 1})
    );
    assert_eq!(
        result(&node, "head", json!({"lines": lines, "num": -1})).await,
        json!({"lines": ["seven", "eight"], "num": -1})
    );
    assert_eq!(
        result(&node, "head", json!({"lines": lines, "num": "2"})).await,
        json!({"lines": ["seven", "eight"], "num": "2"})
    );
    assert_eq!(
        result(&node, "head", json!({"lines": "abc", "num": 2})).await,
        json!({"lines": "ab", "num": 2})
    );
    assert_eq!(
        result(&node, "split", json!({"payload": "a\r\nb\nc\r"})).await,
        json!({"lines": ["a", "b", "c\r"], "payload": "a\r\nb\nc\r"})
    );
    assert_eq!(
        result(&node, "split", json!({"payload": 1234, "separator": 3})).await,
        json!({"lines": ["12", "4"], "payload": 1234})
    );

    // What the .js files throw is the action's error.
    for (name, params, error) in [
        (
            "split",
            json!({}),
            "An error has occurred: TypeError: Cannot read properties of undefined (reading 'toString')",
        ),
        (
            "sort",
            json!({"lines": "abc"}),
            "An error has occurred: TypeError: lines.sort is not a function",
        ),
        (
            "cat",
            json!({"lines": {"a": 1}}),
            "An error has occurred: TypeError: lines.join is not a function",
        ),
    ] {
        let reply = invoke_as(&node, GUEST_KEY, name, params).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text);
        assert_eq!(reply.body, json!({"error": error}));
    }

    // `date`: now, as `Date.prototype.toISOString` prints it.
    let date = result(&node, "date", json!({})).await;
    let date = date["date"].as_str().expect("date is a string");
    let parsed = time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{date} is not RFC 3339: {e}"));
    assert_eq!(date.len(), "2016-03-22T00:59:55.961Z".len(), "{date}");
    assert!(date.ends_with('Z'), "{date}");
    let age = time::OffsetDateTime::now_utc() - parsed;
    assert!(
        age.whole_hours().abs() < 24,
        "{date} is not today's date and time"
    );

    // `namespace` is the invoker's, not the package's.
    let other = invoke_as(&node, OTHER_KEY, "namespace", json!({})).await;
    ok(&other);
    assert_eq!(other.body, json!({"namespace": "other"}));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_the_package_is_public_with_its_actions_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let package = node
        .call(
            Method::GET,
            "/api/v1/namespaces/whisk.system/packages/utils",
            None,
        )
        .await;
    ok(&package);
    assert_eq!(package.body["namespace"], "whisk.system");
    assert_eq!(package.body["name"], "utils");
    assert_eq!(package.body["publish"], true);
    assert_eq!(package.body["binding"], json!({}));
    assert_eq!(
        package.body["annotations"],
        json!([{"key": "description", "value": "Building blocks that format and assemble data"}])
    );
    let mut names: Vec<&str> = package.body["actions"]
        .as_array()
        .expect("a package lists its actions")
        .iter()
        .map(|action| action["name"].as_str().expect("actions have names"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, UTILITIES);

    // Listed among another namespace's public packages.
    let listed = node
        .call(
            Method::GET,
            "/api/v1/namespaces/whisk.system/packages",
            None,
        )
        .await;
    ok(&listed);
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.text
    );
    assert_eq!(listed.body[0]["name"], "utils");

    let sort = node
        .call(
            Method::GET,
            "/api/v1/namespaces/whisk.system/actions/utils/sort",
            None,
        )
        .await;
    ok(&sort);
    assert_eq!(sort.body["namespace"], "whisk.system/utils");
    assert_eq!(sort.body["exec"]["kind"], "wasm:wasip1");
    assert_eq!(sort.body["exec"]["binary"], true);
    assert_eq!(sort.body["version"], "0.0.1");
    let annotation = |key: &str| {
        sort.body["annotations"]
            .as_array()
            .and_then(|all| all.iter().find(|a| a["key"] == key))
            .map(|a| a["value"].clone())
    };
    assert_eq!(annotation("description"), Some(json!("Sorts an array")));
    assert_eq!(
        annotation("sampleOutput"),
        Some(json!({"lines": [2, 3, 4], "length": 3}))
    );
    assert_eq!(
        annotation("parameters"),
        Some(
            json!([{"name": "lines", "required": true, "type": "array", "description": "An array of strings"}])
        )
    );

    // Bound into the guest's namespace, its actions run there.
    let bound = node
        .call(
            Method::PUT,
            "/api/v1/namespaces/guest/packages/myutils",
            Some(json!({"binding": {"namespace": "whisk.system", "name": "utils"}})),
        )
        .await;
    ok(&bound);
    let through = node
        .call(
            Method::POST,
            "/api/v1/namespaces/guest/actions/myutils/echo?blocking=true&result=true",
            Some(json!({"hello": "binding"})),
        )
        .await;
    ok(&through);
    assert_eq!(through.body, json!({"hello": "binding"}));

    // Others may read and invoke, not write.
    let put = node
        .call(
            Method::PUT,
            "/api/v1/namespaces/whisk.system/actions/utils/echo?overwrite=true",
            Some(json!({"exec": {"kind": "wasm:wasip1", "code": wasm_base64("hello")}})),
        )
        .await;
    assert_eq!(put.status, StatusCode::FORBIDDEN, "{}", put.text);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_restarts_keep_the_catalog_and_restore_a_changed_action() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let first = updated_times(&node).await;
    node.stop().await;

    // Nothing changed: a restart writes nothing.
    let node = start(dir.path()).await;
    assert_eq!(updated_times(&node).await, first);
    let echo = node
        .call(
            Method::POST,
            "/api/v1/namespaces/whisk.system/actions/utils/echo?blocking=true&result=true",
            Some(json!({"again": true})),
        )
        .await;
    ok(&echo);
    assert_eq!(echo.body, json!({"again": true}));

    // The system namespace replaces `echo` with `hello`; the next start puts `echo` back.
    let replaced = node
        .call_as(
            SYSTEM_KEY,
            Method::PUT,
            "/api/v1/namespaces/whisk.system/actions/utils/echo?overwrite=true",
            Some(json!({"exec": {"kind": "wasm:wasip1", "code": wasm_base64("hello")}})),
        )
        .await;
    ok(&replaced);
    let hello = invoke_as(&node, GUEST_KEY, "echo", json!({"name": "Ada"})).await;
    assert_eq!(hello.body, json!({"greeting": "Hello, Ada!"}));
    node.stop().await;

    let node = start(dir.path()).await;
    let echo = invoke_as(&node, GUEST_KEY, "echo", json!({"name": "Ada"})).await;
    ok(&echo);
    assert_eq!(echo.body, json!({"name": "Ada"}));
    let now = updated_times(&node).await;
    assert_eq!(now[0], first[0], "the package was not rewritten");
    let echo_index = 1 + UTILITIES.iter().position(|n| *n == "echo").unwrap();
    for (i, (before, after)) in first.iter().zip(&now).enumerate() {
        if i == echo_index {
            assert_ne!(before, after, "echo was restored");
        } else {
            assert_eq!(before, after, "only echo was rewritten ({i})");
        }
    }
    let listed = node
        .call(
            Method::GET,
            "/api/v1/namespaces/whisk.system/packages/utils",
            None,
        )
        .await;
    assert_eq!(
        listed.body["actions"].as_array().map(Vec::len),
        Some(UTILITIES.len()),
        "no duplicates: {}",
        listed.text
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_install_writes_everything_once_then_nothing() {
    // A data directory from scratch: the start installs the package and its seven actions.
    let dir = tempfile::tempdir().unwrap();
    let assembled = Standalone::assemble(StandaloneConfig::new(dir.path()), vec![wasm_factory()])
        .await
        .expect("the node assembles");
    // The start already installed everything, so a second install finds it current.
    let again = catalog::install(assembled.state.backend.as_ref())
        .await
        .expect("the catalog installs");
    assert_eq!(again.written, Vec::<String>::new());
    let names: Vec<&str> = catalog::action_names().collect();
    assert_eq!(names.len(), UTILITIES.len());
    for name in names {
        let doc_id = format!("whisk.system/utils/{name}");
        let stored = assembled
            .state
            .backend
            .get_action(&doc_id, false)
            .await
            .expect("the store answers")
            .unwrap_or_else(|| panic!("{doc_id} is installed"));
        assert_eq!(stored.document.namespace, "whisk.system/utils");
    }
    assembled
        .pool
        .shutdown(std::time::Duration::from_secs(5))
        .await;

    // Another directory from scratch: installed there too, and invokable.
    let second = tempfile::tempdir().unwrap();
    let node = start(second.path()).await;
    assert_eq!(
        result(&node, "echo", json!({"payload": "second"})).await,
        json!({"payload": "second"})
    );
    node.stop().await;
}
