//! Slots reset when the worker goes idle (`reset_idle_slots` as the runtime's park hook): a
//! finished store of a small instance waits on its worker within its bounds, an activation never
//! waits for it, the next activation in its slot still starts from the module's own memory, and a
//! large instance is reset at once.
//!
//! The only runtime with the hook in this binary is the one below; every other test resets inline
//! and checks that no instance is left once its activations returned.

use std::time::Instant;

use factory::Status;
use factory::wasm::idle_reset::{MAX_KEPT_MEMORY_BYTES, MAX_KEPT_PER_THREAD, deferred_resets};
use factory::wasm::reset_idle_slots;
use serde_json::json;

use super::*;

/// Activations in one burst, with no idle moment between them: more than a worker may keep.
const BURST: usize = 10;

#[test]
fn test_a_worker_resets_finished_slots_when_it_goes_idle() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .on_thread_park(reset_idle_slots)
        .build()
        .expect("a tokio runtime");
    // One permit: every activation of the burst needs a slot while earlier ones still wait for
    // their reset, which only the pool's reserve for them can give.
    let factory = factory_with(WasmConfig {
        pool_instances: 1,
        ..config()
    });
    let visits = Arc::new(rt.block_on(deploy(&factory, "visits")));
    // Idle now: the worker parks, which marks it as one that resets idle slots.
    std::thread::sleep(Duration::from_millis(50));

    let burst = rt.spawn({
        let visits = Arc::clone(&visits);
        let factory = factory.clone();
        async move {
            for round in 0..BURST {
                let outcome = visits.run(json!({})).await;
                assert_eq!(
                    outcome.status,
                    Status::Success,
                    "round {round}: {outcome:?}"
                );
                assert_eq!(
                    outcome.result,
                    Some(json!({"visits": 1})),
                    "round {round}: the memory of an earlier activation was seen"
                );
            }
            // No idle moment since the last answer: its store still holds its slot.
            factory.metrics().pool_core_instances
        }
    });
    let kept = rt.block_on(burst).expect("the burst");
    assert!(
        (1..=MAX_KEPT_PER_THREAD as u64).contains(&kept),
        "{kept} finished instances kept after a burst of {BURST}"
    );

    let until = Instant::now() + Duration::from_secs(10);
    while factory.metrics().pool_core_instances > 0 || deferred_resets() > 0 {
        assert!(
            Instant::now() < until,
            "the idle worker did not reset its slots: {:?}",
            factory.metrics()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let metrics = factory.metrics();
    assert_eq!(metrics.activations_total, BURST as u64);
    assert_eq!(metrics.instance_slots_in_use, 0);

    // The slots reset while idle serve clean instances.
    for round in 0..3 {
        let outcome = rt.block_on(visits.run(json!({})));
        assert_eq!(
            outcome.result,
            Some(json!({"visits": 1})),
            "after the idle reset, round {round}: {outcome:?}"
        );
    }

    // A large instance is reset at once, even on a worker that goes idle.
    let hog = rt.block_on(deploy(&factory, "hog"));
    let large_mb = MAX_KEPT_MEMORY_BYTES / (1 << 20) * 2;
    let large = rt.spawn({
        let factory = factory.clone();
        async move {
            let outcome = hog.run(json!({"max_mb": large_mb})).await;
            (outcome, factory.metrics().pool_core_instances)
        }
    });
    let (outcome, left) = rt.block_on(large).expect("the large activation");
    assert_eq!(
        outcome.result,
        Some(json!({"allocated_mb": large_mb})),
        "{outcome:?}"
    );
    assert_eq!(left, 0, "the {large_mb} MiB instance was kept for later");
}
