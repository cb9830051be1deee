//! Property tests of every executor parser of outside input: arbitrary bytes, arbitrary JSON (keys
//! and strings drawn partly from OpenWhisk's field names and values) and real fixtures with one to
//! three fields replaced or removed, truncated or with one byte changed. The property: the parser
//! never panics, and what it refuses it refuses with a typed error whose text is not empty. What it
//! accepts goes through the accessors the activation path uses next (code decoding, kind
//! resolution, serialization and reading back), which must not panic either.
//!
//! Covered: `ActivationMessage`, `AcknowledgementMessage`, `PingMessage`, `TransactionId`; action
//! documents (`ActionDocument::from_json` / `from_value`, attachment references, `decode_inline`,
//! `code_from_bytes`, `is_base64`, `into_executable`); activation records (`WhiskActivation`,
//! `ActivationDocument`); the invoker's TOML configuration and byte sizes; the standalone server's
//! checks (`LimitsPut`, `ListQuery`, names, booleans, JSON bodies, web-action arguments) and, through
//! `handle` with the real store and wasm factory, whole requests: action PUT bodies, invoke bodies
//! and query strings, list query strings, web-action requests, arbitrary paths. The runtimes
//! manifest, zip and wasm artifacts are in `factory/tests/parsers_proptest.rs`.
//!
//! No `proptest-regressions/` files are written ([`strategies::config`]).

mod support;

#[path = "support/strategies.rs"]
mod strategies;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use executor::bytesize::ByteSize;
use executor::config::InvokerConfig;
use executor::document::{
    ActionDocument, BuiltinKinds, CodeSource, KindResolver, code_from_bytes, decode_inline,
    is_base64,
};
use executor::limits::LimitRanges;
use executor::message::{AcknowledgementMessage, ActivationMessage, PingMessage, TransactionId};
use executor::pool::{PoolConfig, PoolFactory};
use executor::record::{ActivationDocument, WhiskActivation};
use executor::standalone::auth::GUEST_KEY;
use executor::standalone::http::{ApiError, json_object_body};
use executor::standalone::validate::{self, LimitsPut, ListQuery};
use executor::standalone::web::{self, Extension, WebRequest};
use executor::standalone::{Standalone, StandaloneConfig, State, handle};
use factory::Limits;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use strategies::{
    assert_error_text, bytes, config, damage, damaged, edits, json as any_json, mutate, string,
};
use support::fixtures;

/// Cases of each pure-parser property (a few milliseconds each in debug).
const CASES: u32 = 1000;
/// Cases of each property that sends requests through the standalone server.
const HTTP_CASES: u32 = 512;

/// Inputs for a parser of bytes: arbitrary bytes, arbitrary JSON, the fixtures mutated, the
/// fixtures damaged. The mutations weigh most: they get past the first field.
fn inputs(fixture_names: &[&str]) -> impl Strategy<Value = Vec<u8>> + use<> {
    let values: Vec<Value> = fixture_names.iter().map(|n| fixtures::json(n)).collect();
    let texts: Vec<Vec<u8>> = fixture_names.iter().map(|n| fixtures::bytes(n)).collect();
    prop_oneof![
        1 => bytes(),
        2 => any_json().prop_map(|value| serde_json::to_vec(&value).expect("JSON serializes")),
        5 => (prop::sample::select(values), edits())
            .prop_map(|(value, edits)| serde_json::to_vec(&mutate(&value, &edits))
                .expect("JSON serializes")),
        2 => (prop::sample::select(texts), damage())
            .prop_map(|(text, damage)| damaged(&text, &damage)),
    ]
}

fn fixture_list(dir: &str, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures::dir().join(dir))
        .expect("fixture directory")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.starts_with(prefix) && name.ends_with(".json"))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no fixtures {dir}/{prefix}*");
    names
}

fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let mut runner = TestRunner::new(config(cases));
    if let Err(error) = runner.run(&strategy, test) {
        panic!("{error}");
    }
}

fn names(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

// ------------------------------------------------------------------------------------------------
// Kafka messages

#[test]
fn activation_message_parse_never_panics() {
    let list = fixture_list("kafka", "activation-message-");
    run(CASES, inputs(&names(&list)), |bytes| {
        match ActivationMessage::parse(&bytes) {
            Ok(message) => {
                let _ = (
                    message.params(),
                    message.action_doc_id(),
                    message.ack_topic(),
                );
                let _ = message.transid.is_invoker_health();
                let text = message.to_json();
                let again = ActivationMessage::parse(text.as_bytes());
                prop_assert!(again.is_ok(), "our own text is refused: {again:?}");
            }
            Err(error) => assert_error_text(&error)?,
        }
        Ok(())
    });
}

#[test]
fn ack_parse_never_panics() {
    let list = fixture_list("kafka", "ack-");
    run(CASES, inputs(&names(&list)), |bytes| {
        match AcknowledgementMessage::parse(&bytes) {
            Ok(ack) => {
                let _ = (ack.transid(), ack.activation_id(), ack.frees_slot());
                let _ = ack.to_json();
                let _ = ack.shrink().to_json();
            }
            Err(error) => assert_error_text(&error)?,
        }
        Ok(())
    });
}

#[test]
fn ping_parse_never_panics() {
    let list = fixture_list("kafka", "ping");
    run(CASES, inputs(&names(&list)), |bytes| {
        match PingMessage::parse(&bytes) {
            Ok(ping) => {
                let _ = ping.to_json();
            }
            Err(error) => assert_error_text(&error)?,
        }
        Ok(())
    });
}

#[test]
fn transaction_id_reads_any_value() {
    run(CASES, any_json(), |value| {
        let tid = TransactionId::from_value(value);
        let _ = (tid.id(), tid.start_millis(), tid.extra_logging());
        let _ = (tid.parent(), tid.is_invoker_health());
        let _ = serde_json::to_string(&tid).expect("a transaction id serializes");
        Ok(())
    });
}

// ------------------------------------------------------------------------------------------------
// Action documents and code

fn exercise_document(document: ActionDocument) -> Result<(), TestCaseError> {
    let _ = (document.doc_id(), document.provide_api_key());
    let written = serde_json::to_value(&document).expect("a document serializes");
    let again = ActionDocument::from_value(written);
    prop_assert!(again.is_ok(), "our own document is refused: {again:?}");
    let code = match document.exec.code() {
        None => None,
        Some((CodeSource::Inline(text), binary)) => match decode_inline(text, binary) {
            Ok(code) => Some(code),
            Err(error) => return assert_error_text(&error),
        },
        Some((CodeSource::Attachment(reference), binary)) => match reference.location() {
            Ok(executor::document::AttachmentLocation::Inline(bytes)) => {
                match code_from_bytes(bytes, binary) {
                    Ok(code) => Some(code),
                    Err(error) => return assert_error_text(&error),
                }
            }
            Ok(executor::document::AttachmentLocation::Document(_)) => None,
            Err(error) => return assert_error_text(&error),
        },
    };
    let resolver = fixtures::manifest_resolver();
    for resolver in [&BuiltinKinds as &dyn KindResolver, &resolver] {
        match document.clone().into_executable(code.clone(), resolver) {
            Ok(action) => {
                let _ = (
                    action.limits.timeout_duration(),
                    action.limits.memory_bytes(),
                );
            }
            Err(error) => assert_error_text(&error)?,
        }
    }
    Ok(())
}

#[test]
fn action_document_from_json_never_panics() {
    let list = fixture_list("couchdb", "action-");
    run(CASES, inputs(&names(&list)), |bytes| {
        match ActionDocument::from_json(&bytes) {
            Ok(document) => exercise_document(document)?,
            Err(error) => assert_error_text(&error)?,
        }
        Ok(())
    });
}

#[test]
fn action_document_from_value_never_panics() {
    let list = fixture_list("couchdb", "action-");
    let values: Vec<Value> = list.iter().map(|name| fixtures::json(name)).collect();
    let strategy = prop_oneof![
        1 => any_json(),
        4 => (prop::sample::select(values), edits()).prop_map(|(v, e)| mutate(&v, &e)),
    ];
    run(CASES, strategy, |value| {
        match ActionDocument::from_value(value) {
            Ok(document) => exercise_document(document)?,
            Err(error) => assert_error_text(&error)?,
        }
        Ok(())
    });
}

#[test]
fn inline_code_decoding_never_panics() {
    let strategy = (string(), any::<bool>(), bytes());
    run(CASES, strategy, |(text, binary, raw)| {
        let _ = is_base64(&text);
        match decode_inline(&text, binary) {
            Ok(_) => {}
            Err(error) => assert_error_text(&error)?,
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(&raw);
        prop_assert!(is_base64(&encoded) || raw.is_empty());
        prop_assert!(decode_inline(&encoded, true).is_ok());
        match code_from_bytes(raw, binary) {
            Ok(_) => {}
            Err(error) => assert_error_text(&error)?,
        }
        Ok(())
    });
}

// ------------------------------------------------------------------------------------------------
// Activation records

/// The activation inside the combined ack fixture, and the stored records without their CouchDB
/// fields: `WhiskActivation`s as the controller reads them.
fn activation_values() -> Vec<Value> {
    let mut values = vec![fixtures::json("kafka/ack-combined.json")["response"].clone()];
    for name in fixture_list("couchdb", "activation-") {
        let mut value = fixtures::json(&name);
        if let Some(map) = value.as_object_mut() {
            for key in ["_id", "_rev", "entityType", "updated"] {
                map.remove(key);
            }
        }
        values.push(value);
    }
    values
}

fn exercise_activation(activation: &WhiskActivation) -> Result<(), TestCaseError> {
    let _ = (activation.is_system_error(), activation.doc_id());
    let _ = activation.without_logs().to_extended_json();
    let document = activation.to_document(UNIX_EPOCH + Duration::from_millis(1_741_945_039_600));
    let written = serde_json::to_vec(&document).expect("a record serializes");
    let again = serde_json::from_slice::<ActivationDocument>(&written);
    prop_assert!(again.is_ok(), "our own record is refused: {again:?}");
    Ok(())
}

#[test]
fn whisk_activation_never_panics() {
    let values = activation_values();
    let texts: Vec<Vec<u8>> = values
        .iter()
        .map(|v| serde_json::to_vec_pretty(v).expect("JSON serializes"))
        .collect();
    let strategy = prop_oneof![
        1 => bytes(),
        2 => any_json().prop_map(|v| serde_json::to_vec(&v).expect("JSON serializes")),
        5 => (prop::sample::select(values), edits())
            .prop_map(|(v, e)| serde_json::to_vec(&mutate(&v, &e)).expect("JSON serializes")),
        2 => (prop::sample::select(texts), damage()).prop_map(|(t, d)| damaged(&t, &d)),
    ];
    run(CASES, strategy, |bytes| {
        match serde_json::from_slice::<WhiskActivation>(&bytes) {
            Ok(activation) => exercise_activation(&activation)?,
            Err(error) => assert_error_text(&error)?,
        }
        Ok(())
    });
}

#[test]
fn activation_document_never_panics() {
    let list = fixture_list("couchdb", "activation-");
    run(CASES, inputs(&names(&list)), |bytes| {
        match serde_json::from_slice::<ActivationDocument>(&bytes) {
            Ok(document) => exercise_activation(&document.activation)?,
            Err(error) => assert_error_text(&error)?,
        }
        Ok(())
    });
}

// ------------------------------------------------------------------------------------------------
// Configuration

const CONFIG_EXAMPLE: &str = r#"
controller_instance = 0
kafka_hosts = "127.0.0.1:9092"
user_memory = "2048 MB"

[pool]
user_memory = "1 GB"
"#;

#[test]
fn configuration_text_never_panics() {
    let example = CONFIG_EXAMPLE.as_bytes().to_vec();
    let strategy = prop_oneof![
        any::<String>(),
        string(),
        (Just(example), damage())
            .prop_map(|(text, d)| String::from_utf8_lossy(&damaged(&text, &d)).into_owned()),
        (string(), string())
            .prop_map(|(k, v)| format!("{k} = \"{v}\"\n[pool]\nuser_memory = \"{v}\"")),
    ];
    run(CASES, strategy, |text| {
        match InvokerConfig::from_toml_str(&text) {
            Ok(_) => {}
            Err(error) => assert_error_text(&error)?,
        }
        match ByteSize::parse(&text) {
            Ok(size) => {
                let _ = size.to_string();
            }
            Err(error) => assert_error_text(&error)?,
        }
        Ok(())
    });
}

// ------------------------------------------------------------------------------------------------
// The standalone server's checks, called directly

fn assert_api_error(error: &ApiError) -> Result<(), TestCaseError> {
    prop_assert!(
        error.status.is_client_error(),
        "not a 4xx: {} {}",
        error.status,
        error.message
    );
    prop_assert!(!error.message.trim().is_empty(), "an error without text");
    Ok(())
}

#[test]
fn limits_put_never_panics() {
    let limits = prop_oneof![
        any_json(),
        prop::collection::vec(
            (
                prop::sample::select(vec!["timeout", "memory", "logs", "concurrency", "x"]),
                prop_oneof![strategies::number(), any_json()],
            ),
            0..5
        )
        .prop_map(|entries| Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()
        )),
    ];
    run(CASES, limits, |value| {
        match LimitsPut::parse(&value, &LimitRanges::default()) {
            Ok(put) => {
                let _ = put.create();
                let _ = put.update(Limits::default());
            }
            Err(error) => assert_api_error(&error)?,
        }
        Ok(())
    });
}

fn query_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        3 => prop::sample::select(vec![
            "skip", "limit", "count", "docs", "name", "since", "upto", "blocking", "result",
            "timeout", "overwrite",
        ])
        .prop_map(str::to_string),
        1 => string(),
    ];
    let value = prop_oneof![
        (0i64..300).prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| format!("{n}0")),
        string(),
    ];
    prop::collection::vec((name, value), 0..5)
}

#[test]
fn list_query_and_names_never_panic() {
    let strategy = (query_pairs(), string(), string());
    run(CASES, strategy, |(query, text, other)| {
        for collection in ["activations", "actions"] {
            match ListQuery::parse(&query, collection) {
                Ok(_) => {}
                Err(error) => assert_api_error(&error)?,
            }
        }
        for result in [
            validate::entity_name(&text),
            validate::namespace(&text, &other),
            validate::activation_id(&text),
        ] {
            if let Err(error) = result {
                assert_api_error(&error)?;
            }
        }
        if let Err(error) = validate::boolean(&other, &text) {
            assert_api_error(&error)?;
        }
        let _ = (validate::is_entity_name(&text), Extension::split(&text));
        Ok(())
    });
}

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "application/problem+json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "text/html",
    "application/octet-stream",
    "image/png",
    "multipart/form-data; boundary=x",
    ";",
    "",
];

fn headers() -> impl Strategy<Value = HeaderMap> {
    let content_type = prop_oneof![
        3 => prop::sample::select(CONTENT_TYPES).prop_map(str::to_string),
        1 => string(),
    ];
    let extra = prop::collection::vec(("[a-z-]{1,12}", string()), 0..3);
    (prop::option::of(content_type), extra).prop_map(|(content_type, extra)| {
        let mut map = HeaderMap::new();
        if let Some(value) = content_type.and_then(|t| HeaderValue::from_str(&t).ok()) {
            map.insert(header::CONTENT_TYPE, value);
        }
        for (name, value) in extra {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                map.append(name, value);
            }
        }
        map
    })
}

/// A body: arbitrary bytes, arbitrary JSON, or a form.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        bytes(),
        any_json().prop_map(|v| serde_json::to_vec(&v).expect("JSON serializes")),
        query_pairs().prop_map(|pairs| form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes()),
        Just(Vec::new()),
    ]
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

#[test]
fn request_bodies_and_web_arguments_never_panic() {
    let strategy = (
        prop::sample::select(METHODS),
        headers(),
        body(),
        query_pairs(),
        string(),
        any::<bool>(),
    );
    run(
        CASES,
        strategy,
        |(method, headers, body, query, path, raw)| {
            match json_object_body(&headers, &body) {
                Ok(_) => {}
                Err(error) => assert_api_error(&error)?,
            }
            let method = Method::from_bytes(method.as_bytes()).expect("a method name");
            let raw_query = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&query)
                .finish();
            let request = WebRequest {
                method: &method,
                headers: &headers,
                path: &path,
                raw_query: &raw_query,
                query: &query,
                body: &body,
                user: Some("guest"),
            };
            match web::arguments(&request, raw) {
                Ok(_) => {}
                Err(error) => assert_api_error(&error)?,
            }
            Ok(())
        },
    );
}

// ------------------------------------------------------------------------------------------------
// Whole requests through the standalone server (real store and wasm factory)

/// A core module without `_start`: it compiles, is refused as not a WASI command, and runs nothing.
const NOT_A_COMMAND: &str = "AGFzbQEAAAA=";

/// A standalone node's request state over a fresh directory, with an action `target` (invocable,
/// web-exported, refused at init) to invoke.
struct Node {
    runtime: tokio::runtime::Runtime,
    state: Arc<State>,
    pool: Arc<executor::pool::Pool>,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start() -> Node {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = StandaloneConfig::new(dir.path());
        config.pool = PoolConfig {
            user_memory_mb: 1024,
            ..PoolConfig::default()
        };
        config.max_blocking_wait = Duration::from_secs(20);
        let wasm = factory::wasm::WasmFactory::new(factory::wasm::WasmConfig::default())
            .expect("wasmtime starts");
        let assembled = runtime
            .block_on(Standalone::assemble(
                config,
                vec![PoolFactory::in_process(Arc::new(wasm))],
            ))
            .expect("node assembles");
        let node = Node {
            runtime,
            state: assembled.state,
            pool: assembled.pool,
            _dir: dir,
        };
        let body = json!({
            "exec": {"kind": "wasm:wasip1", "code": NOT_A_COMMAND, "binary": true},
            "annotations": [{"key": "web-export", "value": true}],
        });
        let (status, reply) = node.send(
            Method::PUT,
            "/api/v1/namespaces/guest/actions/target",
            HeaderMap::new(),
            serde_json::to_vec(&body).expect("JSON serializes"),
        );
        assert_eq!(status, StatusCode::OK, "target action created: {reply}");
        let (status, reply) = node.send(
            Method::POST,
            "/api/v1/namespaces/guest/actions/target?blocking=true",
            HeaderMap::new(),
            Vec::new(),
        );
        assert_eq!(
            (status, reply["response"]["status"].as_str()),
            (StatusCode::BAD_GATEWAY, Some("action developer error")),
            "target action refused at init: {reply}"
        );
        node
    }

    fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path_and_query);
        let encoded = base64::engine::general_purpose::STANDARD.encode(GUEST_KEY);
        request = request.header(header::AUTHORIZATION, format!("Basic {encoded}"));
        let mut request = request
            .body(Full::new(Bytes::from(body)))
            .expect("a request");
        for (name, value) in &headers {
            request.headers_mut().append(name, value.clone());
        }
        let state = Arc::clone(&self.state);
        self.runtime.block_on(async move {
            let response = tokio::time::timeout(Duration::from_secs(60), handle(state, request))
                .await
                .expect("the server answers within 60 s");
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .expect("a response body")
                .to_bytes();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        })
    }

    fn stop(self) {
        let pool = self.pool;
        self.runtime
            .block_on(async move { pool.shutdown(Duration::from_secs(10)).await });
    }
}

/// The property of every answer: never a 500, and a 4xx carries OpenWhisk's error body.
fn assert_answer(
    status: StatusCode,
    body: &Value,
    allowed: &[StatusCode],
) -> Result<(), TestCaseError> {
    prop_assert!(
        status.is_client_error() || allowed.contains(&status),
        "unexpected {status}: {body}"
    );
    if status.is_client_error() && status != StatusCode::NOT_FOUND || body.get("error").is_some() {
        let text = body["error"].as_str().unwrap_or("");
        prop_assert!(
            !text.trim().is_empty(),
            "{status} without an error text: {body}"
        );
    }
    Ok(())
}

/// A query string: encoded pairs, a blocking invoke's flags, or arbitrary characters
/// percent-encoded.
fn query_string() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<bool>(), prop::option::of(0i64..70_000)).prop_map(|(result, timeout)| {
            let timeout = timeout.map_or(String::new(), |t| format!("&timeout={t}"));
            format!("blocking=true&result={result}{timeout}")
        }),
        query_pairs().prop_map(|pairs| form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()),
        string().prop_map(|text| percent(&text)),
    ]
}

/// Every byte outside the unreserved set percent-encoded, so that any text makes a valid URI.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~=&".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn put_bodies() -> impl Strategy<Value = Vec<u8>> {
    let valid = json!({
        "exec": {"kind": "wasm:wasip1", "code": NOT_A_COMMAND, "binary": true, "main": "main"},
        "parameters": [{"key": "a", "value": 1}, {"key": "b", "value": "x", "init": true}],
        "annotations": [{"key": "web-export", "value": true}],
        "limits": {"timeout": 1000, "memory": 128, "logs": 1, "concurrency": 1},
        "version": "0.0.2",
        "publish": false,
        "delAnnotations": ["x"],
    });
    prop_oneof![
        1 => bytes(),
        2 => any_json().prop_map(|v| serde_json::to_vec(&v).expect("JSON serializes")),
        5 => edits().prop_map(move |e| serde_json::to_vec(&mutate(&valid, &e))
            .expect("JSON serializes")),
    ]
}

#[test]
fn standalone_action_put_bodies_never_panic() {
    let node = Node::start();
    let strategy = (put_bodies(), headers(), any::<bool>());
    run(HTTP_CASES, strategy, |(body, headers, overwrite)| {
        let path = format!("/api/v1/namespaces/guest/actions/fuzzed?overwrite={overwrite}");
        let (status, reply) = node.send(Method::PUT, &path, headers, body);
        assert_answer(status, &reply, &[StatusCode::OK])
    });
    node.stop();
}

#[test]
fn standalone_invoke_bodies_and_queries_never_panic() {
    let node = Node::start();
    let strategy = (body(), headers(), query_string());
    run(HTTP_CASES, strategy, |(body, headers, query)| {
        let path = format!("/api/v1/namespaces/guest/actions/target?{query}");
        let (status, reply) = node.send(Method::POST, &path, headers, body);
        // 202: accepted (non-blocking); 502: the developer error of the blocking run.
        assert_answer(
            status,
            &reply,
            &[
                StatusCode::OK,
                StatusCode::ACCEPTED,
                StatusCode::BAD_GATEWAY,
            ],
        )
    });
    node.stop();
}

#[test]
fn standalone_list_queries_and_paths_never_panic() {
    let node = Node::start();
    let path = prop_oneof![
        3 => (
            prop::sample::select(vec![
                "/api/v1/namespaces/guest/activations",
                "/api/v1/namespaces/guest/actions",
                "/api/v1/namespaces/_/actions",
            ]),
            query_string(),
        )
            .prop_map(|(path, query)| format!("{path}?{query}")),
        1 => prop::collection::vec(string(), 0..7).prop_map(|segments| {
            let segments: Vec<String> = segments.iter().map(|s| percent(s)).collect();
            format!("/{}", segments.join("/"))
        }),
        1 => string().prop_map(|s| format!("/api/v1/namespaces/guest/activations/{}", percent(&s))),
    ];
    let strategy = (path, prop::sample::select(METHODS));
    run(HTTP_CASES, strategy, |(path, method)| {
        let method = Method::from_bytes(method.as_bytes()).expect("a method name");
        let (status, reply) = node.send(method, &path, HeaderMap::new(), Vec::new());
        assert_answer(status, &reply, &[StatusCode::OK])
    });
    node.stop();
}

#[test]
fn standalone_web_requests_never_panic() {
    let node = Node::start();
    let extension =
        prop::sample::select(vec!["", ".json", ".http", ".html", ".text", ".svg", ".xml"]);
    let strategy = (
        prop::sample::select(METHODS),
        extension,
        string(),
        query_string(),
        headers(),
        body(),
    );
    run(
        HTTP_CASES,
        strategy,
        |(method, extension, rest, query, headers, body)| {
            let method = Method::from_bytes(method.as_bytes()).expect("a method name");
            let path = format!(
                "/api/v1/web/guest/default/target{extension}/{}?{query}",
                percent(&rest)
            );
            let (status, reply) = node.send(method, &path, headers, body);
            assert_answer(status, &reply, &[StatusCode::OK, StatusCode::BAD_GATEWAY])
        },
    );
    node.stop();
}
