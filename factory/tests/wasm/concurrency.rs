//! Many activations at once: more than the pool has slots wait for one, and all succeed; a
//! CPU-bound guest shares its worker; a cancelled activation gives its slot back.

use factory::Status;
use serde_json::json;

use super::*;

/// Activations started at once: well beyond the pool, bounded for the test machine.
const ACTIVATIONS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_many_parallel_activations_on_a_small_pool_all_succeed() {
    let factory = factory_with(config());
    let echo = Arc::new(deploy(&factory, "echo").await);
    let tasks: Vec<_> = (0..ACTIVATIONS)
        .map(|i| {
            let echo = Arc::clone(&echo);
            tokio::spawn(async move { (i, echo.run(json!({"i": i, "pad": "x".repeat(i)})).await) })
        })
        .collect();
    for task in tasks {
        let (i, outcome) = task.await.expect("the activation task");
        assert_eq!(
            outcome.status,
            Status::Success,
            "activation {i}: {:?}",
            outcome.result
        );
        assert_eq!(
            outcome.result,
            Some(json!({"i": i, "pad": "x".repeat(i)})),
            "activation {i}"
        );
    }
    let metrics = factory.metrics();
    assert_eq!(metrics.instance_slots, TEST_POOL);
    assert_eq!(metrics.instance_slots_in_use, 0);
    assert_eq!(metrics.activations_running, 0);
    assert_eq!(metrics.activations_total, ACTIVATIONS as u64);
    assert_eq!(
        metrics.pool_core_instances, 0,
        "every instance went back to the pool"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_full_pool_makes_work_wait_not_fail() {
    // One slot: a spinning action holds it until its timeout while another waits, then runs.
    let factory = factory_with(WasmConfig {
        pool_instances: 1,
        ..config()
    });
    let spin = deploy(&factory, "spin").await;
    let hello = deploy(&factory, "hello").await;
    let limits = Limits {
        timeout: 300,
        ..Limits::default()
    };
    let (spun, greeted) = tokio::join!(spin.run_with(json!({}), limits), async {
        // Let the spin take the slot first.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        hello.run(json!({"name": "patient"})).await
    });
    assert!(spun.timed_out);
    assert_eq!(greeted.status, Status::Success, "{greeted:?}");
    assert_eq!(greeted.result, Some(json!({"greeting": "Hello, patient!"})));
    assert!(
        greeted.start >= spun.end,
        "the waiting activation started only once the slot was free"
    );
}

/// A CPU-bound guest gives its worker back at every epoch tick: on a runtime with a single thread,
/// a timer and another activation still get their turn while it spins, and finish long before it
/// is stopped at its timeout.
#[tokio::test(flavor = "current_thread")]
async fn test_a_spinning_guest_shares_its_worker() {
    let factory = factory_with(config());
    let spin = Arc::new(deploy(&factory, "spin").await);
    let echo = deploy(&factory, "echo").await;
    let limits = Limits {
        timeout: 3_000,
        ..Limits::default()
    };
    let spinning = {
        let spin = Arc::clone(&spin);
        tokio::spawn(async move { spin.run_with(json!({}), limits).await })
    };
    // The timer fires while the guest spins (a guest holding the thread would delay it to its
    // timeout), then a second activation runs beside it.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(factory.metrics().activations_running, 1, "the spin runs");
    let echoed = echo.run(json!({"beside": "spin"})).await;
    assert_eq!(echoed.status, Status::Success, "{:?}", echoed.result);
    assert_eq!(echoed.result, Some(json!({"beside": "spin"})));
    assert!(!spinning.is_finished(), "the spin was still running");
    let spun = spinning.await.expect("the spin task");
    assert!(spun.timed_out, "{spun:?}");
}

/// Cancelling an activation (its caller went away) unwinds the guest at its next tick and gives
/// its pool slot back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_a_cancelled_activation_frees_its_slot() {
    let factory = factory_with(config());
    let spin = Arc::new(deploy(&factory, "spin").await);
    let running = {
        let spin = Arc::clone(&spin);
        tokio::spawn(async move { spin.run(json!({})).await })
    };
    let started = std::time::Instant::now();
    while factory.metrics().activations_running == 0 {
        assert!(started.elapsed().as_secs() < 10, "the spin never started");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    running.abort();
    assert!(running.await.is_err_and(|error| error.is_cancelled()));
    let metrics = factory.metrics();
    assert_eq!(metrics.activations_running, 0);
    assert_eq!(metrics.instance_slots_in_use, 0);
    assert_eq!(metrics.pool_core_instances, 0, "the instance went back");
    // The slot is usable again.
    let echo = deploy(&factory, "echo").await;
    assert_eq!(echo.run(json!({})).await.status, Status::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_the_bench_probes_give_every_slot_back() {
    // `instantiate_only` and `bare_instantiation` take no permit: each must return its slot on
    // drop, or the pool runs dry within TEST_POOL calls.
    let factory = factory_with(config());
    let (module, _) = factory
        .load(&example_code("echo"), None)
        .expect("echo loads");
    let bare = factory
        .bare_instantiation(&module)
        .expect("echo links with trapping imports");
    for round in 0..3 * TEST_POOL {
        factory
            .instantiate_only(&module)
            .await
            .unwrap_or_else(|e| panic!("instantiate_only, round {round}: {e}"));
        bare.instantiate()
            .await
            .unwrap_or_else(|e| panic!("bare instantiation, round {round}: {e}"));
    }
    assert_eq!(
        factory.metrics().pool_core_instances,
        0,
        "every instance went back to the pool"
    );
}
