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
//! `BENCH_REVISION=0` for messages without the action's revision (`null`: the invoker reads the
//! action from CouchDB for each); `BENCH_INVOKER_BIN=path` to
//! run another build of the invoker; `BENCH_WINDOW=32,128` for other windows;
//! `BENCH_WINDOWED=n` for another count of messages per windowed phase; `BENCH_RELAY=1` to run the
//! invoker's Kafka plumbing alone in place of each invoker (`benches/support/relay.rs`: the floor
//! of the Kafka path). Needs `tansu` and `pouchdb-server`, as the tests do. The latencies, the
//! round trips and the invoker CPU per activation also go to `target/bench-results/kafka.json`
//! (`benches/support/results.rs`).

#[path = "support/deliveries.rs"]
mod deliveries;
#[path = "support/echo_action.rs"]
mod echo_action;
#[path = "support/invoker_process.rs"]
mod invoker_process;
#[path = "support/latencies.rs"]
mod latencies;
#[path = "support/proc_cpu.rs"]
mod proc_cpu;
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
use std::process::Command;
use std::time::{Duration, Instant};

use executor::message::AcknowledgementMessage;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::echo_action::{MEMORY_MB, activation_message};
use crate::invoker_process::Invoker;
use crate::latencies::{percentile, record};
use crate::proc_cpu::{CpuSnapshot, threads_column};

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
const WARMUP: usize = 50;
const PHASE_LIMIT: Duration = Duration::from_secs(90);
const ROUND_TRIPS: usize = 200;
const IDLE: Duration = Duration::from_secs(3);
/// The summary's series of this bench's latency samples.
const LATENCY_METRIC: &str = "kafka_latency";

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

fn start_invoker(
    id: u32,
    kafka: &str,
    couch: &executor::store::couchdb::CouchDbConfig,
    dir: &std::path::Path,
) -> Invoker {
    if relay_mode() {
        let mut command = Command::new(std::env::current_exe().expect("the bench binary"));
        command
            .env(relay::ROLE, id.to_string())
            .env(relay::BOOTSTRAP, kafka)
            .env(relay::FETCH_WAIT, fetch_wait_ms().to_string())
            .env(relay::MAX_PEEK, (user_memory_mb() / MEMORY_MB).to_string());
        return Invoker::spawn(command, dir, id, "start the relay");
    }
    let config = invoker_process::write_config(dir, id, kafka, couch, user_memory_mb(), "");
    let command = invoker_process::command(invoker_binary(), id, &config, fetch_wait_ms());
    Invoker::spawn(command, dir, id, "start the invoker")
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

/// Each invoker's user memory, MB: the echo action's memory times half the largest window
/// (16,384 MB, maxPeek 128, for the default windows).
fn user_memory_mb() -> usize {
    MEMORY_MB * windows().into_iter().max().unwrap_or(WINDOWS[0]) / 2
}

/// Whether the invokers are replaced by relays of their Kafka plumbing alone (`BENCH_RELAY=1`).
fn relay_mode() -> bool {
    std::env::var("BENCH_RELAY").is_ok_and(|v| v == "1")
}

/// Whether messages name the action's revision, as a controller does, so the invoker serves the
/// action from its cache (the default); with `BENCH_REVISION=0` `revision` is null and every
/// activation reads the document and its 76 KB attachment from CouchDB again.
fn with_revision() -> bool {
    std::env::var("BENCH_REVISION").map_or(true, |v| v != "0")
}

fn message(topic_index: usize, n: usize, revision: Option<&str>) -> (String, String) {
    let id = format!(
        "{:032x}",
        ((topic_index as u128) << 64) | n as u128 | (0xbe << 100)
    );
    let message = activation_message(&id, n, revision);
    (id, message)
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
            if let Some(latency) =
                latencies::ack_latency(message.payload().unwrap_or_default(), outstanding)
            {
                return Some(latency);
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
        deliveries::confirm(&mut self.deliveries).await;
        self.unanswered.extend(outstanding.into_keys());
        (latencies, wall)
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

/// What one case measured.
struct CaseResult {
    rows: Vec<String>,
    notes: Vec<String>,
    series: Vec<results::Series>,
    /// The invoker's cost: idle CPU, CPU per phase, bare round trip and sequential e2e p50.
    cost: Vec<String>,
}

async fn case(invokers: usize) -> CaseResult {
    let ticks = proc_cpu::clock_ticks();
    let tansu = tansu::Tansu::start();
    tansu
        .create_topics(&["completed0", "health", "roundtrip"])
        .await;
    let pouch = pouchdb::PouchDb::start();
    let couch = pouch.config("bench");
    let revision = echo_action::setup_store(&couch).await;
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
    let pids: Vec<u32> = running.iter().map(Invoker::id).collect();
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
    let name = format!("kafka echo, {invokers} invoker(s)");
    let mut series = Vec::new();
    record(&mut series, LATENCY_METRIC, &name, 1, &sequential, wall);
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
                invoker_process::print_warnings(dir.path(), id as u32);
            }
        }
        record(&mut series, LATENCY_METRIC, &name, window, &windowed, wall);
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
        user_memory_mb() / MEMORY_MB,
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
