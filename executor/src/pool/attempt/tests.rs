//! The factory's typed signals as the pool reads them, with the test-only factory of
//! [`crate::pool::testing`]: the reschedule bound ([`factory::ContainerFault::Refused`] from init or
//! run) and the destruction of a container whose logs were lost
//! ([`factory::ContainerFault::LogsLost`]), driven by the fault and not by the notice text. The real
//! Docker path is in `tests/pool_docker.rs`.

use std::sync::Arc;
use std::time::Duration;

use factory::Status;
use factory::outcome::messages;
use serde_json::json;

use super::MAX_RESCHEDULES;
use crate::clock::SystemClock;
use crate::pool::testing::{Misbehaviour, TestFactory, job};
use crate::pool::{Completed, Pool, PoolConfig, PoolCounters, PoolFactory, Start};

/// Runs two jobs, one after the other, on a pool whose first `count` containers misbehave; returns
/// how each ended, the containers created and destroyed, and the pool's counters.
async fn two_jobs(
    misbehaviour: Misbehaviour,
    count: u32,
) -> ([Completed; 2], u32, u32, PoolCounters) {
    let factory = Arc::new(TestFactory::misbehaving(misbehaviour, count));
    let config = PoolConfig {
        health_check: None,
        ..PoolConfig::default()
    };
    let pool = Pool::start(
        config,
        vec![PoolFactory::containers(factory.clone())],
        Arc::new(SystemClock),
    )
    .await
    .expect("pool");
    let bound = Duration::from_secs(10);
    let first = tokio::time::timeout(bound, pool.run(job()))
        .await
        .expect("the first job ends");
    let second = tokio::time::timeout(bound, pool.run(job()))
        .await
        .expect("the second job ends");
    let counters = pool.stats().counters;
    tokio::time::timeout(bound, pool.shutdown(Duration::from_secs(1)))
        .await
        .expect("shutdown ends");
    // Every container the pool made is destroyed by now.
    assert_eq!(factory.destroyed(), factory.created());
    (
        [first, second],
        factory.created(),
        factory.destroyed(),
        counters,
    )
}

#[tokio::test]
async fn test_refused_jobs_are_rescheduled_up_to_the_bound() {
    for refuse in [Misbehaviour::RefuseInit, Misbehaviour::RefuseRun] {
        // Obeyed: three refusals, the fourth container runs the job (and the next job warm).
        let ([completed, _], created, _, counters) = two_jobs(refuse, MAX_RESCHEDULES).await;
        assert_eq!(completed.outcome.status, Status::Success, "{refuse:?}");
        assert_eq!(completed.outcome.result, Some(json!({"n": 1})));
        assert_eq!(completed.start, Start::Cold);
        assert_eq!(created, MAX_RESCHEDULES + 1);
        assert_eq!(counters.reschedules, u64::from(MAX_RESCHEDULES));

        // Violated: one refusal more and the whisk error stands, with its fault.
        let ([completed, next], created, _, counters) = two_jobs(refuse, MAX_RESCHEDULES + 1).await;
        assert_eq!(completed.outcome.status, Status::WhiskError, "{refuse:?}");
        assert_eq!(
            completed.outcome.result,
            Some(json!({"error": messages::RESCHEDULE}))
        );
        assert!(completed.outcome.needs_reschedule());
        assert_eq!(counters.reschedules, u64::from(MAX_RESCHEDULES));
        // The next job is not held against the last refusal: a fresh container runs it.
        assert_eq!(next.outcome.status, Status::Success, "{refuse:?}");
        assert_eq!(created, MAX_RESCHEDULES + 2);
    }
}

#[tokio::test]
async fn test_lost_logs_destroy_the_container_but_the_activation_stands() {
    // The fault: the first job succeeds with its logs as they are, and its container is destroyed,
    // so the second job starts cold on another.
    let ([first, second], created, _, counters) = two_jobs(Misbehaviour::LoseLogs, 1).await;
    assert_eq!(first.outcome.status, Status::Success);
    assert_eq!(first.outcome.result, Some(json!({"n": 1})));
    assert!(first.outcome.logs_lost());
    assert_eq!(first.outcome.logs.len(), 1);
    assert_eq!(second.start, Start::Cold);
    assert_eq!(created, 2);
    assert_eq!(counters.log_failure_removals, 1);

    // The notice text alone is no signal: the container is kept and the second job runs warm.
    let ([first, second], created, _, counters) = two_jobs(Misbehaviour::NoticeOnly, 1).await;
    assert_eq!(first.outcome.status, Status::Success);
    assert_eq!(first.outcome.logs.len(), 1);
    assert_eq!(second.start, Start::Warm);
    assert_eq!(created, 1);
    assert_eq!(counters.log_failure_removals, 0);
}
