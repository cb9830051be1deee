//! proptest strategies shared by the parser property tests (`executor/tests/parsers_proptest.rs`,
//! `factory/tests/parsers_proptest.rs`, which includes this file with `#[path]`): arbitrary bytes,
//! arbitrary JSON whose keys and strings are drawn partly from OpenWhisk's real field names and
//! values (so parsers get past their first field), and mutations of a real fixture (one field
//! replaced or removed, the text truncated, a byte changed).

#![allow(
    dead_code,
    reason = "each test crate uses a different part of the strategies"
)]

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use serde_json::{Map, Value};

/// The per-test configuration: `cases` cases and no `proptest-regressions/` files written into the
/// repository (a failure prints its minimal input; a regression worth keeping becomes a unit test).
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Field names of OpenWhisk's messages, documents, records, manifests and REST bodies.
pub const KEYS: &[&str] = &[
    "activationId",
    "transid",
    "action",
    "user",
    "exec",
    "kind",
    "code",
    "binary",
    "limits",
    "main",
    "annotations",
    "parameters",
    "namespace",
    "name",
    "version",
    "components",
    "runtimes",
    "image",
    "key",
    "value",
    "init",
    "encryption",
    "content",
    "blocking",
    "revision",
    "rootControllerIndex",
    "asString",
    "instanceType",
    "instance",
    "uniqueName",
    "displayedName",
    "userMemory",
    "response",
    "result",
    "statusCode",
    "size",
    "start",
    "end",
    "duration",
    "logs",
    "publish",
    "subject",
    "authkey",
    "api_key",
    "rights",
    "uuid",
    "path",
    "entityType",
    "_id",
    "_rev",
    "_attachments",
    "updated",
    "attachmentName",
    "attachmentType",
    "length",
    "digest",
    "timeout",
    "memory",
    "concurrency",
    "isSystemError",
    "invoker",
    "isEnabled",
    "initArgs",
    "lockedArgs",
    "cause",
    "traceContext",
    "stemCells",
    "initialCount",
    "reactive",
    "default",
    "deprecated",
    "blackboxes",
    "prefix",
    "tag",
    "registry",
    "attached",
    "jar",
    "delAnnotations",
    "error",
    "body",
    "headers",
    "description",
];

/// String values the parsers look for.
pub const WORDS: &[&str] = &[
    "",
    "action",
    "activation",
    "trigger",
    "wasm:wasip1",
    "wasm:default",
    "nodejs:20",
    "nodejs:default",
    "python:3",
    "blackbox",
    "sequence",
    "java:8",
    "guest",
    "guest/pkg",
    "/guest/pkg/a",
    "ns/pkg/a",
    "hello",
    "0.0.1",
    "1.2.3",
    "0",
    "controller",
    "invoker",
    "5ba68dd7a2804d1d9057e02036f41959",
    "8db8df93edd56cd586b3bc355166765c",
    "guest/5ba68dd7a2804d1d9057e02036f41959",
    "2025-03-14T09:26:53.259Z",
    "1969-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999999Z",
    "mem:",
    "mem:AGFzbQEAAAA=",
    "mem:AGFzbQEAAAA",
    "mem:!!",
    "couch:",
    "couch:246fc0c3-6162-4c82-819d-3c903dfc51f7",
    "s3:bucket/key",
    "codefile",
    "AGFzbQEAAAA=",
    "UEsDBA==",
    "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==",
    "function main(p){return p}",
    "application/octet-stream",
    "text/plain; charset=UTF-8",
    "sha256-00",
    "aes-256",
    "openwhisk/action-nodejs-v20",
    "openwhisk/action-nodejs-v20:nightly",
    "docker.io/openwhisk/dockerskeleton:1.0",
    "256 MB",
    "2048m",
    "99999999999999999999 GB",
    "5 minutes",
    "10 seconds",
    "true",
    "false",
    "provide-api-key",
    "web-export",
    "raw-http",
    "\u{0}",
    "é",
    "\u{10ffff}",
];

/// A string: a known word, a field name, or anything.
pub fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(str::to_string),
        1 => prop::sample::select(KEYS).prop_map(str::to_string),
        3 => any::<String>(),
        1 => "[a-zA-Z0-9+/=:._ -]{0,40}",
    ]
}

/// An object key: mostly OpenWhisk's field names.
pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

/// A JSON number, including the edges (negative, huge, fractional).
pub fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..10_000).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            0.0f64,
            -0.0,
            0.5,
            -1.5,
            1e300,
            -1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            1.8446744073709552e19,
        ])
        .prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |n| serde_json::Number::from_f64(n)
            .map(Value::Number)),
    ]
}

/// A JSON scalar.
pub fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        string().prop_map(Value::String),
    ]
}

/// Any JSON value, up to 4 levels deep.
pub fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Arbitrary bytes.
pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..4096)
}

/// One change to a JSON value at one of its nodes.
#[derive(Debug, Clone)]
pub enum Edit {
    /// The node becomes this value.
    Replace(Index, Value),
    /// The node is removed from its parent (the root becomes `null`).
    Remove(Index),
    /// A field (one it has, or mostly one of [`KEYS`]) of an object node (the root when `None`)
    /// is set to this value; nothing happens when the root is not an object. Reaches a given field far more often than
    /// [`Edit::Replace`] does in a large document.
    Set(Option<Index>, FieldName, Value),
}

/// Which field [`Edit::Set`] sets.
#[derive(Debug, Clone)]
pub enum FieldName {
    /// One the object has (none when it is empty).
    Existing(Index),
    /// This one.
    Named(String),
}

fn field_name() -> impl Strategy<Value = FieldName> {
    prop_oneof![
        any::<Index>().prop_map(FieldName::Existing),
        key().prop_map(FieldName::Named),
    ]
}

/// One to three edits.
pub fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        3 => (any::<Index>(), json()).prop_map(|(at, value)| Edit::Replace(at, value)),
        1 => any::<Index>().prop_map(Edit::Remove),
        4 => (prop::option::of(any::<Index>()), field_name(), prop_oneof![leaf(), json()])
            .prop_map(|(at, field, value)| Edit::Set(at, field, value)),
    ];
    prop::collection::vec(edit, 1..4)
}

/// A step from a node to a child.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Item(usize),
}

fn paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(Step::Key(key.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                prefix.push(Step::Item(index));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn node<'a>(value: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(value, |node, step| match step {
        Step::Key(key) => &mut node[key.as_str()],
        Step::Item(index) => &mut node[*index],
    })
}

/// `value` with `edits` applied, each at a node chosen among the current ones.
pub fn mutate(value: &Value, edits: &[Edit]) -> Value {
    let mut value = value.clone();
    for edit in edits {
        let mut all = Vec::new();
        paths(&value, &mut Vec::new(), &mut all);
        match edit {
            Edit::Replace(at, replacement) => {
                *node(&mut value, at.get::<Vec<Step>>(&all)) = replacement.clone();
            }
            Edit::Set(at, field, replacement) => {
                let objects: Vec<&Vec<Step>> = all
                    .iter()
                    .filter(|path| node(&mut value, path).is_object())
                    .collect();
                if !objects.is_empty() {
                    let path = at
                        .as_ref()
                        .map_or(&[][..], |at| at.get(&objects).as_slice());
                    let path = path.to_vec();
                    let object = node(&mut value, &path);
                    let key = match field {
                        FieldName::Named(key) => Some(key.clone()),
                        FieldName::Existing(which) => {
                            let keys: Vec<&String> = object
                                .as_object()
                                .map(|map| map.keys().collect())
                                .unwrap_or_default();
                            (!keys.is_empty()).then(|| which.get(&keys).to_string())
                        }
                    };
                    if let (Some(key), Some(map)) = (key, object.as_object_mut()) {
                        map.insert(key, replacement.clone());
                    }
                }
            }
            Edit::Remove(at) => {
                let path: &[Step] = at.get::<Vec<Step>>(&all);
                match path.split_last() {
                    None => value = Value::Null,
                    Some((last, parent)) => match (node(&mut value, parent), last) {
                        (Value::Object(map), Step::Key(key)) => {
                            map.remove(key);
                        }
                        (Value::Array(items), Step::Item(index)) => {
                            items.remove(*index);
                        }
                        _ => unreachable!("a path's last step matches its parent"),
                    },
                }
            }
        }
    }
    value
}

/// A damage to a fixture's bytes.
#[derive(Debug, Clone)]
pub enum Damage {
    /// Cut at this point.
    Truncate(Index),
    /// This byte replaced.
    Byte(Index, u8),
}

/// A truncation or a changed byte.
pub fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<Index>().prop_map(Damage::Truncate),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Damage::Byte(at, byte)),
    ]
}

/// `bytes` damaged.
pub fn damaged(bytes: &[u8], damage: &Damage) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    if bytes.is_empty() {
        return bytes;
    }
    match damage {
        Damage::Truncate(at) => bytes.truncate(at.index(bytes.len())),
        Damage::Byte(at, byte) => {
            let at = at.index(bytes.len());
            bytes[at] = *byte;
        }
    }
    bytes
}

/// Asserts that a parser's error is typed and says something: its `Display` is not empty.
pub fn assert_error_text(error: &dyn std::fmt::Display) -> Result<(), TestCaseError> {
    let text = error.to_string();
    prop_assert!(!text.trim().is_empty(), "an error with an empty text");
    Ok(())
}
