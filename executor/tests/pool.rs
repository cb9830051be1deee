//! Pool tests.
//!
//! Scheduling rules (buffer order, eviction order, pause grace, idle removal, prewarms, resume
//! failure, health checks) are tested with [`Recorder`], a test-only factory written here: it runs no
//! code at all, it only records which lifecycle calls the pool made and holds activations until the
//! test releases them. It tests the pool, it does not pretend to be a runtime. Real work runs through
//! the real wasm factory with the example `echo` module.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use executor::action::ExecutableAction;
use executor::clock::{Clock, ManualClock, SystemClock};
use executor::pool::{Completed, HealthCheckConfig, Job, Pool, PoolConfig, PoolFactory, Start};
use factory::outcome::messages;
use factory::{
    ActivationContext, Code, Container, ContainerSpec, Factory, FactoryError, Health, InitDone,
    InitRequest, Limits, Outcome, Purpose, RunRequest, Status, StemCell,
};
use serde_json::json;
use tokio::sync::Semaphore;

// ------------------------------------------------------------------------------------------------
// The recording test factory

/// What the pool asked the factory to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Create { id: u32, purpose: String },
    Init { id: u32 },
    Run { id: u32, activation: String },
    Pause { id: u32 },
    Resume { id: u32 },
    Destroy { id: u32 },
}

#[derive(Debug, Default)]
struct Log {
    calls: Mutex<Vec<Call>>,
}

impl Log {
    fn push(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    fn count(&self, pred: impl Fn(&Call) -> bool) -> usize {
        self.calls().iter().filter(|c| pred(c)).count()
    }
}

/// Behaviour switches of the recording factory.
#[derive(Debug, Default)]
struct Switches {
    /// Runs wait for a permit here when set (released by the test).
    gate: Option<Arc<Semaphore>>,
    fail_resume: AtomicBool,
    fail_init: AtomicBool,
    unhealthy: AtomicBool,
    /// The status runs return.
    developer_error: AtomicBool,
}

#[derive(Debug)]
struct Recorder {
    log: Arc<Log>,
    switches: Arc<Switches>,
    next: AtomicU32,
    stem_cells: Vec<StemCell>,
}

#[derive(Debug)]
struct RecordedContainer {
    id: u32,
    name: String,
    log: Arc<Log>,
    switches: Arc<Switches>,
}

#[async_trait]
impl Container for RecordedContainer {
    fn id(&self) -> &str {
        &self.name
    }
    fn max_concurrency(&self) -> u32 {
        1
    }
    fn can_pause(&self) -> bool {
        true
    }
    async fn init(&self, init: InitRequest) -> Result<InitDone, Box<Outcome>> {
        self.log.push(Call::Init { id: self.id });
        let start = SystemTime::now();
        if self.switches.fail_init.load(Ordering::SeqCst) {
            return Err(Box::new(Outcome {
                init_time: Some(Duration::from_millis(1)),
                ..Outcome::instant_error(Status::DeveloperError, messages::init_failed(""))
            }));
        }
        let _ = init;
        Ok(InitDone {
            start,
            end: start + Duration::from_millis(7),
        })
    }
    async fn run(&self, run: RunRequest) -> Outcome {
        self.log.push(Call::Run {
            id: self.id,
            activation: run.context.activation_id.clone(),
        });
        if let Some(gate) = &self.switches.gate {
            gate.acquire().await.expect("gate open").forget();
        }
        let now = SystemTime::now();
        if self.switches.developer_error.load(Ordering::SeqCst) {
            return Outcome::error(Status::DeveloperError, messages::ABNORMAL_RUN, now, now);
        }
        Outcome::new(Status::Success, run.params, now, now)
    }
    async fn pause(&self) -> Result<(), FactoryError> {
        self.log.push(Call::Pause { id: self.id });
        Ok(())
    }
    async fn resume(&self) -> Result<(), FactoryError> {
        self.log.push(Call::Resume { id: self.id });
        if self.switches.fail_resume.swap(false, Ordering::SeqCst) {
            return Err(FactoryError::Operation {
                operation: "resume",
                id: self.name.clone(),
                reason: "test: resume refused".into(),
            });
        }
        Ok(())
    }
    async fn destroy(&self) -> Result<(), FactoryError> {
        self.log.push(Call::Destroy { id: self.id });
        Ok(())
    }
    async fn health(&self) -> Health {
        if self.switches.unhealthy.load(Ordering::SeqCst) {
            Health::Unhealthy("test: connection refused".into())
        } else {
            Health::Healthy
        }
    }
}

#[async_trait]
impl Factory for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn supports(&self, kind: &str) -> bool {
        kind == "test:kind"
    }
    fn stem_cells(&self) -> Vec<StemCell> {
        self.stem_cells.clone()
    }
    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>, FactoryError> {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let purpose = match spec.purpose {
            Purpose::Cold { namespace, action } => format!("{namespace}/{action}"),
            Purpose::Prewarm => "prewarm".into(),
        };
        self.log.push(Call::Create { id, purpose });
        Ok(Arc::new(RecordedContainer {
            id,
            name: format!("c{id}"),
            log: self.log.clone(),
            switches: self.switches.clone(),
        }))
    }
    async fn health(&self) -> Health {
        Health::Healthy
    }
}

struct Harness {
    pool: Arc<Pool>,
    log: Arc<Log>,
    switches: Arc<Switches>,
    clock: Arc<ManualClock>,
}

async fn harness(user_memory_mb: u64, switches: Switches, stem_cells: Vec<StemCell>) -> Harness {
    let log = Arc::new(Log::default());
    let switches = Arc::new(switches);
    let factory = Arc::new(Recorder {
        log: log.clone(),
        switches: switches.clone(),
        next: AtomicU32::new(0),
        stem_cells,
    });
    let clock = ManualClock::new();
    let config = PoolConfig {
        user_memory_mb,
        health_check: Some(HealthCheckConfig {
            period: Duration::from_secs(3),
            max_fails: 2,
        }),
        ..PoolConfig::default()
    };
    let pool = Pool::start(
        config,
        vec![PoolFactory::containers(factory)],
        clock.clone() as Arc<dyn Clock>,
    )
    .await
    .expect("pool starts");
    Harness {
        pool: Arc::new(pool),
        log,
        switches,
        clock,
    }
}

fn action(name: &str, kind: &str, memory: u32, code: Option<Code>) -> Arc<ExecutableAction> {
    Arc::new(ExecutableAction {
        namespace: "guest".into(),
        name: name.into(),
        revision: Some("1-abc".into()),
        version: "0.0.1".into(),
        kind: kind.into(),
        image: None,
        code,
        main: None,
        limits: Limits {
            timeout: 5_000,
            memory,
            logs: 10,
            concurrency: 1,
        },
        provide_api_key: false,
        parameters: serde_json::Map::new(),
        init_parameters: Vec::new(),
        annotations: Vec::new(),
        executable: true,
    })
}

fn job(action: &Arc<ExecutableAction>, namespace: &str, activation: &str) -> Job {
    Job {
        action: action.clone(),
        namespace: namespace.into(),
        run: RunRequest {
            params: json!({"activation": activation}),
            context: ActivationContext {
                activation_id: activation.into(),
                namespace: namespace.into(),
                action_name: action.action_name(),
                action_version: Some(action.version.clone()),
                transaction_id: "tid".into(),
                api_key: None,
                deadline: SystemTime::now() + Duration::from_secs(5),
            },
            limits: action.limits,
        },
        init_env: BTreeMap::new(),
    }
}

async fn run(pool: &Arc<Pool>, job: Job) -> Completed {
    tokio::time::timeout(Duration::from_secs(30), pool.run(job))
        .await
        .expect("job ends in time")
}

/// Waits (real time, bounded) until `check` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

// ------------------------------------------------------------------------------------------------
// Scheduling rules

#[tokio::test]
async fn test_warm_container_is_reused_for_same_action_and_namespace_only() {
    let h = harness(1024, Switches::default(), Vec::new()).await;
    let hello = action("hello", "test:kind", 256, None);
    let first = run(&h.pool, job(&hello, "guest", "a1")).await;
    assert_eq!(first.start, Start::Cold);
    assert_eq!(first.outcome.status, Status::Success);
    assert_eq!(first.outcome.init_time, Some(Duration::from_millis(7)));
    let second = run(&h.pool, job(&hello, "guest", "a2")).await;
    assert_eq!(second.start, Start::Warm);
    assert_eq!(second.outcome.init_time, None);
    // Another invoking namespace never shares the container.
    let other = run(&h.pool, job(&hello, "alice", "a3")).await;
    assert_eq!(other.start, Start::Cold);
    assert_eq!(
        h.log.calls(),
        vec![
            Call::Create {
                id: 1,
                purpose: "guest/hello".into()
            },
            Call::Init { id: 1 },
            Call::Run {
                id: 1,
                activation: "a1".into()
            },
            Call::Run {
                id: 1,
                activation: "a2".into()
            },
            Call::Create {
                id: 2,
                purpose: "alice/hello".into()
            },
            Call::Init { id: 2 },
            Call::Run {
                id: 2,
                activation: "a3".into()
            },
        ]
    );
    assert_eq!(h.pool.stats().reserved_mb, 512);
}

#[tokio::test]
async fn test_full_pool_buffers_jobs_in_arrival_order() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(
        256,
        Switches {
            gate: Some(gate.clone()),
            ..Switches::default()
        },
        Vec::new(),
    )
    .await;
    let mut running = Vec::new();
    for (name, activation) in [("a", "first"), ("b", "second"), ("c", "third")] {
        let pool = h.pool.clone();
        let job = job(&action(name, "test:kind", 256, None), "guest", activation);
        running.push(tokio::spawn(async move { pool.run(job).await }));
        // Arrival order is the order of the spawns.
        until("job placed or buffered", || {
            let stats = h.pool.stats();
            stats.active as usize + stats.buffered == running.len()
        })
        .await;
    }
    assert_eq!(h.pool.stats().buffered, 2);
    assert_eq!(h.pool.stats().active, 1);
    for _ in 0..3 {
        gate.add_permits(1);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    for handle in running {
        let completed = handle.await.expect("job task");
        assert_eq!(completed.outcome.status, Status::Success);
    }
    let runs: Vec<String> = h
        .log
        .calls()
        .into_iter()
        .filter_map(|call| match call {
            Call::Run { activation, .. } => Some(activation),
            _ => None,
        })
        .collect();
    assert_eq!(runs, vec!["first", "second", "third"]);
    // Each later action evicted the idle container of the one before.
    assert_eq!(h.log.count(|c| matches!(c, Call::Destroy { .. })), 2);
    assert_eq!(h.pool.stats().counters.evictions, 2);
}

#[tokio::test]
async fn test_eviction_takes_the_least_recently_used_idle_container() {
    let h = harness(512, Switches::default(), Vec::new()).await;
    let (a, b, c) = (
        action("a", "test:kind", 256, None),
        action("b", "test:kind", 256, None),
        action("c", "test:kind", 256, None),
    );
    run(&h.pool, job(&a, "guest", "1")).await;
    run(&h.pool, job(&b, "guest", "2")).await;
    // a is used again, so b is now the least recently used.
    h.clock.advance(Duration::from_secs(1));
    run(&h.pool, job(&a, "guest", "3")).await;
    let cold = run(&h.pool, job(&c, "guest", "4")).await;
    assert_eq!(cold.start, Start::Cold);
    until("b destroyed", || {
        h.log.count(|c| matches!(c, Call::Destroy { .. })) == 1
    })
    .await;
    assert!(
        h.log.calls().contains(&Call::Destroy { id: 2 }),
        "{:?}",
        h.log.calls()
    );
    assert_eq!(run(&h.pool, job(&a, "guest", "5")).await.start, Start::Warm);
}

#[tokio::test]
async fn test_action_larger_than_the_pool_is_refused_with_a_whisk_error() {
    let h = harness(256, Switches::default(), Vec::new()).await;
    let big = run(
        &h.pool,
        job(&action("big", "test:kind", 512, None), "guest", "x"),
    )
    .await;
    assert_eq!(big.start, Start::NotStarted);
    assert_eq!(big.outcome.status, Status::WhiskError);
    assert_eq!(
        big.outcome.result,
        Some(json!({"error": messages::RESOURCE_ERROR}))
    );
    let unknown = run(
        &h.pool,
        job(&action("k", "nodejs:20", 256, None), "guest", "y"),
    )
    .await;
    assert_eq!(unknown.start, Start::NotStarted);
    assert!(h.log.calls().is_empty());
}

#[tokio::test]
async fn test_pause_grace_obeyed_and_exceeded_then_resume_on_demand() {
    let h = harness(1024, Switches::default(), Vec::new()).await;
    let hello = action("hello", "test:kind", 256, None);
    run(&h.pool, job(&hello, "guest", "1")).await;
    // Within the grace: not paused.
    h.clock.advance(Duration::from_secs(9));
    h.pool.housekeep().await;
    assert_eq!(h.log.count(|c| matches!(c, Call::Pause { .. })), 0);
    assert_eq!(h.pool.stats().paused, 0);
    // Past it: paused.
    h.clock.advance(Duration::from_secs(2));
    h.pool.housekeep().await;
    until("paused", || h.pool.stats().paused == 1).await;
    assert_eq!(h.log.count(|c| matches!(c, Call::Pause { id: 1 })), 1);
    // A job resumes it and runs warm.
    let warm = run(&h.pool, job(&hello, "guest", "2")).await;
    assert_eq!(warm.start, Start::Warm);
    assert_eq!(h.log.count(|c| matches!(c, Call::Resume { id: 1 })), 1);
    assert_eq!(h.pool.stats().paused, 0);
}

#[tokio::test]
async fn test_idle_timeout_removes_paused_container_and_frees_memory() {
    let h = harness(1024, Switches::default(), Vec::new()).await;
    let hello = action("hello", "test:kind", 256, None);
    run(&h.pool, job(&hello, "guest", "1")).await;
    h.clock.advance(Duration::from_secs(11));
    h.pool.housekeep().await;
    until("paused", || h.pool.stats().paused == 1).await;
    // 10 minutes after the pause, minus a second: kept.
    h.clock.advance(Duration::from_secs(598));
    h.pool.housekeep().await;
    assert_eq!(h.log.count(|c| matches!(c, Call::Destroy { .. })), 0);
    h.clock.advance(Duration::from_secs(2));
    h.pool.housekeep().await;
    until("destroyed", || {
        h.log.count(|c| matches!(c, Call::Destroy { id: 1 })) == 1
    })
    .await;
    assert_eq!(h.pool.stats().reserved_mb, 0);
    assert_eq!(h.pool.stats().counters.idle_removals, 1);
}

#[tokio::test]
async fn test_resume_failure_destroys_the_container_and_requeues_the_job() {
    let h = harness(1024, Switches::default(), Vec::new()).await;
    let hello = action("hello", "test:kind", 256, None);
    run(&h.pool, job(&hello, "guest", "1")).await;
    h.clock.advance(Duration::from_secs(11));
    h.pool.housekeep().await;
    until("paused", || h.pool.stats().paused == 1).await;
    h.switches.fail_resume.store(true, Ordering::SeqCst);
    let again = run(&h.pool, job(&hello, "guest", "2")).await;
    // Never answered with an error: it ran on a new container.
    assert_eq!(again.outcome.status, Status::Success);
    assert_eq!(again.start, Start::Cold);
    until("old container destroyed", || {
        h.log.calls().contains(&Call::Destroy { id: 1 })
    })
    .await;
    assert!(h.log.calls().contains(&Call::Run {
        id: 2,
        activation: "2".into()
    }));
}

#[tokio::test]
async fn test_developer_error_destroys_the_container() {
    let h = harness(1024, Switches::default(), Vec::new()).await;
    let hello = action("hello", "test:kind", 256, None);
    h.switches.developer_error.store(true, Ordering::SeqCst);
    let failed = run(&h.pool, job(&hello, "guest", "1")).await;
    assert_eq!(failed.outcome.status, Status::DeveloperError);
    until("destroyed", || {
        h.log.calls().contains(&Call::Destroy { id: 1 })
    })
    .await;
    h.switches.developer_error.store(false, Ordering::SeqCst);
    assert_eq!(
        run(&h.pool, job(&hello, "guest", "2")).await.start,
        Start::Cold
    );
}

#[tokio::test]
async fn test_init_failure_ends_the_activation_and_the_container() {
    let h = harness(
        1024,
        Switches {
            fail_init: AtomicBool::new(true),
            ..Switches::default()
        },
        Vec::new(),
    )
    .await;
    let hello = action("hello", "test:kind", 256, None);
    let failed = run(&h.pool, job(&hello, "guest", "1")).await;
    assert_eq!(failed.outcome.status, Status::DeveloperError);
    assert_eq!(
        failed.outcome.result,
        Some(json!({"error": "The action failed during initialization"}))
    );
    assert_eq!(failed.outcome.init_time, Some(Duration::from_millis(1)));
    assert_eq!(failed.start, Start::Cold);
    until("destroyed", || {
        h.log.calls().contains(&Call::Destroy { id: 1 })
    })
    .await;
    assert_eq!(h.log.count(|c| matches!(c, Call::Run { .. })), 0);
    assert_eq!(h.pool.stats().reserved_mb, 0);
}

fn stem_cell(count: u32) -> StemCell {
    StemCell {
        kind: "test:kind".into(),
        memory_mb: 256,
        initial_count: count,
        reactive: None,
    }
}

#[tokio::test]
async fn test_prewarm_is_taken_by_a_matching_job_and_replaced() {
    let h = harness(1024, Switches::default(), vec![stem_cell(1)]).await;
    until("prewarm created", || h.pool.stats().prewarmed == 1).await;
    let hello = action("hello", "test:kind", 256, None);
    let first = run(&h.pool, job(&hello, "guest", "1")).await;
    assert_eq!(first.start, Start::Prewarmed);
    assert_eq!(first.outcome.init_time, Some(Duration::from_millis(7)));
    until("replacement prewarm", || h.pool.stats().prewarmed == 1).await;
    assert_eq!(
        h.log
            .count(|c| matches!(c, Call::Create { purpose, .. } if purpose == "prewarm")),
        2
    );
    // Another memory size does not match the stem cell: cold.
    let other = run(
        &h.pool,
        job(&action("big", "test:kind", 512, None), "guest", "2"),
    )
    .await;
    assert_eq!(other.start, Start::Cold);
}

#[tokio::test]
async fn test_failing_health_checks_replace_a_prewarm() {
    let h = harness(1024, Switches::default(), vec![stem_cell(1)]).await;
    until("prewarm created", || h.pool.stats().prewarmed == 1).await;
    h.switches.unhealthy.store(true, Ordering::SeqCst);
    // One failure is tolerated (max_fails 2 here).
    h.pool.housekeep().await;
    assert_eq!(h.log.count(|c| matches!(c, Call::Destroy { .. })), 0);
    h.switches.unhealthy.store(false, Ordering::SeqCst);
    h.pool.housekeep().await;
    h.switches.unhealthy.store(true, Ordering::SeqCst);
    h.pool.housekeep().await;
    assert_eq!(
        h.log.count(|c| matches!(c, Call::Destroy { .. })),
        0,
        "failures must be consecutive"
    );
    h.pool.housekeep().await;
    until("replaced", || {
        h.log.calls().contains(&Call::Destroy { id: 1 })
    })
    .await;
    until("new prewarm", || {
        h.log.count(|c| matches!(c, Call::Create { .. })) == 2
    })
    .await;
    assert_eq!(h.pool.stats().counters.health_removals, 1);
}

#[tokio::test]
async fn test_shutdown_destroys_every_container() {
    let h = harness(1024, Switches::default(), vec![stem_cell(1)]).await;
    until("prewarm created", || h.pool.stats().prewarmed == 1).await;
    run(
        &h.pool,
        job(&action("hello", "test:kind", 256, None), "guest", "1"),
    )
    .await;
    until("replacement prewarm", || h.pool.stats().prewarmed == 1).await;
    h.pool.shutdown(Duration::from_secs(5)).await;
    assert_eq!(h.log.count(|c| matches!(c, Call::Destroy { .. })), 2);
    assert_eq!(h.pool.stats().reserved_mb, 0);
    let refused = run(
        &h.pool,
        job(&action("hello", "test:kind", 256, None), "guest", "2"),
    )
    .await;
    assert_eq!(refused.start, Start::NotStarted);
}

// ------------------------------------------------------------------------------------------------
// The real wasm factory

async fn wasm_pool(user_memory_mb: u64) -> Arc<Pool> {
    let wasm =
        factory::wasm::WasmFactory::new(factory::wasm::WasmConfig::default()).expect("wasm engine");
    let config = PoolConfig {
        user_memory_mb,
        ..PoolConfig::default()
    };
    Arc::new(
        Pool::start(
            config,
            vec![PoolFactory::in_process(Arc::new(wasm))],
            Arc::new(SystemClock),
        )
        .await
        .expect("pool starts"),
    )
}

fn echo() -> Arc<ExecutableAction> {
    let path = ow_action::artifacts::wasm_module("echo").expect("echo module builds");
    let bytes = std::fs::read(path).expect("echo module readable");
    action("echo", "wasm:wasip1", 128, Some(Code::Binary(bytes.into())))
}

#[tokio::test]
async fn test_wasm_echo_runs_cold_then_warm_on_one_container() {
    let pool = wasm_pool(1024).await;
    let echo = echo();
    let first = run(&pool, job(&echo, "guest", "w1")).await;
    assert_eq!(first.outcome.status, Status::Success, "{:?}", first.outcome);
    assert_eq!(first.outcome.result, Some(json!({"activation": "w1"})));
    assert_eq!(first.start, Start::Cold);
    assert!(first.outcome.init_time.is_some());
    let second = run(&pool, job(&echo, "guest", "w2")).await;
    assert_eq!(second.start, Start::Warm);
    assert_eq!(second.outcome.result, Some(json!({"activation": "w2"})));
    assert_eq!(second.outcome.init_time, None);
    let stats = pool.stats();
    // An idle wasm container holds no memory; only running activations do.
    assert_eq!((stats.reserved_mb, stats.warm, stats.active), (0, 1, 0));
}

#[tokio::test]
async fn test_wasm_provisioned_container_is_taken_by_the_first_run_as_a_prewarm() {
    let pool = wasm_pool(1024).await;
    let echo = echo();
    // Another namespace's run compiles and caches the module (and leaves a warm container that the
    // guest namespace may not use).
    let other = run(&pool, job(&echo, "other", "p0")).await;
    assert_eq!(other.start, Start::Cold);

    // An in-process container is a handle: creating it compiles nothing and touches no file (its
    // cost is a bench's business, not a test's).
    tokio::time::timeout(Duration::from_secs(10), pool.provision(&echo))
        .await
        .expect("provision ends")
        .expect("provisioned");
    let stats = pool.stats();
    // Created, not initialised, and holding no memory: only running wasm activations do.
    assert_eq!((stats.prewarmed, stats.reserved_mb), (1, 0));

    let first = run(&pool, job(&echo, "guest", "p1")).await;
    assert_eq!(first.outcome.status, Status::Success, "{:?}", first.outcome);
    assert_eq!(first.outcome.result, Some(json!({"activation": "p1"})));
    assert_eq!(first.start, Start::Prewarmed);
    // This job initialised it.
    assert!(first.outcome.init_time.is_some());
    let stats = pool.stats();
    assert_eq!((stats.prewarmed, stats.warm, stats.reserved_mb), (0, 2, 0));
    assert_eq!(
        (stats.counters.cold_starts, stats.counters.prewarm_starts),
        (1, 1)
    );
    let second = run(&pool, job(&echo, "guest", "p2")).await;
    assert_eq!(second.start, Start::Warm);
}

#[tokio::test]
async fn test_wasm_activations_run_concurrently_within_capacity() {
    // 512 MB / 128 MB: four at once; forty jobs all answered, on one container.
    let pool = wasm_pool(512).await;
    let echo = echo();
    let mut handles = Vec::new();
    for i in 0..40 {
        let pool = pool.clone();
        let job = job(&echo, "guest", &format!("c{i}"));
        handles.push(tokio::spawn(async move { pool.run(job).await }));
    }
    let mut cold = 0;
    for (i, handle) in handles.into_iter().enumerate() {
        let completed = tokio::time::timeout(Duration::from_secs(60), handle)
            .await
            .expect("in time")
            .expect("task");
        assert_eq!(
            completed.outcome.result,
            Some(json!({"activation": format!("c{i}")}))
        );
        cold += usize::from(completed.start == Start::Cold);
    }
    assert_eq!(cold, 1);
    let stats = pool.stats();
    assert_eq!((stats.reserved_mb, stats.active, stats.warm), (0, 0, 1));
    assert_eq!(stats.counters.cold_starts, 1);
}

#[tokio::test]
async fn test_reactive_prewarms_expire_after_ttl_and_follow_cold_starts() {
    let reactive = StemCell {
        reactive: Some(factory::ReactivePrewarm {
            min_count: 0,
            max_count: 2,
            ttl: Duration::from_secs(60),
            threshold: 1,
            increment: 1,
        }),
        ..stem_cell(1)
    };
    let h = harness(2048, Switches::default(), vec![reactive]).await;
    until("prewarm created", || h.pool.stats().prewarmed == 1).await;
    // Younger than the ttl: kept.
    h.clock.advance(Duration::from_secs(59));
    h.pool.housekeep().await;
    assert_eq!(h.pool.stats().prewarmed, 1);
    // Older: removed, and with no cold starts none replaces it (min_count 0).
    h.clock.advance(Duration::from_secs(2));
    h.pool.housekeep().await;
    until("expired prewarm destroyed", || {
        h.log.calls().contains(&Call::Destroy { id: 1 })
    })
    .await;
    assert_eq!(h.pool.stats().prewarmed, 0);
    // Three cold starts of the kind: the next check keeps max_count (2) prewarms.
    for name in ["a", "b", "c"] {
        let cold = run(
            &h.pool,
            job(&action(name, "test:kind", 256, None), "guest", name),
        )
        .await;
        assert_eq!(cold.start, Start::Cold);
    }
    h.pool.housekeep().await;
    until("two prewarms", || h.pool.stats().prewarmed == 2).await;
}
