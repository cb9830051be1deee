//! End to end: the real `wasm-invoker invoker` binary against a real Kafka-protocol broker (Tansu)
//! and a real CouchDB API (pouchdb-server), driven by the controller-side harness of
//! `tests/support/controller.rs`: it stores action documents (the wasm `echo` module as a `couch:`
//! attachment), produces `ActivationMessage`s to `invoker0`, and reads `completed0` and `health` like
//! a controller.
//!
//! Needs `tansu` and `pouchdb-server` (see `executor/tests/support/`); `scripts/test` installs both.

#[path = "support/controller.rs"]
mod controller;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use controller::{Cluster, expected_instance, message, next, next_with_time};
use executor::message::{AckResponse, AcknowledgementMessage, PingMessage};
use serde_json::{Value, json};

/// How many consecutive pings the ping-rate check reads.
const PINGS: usize = 8;
/// The sleep of each activation of the in-flight saturation phase: long enough for several
/// samples of the gauges while the pool is full.
const SATURATION_SLEEP_MS: u64 = 2000;
/// How many sleeping activations saturate a 512 MB invoker (maxPeek 4) twice over.
const SATURATION_COUNT: u32 = 8;

/// Activations invoker 0 holds: running in the pool plus waiting in its buffer, which together
/// are the messages taken from Kafka and not yet answered (but for the moment between a run's end
/// and its ack). Read from `/metrics`: a missing gauge fails the test.
async fn in_flight(cluster: &Cluster) -> f64 {
    cluster.metric(0, "invoker_pool_active_activations").await
        + cluster.metric(0, "invoker_pool_buffered_jobs").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_invoker_answers_like_an_openwhisk_invoker() {
    let mut cluster = Cluster::start("1024 MB").await;

    // Pings: about one a second, with this invoker's identity.
    let first = cluster
        .ping(Duration::from_secs(120))
        .await
        .unwrap_or_else(|| panic!("no ping; log:\n{}", cluster.log()));
    assert!(first.is_enabled);
    assert_eq!(
        serde_json::to_value(&first.name).expect("json"),
        expected_instance()
    );
    // Measured on the producer's timestamps, so that a consumer slowed by a loaded machine (or
    // the broker's fetch wait) cannot bunch or stretch them: PINGS pings, PINGS - 1 intervals,
    // each a second on average give or take a factor of two.
    let mut times = Vec::with_capacity(PINGS);
    while times.len() < PINGS {
        let (raw, time) = next_with_time(&cluster.health, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("pinging stopped; log:\n{}", cluster.log()));
        let ping = PingMessage::parse(&raw).expect("ping parses");
        assert!(ping.is_enabled);
        times.push(time.expect("pings carry a timestamp"));
    }
    let span = times[PINGS - 1] - times[0];
    let intervals = i64::try_from(PINGS - 1).expect("fits");
    assert!(
        (intervals * 500..=intervals * 2000).contains(&span),
        "{intervals} ping intervals took {span} ms (times {times:?})"
    );

    // The controller's health test action: answered without Docker, transid echoed unchanged.
    let health = controller::fixture("kafka/activation-message-health-test.json");
    let health_json: Value = serde_json::from_str(&health).expect("json");
    cluster.produce(&health).await;
    let (ack, raw) = cluster.ack().await;
    assert!(ack.frees_slot());
    assert_eq!(raw["transid"], health_json["transid"]);
    assert_eq!(raw["isSystemError"], false);
    assert_eq!(raw["instance"], expected_instance());
    assert_eq!(
        ack.activation_id().to_string(),
        health_json["activationId"].as_str().expect("id")
    );

    // Blocking, logs collected: Result (whole activation, no logs) then Completion.
    let (id, msg) = message("echo", 1, true, json!({"hello": "world"}));
    cluster.produce(&msg.to_string()).await;
    let (result, raw) = cluster.ack().await;
    match &result {
        AcknowledgementMessage::Result {
            response: AckResponse::Activation(activation),
            ..
        } => {
            assert_eq!(activation.activation_id.to_string(), id);
            assert_eq!(activation.response.result, Some(json!({"hello": "world"})));
            assert!(activation.logs.is_empty());
            assert_eq!(
                activation.annotations.get("kind"),
                Some(&json!("wasm:wasip1"))
            );
            assert_eq!(
                activation.annotations.get("path"),
                Some(&json!("guest/echo"))
            );
            assert!(
                activation.annotations.get("initTime").is_some(),
                "a cold start has an initTime"
            );
        }
        other => panic!("expected a whole Result ack, got {other:?}"),
    }
    assert_eq!(raw["transid"], msg["transid"]);
    let (completion, raw) = cluster.ack().await;
    assert!(
        matches!(
            completion,
            AcknowledgementMessage::Completion {
                is_system_error: false,
                ..
            }
        ),
        "{raw}"
    );
    assert_eq!(raw["activationId"], id);
    let record = cluster.activation_record(&id).await.expect("record stored");
    assert_eq!(record["entityType"], "activation");
    assert_eq!(record["response"]["result"], json!({"hello": "world"}));

    // Blocking, log limit 0: one Combined with the whole activation.
    let (id, msg) = message("echo0", 2, true, json!({"n": 2}));
    cluster.produce(&msg.to_string()).await;
    let (combined, raw) = cluster.ack().await;
    assert!(
        matches!(
            combined,
            AcknowledgementMessage::Combined {
                response: AckResponse::Activation(_),
                ..
            }
        ),
        "{raw}"
    );
    assert_eq!(raw["response"]["activationId"], id);
    assert_eq!(raw["response"]["response"]["result"], json!({"n": 2}));

    // Non-blocking: only a Completion, no result.
    let (id, msg) = message("echo", 3, false, json!({"n": 3}));
    cluster.produce(&msg.to_string()).await;
    let (completion, raw) = cluster.ack().await;
    assert!(
        matches!(completion, AcknowledgementMessage::Completion { .. }),
        "{raw}"
    );
    assert_eq!(raw["activationId"], id);
    assert!(cluster.activation_record(&id).await.is_some());

    // Missing action: fallback Combined (blocking, so whole) with OpenWhisk's message; stored.
    let (id, msg) = message("nosuchaction", 4, true, json!({}));
    cluster.produce(&msg.to_string()).await;
    let (fallback, raw) = cluster.ack().await;
    assert!(
        matches!(fallback, AcknowledgementMessage::Combined { .. }),
        "{raw}"
    );
    assert_eq!(raw["isSystemError"], false);
    assert_eq!(raw["response"]["response"]["statusCode"], 1);
    assert_eq!(
        raw["response"]["response"]["result"],
        json!({"error": "Action could not be found or may have been deleted."})
    );
    assert_eq!(
        raw["response"]["annotations"],
        json!([{"key": "path", "value": "guest/nosuchaction"}, {"key": "kind", "value": "unknown"}])
    );
    assert!(cluster.activation_record(&id).await.is_some());

    // Non-blocking missing action: Combined, shrunk to the id.
    let (id, msg) = message("nosuchaction", 5, false, json!({}));
    cluster.produce(&msg.to_string()).await;
    let (_, raw) = cluster.ack().await;
    assert_eq!(raw["response"], id);

    // A malformed message is skipped (no ack, counted) and the next one is still answered.
    cluster
        .produce("{\"this is\": \"not an activation\"}")
        .await;
    cluster.produce("not even json").await;
    let (id, msg) = message("echo0", 6, true, json!({"after": "garbage"}));
    cluster.produce(&msg.to_string()).await;
    let (ack, _) = cluster.ack().await;
    assert_eq!(ack.activation_id().to_string(), id);
    let (status, metrics) = cluster.http("GET", "/metrics", false).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"invoker_messages_total{result="malformed"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("invoker_pool_user_memory_megabytes 1024"),
        "{metrics}"
    );

    // Admin routes.
    assert_eq!(
        cluster.http("GET", "/ping", false).await,
        (200, "pong".into())
    );
    assert_eq!(cluster.http("POST", "/disable", false).await.0, 401);
    assert_eq!(
        cluster.http("GET", "/isEnabled", true).await,
        (200, r#"{"enabled":true}"#.into())
    );
    let (status, text) = cluster.http("POST", "/disable", true).await;
    assert_eq!(
        (status, text.as_str()),
        (200, "invoker0/0 is now disabled.")
    );
    let mut saw_disabled = false;
    while let Some(ping) = cluster.ping(Duration::from_secs(4)).await {
        assert!(!saw_disabled, "a ping after the disabled ping");
        saw_disabled = !ping.is_enabled;
    }
    assert!(saw_disabled, "no disabled ping");
    assert_eq!(
        cluster.http("POST", "/enable", true).await,
        (200, "invoker0/0 is now enabled.".into())
    );
    assert!(
        cluster
            .ping(Duration::from_secs(5))
            .await
            .expect("pinging again")
            .is_enabled
    );

    // SIGTERM: activations taken are finished and acknowledged, one disabled ping, exit 0.
    let mut ids = Vec::new();
    for n in 10..20 {
        let (id, msg) = message("echo0", n, true, json!({"n": n}));
        cluster.produce(&msg.to_string()).await;
        ids.push(id);
    }
    let (ack, _) = cluster.ack().await;
    let mut answered = vec![ack.activation_id().to_string()];
    let status = cluster.sigterm();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        cluster.log()
    );
    while let Some(raw) = next(&cluster.completed, Duration::from_secs(3)).await {
        let ack = AcknowledgementMessage::parse(&raw).expect("ack");
        answered.push(ack.activation_id().to_string());
    }
    // Every message the invoker took was answered once; the rest wait in Kafka for the next start.
    let unique: std::collections::BTreeSet<_> = answered.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        answered.len(),
        "an activation was answered twice"
    );
    assert!(answered.iter().all(|id| ids.contains(id)));
    let mut last = None;
    while let Some(ping) = cluster.ping(Duration::from_secs(3)).await {
        last = Some(ping);
    }
    assert!(
        !last.expect("pings").is_enabled,
        "the last ping is the disabled one"
    );
    assert!(cluster.log().contains("invoker stopped"));
    let _ = &cluster.tansu;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_flood_is_answered_exactly_once_with_bounded_in_flight_work() {
    // 512 MB: at most four messages in flight (maxPeek = 512 / 128).
    let cluster = Cluster::start("512 MB").await;
    cluster
        .ping(Duration::from_secs(120))
        .await
        .unwrap_or_else(|| panic!("no ping; log:\n{}", cluster.log()));
    const FLOOD: u32 = 300;
    let mut expected = BTreeMap::new();
    for n in 0..FLOOD {
        let (id, msg) = message("echo0", 1000 + n, n % 2 == 0, json!({"n": n}));
        cluster.produce(&msg.to_string()).await;
        expected.insert(id, 0u32);
    }
    let mut slot_acks: HashMap<String, u32> = HashMap::new();
    let mut max_in_flight = 0.0f64;
    let mut samples = 0;
    let mut received = 0;
    while received < FLOOD {
        let raw = next(&cluster.completed, Duration::from_secs(60))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "only {received} of {FLOOD} answered; log:\n{}",
                    cluster.log()
                )
            });
        let ack = AcknowledgementMessage::parse(&raw).expect("ack");
        if ack.frees_slot() {
            *slot_acks
                .entry(ack.activation_id().to_string())
                .or_default() += 1;
            received += 1;
        }
        if received % 50 == 0 {
            max_in_flight = max_in_flight.max(in_flight(&cluster).await);
            samples += 1;
        }
    }
    // Nothing more arrives.
    assert!(
        next(&cluster.completed, Duration::from_secs(3))
            .await
            .is_none(),
        "an extra ack"
    );
    assert_eq!(slot_acks.len(), FLOOD as usize);
    assert!(
        slot_acks.values().all(|count| *count == 1),
        "a message got more than one slot-freeing ack"
    );
    assert!(slot_acks.keys().all(|id| expected.contains_key(id)));
    assert!(samples >= FLOOD / 50, "{samples} samples of the gauges");
    assert!(
        max_in_flight <= 4.0,
        "{max_in_flight} activations in flight with maxPeek 4"
    );

    // Saturated by slow activations: the gauges reach the bound and never pass it (a gauge that
    // stays 0 would not reach it).
    cluster
        .put_wasm_action(
            "sleepy",
            "sleep",
            json!({"timeout": 60_000, "memory": 128, "logs": 0, "concurrency": 1}),
            "0.0.1",
        )
        .await;
    let slow: Vec<String> = (0..SATURATION_COUNT)
        .map(|n| {
            message(
                "sleepy",
                5000 + n,
                false,
                json!({"ms": SATURATION_SLEEP_MS}),
            )
            .1
            .to_string()
        })
        .collect();
    cluster.produce_all("invoker0", &slow).await;
    let mut max_in_flight = 0.0f64;
    let mut answered = 0;
    let saturation = std::time::Instant::now();
    while answered < SATURATION_COUNT {
        max_in_flight = max_in_flight.max(in_flight(&cluster).await);
        if let Some(raw) = next(&cluster.completed, Duration::from_millis(100)).await {
            let ack = AcknowledgementMessage::parse(&raw).expect("ack");
            assert!(ack.frees_slot(), "non-blocking: one Completion each");
            answered += 1;
        }
        assert!(
            max_in_flight <= 4.0,
            "{max_in_flight} activations in flight with maxPeek 4"
        );
        assert!(
            saturation.elapsed() < Duration::from_secs(120),
            "only {answered} of {SATURATION_COUNT} slow activations answered; log:\n{}",
            cluster.log()
        );
    }
    assert_eq!(
        max_in_flight, 4.0,
        "the pool held at most {max_in_flight} of {SATURATION_COUNT} slow activations (maxPeek 4)"
    );
}
