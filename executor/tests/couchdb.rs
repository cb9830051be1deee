//! The stores against a real pouchdb-server (CouchDB's HTTP API) and the local directory store:
//! action loading in every code shape, the docs/protocol.md §3 classification, the blacklist view, activation
//! batches, reads and lists, and action writes.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use executor::bytesize::ByteSize;
use executor::document::{ActionDocument, CodeSource, Exec, KindResolver};
use executor::limits::LimitRanges;
use executor::loader::ActionLoader;
use executor::message::{ActivationMessage, UserLimits};
use executor::record::{FallbackReason, WhiskActivation};
use executor::store::couchdb::{CouchActivationStore, CouchClient, CouchEntityStore};
use executor::store::local::LocalStore;
use executor::store::{ActivationQuery, ActivationStore, EntityStore, StoreError};
use factory::wasm::WASM_WASIP1_KIND;
use factory::{Code, Status};
use hyper::Method;
use serde_json::{Value, json};
use support::fixtures;
use support::pouchdb::PouchDb;

const HELLO_CODE: &str = "function main(params) {\n  console.log(`greeting ${params.name}`);\n  console.warn('no locale given, using en');\n  return { payload: `${params.greeting}, ${params.name}!` };\n}\n";

fn resolver() -> Arc<dyn KindResolver> {
    Arc::new(fixtures::manifest_resolver())
}

fn loader(store: Arc<dyn EntityStore>) -> ActionLoader {
    ActionLoader::new(store, resolver(), LimitRanges::default(), ByteSize::mb(16))
}

/// Bytes that look like a wasm module and contain every byte value (not UTF-8, not base64).
fn wasm_bytes(len: usize) -> Vec<u8> {
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    bytes.extend((0..len - 8).map(|i| (i % 251) as u8 ^ (i / 251) as u8));
    bytes
}

fn message(fixture: &str) -> ActivationMessage {
    ActivationMessage::parse(&fixtures::bytes(&format!("kafka/{fixture}"))).expect("fixture")
}

/// A message for `path/name` at `revision`, from the blocking fixture.
fn message_for(path: &str, name: &str, revision: Option<&str>) -> ActivationMessage {
    let mut message = message("activation-message-blocking.json");
    message.action.path = path.into();
    message.action.name = name.into();
    message.revision = revision.map(str::to_string);
    message
}

/// A fixture document without its CouchDB bookkeeping, ready to be PUT as new.
fn fixture_document(name: &str) -> Value {
    let mut value = fixtures::json(&format!("couchdb/{name}"));
    let map = value.as_object_mut().expect("a document object");
    map.remove("_rev");
    map.remove("_attachments");
    value
}

async fn put_raw(client: &CouchClient, db: &str, value: &Value) -> String {
    let id = value["_id"].as_str().expect("an _id").to_string();
    client
        .put_json(&[db, &id], value)
        .await
        .expect("document PUT")
}

async fn put_attachment(
    client: &CouchClient,
    db: &str,
    id: &str,
    name: &str,
    rev: &str,
    content_type: &str,
    bytes: Vec<u8>,
) {
    let response = client
        .request(
            Method::PUT,
            &[db, id, name],
            &format!("rev={rev}"),
            Some(content_type),
            Some(Bytes::from(bytes)),
        )
        .await
        .expect("attachment PUT");
    assert!(
        response.status.is_success(),
        "attachment PUT: {:?}",
        response
    );
}

/// Fixture documents stored exactly as OpenWhisk wrote them, attachments uploaded with the CouchDB
/// attachment API, then loaded through the invoker's path.
#[tokio::test]
async fn test_couchdb_loads_fixture_actions_in_every_code_shape() {
    let server = PouchDb::start();
    let config = server.config("shapes");
    let store = Arc::new(CouchEntityStore::new(&config).unwrap());
    let client = store.client().clone();
    client.ensure_db(&config.entity_db).await.unwrap();
    let db = config.entity_db.as_str();

    // Inline code (the health test action), latest revision.
    put_raw(&client, db, &fixture_document("action-health-test.json")).await;
    // mem: attachment.
    put_raw(
        &client,
        db,
        &fixture_document("action-nodejs-attachment-mem.json"),
    )
    .await;
    // couch: text attachment.
    let thumbnail_code = format!(
        "function main(p) {{ return p; }}\n{}",
        "// padding\n".repeat(4000)
    );
    let rev = put_raw(
        &client,
        db,
        &fixture_document("action-nodejs-attachment-couch.json"),
    )
    .await;
    put_attachment(
        &client,
        db,
        "guest/thumbnail",
        "0ef519ec-7d02-4ffe-8b8a-cc079f7fce21",
        &rev,
        "text/plain; charset=UTF-8",
        thumbnail_code.clone().into_bytes(),
    )
    .await;
    // couch: binary wasm attachment.
    let module = wasm_bytes(143_871);
    let rev = put_raw(
        &client,
        db,
        &fixture_document("action-wasm-attachment.json"),
    )
    .await;
    put_attachment(
        &client,
        db,
        "guest/wordcount",
        "246fc0c3-6162-4c82-819d-3c903dfc51f7",
        &rev,
        "application/octet-stream",
        module.clone(),
    )
    .await;
    // Legacy relative attachment name.
    let mut legacy = fixture_document("action-health-test.json");
    legacy["_id"] = json!("guest/legacy");
    legacy["namespace"] = json!("guest");
    legacy["name"] = json!("legacy");
    legacy["exec"] = json!({"kind": "nodejs:default", "code": {"attachmentName": "codefile", "attachmentType": "text/plain"}, "binary": false});
    let rev = put_raw(&client, db, &legacy).await;
    put_attachment(
        &client,
        db,
        "guest/legacy",
        "codefile",
        &rev,
        "text/plain",
        b"legacy code".to_vec(),
    )
    .await;

    let loader = loader(store.clone());

    let health = loader
        .load(&message("activation-message-health-test.json"))
        .await
        .expect("health action");
    assert_eq!(
        health.code,
        Some(Code::Text(
            "function main(params) { return params; }".into()
        ))
    );
    assert_eq!(health.kind, "nodejs:20");
    assert!(health.provide_api_key);
    assert_eq!(health.limits.memory, 128);

    // The message names revision 3-..., the store holds 1-...: mismatch, retried on the latest.
    let hello = loader
        .load(&message("activation-message-blocking.json"))
        .await
        .expect("hello after revision mismatch");
    assert_eq!(hello.code, Some(Code::Text(HELLO_CODE.into())));
    assert!(!hello.provide_api_key);
    assert!(
        hello
            .revision
            .as_deref()
            .is_some_and(|rev| rev.starts_with("1-"))
    );

    let thumbnail = loader
        .load(&message("activation-message-nonblocking.json"))
        .await
        .expect("thumbnail");
    assert_eq!(thumbnail.code, Some(Code::Text(thumbnail_code)));

    let wordcount = loader
        .load(&message("activation-message-array-content.json"))
        .await
        .expect("wordcount");
    assert_eq!(wordcount.kind, WASM_WASIP1_KIND);
    let Some(Code::Binary(bytes)) = &wordcount.code else {
        panic!(
            "binary code expected, got {:?}",
            wordcount.code.as_ref().map(|_| "text")
        );
    };
    assert_eq!(bytes.as_ref(), module.as_slice());

    let legacy = loader
        .load(&message_for("guest", "legacy", None))
        .await
        .expect("legacy attachment");
    assert_eq!(legacy.code, Some(Code::Text("legacy code".into())));
    assert_eq!(legacy.kind, "nodejs:20");

    // An explicit revision that does not match is reported as such by the store.
    let error = store
        .get_action("guest/hello", Some("9-nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::RevisionMismatch { .. }),
        "{error}"
    );
    // With the right revision, the cache answers even after the document is gone.
    let current = store.get_action("guest/hello", None).await.unwrap();
    let rev = current.rev.clone().unwrap();
    let first = loader
        .load(&message_for("guest", "hello", Some(&rev)))
        .await
        .unwrap();
    store
        .delete_action("guest/hello", Some(&rev))
        .await
        .unwrap();
    let cached = loader
        .load(&message_for("guest", "hello", Some(&rev)))
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&first, &cached));
    // Without a revision the cache is bypassed and the deletion is seen.
    assert_eq!(
        loader
            .load(&message_for("guest", "hello", None))
            .await
            .unwrap_err(),
        FallbackReason::NotFound
    );
}

/// The classification of docs/protocol.md §3, each case with its exact status and message.
async fn check_classification(store: Arc<dyn EntityStore>, raw: impl AsyncPut) {
    let loader = loader(store.clone());
    // Missing document.
    let reason = loader
        .load(&message_for("guest", "nothing", None))
        .await
        .unwrap_err();
    assert_eq!(reason, FallbackReason::NotFound);
    assert_eq!(reason.status(), Status::ApplicationError);
    assert_eq!(
        reason.message(),
        "Action could not be found or may have been deleted."
    );

    // Limits: 1024 MB is over the system maximum (violated) but within a namespace allowing 2048
    // (obeyed).
    let mut big = fixture_document("action-health-test.json");
    big["_id"] = json!("guest/big");
    big["namespace"] = json!("guest");
    big["name"] = json!("big");
    big["limits"]["memory"] = json!(1024);
    raw.put(big).await;
    let reason = loader
        .load(&message_for("guest", "big", None))
        .await
        .unwrap_err();
    assert_eq!(
        reason,
        FallbackReason::LimitViolation("memory 1024 MB exceeds allowed threshold of 512 MB".into())
    );
    assert_eq!(reason.status(), Status::ApplicationError);
    let mut allowed = message_for("guest", "big", None);
    allowed.user.limits = UserLimits {
        max_action_memory: Some(2048),
        ..UserLimits::default()
    };
    assert_eq!(loader.load(&allowed).await.unwrap().limits.memory, 1024);

    // A sequence is not executable: "could not be fetched".
    raw.put(fixture_document("action-sequence.json")).await;
    let reason = loader
        .load(&message_for("guest", "sortlines", None))
        .await
        .unwrap_err();
    assert_eq!(reason, FallbackReason::FetchFailed);
    assert_eq!(reason.status(), Status::WhiskError);
    assert_eq!(reason.message(), "Action could not be fetched.");

    // An unknown kind and a document of another type are incompatible.
    let mut cobol = fixture_document("action-health-test.json");
    cobol["_id"] = json!("guest/cobol");
    cobol["namespace"] = json!("guest");
    cobol["name"] = json!("cobol");
    cobol["exec"]["kind"] = json!("cobol:85");
    raw.put(cobol).await;
    let reason = loader
        .load(&message_for("guest", "cobol", None))
        .await
        .unwrap_err();
    assert_eq!(reason, FallbackReason::Incompatible);
    assert_eq!(
        reason.message(),
        "Action version is not compatible and cannot be invoked."
    );
    assert_eq!(reason.status(), Status::WhiskError);
    raw.put(json!({"_id": "guest/trigger", "entityType": "trigger", "name": "trigger"}))
        .await;
    assert_eq!(
        loader
            .load(&message_for("guest", "trigger", None))
            .await
            .unwrap_err(),
        FallbackReason::Incompatible
    );

    // A code attachment that is missing is a fetch failure, not a missing action.
    let mut broken = fixture_document("action-wasm-attachment.json");
    broken["_id"] = json!("guest/broken");
    broken["name"] = json!("broken");
    raw.put(broken).await;
    assert_eq!(
        loader
            .load(&message_for("guest", "broken", None))
            .await
            .unwrap_err(),
        FallbackReason::FetchFailed
    );
}

/// Writes a raw JSON document to a store's backing (CouchDB PUT, or a file).
trait AsyncPut {
    fn put(&self, value: Value) -> impl std::future::Future<Output = ()>;
}

struct CouchPut(CouchClient, String);

impl AsyncPut for CouchPut {
    async fn put(&self, value: Value) {
        put_raw(&self.0, &self.1, &value).await;
    }
}

struct FilePut(std::path::PathBuf);

impl AsyncPut for FilePut {
    async fn put(&self, value: Value) {
        let id = value["_id"].as_str().expect("an _id");
        let path = self
            .0
            .join("entities")
            .join(format!("{}.json", executor::store::local::encode_name(id)));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut value = value;
        value["_rev"] = json!("1-00000000000000000000000000000000");
        std::fs::write(path, serde_json::to_vec(&value).unwrap()).unwrap();
    }
}

#[tokio::test]
async fn test_couchdb_classification() {
    let server = PouchDb::start();
    let config = server.config("classes");
    let store = Arc::new(CouchEntityStore::new(&config).unwrap());
    store.client().ensure_db(&config.entity_db).await.unwrap();
    let raw = CouchPut(store.client().clone(), config.entity_db.clone());
    check_classification(store, raw).await;
}

#[tokio::test]
async fn test_local_classification() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::new(dir.path()));
    check_classification(store, FilePut(dir.path().to_path_buf())).await;
}

/// Writes, conflicts, lists and deletes through the `EntityStore` API; code round-trips
/// byte-identically whether inlined (`mem:`) or attached (`couch:`).
async fn check_action_writes(store: Arc<dyn EntityStore>) {
    let exec = |kind: &str| Exec::with_code(kind, CodeSource::Inline(String::new()), false, None);
    let mut hello = ActionDocument::new("guest", "hello", exec("nodejs:20"));
    hello.annotations.set("provide-api-key", false);
    let stored = store
        .put_action(hello.clone(), Some(Code::Text(HELLO_CODE.into())))
        .await
        .unwrap();
    let rev1 = stored.rev.clone().expect("a revision");
    assert!(rev1.starts_with("1-"));
    let Exec::Code {
        code: CodeSource::Attachment(reference),
        binary: false,
        ..
    } = &stored.exec
    else {
        panic!("small code is a mem: attachment: {:?}", stored.exec);
    };
    assert!(reference.attachment_name.starts_with("mem:"));
    assert_eq!(reference.length, Some(HELLO_CODE.len() as u64));

    // Creating again without the revision conflicts; with it, it replaces.
    let error = store
        .put_action(hello.clone(), Some(Code::Text("x".into())))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict), "{error}");
    hello.rev = Some(rev1.clone());
    let stored = store
        .put_action(hello.clone(), Some(Code::Text(HELLO_CODE.into())))
        .await
        .unwrap();
    assert!(
        stored
            .rev
            .as_deref()
            .is_some_and(|rev| rev.starts_with("2-"))
    );

    // Large binary code becomes an attachment.
    let module = wasm_bytes(64 * 1024 + 3);
    let wasm = ActionDocument::new("guest", "wasm", exec(WASM_WASIP1_KIND));
    let stored = store
        .put_action(wasm, Some(Code::Binary(module.clone().into())))
        .await
        .unwrap();
    let Exec::Code {
        code: CodeSource::Attachment(reference),
        binary: true,
        ..
    } = &stored.exec
    else {
        panic!("large code is attached: {:?}", stored.exec);
    };
    assert!(reference.attachment_name.starts_with("couch:"));
    assert_eq!(reference.attachment_type, "application/octet-stream");

    let loader = loader(store.clone());
    let hello = loader
        .load(&message_for("guest", "hello", None))
        .await
        .unwrap();
    assert_eq!(hello.code, Some(Code::Text(HELLO_CODE.into())));
    assert!(!hello.provide_api_key);
    let wasm = loader
        .load(&message_for("guest", "wasm", None))
        .await
        .unwrap();
    assert_eq!(wasm.code, Some(Code::Binary(module.into())));

    // A package action is listed under its package path, not the namespace.
    let pkg = ActionDocument::new("guest/utils", "split", exec("nodejs:20"));
    store
        .put_action(pkg, Some(Code::Text("s".into())))
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_actions("guest", 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|document| document.doc_id())
        .collect();
    assert_eq!(
        names,
        vec!["guest/hello".to_string(), "guest/wasm".to_string()]
    );
    assert_eq!(store.list_actions("guest", 1, 10).await.unwrap().len(), 1);
    assert_eq!(
        store
            .list_actions("guest/utils", 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // Deleting with a stale revision conflicts; then the action is gone.
    let error = store
        .delete_action("guest/hello", Some(&rev1))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict), "{error}");
    store.delete_action("guest/hello", None).await.unwrap();
    assert!(matches!(
        store.get_action("guest/hello", None).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn test_couchdb_action_writes() {
    let server = PouchDb::start();
    let config = server.config("writes");
    let store = Arc::new(CouchEntityStore::new(&config).unwrap());
    store.client().ensure_db(&config.entity_db).await.unwrap();
    check_action_writes(store).await;
}

#[tokio::test]
async fn test_local_action_writes() {
    let dir = tempfile::tempdir().unwrap();
    check_action_writes(Arc::new(LocalStore::new(dir.path()))).await;
}

fn activation(
    id: usize,
    namespace: &str,
    name: &str,
    start: u64,
    status: Status,
) -> WhiskActivation {
    let mut message = message_for("guest", name, None);
    message.user.namespace.name = namespace.into();
    message.activation_id = serde_json::from_value(json!(format!("{id:032x}"))).unwrap();
    let reason = match status {
        Status::WhiskError => FallbackReason::FetchFailed,
        _ => FallbackReason::NotFound,
    };
    let mut activation = WhiskActivation::fallback(
        &message,
        &reason,
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(start),
    );
    activation.end = start + 5;
    activation.duration = Some(5);
    activation
}

/// Stores records in parallel (through the batcher on CouchDB) and reads them back.
async fn check_activation_store(store: Arc<dyn ActivationStore>) {
    const COUNT: usize = 120;
    let records: Vec<WhiskActivation> = (0..COUNT)
        .map(|i| {
            let name = if i % 2 == 0 { "even" } else { "odd" };
            activation(
                i + 1,
                "guest",
                name,
                1_000 + i as u64,
                Status::ApplicationError,
            )
        })
        .collect();
    let other = activation(999, "other", "even", 5_000, Status::WhiskError);
    let writes = records
        .iter()
        .chain(std::iter::once(&other))
        .map(|record| store.store(record));
    for result in futures::future::join_all(writes).await {
        result.expect("stored");
    }

    let back = store
        .get("guest", records[7].activation_id.as_str())
        .await
        .unwrap();
    assert_eq!(back, records[7]);
    assert!(matches!(
        store.get("guest", "ffffffffffffffffffffffffffffffff").await,
        Err(StoreError::NotFound)
    ));

    let query = |f: fn(&mut ActivationQuery)| {
        let mut query = ActivationQuery {
            namespace: "guest".into(),
            ..ActivationQuery::default()
        };
        f(&mut query);
        query
    };
    let newest = store.list(&query(|_| {})).await.unwrap();
    assert_eq!(newest.len(), 30);
    assert_eq!(newest[0], records[COUNT - 1]);
    assert!(newest.windows(2).all(|pair| pair[0].start > pair[1].start));
    let page = store
        .list(&query(|q| {
            q.skip = 10;
            q.limit = 5;
        }))
        .await
        .unwrap();
    let starts: Vec<u64> = page.iter().map(|a| a.start).collect();
    assert_eq!(starts, vec![1109, 1108, 1107, 1106, 1105]);
    let odd = store
        .list(&query(|q| {
            q.name = Some("odd".into());
            q.limit = 200;
        }))
        .await
        .unwrap();
    assert_eq!(odd.len(), COUNT / 2);
    assert!(odd.iter().all(|a| a.name == "odd"));
    let window = store
        .list(&query(|q| {
            q.since = Some(1_010);
            q.upto = Some(1_012);
        }))
        .await
        .unwrap();
    assert_eq!(
        window.iter().map(|a| a.start).collect::<Vec<_>>(),
        vec![1012, 1011, 1010]
    );
    let other_ns = store
        .list(&ActivationQuery {
            namespace: "other".into(),
            ..ActivationQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(other_ns, vec![other]);
}

#[tokio::test]
async fn test_couchdb_activation_batches_and_reads() {
    let server = PouchDb::start();
    let config = server.config("acts");
    let client = CouchClient::new(&config).unwrap();
    client.ensure_db(&config.activation_db).await.unwrap();
    let store = Arc::new(CouchActivationStore::new(&config).unwrap());
    check_activation_store(store.clone()).await;

    // The stored document is the record plus `_id`, `entityType`, `updated`.
    let raw = client
        .get_json(&[&config.activation_db, &format!("guest/{:032x}", 3)], "")
        .await
        .unwrap();
    assert_eq!(raw["_id"], json!(format!("guest/{:032x}", 3)));
    assert_eq!(raw["entityType"], "activation");
    assert!(
        raw["updated"]
            .as_u64()
            .is_some_and(|updated| updated > 1_700_000_000_000)
    );
    assert_eq!(raw["response"]["statusCode"], 1);

    // Many records at once travel in few `_bulk_docs` requests of at most 500.
    const MANY: usize = 1_100;
    let before = server.log().matches("_bulk_docs").count();
    let many: Vec<WhiskActivation> = (0..MANY)
        .map(|i| activation(10_000 + i, "bulk", "b", 20_000 + i as u64, Status::Success))
        .collect();
    let results = futures::future::join_all(many.iter().map(|record| store.store(record))).await;
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    let requests = server.log().matches("_bulk_docs").count() - before;
    assert!(
        (MANY.div_ceil(500)..MANY / 10).contains(&requests),
        "{MANY} records took {requests} bulk requests"
    );
    let last = store
        .get("bulk", many[MANY - 1].activation_id.as_str())
        .await
        .unwrap();
    assert_eq!(last, many[MANY - 1]);

    // Storing the same activation twice is a conflict reported to the caller.
    let again = activation(3, "guest", "odd", 1_002, Status::ApplicationError);
    assert!(matches!(
        store.store(&again).await,
        Err(StoreError::Conflict)
    ));
}

#[tokio::test]
async fn test_local_activation_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::new(dir.path()));
    check_activation_store(store).await;
    let raw: Value = serde_json::from_slice(
        &std::fs::read(
            dir.path()
                .join("activations/guest")
                .join(format!("{:032x}.json", 3)),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(raw["entityType"], "activation");
    assert_eq!(raw["_id"], json!(format!("guest/{:032x}", 3)));
}

#[tokio::test]
async fn test_couchdb_blacklist_view() {
    let server = PouchDb::start();
    let config = server.config("black");
    let store = CouchEntityStore::new(&config).unwrap();
    let client = store.client().clone();
    client.ensure_db(&config.auth_db).await.unwrap();
    let db = config.auth_db.as_str();
    put_raw(
        &client,
        db,
        &fixtures::json("design/namespace-throttlings.json"),
    )
    .await;
    for doc in [
        json!({"_id": "throttled/limits", "concurrentInvocations": 0}),
        json!({"_id": "slowed/limits", "invocationsPerMinute": 0}),
        json!({"_id": "fine/limits", "invocationsPerMinute": 10, "concurrentInvocations": 5}),
        json!({"_id": "mallory", "subject": "mallory", "blocked": true,
               "namespaces": [{"name": "mallory", "uuid": "u1", "key": "k1"}, {"name": "mallory-2", "uuid": "u2", "key": "k2"}]}),
        json!({"_id": "alice", "subject": "alice", "namespaces": [{"name": "alice", "uuid": "u3", "key": "k3"}]}),
    ] {
        put_raw(&client, db, &doc).await;
    }
    // `stale=update_after` (as OpenWhisk queries) answers from the index as it is and updates it
    // afterwards, so the first answer on a fresh index is empty; later ones see the documents.
    let mut blocked = store.blocked_namespaces().await.unwrap();
    for _ in 0..50 {
        if !blocked.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        blocked = store.blocked_namespaces().await.unwrap();
    }
    let expected: BTreeSet<String> = ["throttled", "slowed", "mallory", "mallory-2"]
        .into_iter()
        .map(str::to_string)
        .collect();
    assert_eq!(blocked, expected);
}

#[tokio::test]
async fn test_local_blacklist() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    assert!(store.blocked_namespaces().await.unwrap().is_empty());
    let names: BTreeSet<String> = ["bad".to_string()].into();
    store.set_blocked_namespaces(&names).await.unwrap();
    assert_eq!(store.blocked_namespaces().await.unwrap(), names);
}

#[tokio::test]
async fn test_open_stores_follows_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = executor::config::InvokerConfig::default();
    config.local_store.dir = dir.path().to_path_buf();
    let record = activation(1, "guest", "a", 10, Status::ApplicationError);
    let local = executor::store::open_stores(&config).unwrap();
    local.activations.store(&record).await.unwrap();
    assert!(
        dir.path()
            .join("activations/guest")
            .join(format!("{:032x}.json", 1))
            .exists()
    );

    let server = PouchDb::start();
    let couch = server.config("open");
    let client = CouchClient::new(&couch).unwrap();
    client.ensure_db(&couch.activation_db).await.unwrap();
    config.couchdb = Some(couch.clone());
    let remote = executor::store::open_stores(&config).unwrap();
    remote.activations.store(&record).await.unwrap();
    let raw = client
        .get_json(&[&couch.activation_db, &format!("guest/{:032x}", 1)], "")
        .await
        .unwrap();
    assert_eq!(raw["name"], "a");
    assert!(matches!(
        remote.entities.get_action("guest/a", None).await,
        Err(StoreError::NotFound | StoreError::Status { .. })
    ));
}
