//! Many activations at once: more than the pool has slots wait for one, and all succeed.

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
