//! End to end: the real `wasm-invoker invoker` binary against a real Kafka-protocol broker (Tansu)
//! and a real CouchDB API (pouchdb-server), driven by a controller-side harness written here: it
//! stores action documents (the wasm `echo` module as a `couch:` attachment), produces
//! `ActivationMessage`s to `invoker0`, and reads `completed0` and `health` like a controller.
//!
//! Needs `tansu` and `pouchdb-server` (see `executor/tests/support/`); `scripts/test` installs both.

#[path = "../executor/tests/support/pouchdb.rs"]
#[allow(
    dead_code,
    reason = "the shared support module has more than this test uses"
)]
mod pouchdb;
#[path = "../executor/tests/support/tansu.rs"]
mod tansu;

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use executor::config::CouchDbConfig;
use executor::message::{AckResponse, AcknowledgementMessage, PingMessage};
use executor::store::couchdb::CouchClient;
use pouchdb::PouchDb;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use tansu::Tansu;

const ECHO_ATTACHMENT: &str = "246fc0c3-6162-4c82-819d-3c903dfc51f7";
/// A runtimes manifest with one Node.js kind and no stem cells: the health test action's kind
/// resolves, and no prewarm containers are started.
const MANIFEST: &str = r#"{"runtimes":{"nodejs":[{"kind":"nodejs:20","default":true,"image":{"prefix":"openwhisk","name":"action-nodejs-v20","tag":"nightly"}}]},"blackboxes":[]}"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The controller side plus the services and the invoker process.
struct Cluster {
    tansu: Tansu,
    couch: CouchDbConfig,
    _pouch: PouchDb,
    invoker: Option<Child>,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
    producer: FutureProducer,
    completed: StreamConsumer,
    health: StreamConsumer,
}

fn consumer(tansu: &Tansu, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", tansu.bootstrap())
        .set("group.id", format!("{topic}-controller"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

async fn next(consumer: &StreamConsumer, timeout: Duration) -> Option<Vec<u8>> {
    match tokio::time::timeout(timeout, consumer.recv()).await {
        Ok(Ok(message)) => Some(message.payload().unwrap_or_default().to_vec()),
        Ok(Err(error)) => panic!("consume failed: {error}"),
        Err(_) => None,
    }
}

fn echo_document(name: &str, logs: u32) -> Value {
    json!({
        "_id": format!("guest/{name}"),
        "entityType": "action",
        "namespace": "guest",
        "name": name,
        "exec": {"kind": "wasm:wasip1", "binary": true,
                 "code": {"attachmentName": format!("couch:{ECHO_ATTACHMENT}"), "attachmentType": "application/octet-stream"}},
        "parameters": [],
        "limits": {"timeout": 5000, "memory": 128, "logs": logs, "concurrency": 1},
        "version": "0.0.1",
        "publish": false,
        "annotations": [{"key": "provide-api-key", "value": false}, {"key": "exec", "value": "wasm:wasip1"}],
        "updated": 1741942502117u64
    })
}

impl Cluster {
    async fn start(user_memory: &str) -> Self {
        let tansu = Tansu::start();
        tansu.create_topics(&["completed0", "health"]).await;
        let pouch = PouchDb::start();
        let couch = pouch.config("e2e");
        let client = CouchClient::new(&couch).expect("couch client");
        for db in [&couch.entity_db, &couch.activation_db, &couch.auth_db] {
            client.ensure_db(db).await.expect("create db");
        }
        // The wasm echo action, its module a couch: attachment, with logs collected and without.
        let module = std::fs::read(ow_action::artifacts::wasm_module("echo").expect("echo builds"))
            .expect("module");
        for (name, logs) in [("echo", 10), ("echo0", 0)] {
            let rev = client
                .put_json(
                    &[&couch.entity_db, &format!("guest/{name}")],
                    &echo_document(name, logs),
                )
                .await
                .expect("put doc");
            let response = client
                .request(
                    hyper::Method::PUT,
                    &[&couch.entity_db, &format!("guest/{name}"), ECHO_ATTACHMENT],
                    &format!("rev={rev}"),
                    Some("application/octet-stream"),
                    Some(Bytes::from(module.clone())),
                )
                .await
                .expect("put attachment");
            assert!(
                response.status.is_success(),
                "attachment upload: {:?}",
                response.status
            );
        }
        let health_doc: Value = serde_json::from_str(
            &std::fs::read_to_string("/work/shared/fixtures/couchdb/action-health-test.json")
                .or_else(|_| {
                    std::fs::read_to_string(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/executor/tests/fixtures/couchdb/action-health-test.json"
                    ))
                })
                .expect("health action fixture"),
        )
        .expect("json");
        let mut health_doc = health_doc;
        if let Value::Object(map) = &mut health_doc {
            map.remove("_rev");
        }
        client
            .put_json(
                &[&couch.entity_db, "whisk.system/invokerHealthTestAction0"],
                &health_doc,
            )
            .await
            .expect("health doc");

        let dir = tempfile::tempdir().expect("tmp");
        let port = free_port();
        let config = dir.path().join("invoker.toml");
        std::fs::write(
            &config,
            format!(
                "[kafka]\nhosts = \"{}\"\n\n[http]\nport = {port}\n\n[pool]\nuser_memory = \"{user_memory}\"\n\n[couchdb]\nprotocol = \"http\"\nhost = \"127.0.0.1\"\nport = {}\nusername = \"{}\"\npassword = \"{}\"\nentity_db = \"{}\"\nactivation_db = \"{}\"\nauth_db = \"{}\"\n",
                tansu.bootstrap(), couch.port, couch.username, couch.password, couch.entity_db, couch.activation_db, couch.auth_db
            ),
        )
        .expect("config");
        let log = dir.path().join("invoker.log");
        let out = std::fs::File::create(&log).expect("log");
        let invoker = Command::new(env!("CARGO_BIN_EXE_wasm-invoker"))
            .args(["invoker", "--id", "0", "--unique-name", "0", "--config"])
            .arg(&config)
            .env("RUNTIMES_MANIFEST", MANIFEST)
            .env("RUST_LOG", "info")
            .env_remove("KAFKA_HOSTS")
            .env_remove("PORT")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start the invoker");
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", tansu.bootstrap())
            .set("message.max.bytes", "1054644")
            .create()
            .expect("producer");
        let completed = consumer(&tansu, "completed0");
        let health = consumer(&tansu, "health");
        Self {
            tansu,
            couch,
            _pouch: pouch,
            invoker: Some(invoker),
            port,
            log,
            _dir: dir,
            producer,
            completed,
            health,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn produce(&self, payload: &str) {
        self.producer
            .send(
                FutureRecord::<(), str>::to("invoker0").payload(payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| error)
            .expect("produce");
    }

    /// The next ping, parsed.
    async fn ping(&self, timeout: Duration) -> Option<PingMessage> {
        next(&self.health, timeout)
            .await
            .map(|raw| PingMessage::parse(&raw).expect("ping parses"))
    }

    /// The next ack, parsed, with its raw JSON.
    async fn ack(&self) -> (AcknowledgementMessage, Value) {
        let raw = next(&self.completed, Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("no ack within 60 s; invoker log:\n{}", self.log()));
        let json: Value = serde_json::from_slice(&raw).expect("ack is JSON");
        (
            AcknowledgementMessage::parse(&raw).expect("ack parses"),
            json,
        )
    }

    async fn http(&self, method: &str, path: &str, auth: bool) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect admin");
        let auth = if auth {
            "Authorization: Basic aW52b2tlci51c2VyOmludm9rZXIucGFzcw==\r\n"
        } else {
            ""
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        (status, body)
    }

    async fn activation_record(&self, id: &str) -> Option<Value> {
        let client = CouchClient::new(&self.couch).expect("client");
        for _ in 0..50 {
            if let Ok(doc) = client
                .get_json(&[&self.couch.activation_db, &format!("guest/{id}")], "")
                .await
            {
                return Some(doc);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    fn sigterm(&mut self) -> std::process::ExitStatus {
        let mut child = self.invoker.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        for _ in 0..600 {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!("the invoker did not stop after SIGTERM:\n{}", self.log());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.invoker.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn now_millis() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

fn activation_id(n: u32) -> String {
    format!("{:032x}", 0xe2e0_0000_0000u64 + u64::from(n))
}

fn message(action: &str, n: u32, blocking: bool, content: Value) -> (String, Value) {
    let id = activation_id(n);
    let transid = json!([format!("tid{n:029}"), now_millis()]);
    let message = json!({
        "transid": transid,
        "action": {"path": "guest", "name": action, "version": "0.0.1"},
        "revision": null,
        "user": {
            "subject": "guest",
            "namespace": {"name": "guest", "uuid": "23bc46b1-71f6-4ed5-8c54-816aa4f8c502"},
            "authkey": {"api_key": "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"},
            "rights": ["READ", "PUT", "DELETE", "ACTIVATE"],
            "limits": {}
        },
        "activationId": id,
        "rootControllerIndex": {"asString": "0", "instanceType": "controller"},
        "blocking": blocking,
        "content": content,
        "initArgs": [],
        "lockedArgs": {}
    });
    (id, message)
}

fn expected_instance() -> Value {
    json!({"instance":0,"userMemory":"1073741824 B","instanceType":"invoker","tags":[],"dedicatedNamespaces":[],"uniqueName":"0"})
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
    let mut pings = 0;
    let window = std::time::Instant::now();
    while window.elapsed() < Duration::from_secs(4) {
        if cluster.ping(Duration::from_millis(500)).await.is_some() {
            pings += 1;
        }
    }
    assert!((2..=8).contains(&pings), "{pings} pings in 4 s");

    // The controller's health test action: answered without Docker, transid echoed unchanged.
    let health =
        std::fs::read_to_string("/work/shared/fixtures/kafka/activation-message-health-test.json")
            .or_else(|_| {
                std::fs::read_to_string(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/executor/tests/fixtures/kafka/activation-message-health-test.json"
                ))
            })
            .expect("fixture");
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
    let mut max_in_flight = 0i64;
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
            let (_, metrics) = cluster.http("GET", "/metrics", false).await;
            for line in metrics.lines() {
                if let Some(value) = line.strip_prefix("invoker_pool_active_activations ") {
                    max_in_flight = max_in_flight.max(value.trim().parse().unwrap_or(0));
                }
            }
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
    assert!(
        max_in_flight <= 4,
        "{max_in_flight} activations in flight with maxPeek 4"
    );
}
