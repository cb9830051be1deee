//! End to end, case by case: the real `wasm-invoker invoker` binary against a real broker (Tansu)
//! and a real CouchDB API (pouchdb-server), driven by the controller-side harness in
//! `tests/support/controller.rs`. Each case checks the acks on `completed0` in their exact shapes and
//! the record in the activations database (`tests/support/acks.rs`).
//!
//! This file covers the activation outcomes: success, application, developer and timeout errors,
//! revision mismatch, init args, array content, a malformed message between good ones.
//! `tests/invoker.rs` covers pings, the health action, the basic ack plans, missing actions, admin
//! routes and a flood; `tests/invoker_scale.rs` several invokers and many messages;
//! `tests/invoker_operations.rs` the blacklist, user events and the SIGTERM drain.
//!
//! The cases run one at a time (each starts its own broker, database and invokers; the machine has
//! two cores). Needs `tansu` and `pouchdb-server`; `scripts/test` installs both.

#[path = "support/acks.rs"]
mod acks;
#[path = "support/controller.rs"]
mod controller;

use std::collections::BTreeMap;

use acks::*;
use controller::{instance, message, module};
use executor::message::AcknowledgementMessage;
use serde_json::{Value, json};

/// The budget of the `spin` warm-up of the time-limit case: time enough to compile the module on a
/// loaded machine; the warm-up then spins until it runs out.
const WARMUP_SPIN_MS: u64 = 5000;

#[test]
fn test_success_with_logs_and_application_error() {
    let _serial = serial();
    runtime().block_on(async {
        let cluster = one_invoker().await;
        cluster
            .put_wasm_action("hello", "hello", limits(5000, 10), "0.0.1")
            .await;

        // Success, blocking, logs collected: Result then Completion; the record has the logs.
        let (id, msg) = message("hello", 1, true, json!({"name": "Ada"}));
        cluster.produce(&msg.to_string()).await;
        let activation = result_then_completion(&cluster, &msg, &id, 0).await;
        check_activation(
            &activation,
            &Expected {
                id: &id,
                name: "hello",
                version: "0.0.1",
                status: 0,
                result: json!({"greeting": "Hello, Ada!"}),
                limits: limits(5000, 10),
                timed_out: false,
            },
        );
        assert!(activation["response"]["size"].is_u64(), "{activation}");
        let record = check_record(&cluster, &activation).await;
        assert_eq!(log_texts(&record), ["stdout: greeting Ada"]);

        // Application error: the action's `{"error": ...}` object, status 1, not a system error.
        let error = json!({"error": {"code": 42, "reason": "no such row"}});
        let (id, msg) = message("echo", 2, true, error.clone());
        cluster.produce(&msg.to_string()).await;
        let activation = result_then_completion(&cluster, &msg, &id, 0).await;
        check_activation(
            &activation,
            &Expected {
                id: &id,
                name: "echo",
                version: "0.0.1",
                status: 1,
                result: error,
                limits: limits(5000, 10),
                timed_out: false,
            },
        );
        let record = check_record(&cluster, &activation).await;
        assert_eq!(record["response"]["statusCode"], 1);
        no_more_acks(&cluster).await;
    });
}

#[test]
fn test_developer_error_when_the_action_prints_no_json() {
    let _serial = serial();
    runtime().block_on(async {
        let cluster = one_invoker().await;
        cluster
            .put_wasm_action("garbage", "garbage", limits(5000, 10), "0.0.1")
            .await;
        let (id, msg) = message("garbage", 1, true, json!({}));
        cluster.produce(&msg.to_string()).await;
        let activation = result_then_completion(&cluster, &msg, &id, 0).await;
        check_activation(
            &activation,
            &Expected {
                id: &id,
                name: "garbage",
                version: "0.0.1",
                status: 2,
                result: json!({"error": "The action did not return a dictionary or array."}),
                limits: limits(5000, 10),
                timed_out: false,
            },
        );
        let record = check_record(&cluster, &activation).await;
        let logs = log_texts(&record);
        assert!(
            logs.starts_with(&[
                "stdout: about to print garbage".to_string(),
                "stdout: this is not json".to_string()
            ]),
            "the unparsable last line stays in the logs: {logs:?}"
        );
        no_more_acks(&cluster).await;
    });
}

#[test]
fn test_time_limit_obeyed_and_exceeded() {
    let _serial = serial();
    runtime().block_on(async {
        let cluster = one_invoker().await;
        cluster
            .put_wasm_action("quick", "hello", limits(500, 10), "0.0.1")
            .await;
        cluster
            .put_wasm_action("spin", "spin", limits(500, 10), "0.0.1")
            .await;
        // The 500 ms budget covers `/init` (finding or compiling the module) and `/run` each. A cold
        // compile on a loaded two-core machine can take longer than that, which would make the
        // obeyed case time out in init and the exceeded case time out before it logs: the pair
        // would test the compiler's speed. Twin actions with the same modules and a generous budget
        // compile them first; the modules cache is keyed by the module's digest, so `quick` and
        // `spin` find them compiled, and only their own run is measured against 500 ms.
        cluster
            .put_wasm_action("quick-warmup", "hello", limits(60_000, 0), "0.0.1")
            .await;
        cluster
            .put_wasm_action("spin-warmup", "spin", limits(WARMUP_SPIN_MS, 10), "0.0.1")
            .await;
        let (id, msg) = message("quick-warmup", 101, true, json!({}));
        cluster.produce(&msg.to_string()).await;
        let activation = combined_whole(&cluster, &msg, &id, 0).await;
        assert_eq!(activation["response"]["statusCode"], 0, "{activation}");
        let (id, msg) = message("spin-warmup", 102, true, json!({}));
        cluster.produce(&msg.to_string()).await;
        let activation = result_then_completion(&cluster, &msg, &id, 0).await;
        let record = check_record(&cluster, &activation).await;
        assert_eq!(
            log_texts(&record).first().map(String::as_str),
            Some("stdout: spinning"),
            "the spin warm-up ran, so its module is compiled: {record}"
        );

        // Obeyed: a quick action with the same 500 ms limit succeeds, `timeout: false`.
        let (id, msg) = message("quick", 1, true, json!({}));
        cluster.produce(&msg.to_string()).await;
        let activation = result_then_completion(&cluster, &msg, &id, 0).await;
        check_activation(
            &activation,
            &Expected {
                id: &id,
                name: "quick",
                version: "0.0.1",
                status: 0,
                result: json!({"greeting": "Hello, stranger!"}),
                limits: limits(500, 10),
                timed_out: false,
            },
        );
        check_record(&cluster, &activation).await;

        // Exceeded: status 2 with OpenWhisk's message, `timeout: true`, no `size`.
        let (id, msg) = message("spin", 2, true, json!({}));
        cluster.produce(&msg.to_string()).await;
        let activation = result_then_completion(&cluster, &msg, &id, 0).await;
        check_activation(
            &activation,
            &Expected {
                id: &id,
                name: "spin",
                version: "0.0.1",
                status: 2,
                result: json!({"error": "The action exceeded its time limits of 500 milliseconds."}),
                limits: limits(500, 10),
                timed_out: true,
            },
        );
        assert!(
            activation["response"].get("size").is_none(),
            "a timeout has no size: {activation}"
        );
        let record = check_record(&cluster, &activation).await;
        let logs = log_texts(&record);
        assert_eq!(
            logs.first().map(String::as_str),
            Some("stdout: spinning"),
            "{logs:?}"
        );
        no_more_acks(&cluster).await;
    });
}

#[test]
fn test_revision_mismatch_runs_the_latest_revision() {
    let _serial = serial();
    runtime().block_on(async {
        let cluster = one_invoker().await;
        // Revision 1 runs `hello`; the update makes the action `echo`, version 0.0.2.
        let old = cluster
            .put_wasm_action("changing", "hello", limits(5000, 0), "0.0.1")
            .await;
        let mut updated =
            controller::wasm_document("changing", "echo-module", limits(5000, 0), "0.0.2");
        let current = cluster.entity("guest/changing").await;
        updated["_rev"] = current["_rev"].clone();
        let new = cluster
            .put_action(&updated, &[("echo-module", module("echo"))])
            .await;
        assert_ne!(old, new);

        let (id, mut msg) = message("changing", 1, true, json!({"name": "Ada"}));
        msg["revision"] = json!(old);
        cluster.produce(&msg.to_string()).await;
        let activation = combined_whole(&cluster, &msg, &id, 0).await;
        check_activation(
            &activation,
            &Expected {
                id: &id,
                name: "changing",
                version: "0.0.2",
                status: 0,
                result: json!({"name": "Ada"}),
                limits: limits(5000, 0),
                timed_out: false,
            },
        );
        check_record(&cluster, &activation).await;

        // The current revision runs the same code.
        let (id, mut msg) = message("changing", 2, true, json!({"name": "Bob"}));
        msg["revision"] = json!(new);
        cluster.produce(&msg.to_string()).await;
        let activation = combined_whole(&cluster, &msg, &id, 0).await;
        assert_eq!(activation["response"]["result"], json!({"name": "Bob"}));
        assert_eq!(activation["version"], "0.0.2");
        no_more_acks(&cluster).await;
    });
}

#[test]
fn test_init_args_are_environment_not_parameters() {
    let _serial = serial();
    runtime().block_on(async {
        let cluster = one_invoker().await;
        cluster
            .put_wasm_action("env", "env", limits(5000, 0), "0.0.1")
            .await;
        let content = json!({"DB_URL": "http://db.example:5984/rows", "q": "x"});

        // The env action sees DB_URL as a variable; `q` is a parameter, not a variable.
        let (id, mut msg) = message("env", 1, true, content.clone());
        msg["initArgs"] = json!(["DB_URL"]);
        cluster.produce(&msg.to_string()).await;
        let activation = combined_whole(&cluster, &msg, &id, 0).await;
        let env = &activation["response"]["result"];
        assert_eq!(activation["response"]["statusCode"], 0, "{activation}");
        assert_eq!(env["DB_URL"], "http://db.example:5984/rows", "{env}");
        assert!(env.get("q").is_none(), "a parameter leaked into env: {env}");
        assert_eq!(env["__OW_ACTIVATION_ID"], id.as_str());
        check_record(&cluster, &activation).await;

        // echo returns its parameters: DB_URL is not among them.
        let (id, mut msg) = message("echo0", 2, true, content);
        msg["initArgs"] = json!(["DB_URL"]);
        cluster.produce(&msg.to_string()).await;
        let activation = combined_whole(&cluster, &msg, &id, 0).await;
        assert_eq!(activation["response"]["result"], json!({"q": "x"}));
        check_record(&cluster, &activation).await;
        no_more_acks(&cluster).await;
    });
}

#[test]
fn test_array_content_with_log_limit_zero_is_one_whole_combined_ack() {
    let _serial = serial();
    runtime().block_on(async {
        let cluster = one_invoker().await;
        // Fixture A5 with the action replaced by echo (log limit 0) at its latest revision.
        let mut msg: Value = serde_json::from_str(&controller::fixture(
            "kafka/activation-message-array-content.json",
        ))
        .expect("json");
        msg["action"] = json!({"path": "guest", "name": "echo0", "version": "0.0.1"});
        msg["revision"] = Value::Null;
        let id = msg["activationId"].as_str().expect("id").to_string();
        let content = msg["content"].clone();
        assert!(content.is_array());
        cluster.produce(&msg.to_string()).await;
        let activation = combined_whole(&cluster, &msg, &id, 0).await;
        // The same keys as the golden Combined ack's activation.
        let golden: Value =
            serde_json::from_str(&controller::fixture("kafka/ack-combined.json")).expect("json");
        assert_eq!(keys(&activation), keys(&golden["response"]));
        check_activation(
            &activation,
            &Expected {
                id: &id,
                name: "echo0",
                version: "0.0.1",
                status: 0,
                result: content,
                limits: limits(5000, 0),
                timed_out: false,
            },
        );
        let record = check_record(&cluster, &activation).await;
        assert_eq!(record["logs"], json!([]));
        // One ack only: no Completion follows the Combined.
        no_more_acks(&cluster).await;
    });
}

#[test]
fn test_malformed_message_between_two_good_ones() {
    let _serial = serial();
    runtime().block_on(async {
        let cluster = one_invoker().await;
        let (first, msg1) = message("echo0", 1, false, json!({"n": 1}));
        // Looks like an activation (it has an id) but lacks required fields.
        let (bad, _) = message("echo0", 2, false, json!({}));
        let malformed = json!({"activationId": bad, "action": {"path": "guest", "name": "echo0"}});
        let (second, msg2) = message("echo0", 3, false, json!({"n": 3}));
        cluster.produce(&msg1.to_string()).await;
        cluster.produce(&malformed.to_string()).await;
        cluster.produce(&msg2.to_string()).await;
        let mut seen: BTreeMap<String, u32> = BTreeMap::new();
        for _ in 0..2 {
            let (ack, raw) = cluster.ack().await;
            assert!(
                matches!(ack, AcknowledgementMessage::Completion { .. }),
                "{raw}"
            );
            assert_eq!(raw["instance"], instance(0, MEMORY_BYTES));
            let id = raw["activationId"].as_str().expect("id").to_string();
            let msg = if id == first { &msg1 } else { &msg2 };
            assert_eq!(raw["transid"], msg["transid"]);
            *seen.entry(id).or_default() += 1;
        }
        no_more_acks(&cluster).await;
        assert_eq!(
            seen,
            BTreeMap::from([(first.clone(), 1), (second.clone(), 1)])
        );
        assert!(cluster.activation_record(&first).await.is_some());
        assert!(cluster.activation_record(&second).await.is_some());
        assert!(cluster.activation_record(&bad).await.is_none());
        let (_, metrics) = cluster.http("GET", "/metrics", false).await;
        assert!(
            metrics.contains(r#"invoker_messages_total{result="malformed"} 1"#),
            "{metrics}"
        );
    });
}
