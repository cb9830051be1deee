//! A guest that sleeps (waits in the host, out of reach of epoch interruption) is stopped at its
//! timeout like one that runs, and gives its pool slot back at once: obeyed/violated pairs with the
//! `sleep` example.

use std::time::{Duration, Instant};

use factory::Status;
use factory::outcome::messages;
use factory::wasm::container::ABANDON_GRACE;
use factory::wasm::{FuelMode, ScratchConfig};
use serde_json::json;

use super::*;

/// How long a follow-up activation may wait for the pool's only slot before the test fails rather
/// than hangs (a sleeper that kept the slot would keep it for an hour). A bound, not a timing.
const SLOT_WAIT_BOUND: Duration = Duration::from_secs(60);

/// Runs a test body on its own runtime, which is shut down without waiting for its tasks or
/// blocking threads when the body ends: a regression (a sleeper the factory cannot stop) then fails the test instead
/// of hanging it until the sleep ends.
fn bounded(body: impl std::future::Future<Output = ()>) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(body)));
    runtime.shutdown_background();
    if let Err(panic) = ended {
        std::panic::resume_unwind(panic);
    }
}

/// One pool slot, so that a sleeper holding it would block everything after it.
fn one_slot() -> WasmConfig {
    WasmConfig {
        pool_instances: 1,
        ..config()
    }
}

fn limits(timeout: u64) -> Limits {
    Limits {
        timeout,
        ..Limits::default()
    }
}

/// Runs `sleep` with `params` under a 300 ms timeout, expects the timeout outcome, then checks the
/// slot is free at once: the metrics say so and an `echo` on the same one-slot pool succeeds.
async fn assert_sleep_is_stopped(factory: &WasmFactory, params: serde_json::Value) {
    let sleep = deploy(factory, "sleep").await;
    let echo = deploy(factory, "echo").await;
    let started = Instant::now();
    let outcome = sleep.run_with(params.clone(), limits(300)).await;
    let elapsed = started.elapsed();
    assert_eq!(outcome.status, Status::DeveloperError, "{outcome:?}");
    assert_eq!(error_of(&outcome), messages::timed_out(300));
    assert!(outcome.timed_out);
    assert!(outcome.logs.is_empty(), "{:?}", outcome.logs);
    // Stopped at the deadline, not before it.
    assert!(
        outcome.duration() >= Duration::from_millis(300),
        "{:?}",
        outcome.duration()
    );
    // Interrupted, not abandoned: an abandoned activation is only reported after the grace period.
    assert!(
        elapsed < Duration::from_millis(300) + ABANDON_GRACE,
        "{params}: reported after {elapsed:?}"
    );
    let metrics = factory.metrics();
    assert_eq!(
        metrics.instance_slots_in_use, 0,
        "{params}: slot still held"
    );
    assert_eq!(metrics.activations_running, 0, "{params}: still running");

    let outcome = tokio::time::timeout(SLOT_WAIT_BOUND, echo.run(json!({"after": "sleep"})))
        .await
        .expect("the pool's only slot is free");
    assert_eq!(outcome.status, Status::Success, "{outcome:?}");
    assert_eq!(outcome.result, Some(json!({"after": "sleep"})));
}

#[test]
fn test_sleep_within_the_timeout_obeyed_and_past_it_violated() {
    bounded(async {
        let factory = factory_with(one_slot());
        let sleep = deploy(&factory, "sleep").await;
        let outcome = sleep.run_with(json!({"ms": 50}), limits(1000)).await;
        assert_eq!(outcome.status, Status::Success, "{outcome:?}");
        assert_eq!(outcome.result, Some(json!({"slept_ms": 50})));
        assert!(!outcome.timed_out);
        // The sleep really slept (it is not cut short by the bound on waits).
        assert!(
            outcome.duration() >= Duration::from_millis(50),
            "{:?}",
            outcome.duration()
        );

        // An hour, under a 300 ms timeout.
        assert_sleep_is_stopped(&factory, json!({"ms": 3_600_000})).await;
    });
}

#[test]
fn test_a_loop_of_short_sleeps_is_stopped() {
    bounded(async {
        let factory = factory_with(one_slot());
        // Obeyed: 20 sleeps of 5 ms within a second.
        let sleep = deploy(&factory, "sleep").await;
        let outcome = sleep
            .run_with(json!({"ms": 100, "step_ms": 5}), limits(1000))
            .await;
        assert_eq!(outcome.status, Status::Success, "{outcome:?}");
        assert_eq!(outcome.result, Some(json!({"slept_ms": 100})));

        // Violated: an hour in steps of 10 ms (each returns to wasm, where the epoch deadline stops
        // it), and in steps of a minute (the first one crosses the deadline in the host).
        assert_sleep_is_stopped(&factory, json!({"ms": 3_600_000, "step_ms": 10})).await;
        assert_sleep_is_stopped(&factory, json!({"ms": 3_600_000, "step_ms": 60_000})).await;
    });
}

#[test]
fn test_sleep_with_fuel_and_scratch_is_stopped_at_the_timeout() {
    bounded(async {
        // Fuel on (the wait path sets the host-call fuel) and a scratch directory (the deadline is
        // then checked by the per-tick callback): neither changes how a sleep ends.
        let factory = factory_with(WasmConfig {
            fuel: FuelMode::PerMillisecondOfTimeout(1_000_000),
            scratch: ScratchConfig {
                enabled: true,
                ..ScratchConfig::default()
            },
            ..one_slot()
        });
        let sleep = deploy(&factory, "sleep").await;
        let outcome = sleep.run_with(json!({"ms": 20}), limits(1000)).await;
        assert_eq!(outcome.status, Status::Success, "{outcome:?}");
        assert_eq!(outcome.result, Some(json!({"slept_ms": 20})));
        assert!(outcome.fuel.is_some_and(|fuel| fuel > 0));

        assert_sleep_is_stopped(&factory, json!({"ms": 3_600_000})).await;
    });
}

#[tokio::test]
async fn test_bad_sleep_params_are_application_errors() {
    let factory = factory_with(config());
    let sleep = deploy(&factory, "sleep").await;
    let outcome = sleep.run(json!({"ms": "long"})).await;
    assert_eq!(outcome.status, Status::ApplicationError);
    assert_eq!(
        error_of(&outcome),
        "The parameter \"ms\" must be a non-negative integer."
    );
    let outcome = sleep.run(json!({"ms": 10, "step_ms": 0})).await;
    assert_eq!(outcome.status, Status::ApplicationError);
    assert_eq!(
        error_of(&outcome),
        "The parameter \"step_ms\" must be a positive integer."
    );
}
