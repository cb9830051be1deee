//! Limits as obeyed/violated pairs: result size, timeout, memory, fuel, init time.

use std::time::{Duration, Instant};

use factory::Status;
use factory::outcome::messages;
use factory::wasm::FuelMode;
use serde_json::json;

use super::*;

#[tokio::test]
async fn test_result_cap_obeyed_and_violated() {
    let factory = factory_with(config());
    let bigout = deploy(&factory, "bigout").await;
    let max = 1024 * 1024;

    let outcome = bigout.run(json!({"bytes": max})).await;
    assert_eq!(outcome.status, Status::Success);
    assert_eq!(outcome.size, Some(max));
    assert_eq!(
        outcome.result.unwrap()["data"].as_str().unwrap().len(),
        max - 11
    );

    let len = 2 * 1024 * 1024;
    let outcome = bigout.run(json!({})).await;
    assert_eq!(outcome.status, Status::ApplicationError);
    assert_eq!(outcome.size, Some(len));
    let line = format!("{{\"data\":\"{}\"}}", "x".repeat(len - 11));
    assert_eq!(
        error_of(&outcome),
        messages::truncated_response(len, max, &line[..max])
    );
    assert!(outcome.logs.is_empty());
}

#[tokio::test]
async fn test_result_cap_is_configurable() {
    let factory = factory_with(WasmConfig {
        max_result_bytes: 4096,
        ..config()
    });
    let bigout = deploy(&factory, "bigout").await;
    let outcome = bigout.run(json!({"bytes": 4096})).await;
    assert_eq!(outcome.status, Status::Success);
    let outcome = bigout.run(json!({"bytes": 4097})).await;
    assert_eq!(outcome.status, Status::ApplicationError);
    assert_eq!(outcome.size, Some(4097));
    let line = format!("{{\"data\":\"{}\"}}", "x".repeat(4097 - 11));
    assert_eq!(
        error_of(&outcome),
        messages::truncated_response(4097, 4096, &line[..4096])
    );
}

#[tokio::test]
async fn test_timeout_obeyed_and_violated() {
    let factory = factory_with(config());
    // Deployed with the default timeout: compiling on a busy machine may take longer than 300 ms,
    // and init is bounded by the timeout too (tested in `test_init_is_bounded_by_the_timeout`).
    let limits = Limits {
        timeout: 300,
        ..Limits::default()
    };
    let echo = deploy(&factory, "echo").await;
    let outcome = echo.run_with(json!({"fast": true}), limits).await;
    assert_eq!(outcome.status, Status::Success);
    assert!(!outcome.timed_out);

    let spin = deploy(&factory, "spin").await;
    let started = Instant::now();
    let outcome = spin.run_with(json!({}), limits).await;
    let elapsed = started.elapsed();
    assert_eq!(outcome.status, Status::DeveloperError);
    assert_eq!(error_of(&outcome), messages::timed_out(300));
    assert!(outcome.timed_out);
    assert_eq!(log_texts(&outcome), ["stdout: spinning"]);
    // Sanity only (not a performance assertion): the infinite loop really was stopped.
    assert!(elapsed < Duration::from_secs(30), "spin ran {elapsed:?}");
    assert!(
        outcome.duration() >= Duration::from_millis(300),
        "{:?}",
        outcome.duration()
    );
    // Its slot went back to the pool.
    assert_eq!(factory.metrics().instance_slots_in_use, 0);
}

#[tokio::test]
async fn test_memory_limit_obeyed_and_violated() {
    let factory = factory_with(config());
    let limits = Limits {
        memory: 128,
        ..Limits::default()
    };
    let hog = deploy_with(&factory, "hog", limits).await;

    let outcome = hog.run(json!({"max_mb": 64})).await;
    assert_eq!(outcome.status, Status::Success, "{outcome:?}");
    assert_eq!(outcome.result, Some(json!({"allocated_mb": 64})));

    let outcome = hog.run(json!({})).await;
    assert_eq!(outcome.status, Status::DeveloperError);
    assert_eq!(error_of(&outcome), messages::MEMORY_EXHAUSTED);
    let logs = log_texts(&outcome);
    assert!(
        logs.iter()
            .any(|line| line.starts_with("stderr: allocation failed after ")),
        "{logs:?}"
    );

    // A normal action under the same limit is unaffected, and a larger limit lets the hog go on.
    let hello = deploy_with(&factory, "hello", limits).await;
    assert_eq!(hello.run(json!({})).await.status, Status::Success);
    let outcome = hog
        .run_with(
            json!({"max_mb": 200}),
            Limits {
                memory: 256,
                ..limits
            },
        )
        .await;
    assert_eq!(outcome.status, Status::Success, "{outcome:?}");
}

#[tokio::test]
async fn test_fuel_budget_obeyed_and_violated() {
    let small = factory_with(WasmConfig {
        fuel: FuelMode::Fixed(100_000),
        ..config()
    });
    let prime = deploy(&small, "prime").await;
    let outcome = prime.run(json!({"n": 100_000})).await;
    assert_eq!(outcome.status, Status::DeveloperError);
    assert_eq!(error_of(&outcome), messages::fuel_exhausted(100_000));
    assert_eq!(outcome.fuel, Some(100_000));
    assert!(!outcome.timed_out);

    let budget = 20_000_000_000;
    let big = factory_with(WasmConfig {
        fuel: FuelMode::Fixed(budget),
        ..config()
    });
    let prime = deploy(&big, "prime").await;
    let outcome = prime.run(json!({"n": 100_000})).await;
    assert_eq!(outcome.status, Status::Success, "{outcome:?}");
    assert_eq!(outcome.result, Some(json!({"n": 100_000, "primes": 9592})));
    let used = outcome.fuel.expect("fuel is reported when on");
    assert!(used > 100_000 && used < budget, "used {used}");
    // Deterministic: the same work costs the same fuel.
    assert_eq!(prime.run(json!({"n": 100_000})).await.fuel, Some(used));
}

#[tokio::test]
async fn test_fuel_per_millisecond_of_timeout() {
    let factory = factory_with(WasmConfig {
        fuel: FuelMode::PerMillisecondOfTimeout(100),
        ..config()
    });
    let limits = Limits {
        timeout: 1000,
        ..Limits::default()
    };
    let spin = deploy(&factory, "spin").await;
    let outcome = spin.run_with(json!({}), limits).await;
    assert_eq!(outcome.status, Status::DeveloperError);
    assert_eq!(error_of(&outcome), messages::fuel_exhausted(100_000));
    assert_eq!(outcome.fuel, Some(100_000));
    // A longer timeout buys more fuel.
    let outcome = spin
        .run_with(
            json!({}),
            Limits {
                timeout: 2000,
                ..limits
            },
        )
        .await;
    assert_eq!(error_of(&outcome), messages::fuel_exhausted(200_000));
}

#[tokio::test]
async fn test_init_is_bounded_by_the_timeout() {
    let factory = factory_with(config());
    let limits = Limits {
        timeout: 1,
        ..Limits::default()
    };
    let outcome = deploy_code(
        &factory,
        "prime",
        Some(example_code("prime")),
        None,
        Default::default(),
        limits,
    )
    .await
    .err()
    .expect("compiling cannot take under a millisecond");
    assert_eq!(outcome.status, Status::DeveloperError);
    assert_eq!(error_of(&outcome), messages::init_timed_out(1));
    assert!(outcome.timed_out);
    assert!(outcome.init_time.is_some());
    // Obeyed: with time enough, the same code initialises, and its init time is recorded.
    let prime = deploy(&factory, "prime").await;
    assert_eq!(
        prime.run(json!({"n": 10})).await.result,
        Some(json!({"n": 10, "primes": 4}))
    );
}
