//! Docker factory next to the wasm factory: `echo` and `prime` cold (create + init + run + destroy)
//! and warm (run only on an initialised container), through the same `Factory`/`Container` interface.
//! The Docker factory runs twice: reading logs from the containers' json-files (the default) and
//! through the Engine API (`log_files = false`). Beside them, the runtime's own `/run` on a warm
//! container, posted straight to it (no factory, no logs), on a new connection each time and on one
//! kept-alive connection: the floor the factory's warm run is measured against.
//!
//! Needs a running Docker daemon and the test runtime image (`scripts/build-test-image`). Run with
//! `cargo bench --bench docker`; results and the machine go to `benches/RESULTS-docker.md` by hand.
//! Every loop is bounded in count and in time; all traffic goes to our own containers on this host.

#[path = "support/activation_context.rs"]
mod activation_context;
#[path = "support/results.rs"]
mod results;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use factory::docker::{DockerConfig, DockerFactory, Manifest};
use factory::wasm::{WASM_WASIP1_KIND, WasmConfig, WasmFactory};
use factory::{
    Code, Container, ContainerSpec, Factory, InitRequest, Limits, Outcome, Purpose, RunRequest,
    Status,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::activation_context::context;

/// Cold starts measured per (factory, action).
const COLD_ITERATIONS: usize = 15;
/// Warm runs measured per (factory, action), after [`WARMUP`] unmeasured ones.
const WARM_ITERATIONS: usize = 200;
const WARMUP: usize = 5;
/// No single series runs longer than this, whatever its count.
const SERIES_BUDGET: Duration = Duration::from_secs(90);
/// Each activation's deadline, from its init or run: as long as its time limit ([`limits`]).
const DEADLINE: Duration = Duration::from_secs(30);

fn limits() -> Limits {
    Limits {
        timeout: 30_000,
        memory: 256,
        logs: 10,
        concurrency: 1,
    }
}

fn params(action: &str) -> Value {
    match action {
        "prime" => json!({"n": 100_000}),
        _ => json!({"greeting": "hello", "n": [1, 2, 3]}),
    }
}

struct Subject {
    label: &'static str,
    factory: Arc<dyn Factory>,
    kind: &'static str,
    code: fn(&str) -> Code,
}

fn native_code(action: &str) -> Code {
    let path = ow_action::artifacts::native_binary(action).expect("native example actions");
    Code::Binary(std::fs::read(path).expect("read action").into())
}

fn wasm_code(action: &str) -> Code {
    let path = ow_action::artifacts::wasm_module(action).expect("wasm example actions");
    Code::Binary(std::fs::read(path).expect("read module").into())
}

fn spec(kind: &str) -> ContainerSpec {
    ContainerSpec {
        kind: kind.into(),
        image: None,
        memory_mb: 256,
        purpose: Purpose::Cold {
            namespace: "guest".into(),
            action: "bench".into(),
        },
    }
}

fn init(code: Code) -> InitRequest {
    InitRequest {
        name: "bench".into(),
        main: None,
        code: Some(code),
        env: Default::default(),
        context: context(DEADLINE),
        limits: limits(),
    }
}

fn run(action: &str) -> RunRequest {
    RunRequest {
        params: params(action),
        context: context(DEADLINE),
        limits: limits(),
    }
}

/// Fails the bench, naming the subject and the action, when a measured run did not succeed.
fn assert_success(subject: &Subject, action: &str, outcome: &Outcome) {
    assert_eq!(
        outcome.status,
        Status::Success,
        "{} {action}: {:?}",
        subject.label,
        outcome.result
    );
}

async fn cold(subject: &Subject, action: &str) -> Vec<Duration> {
    let code = (subject.code)(action);
    let mut samples = Vec::with_capacity(COLD_ITERATIONS);
    let budget = Instant::now() + SERIES_BUDGET;
    while samples.len() < COLD_ITERATIONS && Instant::now() < budget {
        let started = Instant::now();
        let container = subject
            .factory
            .create(spec(subject.kind))
            .await
            .expect("create");
        container.init(init(code.clone())).await.expect("init");
        let outcome = container.run(run(action)).await;
        container.destroy().await.expect("destroy");
        samples.push(started.elapsed());
        assert_success(subject, action, &outcome);
    }
    samples
}

/// A container of `subject` initialised with `action`.
async fn initialised(subject: &Subject, action: &str) -> Arc<dyn Container> {
    let container = subject
        .factory
        .create(spec(subject.kind))
        .await
        .expect("create");
    container
        .init(init((subject.code)(action)))
        .await
        .expect("init");
    container
}

async fn warm(subject: &Subject, action: &str) -> Vec<Duration> {
    let container = initialised(subject, action).await;
    for _ in 0..WARMUP {
        container.run(run(action)).await;
    }
    let mut samples = Vec::with_capacity(WARM_ITERATIONS);
    let budget = Instant::now() + SERIES_BUDGET;
    while samples.len() < WARM_ITERATIONS && Instant::now() < budget {
        let started = Instant::now();
        let outcome = container.run(run(action)).await;
        samples.push(started.elapsed());
        assert_success(subject, action, &outcome);
    }
    container.destroy().await.expect("destroy");
    samples
}

/// The container's address on the bridge network, as `docker inspect` reports it.
fn address_of(id: &str) -> SocketAddr {
    let output = std::process::Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.bridge.IPAddress}}",
            id,
        ])
        .output()
        .expect("docker inspect");
    let ip = String::from_utf8_lossy(&output.stdout).trim().to_string();
    SocketAddr::new(ip.parse().expect("a bridge IP"), 8080)
}

/// One `POST /run` on `stream`, read to the end of its body (`Content-Length`); returns the status.
async fn post_run(stream: &mut TcpStream, address: SocketAddr, body: &[u8]) -> u16 {
    let head = format!(
        "POST /run HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await.expect("send /run");
    let mut answer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.expect("read /run");
        assert!(n > 0, "the runtime closed the connection");
        answer.extend_from_slice(&chunk[..n]);
        let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("a Content-Length");
        if answer.len() >= end + 4 + length {
            return head
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .expect("a status");
        }
    }
}

/// The runtime's own `/run` on a warm container of `subject`, posted straight to it: on a new
/// connection per run, or on one connection kept alive.
async fn bare(subject: &Subject, action: &str, keep_alive: bool) -> Vec<Duration> {
    let container = initialised(subject, action).await;
    let address = address_of(container.id());
    let body = factory::docker::wire::run_body(&run(action)).to_string();
    let mut kept = TcpStream::connect(address).await.expect("connect");
    kept.set_nodelay(true).expect("nodelay");
    let mut samples = Vec::with_capacity(WARM_ITERATIONS);
    let budget = Instant::now() + SERIES_BUDGET;
    let mut runs = 0;
    while samples.len() < WARM_ITERATIONS && Instant::now() < budget {
        let started = Instant::now();
        let status = if keep_alive {
            post_run(&mut kept, address, body.as_bytes()).await
        } else {
            let mut fresh = TcpStream::connect(address).await.expect("connect");
            fresh.set_nodelay(true).expect("nodelay");
            post_run(&mut fresh, address, body.as_bytes()).await
        };
        let elapsed = started.elapsed();
        assert_eq!(status, 200, "bare /run of {action}");
        runs += 1;
        if runs > WARMUP {
            samples.push(elapsed);
        }
    }
    container.destroy().await.expect("destroy");
    samples
}

/// The machine's load average (1, 5, 15 minutes), as `/proc/loadavg` has it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(label: &str, action: &str, mode: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {label} | {action} | {mode} | {} | {:.2} | {:.2} | {:.2} |",
        samples.len(),
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.1)),
        ms(percentile(&samples, 0.9)),
    );
}

fn main() {
    let mut recorder = results::Recorder::start("docker");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let manifest = Manifest::from_file(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("factory/tests/docker/runtimes.json"),
        )
        .expect("the test manifest");
        let config = DockerConfig {
            name_prefix: "wskbench".into(),
            ..DockerConfig::default()
        };
        let log_files = config.log_files_dir();
        let docker = DockerFactory::connect(config.clone(), manifest.clone())
            .await
            .expect("a running Docker daemon");
        docker.cleanup().await.expect("cleanup");
        let api_config = DockerConfig {
            log_files: false,
            ..config
        };
        let docker_api = DockerFactory::connect(api_config, manifest)
            .await
            .expect("a running Docker daemon");
        let wasm = WasmFactory::new(WasmConfig::default()).expect("wasm factory");
        let subjects = [
            Subject {
                label: "docker (file logs)",
                factory: docker.clone(),
                kind: "native:test",
                code: native_code,
            },
            Subject {
                label: "docker (API logs)",
                factory: docker_api,
                kind: "native:test",
                code: native_code,
            },
            Subject {
                label: "wasm",
                factory: Arc::new(wasm),
                kind: WASM_WASIP1_KIND,
                code: wasm_code,
            },
        ];
        println!("load average before: {}", load_average());
        println!("log files read from: {log_files:?}");
        println!("| factory | action | mode | n | median ms | p10 ms | p90 ms |");
        println!("|---|---|---|---|---|---|---|");
        for action in ["echo", "prime"] {
            // The report plots `echo`; `prime` has series of its own.
            let (cold_metric, warm_metric) = if action == "echo" {
                ("cold_start", "warm_latency")
            } else {
                ("cold_start_prime", "warm_latency_prime")
            };
            for subject in &subjects {
                let samples = cold(subject, action).await;
                recorder.durations(
                    cold_metric,
                    &format!("{} {action}: create+init+run+destroy", subject.label),
                    &samples,
                );
                report(subject.label, action, "cold", samples);
                let samples = warm(subject, action).await;
                recorder.durations(
                    warm_metric,
                    &format!("{} {action}, Container::run", subject.label),
                    &samples,
                );
                report(subject.label, action, "warm", samples);
            }
            let runtime = &subjects[0];
            for (label, keep_alive) in [
                ("runtime's bare /run, new connection", false),
                ("runtime's bare /run, kept alive", true),
            ] {
                let samples = bare(runtime, action, keep_alive).await;
                recorder.durations(warm_metric, &format!("{label}, {action}"), &samples);
                report(label, action, "warm", samples);
            }
        }
        println!("load average after: {}", load_average());
        docker.cleanup().await.expect("cleanup");
    });
    recorder.finish();
}
