//! End to end, what an operator relies on: a blacklisted namespace refused (read from OpenWhisk's
//! view in the subjects database, at start and on refresh) while others run, user events on `events`
//! in OpenWhisk's shape, and SIGTERM while a slow activation runs (answered, stored, exit 0; later
//! messages left in Kafka for the next instance), and the admin server over https with client
//! certificates as OpenWhisk's Ansible deploys it. The real `wasm-invoker invoker` binary, Tansu and
//! pouchdb-server, driven by `tests/support/controller.rs`.
//!
//! The cases run one at a time. Needs `tansu` and `pouchdb-server`; `scripts/test` installs both.

#[path = "support/acks.rs"]
mod acks;
#[path = "support/controller.rs"]
mod controller;

use std::time::{Duration, Instant};

use acks::*;
use controller::{Cluster, InvokerOptions, REQUEST_TIMEOUT, instance, message, next, within};
use executor::message::AcknowledgementMessage;
use serde_json::{Value, json};

/// The uuid of the blocked namespaces (any uuid: events carry it as `userId`).
const BLOCKED_UUID: &str = "6f1b2ac0-1c1e-4c57-9d6d-3f1f0e2b7a11";
/// OpenWhisk's `Messages.namespacesBlacklisted`, as OpenWhisk writes it.
const OPENWHISK_BLACKLISTED: &str = "The action was not invoked due to a blacklisted namespace.";
/// How long a namespace blocked while the invoker runs may take to be refused (the invoker polls
/// the view every second here).
const BLACKLIST_REFRESH_LIMIT: Duration = Duration::from_secs(30);

/// `msg` as sent on behalf of namespace (and subject) `namespace` with `uuid`.
fn on_behalf_of(mut msg: Value, namespace: &str, uuid: &str) -> Value {
    msg["user"]["subject"] = json!(namespace);
    msg["user"]["namespace"] = json!({"name": namespace, "uuid": uuid});
    msg
}

/// The next ack is OpenWhisk's answer to a blacklisted namespace (docs/protocol.md §3 step 2,
/// `InvokerReactive.processActivationMessage`): one `CombinedCompletionAndResultMessage` sent as
/// for a non-blocking activation (`blockingInvoke = false`), so shrunk to the activation id,
/// whatever `blocking` says.
async fn refused(cluster: &Cluster, msg: &Value, id: &str) {
    let (ack, raw) = cluster.ack().await;
    if raw["response"].is_object() {
        // Not shrunk (checked below); the text it carries must at least be OpenWhisk's.
        assert_eq!(
            raw["response"]["response"]["result"],
            json!({"error": OPENWHISK_BLACKLISTED}),
            "{raw}"
        );
    }
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
    assert_eq!(raw["isSystemError"], false, "an application error: {raw}");
    assert_eq!(raw["instance"], instance(0, MEMORY_BYTES));
    assert_eq!(
        raw["response"],
        json!(id),
        "OpenWhisk acks a blacklisted activation as non-blocking (shrunk), blocking: {}; got {raw}",
        msg["blocking"]
    );
}

/// The next event on `events`, parsed.
async fn next_event(events: &rdkafka::consumer::StreamConsumer) -> Value {
    let raw = next(events, controller::ACK_TIMEOUT)
        .await
        .unwrap_or_else(|| panic!("no event within {:?}", controller::ACK_TIMEOUT));
    serde_json::from_slice(&raw).expect("event is JSON")
}

#[test]
fn test_blacklisted_namespace_is_refused_while_others_run() {
    let _serial = serial();
    runtime().block_on(async {
        let mut cluster = Cluster::services().await;
        // OpenWhisk's view in the subjects database, and a blocked subject.
        let subjects = cluster.couch.auth_db.clone();
        let design = controller::blacklist_design_document();
        cluster.put_document(&subjects, &design).await;
        cluster
            .put_document(
                &subjects,
                &json!({"_id": "mallory", "subject": "mallory", "blocked": true,
                        "namespaces": [{"name": "mallory", "uuid": BLOCKED_UUID, "key": "k1"}]}),
            )
            .await;
        // The invoker reads the view with `stale=update_after`: bring the index up to date first,
        // so that its read at start sees the blocked subject.
        assert_eq!(cluster.blocked_namespaces().await, ["mallory"]);
        within(
            REQUEST_TIMEOUT,
            "creating events",
            cluster.tansu.create_topics(&["events"]),
        )
        .await;
        let mut options = InvokerOptions::new(MEMORY);
        options
            .pool
            .push(("blacklist_poll_ms".into(), "1000".into()));
        // The refusal's status shows on the wire only in its user event (the ack is shrunk).
        options
            .env
            .push(("CONFIG_whisk_userEvents_enabled".into(), "true".into()));
        cluster.start_invoker(0, options);
        cluster.await_pings(&[0], Duration::from_secs(120)).await;
        let events = controller::consumer(&cluster.tansu, "events");

        // Blocked, non-blocking: refused with one shrunk Combined, no record, an application error.
        let (id, msg) = message("echo0", 1, false, json!({"n": 1}));
        let msg = on_behalf_of(msg, "mallory", BLOCKED_UUID);
        cluster.produce(&msg.to_string()).await;
        refused(&cluster, &msg, &id).await;
        let refusal = next_event(&events).await;
        assert_eq!(refusal["namespace"], "mallory", "{refusal}");
        assert_eq!(refusal["userId"], BLOCKED_UUID, "{refusal}");
        assert_eq!(refusal["body"]["activationId"], id.as_str(), "{refusal}");
        assert_eq!(refusal["body"]["name"], "guest/echo0", "{refusal}");
        assert_eq!(
            refusal["body"]["statusCode"], 1,
            "a blacklisted namespace is an application error: {refusal}"
        );

        // Another namespace on the same invoker still runs, the same action.
        let (guest, guest_msg) = message("echo0", 2, true, json!({"n": 2}));
        cluster.produce(&guest_msg.to_string()).await;
        let activation = combined_whole(&cluster, &guest_msg, &guest, 0).await;
        assert_eq!(activation["response"]["result"], json!({"n": 2}));
        check_record(&cluster, &activation).await;
        assert_eq!(next_event(&events).await["body"]["statusCode"], 0);

        // A namespace blocked while the invoker runs (its limits allow 0 invocations) is refused
        // once the invoker's next poll has read the view.
        cluster
            .put_document(
                &subjects,
                &json!({"_id": "throttled/limits", "concurrentInvocations": 0}),
            )
            .await;
        assert_eq!(cluster.blocked_namespaces().await, ["mallory", "throttled"]);
        let deadline = Instant::now() + BLACKLIST_REFRESH_LIMIT;
        let mut n = 10;
        let throttled = loop {
            let (id, msg) = message("echo0", n, false, json!({}));
            let msg = on_behalf_of(msg, "throttled", BLOCKED_UUID);
            cluster.produce(&msg.to_string()).await;
            let (ack, raw) = cluster.ack().await;
            assert_eq!(
                raw.get("activationId").or(raw.get("response")).cloned(),
                Some(json!(id))
            );
            if matches!(ack, AcknowledgementMessage::Combined { .. }) {
                assert_eq!(raw["response"], json!(id), "shrunk: {raw}");
                break id;
            }
            // Ran: the poll has not come yet.
            assert!(
                Instant::now() < deadline,
                "throttled not refused within {BLACKLIST_REFRESH_LIMIT:?}; log:\n{}",
                cluster.log()
            );
            n += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
        };

        // Blocked, blocking: OpenWhisk acks it as non-blocking too (shrunk), so the controller
        // never sees the message text; the record is never stored.
        let (blocked, blocked_msg) = message("echo0", 3, true, json!({"n": 3}));
        let blocked_msg = on_behalf_of(blocked_msg, "mallory", BLOCKED_UUID);
        cluster.produce(&blocked_msg.to_string()).await;
        refused(&cluster, &blocked_msg, &blocked).await;
        no_more_acks(&cluster).await;
        for (namespace, id) in [
            ("mallory", &id),
            ("throttled", &throttled),
            ("mallory", &blocked),
        ] {
            assert!(
                cluster
                    .record(namespace, id, Duration::from_secs(2))
                    .await
                    .is_none(),
                "a blacklisted activation was stored: {namespace}/{id}"
            );
        }
    });
}

/// Each object of `actual` has the keys of the same object of `golden`, and each value the same
/// JSON type (number, string, boolean, object, array, null), recursively.
fn same_shape(actual: &Value, golden: &Value, at: &str) {
    match (actual, golden) {
        (Value::Object(actual_map), Value::Object(_)) => {
            assert_eq!(keys(actual), keys(golden), "keys of {at}: {actual}");
            for (key, value) in actual_map {
                same_shape(value, &golden[key], &format!("{at}.{key}"));
            }
        }
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Array(_), Value::Array(_))
        | (Value::Null, Value::Null) => {}
        _ => panic!("{at}: {actual} has another type than OpenWhisk's {golden}"),
    }
}

#[test]
fn test_user_events_are_produced_in_openwhisk_shape() {
    let _serial = serial();
    runtime().block_on(async {
        let mut cluster = Cluster::services().await;
        within(
            REQUEST_TIMEOUT,
            "creating events",
            cluster.tansu.create_topics(&["events"]),
        )
        .await;
        let mut options = InvokerOptions::new(MEMORY);
        options
            .env
            .push(("CONFIG_whisk_userEvents_enabled".into(), "true".into()));
        cluster.start_invoker(0, options);
        cluster.await_pings(&[0], Duration::from_secs(120)).await;
        let events = controller::consumer(&cluster.tansu, "events");
        cluster
            .put_wasm_action("hello", "hello", limits(5000, 10), "0.0.1")
            .await;
        let golden: Value =
            serde_json::from_str(&controller::fixture("kafka/event-activation.json"))
                .expect("json");

        // A cold start: every field of OpenWhisk's example is there (initTime, size).
        let before = controller::now_millis();
        let (id, msg) = message("hello", 1, true, json!({"name": "Ada"}));
        cluster.produce(&msg.to_string()).await;
        let activation = result_then_completion(&cluster, &msg, &id, 0).await;
        let event = next_event(&events).await;
        let after = controller::now_millis();
        same_shape(&event, &golden, "event");
        let notes = annotations(&activation);
        assert_eq!(event["source"], "invoker0");
        assert_eq!(event["eventType"], "Activation");
        assert_eq!(event["subject"], "guest");
        assert_eq!(event["namespace"], "guest");
        assert_eq!(event["userId"], msg["user"]["namespace"]["uuid"]);
        let timestamp = event["timestamp"].as_u64().expect("timestamp");
        assert!(
            (before..=after).contains(&timestamp),
            "timestamp {timestamp} not within [{before}, {after}]"
        );
        let body = &event["body"];
        assert_eq!(body["name"], "guest/hello", "the path annotation: {event}");
        assert_eq!(body["activationId"], id.as_str());
        assert_eq!(body["statusCode"], 0);
        assert_eq!(body["duration"], activation["duration"]);
        assert_eq!(body["waitTime"], notes["waitTime"]);
        assert_eq!(body["initTime"], notes["initTime"], "{event}");
        assert_eq!(body["kind"], "wasm:wasip1");
        assert_eq!(body["conductor"], false);
        assert_eq!(body["memory"], 128, "MB from the limits annotation");
        assert_eq!(body["size"], activation["response"]["size"]);

        // Warm, an application error: initTime 0 (absent from the record), statusCode 1.
        let (id, msg) = message("hello", 2, true, json!({"name": 42}));
        cluster.produce(&msg.to_string()).await;
        let activation = result_then_completion(&cluster, &msg, &id, 0).await;
        assert_eq!(activation["response"]["statusCode"], 1, "{activation}");
        assert!(
            !annotations(&activation).contains_key("initTime"),
            "warm: {activation}"
        );
        let event = next_event(&events).await;
        assert_eq!(event["body"]["activationId"], id.as_str());
        assert_eq!(event["body"]["statusCode"], 1);
        assert_eq!(
            event["body"]["initTime"], 0,
            "OpenWhisk writes 0 without an initTime annotation: {event}"
        );

        // One event per activation: with the slot-freeing ack only, not with the Result.
        assert!(
            next(&events, QUIET).await.is_none(),
            "a second event for one activation"
        );
        no_more_acks(&cluster).await;
    });
}

/// How long the slow activation of the drain case sleeps: time to SIGTERM the invoker, let it stop
/// taking work and produce one more message while the activation still runs.
const DRAIN_SLEEP_MS: u64 = 10_000;
/// How long after the invoker logged its shutdown the drain case waits before producing the late
/// message: the feed stops polling within one poll (1 s) and then leaves the group.
const FEED_STOP_MARGIN: Duration = Duration::from_secs(3);
/// What the invoker logs when SIGTERM stops it taking messages.
const SHUTDOWN_LOG: &str = "shutting down";

#[test]
fn test_sigterm_answers_the_running_activation_and_leaves_later_messages() {
    let _serial = serial();
    runtime().block_on(async {
        let mut cluster = one_invoker().await;
        cluster
            .put_wasm_action("sleepy", "sleep", limits(60_000, 0), "0.0.1")
            .await;
        // Warm: compiled and a container ready, so the slow activation starts running at once.
        let (id, msg) = message("sleepy", 1, true, json!({"ms": 0}));
        cluster.produce(&msg.to_string()).await;
        let activation = combined_whole(&cluster, &msg, &id, 0).await;
        assert_eq!(activation["response"]["statusCode"], 0, "{activation}");

        // The slow activation runs when the signal comes.
        let (slow, slow_msg) = message("sleepy", 2, true, json!({"ms": DRAIN_SLEEP_MS}));
        cluster.produce(&slow_msg.to_string()).await;
        let deadline = Instant::now() + controller::ACK_TIMEOUT;
        while cluster.metric(0, "invoker_pool_active_activations").await < 1.0 {
            assert!(
                Instant::now() < deadline,
                "the slow activation did not start; log:\n{}",
                cluster.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cluster.send_sigterm(0);
        let deadline = Instant::now() + controller::EXIT_TIMEOUT;
        while !cluster.log().contains(SHUTDOWN_LOG) {
            assert!(
                Instant::now() < deadline,
                "no {SHUTDOWN_LOG:?} after SIGTERM; log:\n{}",
                cluster.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Produced after the invoker stopped taking work, while it still drains.
        tokio::time::sleep(FEED_STOP_MARGIN).await;
        let (late, late_msg) = message("echo0", 3, false, json!({"n": 3}));
        cluster.produce(&late_msg.to_string()).await;
        assert!(
            cluster.invokers.get_mut(&0).expect("invoker 0").running(),
            "the invoker exited before the slow activation ended; log:\n{}",
            cluster.log()
        );

        // The running activation is answered, successfully, and its record stored; exit 0.
        let activation = combined_whole(&cluster, &slow_msg, &slow, 0).await;
        assert_eq!(activation["response"]["statusCode"], 0, "{activation}");
        assert_eq!(
            activation["response"]["result"],
            json!({"slept_ms": DRAIN_SLEEP_MS})
        );
        let status = cluster.exited(0).await;
        assert!(
            status.success(),
            "exit status {status}; log:\n{}",
            cluster.log()
        );
        check_record(&cluster, &activation).await;
        let mut last = None;
        while let Some(ping) = cluster.ping(QUIET).await {
            last = Some(ping);
        }
        assert!(
            !last.expect("pings").is_enabled,
            "the last ping is the disabled one"
        );

        // The late message was not taken: no ack, no record. It waits for the next instance.
        no_more_acks(&cluster).await;
        assert!(cluster.activation_record(&late).await.is_none());
        cluster.restart(0);
        completion(&cluster, &late_msg, &late, 0, false).await;
        no_more_acks(&cluster).await;
    });
}

/// Every datagram the invoker sent to its service manager's socket until `until` arrived (or 60 s).
async fn notifications_until(socket: &tokio::net::UnixDatagram, until: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + controller::ACK_TIMEOUT;
    let mut buffer = [0u8; 4096];
    while !seen.iter().any(|line: &String| line == until) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(received) = tokio::time::timeout(left, socket.recv(&mut buffer)).await else {
            panic!("no {until:?} from the invoker; got {seen:?}");
        };
        let bytes = received.expect("receive");
        let text = String::from_utf8_lossy(&buffer[..bytes]);
        seen.extend(text.lines().map(str::to_string));
    }
    seen
}

#[test]
fn test_service_manager_hears_ready_watchdog_and_stopping() {
    let _serial = serial();
    runtime().block_on(async {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("notify.sock");
        let socket = tokio::net::UnixDatagram::bind(&path).expect("notify socket");
        let mut cluster = Cluster::services().await;
        let mut options = InvokerOptions::new(MEMORY);
        options.env = vec![
            ("NOTIFY_SOCKET".into(), path.display().to_string()),
            ("WATCHDOG_USEC".into(), "1000000".into()),
        ];
        cluster.start_invoker(0, options);
        // READY=1 only once the topic is consumed; the watchdog is kicked every half second.
        let before_ready = notifications_until(&socket, "READY=1").await;
        assert!(!before_ready.contains(&"STOPPING=1".to_string()));
        let kicks = notifications_until(&socket, "WATCHDOG=1").await;
        assert!(kicks.iter().all(|line| line == "WATCHDOG=1"), "{kicks:?}");
        let (id, msg) = message("echo0", 1, true, json!({"ready": true}));
        cluster.produce(&msg.to_string()).await;
        combined_whole(&cluster, &msg, &id, 0).await;

        cluster.send_sigterm(0);
        notifications_until(&socket, "STOPPING=1").await;
        let status = cluster.exited(0).await;
        assert!(
            status.success(),
            "exit status {status}; log:\n{}",
            cluster.log()
        );
    });
}

/// The keystore fixtures (`executor/tests/fixtures/tls/README.md`: made as OpenWhisk's
/// `genssl.sh` makes them, X.509 v1 certificates, password `openwhisk`).
fn tls_fixture(name: &str) -> String {
    format!(
        "{}/executor/tests/fixtures/tls/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn read_keystore(name: &str) -> executor::tls::Keystore {
    let path = std::path::PathBuf::from(tls_fixture(name));
    let bytes = std::fs::read(&path).expect("keystore fixture");
    executor::tls::Keystore::from_pkcs12(&path, &bytes, "openwhisk").expect("keystore fixture")
}

/// One request over TLS to the admin port: `(status, body)`, or why there was no answer.
async fn https_request(
    port: u16,
    config: rustls::ClientConfig,
    method: &str,
    path: &str,
    auth: bool,
) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name =
            rustls::pki_types::ServerName::try_from("invoker0").map_err(|e| e.to_string())?;
        let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let auth = if auth {
            "Authorization: Basic aW52b2tlci51c2VyOmludm9rZXIucGFzcw==\r\n"
        } else {
            ""
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: invoker0\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut response = String::new();
        tls.read_to_string(&mut response)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no HTTP answer: {response:?}"))?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        Ok((status, body))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
}

/// OpenWhisk's Ansible deployment: `CONFIG_whisk_invoker_protocol=https` with the keystore and
/// `clientAuth=true`. The admin server answers only over TLS and only to a client presenting the
/// keystore's own certificate (what the role's `/ping` check sends); a wrong keystore password
/// stops the start with status 2 and the keystore's path.
#[test]
fn test_admin_server_over_https_admits_only_the_keystores_certificate() {
    let _serial = serial();
    runtime().block_on(async {
        let mut cluster = Cluster::services().await;
        let https_env = |password: &str| -> Vec<(String, String)> {
            [
                ("CONFIG_whisk_invoker_protocol", "https"),
                (
                    "CONFIG_whisk_invoker_https_keystorePath",
                    &tls_fixture("invoker-keystore.p12"),
                ),
                ("CONFIG_whisk_invoker_https_keystorePassword", password),
                ("CONFIG_whisk_invoker_https_keystoreFlavor", "PKCS12"),
                ("CONFIG_whisk_invoker_https_clientAuth", "true"),
            ]
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
        };
        let mut options = InvokerOptions::new(MEMORY);
        options.env = https_env("openwhisk");
        cluster.start_invoker(0, options);
        cluster.await_pings(&[0], controller::ACK_TIMEOUT).await;
        let port = cluster.invoker(0).port;

        let own = read_keystore("invoker-keystore.p12");
        let other = read_keystore("other-keystore.p12");
        let client = |identity: Option<&executor::tls::Keystore>| {
            executor::tls::client::client_config(&own, identity, None).expect("client config")
        };
        assert_eq!(
            https_request(port, client(Some(&own)), "GET", "/ping", false).await,
            Ok((200, "pong".to_string()))
        );
        let (status, body) = https_request(port, client(Some(&own)), "GET", "/isEnabled", true)
            .await
            .expect("isEnabled over https");
        assert_eq!((status, body.as_str()), (200, r#"{"enabled":true}"#));
        let (status, _) = https_request(port, client(Some(&own)), "GET", "/isEnabled", false)
            .await
            .expect("isEnabled without credentials");
        assert_eq!(status, 401, "basic auth still applies over https");

        let refused = https_request(port, client(None), "GET", "/ping", false).await;
        assert!(refused.is_err(), "no client certificate: {refused:?}");
        let refused = https_request(port, client(Some(&other)), "GET", "/ping", false).await;
        assert!(refused.is_err(), "a foreign certificate: {refused:?}");
        let (status, _) = cluster.http("GET", "/ping", false).await;
        assert_eq!(status, 0, "plain HTTP must get no HTTP answer");

        // The node works as usual behind it.
        let (id, msg) = message("echo0", 1, true, json!({"over": "https"}));
        cluster.produce(&msg.to_string()).await;
        combined_whole(&cluster, &msg, &id, 0).await;

        // A wrong password: the start fails at once, naming the keystore.
        let mut options = InvokerOptions::new(MEMORY);
        options.env = https_env("not-the-password");
        cluster.start_invoker(1, options);
        let status = cluster.exited(1).await;
        let log = cluster.invoker(1).log();
        assert_eq!(
            status.code(),
            Some(2),
            "configuration error status; log:\n{log}"
        );
        assert!(
            log.contains("wrong password") && log.contains("invoker-keystore.p12"),
            "{log}"
        );
    });
}
