//! The controller side of the end-to-end tests: a real Kafka-protocol broker (Tansu), a real CouchDB
//! API (pouchdb-server) and any number of real `wasm-invoker invoker` processes, driven the way an
//! OpenWhisk controller drives them. It stores action documents (with their attachments), produces
//! `ActivationMessage`s to `invoker{N}`, reads `completed0` and `health`, and reads records from the
//! activations database. Invokers can be started with `--id N`, killed (SIGKILL or SIGTERM) and
//! restarted.
//!
//! Shared by `tests/invoker.rs`, `tests/invoker_cases.rs`, `tests/invoker_scale.rs` and
//! `tests/invoker_operations.rs`:
//! `#[path = "support/controller.rs"] mod controller;`.
//! Needs `tansu` and `pouchdb-server` (see `executor/tests/support/`); `scripts/test` installs both.

#![allow(
    dead_code,
    reason = "each test crate uses a different part of the harness"
)]

// Each support file includes the one port picker itself, so that it works wherever it is included
// (test crates, benches); the copies share their reservations machine-wide (see ports.rs).
#[allow(
    clippy::duplicate_mod,
    reason = "one picker, included by each support file that starts a server"
)]
#[path = "../../executor/tests/support/ports.rs"]
pub mod ports;
#[path = "../../executor/tests/support/pouchdb.rs"]
pub mod pouchdb;
#[path = "../../executor/tests/support/tansu.rs"]
pub mod tansu;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use executor::message::{AcknowledgementMessage, PingMessage};
use executor::store::couchdb::{CouchClient, CouchDbConfig};
use pouchdb::PouchDb;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use tansu::Tansu;

/// The attachment name of the `echo` module in the `echo` and `echo0` documents.
pub const ECHO_ATTACHMENT: &str = "246fc0c3-6162-4c82-819d-3c903dfc51f7";
/// A runtimes manifest with one Node.js kind and no stem cells: the health test action's kind
/// resolves, and no prewarm containers are started.
pub const MANIFEST: &str = r#"{"runtimes":{"nodejs":[{"kind":"nodejs:20","default":true,"image":{"prefix":"openwhisk","name":"action-nodejs-v20","tag":"nightly"}}]},"blackboxes":[]}"#;
/// The invoking user's API key (the guest key of a standard deployment).
pub const GUEST_KEY: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
/// How long [`Cluster::ack`] waits for one ack.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one request of the harness (a CouchDB call, a produce, an admin HTTP request, a topic
/// creation) may take before the test fails: generous for a loaded two-core machine, finite so that
/// a hung service fails the test with a message instead of hanging it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an invoker may take to exit after SIGTERM (it first finishes what it took).
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The design document of OpenWhisk's subjects database that lists blocked namespaces: a
/// namespace whose `<ns>/limits` document allows 0 concurrent invocations or 0 per minute, and every
/// namespace of a subject with `blocked: true` (fixture `design/namespace-throttlings.json`).
pub fn blacklist_design_document() -> Value {
    serde_json::from_str(&fixture("design/namespace-throttlings.json"))
        .expect("the design document fixture is JSON")
}

/// `future`, or a panic naming `what` when it takes longer than `limit`: every await of the
/// end-to-end tests is bounded, so a hung component fails the test instead of hanging it.
pub async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
}

/// A free port on 127.0.0.1 for a server a test starts (an invoker's HTTP port, a broker behind a
/// proxy): [`ports::free_port`], outside the kernel's ephemeral range.
pub fn free_port() -> u16 {
    ports::free_port(Ipv4Addr::LOCALHOST)
}

/// Milliseconds since the epoch.
pub fn now_millis() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

/// A controller-side consumer of `topic` reading from the start.
pub fn consumer(tansu: &Tansu, topic: &str) -> StreamConsumer {
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

/// The next record's payload, or `None` after `timeout`. Consumer errors (a broker that is away:
/// the fault cases cut it) are waited out until `timeout`.
pub async fn next(consumer: &StreamConsumer, timeout: Duration) -> Option<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => return Some(message.payload().unwrap_or_default().to_vec()),
            Ok(Err(error)) => eprintln!("consumer error (waited out): {error}"),
            Err(_) => return None,
        }
    }
}

/// Every slot-freeing ack in `completed0`, read again from offset 0 by a consumer of its own (group
/// `group`) up to the end (no record for `quiet`), in order: (activation id, the answering invoker's
/// instance). With two invokers producing to `completed0` at once Tansu can hide an ack from a
/// consumer reading meanwhile (README, "Known limits"); read again once the writing is over, the
/// topic has every ack. Fails on an ack that does not parse or does not free a slot (the callers send
/// non-blocking activations), or when the topic is not read to its end within two minutes.
pub async fn reread_acks(bootstrap: &str, group: &str, quiet: Duration) -> Vec<(String, u32)> {
    const READ_LIMIT: Duration = Duration::from_secs(120);
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()
        .expect("consumer");
    let mut partitions = rdkafka::TopicPartitionList::new();
    partitions
        .add_partition_offset("completed0", 0, rdkafka::Offset::Beginning)
        .expect("partition");
    consumer.assign(&partitions).expect("assign");
    let deadline = Instant::now() + READ_LIMIT;
    let mut acks = Vec::new();
    while let Some(raw) = next(&consumer, quiet).await {
        assert!(
            Instant::now() < deadline,
            "completed0 not read to its end within {READ_LIMIT:?}"
        );
        let ack = AcknowledgementMessage::parse(&raw).expect("ack parses");
        let json: Value = serde_json::from_slice(&raw).expect("ack is JSON");
        assert!(ack.frees_slot(), "non-blocking: only slot-freeing acks");
        let from =
            u32::try_from(json["instance"]["instance"].as_u64().expect("instance")).expect("fits");
        acks.push((ack.activation_id().to_string(), from));
    }
    acks
}

/// The next record's payload and its timestamp (ms since the epoch, as the producer set it), or
/// `None` after `timeout`.
pub async fn next_with_time(
    consumer: &StreamConsumer,
    timeout: Duration,
) -> Option<(Vec<u8>, Option<i64>)> {
    match tokio::time::timeout(timeout, consumer.recv()).await {
        Ok(Ok(message)) => Some((
            message.payload().unwrap_or_default().to_vec(),
            message.timestamp().to_millis(),
        )),
        Ok(Err(error)) => panic!("consume failed: {error}"),
        Err(_) => None,
    }
}

/// An action document for a `wasm:wasip1` action `guest/<name>` whose module is the `couch:`
/// attachment `attachment`.
pub fn wasm_document(name: &str, attachment: &str, limits: Value, version: &str) -> Value {
    json!({
        "_id": format!("guest/{name}"),
        "entityType": "action",
        "namespace": "guest",
        "name": name,
        "exec": {"kind": "wasm:wasip1", "binary": true,
                 "code": {"attachmentName": format!("couch:{attachment}"), "attachmentType": "application/octet-stream"}},
        "parameters": [],
        "limits": limits,
        "version": version,
        "publish": false,
        "annotations": [{"key": "provide-api-key", "value": false}, {"key": "exec", "value": "wasm:wasip1"}],
        "updated": 1741942502117u64
    })
}

/// The `echo` action's document with log limit `logs` MB (timeout 5 s, 128 MB).
pub fn echo_document(name: &str, logs: u32) -> Value {
    wasm_document(
        name,
        ECHO_ATTACHMENT,
        json!({"timeout": 5000, "memory": 128, "logs": logs, "concurrency": 1}),
        "0.0.1",
    )
}

/// The bytes of the example wasm action `name` (built on first use).
pub fn module(name: &str) -> Vec<u8> {
    let path = ow_action::artifacts::wasm_module(name)
        .unwrap_or_else(|error| panic!("example {name} builds: {error}"));
    std::fs::read(path).expect("module")
}

/// An OpenWhisk golden fixture, `executor/tests/fixtures/<path>` (the workspace's one copy).
pub fn fixture(path: &str) -> String {
    let file = format!(
        "{}/executor/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&file).unwrap_or_else(|error| panic!("fixture {file}: {error}"))
}

/// How an invoker process is started.
#[derive(Debug, Clone)]
pub struct InvokerOptions {
    /// `[pool] user_memory`, e.g. `"1024 MB"`.
    pub user_memory: String,
    /// `RUST_LOG`.
    pub log_level: String,
    /// Extra environment variables (e.g. `CONFIG_whisk_kafka_consumer_fetchMaxWaitMs`).
    pub env: Vec<(String, String)>,
    /// Extra `[pool]` settings of the TOML file, (key, TOML value), e.g.
    /// `("blacklist_poll_ms", "1000")`.
    pub pool: Vec<(String, String)>,
    /// Settings of a `[docker]` section of the TOML file, (key, TOML value), e.g.
    /// `("log_files", "false")`.
    pub docker: Vec<(String, String)>,
    /// The CouchDB port the invoker uses, when not the server's own (a proxy in front of it).
    pub couch_port: Option<u16>,
}

impl InvokerOptions {
    /// `user_memory`, log level `info`, no extra environment.
    pub fn new(user_memory: &str) -> Self {
        Self {
            user_memory: user_memory.into(),
            log_level: "info".into(),
            env: Vec::new(),
            pool: Vec::new(),
            docker: Vec::new(),
            couch_port: None,
        }
    }
}

/// One invoker process (`wasm-invoker invoker --id N`).
#[derive(Debug)]
pub struct InvokerProcess {
    /// `--id`.
    pub id: u32,
    /// Admin HTTP port.
    pub port: u16,
    /// Its stdout and stderr (appended to across restarts).
    pub log: PathBuf,
    config: PathBuf,
    options: InvokerOptions,
    child: Option<Child>,
}

impl InvokerProcess {
    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "invoker {} already runs", self.id);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasm-invoker"));
        command
            .args([
                "invoker",
                "--id",
                &self.id.to_string(),
                "--unique-name",
                &self.id.to_string(),
                "--config",
            ])
            .arg(&self.config)
            .env("RUNTIMES_MANIFEST", MANIFEST)
            .env("RUST_LOG", &self.options.log_level)
            .env_remove("KAFKA_HOSTS")
            .env_remove("PORT");
        for (name, value) in &self.options.env {
            command.env(name, value);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start the invoker");
        self.child = Some(child);
    }

    /// Sends `signal` (`-KILL`, `-TERM`) and returns at once.
    fn send(&self, signal: &str) {
        let child = self.child.as_ref().expect("running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {}", child.id());
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().expect("wait").is_none())
    }

    /// Waits (up to `limit`, without blocking the runtime) for the exit; returns its status.
    async fn exited(&mut self, limit: Duration) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + limit;
        let mut child = self.child.take().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "invoker {} did not exit within {limit:?}:\n{}",
                    self.id,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `signal` (`-KILL`, `-TERM`) and waits (up to 30 s) for the exit.
    fn signal(&mut self, signal: &str) -> ExitStatus {
        self.send(signal);
        let mut child = self.child.take().expect("running");
        for _ in 0..600 {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "invoker {} did not stop after {signal}:\n{}",
            self.id,
            self.log()
        );
    }
}

impl Drop for InvokerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The controller side plus the services and the invoker processes.
///
/// Fields drop in declaration order, and the order matters: the invokers and the Kafka clients go
/// first, while the broker still answers (a consumer leaving its group, or a producer flushing,
/// against a broker that is already gone waits out its timeouts: about a minute per test), and the
/// broker goes last.
pub struct Cluster {
    /// Invokers by `--id`.
    pub invokers: BTreeMap<u32, InvokerProcess>,
    /// Produces to `invoker{N}`.
    pub producer: FutureProducer,
    /// Reads `completed0`.
    pub completed: StreamConsumer,
    /// Reads `health`.
    pub health: StreamConsumer,
    /// The CouchDB configuration the invokers use.
    pub couch: CouchDbConfig,
    /// A client of that CouchDB.
    pub client: CouchClient,
    /// The CouchDB server.
    pub pouch: PouchDb,
    dir: tempfile::TempDir,
    /// The broker.
    pub tansu: Tansu,
}

impl Cluster {
    /// The services, the `echo` (log limit 10) and `echo0` (log limit 0) actions, the controller's
    /// health test action, and invoker 0 with `user_memory`.
    pub async fn start(user_memory: &str) -> Self {
        let mut cluster = Self::services().await;
        cluster.start_invoker(0, InvokerOptions::new(user_memory));
        cluster
    }

    /// The services and the standard documents, no invoker yet.
    pub async fn services() -> Self {
        Self::services_with(Tansu::start()).await
    }

    /// [`Cluster::services`] with a broker started by the caller.
    pub async fn services_with(tansu: Tansu) -> Self {
        Self::services_with_both(tansu, PouchDb::start()).await
    }

    /// [`Cluster::services`] with the broker and the CouchDB server listening on `host` (the gateway
    /// of a Docker network the test created), for invokers that run in containers.
    pub async fn services_on(host: std::net::Ipv4Addr) -> Self {
        Self::services_with_both(Tansu::start_on(host), PouchDb::start_on(host)).await
    }

    /// [`Cluster::services`] with a broker and a CouchDB server started by the caller.
    pub async fn services_with_both(tansu: Tansu, pouch: PouchDb) -> Self {
        within(
            REQUEST_TIMEOUT,
            "creating completed0 and health",
            tansu.create_topics(&["completed0", "health"]),
        )
        .await;
        let couch = pouch.config("e2e");
        let client = CouchClient::new(&couch).expect("couch client");
        for db in [&couch.entity_db, &couch.activation_db, &couch.auth_db] {
            within(REQUEST_TIMEOUT, "creating a database", client.ensure_db(db))
                .await
                .expect("create db");
        }
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", tansu.bootstrap())
            .set("message.max.bytes", "1054644")
            .create()
            .expect("producer");
        let completed = consumer(&tansu, "completed0");
        let health = consumer(&tansu, "health");
        let cluster = Self {
            tansu,
            couch,
            client,
            pouch,
            invokers: BTreeMap::new(),
            dir: tempfile::tempdir().expect("tmp"),
            producer,
            completed,
            health,
        };
        // The wasm echo action, its module a couch: attachment, with logs collected and without.
        let echo = module("echo");
        for (name, logs) in [("echo", 10), ("echo0", 0)] {
            cluster
                .put_action(
                    &echo_document(name, logs),
                    &[(ECHO_ATTACHMENT, echo.clone())],
                )
                .await;
        }
        let mut health_doc: Value =
            serde_json::from_str(&fixture("couchdb/action-health-test.json")).expect("json");
        if let Value::Object(map) = &mut health_doc {
            map.remove("_rev");
        }
        cluster.put_action(&health_doc, &[]).await;
        cluster
    }

    /// Stores (creates or, with `_rev` in `document`, updates) an action document and uploads
    /// `attachments` (name, bytes) as `application/octet-stream`. Returns the final revision.
    pub async fn put_action(&self, document: &Value, attachments: &[(&str, Vec<u8>)]) -> String {
        let id = document["_id"].as_str().expect("document has an _id");
        let mut rev = within(
            REQUEST_TIMEOUT,
            "storing an action",
            self.client.put_json(&[&self.couch.entity_db, id], document),
        )
        .await
        .expect("put doc");
        for (name, bytes) in attachments {
            let response = within(
                REQUEST_TIMEOUT,
                "uploading an attachment",
                self.client.request(
                    hyper::Method::PUT,
                    &[&self.couch.entity_db, id, name],
                    &format!("rev={rev}"),
                    Some("application/octet-stream"),
                    Some(Bytes::from(bytes.clone())),
                ),
            )
            .await
            .expect("put attachment");
            assert!(
                response.status.is_success(),
                "attachment upload: {:?}",
                response.status
            );
            let body: Value = serde_json::from_slice(&response.body).expect("json");
            rev = body["rev"].as_str().expect("rev").to_string();
        }
        rev
    }

    /// Stores the example wasm action `example` as `guest/<name>` with `limits` and `version`.
    /// Returns the revision.
    pub async fn put_wasm_action(
        &self,
        name: &str,
        example: &str,
        limits: Value,
        version: &str,
    ) -> String {
        let attachment = format!("{example}-module");
        self.put_action(
            &wasm_document(name, &attachment, limits, version),
            &[(&attachment, module(example))],
        )
        .await
    }

    /// The current document `id` of the entities database.
    pub async fn entity(&self, id: &str) -> Value {
        within(
            REQUEST_TIMEOUT,
            "reading a document",
            self.client.get_json(&[&self.couch.entity_db, id], ""),
        )
        .await
        .expect("document")
    }

    /// Stores `document` (its `_id` inside) in database `db`; returns the revision.
    pub async fn put_document(&self, db: &str, document: &Value) -> String {
        let id = document["_id"].as_str().expect("document has an _id");
        within(
            REQUEST_TIMEOUT,
            "storing a document",
            self.client.put_json(&[db, id], document),
        )
        .await
        .unwrap_or_else(|error| panic!("put {db}/{id}: {error}"))
    }

    /// The keys of the subjects database's `namespaceThrottlings/blockedNamespaces` view, read
    /// without `stale` (so the index is brought up to date first, as a CouchDB admin would).
    pub async fn blocked_namespaces(&self) -> Vec<String> {
        let view = within(
            REQUEST_TIMEOUT,
            "reading the blacklist view",
            self.client.get_json(
                &[
                    &self.couch.auth_db,
                    "_design",
                    "namespaceThrottlings",
                    "_view",
                    "blockedNamespaces",
                ],
                "reduce=false",
            ),
        )
        .await
        .expect("blacklist view");
        view["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| row["key"].as_str().expect("key").to_string())
            .collect()
    }

    /// The value of metric line `name` (the whole name with labels, as printed) on invoker `id`'s
    /// `/metrics`; a missing line fails the test.
    pub async fn metric(&self, id: u32, name: &str) -> f64 {
        let (status, text) = self.http_to(id, "GET", "/metrics", false).await;
        assert_eq!(status, 200, "{text}");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no metric {name} on invoker {id}:\n{text}"))
            .trim()
            .parse()
            .unwrap_or_else(|error| panic!("metric {name} is not a number: {error}"))
    }

    /// Writes the config of invoker `id` and starts it.
    pub fn start_invoker(&mut self, id: u32, options: InvokerOptions) {
        let port = free_port();
        let config = self.dir.path().join(format!("invoker{id}.toml"));
        let couch = &self.couch;
        let pool: String = options
            .pool
            .iter()
            .map(|(key, value)| format!("{key} = {value}\n"))
            .collect();
        let docker: String = if options.docker.is_empty() {
            String::new()
        } else {
            let settings: String = options
                .docker
                .iter()
                .map(|(key, value)| format!("{key} = {value}\n"))
                .collect();
            format!("[docker]\n{settings}\n")
        };
        std::fs::write(
            &config,
            format!(
                "[kafka]\nhosts = \"{}\"\n\n[http]\nport = {port}\n\n[pool]\nuser_memory = \"{}\"\n{pool}\n{docker}[couchdb]\nprotocol = \"http\"\nhost = \"127.0.0.1\"\nport = {}\nusername = \"{}\"\npassword = \"{}\"\nentity_db = \"{}\"\nactivation_db = \"{}\"\nauth_db = \"{}\"\n",
                self.tansu.bootstrap(), options.user_memory, options.couch_port.unwrap_or(couch.port), couch.username, couch.password, couch.entity_db, couch.activation_db, couch.auth_db
            ),
        )
        .expect("config");
        let mut process = InvokerProcess {
            id,
            port,
            log: self.dir.path().join(format!("invoker{id}.log")),
            config,
            options,
            child: None,
        };
        process.spawn();
        self.invokers.insert(id, process);
    }

    /// Invoker `id`.
    pub fn invoker(&self, id: u32) -> &InvokerProcess {
        self.invokers
            .get(&id)
            .unwrap_or_else(|| panic!("no invoker {id}"))
    }

    fn invoker_mut(&mut self, id: u32) -> &mut InvokerProcess {
        self.invokers
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no invoker {id}"))
    }

    /// SIGKILL to invoker `id`; returns its exit status.
    pub fn kill(&mut self, id: u32) -> ExitStatus {
        self.invoker_mut(id).signal("-KILL")
    }

    /// SIGTERM to invoker `id`; returns its exit status once it stopped.
    pub fn terminate(&mut self, id: u32) -> ExitStatus {
        self.invoker_mut(id).signal("-TERM")
    }

    /// Sends SIGTERM to invoker `id` and returns at once (see [`Cluster::exited`]).
    pub fn send_sigterm(&self, id: u32) {
        self.invoker(id).send("-TERM");
    }

    /// Waits (up to [`EXIT_TIMEOUT`]) for invoker `id` to exit; returns its exit status.
    pub async fn exited(&mut self, id: u32) -> ExitStatus {
        self.invoker_mut(id).exited(EXIT_TIMEOUT).await
    }

    /// Starts the stopped invoker `id` again with the same configuration.
    pub fn restart(&mut self, id: u32) {
        self.invoker_mut(id).spawn();
    }

    /// SIGTERM to invoker 0.
    pub fn sigterm(&mut self) -> ExitStatus {
        self.terminate(0)
    }

    /// Invoker 0's log.
    pub fn log(&self) -> String {
        self.invokers
            .get(&0)
            .map(InvokerProcess::log)
            .unwrap_or_default()
    }

    /// Every invoker's log, headed by its id.
    pub fn logs(&self) -> String {
        self.invokers
            .values()
            .map(|invoker| format!("--- invoker {} ---\n{}", invoker.id, invoker.log()))
            .collect()
    }

    /// Produces `payload` to `invoker0`.
    pub async fn produce(&self, payload: &str) {
        self.produce_to("invoker0", payload).await;
    }

    /// Produces `payload` to `topic` and waits for the broker to take it.
    pub async fn produce_to(&self, topic: &str, payload: &str) {
        within(
            REQUEST_TIMEOUT,
            "producing a record",
            self.producer.send(
                FutureRecord::<(), str>::to(topic).payload(payload),
                Duration::from_secs(10),
            ),
        )
        .await
        .map_err(|(error, _)| error)
        .expect("produce");
    }

    /// Produces every payload to `topic` at once (queued together, then every delivery awaited).
    pub async fn produce_all(&self, topic: &str, payloads: &[String]) {
        let mut deliveries = Vec::with_capacity(payloads.len());
        for payload in payloads {
            let mut record = FutureRecord::<(), str>::to(topic).payload(payload.as_str());
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    // The local queue is full: let it drain.
                    Err((_, returned)) => {
                        record = returned;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
        for delivery in deliveries {
            within(REQUEST_TIMEOUT, "a delivery report", delivery)
                .await
                .expect("delivery not cancelled")
                .map_err(|(error, _)| error)
                .expect("produce");
        }
    }

    /// The next ping, parsed.
    pub async fn ping(&self, timeout: Duration) -> Option<PingMessage> {
        next(&self.health, timeout)
            .await
            .map(|raw| PingMessage::parse(&raw).expect("ping parses"))
    }

    /// Waits (up to `timeout`) for a ping from each of `ids`.
    pub async fn await_pings(&self, ids: &[u32], timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut missing: Vec<u32> = ids.to_vec();
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ping = self
                .ping(left)
                .await
                .unwrap_or_else(|| panic!("no ping from {missing:?}; logs:\n{}", self.logs()));
            missing.retain(|id| *id != ping.name.instance);
        }
    }

    /// The next ack, parsed, with its raw JSON.
    pub async fn ack(&self) -> (AcknowledgementMessage, Value) {
        self.ack_within(ACK_TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("no ack within {ACK_TIMEOUT:?}; logs:\n{}", self.logs()))
    }

    /// The next ack within `timeout`, parsed, with its raw JSON.
    pub async fn ack_within(&self, timeout: Duration) -> Option<(AcknowledgementMessage, Value)> {
        let raw = next(&self.completed, timeout).await?;
        let json: Value = serde_json::from_slice(&raw).expect("ack is JSON");
        Some((
            AcknowledgementMessage::parse(&raw).expect("ack parses"),
            json,
        ))
    }

    /// One HTTP/1.1 request to invoker 0's admin port.
    pub async fn http(&self, method: &str, path: &str, auth: bool) -> (u16, String) {
        self.http_to(0, method, path, auth).await
    }

    /// One HTTP/1.1 request to invoker `id`'s admin port (`auth`: the default credentials).
    pub async fn http_to(&self, id: u32, method: &str, path: &str, auth: bool) -> (u16, String) {
        within(
            REQUEST_TIMEOUT,
            &format!("{method} {path} on invoker {id}"),
            self.http_unbounded(id, method, path, auth),
        )
        .await
    }

    async fn http_unbounded(&self, id: u32, method: &str, path: &str, auth: bool) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.invoker(id).port))
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

    /// The record `guest/<id>` of the activations database, waiting up to 5 s for it.
    pub async fn activation_record(&self, id: &str) -> Option<Value> {
        self.record("guest", id, Duration::from_secs(5)).await
    }

    /// The record `<namespace>/<id>` of the activations database, waiting up to `wait` for it.
    pub async fn record(&self, namespace: &str, id: &str, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let doc_id = format!("{namespace}/{id}");
            let path = [self.couch.activation_db.as_str(), doc_id.as_str()];
            let read = self.client.get_json(&path, "");
            if let Ok(doc) = within(REQUEST_TIMEOUT, "reading a record", read).await {
                return Some(doc);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The activation id of message number `n`.
pub fn activation_id(n: u32) -> String {
    format!("{:032x}", 0xe2e0_0000_0000u64 + u64::from(n))
}

/// An `ActivationMessage` for `guest/<action>` by the guest user, `revision: null`, answered on
/// `completed0`: (activation id, message). Adjust the JSON for other shapes.
pub fn message(action: &str, n: u32, blocking: bool, content: Value) -> (String, Value) {
    let id = activation_id(n);
    let transid = json!([format!("tid{n:029}"), now_millis()]);
    let message = json!({
        "transid": transid,
        "action": {"path": "guest", "name": action, "version": "0.0.1"},
        "revision": null,
        "user": {
            "subject": "guest",
            "namespace": {"name": "guest", "uuid": "23bc46b1-71f6-4ed5-8c54-816aa4f8c502"},
            "authkey": {"api_key": GUEST_KEY},
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

/// The `InvokerInstanceId` JSON of invoker `id` started with `user_memory_bytes`.
pub fn instance(id: u32, user_memory_bytes: u64) -> Value {
    json!({"instance": id, "userMemory": format!("{user_memory_bytes} B"), "instanceType": "invoker",
           "tags": [], "dedicatedNamespaces": [], "uniqueName": id.to_string()})
}

/// Invoker 0's identity with 1024 MB.
pub fn expected_instance() -> Value {
    instance(0, 1_073_741_824)
}
