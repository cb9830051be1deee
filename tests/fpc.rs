//! End to end in OpenWhisk 2.x's scheduler mode (docs/fpc.md): a real `wasm-invoker invoker` process
//! in FPC mode against a real etcd, a real Kafka-protocol broker (Tansu), a real CouchDB API
//! (pouchdb-server) and a fake scheduler of ours (`support/scheduler.rs`: a gRPC
//! `ActivationService` with queues, plus the Kafka side here: creation orders to `invoker0`,
//! creation acks read from `creationAck0`). A fake controller reads `completed0`. The cases walk the
//! protocol's conformance checklist: registration and lease, warm-up, creation and polling, pause and
//! resume, the gRPC error replies, creation failures, deletion, disable/enable, SIGTERM, and 1,000
//! activations with one ack and one record each.

#[path = "support/controller.rs"]
mod controller;
#[path = "../executor/tests/support/etcd.rs"]
#[allow(
    dead_code,
    reason = "the shared support module has more than these cases use"
)]
mod etcd;
#[path = "support/scheduler.rs"]
mod scheduler;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use controller::{
    ACK_TIMEOUT, Cluster, InvokerOptions, REQUEST_TIMEOUT, consumer, message, next, now_millis,
    within,
};
use etcd_client::{Client as EtcdClient, GetOptions};
use executor::fpc::message::{ContainerCreationAckMessage, InvokerResourceMessage, InvokerStatus};
use rdkafka::consumer::StreamConsumer;
use serde_json::{Value, json};

use crate::etcd::Etcd;
use crate::scheduler::FakeScheduler;

/// Lease TTL of the invokers under test, seconds: short, so that a killed invoker's keys go soon.
const LEASE_TTL_S: u64 = 3;
/// `pause-grace` of the invokers under test.
const PAUSE_GRACE_MS: u64 = 2_000;
/// Pause grace of the thousand-activation case: its four containers wait this long for work, far
/// longer than their creation and the pushes take.
const IDLE_UNTIL_LOADED_MS: u64 = 120_000;
/// How long a key may take to appear or go.
const KEY_TIMEOUT: Duration = Duration::from_secs(30);
/// The revision the fake scheduler names when the test does not care.
const CLUSTER: &str = "whisk";

/// The services, etcd, a fake scheduler and the creation-ack reader.
struct Fpc {
    cluster: Cluster,
    etcd: Etcd,
    kv: EtcdClient,
    scheduler: FakeScheduler,
    creation_acks: StreamConsumer,
    echo_rev: String,
}

impl Fpc {
    async fn start() -> Self {
        let cluster = Cluster::services().await;
        within(
            REQUEST_TIMEOUT,
            "creating creationAck0 and invoker0",
            cluster.tansu.create_topics(&["creationAck0", "invoker0"]),
        )
        .await;
        let etcd = Etcd::start();
        let kv = within(
            REQUEST_TIMEOUT,
            "connecting to etcd",
            EtcdClient::connect([etcd.endpoint()], None),
        )
        .await
        .expect("etcd client");
        let scheduler = FakeScheduler::start().await;
        let creation_acks = consumer(&cluster.tansu, "creationAck0");
        let echo_rev = cluster.entity("guest/echo").await["_rev"]
            .as_str()
            .expect("echo has a revision")
            .to_string();
        Self {
            cluster,
            etcd,
            kv,
            scheduler,
            creation_acks,
            echo_rev,
        }
    }

    /// FPC settings of an invoker under test: this etcd, short lease and timers.
    fn options(&self, user_memory: &str) -> InvokerOptions {
        let mut options = InvokerOptions::new(user_memory);
        options.env.extend([
            ("CONFIG_whisk_etcd_hosts".into(), self.etcd.endpoint()),
            (
                "CONFIG_whisk_spi_InvokerProvider".into(),
                "org.apache.openwhisk.core.invoker.FPCInvokerReactive".into(),
            ),
            (
                "CONFIG_whisk_etcd_lease_timeout".into(),
                LEASE_TTL_S.to_string(),
            ),
            (
                "CONFIG_whisk_scheduler_dataManagementService_retryInterval".into(),
                "300 ms".into(),
            ),
            (
                "CONFIG_whisk_kafka_consumer_fetchMaxWaitMs".into(),
                "50".into(),
            ),
            // Actions may run up to 4 activations at once (checklist 12).
            ("CONFIG_whisk_concurrencyLimit_max".into(), "4".into()),
        ]);
        options
            .pool
            .push(("pause_grace_ms".into(), PAUSE_GRACE_MS.to_string()));
        options
    }

    /// Stores the `echo` module as action `guest/<name>` (log limit 0) with one limit changed;
    /// returns its revision.
    async fn put_echo_as(&self, name: &str, limit: &str, value: u64) -> String {
        let mut document = controller::echo_document(name, 0);
        document["limits"][limit] = json!(value);
        self.cluster
            .put_action(
                &document,
                &[(controller::ECHO_ATTACHMENT, controller::module("echo"))],
            )
            .await
    }

    async fn get(&mut self, key: &str) -> Option<(String, i64)> {
        let reply = within(REQUEST_TIMEOUT, "etcd get", self.kv.get(key, None))
            .await
            .expect("etcd get");
        reply
            .kvs()
            .first()
            .map(|kv| (kv.value_str().expect("utf-8 value").to_string(), kv.lease()))
    }

    async fn keys(&mut self, prefix: &str) -> Vec<String> {
        let reply = within(
            REQUEST_TIMEOUT,
            "etcd prefix get",
            self.kv.get(
                prefix,
                Some(GetOptions::new().with_prefix().with_keys_only()),
            ),
        )
        .await
        .expect("etcd get");
        reply
            .kvs()
            .iter()
            .map(|kv| kv.key_str().expect("utf-8 key").to_string())
            .collect()
    }

    /// Waits until `key` holds a value `accept` takes; returns it with its lease.
    async fn wait_key(&mut self, key: &str, accept: impl Fn(&str) -> bool) -> (String, i64) {
        let deadline = Instant::now() + KEY_TIMEOUT;
        loop {
            if let Some((value, lease)) = self.get(key).await
                && accept(&value)
            {
                return (value, lease);
            }
            assert!(
                Instant::now() < deadline,
                "{key} never held the expected value"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_gone(&mut self, key: &str) {
        let deadline = Instant::now() + KEY_TIMEOUT;
        while self.get(key).await.is_some() {
            assert!(Instant::now() < deadline, "{key} was never deleted");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The health key's value once its status is `status`.
    async fn health(&mut self, status: InvokerStatus) -> (InvokerResourceMessage, i64) {
        let (value, lease) = self
            .wait_key(&format!("{CLUSTER}/invokers/0/0"), |value| {
                serde_json::from_str::<InvokerResourceMessage>(value)
                    .is_ok_and(|message| message.status == status)
            })
            .await;
        (
            serde_json::from_str(&value).expect("resource message"),
            lease,
        )
    }

    async fn order(&self, order: &Value) {
        self.cluster
            .produce_to("invoker0", &order.to_string())
            .await;
    }

    /// The creation ack of `creation_id` (acks of other creations are skipped).
    async fn creation_ack(&self, creation_id: &str) -> (ContainerCreationAckMessage, Value) {
        let deadline = Instant::now() + ACK_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let bytes = next(&self.creation_acks, left)
                .await
                .unwrap_or_else(|| panic!("no creation ack for {creation_id}"));
            let value: Value = serde_json::from_slice(&bytes).expect("ack is JSON");
            if value["creationId"] == creation_id {
                let ack = ContainerCreationAckMessage::parse(&bytes).expect("ack parses");
                return (ack, value);
            }
        }
    }
}

/// Where invoker 0's existing-container keys of `guest/<action>` at `rev` live.
fn existing_prefix(action: &str, rev: &str) -> String {
    format!("{CLUSTER}/namespace/guest/guest/{action}/{rev}/invoker0/container/")
}

/// Where its warmed (paused) container keys live.
fn warmed_prefix(action: &str, rev: &str) -> String {
    format!("{CLUSTER}/warmed/guest/guest/{action}/{rev}/invoker/0/container/")
}

/// A creation order for `guest/<action>` at `rev`, polling the scheduler on `port`.
fn creation(action: &str, rev: &str, creation_id: &str, port: u16, memory_mb: u64) -> Value {
    json!({
        "transid": ["sid_containerCreation", now_millis()],
        "invocationNamespace": "guest",
        "action": {"path": "guest", "name": action, "version": "0.0.1"},
        "revision": rev,
        "whiskActionMetaData": {
            "namespace": "guest", "name": action,
            "exec": {"kind": "wasm:0.1", "binary": true},
            "parameters": [],
            "limits": {"timeout": 60000, "memory": memory_mb, "logs": 10, "concurrency": 1},
            "version": "0.0.1", "publish": false, "annotations": [], "updated": now_millis()
        },
        "rootSchedulerIndex": {"asString": "0"},
        "schedulerHost": "127.0.0.1",
        "rpcPort": port,
        "retryCount": 0,
        "creationId": creation_id,
    })
}

fn creation_id(n: u32) -> String {
    format!("{:032x}", 0xfc_0000u64 + u64::from(n))
}

/// The activation JSON the fake scheduler hands out for `guest/echo` number `n`.
fn activation(n: u32, blocking: bool, rev: &str) -> (String, String) {
    let (id, mut message) = message("echo", n, blocking, json!({"n": n}));
    message["revision"] = json!(rev);
    (id, message.to_string())
}

/// One case at a time: each starts a broker, a CouchDB server, etcd and an invoker on two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The health key of invoker 0 started as Ansible starts it (`--id 0 --uniqueName 0`).
const HEALTH_KEY: &str = "whisk/invokers/0/0";
/// Its lease key.
const LEASE_KEY: &str = "whisk/instance/invoker0/0/lease";

/// Sets one `[pool]` key of an invoker's TOML file (replacing the harness's own).
fn set_pool(options: &mut InvokerOptions, key: &str, value: &str) {
    options.pool.retain(|(k, _)| k != key);
    options.pool.push((key.into(), value.into()));
}

/// The container id of an existing or warmed key: its last segment.
fn container_of(key: &str) -> String {
    key.rsplit('/').next().unwrap_or_default().to_string()
}

/// Waits until `prefix` holds exactly `count` keys; returns them.
async fn wait_count(fpc: &mut Fpc, prefix: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + KEY_TIMEOUT;
    loop {
        let keys = fpc.keys(prefix).await;
        if keys.len() == count {
            return keys;
        }
        assert!(
            Instant::now() < deadline,
            "{prefix} holds {keys:?}, not {count} keys; logs:\n{}",
            fpc.cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `/pool/count` answers `count`.
async fn wait_pool_count(fpc: &Fpc, count: usize) {
    let deadline = Instant::now() + KEY_TIMEOUT;
    loop {
        let (status, body) = fpc.cluster.http("GET", "/pool/count", true).await;
        assert_eq!(status, 200, "{body}");
        if body.trim() == count.to_string() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/pool/count stays {body}, not {count}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `SchedulerStates` value of scheduler 0 at `port`, with the 2.0.0 name of the third port.
fn scheduler_states(port: u16) -> String {
    json!({"sid": {"asString": "0"}, "queueSize": 0,
           "endpoints": {"host": "127.0.0.1", "rpcPort": port, "akkaPort": 1}})
    .to_string()
}

/// A started invoker in FPC mode with its container for `guest/echo`: (container id, first poll seen).
async fn create_echo(fpc: &mut Fpc, n: u32, port: u16) -> String {
    let cid = creation_id(n);
    let order = creation("echo", &fpc.echo_rev.clone(), &cid, port, 256);
    fpc.order(&order).await;
    let (ack, _) = fpc.creation_ack(&cid).await;
    assert!(ack.is_success(), "{ack:?}");
    let prefix = existing_prefix("echo", &fpc.echo_rev.clone());
    let deadline = Instant::now() + KEY_TIMEOUT;
    loop {
        let keys = fpc.keys(&prefix).await;
        if let Some(key) = keys.last() {
            return container_of(key);
        }
        assert!(Instant::now() < deadline, "no existing-container key");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checklist A 1-3, B 7-8, C 9-11 and 13-14, D 19, F 28, G 32, and SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_registration_warm_up_creation_polling_pause_resume_deletion_and_sigterm() {
    let _serial = SERIAL.lock().await;
    let mut fpc = Fpc::start().await;
    let port = fpc.scheduler.port();
    let rev = fpc.echo_rev.clone();
    within(
        REQUEST_TIMEOUT,
        "putting the scheduler key",
        fpc.kv
            .put("whisk/scheduler/0", scheduler_states(port), None),
    )
    .await
    .expect("put scheduler key");
    fpc.cluster.start_invoker(0, fpc.options("1024 MB"));

    // 1. The lease key holds the id of a lease with the configured TTL, kept alive.
    let (lease_value, lease) = fpc.wait_key(LEASE_KEY, |_| true).await;
    assert_eq!(lease_value, lease.to_string());
    let ttl = within(
        REQUEST_TIMEOUT,
        "lease ttl",
        fpc.kv.lease_time_to_live(lease, None),
    )
    .await
    .expect("lease ttl");
    assert_eq!(ttl.granted_ttl(), i64::try_from(LEASE_TTL_S).expect("ttl"));
    // 2-3. The health key, on the same lease: up, all user memory free, arrays present.
    let (health, health_lease) = fpc.health(InvokerStatus::Up).await;
    assert_eq!(health_lease, lease);
    assert_eq!(
        (
            health.free_memory,
            health.busy_memory,
            health.in_progress_memory
        ),
        (1024, 0, 0)
    );
    let raw: Value =
        serde_json::from_str(&fpc.get(HEALTH_KEY).await.expect("health key").0).expect("json");
    assert_eq!(raw["tags"], json!([]));
    assert_eq!(raw["dedicatedNamespaces"], json!([]));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = within(
        REQUEST_TIMEOUT,
        "lease ttl",
        fpc.kv.lease_time_to_live(lease, None),
    )
    .await
    .expect("lease ttl");
    assert!(later.ttl() > 0, "the lease is kept alive");

    // 7. One warm-up call to the scheduler named under whisk/scheduler/ (its 2.0.0 form).
    let warm_up = fpc
        .scheduler
        .wait_for_request(KEY_TIMEOUT, |r| r.invocation_namespace == "whisk.system")
        .await
        .expect("a warm-up call");
    assert_eq!(
        serde_json::from_str::<Value>(&warm_up.fqn).expect("fqn JSON"),
        json!({"path": "whisk.system", "name": "warmUp"})
    );
    assert_eq!(warm_up.rev, "null");
    assert!(!warm_up.alive && !warm_up.warmed && warm_up.container_id.is_empty());

    // 8. The scheduler's warm-up order: no container, no ack (the next ack read is the creation's).
    let mut warm_order = creation("warmUp", "", &creation_id(900), 0, 256);
    warm_order["action"] = json!({"path": "whisk.system", "name": "warmUp"});
    warm_order["invocationNamespace"] = json!("whisk.system");
    warm_order["revision"] = Value::Null;
    warm_order["schedulerHost"] = json!("");
    fpc.order(&warm_order).await;

    // 9. Cold creation: the ack echoes the order; the existing key; the first poll.
    let cid = creation_id(1);
    let order = creation("echo", &rev, &cid, port, 256);
    fpc.order(&order).await;
    let bytes = next(&fpc.creation_acks, ACK_TIMEOUT)
        .await
        .expect("a creation ack");
    let raw: Value = serde_json::from_slice(&bytes).expect("ack JSON");
    assert_eq!(
        raw["creationId"],
        json!(cid),
        "the warm-up order got no ack"
    );
    for field in [
        "transid",
        "invocationNamespace",
        "action",
        "revision",
        "schedulerHost",
        "rpcPort",
        "retryCount",
    ] {
        assert_eq!(raw[field], order[field], "{field} echoed");
    }
    assert_eq!(raw["actionMetaData"], order["whiskActionMetaData"]);
    assert!(raw.get("error").is_none() && raw.get("reason").is_none());
    assert_eq!(raw["rootInvokerIndex"]["instance"], json!(0));
    assert_eq!(raw["rootInvokerIndex"]["uniqueName"], json!("0"));
    let existing = wait_count(&mut fpc, &existing_prefix("echo", &rev), 1).await;
    let container = container_of(&existing[0]);
    let (value, key_lease) = fpc.get(&existing[0]).await.expect("existing key");
    assert_eq!((value.as_str(), key_lease), ("", lease));
    let first = fpc
        .scheduler
        .wait_for_request(KEY_TIMEOUT, |r| r.container_id == container)
        .await
        .expect("a first poll");
    assert!(first.alive && !first.warmed && first.last_duration.is_none());
    assert_eq!(first.invocation_namespace, "guest");
    assert_eq!(
        serde_json::from_str::<Value>(&first.fqn).expect("fqn JSON"),
        order["action"]
    );
    assert_eq!(first.rev, format!("\"{rev}\""));
    let transid: Value = serde_json::from_str(&first.transaction_id).expect("transid JSON");
    assert!(transid[0].is_string() && transid[1].is_u64(), "{transid}");

    // 10. "No activation" after the 1 s park: the next poll follows.
    let polls_of = |fpc: &Fpc| fpc.scheduler.requests_of_container(&container).len();
    let deadline = Instant::now() + Duration::from_secs(10);
    while polls_of(&fpc) < 2 {
        assert!(Instant::now() < deadline, "no second poll");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 11. A blocking activation: one combined ack (log limit 10: result, then completion), the
    // record, and a warmed poll with the run's duration.
    let (id, activation_json) = activation(1, true, &rev);
    fpc.scheduler
        .push_activation("guest", "guest/echo", &rev, activation_json);
    let (ack, _) = fpc.cluster.ack().await;
    assert_eq!(ack.activation_id().as_str(), id);
    let record = fpc
        .cluster
        .record("guest", &id, Duration::from_secs(30))
        .await
        .expect("the record is stored");
    assert_eq!(record["response"]["result"], json!({"n": 1}));
    let warmed = fpc
        .scheduler
        .wait_for_request(KEY_TIMEOUT, |r| {
            r.container_id == container && r.warmed && r.last_duration.is_some()
        })
        .await
        .expect("a warmed poll with lastDuration");
    assert_eq!(
        warmed.last_duration.map(|d| d.value),
        record["duration"].as_i64()
    );

    // 13. Pause after pause-grace: warmed key in, existing key out, polls stop, still counted.
    let warmed_keys = wait_count(&mut fpc, &warmed_prefix("echo", &rev), 1).await;
    assert_eq!(container_of(&warmed_keys[0]), container);
    wait_count(&mut fpc, &existing_prefix("echo", &rev), 0).await;
    wait_pool_count(&fpc, 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let polls_paused = polls_of(&fpc);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        polls_of(&fpc),
        polls_paused,
        "a paused container does not poll"
    );

    // 14. Resume through another scheduler: ack, keys swapped back (same container), warmed polls
    // there.
    let second = FakeScheduler::start().await;
    let cid2 = creation_id(2);
    fpc.order(&creation("echo", &rev, &cid2, second.port(), 256))
        .await;
    let (ack2, _) = fpc.creation_ack(&cid2).await;
    assert!(ack2.is_success());
    wait_count(&mut fpc, &warmed_prefix("echo", &rev), 0).await;
    let back = wait_count(&mut fpc, &existing_prefix("echo", &rev), 1).await;
    assert_eq!(container_of(&back[0]), container);
    let resumed = second
        .wait_for_request(KEY_TIMEOUT, |r| r.container_id == container)
        .await
        .expect("polls at the second scheduler");
    assert!(resumed.warmed && resumed.alive);

    // 28. A deletion order of an older generation leaves it; one of its revision removes it, with
    // one goodbye (19).
    let deletion = |revision: &str| {
        json!({"transid": ["sid_containerDeletion", now_millis()], "invocationNamespace": "guest",
               "action": {"path": "guest", "name": "echo", "version": "0.0.1"},
               "revision": revision, "whiskActionMetaData": order["whiskActionMetaData"]})
    };
    // (The container may pause meanwhile: it idles past pause-grace.)
    fpc.order(&deletion("0-older")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held = fpc.keys(&existing_prefix("echo", &rev)).await.len()
        + fpc.keys(&warmed_prefix("echo", &rev)).await.len();
    assert_eq!(
        held, 1,
        "an older generation's deletion leaves the container"
    );
    wait_pool_count(&fpc, 1).await;
    fpc.order(&deletion(&rev)).await;
    wait_count(&mut fpc, &existing_prefix("echo", &rev), 0).await;
    wait_count(&mut fpc, &warmed_prefix("echo", &rev), 0).await;
    let goodbye = second
        .wait_for_request(KEY_TIMEOUT, |r| r.container_id == container && !r.alive)
        .await
        .expect("a goodbye poll");
    assert!(goodbye.warmed, "{goodbye:?}");
    wait_pool_count(&fpc, 0).await;

    // 32. Nothing on `health` in this mode.
    assert!(
        fpc.cluster.ping(Duration::from_secs(1)).await.is_none(),
        "an FPC invoker sends no pings"
    );

    // SIGTERM: exit 0, and the revoked lease takes every key with it at once.
    let status = fpc.cluster.sigterm();
    assert!(status.success(), "{status:?}\n{}", fpc.cluster.logs());
    fpc.wait_gone(LEASE_KEY).await;
    fpc.wait_gone(HEALTH_KEY).await;
}

/// Checklist E 22-24 and 26-27, F 29-31.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_creation_failures_bad_input_disable_enable_and_auth() {
    let _serial = SERIAL.lock().await;
    let mut fpc = Fpc::start().await;
    let port = fpc.scheduler.port();
    let rev = fpc.echo_rev.clone();
    // An action whose memory is above the node's largest (512 MB by default).
    let big_rev = fpc.put_echo_as("big", "memory", 1024).await;
    // A blackbox action whose image no registry has (this machine pulls nothing).
    let blackbox = json!({
        "_id": "guest/bb", "entityType": "action", "namespace": "guest", "name": "bb",
        "version": "0.0.1", "publish": false, "annotations": [], "parameters": [],
        "exec": {"kind": "blackbox", "image": "wasm-invoker-test/no-such-image:none", "binary": false},
        "limits": {"timeout": 60000, "memory": 256, "logs": 0, "concurrency": 1},
        "updated": now_millis(),
    });
    let blackbox_rev = fpc.cluster.put_action(&blackbox, &[]).await;
    // Docker kinds need a runtimes manifest (and a daemon, which scripts/test starts).
    let mut options = fpc.options("256 MB");
    options
        .env
        .push(("RUNTIMES_MANIFEST".into(), controller::MANIFEST.into()));
    // Containers that never run stay for the whole case (they would go after pause-grace).
    set_pool(&mut options, "pause_grace_ms", "600000");
    fpc.cluster.start_invoker(0, options);
    fpc.health(InvokerStatus::Up).await;

    // 27. Garbage on invoker0: no ack, no crash; the next order is served.
    for garbage in ["not json", "{}", "[1,2]", r#"{"creationId": 7}"#] {
        fpc.cluster.produce_to("invoker0", garbage).await;
    }
    // 23. A missing action, and a missing namespace: DBFetchError, not rescheduled.
    let missing = creation_id(10);
    fpc.order(&creation("nosuch", "1-abc", &missing, port, 256))
        .await;
    let (ack, raw) = fpc.creation_ack(&missing).await;
    assert_eq!(raw["error"], json!("DBFetchError"), "{raw}");
    assert_eq!(
        ack.reason.as_deref(),
        Some("Action could not be found or may have been deleted.")
    );
    let mut elsewhere = creation("echo", &rev, &creation_id(11), port, 256);
    elsewhere["action"]["path"] = json!("nobody");
    fpc.order(&elsewhere).await;
    let (_, raw) = fpc.creation_ack(&creation_id(11)).await;
    assert_eq!(raw["error"], json!("DBFetchError"), "{raw}");
    // 24. Limits outside the node's ranges.
    let limits = creation_id(12);
    fpc.order(&creation("big", &big_rev, &limits, port, 1024))
        .await;
    let (ack, raw) = fpc.creation_ack(&limits).await;
    assert_eq!(raw["error"], json!("InvalidActionLimitError"), "{raw}");
    assert!(ack.reason.is_some_and(|reason| reason.contains("memory")));
    // 25. The blackbox image cannot be pulled: BlackBoxError (not rescheduled), and its memory is
    // free again.
    let unpullable = creation_id(17);
    let mut order = creation("bb", &blackbox_rev, &unpullable, port, 256);
    order["whiskActionMetaData"]["exec"] = json!({"kind": "blackbox", "image": "wasm-invoker-test/no-such-image:none", "binary": false});
    fpc.order(&order).await;
    let (_, raw) = fpc.creation_ack(&unpullable).await;
    assert_eq!(raw["error"], json!("BlackBoxError"), "{raw}");
    wait_pool_count(&fpc, 0).await;
    // 26. retryCount is echoed.
    let retried = creation_id(13);
    let mut order = creation("echo", &rev, &retried, port, 256);
    order["retryCount"] = json!(3);
    fpc.order(&order).await;
    let (ack, raw) = fpc.creation_ack(&retried).await;
    assert!(ack.is_success(), "{raw}");
    assert_eq!(raw["retryCount"], json!(3));
    // 22. The 256 MB are taken: the next container does not fit.
    let full = creation_id(14);
    fpc.order(&creation("echo", &rev, &full, port, 256)).await;
    let (ack, raw) = fpc.creation_ack(&full).await;
    assert_eq!(raw["error"], json!("ResourceNotEnoughError"), "{raw}");
    assert!(
        ack.reason
            .is_some_and(|reason| reason.contains("doesn't have enough resource")),
        "{raw}"
    );
    let (health, _) = fpc.health(InvokerStatus::Up).await;
    assert_eq!((health.free_memory, health.busy_memory), (0, 256));

    // 31. Auth on every admin route but /ping.
    for (method, path) in [
        ("POST", "/enable"),
        ("POST", "/disable"),
        ("GET", "/isEnabled"),
        ("GET", "/pool"),
        ("GET", "/pool/count"),
    ] {
        let (status, _) = fpc.cluster.http(method, path, false).await;
        assert_eq!(status, 401, "{method} {path} without credentials");
    }
    assert_eq!(
        fpc.cluster.http("GET", "/ping", false).await,
        (200, "pong".to_string())
    );
    let (status, body) = fpc.cluster.http("GET", "/pool", true).await;
    assert_eq!(status, 200);
    let pool: Value = serde_json::from_str(&body).expect("/pool is JSON");
    assert_eq!(pool["totalContainers"], json!(1));
    assert_eq!(pool["busyPool"]["total"], json!(1));
    assert_eq!(
        fpc.cluster.http("GET", "/isEnabled", true).await,
        (200, r#"{"enabled":true}"#.to_string())
    );

    // 29. /disable: down, drained to exactly 0, creation orders refused (WhiskError, see
    // docs/fpc.md "Choices").
    let (status, body) = fpc.cluster.http("POST", "/disable", true).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "invoker0/0 is now disabled.")
    );
    fpc.health(InvokerStatus::Down).await;
    wait_pool_count(&fpc, 0).await;
    wait_count(&mut fpc, &existing_prefix("echo", &rev), 0).await;
    assert_eq!(
        fpc.cluster.http("GET", "/isEnabled", true).await,
        (200, r#"{"enabled":false}"#.to_string())
    );
    let refused = creation_id(15);
    fpc.order(&creation("echo", &rev, &refused, port, 256))
        .await;
    let (ack, raw) = fpc.creation_ack(&refused).await;
    assert_eq!(raw["error"], json!("WhiskError"), "{raw}");
    assert!(ack.reason.is_some_and(|r| r.contains("shutting down")));
    // 30. /enable: unhealthy, then up; the warm-up runs again; orders are served again.
    let warm_ups_before = fpc
        .scheduler
        .requests_where(|r| r.invocation_namespace == "whisk.system")
        .len();
    within(
        REQUEST_TIMEOUT,
        "putting the scheduler key",
        fpc.kv
            .put("whisk/scheduler/0", scheduler_states(port), None),
    )
    .await
    .expect("put scheduler key");
    let (status, body) = fpc.cluster.http("POST", "/enable", true).await;
    assert_eq!((status, body.as_str()), (200, "invoker0/0 is now enabled."));
    fpc.health(InvokerStatus::Up).await;
    let deadline = Instant::now() + KEY_TIMEOUT;
    while fpc
        .scheduler
        .requests_where(|r| r.invocation_namespace == "whisk.system")
        .len()
        <= warm_ups_before
    {
        assert!(Instant::now() < deadline, "no warm-up after /enable");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = creation_id(16);
    fpc.order(&creation("echo", &rev, &again, port, 256)).await;
    assert!(fpc.creation_ack(&again).await.0.is_success());
    let status = fpc.cluster.sigterm();
    assert!(status.success(), "{status:?}");
}

/// Checklist A 4-6: an external delete, a revoked lease, kill -9.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_keys_come_back_after_delete_and_revoke_and_go_with_kill() {
    let _serial = SERIAL.lock().await;
    let mut fpc = Fpc::start().await;
    let port = fpc.scheduler.port();
    let rev = fpc.echo_rev.clone();
    fpc.cluster.start_invoker(0, fpc.options("1024 MB"));
    let (_, lease) = fpc.health(InvokerStatus::Up).await;
    let container = create_echo(&mut fpc, 1, port).await;
    let existing = format!("{}{container}", existing_prefix("echo", &rev));

    // 5. The health key, deleted by someone else, comes back on the current lease.
    within(REQUEST_TIMEOUT, "delete", fpc.kv.delete(HEALTH_KEY, None))
        .await
        .expect("delete");
    let (_, again) = fpc.wait_key(HEALTH_KEY, |_| true).await;
    assert_eq!(again, lease);

    // 6. A revoked lease: a new one, and every key back on it.
    within(REQUEST_TIMEOUT, "revoke", fpc.kv.lease_revoke(lease))
        .await
        .expect("revoke");
    let (value, new_lease) = fpc
        .wait_key(LEASE_KEY, |value| value != lease.to_string())
        .await;
    assert_eq!(value, new_lease.to_string());
    assert_ne!(new_lease, lease);
    for key in [HEALTH_KEY, existing.as_str()] {
        let deadline = Instant::now() + KEY_TIMEOUT;
        loop {
            if fpc.get(key).await.is_some_and(|(_, l)| l == new_lease) {
                break;
            }
            assert!(Instant::now() < deadline, "{key} not back on the new lease");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // 4. kill -9: the keys go with the lease, within its TTL.
    fpc.cluster.kill(0);
    let killed = Instant::now();
    for key in [LEASE_KEY, HEALTH_KEY, existing.as_str()] {
        fpc.wait_gone(key).await;
    }
    assert!(
        killed.elapsed() < Duration::from_secs(LEASE_TTL_S + 5),
        "keys outlived the lease: {:?}",
        killed.elapsed()
    );
}

/// Checklist D 16-18 and 20: "no memory queue" with and without a leader, "action mismatch", a
/// scheduler that goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_leader_redirects_mismatch_and_a_vanished_scheduler() {
    let _serial = SERIAL.lock().await;
    let mut fpc = Fpc::start().await;
    let rev = fpc.echo_rev.clone();
    let leader_key = "whisk/queue/guest/guest/echo/leader";
    let leader_value =
        |port: u16| json!({"host": "127.0.0.1", "rpcPort": port, "pekkoPort": 1}).to_string();
    let second = FakeScheduler::start().await;
    let mut options = fpc.options("1024 MB");
    // Paused containers go after 4 s (checklist 15, at the end).
    set_pool(&mut options, "idle_container_ms", "4000");
    fpc.cluster.start_invoker(0, options);
    fpc.health(InvokerStatus::Up).await;

    // 16. "No memory queue" with a leader in etcd: the next polls go to the leader.
    let port = fpc.scheduler.port();
    let container = create_echo(&mut fpc, 1, port).await;
    within(
        REQUEST_TIMEOUT,
        "leader",
        fpc.kv.put(leader_key, leader_value(second.port()), None),
    )
    .await
    .expect("put leader");
    fpc.scheduler.set_queue_mode(
        "guest",
        "guest/echo",
        &rev,
        scheduler::QueueMode::NoMemoryQueue,
    );
    second
        .wait_for_request(KEY_TIMEOUT, |r| r.container_id == container && r.alive)
        .await
        .expect("polls at the leader");
    // An activation queued at the leader runs.
    let (id, activation_json) = activation(1, true, &rev);
    second.push_activation("guest", "guest/echo", &rev, activation_json);
    let (ack, _) = fpc.cluster.ack().await;
    assert_eq!(ack.activation_id().as_str(), id);

    // 17. "No memory queue" there too, and no leader: the container goes, with its key.
    within(
        REQUEST_TIMEOUT,
        "delete leader",
        fpc.kv.delete(leader_key, None),
    )
    .await
    .expect("delete leader");
    second.set_queue_mode(
        "guest",
        "guest/echo",
        &rev,
        scheduler::QueueMode::NoMemoryQueue,
    );
    wait_count(&mut fpc, &existing_prefix("echo", &rev), 0).await;
    wait_pool_count(&fpc, 0).await;

    // 18. "Action mismatch": the container goes.
    fpc.scheduler
        .set_queue_mode("guest", "guest/echo", &rev, scheduler::QueueMode::Normal);
    let container = create_echo(&mut fpc, 2, port).await;
    fpc.scheduler.set_queue_mode(
        "guest",
        "guest/echo",
        &rev,
        scheduler::QueueMode::ActionMismatch,
    );
    wait_count(&mut fpc, &existing_prefix("echo", &rev), 0).await;
    wait_pool_count(&fpc, 0).await;
    assert!(
        fpc.scheduler
            .requests_of_container(&container)
            .iter()
            .any(|r| !r.alive),
        "a goodbye after the mismatch"
    );

    // 20. The scheduler goes away: with a leader key the container polls the leader; without one
    // it goes.
    fpc.scheduler
        .set_queue_mode("guest", "guest/echo", &rev, scheduler::QueueMode::Normal);
    second.set_queue_mode("guest", "guest/echo", &rev, scheduler::QueueMode::Normal);
    let mut third = FakeScheduler::start().await;
    let moved = create_echo(&mut fpc, 3, third.port()).await;
    within(
        REQUEST_TIMEOUT,
        "leader",
        fpc.kv.put(leader_key, leader_value(second.port()), None),
    )
    .await
    .expect("put leader");
    third.stop().await;
    second
        .wait_for_request(KEY_TIMEOUT, |r| r.container_id == moved && r.alive)
        .await
        .expect("polls at the leader after the scheduler went away");

    // 12. An action with concurrency 2: after its first activation, two polls out at once.
    let conc_rev = fpc.put_echo_as("conc", "concurrency", 2).await;
    let cid = creation_id(4);
    let mut order = creation("conc", &conc_rev, &cid, port, 256);
    order["whiskActionMetaData"]["limits"]["concurrency"] = json!(2);
    fpc.order(&order).await;
    let (ack, raw) = fpc.creation_ack(&cid).await;
    assert!(ack.is_success(), "{raw}");
    fpc.scheduler
        .wait_for_request(KEY_TIMEOUT, |r| r.fqn.contains("\"conc\""))
        .await
        .expect("a first poll");
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_millis(1500) {
        assert!(
            fpc.scheduler.parked() <= 1,
            "one poll before the first activation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (id, mut first) = message("conc", 500, true, json!({}));
    first["revision"] = json!(conc_rev);
    fpc.scheduler
        .push_activation("guest", "guest/conc", &conc_rev, first.to_string());
    // (Acks of the earlier activation, a result then a completion, may come first.)
    while fpc.cluster.ack().await.0.activation_id().as_str() != id {}
    let deadline = Instant::now() + KEY_TIMEOUT;
    while fpc.scheduler.parked() < 2 {
        assert!(Instant::now() < deadline, "never two polls at once");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 15. Idle, it pauses after pause-grace, and goes after idle-container with its warmed key.
    let warmed = wait_count(&mut fpc, &warmed_prefix("conc", &conc_rev), 1).await;
    fpc.wait_gone(&warmed[0]).await;
    wait_count(&mut fpc, &existing_prefix("conc", &conc_rev), 0).await;
    let status = fpc.cluster.sigterm();
    assert!(status.success(), "{status:?}");
}

/// The end-to-end case of the issue: 1,000 activations of a wasm action through four
/// scheduler-ordered containers, one ack and one record each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_thousand_activations_one_ack_and_one_record_each() {
    const ACTIVATIONS: u32 = 1_000;
    const CONTAINERS: u32 = 4;
    let _serial = SERIAL.lock().await;
    let mut fpc = Fpc::start().await;
    let rev = fpc.cluster.entity("guest/echo0").await["_rev"]
        .as_str()
        .expect("echo0 has a revision")
        .to_string();
    let port = fpc.scheduler.port();
    // A container that gets no work within pause grace goes (it was never warmed). With the suite's
    // 2 s and four creations one after the other, a loaded machine can remove the first before the
    // fourth exists; here they must all wait for the activations.
    let mut options = fpc.options("1024 MB");
    options.pool.retain(|(key, _)| key != "pause_grace_ms");
    options
        .pool
        .push(("pause_grace_ms".into(), IDLE_UNTIL_LOADED_MS.to_string()));
    fpc.cluster.start_invoker(0, options);
    fpc.health(InvokerStatus::Up).await;
    for n in 0..CONTAINERS {
        let cid = creation_id(100 + n);
        fpc.order(&creation("echo0", &rev, &cid, port, 128)).await;
        assert!(fpc.creation_ack(&cid).await.0.is_success());
    }
    wait_count(
        &mut fpc,
        &existing_prefix("echo0", &rev),
        usize::try_from(CONTAINERS).expect("count"),
    )
    .await;
    // Every container polls before the first push: a poller that started late on a busy machine
    // would otherwise find the queue drained by the other three (echo runs in microseconds) and
    // fail "every container ran activations" below although nothing is wrong.
    let deadline = Instant::now() + KEY_TIMEOUT;
    while fpc.scheduler.parked() < usize::try_from(CONTAINERS).expect("count") {
        assert!(
            Instant::now() < deadline,
            "{} of {CONTAINERS} containers poll",
            fpc.scheduler.parked()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut expected = std::collections::HashSet::new();
    for n in 0..ACTIVATIONS {
        // Blocking with log limit 0: one combined ack each.
        let (id, mut message) = message("echo0", n, true, json!({"n": n}));
        message["revision"] = json!(rev);
        fpc.scheduler
            .push_activation("guest", "guest/echo0", &rev, message.to_string());
        expected.insert(id);
    }
    let mut acked = std::collections::HashSet::new();
    let started = Instant::now();
    while acked.len() < expected.len() {
        let (ack, _) = fpc.cluster.ack().await;
        let id = ack.activation_id().as_str().to_string();
        assert!(expected.contains(&id), "an ack for {id}, never queued");
        assert!(acked.insert(id.clone()), "a second ack for {id}");
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "1,000 activations took over 5 minutes"
        );
    }
    assert!(
        fpc.cluster
            .ack_within(Duration::from_secs(3))
            .await
            .is_none(),
        "no ack beyond one per activation"
    );
    let containers: HashSet<String> = fpc
        .scheduler
        .requests_where(|r| r.alive && r.last_duration.is_some())
        .into_iter()
        .map(|r| r.container_id)
        .collect();
    assert_eq!(
        containers.len(),
        usize::try_from(CONTAINERS).expect("count"),
        "every container ran activations"
    );
    for id in &expected {
        let record = fpc
            .cluster
            .record("guest", id, Duration::from_secs(60))
            .await
            .unwrap_or_else(|| panic!("no record for {id}"));
        assert_eq!(record["response"]["statusCode"], json!(0), "{record}");
    }
    let status = fpc.cluster.sigterm();
    assert!(status.success(), "{status:?}");
}
