//! End-to-end throughput and latency of the Kafka invoker: a message produced to `invoker{N}` until
//! its slot-freeing ack is consumed from `completed0`, for the wasm `echo` action (log limit 0,
//! non-blocking: one Completion per activation), through a real broker (Tansu) with records stored
//! in a real CouchDB API (pouchdb-server).
//!
//! Cases, each with one and with two invoker processes (ids 0 and 1, each on its own topic, one
//! broker, messages alternating between the topics):
//! - `sequential`: one message at a time (pure latency);
//! - `windowed`: up to 32, then 256 messages outstanding (`WINDOWS`; throughput, latency and the
//!   invoker's CPU per activation under a light and a heavy load).
//!
//! Bounded: at most `SEQUENTIAL` / `WINDOWED` messages and `PHASE_LIMIT` per phase.
//!
//! After the phases `completed0` is read again from offset 0 and each case prints how many acks its
//! live read missed, how many offsets that read skipped and how many of the missed acks are in the
//! topic: with two invokers Tansu can hide a record from a consumer reading while two producers
//! write (README, "Known limits"; `executor/tests/tansu_quirks.rs`), which is not a lost ack.
//! The invoker's own cost, per case: its CPU time (utime + stime of `/proc/<pid>/stat`, summed over
//! the invoker processes) over each phase divided by the activations, beside its CPU while idle
//! (librdkafka keeps fetching with a short `fetch.wait.max.ms` even with nothing to do), and which of
//! its threads (grouped by name: librdkafka's `rdk:*`, tokio's workers, blocking threads) spent the
//! windowed phase's CPU. And the latency it adds over the broker: before the phases, 200 bare
//! produce → consume round trips on a topic of the same broker, with the harness's client settings;
//! the sequential e2e p50 minus two such round trips (message in, ack out) is the invoker's part.
//!
//! Run: `cargo bench --bench kafka`. Options: `BENCH_INVOKERS=1,2`; `BENCH_FETCH_WAIT_MS=5`;
//! `BENCH_REVISION=1` to name the action's revision in the messages; `BENCH_INVOKER_BIN=path` to
//! run another build of the invoker; `BENCH_WINDOW=32,128` for other windows;
//! `BENCH_WINDOWED=n` for another count of messages per windowed phase; `BENCH_RELAY=1` to run the
//! invoker's Kafka plumbing alone in place of each invoker (`benches/support/relay.rs`: the floor
//! of the Kafka path). Needs `tansu` and `pouchdb-server`, as the tests do. The latencies, the
//! round trips and the invoker CPU per activation also go to `target/bench-results/kafka.json`
//! (`benches/support/results.rs`).

#[path = "support/relay.rs"]
mod relay;
#[path = "support/results.rs"]
mod results;

#[allow(
    clippy::duplicate_mod,
    reason = "the one picker, also included by the support modules this bench includes"
)]
#[path = "../executor/tests/support/ports.rs"]
mod ports;
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
/// Messages of the windowed phase by default (`BENCH_WINDOWED` sets another count, up to
/// [`MAX_WINDOWED`]): about 3 s at this machine's rate, enough for the 10 ms ticks of `/proc`.
const WINDOWED: usize = 3000;
/// Most messages `BENCH_WINDOWED` may ask for: the phase stays within [`PHASE_LIMIT`] at the rates
/// measured here (900-1,200/s with the action cached).
const MAX_WINDOWED: usize = 60_000;
/// Messages outstanding in the windowed phases by default, one phase each (`BENCH_WINDOW` sets
/// others, comma-separated, each up to [`MAX_WINDOW`]): a light and a heavy load, because the
/// invoker's CPU per activation falls as its poll batches grow (per-batch costs are shared).
const WINDOWS: [usize; 2] = [32, 256];
/// Most messages `BENCH_WINDOW` may keep outstanding.
const MAX_WINDOW: usize = 1024;
/// Each windowed phase runs at least this many messages per outstanding one (10,240 for a window
/// of 256), so a phase at a high rate still lasts seconds against `/proc`'s 10 ms ticks.
const MESSAGES_PER_WINDOW_SLOT: usize = 40;
/// The echo action's memory limit: each invoker's user memory is this times half the largest
/// window (16,384 MB, maxPeek 128, for the default windows).
const ACTION_MB: usize = 128;
const WARMUP: usize = 50;
const PHASE_LIMIT: Duration = Duration::from_secs(90);
const ROUND_TRIPS: usize = 200;
const IDLE: Duration = Duration::from_secs(3);
const ATTACHMENT: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

/// A port for an invoker's admin server, from the test support's picker (outside the ephemeral
/// range, so no client socket takes it before the invoker binds it).
fn free_port() -> u16 {
    ports::free_port(std::net::Ipv4Addr::LOCALHOST)
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

/// Clock ticks per second of `/proc/<pid>/stat`: `getconf CLK_TCK`, else the usual 100.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|out| out.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime in clock ticks from a `/proc/.../stat` file (fields 14 and 15, counted after the
/// parenthesised name, which may hold spaces); 0 when the process or thread is gone.
fn stat_ticks(path: &std::path::Path) -> u64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    let Some(end) = stat.rfind(')') else {
        return 0;
    };
    let fields: Vec<&str> = stat[end + 1..].split_whitespace().collect();
    // After the name, field 3 (state) is at index 0: field n is at index n - 3.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

/// CPU ticks of the processes `pids`, whole and per thread group (thread name without its trailing
/// digits and dashes: `rdk:broker`, `tokio-runtime-w`, ...). Threads that ended between two
/// snapshots drop out of the groups, not out of the whole.
#[derive(Default)]
struct CpuSnapshot {
    total: u64,
    threads: HashMap<String, u64>,
    /// Context switches (voluntary and not) of the threads alive now: each is a thread going to
    /// sleep or being woken, which the profile shows as the largest cost.
    switches: u64,
}

/// The voluntary plus involuntary context switches of one thread (`/proc/.../status`).
fn context_switches(status: &std::path::Path) -> u64 {
    std::fs::read_to_string(status)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("ctxt_switches:"))
        .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

impl CpuSnapshot {
    fn take(pids: &[u32]) -> Self {
        let mut snapshot = Self::default();
        for pid in pids {
            snapshot.total += stat_ticks(std::path::Path::new(&format!("/proc/{pid}/stat")));
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                continue;
            };
            for task in tasks.flatten() {
                let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                let group = name
                    .trim()
                    .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
                    .to_string();
                *snapshot.threads.entry(group).or_default() +=
                    stat_ticks(&task.path().join("stat"));
                snapshot.switches += context_switches(&task.path().join("status"));
            }
        }
        snapshot
    }

    /// Milliseconds of CPU since `before`, whole and per thread group (largest first), and the
    /// context switches since.
    fn since(&self, before: &Self, ticks: f64) -> (f64, Vec<(String, f64)>, u64) {
        let ms = |t: u64| t as f64 * 1000.0 / ticks;
        let mut groups: Vec<(String, f64)> = self
            .threads
            .iter()
            .map(|(name, after)| {
                let earlier = before.threads.get(name).copied().unwrap_or(0);
                (name.clone(), ms(after.saturating_sub(earlier)))
            })
            .filter(|(_, ms)| *ms > 0.0)
            .collect();
        groups.sort_by(|a, b| b.1.total_cmp(&a.1));
        (
            ms(self.total.saturating_sub(before.total)),
            groups,
            self.switches.saturating_sub(before.switches),
        )
    }
}

/// The invokers' CPU over one phase.
struct PhaseCpu {
    phase: String,
    activations: usize,
    wall: Duration,
    cpu_ms: f64,
    threads: Vec<(String, f64)>,
    switches: u64,
}

impl PhaseCpu {
    fn switches_per_activation(&self) -> f64 {
        self.switches as f64 / self.activations as f64
    }

    fn per_activation_us(&self) -> f64 {
        self.cpu_ms * 1000.0 / self.activations as f64
    }

    /// Per activation, less what the invokers would have spent idle over the same wall time.
    fn net_of_idle_us(&self, idle_ms_per_s: f64) -> f64 {
        (self.cpu_ms - idle_ms_per_s * self.wall.as_secs_f64()).max(0.0) * 1000.0
            / self.activations as f64
    }
}

/// Bare produce → consume round trips on `topic` of the broker at `bootstrap`, one at a time, with
/// the harness's client settings (producer `linger.ms` 0, consumer `fetch.wait.max.ms` 5): what the
/// broker alone costs a message, twice of which (message in, ack out) are in every e2e latency.
async fn round_trips(bootstrap: &str, topic: &str, count: usize) -> Vec<Duration> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "roundtrip")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()
        .expect("consumer");
    let mut partitions = TopicPartitionList::new();
    partitions
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&partitions).expect("assign");
    let mut latencies = Vec::with_capacity(count);
    // The first 20 warm the connections and the fetch session up and are not kept.
    for n in 0..count + 20 {
        let payload = format!("roundtrip-{n}");
        let start = Instant::now();
        producer
            .send(
                FutureRecord::<(), str>::to(topic).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| error)
            .expect("produce");
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
                .await
                .expect("round trip answered in 10 s")
                .expect("consume");
            if message.payload() == Some(payload.as_bytes()) {
                break;
            }
        }
        if n >= 20 {
            latencies.push(start.elapsed());
        }
    }
    latencies
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
            "[kafka]\nhosts = \"{kafka}\"\n\n[http]\nport = {}\n\n[pool]\nuser_memory = \"{} MB\"\n\n[couchdb]\nprotocol = \"http\"\nhost = \"127.0.0.1\"\nport = {}\nusername = \"{}\"\npassword = \"{}\"\nentity_db = \"{}\"\nactivation_db = \"{}\"\nauth_db = \"{}\"\n",
            free_port(),
            user_memory_mb(),
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
    if relay_mode() {
        let child = Command::new(std::env::current_exe().expect("the bench binary"))
            .env(relay::ROLE, id.to_string())
            .env(relay::BOOTSTRAP, kafka)
            .env(relay::FETCH_WAIT, fetch_wait_ms().to_string())
            .env(relay::MAX_PEEK, (user_memory_mb() / ACTION_MB).to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the relay");
        return Invoker(child);
    }
    let child = Command::new(invoker_binary())
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

/// The invoker binary: `BENCH_INVOKER_BIN` when set (a saved build, to compare two builds side by
/// side in one session), else the one this bench was built with.
fn invoker_binary() -> std::path::PathBuf {
    std::env::var_os("BENCH_INVOKER_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_wasm-invoker").into())
}

/// The invokers' `fetch.wait.max.ms`: `BENCH_FETCH_WAIT_MS`, default 5 (Tansu holds every fetch for
/// the whole wait; OpenWhisk's 500 would be the latency floor of every activation).
fn fetch_wait_ms() -> u32 {
    std::env::var("BENCH_FETCH_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// Messages of a windowed phase: `BENCH_WINDOWED` (at most [`MAX_WINDOWED`]), default
/// [`WINDOWED`] or [`MESSAGES_PER_WINDOW_SLOT`] per outstanding message, whichever is more. A
/// longer phase gives a profiler (`perf record -p`) more of it than of the rest.
fn windowed_count(window: usize) -> usize {
    std::env::var("BENCH_WINDOWED")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|count| *count > 0)
        .map_or(WINDOWED.max(MESSAGES_PER_WINDOW_SLOT * window), |count| {
            count.min(MAX_WINDOWED)
        })
}

/// Messages outstanding in each windowed phase: `BENCH_WINDOW` (comma-separated, each 2 to
/// [`MAX_WINDOW`]), default [`WINDOWS`].
fn windows() -> Vec<usize> {
    let chosen: Vec<usize> = std::env::var("BENCH_WINDOW")
        .unwrap_or_default()
        .split(',')
        .filter_map(|value| value.trim().parse::<usize>().ok())
        .map(|window| window.clamp(2, MAX_WINDOW))
        .collect();
    if chosen.is_empty() {
        WINDOWS.to_vec()
    } else {
        chosen
    }
}

/// Each invoker's user memory, MB: [`ACTION_MB`] times half the largest window.
fn user_memory_mb() -> usize {
    ACTION_MB * windows().into_iter().max().unwrap_or(WINDOWS[0]) / 2
}

/// Whether the invokers are replaced by relays of their Kafka plumbing alone (`BENCH_RELAY=1`).
fn relay_mode() -> bool {
    std::env::var("BENCH_RELAY").is_ok_and(|v| v == "1")
}

/// Whether messages name the action's revision (`BENCH_REVISION=1`), as a controller does, so the
/// invoker serves the action from its cache; by default `revision` is null and every activation
/// reads the document and its 76 KB attachment from CouchDB again.
fn with_revision() -> bool {
    std::env::var("BENCH_REVISION").is_ok_and(|v| v == "1")
}

fn message(topic_index: usize, n: usize, revision: Option<&str>) -> (String, String) {
    let id = format!(
        "{:032x}",
        ((topic_index as u128) << 64) | n as u128 | (0xbe << 100)
    );
    let message = json!({
        "transid": [format!("bench{n:027}"), now_millis()],
        "action": {"path": "guest", "name": "echo0", "version": "0.0.1"},
        "revision": revision,
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
    /// The action's revision the messages name, if any ([`with_revision`]).
    revision: Option<String>,
    sent: usize,
    /// Deliveries of produced messages not yet confirmed: the harness does not wait for each
    /// produce before the next, so that its own round trips do not bound a large window.
    deliveries: Vec<rdkafka::producer::DeliveryFuture>,
    /// Activation ids whose ack the live read did not get before its phase ended.
    unanswered: HashSet<String>,
    /// The next offset the live read of `completed0` expects, and how many offsets it skipped.
    next_offset: i64,
    skipped_offsets: i64,
}

impl Harness {
    async fn send(&mut self, outstanding: &mut HashMap<String, Instant>) {
        let index = self.sent % self.topics.len();
        let (id, payload) = message(index, self.sent, self.revision.as_deref());
        self.sent += 1;
        outstanding.insert(id, Instant::now());
        let delivery = self
            .producer
            .send_result(FutureRecord::<(), str>::to(&self.topics[index]).payload(&payload))
            .map_err(|(error, _)| error)
            .expect("produce");
        self.deliveries.push(delivery);
    }

    /// Waits for every produced message's delivery: a message the broker refused fails the bench.
    async fn confirm_deliveries(&mut self) {
        for delivery in self.deliveries.drain(..) {
            delivery
                .await
                .expect("delivery report")
                .map_err(|(error, _)| error)
                .expect("produce");
        }
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
        let wall = start.elapsed();
        self.confirm_deliveries().await;
        self.unanswered.extend(outstanding.into_keys());
        (latencies, wall)
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

/// Creates the databases and the `echo0` action with its module as attachment; returns the
/// action's revision.
async fn setup_store(couch: &executor::store::couchdb::CouchDbConfig) -> String {
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
    let body: serde_json::Value =
        serde_json::from_slice(&response.body).expect("attachment answer");
    body["rev"]
        .as_str()
        .expect("attachment revision")
        .to_string()
}

/// What one case measured.
struct CaseResult {
    rows: Vec<String>,
    notes: Vec<String>,
    series: Vec<results::Series>,
    /// The invoker's cost: idle CPU, CPU per phase, bare round trip and sequential e2e p50.
    cost: Vec<String>,
}

async fn case(invokers: usize) -> CaseResult {
    let ticks = clock_ticks();
    let tansu = tansu::Tansu::start();
    tansu
        .create_topics(&["completed0", "health", "roundtrip"])
        .await;
    let pouch = pouchdb::PouchDb::start();
    let couch = pouch.config("bench");
    let revision = setup_store(&couch).await;
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
        revision: with_revision().then_some(revision),
        sent: 0,
        deliveries: Vec::new(),
        unanswered: HashSet::new(),
        next_offset: 0,
        skipped_offsets: 0,
    };
    let pids: Vec<u32> = running.iter().map(|invoker| invoker.0.id()).collect();
    // Warm up: every invoker has joined its group and has a warm container.
    let (warm, _) = harness.phase(WARMUP, invokers).await;
    assert_eq!(
        warm.len(),
        WARMUP,
        "warm-up not answered; see the invoker logs in {}",
        dir.path().display()
    );
    let mut roundtrip = round_trips(&tansu.bootstrap(), "roundtrip", ROUND_TRIPS).await;
    roundtrip.sort();
    // Idle: the invokers' CPU with no message to run.
    let before = CpuSnapshot::take(&pids);
    let idle_start = Instant::now();
    tokio::time::sleep(IDLE).await;
    let (idle_ms, idle_threads, idle_switches) = CpuSnapshot::take(&pids).since(&before, ticks);
    let idle_ms_per_s = idle_ms / idle_start.elapsed().as_secs_f64();
    let before = CpuSnapshot::take(&pids);
    let (sequential, wall) = harness.phase(SEQUENTIAL, 1).await;
    let (cpu_ms, threads, switches) = CpuSnapshot::take(&pids).since(&before, ticks);
    let mut phases = vec![PhaseCpu {
        phase: "sequential".into(),
        activations: sequential.len(),
        wall,
        cpu_ms,
        threads,
        switches,
    }];
    let mut sorted_sequential = sequential.clone();
    sorted_sequential.sort();
    let e2e_p50 = percentile(&sorted_sequential, 0.5);
    let mut series = Vec::new();
    record(&mut series, invokers, 1, &sequential, wall);
    let mut rows = vec![row("sequential", invokers, sequential, wall)];
    let mut points = vec![(1.0, phases[0].per_activation_us())];
    for window in windows() {
        let count = windowed_count(window);
        let before = CpuSnapshot::take(&pids);
        let (windowed, wall) = harness.phase(count, window).await;
        let (cpu_ms, threads, switches) = CpuSnapshot::take(&pids).since(&before, ticks);
        let phase = PhaseCpu {
            phase: format!("windowed ({window} outstanding)"),
            activations: windowed.len(),
            wall,
            cpu_ms,
            threads,
            switches,
        };
        points.push((window as f64, phase.per_activation_us()));
        phases.push(phase);
        if windowed.len() < count {
            eprintln!(
                "only {} of {count} answered; warnings of the invokers:",
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
        record(&mut series, invokers, window, &windowed, wall);
        rows.push(row(
            &format!("windowed ({window} outstanding)"),
            invokers,
            windowed,
            wall,
        ));
    }
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
    let name = format!("kafka echo, {invokers} invoker(s)");
    let roundtrip_p50 = percentile(&roundtrip, 0.5);
    series.push(results::Series::samples(
        "kafka_bare_roundtrip",
        &format!("bare produce -> consume round trip, {invokers} invoker(s) running"),
        "ms",
        roundtrip.iter().map(|d| d.as_secs_f64() * 1000.0).collect(),
    ));
    series.push(results::Series::points(
        "invoker_cpu_per_activation",
        &name,
        "µs",
        "concurrent activations",
        points,
    ));
    let mut cost = vec![format!(
        "| {invokers} | idle ({:.1} s) | 0 | {:.1} | {idle_ms:.0} ({idle_ms_per_s:.1} ms/s) | - | - | \
         {:.0}/s | {} |",
        IDLE.as_secs_f64(),
        IDLE.as_secs_f64(),
        idle_switches as f64 / IDLE.as_secs_f64(),
        threads_column(&idle_threads)
    )];
    for phase in &phases {
        cost.push(format!(
            "| {invokers} | {} | {} | {:.1} | {:.0} | {:.0} | {:.0} | {:.1}/activation | {} |",
            phase.phase,
            phase.activations,
            phase.wall.as_secs_f64(),
            phase.cpu_ms,
            phase.per_activation_us(),
            phase.net_of_idle_us(idle_ms_per_s),
            phase.switches_per_activation(),
            threads_column(&phase.threads)
        ));
    }
    let latency_note = format!(
        "{invokers} invoker(s): bare produce -> consume round trip on the same broker p50 \
         {roundtrip_p50:.2} ms (p90 {:.2} ms, {} trips); sequential e2e p50 {e2e_p50:.2} ms; added by \
         the invoker = e2e p50 - 2 round trips = {:.2} ms",
        percentile(&roundtrip, 0.9),
        roundtrip.len(),
        e2e_p50 - 2.0 * roundtrip_p50
    );
    let windowed_cpu: Vec<String> = phases[1..]
        .iter()
        .map(|phase| {
            format!(
                "{:.0} µs {} ({:.0} µs net of idle {idle_ms_per_s:.1} ms/s, {:.0}/s)",
                phase.per_activation_us(),
                phase.phase,
                phase.net_of_idle_us(idle_ms_per_s),
                phase.activations as f64 / phase.wall.as_secs_f64()
            )
        })
        .collect();
    let cpu_note = format!(
        "{invokers} invoker(s): invoker CPU per activation {}; {:.0} µs sequential",
        windowed_cpu.join(", "),
        phases[0].per_activation_us()
    );
    CaseResult {
        rows,
        notes: vec![note, latency_note, cpu_note],
        series,
        cost,
    }
}

/// The thread groups that spent at least 1 % of a phase's CPU, as `name ms (share)`.
fn threads_column(threads: &[(String, f64)]) -> String {
    let total: f64 = threads.iter().map(|(_, ms)| ms).sum();
    threads
        .iter()
        .filter(|(_, ms)| *ms >= total / 100.0)
        .map(|(name, ms)| format!("{name} {ms:.0} ({:.0} %)", ms * 100.0 / total))
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() {
    if let Some(id) = std::env::var(relay::ROLE)
        .ok()
        .and_then(|id| id.parse().ok())
    {
        if let Err(error) = relay::run(id) {
            eprintln!("relay: {error}");
            std::process::exit(1);
        }
        return;
    }
    let mut recorder = results::Recorder::start("kafka");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut costs = Vec::new();
    let cases: Vec<usize> = match std::env::var("BENCH_INVOKERS") {
        Ok(value) => value
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
        Err(_) => vec![1, 2],
    };
    for invokers in cases {
        let result = runtime.block_on(case(invokers));
        rows.extend(result.rows);
        for series in result.series {
            recorder.push(series);
        }
        for note in result.notes {
            recorder.note(note.clone());
            notes.push(note);
        }
        costs.extend(result.cost);
    }
    if relay_mode() {
        println!(
            "BENCH_RELAY=1: every \"invoker\" below is the relay of the invoker's Kafka plumbing \
             alone (benches/support/relay.rs), not the invoker\n"
        );
    }
    println!(
        "invokers' fetch.wait.max.ms = {}, windows = {:?}, user memory {} MB (maxPeek {}), \
         revision {}\n",
        fetch_wait_ms(),
        windows(),
        user_memory_mb(),
        user_memory_mb() / ACTION_MB,
        if with_revision() {
            "given (action cached)"
        } else {
            "null (action read per activation)"
        }
    );
    println!("| case | invokers | activations | activations/s | p50 ms | p90 ms | p99 ms |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!();
    println!(
        "Invoker CPU (utime+stime, all invoker processes; per thread group in ms):\n\n\
         | invokers | phase | activations | wall s | CPU ms | µs/activation | µs/activation net of idle | \
         context switches | threads |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    for cost in costs {
        println!("{cost}");
    }
    println!();
    for note in notes {
        println!("{note}");
    }
    recorder.finish();
}
