//! Docker factory next to the wasm factory: `echo` and `prime` cold (create + init + run + destroy)
//! and warm (run only on an initialised container), through the same `Factory`/`Container` interface.
//!
//! Needs a running Docker daemon and the test runtime image (`scripts/build-test-image`). Run with
//! `cargo bench --bench docker`; results and the machine go to `benches/RESULTS-docker.md` by hand.
//! Every loop is bounded in count and in time; all traffic goes to our own containers on this host.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use factory::docker::{DockerConfig, DockerFactory, Manifest};
use factory::wasm::{WASM_WASIP1_KIND, WasmConfig, WasmFactory};
use factory::{
    ActivationContext, Code, ContainerSpec, Factory, InitRequest, Limits, Purpose, RunRequest,
    Status,
};
use serde_json::{Value, json};

/// Cold starts measured per (factory, action).
const COLD_ITERATIONS: usize = 15;
/// Warm runs measured per (factory, action), after [`WARMUP`] unmeasured ones.
const WARM_ITERATIONS: usize = 200;
const WARMUP: usize = 5;
/// No single series runs longer than this, whatever its count.
const SERIES_BUDGET: Duration = Duration::from_secs(90);

fn limits() -> Limits {
    Limits {
        timeout: 30_000,
        memory: 256,
        logs: 10,
        concurrency: 1,
    }
}

fn context() -> ActivationContext {
    ActivationContext {
        activation_id: "0123456789abcdef0123456789abcdef".into(),
        namespace: "guest".into(),
        action_name: "/guest/bench".into(),
        action_version: Some("0.0.1".into()),
        transaction_id: "bench".into(),
        api_key: None,
        deadline: SystemTime::now() + Duration::from_secs(30),
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
        context: context(),
        limits: limits(),
    }
}

fn run(action: &str) -> RunRequest {
    RunRequest {
        params: params(action),
        context: context(),
        limits: limits(),
    }
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
        assert_eq!(
            outcome.status,
            Status::Success,
            "{} {action}: {:?}",
            subject.label,
            outcome.result
        );
    }
    samples
}

async fn warm(subject: &Subject, action: &str) -> Vec<Duration> {
    let container = subject
        .factory
        .create(spec(subject.kind))
        .await
        .expect("create");
    container
        .init(init((subject.code)(action)))
        .await
        .expect("init");
    for _ in 0..WARMUP {
        container.run(run(action)).await;
    }
    let mut samples = Vec::with_capacity(WARM_ITERATIONS);
    let budget = Instant::now() + SERIES_BUDGET;
    while samples.len() < WARM_ITERATIONS && Instant::now() < budget {
        let started = Instant::now();
        let outcome = container.run(run(action)).await;
        samples.push(started.elapsed());
        assert_eq!(
            outcome.status,
            Status::Success,
            "{} {action}: {:?}",
            subject.label,
            outcome.result
        );
    }
    container.destroy().await.expect("destroy");
    samples
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
        let docker = DockerFactory::connect(config, manifest)
            .await
            .expect("a running Docker daemon");
        docker.cleanup().await.expect("cleanup");
        let wasm = WasmFactory::new(WasmConfig::default()).expect("wasm factory");
        let subjects = [
            Subject {
                label: "docker",
                factory: docker.clone(),
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
        println!("| factory | action | mode | n | median ms | p10 ms | p90 ms |");
        println!("|---|---|---|---|---|---|---|");
        for action in ["echo", "prime"] {
            for subject in &subjects {
                report(subject.label, action, "cold", cold(subject, action).await);
                report(subject.label, action, "warm", warm(subject, action).await);
            }
        }
        docker.cleanup().await.expect("cleanup");
    });
}
