//! The fault-injection suite: each case injects one fault a worker node meets in production into a
//! real deployment (the `wasm-invoker invoker` binary built for tests, Tansu, pouchdb-server) and
//! checks what an operator cares about: every activation answered, every record stored once, the
//! node serving again afterwards. Every wait is bounded. docs/reliability.md reports the figures.
//!
//! Faults: CouchDB stalled (SIGSTOP) and refusing connections (a cut proxy); the broker stalled
//! past the consumer's session timeout (SIGSTOP) and unreachable past the producer's send timeout
//! (a cut proxy that the broker advertises); SIGTERM during long activations; a flood of malformed
//! messages; a panic while processing and a feed thread that dies (the test-only hooks of the
//! `fault-injection` feature, which only binaries built by `cargo test` carry).
//!
//! The cases run one at a time. Needs `tansu` and `pouchdb-server`; `scripts/test` installs both.

#[path = "support/acks.rs"]
mod acks;
#[path = "support/controller.rs"]
mod controller;
#[path = "support/proxy.rs"]
mod proxy;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use acks::*;
use controller::tansu::Tansu;
use controller::{Cluster, InvokerOptions, REQUEST_TIMEOUT, message, within};
use executor::message::AcknowledgementMessage;
use proxy::Proxy;
use rdkafka::ClientConfig;
use rdkafka::consumer::Consumer;
use serde_json::{Value, json};

/// The action name the test-only hook panics on (`executor::processor::INJECTED_PANIC_ACTION`).
const PANIC_ACTION: &str = "wasm-invoker-injected-panic";
/// OpenWhisk's `Messages.actionFetchErrorWhileInvoking`.
const FETCH_FAILED: &str = "Action could not be fetched.";
/// How long a stall or cut lasts where it must outlast a client timeout: past the consumer's
/// `session.timeout.ms` and the producer's `message.timeout.ms` (both 30 s).
const LONG_OUTAGE: Duration = Duration::from_secs(45);
/// How long, at most, a service that is back may take to be used again: the record queue's and the
/// ack delivery's longest back-off (5 s), a reconnect and a rebalance, with room for a loaded
/// machine.
const RECOVERY: Duration = Duration::from_secs(90);

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal} {pid}");
}

/// Waits (up to `limit`) until `metric` of invoker 0 reaches `value`.
async fn metric_reaches(cluster: &Cluster, metric: &str, value: f64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let now = cluster.metric(0, metric).await;
        if now >= value {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{metric} is {now}, not {value}, after {limit:?}; log:\n{}",
            cluster.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The next `count` acks: the activation ids they answer (each ack counted once).
async fn acked_ids(cluster: &Cluster, count: usize, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some((ack, raw)) = cluster.ack_within(left).await else {
            panic!(
                "{} of {count} acks after {limit:?}; log:\n{}",
                ids.len(),
                cluster.log()
            );
        };
        ids.push(ack_id(&ack, &raw));
    }
    ids
}

fn ack_id(ack: &AcknowledgementMessage, raw: &Value) -> String {
    let id = match ack {
        AcknowledgementMessage::Completion { .. } => &raw["activationId"],
        _ if raw["response"].is_string() => &raw["response"],
        _ => &raw["response"]["activationId"],
    };
    id.as_str()
        .unwrap_or_else(|| panic!("no id in {raw}"))
        .to_string()
}

/// `echo0` at its current revision (so that the invoker caches it), non-blocking, number `n`.
fn cached_echo(n: u32, revision: &str) -> (String, Value) {
    let (id, mut msg) = message("echo0", n, false, json!({"n": n}));
    msg["revision"] = json!(revision);
    (id, msg)
}

/// The ids of the records in the activations database.
async fn stored_ids(cluster: &Cluster) -> Vec<String> {
    let db = cluster.couch.activation_db.clone();
    let all = within(
        REQUEST_TIMEOUT,
        "listing records",
        cluster.client.get_json(&[&db, "_all_docs"], ""),
    )
    .await
    .expect("_all_docs");
    all["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|row| row["id"].as_str())
        .filter(|id| !id.starts_with("_design"))
        .map(str::to_string)
        .collect()
}

#[test]
fn test_couchdb_stalled_intake_goes_on_and_every_record_is_stored_once() {
    const ACTIVATIONS: u32 = 200;
    let _serial = serial();
    runtime().block_on(async {
        let cluster = one_invoker().await;
        let revision = cluster.entity("guest/echo0").await["_rev"]
            .as_str()
            .expect("a revision")
            .to_string();
        // Cached: the action needs no read of CouchDB any more.
        let (_, warm) = cached_echo(0, &revision);
        cluster.produce(&warm.to_string()).await;
        acked_ids(&cluster, 1, controller::ACK_TIMEOUT).await;
        metric_reaches(
            &cluster,
            "invoker_activation_records_stored_total",
            1.0,
            RECOVERY,
        )
        .await;

        signal(cluster.pouch.pid(), "-STOP");
        let started = Instant::now();
        let batch: Vec<(String, Value)> = (1..=ACTIVATIONS)
            .map(|n| cached_echo(n, &revision))
            .collect();
        let payloads: Vec<String> = batch.iter().map(|(_, msg)| msg.to_string()).collect();
        cluster.produce_all("invoker0", &payloads).await;
        let acked = acked_ids(&cluster, ACTIVATIONS as usize, Duration::from_secs(60)).await;
        let intake = started.elapsed();
        let unique: BTreeSet<&String> = acked.iter().collect();
        assert_eq!(
            unique.len(),
            ACTIVATIONS as usize,
            "each activation acked once"
        );
        // Every record waits in the queue; none was dropped.
        assert_eq!(
            cluster
                .metric(0, "invoker_activation_records_pending")
                .await,
            f64::from(ACTIVATIONS)
        );
        assert_eq!(
            cluster
                .metric(0, "invoker_activation_records_dropped_total")
                .await,
            0.0
        );
        eprintln!("{ACTIVATIONS} activations answered in {intake:?} with CouchDB stopped");

        signal(cluster.pouch.pid(), "-CONT");
        metric_reaches(
            &cluster,
            "invoker_activation_records_stored_total",
            f64::from(ACTIVATIONS + 1),
            RECOVERY,
        )
        .await;
        let stored = stored_ids(&cluster).await;
        assert_eq!(stored.len(), ACTIVATIONS as usize + 1, "every record once");
        for (id, _) in &batch {
            assert!(
                stored.contains(&format!("guest/{id}")),
                "record {id} missing"
            );
        }
        assert_eq!(
            cluster
                .metric(0, "invoker_activation_records_failed_total")
                .await,
            0.0
        );
        assert_eq!(
            cluster
                .metric(0, "invoker_activation_records_pending")
                .await,
            0.0
        );
    });
}

#[test]
fn test_couchdb_refusing_connections_fails_fetches_at_once_and_keeps_records() {
    let _serial = serial();
    runtime().block_on(async {
        let mut cluster = Cluster::services().await;
        let couch = Proxy::start(cluster.pouch.port());
        let mut options = InvokerOptions::new(MEMORY);
        options.couch_port = Some(couch.port());
        cluster.start_invoker(0, options);
        cluster.await_pings(&[0], Duration::from_secs(120)).await;

        couch.cut();
        // The action must be read (no revision: the cache is bypassed): a whisk error, at once.
        let (id, msg) = message("echo", 1, true, json!({}));
        let started = Instant::now();
        cluster.produce(&msg.to_string()).await;
        let (ack, raw) = cluster.ack().await;
        let answered = started.elapsed();
        assert!(
            matches!(ack, AcknowledgementMessage::Combined { .. }),
            "{raw}"
        );
        assert_eq!(raw["isSystemError"], true, "{raw}");
        assert_eq!(raw["response"]["activationId"], id);
        assert_eq!(
            raw["response"]["response"]["result"],
            json!({"error": FETCH_FAILED})
        );
        assert!(
            answered < Duration::from_secs(20),
            "a refused connection is not waited out: answered after {answered:?}"
        );
        // Its record waits for the database.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(cluster.record("guest", &id, Duration::ZERO).await.is_none());
        assert_eq!(
            cluster
                .metric(0, "invoker_activation_records_pending")
                .await,
            1.0
        );

        couch.restore();
        let record = cluster
            .record("guest", &id, RECOVERY)
            .await
            .unwrap_or_else(|| {
                panic!(
                    "record not stored after the database came back:\n{}",
                    cluster.log()
                )
            });
        assert_eq!(record["response"]["statusCode"], 3);
        // And actions load again.
        let (again, msg) = message("echo0", 2, true, json!({"x": 1}));
        cluster.produce(&msg.to_string()).await;
        let activation = combined_whole(&cluster, &msg, &again, 0).await;
        assert_eq!(activation["response"]["result"], json!({"x": 1}));
        assert_eq!(
            cluster
                .metric(0, "invoker_activation_records_dropped_total")
                .await,
            0.0
        );
    });
}

/// Starts `count` blocking `sleepy` activations (numbers from `first`) of `ms` each and waits until
/// they all run.
async fn sleepers(cluster: &Cluster, first: u32, count: u32, ms: u64) -> Vec<String> {
    let mut ids = Vec::new();
    for n in first..first + count {
        let (id, msg) = message("sleepy", n, false, json!({"ms": ms}));
        cluster.produce(&msg.to_string()).await;
        ids.push(id);
    }
    metric_reaches(
        cluster,
        "invoker_pool_active_activations",
        f64::from(count),
        controller::ACK_TIMEOUT,
    )
    .await;
    ids
}

/// After an outage of the broker: the acks of `running` arrive, then new work is answered.
///
/// The controller side reads acks with a new client: a group member whose session expired during
/// the outage waits for ever for its rejoin on Tansu (the invoker's feed starts a new consumer for
/// the same reason: `executor::kafka::REJOIN_LIMIT`).
async fn acks_arrive_and_work_goes_on(cluster: &mut Cluster, running: &[String], next: u32) {
    let fresh: rdkafka::consumer::StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.tansu.bootstrap())
        .set("group.id", "completed0-after-the-outage")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    fresh.subscribe(&["completed0"]).expect("subscribe");
    let stuck = std::mem::replace(&mut cluster.completed, fresh);
    // Closing it leaves the group: a broker round trip, not on the runtime's threads.
    std::thread::spawn(move || drop(stuck));
    let acked = acked_ids(cluster, running.len(), RECOVERY).await;
    let acked: BTreeSet<String> = acked.into_iter().collect();
    let expected: BTreeSet<String> = running.iter().cloned().collect();
    assert_eq!(
        acked, expected,
        "every activation that ran during the outage is acked"
    );
    let (id, msg) = message("echo0", next, true, json!({"after": true}));
    cluster.produce(&msg.to_string()).await;
    let activation = combined_whole(cluster, &msg, &id, 0).await;
    assert_eq!(activation["response"]["result"], json!({"after": true}));
    assert_eq!(cluster.metric(0, "invoker_ack_failures_total").await, 0.0);
}

#[test]
fn test_broker_stalled_past_the_session_timeout_loses_no_ack_and_work_resumes() {
    let _serial = serial();
    runtime().block_on(async {
        let mut cluster = one_invoker().await;
        cluster
            .put_wasm_action("sleepy", "sleep", limits(60_000, 0), "0.0.1")
            .await;
        let running = sleepers(&cluster, 1, 3, 5_000).await;
        signal(cluster.tansu.pid(), "-STOP");
        tokio::time::sleep(LONG_OUTAGE).await;
        signal(cluster.tansu.pid(), "-CONT");
        acks_arrive_and_work_goes_on(&mut cluster, &running, 10).await;
    });
}

#[test]
fn test_broker_unreachable_past_the_send_timeout_loses_no_ack_and_work_resumes() {
    let _serial = serial();
    runtime().block_on(async {
        let broker_port = controller::free_port();
        let kafka = Proxy::start(broker_port);
        let tansu = Tansu::start_at(broker_port, Some(kafka.port()));
        let mut cluster = Cluster::services_with(tansu).await;
        cluster.start_invoker(0, InvokerOptions::new(MEMORY));
        cluster.await_pings(&[0], Duration::from_secs(120)).await;
        cluster
            .put_wasm_action("sleepy", "sleep", limits(60_000, 0), "0.0.1")
            .await;
        let running = sleepers(&cluster, 1, 3, 5_000).await;
        kafka.cut();
        tokio::time::sleep(LONG_OUTAGE).await;
        kafka.restore();
        acks_arrive_and_work_goes_on(&mut cluster, &running, 10).await;
        assert!(
            cluster.metric(0, "invoker_ack_retries_total").await >= 1.0,
            "the acks were sent again"
        );
    });
}

#[test]
fn test_sigterm_pings_disabled_at_once_and_finishes_running_work() {
    let _serial = serial();
    runtime().block_on(async {
        let mut cluster = one_invoker().await;
        cluster
            .put_wasm_action("sleepy", "sleep", limits(60_000, 0), "0.0.1")
            .await;
        let running = sleepers(&cluster, 1, 2, 8_000).await;
        // Read the health topic up to now.
        while cluster.ping(Duration::from_millis(500)).await.is_some() {}
        let signalled = Instant::now();
        cluster.send_sigterm(0);
        let mut disabled = Vec::new();
        while disabled.len() < 3 {
            let ping = cluster
                .ping(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("no ping while draining; log:\n{}", cluster.log()));
            if !ping.is_enabled {
                disabled.push(signalled.elapsed());
            }
        }
        assert!(
            disabled[0] < Duration::from_secs(3),
            "the first disabled ping came {:?} after SIGTERM",
            disabled[0]
        );
        // Still draining (the activations sleep 8 s), and it keeps saying so.
        assert!(cluster.invokers.get_mut(&0).expect("invoker 0").running());
        let acked: BTreeSet<String> = acked_ids(&cluster, 2, controller::ACK_TIMEOUT)
            .await
            .into_iter()
            .collect();
        assert_eq!(acked, running.iter().cloned().collect());
        let status = cluster.exited(0).await;
        assert!(
            status.success(),
            "exit status {status}; log:\n{}",
            cluster.log()
        );
        eprintln!("disabled pings at {disabled:?} after SIGTERM");
    });
}

#[test]
fn test_flood_of_malformed_messages_leaves_valid_work_answered_and_the_log_small() {
    const MALFORMED: usize = 1_000;
    const VALID: u32 = 20;
    let _serial = serial();
    runtime().block_on(async {
        let cluster = one_invoker().await;
        let (_, sample) = message("echo0", 0, false, json!({}));
        let text = sample.to_string();
        let mut payloads: Vec<String> = (0..MALFORMED)
            .map(|n| match n % 5 {
                0 => format!("garbage {n} \u{1} not json"),
                1 => text[..text.len() * (n % 97 + 1) / 100].to_string(),
                2 => json!({"activationId": n, "transid": "wrong shape"}).to_string(),
                3 => json!([n, "an array"]).to_string(),
                // Now and then a large one: 900 KB of junk in a shape the parser rejects.
                _ if n % 100 == 4 => json!({"junk": "x".repeat(900_000)}).to_string(),
                _ => format!("{{\"transid\": [\"tid\", {n}"),
            })
            .collect();
        let mut valid = Vec::new();
        for n in 1..=VALID {
            let (id, msg) = message("echo0", n, false, json!({"n": n}));
            payloads.push(msg.to_string());
            valid.push(id);
        }
        cluster.produce_all("invoker0", &payloads).await;
        let acked: BTreeSet<String> = acked_ids(&cluster, VALID as usize, Duration::from_secs(120))
            .await
            .into_iter()
            .collect();
        assert_eq!(
            acked,
            valid.iter().cloned().collect(),
            "every valid message answered"
        );
        no_more_acks(&cluster).await;
        assert_eq!(
            cluster
                .metric(0, r#"invoker_messages_total{result="malformed"}"#)
                .await,
            MALFORMED as f64
        );
        let log = cluster.log();
        let warnings = log
            .lines()
            .filter(|line| line.contains("does not parse"))
            .count();
        assert!(
            (1..=12).contains(&warnings),
            "{warnings} lines for {MALFORMED} malformed messages"
        );
        assert!(log.len() < 64 * 1024, "log of {} bytes", log.len());
        // Still up and serving.
        let (id, msg) = message("echo0", 99, true, json!({"still": "up"}));
        cluster.produce(&msg.to_string()).await;
        combined_whole(&cluster, &msg, &id, 0).await;
    });
}

#[test]
fn test_a_panic_in_processing_is_answered_and_the_node_keeps_serving() {
    let _serial = serial();
    runtime().block_on(async {
        let cluster = one_invoker().await;
        let (id, msg) = message(PANIC_ACTION, 1, true, json!({}));
        cluster.produce(&msg.to_string()).await;
        let (ack, raw) = cluster.ack().await;
        assert!(
            matches!(ack, AcknowledgementMessage::Combined { .. }),
            "{raw}"
        );
        assert_eq!(raw["transid"], msg["transid"]);
        assert_eq!(raw["isSystemError"], true, "{raw}");
        assert_eq!(raw["response"]["activationId"], id);
        assert_eq!(raw["response"]["response"]["statusCode"], 3, "{raw}");
        assert_eq!(
            cluster.metric(0, "invoker_activation_panics_total").await,
            1.0
        );
        let record = cluster
            .record("guest", &id, RECOVERY)
            .await
            .expect("the whisk error is stored");
        assert_eq!(record["response"]["statusCode"], 3);

        let (id, msg) = message("echo0", 2, true, json!({"next": 2}));
        cluster.produce(&msg.to_string()).await;
        let activation = combined_whole(&cluster, &msg, &id, 0).await;
        assert_eq!(activation["response"]["result"], json!({"next": 2}));
    });
}

#[test]
fn test_a_dead_feed_ends_the_process_with_a_failure_status() {
    let _serial = serial();
    runtime().block_on(async {
        let mut cluster = one_invoker().await;
        // The test-only hook makes the feed thread panic on this record
        // (`executor::kafka::INJECTED_FEED_PANIC`).
        cluster.produce("wasm-invoker-injected-feed-panic").await;
        let status = cluster.exited(0).await;
        assert_eq!(
            status.code(),
            Some(3),
            "a node that cannot consume exits non-zero (3: ours); log:\n{}",
            cluster.log()
        );
        assert!(
            cluster.log().contains("the Kafka feed ended"),
            "{}",
            cluster.log()
        );
    });
}
