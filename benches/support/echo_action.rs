//! The wasm `echo` action as the Kafka-path benches (`benches/kafka.rs`, `benches/fpc.rs`) run it:
//! its document `guest/echo0` in the store with the module as a `couch:` attachment (log limit 0),
//! and the non-blocking `ActivationMessage` that asks an invoker to run it.

use std::time::SystemTime;

use bytes::Bytes;
use executor::store::couchdb::{CouchClient, CouchDbConfig};
use serde_json::json;

/// The action's document id.
pub const ACTION: &str = "guest/echo0";
/// The action's memory limit, MB: what each of its activations reserves of an invoker's user
/// memory, so user memory / this is the invoker's maxPeek.
pub const MEMORY_MB: usize = 128;
/// The id of the module's attachment.
const ATTACHMENT: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

/// Milliseconds since 1970, as OpenWhisk's messages carry time.
pub fn now_millis() -> u64 {
    executor::record::epoch_millis(SystemTime::now())
}

/// A non-blocking `ActivationMessage` `id` for `guest/echo0` with the content `{"n": n}`, answered
/// on `completed0`; `revision` the document's revision, or `None` (`null`) for the invoker to read
/// the current one.
pub fn activation_message(id: &str, n: usize, revision: Option<&str>) -> String {
    json!({
        "transid": [format!("bench{n:027}"), now_millis()],
        "action": {"path": "guest", "name": "echo0", "version": "0.0.1"},
        "revision": revision,
        "user": {"subject": "guest", "namespace": {"name": "guest", "uuid": "23bc46b1-71f6-4ed5-8c54-816aa4f8c502"},
                 "authkey": {"api_key": "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:key"}, "rights": [], "limits": {}},
        "activationId": id,
        "rootControllerIndex": {"asString": "0", "instanceType": "controller"},
        "blocking": false,
        "content": {"n": n},
        "initArgs": [],
        "lockedArgs": {}
    })
    .to_string()
}

/// Creates the databases and stores `guest/echo0` with its module as a `couch:` attachment;
/// returns the final revision (the attachment made a new one: the one creation orders and
/// activations name).
pub async fn setup_store(couch: &CouchDbConfig) -> String {
    let client = CouchClient::new(couch).expect("couch client");
    for db in [&couch.entity_db, &couch.activation_db, &couch.auth_db] {
        client.ensure_db(db).await.expect("db");
    }
    let module = std::fs::read(ow_action::artifacts::wasm_module("echo").expect("echo builds"))
        .expect("module");
    let document = json!({
        "_id": ACTION, "entityType": "action", "namespace": "guest", "name": "echo0",
        "exec": {"kind": "wasm:wasip1", "binary": true,
                 "code": {"attachmentName": format!("couch:{ATTACHMENT}"), "attachmentType": "application/octet-stream"}},
        "parameters": [], "limits": {"timeout": 5000, "memory": MEMORY_MB, "logs": 0, "concurrency": 1},
        "version": "0.0.1", "publish": false, "annotations": [], "updated": now_millis()
    });
    let rev = client
        .put_json(&[&couch.entity_db, ACTION], &document)
        .await
        .expect("doc");
    let response = client
        .request(
            hyper::Method::PUT,
            &[&couch.entity_db, ACTION, ATTACHMENT],
            &format!("rev={rev}"),
            Some("application/octet-stream"),
            Some(Bytes::from(module)),
        )
        .await
        .expect("attachment");
    assert!(response.status.is_success());
    let body: serde_json::Value =
        serde_json::from_slice(&response.body).expect("attachment answer");
    body["rev"]
        .as_str()
        .expect("attachment revision")
        .to_string()
}
