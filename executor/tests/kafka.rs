//! The Kafka side of the invoker against a real broker (Tansu, see `support/tansu.rs`): topic
//! creation, the feed's commit-before-processing and permits, pings and the admin switch, acks.

#[path = "support/tansu.rs"]
mod tansu;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use executor::ack::{AckPlan, AckSender};
use executor::admin::{self, Admin};
use executor::kafka::{self, Feed, FeedConfig, Producer};
use executor::message::{
    AcknowledgementMessage, ActivationMessage, InvokerInstanceId, PingMessage,
};
use executor::metrics::Metrics;
use executor::ping::Pinger;
use executor::record::{FallbackReason, WhiskActivation};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use tansu::Tansu;
use tokio::sync::Semaphore;

/// How long one step (a produce, a topic creation, an ack, an admin request, a stop) may take
/// before the test fails: every await here is bounded, so a hung broker fails the test instead of
/// hanging it.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// `future`, or a panic naming `what` after [`STEP_TIMEOUT`].
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP_TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {STEP_TIMEOUT:?}"))
}

fn consumer(tansu: &Tansu, topic: &str, group: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", tansu.bootstrap())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("test consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// The next record's value, or `None` after `timeout`.
async fn next(consumer: &StreamConsumer, timeout: Duration) -> Option<Vec<u8>> {
    match tokio::time::timeout(timeout, consumer.recv()).await {
        Ok(Ok(message)) => Some(message.payload().unwrap_or_default().to_vec()),
        Ok(Err(error)) => panic!("consume failed: {error}"),
        Err(_) => None,
    }
}

fn instance() -> InvokerInstanceId {
    InvokerInstanceId::new(
        0,
        "2048 MB".parse().expect("byte size"),
        Some("0".into()),
        None,
    )
}

/// A Kafka fixture of `tests/fixtures/kafka/` (OpenWhisk's own serialized forms).
fn fixture_message(name: &str) -> ActivationMessage {
    let path = format!("{}/tests/fixtures/kafka/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("fixture {path}: {error}"));
    ActivationMessage::parse(&bytes).expect("fixture parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_ensure_topic_creates_once_and_accepts_an_existing_topic() {
    let tansu = Tansu::start();
    within(
        "creating invoker7",
        kafka::ensure_topic(&tansu.bootstrap(), "invoker7"),
    )
    .await
    .expect("created");
    within(
        "creating invoker7 again",
        kafka::ensure_topic(&tansu.bootstrap(), "invoker7"),
    )
    .await
    .expect("exists is fine");
    let producer = Producer::new(&tansu.bootstrap()).expect("producer");
    within("producing", producer.send("invoker7", "{}"))
        .await
        .expect("the topic takes records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_feed_holds_no_more_messages_than_permits_and_commits_before_processing() {
    let tansu = Tansu::start();
    within(
        "creating invoker0",
        kafka::ensure_topic(&tansu.bootstrap(), "invoker0"),
    )
    .await
    .expect("topic");
    let producer = Producer::new(&tansu.bootstrap()).expect("producer");
    for i in 0..5 {
        within("producing", producer.send("invoker0", &format!("m{i}")))
            .await
            .expect("produce");
    }
    let permits = Arc::new(Semaphore::new(2));
    let metrics = Arc::new(Metrics::new());
    let mut feed = Feed::start(
        FeedConfig {
            bootstrap: tansu.bootstrap(),
            topic: "invoker0".into(),
            permits: permits.clone(),
            fetch_wait_max_ms: kafka::DEFAULT_FETCH_WAIT_MAX_MS,
        },
        metrics.clone(),
    )
    .expect("feed");
    let first = tokio::time::timeout(Duration::from_secs(30), feed.messages.recv())
        .await
        .expect("first message in time")
        .expect("feed open");
    let second = within("the second message", feed.messages.recv())
        .await
        .expect("second");
    assert_eq!(
        (first.payload.as_slice(), second.payload.as_slice()),
        (&b"m0"[..], &b"m1"[..])
    );
    // Two permits, both held: nothing more comes.
    assert!(
        tokio::time::timeout(Duration::from_millis(2500), feed.messages.recv())
            .await
            .is_err(),
        "the feed took a message without a permit"
    );
    let first_offset = first.offset;
    drop(first);
    let third = tokio::time::timeout(Duration::from_secs(10), feed.messages.recv())
        .await
        .expect("a freed permit lets one more in")
        .expect("feed open");
    assert_eq!((first_offset, second.offset, third.offset), (0, 1, 2));
    assert_eq!(third.payload, b"m2");
    assert_eq!(permits.available_permits(), 0);
    // Stopped while every permit is held: nothing more is taken (or committed).
    within("stopping the feed", feed.stop()).await;
    drop((second, third));

    // Committed before processing: a new consumer of the group starts after what was taken.
    let mut feed = Feed::start(
        FeedConfig {
            bootstrap: tansu.bootstrap(),
            topic: "invoker0".into(),
            permits: Arc::new(Semaphore::new(8)),
            fetch_wait_max_ms: kafka::DEFAULT_FETCH_WAIT_MAX_MS,
        },
        metrics,
    )
    .expect("second feed");
    let resumed = tokio::time::timeout(Duration::from_secs(30), feed.messages.recv())
        .await
        .expect("resumed in time")
        .expect("feed open");
    assert_eq!(String::from_utf8_lossy(&resumed.payload), "m3");
    within("stopping the feed", feed.stop()).await;
}

/// One admin request, answered within [`STEP_TIMEOUT`].
async fn call(admin: &Admin, request: Request<()>) -> (StatusCode, String) {
    within("an admin request", async {
        body(admin::handle(admin, request).await).await
    })
    .await
}

async fn body(response: hyper::Response<Full<Bytes>>) -> (StatusCode, String) {
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn request(method: Method, path: &str, credentials: Option<&str>) -> Request<()> {
    use base64::Engine as _;
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(credentials) = credentials {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        builder = builder.header("authorization", format!("Basic {encoded}"));
    }
    builder.body(()).expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_pings_every_second_and_admin_disable_sends_one_disabled_ping_then_silence() {
    let tansu = Tansu::start();
    within("creating health", tansu.create_topics(&["health"])).await;
    let producer = Producer::new(&tansu.bootstrap()).expect("producer");
    let pinger = Arc::new(Pinger::start(producer, "health".into(), instance()));
    let admin = Admin {
        switch: pinger.clone(),
        metrics: Arc::new(Metrics::new()),
        pool: None,
        username: "invoker.user".into(),
        password: "invoker.pass".into(),
    };
    let health = consumer(&tansu, "health", "health0");
    let mut pings = Vec::new();
    while pings.len() < 3 {
        let value = next(&health, Duration::from_secs(15))
            .await
            .expect("a ping");
        pings.push(PingMessage::parse(&value).expect("ping parses"));
    }
    for ping in &pings {
        assert_eq!(ping.name, instance());
        assert!(ping.is_enabled);
    }
    let raw = serde_json::to_value(&pings[0]).expect("ping json");
    assert_eq!(raw["name"]["userMemory"], "2147483648 B");
    assert_eq!(raw["name"]["instanceType"], "invoker");

    assert_eq!(
        call(&admin, request(Method::GET, "/ping", None)).await,
        (StatusCode::OK, "pong".into())
    );
    let (status, _) = call(
        &admin,
        request(Method::POST, "/disable", Some("invoker.user:wrong")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&admin, request(Method::POST, "/disable", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let good = Some("invoker.user:invoker.pass");
    let (status, text) = call(&admin, request(Method::GET, "/nothing", good)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    let disabled = call(&admin, request(Method::POST, "/disable", good)).await;
    assert_eq!(
        disabled,
        (StatusCode::OK, "invoker0/0 is now disabled.".into())
    );
    let again = call(&admin, request(Method::POST, "/disable", good)).await;
    assert_eq!(
        again,
        (StatusCode::OK, "invoker0/0 is already disabled.".into())
    );
    assert_eq!(
        call(&admin, request(Method::GET, "/isEnabled", good)).await,
        (StatusCode::OK, r#"{"enabled":false}"#.into())
    );
    // Pings up to the disabled one, then silence.
    let mut saw_disabled = false;
    while let Some(value) = next(&health, Duration::from_secs(4)).await {
        let ping = PingMessage::parse(&value).expect("ping parses");
        assert!(!saw_disabled, "a ping after the disabled ping: {ping:?}");
        saw_disabled = !ping.is_enabled;
    }
    assert!(saw_disabled, "no disabled ping");
    let enabled = call(&admin, request(Method::POST, "/enable", good)).await;
    assert_eq!(
        enabled,
        (StatusCode::OK, "invoker0/0 is now enabled.".into())
    );
    let ping = PingMessage::parse(
        &next(&health, Duration::from_secs(5))
            .await
            .expect("pinging again"),
    )
    .expect("parses");
    assert!(ping.is_enabled);
    within("stopping the pinger", pinger.stop()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_acks_echo_transid_and_shrink_non_blocking() {
    let tansu = Tansu::start();
    within("creating completed0", tansu.create_topics(&["completed0"])).await;
    let producer = Producer::new(&tansu.bootstrap()).expect("producer");
    let acks = AckSender::new(
        producer,
        String::new(),
        instance(),
        None,
        Arc::new(Metrics::new()),
        executor::ack::DEFAULT_ACK_RETRY_WINDOW,
        executor::fatal::Fatal::new(),
    );
    let completed = consumer(&tansu, "completed0", "completed0");

    // Non-blocking fallback: one Combined, shrunk.
    let message = fixture_message("activation-message-nonblocking.json");
    let activation = WhiskActivation::fallback(
        &message,
        &FallbackReason::NotFound,
        std::time::SystemTime::now(),
    );
    within(
        "an ack",
        acks.acknowledge(&message, &activation, AckPlan::Combined),
    )
    .await;
    let raw = next(&completed, Duration::from_secs(15))
        .await
        .expect("ack");
    let json: serde_json::Value = serde_json::from_slice(&raw).expect("json");
    assert_eq!(
        json["transid"],
        serde_json::to_value(&message.transid).expect("transid")
    );
    assert_eq!(json["response"], message.activation_id.to_string());
    assert_eq!(json["isSystemError"], false);

    // Blocking, logs collected: Result (logs emptied) then Completion.
    let message = fixture_message("activation-message-blocking.json");
    let mut activation = WhiskActivation::fallback(
        &message,
        &FallbackReason::FetchFailed,
        std::time::SystemTime::now(),
    );
    activation.logs = vec!["a log line".into()];
    within(
        "an ack",
        acks.acknowledge(&message, &activation, AckPlan::ResultThenCompletion),
    )
    .await;
    let result = AcknowledgementMessage::parse(
        &next(&completed, Duration::from_secs(5))
            .await
            .expect("result"),
    )
    .expect("parses");
    match &result {
        AcknowledgementMessage::Result {
            response: executor::message::AckResponse::Activation(activation),
            transid,
        } => {
            assert!(activation.logs.is_empty());
            assert_eq!(transid, &message.transid);
        }
        other => panic!("expected a whole Result ack, got {other:?}"),
    }
    let completion = AcknowledgementMessage::parse(
        &next(&completed, Duration::from_secs(5))
            .await
            .expect("completion"),
    )
    .expect("parses");
    match completion {
        AcknowledgementMessage::Completion {
            is_system_error,
            instance: who,
            ..
        } => {
            assert!(is_system_error, "status 3 is a system error");
            assert_eq!(who, instance());
        }
        other => panic!("expected a Completion, got {other:?}"),
    }

    // Blocking but too large for Kafka: re-sent shrunk.
    let message = fixture_message("activation-message-blocking.json");
    let mut activation = WhiskActivation::fallback(
        &message,
        &FallbackReason::NotFound,
        std::time::SystemTime::now(),
    );
    activation.response.result =
        Some(serde_json::json!({"error": "x".repeat(executor::message::MAX_MESSAGE_BYTES)}));
    within(
        "an ack",
        acks.acknowledge(&message, &activation, AckPlan::Combined),
    )
    .await;
    let raw = next(&completed, Duration::from_secs(15))
        .await
        .expect("shrunk ack");
    let json: serde_json::Value = serde_json::from_slice(&raw).expect("json");
    assert_eq!(json["response"], message.activation_id.to_string());
    assert_eq!(
        json["transid"],
        serde_json::to_value(&message.transid).expect("transid")
    );
}

/// OpenWhisk's `EventMessage` example (`tests/fixtures/kafka/event-activation.json`).
fn golden_event() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kafka/event-activation.json"
    );
    let text = std::fs::read_to_string(path).expect("event fixture");
    serde_json::from_str(&text).expect("event fixture is JSON")
}

fn key_set(value: &serde_json::Value) -> std::collections::BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_acks_send_one_user_event_per_activation_when_enabled() {
    let tansu = Tansu::start();
    within(
        "creating topics",
        tansu.create_topics(&["completed0", "events"]),
    )
    .await;
    let producer = Producer::new(&tansu.bootstrap()).expect("producer");
    let acks = AckSender::new(
        producer,
        String::new(),
        instance(),
        Some("events".into()),
        Arc::new(Metrics::new()),
        executor::ack::DEFAULT_ACK_RETRY_WINDOW,
        executor::fatal::Fatal::new(),
    );
    let completed = consumer(&tansu, "completed0", "completed0");
    let events = consumer(&tansu, "events", "events");
    let golden = golden_event();

    // Two acks (Result, Completion), one event: it goes with the slot-freeing ack only.
    let message = fixture_message("activation-message-blocking.json");
    let activation = WhiskActivation::fallback(
        &message,
        &FallbackReason::NotFound,
        std::time::SystemTime::now(),
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    within(
        "an ack",
        acks.acknowledge(&message, &activation, AckPlan::ResultThenCompletion),
    )
    .await;
    for what in ["result", "completion"] {
        next(&completed, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("no {what} ack"));
    }
    let raw = next(&events, Duration::from_secs(15))
        .await
        .expect("an event on events");
    let event: serde_json::Value = serde_json::from_slice(&raw).expect("event is JSON");
    assert_eq!(key_set(&event), key_set(&golden), "{event}");
    assert_eq!(event["source"], "invoker0");
    assert_eq!(event["eventType"], "Activation");
    assert_eq!(event["subject"], serde_json::json!(message.user.subject));
    assert_eq!(
        event["namespace"],
        serde_json::json!(message.user.namespace.name)
    );
    assert_eq!(
        event["userId"],
        serde_json::json!(message.user.namespace.uuid)
    );
    assert!(
        u128::from(event["timestamp"].as_u64().expect("timestamp")) >= before,
        "{event}"
    );
    let body = &event["body"];
    let required: std::collections::BTreeSet<String> = [
        "name",
        "activationId",
        "statusCode",
        "duration",
        "waitTime",
        "initTime",
        "kind",
        "conductor",
        "memory",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    let body_keys = key_set(body);
    assert!(
        required.is_subset(&body_keys) && body_keys.is_subset(&key_set(&golden["body"])),
        "body keys {body_keys:?}: {event}"
    );
    assert_eq!(body["activationId"], message.activation_id.to_string());
    assert_eq!(body["statusCode"], 1, "not found is an application error");
    assert_eq!(body["kind"], "unknown");
    assert_eq!(body["conductor"], false);
    assert_eq!(body["initTime"], 0, "0 without an initTime annotation");
    assert!(
        next(&events, Duration::from_secs(3)).await.is_none(),
        "a second event for one activation"
    );
}
