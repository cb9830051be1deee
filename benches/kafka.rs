//! End-to-end throughput and latency of the Kafka invoker: a message produced to `invoker{N}` until
//! its slot-freeing ack is consumed from `completed0`, for the wasm `echo` action (log limit 0,
//! non-blocking: one Completion per activation), through a real broker (Tansu) with records stored
//! in a real CouchDB API (pouchdb-server).
//!
//! Cases, each with one and with two invoker processes (ids 0 and 1, each on its own topic, one
//! broker, messages alternating between the topics):
//! - `sequential`: one message at a time (pure latency);
//! - `windowed`: up to `WINDOW` messages outstanding (throughput, latency under load).
//!
//! Bounded: at most `SEQUENTIAL` / `WINDOWED` messages and `PHASE_LIMIT` per phase.
//!
//! After the phases `completed0` is read again from offset 0 and each case prints how many acks its
//! live read missed, how many offsets that read skipped and how many of the missed acks are in the
//! topic: with two invokers Tansu can hide a record from a consumer reading while two producers
//! write (README, "Known limits"; `executor/tests/tansu_quirks.rs`), which is not a lost ack.
//! Run: `cargo bench --bench kafka` (needs `tansu` and `pouchdb-server`, as the tests do). The
//! latencies also go to `target/bench-results/kafka.json` (`benches/support/results.rs`).

#[path = "support/results.rs"]
mod results;

#[path = "../executor/tests/support/pouchdb.rs"]
#[allow(
    dead_code,
    reason = "the shared support module has more than this bench uses"
)]
mod pouchdb;
#[path = "../executor/tests/support/tansu.rs"]
#[allow(
    dead_code,
    reason = "the shared support module has more than this bench uses"
)]
mod tansu;

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use executor::message::AcknowledgementMessage;
use executor::store::couchdb::CouchClient;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::json;

const SEQUENTIAL: usize = 200;
const WINDOWED: usize = 3000;
const WINDOW: usize = 32;
const WARMUP: usize = 50;
const PHASE_LIMIT: Duration = Duration::from_secs(90);
const ATTACHMENT: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
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

struct Invoker(Child);

impl Drop for Invoker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..200 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_invoker(
    id: u32,
    kafka: &str,
    couch: &executor::store::couchdb::CouchDbConfig,
    dir: &std::path::Path,
) -> Invoker {
    let config = dir.join(format!("invoker{id}.toml"));
    std::fs::write(
        &config,
        format!(
            "[kafka]\nhosts = \"{kafka}\"\n\n[http]\nport = {}\n\n[pool]\nuser_memory = \"2048 MB\"\n\n[couchdb]\nprotocol = \"http\"\nhost = \"127.0.0.1\"\nport = {}\nusername = \"{}\"\npassword = \"{}\"\nentity_db = \"{}\"\nactivation_db = \"{}\"\nauth_db = \"{}\"\n",
            free_port(),
            couch.port,
            couch.username,
            couch.password,
            couch.entity_db,
            couch.activation_db,
            couch.auth_db
        ),
    )
    .expect("config");
    let log = std::fs::File::create(dir.join(format!("invoker{id}.log"))).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_wasm-invoker"))
        .args([
            "invoker",
            "--id",
            &id.to_string(),
            "--unique-name",
            &id.to_string(),
            "--config",
        ])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .env(
            "CONFIG_whisk_kafka_consumer_fetchMaxWaitMs",
            fetch_wait_ms().to_string(),
        )
        .env_remove("KAFKA_HOSTS")
        .env_remove("PORT")
        .env_remove("RUNTIMES_MANIFEST")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start the invoker");
    Invoker(child)
}

/// The invokers' `fetch.wait.max.ms`: `BENCH_FETCH_WAIT_MS`, default 5 (Tansu holds every fetch for
/// the whole wait; OpenWhisk's 500 would be the latency floor of every activation).
fn fetch_wait_ms() -> u32 {
    std::env::var("BENCH_FETCH_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

fn message(topic_index: usize, n: usize) -> (String, String) {
    let id = format!(
        "{:032x}",
        ((topic_index as u128) << 64) | n as u128 | (0xbe << 100)
    );
    let message = json!({
        "transid": [format!("bench{n:027}"), now_millis()],
        "action": {"path": "guest", "name": "echo0", "version": "0.0.1"},
        "revision": null,
        "user": {"subject": "guest", "namespace": {"name": "guest", "uuid": "23bc46b1-71f6-4ed5-8c54-816aa4f8c502"},
                 "authkey": {"api_key": "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:key"}, "rights": [], "limits": {}},
        "activationId": id,
        "rootControllerIndex": {"asString": "0", "instanceType": "controller"},
        "blocking": false,
        "content": {"n": n},
        "initArgs": [],
        "lockedArgs": {}
    });
    (id, message.to_string())
}

struct Harness {
    producer: FutureProducer,
    completed: StreamConsumer,
    topics: Vec<String>,
    sent: usize,
    /// Activation ids whose ack the live read did not get before its phase ended.
    unanswered: HashSet<String>,
    /// The next offset the live read of `completed0` expects, and how many offsets it skipped.
    next_offset: i64,
    skipped_offsets: i64,
}

impl Harness {
    async fn send(&mut self, outstanding: &mut HashMap<String, Instant>) {
        let index = self.sent % self.topics.len();
        let (id, payload) = message(index, self.sent);
        self.sent += 1;
        outstanding.insert(id, Instant::now());
        self.producer
            .send(
                FutureRecord::<(), str>::to(&self.topics[index]).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| error)
            .expect("produce");
    }

    /// The latency of the next slot-freeing ack of an outstanding message.
    async fn receive(&mut self, outstanding: &mut HashMap<String, Instant>) -> Option<Duration> {
        loop {
            let message =
                match tokio::time::timeout(Duration::from_secs(30), self.completed.recv()).await {
                    Ok(Ok(message)) => message,
                    _ => return None,
                };
            if message.offset() > self.next_offset {
                self.skipped_offsets += message.offset() - self.next_offset;
            }
            self.next_offset = self.next_offset.max(message.offset() + 1);
            let Ok(ack) = AcknowledgementMessage::parse(message.payload().unwrap_or_default())
            else {
                continue;
            };
            if !ack.frees_slot() {
                continue;
            }
            if let Some(sent) = outstanding.remove(&ack.activation_id().to_string()) {
                return Some(sent.elapsed());
            }
        }
    }

    /// Runs `count` messages with at most `window` outstanding; returns latencies and wall time.
    async fn phase(&mut self, count: usize, window: usize) -> (Vec<Duration>, Duration) {
        let mut outstanding = HashMap::new();
        let mut latencies = Vec::with_capacity(count);
        let start = Instant::now();
        let mut produced = 0;
        while latencies.len() < count && start.elapsed() < PHASE_LIMIT {
            while produced < count && outstanding.len() < window {
                self.send(&mut outstanding).await;
                produced += 1;
            }
            match self.receive(&mut outstanding).await {
                Some(latency) => latencies.push(latency),
                None => break,
            }
        }
        self.unanswered.extend(outstanding.into_keys());
        (latencies, start.elapsed())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// The samples of one phase (`outstanding` messages at a time), and its rate and percentiles as
/// points against the load, for the summary.
fn record(
    series: &mut Vec<results::Series>,
    invokers: usize,
    outstanding: usize,
    latencies: &[Duration],
    wall: Duration,
) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let name = format!("kafka echo, {invokers} invoker(s)");
    series.push(results::Series::samples(
        "kafka_latency",
        &format!("{name}, {outstanding} outstanding"),
        "ms",
        sorted.iter().map(|d| d.as_secs_f64() * 1000.0).collect(),
    ));
    let rate = sorted.len() as f64 / wall.as_secs_f64();
    series.push(results::Series::points(
        "throughput",
        &name,
        "activations/s",
        "concurrent activations",
        vec![(outstanding as f64, rate)],
    ));
    for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
        series.push(results::Series::points(
            "e2e_latency",
            &format!("{name}, {label}"),
            "ms",
            "load (activations/s)",
            vec![(rate, percentile(&sorted, p))],
        ));
    }
}

fn row(case: &str, invokers: usize, mut latencies: Vec<Duration>, wall: Duration) -> String {
    latencies.sort();
    format!(
        "| {case} | {invokers} | {} | {:.0} | {:.1} | {:.1} | {:.1} |",
        latencies.len(),
        latencies.len() as f64 / wall.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99)
    )
}

/// The activation ids of every slot-freeing ack in `completed0`, read again from offset 0 by a
/// consumer of its own, up to the end (no record for 5 s); and how many records it read.
async fn reread_completed(bootstrap: &str) -> (HashSet<String>, usize) {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "completed0-reread")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()
        .expect("consumer");
    let mut partitions = TopicPartitionList::new();
    partitions
        .add_partition_offset("completed0", 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&partitions).expect("assign");
    let mut ids = HashSet::new();
    let mut records = 0;
    while let Ok(Ok(message)) = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await
    {
        records += 1;
        if let Ok(ack) = AcknowledgementMessage::parse(message.payload().unwrap_or_default())
            && ack.frees_slot()
        {
            ids.insert(ack.activation_id().to_string());
        }
    }
    (ids, records)
}

async fn setup_store(couch: &executor::store::couchdb::CouchDbConfig) {
    let client = CouchClient::new(couch).expect("couch client");
    for db in [&couch.entity_db, &couch.activation_db, &couch.auth_db] {
        client.ensure_db(db).await.expect("db");
    }
    let module = std::fs::read(ow_action::artifacts::wasm_module("echo").expect("echo builds"))
        .expect("module");
    let document = json!({
        "_id": "guest/echo0", "entityType": "action", "namespace": "guest", "name": "echo0",
        "exec": {"kind": "wasm:wasip1", "binary": true,
                 "code": {"attachmentName": format!("couch:{ATTACHMENT}"), "attachmentType": "application/octet-stream"}},
        "parameters": [], "limits": {"timeout": 5000, "memory": 128, "logs": 0, "concurrency": 1},
        "version": "0.0.1", "publish": false, "annotations": [], "updated": now_millis()
    });
    let rev = client
        .put_json(&[&couch.entity_db, "guest/echo0"], &document)
        .await
        .expect("doc");
    let response = client
        .request(
            hyper::Method::PUT,
            &[&couch.entity_db, "guest/echo0", ATTACHMENT],
            &format!("rev={rev}"),
            Some("application/octet-stream"),
            Some(Bytes::from(module)),
        )
        .await
        .expect("attachment");
    assert!(response.status.is_success());
}

async fn case(invokers: usize) -> (Vec<String>, String, Vec<results::Series>) {
    let tansu = tansu::Tansu::start();
    tansu.create_topics(&["completed0", "health"]).await;
    let pouch = pouchdb::PouchDb::start();
    let couch = pouch.config("bench");
    setup_store(&couch).await;
    let dir = tempfile::tempdir().expect("tmp");
    let running: Vec<Invoker> = (0..invokers)
        .map(|id| start_invoker(id as u32, &tansu.bootstrap(), &couch, dir.path()))
        .collect();
    let completed: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", tansu.bootstrap())
        .set("group.id", "completed0")
        .set("auto.offset.reset", "earliest")
        // Tansu answers a fetch only when its wait is over, not when data arrives: a short wait
        // keeps the harness's own consumer out of the measured latency.
        .set("fetch.wait.max.ms", "5")
        .create()
        .expect("consumer");
    completed.subscribe(&["completed0"]).expect("subscribe");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", tansu.bootstrap())
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    let mut harness = Harness {
        producer,
        completed,
        topics: (0..invokers).map(|id| format!("invoker{id}")).collect(),
        sent: 0,
        unanswered: HashSet::new(),
        next_offset: 0,
        skipped_offsets: 0,
    };
    // Warm up: every invoker has joined its group and has a warm container.
    let (warm, _) = harness.phase(WARMUP, invokers).await;
    assert_eq!(
        warm.len(),
        WARMUP,
        "warm-up not answered; see the invoker logs in {}",
        dir.path().display()
    );
    let (sequential, wall) = harness.phase(SEQUENTIAL, 1).await;
    let mut series = Vec::new();
    record(&mut series, invokers, 1, &sequential, wall);
    let mut rows = vec![row("sequential", invokers, sequential, wall)];
    let (windowed, wall) = harness.phase(WINDOWED, WINDOW).await;
    if windowed.len() < WINDOWED {
        eprintln!(
            "only {} of {WINDOWED} answered; warnings of the invokers:",
            windowed.len()
        );
        for id in 0..invokers {
            let log = std::fs::read_to_string(dir.path().join(format!("invoker{id}.log")))
                .unwrap_or_default();
            for line in log
                .lines()
                .filter(|line| line.contains("WARN") || line.contains("ERROR"))
                .take(40)
            {
                eprintln!("invoker{id}: {line}");
            }
        }
    }
    record(&mut series, invokers, WINDOW, &windowed, wall);
    rows.push(row(
        &format!("windowed ({WINDOW} outstanding)"),
        invokers,
        windowed,
        wall,
    ));
    // Tell acks the broker hid from the live read apart from acks never sent.
    let (reread, records) = reread_completed(&tansu.bootstrap()).await;
    let in_topic = harness
        .unanswered
        .iter()
        .filter(|id| reread.contains(*id))
        .count();
    let note = format!(
        "{invokers} invoker(s): the live read of completed0 missed {} acks and skipped {} offsets; \
         read again from offset 0 ({records} records), {in_topic} of the missed acks are there, {} \
         are not",
        harness.unanswered.len(),
        harness.skipped_offsets,
        harness.unanswered.len() - in_topic
    );
    drop(running);
    (rows, note, series)
}

fn main() {
    let mut recorder = results::Recorder::start("kafka");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let cases: Vec<usize> = match std::env::var("BENCH_INVOKERS") {
        Ok(value) => value
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
        Err(_) => vec![1, 2],
    };
    for invokers in cases {
        let (case_rows, note, series) = runtime.block_on(case(invokers));
        rows.extend(case_rows);
        for series in series {
            recorder.push(series);
        }
        recorder.note(note.clone());
        notes.push(note);
    }
    println!(
        "invokers' fetch.wait.max.ms = {}, window = {WINDOW}, user memory 2048 MB (maxPeek 16)\n",
        fetch_wait_ms()
    );
    println!("| case | invokers | activations | activations/s | p50 ms | p90 ms | p99 ms |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!();
    for note in notes {
        println!("{note}");
    }
    recorder.finish();
}
