//! Hostile actions in bulk: 1,000 activations each of `spin` (50 ms timeout), `hog` and `panic`, many at a
//! time on one wasm factory, must each end with the spec's status and message and leave the process's
//! resident memory flat (pooled slots are reused and decommitted, nothing leaks per activation).
//!
//! The growth is printed (`cargo test --test wasm_soak -- --nocapture`) and bounded loosely: the bound
//! catches a per-activation leak (1,000 activations × even 64 KiB would exceed it), not allocator noise.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use factory::outcome::messages;
use factory::wasm::{WasmConfig, WasmFactory};
use factory::{
    ActivationContext, Code, Container, ContainerSpec, Factory, InitRequest, Limits, Purpose,
    RunRequest, Status,
};
use serde_json::json;
use tokio::task::JoinSet;

/// Activations per hostile action.
const ACTIVATIONS: usize = 1_000;
/// Activations in flight at once.
const IN_FLIGHT: usize = 32;
/// Allowed growth of resident memory over the measured rounds.
const MAX_RSS_GROWTH_BYTES: i64 = 48 * 1024 * 1024;

/// Resident set size of this process, from `/proc/self/statm` (pages × page size).
fn rss_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .expect("resident field")
        .parse()
        .expect("a number");
    pages * 4096
}

fn context(name: &str, n: usize, timeout: Duration) -> ActivationContext {
    ActivationContext {
        activation_id: format!("{n:032x}"),
        namespace: "guest".into(),
        action_name: format!("/guest/{name}"),
        action_version: Some("0.0.1".into()),
        transaction_id: format!("soak{n}"),
        api_key: None,
        deadline: SystemTime::now() + timeout,
    }
}

async fn deploy(factory: &WasmFactory, name: &str, limits: Limits) -> Arc<dyn Container> {
    let path = ow_action::artifacts::wasm_module(name).expect("example builds");
    let bytes = std::fs::read(&path).expect("module bytes");
    let container = factory
        .create(ContainerSpec {
            kind: "wasm:wasip1".into(),
            image: None,
            memory_mb: limits.memory,
            purpose: Purpose::Cold {
                namespace: "guest".into(),
                action: name.into(),
            },
        })
        .await
        .expect("a wasm container");
    container
        .init(InitRequest {
            name: name.into(),
            main: None,
            code: Some(Code::Binary(Arc::from(bytes))),
            env: Default::default(),
            context: context(name, 0, Duration::from_secs(60)),
            // Compiling takes longer than a 50 ms run may; the init gets a generous bound of its own.
            limits: Limits {
                timeout: 60_000,
                ..limits
            },
        })
        .await
        .expect("init of a valid module");
    container
}

/// Runs `count` activations, `IN_FLIGHT` at a time, and checks every outcome's status and error.
async fn hammer(
    container: &Arc<dyn Container>,
    name: &str,
    limits: Limits,
    count: usize,
    expected: &str,
) {
    let mut running = JoinSet::new();
    let mut finished = 0;
    for n in 0..count {
        if running.len() >= IN_FLIGHT {
            finished += check(running.join_next().await, expected);
        }
        let container = container.clone();
        let run = RunRequest {
            params: json!({}),
            context: context(name, n, limits.timeout_duration()),
            limits,
        };
        running.spawn(async move { container.run(run).await });
    }
    while let Some(outcome) = running.join_next().await {
        finished += check(Some(outcome), expected);
    }
    assert_eq!(finished, count);
}

fn check(
    joined: Option<Result<factory::Outcome, tokio::task::JoinError>>,
    expected: &str,
) -> usize {
    let outcome = joined.expect("a task").expect("the task did not panic");
    assert_eq!(
        outcome.status,
        Status::DeveloperError,
        "{:?}",
        outcome.result
    );
    assert_eq!(outcome.result, Some(json!({"error": expected})));
    1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_hostile_activations_in_bulk_keep_resident_memory_flat() {
    let factory = WasmFactory::new(WasmConfig {
        pool_instances: IN_FLIGHT as u32,
        ..WasmConfig::default()
    })
    .expect("a wasm factory");
    let spin_limits = Limits {
        timeout: 50,
        memory: 128,
        logs: 10,
        concurrency: 1,
    };
    let limits = Limits {
        timeout: 10_000,
        memory: 128,
        logs: 10,
        concurrency: 1,
    };
    let cases = [
        ("spin", spin_limits, messages::timed_out(50)),
        ("hog", limits, messages::MEMORY_EXHAUSTED.to_string()),
        ("panic", limits, messages::ABNORMAL_RUN.to_string()),
    ];
    let mut containers = Vec::new();
    for (name, limits, expected) in &cases {
        let container = deploy(&factory, name, *limits).await;
        // A first round warms every pool slot and cache, so what follows measures steady state.
        hammer(&container, name, *limits, IN_FLIGHT * 2, expected).await;
        containers.push(container);
    }
    let before = rss_bytes();
    for ((name, limits, expected), container) in cases.iter().zip(&containers) {
        let start = std::time::Instant::now();
        hammer(container, name, *limits, ACTIVATIONS, expected).await;
        println!(
            "{ACTIVATIONS} x {name}: {:?}, rss {} MiB",
            start.elapsed(),
            rss_bytes() / (1024 * 1024)
        );
    }
    let growth = rss_bytes() - before;
    println!(
        "resident memory: {} MiB before, growth {} KiB over {} hostile activations",
        before / (1024 * 1024),
        growth / 1024,
        ACTIVATIONS * cases.len()
    );
    assert!(
        growth < MAX_RSS_GROWTH_BYTES,
        "resident memory grew by {growth} bytes over {} hostile activations",
        ACTIVATIONS * cases.len()
    );
    for container in containers {
        container.destroy().await.expect("destroy");
    }
}
