//! The result rule: the last stdout line decides; exit codes do not; traps are developer errors.

use factory::outcome::messages;
use factory::wasm::MAX_ARGV_PARAMS_BYTES;
use factory::{ContainerSpec, Factory, FactoryError, Health, Purpose, Status};
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn test_hello_returns_its_greeting_and_logs_one_line() {
    let factory = factory_with(config());
    let hello = deploy(&factory, "hello").await;
    let outcome = hello.run(json!({"name": "Ada"})).await;
    assert_eq!(outcome.status, Status::Success, "{outcome:?}");
    assert_eq!(outcome.result, Some(json!({"greeting": "Hello, Ada!"})));
    assert_eq!(outcome.size, Some(br#"{"greeting":"Hello, Ada!"}"#.len()));
    assert_eq!(log_texts(&outcome), ["stdout: greeting Ada"]);
    assert!(!outcome.timed_out);
    assert_eq!(outcome.fuel, None, "fuel is off by default");
    assert!(outcome.end >= outcome.start);
}

#[tokio::test]
async fn test_echo_returns_objects_and_arrays() {
    let factory = factory_with(config());
    let echo = deploy(&factory, "echo").await;
    let object = json!({"a": 1, "nested": {"b": [true, null]}, "text": "line\nbreak"});
    let outcome = echo.run(object.clone()).await;
    assert_eq!(
        (outcome.status, outcome.result),
        (Status::Success, Some(object))
    );
    let array = json!([1, "two", {"three": 3}]);
    let outcome = echo.run(array.clone()).await;
    assert_eq!(
        (outcome.status, outcome.result),
        (Status::Success, Some(array))
    );
    assert!(outcome.logs.is_empty());
}

#[tokio::test]
async fn test_error_key_is_an_application_error() {
    let factory = factory_with(config());
    let echo = deploy(&factory, "echo").await;
    let outcome = echo.run(json!({"error": {"code": 42}, "other": 1})).await;
    assert_eq!(outcome.status, Status::ApplicationError);
    assert_eq!(outcome.result, Some(json!({"error": {"code": 42}})));
    // The SDK's own application error: a parameter of the wrong type.
    let hello = deploy(&factory, "hello").await;
    let outcome = hello.run(json!({"name": 7})).await;
    assert_eq!(outcome.status, Status::ApplicationError);
    assert_eq!(
        error_of(&outcome),
        "The parameter \"name\" must be a string."
    );
}

/// Params of exactly `len` bytes of JSON.
fn params_of_len(len: usize) -> Value {
    let overhead = r#"{"pad":""}"#.len();
    let params = json!({"pad": "p".repeat(len - overhead)});
    assert_eq!(serde_json::to_string(&params).unwrap().len(), len);
    params
}

#[tokio::test]
async fn test_params_in_argv_up_to_the_limit_and_on_stdin_beyond() {
    let factory = factory_with(config());
    let echo = deploy(&factory, "echo").await;
    // At the limit the params come in argv[1] (echo reads argv first); one byte more and argv
    // has only the name, so echo falls back to stdin, which always carries them.
    for len in [MAX_ARGV_PARAMS_BYTES, MAX_ARGV_PARAMS_BYTES + 1, 1 << 20] {
        let params = params_of_len(len);
        let outcome = echo.run(params.clone()).await;
        assert_eq!(
            outcome.status,
            Status::Success,
            "params of {len} bytes: {:?}",
            outcome.result
        );
        assert_eq!(outcome.result, Some(params), "params of {len} bytes");
    }
    // The SDK reads them the same way.
    let hello = deploy(&factory, "hello").await;
    let mut params = params_of_len(MAX_ARGV_PARAMS_BYTES + 100);
    params["name"] = json!("Stdin");
    let outcome = hello.run(params).await;
    assert_eq!(outcome.result, Some(json!({"greeting": "Hello, Stdin!"})));
}

#[tokio::test]
async fn test_exit_code_does_not_change_a_valid_result() {
    let factory = factory_with(config());
    let exit = deploy(&factory, "exit").await;
    for code in [3, 0, 1] {
        let outcome = exit.run(json!({"code": code})).await;
        assert_eq!(outcome.status, Status::Success, "{outcome:?}");
        assert_eq!(outcome.result, Some(json!({"code": code})));
    }
}

#[tokio::test]
async fn test_garbage_last_line_is_a_developer_error_and_stays_in_the_logs() {
    let factory = factory_with(config());
    let garbage = deploy(&factory, "garbage").await;
    let outcome = garbage.run(json!({})).await;
    assert_eq!(outcome.status, Status::DeveloperError);
    assert_eq!(error_of(&outcome), messages::NOT_A_DICTIONARY_OR_ARRAY);
    assert_eq!(
        log_texts(&outcome),
        ["stdout: about to print garbage", "stdout: this is not json"]
    );
    // Obeyed: a JSON string is not a dictionary or array either, but valid JSON objects are.
    let echo = deploy(&factory, "echo").await;
    let outcome = echo.run(json!("just a string")).await;
    assert_eq!(outcome.status, Status::DeveloperError);
    assert_eq!(error_of(&outcome), messages::NOT_A_DICTIONARY_OR_ARRAY);
    assert_eq!(log_texts(&outcome), ["stdout: \"just a string\""]);
}

#[tokio::test]
async fn test_panic_is_a_developer_error_with_the_trap_in_the_logs() {
    let factory = factory_with(config());
    let panic = deploy(&factory, "panic").await;
    let outcome = panic.run(json!({"message": "boom on purpose"})).await;
    assert_eq!(outcome.status, Status::DeveloperError);
    assert_eq!(error_of(&outcome), messages::ABNORMAL_RUN);
    // A trap is the activation's failure, not the container's: no fault, the status decides.
    assert_eq!(outcome.fault, None);
    let logs = log_texts(&outcome);
    assert!(
        logs.iter()
            .any(|line| line.starts_with("stderr: ") && line.contains("boom on purpose")),
        "{logs:?}"
    );
    let trap = logs.last().expect("the trap line");
    assert!(
        trap.starts_with("stderr: wasm trap: wasm `unreachable` instruction executed"),
        "{logs:?}"
    );
    // The container is not poisoned: a later activation of another instance runs normally.
    let hello = deploy(&factory, "hello").await;
    assert_eq!(hello.run(json!({})).await.status, Status::Success);
}

#[tokio::test]
async fn test_activations_of_one_container_do_not_share_output() {
    let factory = factory_with(config());
    let hello = deploy(&factory, "hello").await;
    let first = hello.run(json!({"name": "one"})).await;
    let second = hello.run(json!({"name": "two"})).await;
    assert_eq!(log_texts(&first), ["stdout: greeting one"]);
    assert_eq!(log_texts(&second), ["stdout: greeting two"]);
}

#[tokio::test]
async fn test_lifecycle_kinds_health_and_destroy() {
    let config = WasmConfig {
        kinds: vec!["wasm:wasip1".into(), "wasm:extra".into()],
        ..config()
    };
    let factory = factory_with(config);
    assert_eq!(factory.name(), "wasm");
    assert!(factory.supports("wasm:wasip1") && factory.supports("wasm:extra"));
    assert!(!factory.supports("nodejs:20"));
    assert_eq!(factory.health().await, Health::Healthy);
    let spec = |kind: &str| ContainerSpec {
        kind: kind.into(),
        image: None,
        memory_mb: 256,
        purpose: Purpose::Prewarm,
    };
    match factory.create(spec("nodejs:20")).await {
        Err(FactoryError::UnsupportedKind {
            factory: "wasm",
            kind,
        }) => assert_eq!(kind, "nodejs:20"),
        other => panic!("expected UnsupportedKind, got {other:?}"),
    }
    let container = factory.create(spec("wasm:extra")).await.unwrap();
    assert!(container.max_concurrency() >= 1000);
    assert!(!container.can_pause());
    container.pause().await.unwrap();
    container.resume().await.unwrap();
    assert_eq!(container.health().await, Health::Healthy);
    container.destroy().await.unwrap();
    assert!(!container.health().await.is_healthy());
    assert!(container.destroy().await.is_err());
    assert!(factory.metrics().ticker_alive);
}

#[tokio::test]
async fn test_run_before_init_and_second_init_are_refused() {
    let factory = factory_with(config());
    let hello = deploy(&factory, "hello").await;
    let again = InitRequest {
        name: "hello".into(),
        main: None,
        code: Some(example_code("hello")),
        env: Default::default(),
        context: context("hello"),
        limits: Limits::default(),
    };
    let outcome = hello.container.init(again).await.unwrap_err();
    assert_eq!(outcome.status, Status::DeveloperError);
    assert_eq!(
        error_of(&outcome),
        "Cannot initialize the action more than once."
    );

    let spec = ContainerSpec {
        kind: "wasm:wasip1".into(),
        image: None,
        memory_mb: 256,
        purpose: Purpose::Prewarm,
    };
    let bare = factory.create(spec).await.unwrap();
    let request = RunRequest {
        params: json!({}),
        context: context("bare"),
        limits: Limits::default(),
    };
    let outcome = bare.run(request).await;
    assert_eq!(outcome.status, Status::WhiskError);
    assert_eq!(error_of(&outcome), messages::RESOURCE_ERROR);
}
