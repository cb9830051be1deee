//! The sandbox: the environment is exactly the `__OW_` context plus init parameters, and nothing of
//! the host is reachable.

use std::collections::BTreeMap;

use factory::Status;
use serde_json::{Value, json};

use super::*;

fn init_env() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("GREETING".to_string(), "hi there".to_string()),
        ("DB_URL".to_string(), "http://db:5984".to_string()),
        // Cannot be an environment entry: dropped, not passed mangled.
        ("BAD=NAME".to_string(), "x".to_string()),
        // Cannot override the context.
        ("__OW_NAMESPACE".to_string(), "someone-else".to_string()),
    ])
}

#[tokio::test]
async fn test_env_is_exactly_the_context_and_init_parameters() {
    let factory = factory_with(WasmConfig {
        api_host: Some("https://ow.example:443".into()),
        ..config()
    });
    let env = deploy_code(
        &factory,
        "env",
        Some(example_code("env")),
        None,
        init_env(),
        Limits::default(),
    )
    .await
    .unwrap();
    let mut request = RunRequest {
        params: json!({}),
        context: context("env"),
        limits: Limits::default(),
    };
    request.context.api_key = Some("uuid:key".into());
    let context = request.context.clone();
    let outcome = env.container.run(request).await;
    assert_eq!(outcome.status, Status::Success, "{outcome:?}");
    let expected = json!({
        "__OW_ACTIVATION_ID": context.activation_id,
        "__OW_NAMESPACE": "guest",
        "__OW_ACTION_NAME": "/guest/env",
        "__OW_ACTION_VERSION": "0.0.1",
        "__OW_TRANSACTION_ID": context.transaction_id,
        "__OW_DEADLINE": context.deadline_millis().to_string(),
        "__OW_API_KEY": "uuid:key",
        "__OW_API_HOST": "https://ow.example:443",
        "GREETING": "hi there",
        "DB_URL": "http://db:5984",
    });
    assert_eq!(outcome.result, Some(expected));
}

#[tokio::test]
async fn test_env_without_api_key_or_api_host_leaves_them_out() {
    let factory = factory_with(config());
    let env = deploy(&factory, "env").await;
    let outcome = env.run(json!({})).await;
    let result = outcome.result.expect("a result");
    let mut names: Vec<&str> = result
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "__OW_ACTION_NAME",
            "__OW_ACTION_VERSION",
            "__OW_ACTIVATION_ID",
            "__OW_DEADLINE",
            "__OW_NAMESPACE",
            "__OW_TRANSACTION_ID"
        ]
    );
}

/// The escape action's attempts, as `(op, path, ok)`.
fn attempts(result: &Value) -> Vec<(String, String, bool)> {
    result["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| {
            (
                a["op"].as_str().unwrap().to_string(),
                a["path"].as_str().unwrap().to_string(),
                a["ok"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn test_escape_attempts_are_all_denied() {
    for scratch in [false, true] {
        let mut config = config();
        config.scratch.enabled = scratch;
        let factory = factory_with(config);
        let escape = deploy_code(
            &factory,
            "escape",
            Some(example_code("escape")),
            None,
            init_env(),
            Limits::default(),
        )
        .await
        .unwrap();
        let outcome = escape.run(json!({})).await;
        assert_eq!(outcome.status, Status::Success, "{outcome:?}");
        let result = outcome.result.unwrap();
        let attempts = attempts(&result);
        assert_eq!(attempts.len(), 7, "{result}");
        for (op, path, ok) in &attempts {
            assert!(!ok, "{op} {path} succeeded (scratch {scratch}): {result}");
        }
        let env: Vec<&str> = result["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            env.iter()
                .all(|name| name.starts_with("__OW_") || ["DB_URL", "GREETING"].contains(name)),
            "{env:?}"
        );
        assert!(env.contains(&"GREETING") && env.contains(&"DB_URL"));
    }
    assert!(!std::path::Path::new("/escape.txt").exists());
}
