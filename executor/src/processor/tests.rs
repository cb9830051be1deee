//! The processor end to end over a local store and a pool without factories: the health test
//! action answered in-process, the entity cache counted, fallbacks recorded.

use factory::{Code, Status};
use serde_json::{Value, json};

use super::*;
use crate::clock::SystemClock;
use crate::document::{ActionDocument, BuiltinKinds};
use crate::limits::LimitRanges;
use crate::loader::CacheLookup;
use crate::pool::PoolConfig;
use crate::record::MSG_INCOMPATIBLE;
use crate::store::EntityStore;
use crate::store::local::LocalStore;

const HEALTH_MESSAGE: &[u8] =
    include_bytes!("../../tests/fixtures/kafka/activation-message-health-test.json");
const HEALTH_DOCUMENT: &[u8] =
    include_bytes!("../../tests/fixtures/couchdb/action-health-test.json");

fn health_document() -> Value {
    let mut document: Value = serde_json::from_slice(HEALTH_DOCUMENT).expect("fixture");
    let map = document.as_object_mut().expect("a document object");
    map.remove("_rev");
    map.remove("_id");
    document
}

/// A processor over a local store, a pool without any factory and, like a node without Docker,
/// no runtimes manifest (only the built-in wasm kinds resolve).
async fn processor(dir: &std::path::Path) -> (Processor, Arc<LocalStore>) {
    let store = Arc::new(LocalStore::new(dir));
    let pool = Pool::start(PoolConfig::default(), Vec::new(), Arc::new(SystemClock))
        .await
        .expect("pool");
    let processor = Processor {
        pool: Arc::new(pool),
        loader: Arc::new(ActionLoader::new(
            store.clone(),
            Arc::new(BuiltinKinds),
            LimitRanges::default(),
            crate::bytesize::ByteSize::mb(16),
        )),
        activations: store.clone(),
        acks: None,
        metrics: Arc::new(Metrics::new()),
        blacklist: Arc::new(Blacklist::default()),
        blocking_level: StoreLevel::Always,
        non_blocking_level: StoreLevel::Always,
    };
    (processor, store)
}

/// Stores the blackbox action `guest/box` (no factory runs it here: each run is a whisk error, but
/// the document loads) and returns a message for it at its current revision.
async fn blackbox_message(store: &LocalStore) -> ActivationMessage {
    let mut document = health_document();
    document["namespace"] = json!("guest");
    document["name"] = json!("box");
    document["exec"] = json!({"kind": "blackbox", "image": "janedoe/box:1", "binary": false});
    let stored = put(store, document, None).await;
    let mut message = ActivationMessage::parse(HEALTH_MESSAGE).expect("message");
    message.action.path = "guest".into();
    message.action.name = "box".into();
    message.revision = stored.rev.clone();
    message
}

async fn put(store: &LocalStore, document: Value, code: Option<Code>) -> ActionDocument {
    store
        .put_action(
            ActionDocument::from_value(document).expect("document"),
            code,
        )
        .await
        .expect("put action")
}

#[tokio::test]
async fn test_health_action_is_answered_without_a_runtimes_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (processor, store) = processor(dir.path()).await;
    let code = Code::Text("function main(params) { return params; }".into());
    put(&store, health_document(), Some(code.clone())).await;

    let mut message = ActivationMessage::parse(HEALTH_MESSAGE).expect("health message");
    message.content = Some(json!({"probe": 1}));
    assert!(is_health_action(&message));
    let record = processor.activate(message.clone()).await;
    assert_eq!(record.response.status, Status::Success);
    assert_eq!(record.response.result, Some(json!({"probe": 1})));
    assert_eq!(record.annotations.get("kind"), Some(&json!("nodejs:20")));
    assert_eq!(
        record.annotations.get("path"),
        Some(&json!("whisk.system/invokerHealthTestAction0"))
    );
    let stored = store
        .get("whisk.system", message.activation_id.as_str())
        .await
        .expect("the record is stored");
    assert_eq!(stored.response.status, Status::Success);

    // The same document as a user action: its kind does not resolve on this node.
    let mut user = health_document();
    user["namespace"] = json!("guest");
    user["name"] = json!("identity");
    put(&store, user, Some(code)).await;
    let mut other = message.clone();
    other.action.path = "guest".into();
    other.action.name = "identity".into();
    other.activation_id = crate::message::ActivationId::generate();
    assert!(!is_health_action(&other));
    let record = processor.activate(other).await;
    assert_eq!(record.response.status, Status::WhiskError);
    assert_eq!(
        record.response.result,
        Some(json!({"error": MSG_INCOMPATIBLE}))
    );
}

#[tokio::test]
async fn test_entity_cache_lookups_are_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (processor, store) = processor(dir.path()).await;
    let mut message = blackbox_message(&store).await;
    assert!(message.revision.is_some());
    // No factory runs blackbox here: each run is a whisk error, but the document loads.
    for _ in 0..3 {
        message.activation_id = crate::message::ActivationId::generate();
        let record = processor.activate(message.clone()).await;
        assert_eq!(record.annotations.get("kind"), Some(&json!("blackbox")));
    }
    // Without a revision the cache is bypassed: a store read, a miss.
    message.revision = None;
    processor.activate(message).await;
    let text = processor.metrics.render(None);
    assert!(
        text.contains(r#"invoker_entity_cache_total{result="miss"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"invoker_entity_cache_total{result="hit"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn test_missing_health_action_is_not_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (processor, _store) = processor(dir.path()).await;
    let message = ActivationMessage::parse(HEALTH_MESSAGE).expect("health message");
    let record = processor.activate(message).await;
    assert_eq!(record.response.status, Status::ApplicationError);
    assert_eq!(
        record.response.result,
        Some(json!({"error": crate::record::MSG_NOT_FOUND}))
    );
}

#[tokio::test]
async fn test_a_panic_is_answered_with_a_whisk_error_and_processing_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (processor, store) = processor(dir.path()).await;
    let mut message = ActivationMessage::parse(HEALTH_MESSAGE).expect("message");
    message.action.path = "guest".into();
    message.action.name = INJECTED_PANIC_ACTION.into();
    let record = processor.activate(message.clone()).await;
    assert_eq!(record.response.status, Status::WhiskError);
    assert_eq!(
        record.response.result,
        Some(json!({"error": crate::record::MSG_INTERNAL}))
    );
    assert_eq!(processor.metrics.panics.get(), 1);
    let stored = store
        .get(&message.user.namespace.name, message.activation_id.as_str())
        .await
        .expect("the whisk error is stored, as every whisk error");
    assert_eq!(stored.response.status, Status::WhiskError);

    // The next activation is processed as usual.
    put(&store, health_document(), Some(Code::Text("x".into()))).await;
    let health = ActivationMessage::parse(HEALTH_MESSAGE).expect("health message");
    let record = processor.activate(health).await;
    assert_eq!(record.response.status, Status::Success);
}

/// Concurrent activations of one action revision read its document once (the cache shares the
/// miss), and the cache weighs code: a cache smaller than one action's code keeps nothing.
#[tokio::test]
async fn test_concurrent_misses_share_one_fetch_and_the_cache_is_bounded_by_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (processor, store) = processor(dir.path()).await;
    let message = blackbox_message(&store).await;
    let loads = (0..16).map(|_| processor.loader.load_with_lookup(&message));
    let lookups: Vec<CacheLookup> = futures::future::join_all(loads)
        .await
        .into_iter()
        .map(|(loaded, lookup)| {
            assert!(loaded.is_ok());
            lookup
        })
        .collect();
    // The callers that missed shared one read of the store.
    assert!(lookups.contains(&CacheLookup::Miss));
    assert_eq!(processor.loader.store_reads(), 1);
    let (_, lookup) = processor.loader.load_with_lookup(&message).await;
    assert_eq!(lookup, CacheLookup::Hit);
    assert_eq!(processor.loader.store_reads(), 1);

    // A cache of 1 KiB holds no action (each weighs at least 4 KiB).
    let tiny = ActionLoader::new(
        store.clone(),
        Arc::new(BuiltinKinds),
        LimitRanges::default(),
        crate::bytesize::ByteSize::bytes(1024),
    );
    for _ in 0..3 {
        tiny.load(&message).await.expect("loads");
        assert_eq!(tiny.cache_weight().await, 0);
    }
    assert_eq!(tiny.store_reads(), 3, "nothing was kept");
}
