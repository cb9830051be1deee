//! What OpenWhisk's acks and records must look like, for the end-to-end cases: one ack of each
//! kind checked in its exact shape (docs/protocol.md §4: which ack, whole or shrunk, `transid` echoed
//! unchanged, `isSystemError`, `instance`), a whole `WhiskActivation` and its stored record
//! (docs/protocol.md §8), and the cases' shared set-up (one case at a time, one invoker).
//!
//! Shared by `tests/invoker_cases.rs`, `tests/invoker_scale.rs` and `tests/invoker_operations.rs`:
//! `#[path = "support/acks.rs"] mod acks;` next to `mod controller;`.

#![allow(
    dead_code,
    reason = "each test crate uses a different part of the checks"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use executor::message::AcknowledgementMessage;
use serde_json::{Value, json};

use crate::controller::{Cluster, instance};

/// 1024 MB in bytes, the user memory of every invoker here (maxPeek 8).
pub const MEMORY_BYTES: u64 = 1_073_741_824;
/// The user memory as configured.
pub const MEMORY: &str = "1024 MB";
/// How long a case waits after its last expected ack to be sure no other ack follows.
pub const QUIET: Duration = Duration::from_secs(3);

/// One case at a time: each starts a broker, a CouchDB server and invokers on two shared cores.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Services plus invoker 0, pinging.
pub async fn one_invoker() -> Cluster {
    let cluster = Cluster::start(MEMORY).await;
    cluster.await_pings(&[0], Duration::from_secs(120)).await;
    cluster
}

pub fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

pub fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_string()).collect()
}

/// Annotations as a key → value map (their order carries no meaning).
pub fn annotations(activation: &Value) -> BTreeMap<String, Value> {
    activation["annotations"]
        .as_array()
        .unwrap_or_else(|| panic!("annotations not an array: {activation}"))
        .iter()
        .map(|entry| {
            assert_eq!(keys(entry), set(&["key", "value"]), "{entry}");
            (
                entry["key"].as_str().expect("key").to_string(),
                entry["value"].clone(),
            )
        })
        .collect()
}

/// What an activation of a run action must be.
pub struct Expected<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub version: &'a str,
    pub status: u64,
    pub result: Value,
    pub limits: Value,
    pub timed_out: bool,
}

/// Checks a whole `WhiskActivation` (docs/protocol.md §8) as the invoker builds it after a run.
pub fn check_activation(activation: &Value, expected: &Expected<'_>) {
    assert_eq!(
        keys(activation),
        set(&[
            "namespace",
            "name",
            "subject",
            "activationId",
            "start",
            "end",
            "response",
            "logs",
            "version",
            "publish",
            "annotations",
            "duration"
        ]),
        "{activation}"
    );
    assert_eq!(activation["namespace"], "guest");
    assert_eq!(activation["subject"], "guest");
    assert_eq!(activation["name"], expected.name);
    assert_eq!(activation["activationId"], expected.id);
    assert_eq!(activation["version"], expected.version);
    assert_eq!(activation["publish"], false);
    let start = activation["start"].as_u64().expect("start");
    let end = activation["end"].as_u64().expect("end");
    assert_eq!(
        activation["duration"].as_u64(),
        Some(end - start),
        "{activation}"
    );
    let response = &activation["response"];
    assert_eq!(response["statusCode"], expected.status, "{activation}");
    assert_eq!(response["result"], expected.result, "{activation}");
    let annotations = annotations(activation);
    let names: BTreeSet<String> = annotations.keys().cloned().collect();
    let required = set(&["limits", "path", "kind", "timeout", "waitTime"]);
    assert!(
        names == required || names == &required | &set(&["initTime"]),
        "annotations {names:?}"
    );
    assert_eq!(annotations["limits"], expected.limits);
    assert_eq!(annotations["path"], format!("guest/{}", expected.name));
    assert_eq!(annotations["kind"], "wasm:wasip1");
    assert_eq!(annotations["timeout"], expected.timed_out);
    assert!(annotations["waitTime"].is_u64(), "{activation}");
    if let Some(init) = annotations.get("initTime") {
        assert!(init.is_u64(), "{activation}");
    }
}

/// The record of `activation` in the activations DB: `_id` = `<ns>/<id>`, `entityType`, `updated`,
/// and otherwise the acked activation with the collected logs. Returns the record.
pub async fn check_record(cluster: &Cluster, activation: &Value) -> Value {
    let id = activation["activationId"].as_str().expect("id");
    let record = cluster
        .record("guest", id, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no record guest/{id}; logs:\n{}", cluster.logs()));
    assert_eq!(record["_id"], format!("guest/{id}"));
    assert_eq!(record["entityType"], "activation");
    assert!(record["updated"].is_u64(), "{record}");
    assert!(record["_rev"].is_string(), "{record}");
    let mut stored = record.clone();
    let mut acked = activation.clone();
    for key in ["_id", "_rev", "entityType", "updated", "logs"] {
        stored.as_object_mut().expect("object").remove(key);
    }
    acked.as_object_mut().expect("object").remove("logs");
    assert_eq!(
        stored, acked,
        "the record differs from the acked activation"
    );
    record
}

/// The record's log lines, each checked for the `<time padded to 30> <stream>: <text>` form;
/// returns the `<stream>: <text>` parts.
pub fn log_texts(record: &Value) -> Vec<String> {
    record["logs"]
        .as_array()
        .unwrap_or_else(|| panic!("logs not an array: {record}"))
        .iter()
        .map(|line| {
            let line = line.as_str().expect("log line is a string");
            assert!(line.len() > 31 && line.is_char_boundary(30), "{line:?}");
            let (time, rest) = line.split_at(30);
            assert!(time.trim_end().ends_with('Z'), "time of {line:?}");
            assert!(
                rest.starts_with(" stdout: ") || rest.starts_with(" stderr: "),
                "{line:?}"
            );
            rest[1..].to_string()
        })
        .collect()
}

/// Blocking, logs collected: a whole `ResultMessage` (logs empty) then a `CompletionMessage`.
/// Returns the activation of the Result.
pub async fn result_then_completion(
    cluster: &Cluster,
    msg: &Value,
    id: &str,
    invoker: u32,
) -> Value {
    let (ack, raw) = cluster.ack().await;
    assert!(
        matches!(ack, AcknowledgementMessage::Result { .. }),
        "expected a ResultMessage first: {raw}"
    );
    assert_eq!(keys(&raw), set(&["transid", "response"]), "{raw}");
    assert_eq!(raw["transid"], msg["transid"], "transid echoed unchanged");
    assert!(raw["response"].is_object(), "whole, not shrunk: {raw}");
    assert_eq!(raw["response"]["activationId"], id);
    assert_eq!(
        raw["response"]["logs"],
        json!([]),
        "a Result carries no logs"
    );
    let activation = raw["response"].clone();
    completion(cluster, msg, id, invoker, false).await;
    activation
}

/// The next ack is a `CompletionMessage` for `id` from `invoker`.
pub async fn completion(
    cluster: &Cluster,
    msg: &Value,
    id: &str,
    invoker: u32,
    system_error: bool,
) {
    let (ack, raw) = cluster.ack().await;
    assert!(
        matches!(ack, AcknowledgementMessage::Completion { .. }),
        "expected a CompletionMessage: {raw}"
    );
    assert_eq!(
        keys(&raw),
        set(&["transid", "activationId", "isSystemError", "instance"]),
        "{raw}"
    );
    assert_eq!(raw["transid"], msg["transid"], "transid echoed unchanged");
    assert_eq!(raw["activationId"], id);
    assert_eq!(raw["isSystemError"], system_error);
    assert_eq!(raw["instance"], instance(invoker, MEMORY_BYTES));
}

/// The next ack is a whole `CombinedCompletionAndResultMessage` for `id`; returns its activation.
pub async fn combined_whole(cluster: &Cluster, msg: &Value, id: &str, invoker: u32) -> Value {
    let (ack, raw) = cluster.ack().await;
    assert!(
        matches!(ack, AcknowledgementMessage::Combined { .. }),
        "expected a CombinedCompletionAndResultMessage: {raw}"
    );
    assert_eq!(
        keys(&raw),
        set(&["transid", "response", "isSystemError", "instance"]),
        "{raw}"
    );
    assert_eq!(raw["transid"], msg["transid"], "transid echoed unchanged");
    assert!(raw["response"].is_object(), "whole, not shrunk: {raw}");
    assert_eq!(raw["response"]["activationId"], id);
    assert_eq!(raw["isSystemError"], false);
    assert_eq!(raw["instance"], instance(invoker, MEMORY_BYTES));
    raw["response"].clone()
}

/// Nothing more on `completed0` for [`QUIET`].
pub async fn no_more_acks(cluster: &Cluster) {
    if let Some((_, raw)) = cluster.ack_within(QUIET).await {
        panic!("an unexpected ack: {raw}");
    }
}

pub fn limits(timeout: u64, logs: u64) -> Value {
    json!({"timeout": timeout, "memory": 128, "logs": logs, "concurrency": 1})
}
