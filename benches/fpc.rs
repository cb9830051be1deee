//! End-to-end throughput, latency and invoker CPU of OpenWhisk 2.x's scheduler protocol ("FPC",
//! docs/fpc.md) next to the classic Kafka path, in one run on one broker, for the wasm `echo` action
//! (log limit 0, non-blocking: one Completion ack per activation, records stored in pouchdb-server).
//!
//! - `classic`: invoker 0 (classic mode); each `ActivationMessage` is produced to `invoker0`. Both
//!   paths name the action's revision, as a controller does.
//! - `fpc`: invoker 1 in FPC mode (`CONFIG_whisk_etcd_hosts` and
//!   `CONFIG_whisk_spi_InvokerProvider=...FPCInvokerReactive`, a real etcd), started after invoker 0
//!   has stopped, so the two never share the two cores. Creation orders on `invoker1` make C
//!   containers (first 1, then 3 more: 4); their creation acks are read from `creationAck0`. Each
//!   activation is pushed into the fake scheduler's queue (a real tonic `ActivationService` in this
//!   process, `executor/tests/support/scheduler.rs`), from which a container's long poll takes it.
//!
//! Latency runs from produce (classic) or push (FPC) until the bench consumes the slot-freeing ack
//! from `completed0`; both paths answer on that one topic. Per path: `WARMUP` messages, then
//! `sequential` (one outstanding) and `windowed` (`WINDOW` outstanding). The CPU columns are the
//! invoker process's utime+stime (`/proc/<pid>/stat`) and this process's (which hosts the fake
//! scheduler and the Kafka clients) over the phase, divided by the activations answered in it.
//!
//! Last, with the invoker stopped, a probe times bare `FetchActivation` calls from this process to
//! the fake scheduler with the invoker's own `ActivationClient`: the gRPC hop alone.
//!
//! Bounded: at most `SEQUENTIAL` / `WINDOWED` messages and `PHASE_LIMIT` per phase, 30 s per ack.
//! Run: `cargo bench --bench fpc` (needs `tansu`, `pouchdb-server` and `etcd`, as the tests do).
//! The latencies also go to `target/bench-results/fpc.json` (`benches/support/results.rs`).

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
#[path = "support/results.rs"]
mod results;

#[path = "../executor/tests/support/etcd.rs"]
#[allow(
    dead_code,
    reason = "the shared support module has more than this bench uses"
)]
mod etcd;
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
#[path = "../executor/tests/support/scheduler.rs"]
mod scheduler;
#[path = "../executor/tests/support/tansu.rs"]
#[allow(
    dead_code,
    reason = "the shared support module has more than this bench uses"
)]
mod tansu;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use executor::fpc::grpc::{ActivationClient, FetchReply, PollRequest};
use executor::store::couchdb::CouchDbConfig;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

use crate::echo_action::{ACTION, MEMORY_MB, activation_message, now_millis};
use crate::invoker_process::{Invoker, print_warnings};
use crate::latencies::percentile;
use crate::scheduler::FakeScheduler;

const SEQUENTIAL: usize = 200;
const WINDOWED: usize = 3000;
const WINDOW: usize = 32;
const WARMUP: usize = 50;
const PHASE_LIMIT: Duration = Duration::from_secs(90);
/// How long one ack, a creation ack or a container's first poll may take.
const WAIT: Duration = Duration::from_secs(30);
/// Both invokers' `fetch.wait.max.ms` (Tansu holds every fetch for the whole wait).
const FETCH_WAIT_MS: u32 = 5;
/// Each invoker's user memory: 16 slots of the echo action (2048 MB).
const USER_MEMORY_MB: usize = 16 * MEMORY_MB;

/// One line of a command's output, or `?`.
fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|out| out.trim().to_string())
        .unwrap_or_else(|| "?".into())
}

/// utime + stime of process `pid` (a number, or `self`), in clock ticks.
fn cpu_ticks(pid: &str) -> u64 {
    proc_cpu::process_ticks(pid).expect("/proc stat")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Starts invoker `id`; `fpc_etcd` = `Some(etcd endpoint)` starts it in FPC mode.
fn start_invoker(
    id: u32,
    kafka: &str,
    couch: &CouchDbConfig,
    dir: &Path,
    fpc_etcd: Option<&str>,
) -> Invoker {
    // In FPC mode a container that ran nothing for pause-grace stops polling and pauses until the
    // scheduler resumes it with a creation order; this bench's fake scheduler never does, so the
    // containers must not pause between phases.
    let pool_extra = if fpc_etcd.is_some() {
        "pause_grace_ms = 600000\n"
    } else {
        ""
    };
    let config = invoker_process::write_config(dir, id, kafka, couch, USER_MEMORY_MB, pool_extra);
    let mut command = invoker_process::command(
        env!("CARGO_BIN_EXE_wasm-invoker"),
        id,
        &config,
        FETCH_WAIT_MS,
    );
    if let Some(etcd) = fpc_etcd {
        command.env("CONFIG_whisk_etcd_hosts", etcd).env(
            "CONFIG_whisk_spi_InvokerProvider",
            "org.apache.openwhisk.core.invoker.FPCInvokerReactive",
        );
    }
    Invoker::spawn(command, dir, id, "start the invoker")
}

/// A non-blocking `ActivationMessage` for `guest/echo0` at the document's `revision` (as a
/// controller sends it on both paths: the classic invoker then serves the action from its cache, and
/// FPC keys the container's action and queue by it), answered on `completed0`.
fn message(n: usize, revision: &str) -> (String, String) {
    let id = format!("{:032x}", n as u128 | (0xbf << 100));
    let message = activation_message(&id, n, Some(revision));
    (id, message)
}

/// A creation order to invoker `invoker` for `guest/echo0` at `rev`, polling the scheduler on
/// `port`, acked on `creationAck0` (scheduler 0).
fn creation(rev: &str, creation_id: &str, port: u16) -> Value {
    json!({
        "transid": ["sid_containerCreation", now_millis()],
        "invocationNamespace": "guest",
        "action": {"path": "guest", "name": "echo0", "version": "0.0.1"},
        "revision": rev,
        "whiskActionMetaData": {
            "namespace": "guest", "name": "echo0",
            "exec": {"kind": "wasm:wasip1", "binary": true},
            "parameters": [],
            "limits": {"timeout": 5000, "memory": MEMORY_MB, "logs": 0, "concurrency": 1},
            "version": "0.0.1", "publish": false, "annotations": [], "updated": now_millis()
        },
        "rootSchedulerIndex": {"asString": "0"},
        "schedulerHost": "127.0.0.1",
        "rpcPort": port,
        "retryCount": 0,
        "creationId": creation_id,
    })
}

/// Where a phase's activations go.
enum Target<'a> {
    /// Produced to this topic at this revision (classic).
    Topic(&'a str, &'a str),
    /// Pushed into the fake scheduler's queue of `guest/echo0` at this revision (FPC).
    Scheduler(&'a FakeScheduler, &'a str),
}

struct Harness {
    producer: FutureProducer,
    completed: StreamConsumer,
    sent: usize,
    /// Deliveries of produced messages not yet confirmed: the harness does not wait for each
    /// produce before the next, so that its own round trips do not bound the classic path's rate
    /// (as in benches/kafka.rs).
    deliveries: Vec<rdkafka::producer::DeliveryFuture>,
    /// Activations whose ack did not come before their phase ended.
    unanswered: usize,
    /// What the phases measured, for the summary.
    series: Vec<results::Series>,
}

/// The outcome of one phase.
struct Phase {
    latencies: Vec<Duration>,
    wall: Duration,
    /// CPU seconds of the invoker and of this process over the phase.
    invoker_cpu: f64,
    bench_cpu: f64,
}

impl Harness {
    async fn send(&mut self, target: &Target<'_>, outstanding: &mut HashMap<String, Instant>) {
        let n = self.sent;
        self.sent += 1;
        match target {
            Target::Topic(topic, rev) => {
                let (id, payload) = message(n, rev);
                outstanding.insert(id, Instant::now());
                let delivery = self
                    .producer
                    .send_result(FutureRecord::<(), str>::to(topic).payload(&payload))
                    .map_err(|(error, _)| error)
                    .expect("produce");
                self.deliveries.push(delivery);
            }
            Target::Scheduler(scheduler, rev) => {
                let (id, payload) = message(n, rev);
                outstanding.insert(id, Instant::now());
                scheduler.push_activation("guest", ACTION, rev, payload);
            }
        }
    }

    /// The latency of the next slot-freeing ack of an outstanding message.
    async fn receive(&mut self, outstanding: &mut HashMap<String, Instant>) -> Option<Duration> {
        loop {
            let message = match tokio::time::timeout(WAIT, self.completed.recv()).await {
                Ok(Ok(message)) => message,
                _ => return None,
            };
            if let Some(latency) =
                latencies::ack_latency(message.payload().unwrap_or_default(), outstanding)
            {
                return Some(latency);
            }
        }
    }

    /// Runs `count` messages with at most `window` outstanding, sampling `pid`'s CPU around it.
    async fn phase(
        &mut self,
        target: &Target<'_>,
        count: usize,
        window: usize,
        pid: &str,
    ) -> Phase {
        let ticks = proc_cpu::clock_ticks();
        let invoker_before = cpu_ticks(pid);
        let bench_before = cpu_ticks("self");
        let mut outstanding = HashMap::new();
        let mut latencies = Vec::with_capacity(count);
        let start = Instant::now();
        let mut produced = 0;
        while latencies.len() < count && start.elapsed() < PHASE_LIMIT {
            while produced < count && outstanding.len() < window {
                self.send(target, &mut outstanding).await;
                produced += 1;
            }
            match self.receive(&mut outstanding).await {
                Some(latency) => latencies.push(latency),
                None => break,
            }
        }
        let wall = start.elapsed();
        deliveries::confirm(&mut self.deliveries).await;
        self.unanswered += outstanding.len();
        Phase {
            latencies,
            wall,
            invoker_cpu: (cpu_ticks(pid) - invoker_before) as f64 / ticks,
            bench_cpu: (cpu_ticks("self") - bench_before) as f64 / ticks,
        }
    }
}

/// The samples of one phase (`outstanding` messages at a time), and its rate and percentiles as
/// points against the load, for the summary.
fn record(
    series: &mut Vec<results::Series>,
    path: &str,
    containers: &str,
    outstanding: usize,
    phase: &Phase,
) {
    let name = if containers == "-" {
        format!("{path} echo")
    } else {
        format!("{path} echo, {containers} container(s)")
    };
    latencies::record(
        series,
        "fpc_latency",
        &name,
        outstanding,
        &phase.latencies,
        phase.wall,
    );
}

fn row(path: &str, containers: &str, case: &str, phase: Phase) -> String {
    let mut latencies = phase.latencies;
    latencies.sort();
    let answered = latencies.len().max(1) as f64;
    format!(
        "| {path} | {containers} | {case} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
        latencies.len(),
        latencies.len() as f64 / phase.wall.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        phase.invoker_cpu * 1000.0 / answered,
        phase.bench_cpu * 1000.0 / answered,
    )
}

fn consumer(bootstrap: &str, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("bench-{topic}"))
        .set("auto.offset.reset", "earliest")
        // Tansu answers a fetch only when its wait is over: a short wait keeps the bench's own
        // consumer out of the measured latency.
        .set("fetch.wait.max.ms", "5")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// Orders `count` more containers (creation ids from `first`) and waits for their success acks and
/// until `total` distinct containers have polled the scheduler.
async fn create_containers(
    harness: &Harness,
    acks: &StreamConsumer,
    scheduler: &FakeScheduler,
    rev: &str,
    (first, count, total): (u32, u32, usize),
    dir: &Path,
) {
    let mut pending = HashSet::new();
    for n in first..first + count {
        let creation_id = format!("{:032x}", 0xfc_0000u64 + u64::from(n));
        let order = creation(rev, &creation_id, scheduler.port());
        harness
            .producer
            .send(
                FutureRecord::<(), str>::to("invoker1").payload(&order.to_string()),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| error)
            .expect("produce a creation order");
        pending.insert(creation_id);
    }
    let deadline = Instant::now() + WAIT;
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Ok(message)) = tokio::time::timeout(left, acks.recv()).await else {
            print_warnings(dir, 1);
            panic!("no creation ack for {pending:?}");
        };
        let ack: Value =
            serde_json::from_slice(message.payload().unwrap_or_default()).expect("ack JSON");
        let id = ack["creationId"].as_str().unwrap_or_default().to_string();
        if pending.remove(&id) {
            assert!(
                ack.get("error").is_none(),
                "creation {id} failed: {ack}; invoker log in {}",
                dir.display()
            );
        }
    }
    loop {
        let polling: HashSet<String> = scheduler
            .requests_where(|r| r.alive && !r.container_id.is_empty())
            .into_iter()
            .map(|r| r.container_id)
            .collect();
        if polling.len() >= total {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {total} containers poll",
            polling.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Warm-up, sequential and windowed phases against `target`; the rows.
async fn phases(
    harness: &mut Harness,
    target: &Target<'_>,
    path: &str,
    containers: &str,
    pid: &str,
    dir: &Path,
    id: u32,
) -> Vec<String> {
    let warm = harness.phase(target, WARMUP, 4, pid).await;
    if warm.latencies.len() < WARMUP {
        print_warnings(dir, id);
        panic!(
            "{path}: warm-up not answered; invoker log in {}",
            dir.display()
        );
    }
    let sequential = harness.phase(target, SEQUENTIAL, 1, pid).await;
    let windowed = harness.phase(target, WINDOWED, WINDOW, pid).await;
    if windowed.latencies.len() < WINDOWED {
        eprintln!(
            "{path} {containers}: only {} of {WINDOWED} answered",
            windowed.latencies.len()
        );
        print_warnings(dir, id);
    }
    record(&mut harness.series, path, containers, 1, &sequential);
    record(&mut harness.series, path, containers, WINDOW, &windowed);
    vec![
        row(path, containers, "sequential", sequential),
        row(
            path,
            containers,
            &format!("windowed ({WINDOW} outstanding)"),
            windowed,
        ),
    ]
}

async fn run() -> (Vec<String>, usize, String, Vec<results::Series>) {
    let tansu = tansu::Tansu::start();
    tansu
        .create_topics(&[
            "completed0",
            "health",
            "invoker0",
            "invoker1",
            "creationAck0",
        ])
        .await;
    let pouch = pouchdb::PouchDb::start();
    let couch = pouch.config("bench");
    let rev = echo_action::setup_store(&couch).await;
    let etcd = etcd::Etcd::start();
    let scheduler = FakeScheduler::start().await;
    let dir = tempfile::tempdir().expect("tmp");
    let bootstrap = tansu.bootstrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    let mut harness = Harness {
        producer,
        completed: consumer(&bootstrap, "completed0"),
        sent: 0,
        deliveries: Vec::new(),
        unanswered: 0,
        series: Vec::new(),
    };
    let creation_acks = consumer(&bootstrap, "creationAck0");
    let mut rows = Vec::new();

    // Classic: invoker 0 alone, then stopped.
    {
        let invoker = start_invoker(0, &bootstrap, &couch, dir.path(), None);
        let pid = invoker.id().to_string();
        rows.extend(
            phases(
                &mut harness,
                &Target::Topic("invoker0", &rev),
                "classic",
                "-",
                &pid,
                dir.path(),
                0,
            )
            .await,
        );
    }

    // FPC: invoker 1 alone, with 1 and then 4 containers.
    let invoker = start_invoker(1, &bootstrap, &couch, dir.path(), Some(&etcd.endpoint()));
    let pid = invoker.id().to_string();
    let target = Target::Scheduler(&scheduler, &rev);
    for (first, count, total) in [(1, 1, 1), (2, 3, 4)] {
        create_containers(
            &harness,
            &creation_acks,
            &scheduler,
            &rev,
            (first, count, total),
            dir.path(),
        )
        .await;
        rows.extend(
            phases(
                &mut harness,
                &target,
                "fpc",
                &total.to_string(),
                &pid,
                dir.path(),
                1,
            )
            .await,
        );
    }
    drop(invoker);
    let probe = probe_round_trips(&scheduler).await;
    (rows, harness.unanswered, probe, harness.series)
}

/// `PROBE` bare `FetchActivation` calls from this process to the fake scheduler with the invoker's
/// own client, after the invoker has stopped: (queued: the activation waits in the queue before
/// the call; parked: pushed 5 ms after the call, while it is parked), each as p50 and p99 ms. What
/// the gRPC hop costs without Kafka, the store or wasm.
async fn probe_round_trips(scheduler: &FakeScheduler) -> String {
    const PROBE: usize = 100;
    let client = ActivationClient::new(scheduler.endpoint()).expect("client");
    let request = PollRequest {
        invocation_namespace: "guest".into(),
        fqn_json: r#"{"path":"guest","name":"probe"}"#.into(),
        rev_json: r#""p""#.into(),
        container_id: "probe".into(),
        warmed: true,
        last_duration_ms: None,
        alive: true,
    };
    let mut queued = Vec::with_capacity(PROBE);
    let mut parked = Vec::with_capacity(PROBE);
    for n in 0..PROBE {
        scheduler.push_activation("guest", "guest/probe", "p", message(n, "p").1);
        let start = Instant::now();
        let reply = tokio::time::timeout(WAIT, client.fetch(&request)).await;
        assert!(
            matches!(reply, Ok(Ok(FetchReply::Activation(_)))),
            "{reply:?}"
        );
        queued.push(start.elapsed());
        let call = {
            let client = client.clone();
            let request = request.clone();
            tokio::spawn(async move { client.fetch(&request).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        let start = Instant::now();
        scheduler.push_activation("guest", "guest/probe", "p", message(n, "p").1);
        let reply = tokio::time::timeout(WAIT, call).await;
        assert!(
            matches!(reply, Ok(Ok(Ok(FetchReply::Activation(_))))),
            "{reply:?}"
        );
        parked.push(start.elapsed());
    }
    queued.sort();
    parked.sort();
    format!(
        "gRPC probe ({PROBE} calls each, this process to the fake scheduler, ActivationClient): \
         queued activation p50 {:.1} ms p99 {:.1} ms; parked poll answered by a push p50 {:.1} ms \
         p99 {:.1} ms",
        percentile(&queued, 0.5),
        percentile(&queued, 0.99),
        percentile(&parked, 0.5),
        percentile(&parked, 0.99)
    )
}

fn main() {
    let mut recorder = results::Recorder::start("fpc");
    let getconf_ticks = proc_cpu::getconf_clock_ticks();
    let ticks = getconf_ticks.unwrap_or(proc_cpu::ASSUMED_CLOCK_TICKS);
    println!(
        "machine: nproc = {}, uname -r = {}, load average before: {}",
        command_line("nproc", &[]),
        command_line("uname", &["-r"]),
        load_average()
    );
    println!(
        "command: cargo bench --bench fpc; CLK_TCK = {ticks}{}",
        if getconf_ticks.is_some() {
            " (getconf)"
        } else {
            " (assumed)"
        }
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (rows, unanswered, probe, series) = runtime.block_on(run());
    for series in series {
        recorder.push(series);
    }
    println!(
        "window = {WINDOW}, user memory {USER_MEMORY_MB} MB, invokers' fetch.wait.max.ms = {FETCH_WAIT_MS}, \
         scheduler poll timeout 1 s, {WARMUP} warm-up activations per case\n"
    );
    println!(
        "| path | containers | case | activations | activations/s | p50 ms | p90 ms | p99 ms | invoker CPU ms/activation | bench CPU ms/activation |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!("\n{probe}");
    println!(
        "unanswered activations: {unanswered}; load average after: {}",
        load_average()
    );
    recorder.note(probe);
    recorder.note(format!("unanswered activations: {unanswered}"));
    recorder.finish();
}
