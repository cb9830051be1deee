//! Golden tests: every Kafka and CouchDB fixture read and written back unchanged, and the records,
//! acks, pings, events and runtime request bodies of the fixture stories (A1..A7 in
//! `fixtures/README.md`) built by our code and compared with the files as JSON values (annotations as
//! key/value sets, as the README says). Expected OpenWhisk forms come from the fixtures or from
//! literals here, never from our own constants.

mod support;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use executor::action::ExecutableAction;
use executor::bytesize::ByteSize;
use executor::document::{ActionDocument, CodeSource, Exec, decode_inline};
use executor::message::{
    AcknowledgementMessage, ActivationMessage, EventMessage, InvokerInstanceId, PingMessage,
    TransactionId,
};
use executor::record::{ActivationDocument, FallbackReason, WhiskActivation};
use factory::docker::wire;
use factory::{Code, Limits, Outcome, Status};
use serde_json::{Value, json};
use support::fixtures;

/// Replaces every `annotations` array by the same entries sorted by key, so that order does not
/// count.
fn normalize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "annotations"
                    && let Value::Array(entries) = child
                {
                    entries.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
                }
                normalize(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

fn assert_json_eq(actual: impl serde::Serialize, expected: Value, what: &str) {
    let mut actual = serde_json::to_value(actual).expect("serializes");
    let mut expected = expected;
    normalize(&mut actual);
    normalize(&mut expected);
    assert_eq!(
        actual,
        expected,
        "{what}:\nactual   {}\nexpected {}",
        serde_json::to_string_pretty(&actual).unwrap_or_default(),
        serde_json::to_string_pretty(&expected).unwrap_or_default()
    );
}

fn files(sub: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures::dir().join(sub))
        .expect("fixture directory")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json") || name.ends_with(".txt"))
        .collect();
    names.sort();
    names
}

fn invoker0() -> InvokerInstanceId {
    InvokerInstanceId::new(0, ByteSize::mb(2048), Some("0".into()), None)
}

fn message(name: &str) -> ActivationMessage {
    ActivationMessage::parse(&fixtures::bytes(&format!("kafka/{name}"))).expect("fixture message")
}

fn action(name: &str) -> ExecutableAction {
    let document = ActionDocument::from_json(&fixtures::bytes(&format!("couchdb/{name}")))
        .expect("fixture action");
    // The code itself is irrelevant to the record; the store tests check code loading.
    document
        .into_executable(None, &fixtures::manifest_resolver())
        .expect("fixture action resolves")
}

fn at(millis: u64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

fn outcome(
    status: Status,
    result: Value,
    size: Option<usize>,
    logs: &[&str],
    run: (u64, u64),
    init_ms: Option<u64>,
    timed_out: bool,
) -> Outcome {
    Outcome {
        status,
        result: Some(result),
        size,
        logs: logs.iter().map(|line| line.to_string()).collect(),
        start: at(run.0),
        end: at(run.1),
        init_time: init_ms.map(Duration::from_millis),
        timed_out,
        fuel: None,
        fault: None,
    }
}

fn stored(activation: &WhiskActivation, updated: u64) -> ActivationDocument {
    activation.to_document(at(updated))
}

/// Every fixture file is named in `fixtures/README.md` (with its upstream OpenWhisk source), and
/// every file the README names exists.
#[test]
fn test_readme_lists_every_fixture() {
    let readme = String::from_utf8(fixtures::bytes("README.md")).expect("UTF-8 README");
    let mut on_disk = Vec::new();
    for sub in [
        "kafka", "couchdb", "design", "runtimes", "runtime", "ansible",
    ] {
        assert!(
            readme.contains(&format!("### `{sub}/`")),
            "README has no section for {sub}/"
        );
        for name in files(sub) {
            assert!(
                readme.contains(&format!("| `{name}` |")),
                "README does not describe {sub}/{name}"
            );
            on_disk.push(name);
        }
    }
    let listed: Vec<&str> = readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once("` |"))
        .map(|(name, _)| name)
        .filter(|name| name.ends_with(".json") || name.ends_with(".txt"))
        .collect();
    assert_eq!(
        listed.len(),
        on_disk.len(),
        "README rows vs files: {listed:?}"
    );
    for name in listed {
        assert!(
            on_disk.iter().any(|file| file == name),
            "README names {name}, which is not here"
        );
    }
}

#[test]
fn test_every_kafka_fixture_round_trips() {
    let names = files("kafka");
    assert_eq!(names.len(), 14);
    for name in names {
        let bytes = fixtures::bytes(&format!("kafka/{name}"));
        let original: Value = serde_json::from_slice(&bytes).expect("JSON");
        let written = if name.starts_with("activation-message") {
            ActivationMessage::parse(&bytes).map(|m| m.to_json())
        } else if name.starts_with("ack-") {
            AcknowledgementMessage::parse(&bytes).map(|m| m.to_json())
        } else if name.starts_with("ping") {
            PingMessage::parse(&bytes).map(|m| m.to_json())
        } else {
            serde_json::from_slice::<EventMessage>(&bytes)
                .map(|m| m.to_json())
                .map_err(Into::into)
        }
        .unwrap_or_else(|error| panic!("{name}: {error}"));
        let written: Value = serde_json::from_str(&written).expect("we write JSON");
        assert_eq!(written, original, "{name}");
    }
}

#[test]
fn test_every_couchdb_fixture_round_trips() {
    for name in files("couchdb") {
        let value = fixtures::json(&format!("couchdb/{name}"));
        if name.starts_with("activation-") {
            let document: ActivationDocument =
                serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(serde_json::to_value(&document).unwrap(), value, "{name}");
        } else {
            let document =
                ActionDocument::from_value(value.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(serde_json::to_value(&document).unwrap(), value, "{name}");
        }
    }
}

#[test]
fn test_fixture_actions_convert() {
    let resolver = fixtures::manifest_resolver();
    let load = |name: &str| {
        ActionDocument::from_json(&fixtures::bytes(&format!("couchdb/{name}"))).expect("document")
    };
    let inline = load("action-nodejs-inline.json")
        .into_executable(None, &resolver)
        .unwrap();
    assert_eq!(inline.kind, "nodejs:20");
    assert!(inline.provide_api_key);
    assert_eq!(inline.init_parameters, vec!["DB_URL".to_string()]);
    let mem = load("action-nodejs-attachment-mem.json");
    assert!(!mem.provide_api_key());
    let blackbox = load("action-blackbox.json")
        .into_executable(None, &resolver)
        .unwrap();
    assert_eq!(blackbox.kind, "blackbox");
    assert_eq!(
        blackbox.image.as_deref(),
        Some("janedoe/ffmpeg-action:1.4.2")
    );
    assert!(blackbox.executable);
    let wasm = load("action-wasm-attachment.json")
        .into_executable(None, &executor::document::BuiltinKinds)
        .unwrap();
    assert_eq!(wasm.kind, "wasm:wasip1");
    assert_eq!(wasm.limits.logs, 0);
    let sequence = load("action-sequence.json")
        .into_executable(None, &resolver)
        .unwrap();
    assert!(!sequence.executable);
    // The factory's manifest resolves the same way as the test resolver.
    let manifest = factory::docker::Manifest::from_json(
        &String::from_utf8(fixtures::bytes("runtimes/runtimes-with-wasm.json")).unwrap(),
    )
    .unwrap();
    let mut by_default = load("action-health-test.json");
    by_default.exec =
        serde_json::from_value(json!({"kind": "nodejs:default", "code": "x => x"})).unwrap();
    assert_eq!(
        by_default.into_executable(None, &manifest).unwrap().kind,
        "nodejs:20"
    );
    let mut unknown = load("action-health-test.json");
    unknown.exec = serde_json::from_value(json!({"kind": "cobol:85", "code": "x"})).unwrap();
    assert!(matches!(
        unknown.into_executable(None, &manifest),
        Err(executor::document::DocumentError::UnknownKind(kind)) if kind == "cobol:85"
    ));
    let health = load("action-health-test.json");
    let health = health
        .into_executable(
            Some(Code::Text(
                "function main(params) { return params; }".into(),
            )),
            &resolver,
        )
        .unwrap();
    assert_eq!(health.limits.memory, 128);
    assert!(health.provide_api_key);
}

/// A1: blocking `guest/hello`, prewarmed cold start, success, logs collected.
#[test]
fn test_story_a1_success() {
    let message = message("activation-message-blocking.json");
    let action = action("action-nodejs-attachment-mem.json");
    let outcome = outcome(
        Status::Success,
        json!({"payload": "Hello, World!"}),
        Some(27),
        &[
            "2025-03-14T09:26:53.306218437Z stdout: greeting World",
            "2025-03-14T09:26:53.306791052Z stderr: no locale given, using en",
        ],
        (1_741_944_413_259 + 38, 1_741_944_413_318),
        Some(38),
        false,
    );
    let activation =
        WhiskActivation::from_outcome(&message, &action, &outcome, Duration::from_millis(47));
    assert_json_eq(
        stored(&activation, 1_741_944_413_339),
        fixtures::json("couchdb/activation-success.json"),
        "A1 record",
    );
    assert_json_eq(
        AcknowledgementMessage::result(message.transid.clone(), activation.without_logs()),
        fixtures::json("kafka/ack-result.json"),
        "A1 result ack",
    );
    assert_json_eq(
        AcknowledgementMessage::completion(message.transid.clone(), &activation, invoker0()),
        fixtures::json("kafka/ack-completion.json"),
        "A1 completion ack",
    );
    let event = EventMessage::activation(
        "invoker0",
        &activation,
        message.user.namespace.uuid.clone(),
        1_741_944_413_343,
    )
    .expect("the activation has path and kind");
    assert_json_eq(
        event,
        fixtures::json("kafka/event-activation.json"),
        "A1 event",
    );
}

/// A2: non-blocking `guest/thumbnail`, cold start, timeout.
#[test]
fn test_story_a2_timeout() {
    let message = message("activation-message-nonblocking.json");
    let action = action("action-nodejs-attachment-couch.json");
    let outcome = outcome(
        Status::DeveloperError,
        json!({"error": "The action exceeded its time limits of 30000 milliseconds."}),
        None,
        &[
            "2025-03-14T09:31:03.826331907Z stdout: fetching uploads/photos/2025/03/beach.jpg",
            "2025-03-14T09:31:04.463040513Z stdout: resizing 4032x3024 -> 320x240 (quality 80)",
            "2025-03-14T09:31:33.823412Z    stderr: The action did not initialize or run as expected. Log data might be missing.",
        ],
        (1_741_944_663_465 + 352, 1_741_944_693_819),
        Some(352),
        true,
    );
    let activation =
        WhiskActivation::from_outcome(&message, &action, &outcome, Duration::from_millis(689));
    assert_eq!(activation.duration, Some(30_354));
    assert_json_eq(
        stored(&activation, 1_741_944_693_827),
        fixtures::json("couchdb/activation-developer-error-timeout.json"),
        "A2 record",
    );
    // Non-blocking: every ack is shrunk; a Completion is unchanged by shrinking.
    let ack = AcknowledgementMessage::completion(message.transid.clone(), &activation, invoker0())
        .shrink();
    assert!(matches!(
        ack,
        AcknowledgementMessage::Completion {
            is_system_error: false,
            ..
        }
    ));
}

/// A3: the controller's health test action message parses and keeps `sid_invokerHealth`.
#[test]
fn test_story_a3_health_test() {
    let message = message("activation-message-health-test.json");
    assert!(message.transid.is_invoker_health());
    assert_eq!(message.transid.start_millis(), 1_741_939_337_406);
    assert!(message.revision.is_none());
    assert!(message.content.is_none());
    assert_eq!(message.params(), json!({}));
    assert_eq!(
        message.action_doc_id(),
        "whisk.system/invokerHealthTestAction0"
    );
    assert_eq!(message.ack_topic(), "completed0");
    let ack = AcknowledgementMessage::completion(
        message.transid.clone(),
        &WhiskActivation::fallback(&message, &FallbackReason::FetchFailed, at(1)),
        invoker0(),
    );
    assert_eq!(
        serde_json::to_value(&ack).unwrap()["transid"],
        json!(["sid_invokerHealth", 1_741_939_337_406u64])
    );
}

/// A4: blocking `guest/dbquery` with an init parameter; the action returns `{"error": ...}`.
#[test]
fn test_story_a4_application_error() {
    let message = message("activation-message-with-init-args.json");
    assert_eq!(message.init_args, vec!["DB_URL".to_string()]);
    let action = action("action-nodejs-inline.json");
    let outcome = outcome(
        Status::ApplicationError,
        json!({"error": {"statusCode": 404, "message": "query on orders failed"}}),
        Some(63),
        &[
            "2025-03-14T09:34:40.216120583Z stdout: POST http://sales-db.internal:5984/orders/_find limit=50",
            "2025-03-14T09:34:40.391905117Z stderr: query failed: 404 Object Not Found",
        ],
        (1_741_944_880_171 + 41, 1_741_944_880_395),
        Some(41),
        false,
    );
    let activation =
        WhiskActivation::from_outcome(&message, &action, &outcome, Duration::from_millis(52));
    assert_json_eq(
        stored(&activation, 1_741_944_880_419),
        fixtures::json("couchdb/activation-application-error.json"),
        "A4 record",
    );
    let event = EventMessage::activation("invoker0", &activation, "u", 0).unwrap();
    let executor::message::EventBody::Activation(body) = event.body else {
        panic!("an activation event");
    };
    assert_eq!(body.user_defined_status_code, Some(404));
}

/// A4's `/init` and `/run` bodies, from the message and the document through the executor's job and
/// the Docker factory's wire forms, equal OpenWhisk's (the deadline is the only value of the moment).
#[test]
fn test_story_a4_runtime_bodies() {
    let message = message("activation-message-with-init-args.json");
    let document =
        ActionDocument::from_json(&fixtures::bytes("couchdb/action-nodejs-inline.json")).unwrap();
    // The inline code, decoded as the loader decodes it.
    let Exec::Code {
        code: CodeSource::Inline(text),
        binary,
        ..
    } = &document.exec
    else {
        panic!("A4's action has inline code");
    };
    let code = decode_inline(text, *binary).expect("inline code");
    let action = Arc::new(
        document
            .into_executable(Some(code), &fixtures::manifest_resolver())
            .expect("fixture action resolves"),
    );
    let mut job = executor::processor::job(&message, &action);
    let deadline = |value: &Value| {
        let millis: u64 = value
            .as_str()
            .and_then(|text| text.parse().ok())
            .expect("a deadline");
        at(millis)
    };

    let expected = fixtures::json("runtime/init-request.json");
    job.run.context.deadline = deadline(&expected["value"]["env"]["__OW_DEADLINE"]);
    // The init request as the pool builds it from a job.
    assert_json_eq(
        wire::init_body(&job.init_request()),
        expected,
        "A4 /init body",
    );

    let expected = fixtures::json("runtime/run-request.json");
    job.run.context.deadline = deadline(&expected["deadline"]);
    assert_json_eq(wire::run_body(&job.run), expected, "A4 /run body");
}

/// A5: blocking wasm `guest/wordcount`, log limit 0, array input: one Combined ack.
#[test]
fn test_story_a5_combined() {
    let message = message("activation-message-array-content.json");
    assert!(message.content.as_ref().is_some_and(Value::is_array));
    let document =
        ActionDocument::from_json(&fixtures::bytes("couchdb/action-wasm-attachment.json")).unwrap();
    let action = document
        .into_executable(None, &executor::document::BuiltinKinds)
        .unwrap();
    let outcome = outcome(
        Status::Success,
        json!({"lines": 3, "words": 11, "top": {"word": "the", "count": 3}}),
        Some(53),
        &[],
        (1_741_945_039_559 + 14, 1_741_945_039_575),
        Some(14),
        false,
    );
    let activation =
        WhiskActivation::from_outcome(&message, &action, &outcome, Duration::from_millis(6));
    assert_json_eq(
        AcknowledgementMessage::combined(message.transid.clone(), activation.clone(), invoker0()),
        fixtures::json("kafka/ack-combined.json"),
        "A5 combined ack",
    );
    // With fuel metered, the record says how much.
    let metered = Outcome {
        fuel: Some(12_345),
        ..outcome
    };
    let activation =
        WhiskActivation::from_outcome(&message, &action, &metered, Duration::from_millis(6));
    assert_eq!(activation.annotations.get("fuel"), Some(&json!(12_345)));
}

/// A6: sequence component through a binding; the container could not be created.
#[test]
fn test_story_a6_whisk_error() {
    let message = message("activation-message-binding-and-cause.json");
    assert_eq!(
        message.transid.parent().map(TransactionId::id),
        Some("c126699e6f21f6c0e84198d18dbfe0d7")
    );
    let action = ExecutableAction {
        namespace: "whisk.system/utils".into(),
        name: "split".into(),
        revision: message.revision.clone(),
        version: "0.0.1".into(),
        kind: "nodejs:20".into(),
        image: None,
        code: None,
        main: None,
        limits: Limits::default(),
        provide_api_key: false,
        parameters: Default::default(),
        init_parameters: Vec::new(),
        annotations: Vec::new(),
        executable: true,
    };
    let outcome = Outcome::error(
        Status::WhiskError,
        factory::outcome::messages::RESOURCE_ERROR,
        at(1_741_945_206_577),
        at(1_741_945_206_577),
    );
    let activation =
        WhiskActivation::from_outcome(&message, &action, &outcome, Duration::from_millis(1247));
    assert!(activation.is_system_error());
    assert_json_eq(
        AcknowledgementMessage::combined(message.transid.clone(), activation.clone(), invoker0()),
        fixtures::json("kafka/ack-combined-system-error.json"),
        "A6 combined ack",
    );
    assert_json_eq(
        stored(&activation, 1_741_945_206_577),
        fixtures::json("couchdb/activation-whisk-error.json"),
        "A6 record",
    );
}

/// A7: non-blocking rule-fired activation of a deleted action: fallback record, shrunk Combined ack.
#[test]
fn test_story_a7_fallback_shrunk() {
    let mut message = message("activation-message-nonblocking.json");
    message.transid = TransactionId::from_value(json!([
        "b5641cfa0a5c4cb5afe8a5c88b724f01",
        1_741_945_500_006u64
    ]));
    message.activation_id =
        serde_json::from_value(json!("30ebfab64fee40e091b9ffd09ab51438")).unwrap();
    message.action.name = "cleanup".into();
    let now = at(1_741_945_500_050);
    let activation = WhiskActivation::fallback(&message, &FallbackReason::NotFound, now);
    assert_json_eq(
        &activation,
        json!({
            "namespace": "guest", "name": "cleanup", "subject": "guest",
            "activationId": "30ebfab64fee40e091b9ffd09ab51438",
            "start": 1_741_945_500_050u64, "end": 1_741_945_500_050u64, "duration": 0,
            "response": {"statusCode": 1, "result": {"error": "Action could not be found or may have been deleted."}},
            "logs": [], "version": "0.0.1", "publish": false,
            "annotations": [{"key": "path", "value": "guest/cleanup"}, {"key": "kind", "value": "unknown"}]
        }),
        "A7 fallback record",
    );
    let ack =
        AcknowledgementMessage::combined(message.transid.clone(), activation, invoker0()).shrink();
    assert_json_eq(
        ack,
        fixtures::json("kafka/ack-combined-shrunk.json"),
        "A7 shrunk ack",
    );
}

#[test]
fn test_fallback_with_cause_and_each_reason() {
    let message = message("activation-message-binding-and-cause.json");
    let cases = [
        (
            FallbackReason::Blacklisted,
            1,
            "The action was not invoked due to a blacklisted namespace.",
        ),
        (
            FallbackReason::LimitViolation(
                "memory 1024 MB exceeds allowed threshold of 512 MB".into(),
            ),
            1,
            "memory 1024 MB exceeds allowed threshold of 512 MB",
        ),
        (
            FallbackReason::Incompatible,
            3,
            "Action version is not compatible and cannot be invoked.",
        ),
        (
            FallbackReason::FetchFailed,
            3,
            "Action could not be fetched.",
        ),
    ];
    for (reason, code, text) in cases {
        let activation = WhiskActivation::fallback(&message, &reason, at(5));
        let value = serde_json::to_value(&activation).unwrap();
        assert_eq!(
            value["response"],
            json!({"statusCode": code, "result": {"error": text}})
        );
        assert_eq!(
            activation.annotations.get("causedBy"),
            Some(&json!("sequence"))
        );
        assert_eq!(
            activation.annotations.get("path"),
            Some(&json!("whisk.system/utils/split"))
        );
        assert_eq!(value["cause"], json!("46aa236d1a4c4d2e9c9ad119ac154239"));
    }
}

#[test]
fn test_pings() {
    assert_json_eq(
        PingMessage::new(invoker0(), true),
        fixtures::json("kafka/ping.json"),
        "ping",
    );
    assert_json_eq(
        PingMessage::new(invoker0(), false),
        fixtures::json("kafka/ping-disabled.json"),
        "disabled ping",
    );
}

#[test]
fn test_extended_view_for_the_rest_api() {
    let document: ActivationDocument =
        serde_json::from_value(fixtures::json("couchdb/activation-success.json")).unwrap();
    let view = document.activation.to_extended_json();
    assert_eq!(
        view["response"],
        json!({"status": "success", "success": true, "result": {"payload": "Hello, World!"}, "size": 27})
    );
    assert_eq!(view["activationId"], "5ba68dd7a2804d1d9057e02036f41959");
}
