//! The pool's Docker-style rules with the real Docker factory and the real daemon.
//!
//! **Every test here needs a running Docker daemon** (`DOCKER_HOST` or `/var/run/docker.sock`) and
//! fails, never skips, when none answers. The runtime image `wasm-invoker/action-proxy:test`
//! (factory/proxy) is built by `scripts/build-test-image` when it is missing; the runtimes manifest
//! is the Docker factory's test manifest (kind `native:test`, one reactive 128 MB stem cell); the
//! actions are `actions/`'s examples built as static native executables (and `echo` as a wasm
//! module for the wasm factory). Each test uses its own container name prefix and removes what it
//! created even when it fails. Containers are reached on the local bridge; nothing leaves the host.
//!
//! Which container ran an activation is read from the `env` example's result: Docker sets
//! `HOSTNAME` to the container's short id.
//!
//! Every await is bounded: jobs by [`JOB_BOUND`], calls to the daemon and the pool's start and
//! shutdown by [`CALL_BOUND`], waits for a condition by their own loop.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, NetworkCreateRequest, NetworkDisconnectRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use executor::action::ExecutableAction;
use executor::clock::SystemClock;
use executor::pool::{Completed, Job, Pool, PoolConfig, PoolFactory, ProvisionError, Start};
use factory::docker::{DockerConfig, DockerFactory, INSTANCE_LABEL, Manifest};
use factory::logs::LOG_COLLECTION_ERROR;
use factory::outcome::messages;
use factory::{
    ActivationContext, Code, ContainerSpec, Factory, FactoryError, Limits, Purpose, RunRequest,
    Status,
};
use serde_json::{Value, json};

#[path = "../../factory/tests/docker/socket_proxy.rs"]
mod socket_proxy;
use socket_proxy::SocketProxy;
#[path = "../../factory/tests/docker/daemon.rs"]
mod docker_daemon;
use docker_daemon::{IMAGE, daemon};

const KIND: &str = "native:test";
/// Memory of actions that must not take the manifest's 128 MB prewarm.
const COLD_MB: u32 = 256;
/// Memory of the manifest's stem cell.
const PREWARM_MB: u32 = 128;
/// Bound of every job (creation, init and run of a small native action).
const JOB_BOUND: Duration = Duration::from_secs(60);
/// Bound of one call to the daemon, of the pool's start (which cleans up leftovers) and of its
/// shutdown (which destroys every container). A liveness bound, not a measurement.
const CALL_BOUND: Duration = Duration::from_secs(60);
/// Bound of a job refused because the daemon is unreachable: far below an action's timeout, so a
/// job that waited for the daemon (or sat in the buffer) fails the test. A liveness bound, not a
/// measurement.
const REFUSAL_BOUND: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------------------------------------
// The daemon, the factory, the pool

/// Awaits `future` for at most `bound`; fails the test, naming `what`, when it takes longer.
async fn within<T>(what: &str, bound: Duration, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(bound, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not end within {bound:?}"),
    }
}

fn manifest() -> Manifest {
    let path: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../factory/tests/docker/runtimes.json");
    Manifest::from_file(&path).expect("the Docker factory's test manifest")
}

fn prefix(test: &str) -> String {
    format!("wskpool{}{test}", std::process::id())
}

/// Removes every container of its factory's prefix when dropped, also after a failed assertion.
struct Cleanup(Arc<DockerFactory>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let factory = self.0.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                // The timer must be made inside the runtime: `block_on(async { .. })`.
                let _ = runtime
                    .block_on(async { tokio::time::timeout(CALL_BOUND, factory.cleanup()).await });
            }
        })
        .join();
    }
}

/// A factory with the test's own prefix on the local daemon, and its cleanup.
async fn docker_factory(test: &str) -> (Arc<DockerFactory>, Cleanup) {
    docker_factory_with(DockerConfig {
        name_prefix: prefix(test),
        ..DockerConfig::default()
    })
    .await
}

async fn docker_factory_with(config: DockerConfig) -> (Arc<DockerFactory>, Cleanup) {
    let factory = DockerFactory::new(config, manifest());
    within(
        "the cleanup of an earlier run",
        CALL_BOUND,
        factory.cleanup(),
    )
    .await
    .expect("cleanup of an earlier run");
    let cleanup = Cleanup(factory.clone());
    (factory, cleanup)
}

/// Pool settings for these tests: no pause unless a test shortens the grace, no TCP health checks
/// (a test that cuts a container off must see the pool's reaction to the run, not to a probe).
fn config() -> PoolConfig {
    PoolConfig {
        user_memory_mb: 1024,
        pause_grace: Duration::from_secs(3600),
        housekeeping_interval: Duration::from_millis(100),
        health_check: None,
        ..PoolConfig::default()
    }
}

async fn pool(config: PoolConfig, factories: Vec<PoolFactory>) -> Arc<Pool> {
    let start = Pool::start(config, factories, Arc::new(SystemClock));
    Arc::new(
        within("the pool's start", CALL_BOUND, start)
            .await
            .expect("pool starts"),
    )
}

/// Stops the pool (5 s grace), bounded.
async fn shutdown(pool: &Pool) {
    within(
        "the pool's shutdown",
        CALL_BOUND,
        pool.shutdown(Duration::from_secs(5)),
    )
    .await;
}

fn action(name: &str, kind: &str, memory: u32, code: Code) -> Arc<ExecutableAction> {
    Arc::new(ExecutableAction {
        namespace: "guest".into(),
        name: name.into(),
        revision: Some("1-abc".into()),
        version: "0.0.1".into(),
        kind: kind.into(),
        image: None,
        code: Some(code),
        main: None,
        limits: Limits {
            timeout: 3_000,
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

fn native(name: &str, memory: u32) -> Arc<ExecutableAction> {
    let path =
        ow_action::artifacts::native_binary(name).expect("the example actions build natively");
    let bytes = std::fs::read(path).expect("read the action");
    action(name, KIND, memory, Code::Binary(bytes.into()))
}

fn wasm_echo() -> Arc<ExecutableAction> {
    let path = ow_action::artifacts::wasm_module("echo").expect("echo module builds");
    let bytes = std::fs::read(path).expect("echo module readable");
    action("echo", "wasm:wasip1", 128, Code::Binary(bytes.into()))
}

fn job(action: &Arc<ExecutableAction>, params: Value) -> Job {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    Job {
        action: action.clone(),
        namespace: "guest".into(),
        run: RunRequest {
            params,
            context: ActivationContext {
                activation_id: format!("{nanos:032x}"),
                namespace: "guest".into(),
                action_name: action.action_name(),
                action_version: Some(action.version.clone()),
                transaction_id: "tid-pool-docker".into(),
                api_key: None,
                deadline: SystemTime::now() + action.limits.timeout_duration(),
            },
            limits: action.limits,
        },
        init_env: BTreeMap::new(),
    }
}

async fn run(pool: &Pool, job: Job) -> Completed {
    tokio::time::timeout(JOB_BOUND, pool.run(job))
        .await
        .expect("the job ends within its bound")
}

/// The container that ran an `env` activation (its short id), after checking it succeeded.
fn ran_on(completed: &Completed) -> String {
    assert_eq!(
        completed.outcome.status,
        Status::Success,
        "{:?}",
        completed.outcome
    );
    completed
        .outcome
        .result
        .as_ref()
        .and_then(|result| result.get("HOSTNAME"))
        .and_then(Value::as_str)
        .expect("env returns HOSTNAME")
        .to_string()
}

/// Waits (real time, bounded) until `check` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Containers of `prefix` whose name contains `part`, as (name, id); stopped ones included.
async fn containers(docker: &Docker, prefix: &str, part: &str) -> Vec<(String, String)> {
    let mut filters = std::collections::HashMap::new();
    filters.insert("name".to_string(), vec![prefix.to_string()]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    within(
        "listing containers",
        CALL_BOUND,
        docker.list_containers(Some(options)),
    )
    .await
    .expect("list containers")
    .into_iter()
    .filter_map(|summary| {
        let name = summary.names?.first()?.trim_start_matches('/').to_string();
        let id = summary.id?;
        (name.starts_with(prefix) && name.contains(part)).then_some((name, id))
    })
    .collect()
}

/// Waits (real time, bounded) until the daemon lists exactly `count` containers of `prefix` whose
/// name contains `part`; returns them.
async fn until_containers(
    docker: &Docker,
    prefix: &str,
    part: &str,
    count: usize,
) -> Vec<(String, String)> {
    for _ in 0..600 {
        let found = containers(docker, prefix, part).await;
        if found.len() == count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "timed out waiting for {count} containers {prefix}*{part}*: {:?}",
        containers(docker, prefix, part).await
    );
}

/// A bridge network of the test's own, removed when dropped (drop it after the containers on it).
struct Network {
    name: String,
}

impl Network {
    async fn create(docker: &Docker, name: String) -> Self {
        let _ = within(
            "removing an old network",
            CALL_BOUND,
            docker.remove_network(&name),
        )
        .await;
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            ..NetworkCreateRequest::default()
        };
        within(
            "creating the network",
            CALL_BOUND,
            docker.create_network(request),
        )
        .await
        .expect("create the test network");
        Self { name }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                && let Ok(docker) = Docker::connect_with_defaults()
            {
                let _ = runtime.block_on(async {
                    tokio::time::timeout(CALL_BOUND, docker.remove_network(&name)).await
                });
            }
        })
        .join();
    }
}

async fn paused(docker: &Docker, id: &str) -> bool {
    within("inspecting", CALL_BOUND, docker.inspect_container(id, None))
        .await
        .expect("inspect")
        .state
        .and_then(|state| state.paused)
        .unwrap_or(false)
}

// ------------------------------------------------------------------------------------------------
// Scheduling on real containers

#[tokio::test]
async fn test_cold_start_then_warm_reuse_on_the_same_container() {
    let docker = daemon().await;
    let (factory, _cleanup) = docker_factory("warm").await;
    let pool = pool(config(), vec![PoolFactory::containers(factory)]).await;
    let env = native("env", COLD_MB);

    let first = run(&pool, job(&env, json!({}))).await;
    assert_eq!(first.start, Start::Cold);
    assert!(first.outcome.init_time.is_some());
    let second = run(&pool, job(&env, json!({}))).await;
    assert_eq!(second.start, Start::Warm);
    assert_eq!(second.outcome.init_time, None);
    assert_eq!(ran_on(&first), ran_on(&second));

    let named = containers(&docker, &prefix("warm"), "_guest_env").await;
    assert_eq!(named.len(), 1, "{named:?}");
    assert!(named[0].1.starts_with(&ran_on(&first)));
    let counters = pool.stats().counters;
    assert_eq!((counters.cold_starts, counters.warm_starts), (1, 1));

    shutdown(&pool).await;
    until_containers(&docker, &prefix("warm"), "", 0).await;
}

#[tokio::test]
async fn test_prewarm_is_taken_by_a_matching_job_and_topped_up() {
    let docker = daemon().await;
    let (factory, _cleanup) = docker_factory("prewarm").await;
    let pool = pool(config(), vec![PoolFactory::containers(factory)]).await;
    until("the initial prewarm", || pool.stats().prewarmed == 1).await;
    let stem = until_containers(&docker, &prefix("prewarm"), "_prewarm_", 1).await;

    // Same kind and memory as the stem cell: it takes the prewarm.
    let env = native("env", PREWARM_MB);
    let taken = run(&pool, job(&env, json!({}))).await;
    assert_eq!(taken.start, Start::Prewarmed);
    assert!(taken.outcome.init_time.is_some());
    assert!(stem[0].1.starts_with(&ran_on(&taken)));

    // A replacement was started at once.
    until("the replacement prewarm", || pool.stats().prewarmed == 1).await;
    let replacement = until_containers(&docker, &prefix("prewarm"), "_prewarm_", 2).await;
    assert!(
        replacement
            .iter()
            .any(|(_, id)| id != &stem[0].1 && !id.starts_with(&ran_on(&taken))),
        "{replacement:?}"
    );
    let counters = pool.stats().counters;
    assert_eq!((counters.prewarm_starts, counters.cold_starts), (1, 0));

    // Another memory size does not take it.
    let other = run(&pool, job(&native("env", COLD_MB), json!({}))).await;
    assert_eq!(other.start, Start::Cold);
    assert_eq!(pool.stats().prewarmed, 1);
    shutdown(&pool).await;
}

#[tokio::test]
async fn test_provisioned_container_exists_before_the_first_run_and_serves_it() {
    let docker = daemon().await;
    let (factory, _cleanup) = docker_factory("provision").await;
    let pool = pool(config(), vec![PoolFactory::containers(factory)]).await;
    until("the initial prewarm", || pool.stats().prewarmed == 1).await;
    let reserved = pool.stats().reserved_mb;

    // A memory size with no stem cell: when provision returns, the container runs on the daemon
    // and holds its memory.
    let env = native("env", COLD_MB);
    within("the provisioning", CALL_BOUND, pool.provision(&env))
        .await
        .expect("provisioned");
    let stats = pool.stats();
    assert_eq!(stats.prewarmed, 2);
    assert_eq!(stats.reserved_mb, reserved + u64::from(COLD_MB));
    let made = containers(&docker, &prefix("provision"), "_prewarm_").await;
    assert_eq!(made.len(), 2, "{made:?}");

    // The first run takes it and initialises it: no cold start, no new container.
    let first = run(&pool, job(&env, json!({}))).await;
    assert_eq!(first.start, Start::Prewarmed);
    assert!(first.outcome.init_time.is_some());
    let host = ran_on(&first);
    assert!(made.iter().any(|(_, id)| id.starts_with(&host)), "{made:?}");
    let stats = pool.stats();
    assert_eq!((stats.prewarmed, stats.warm), (1, 1));
    assert_eq!(stats.counters.cold_starts, 0);
    assert_eq!(containers(&docker, &prefix("provision"), "").await.len(), 2);
    shutdown(&pool).await;
}

#[tokio::test]
async fn test_provisioning_a_blackbox_whose_image_cannot_be_pulled_is_a_developer_error() {
    let _docker = daemon().await;
    let (factory, _cleanup) = docker_factory("pullfail").await;
    let pool = pool(config(), vec![PoolFactory::containers(factory)]).await;
    until("the initial prewarm", || pool.stats().prewarmed == 1).await;
    let before = pool.stats();

    // The registry is 127.0.0.1:1, where nothing listens: the pull fails at once.
    let image = "127.0.0.1:1/wasm-invoker/no-such-image";
    let mut blackbox = (*native("env", COLD_MB)).clone();
    blackbox.kind = "blackbox".into();
    blackbox.image = Some(image.into());
    let error = within(
        "provisioning a blackbox of an image that cannot be pulled",
        REFUSAL_BOUND,
        pool.provision(&blackbox),
    )
    .await
    .expect_err("the image cannot be pulled");
    match &error {
        ProvisionError::Create {
            factory: "docker",
            source: FactoryError::BlackboxStart { message },
        } => assert_eq!(
            message,
            &format!("Failed to pull container image '{image}'.")
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(error.status(), Status::DeveloperError);
    // Its memory was given back.
    let after = pool.stats();
    assert_eq!(
        (after.reserved_mb, after.prewarmed, after.starting),
        (before.reserved_mb, before.prewarmed, before.starting)
    );
    shutdown(&pool).await;
}

#[tokio::test]
async fn test_idle_container_is_paused_after_the_grace_and_resumed_for_a_run() {
    let docker = daemon().await;
    let (factory, _cleanup) = docker_factory("pause").await;
    let config = PoolConfig {
        pause_grace: Duration::from_millis(500),
        ..config()
    };
    let pool = pool(config, vec![PoolFactory::containers(factory)]).await;
    let env = native("env", COLD_MB);

    let first = run(&pool, job(&env, json!({}))).await;
    let host = ran_on(&first);
    // `paused` also counts containers still pausing; `pauses` only finished ones.
    until("the pause", || pool.stats().counters.pauses == 1).await;
    let named = containers(&docker, &prefix("pause"), "_guest_env").await;
    assert_eq!(named.len(), 1, "{named:?}");
    assert!(paused(&docker, &named[0].1).await);

    let resumed = run(&pool, job(&env, json!({}))).await;
    assert_eq!(resumed.start, Start::Warm);
    assert_eq!(ran_on(&resumed), host);
    assert!(pool.stats().counters.pauses >= 1);
    shutdown(&pool).await;
}

#[tokio::test]
async fn test_developer_error_destroys_the_container_and_the_next_run_is_cold() {
    let docker = daemon().await;
    let (factory, _cleanup) = docker_factory("garbage").await;
    let pool = pool(config(), vec![PoolFactory::containers(factory)]).await;
    let garbage = native("garbage", COLD_MB);

    let failed = run(&pool, job(&garbage, json!({}))).await;
    assert_eq!(failed.start, Start::Cold);
    assert_eq!(failed.outcome.status, Status::DeveloperError);
    assert_eq!(
        failed.outcome.result,
        Some(json!({"error": messages::NOT_A_DICTIONARY_OR_ARRAY}))
    );
    // The container goes (asynchronously) ...
    until_containers(&docker, &prefix("garbage"), "_guest_garbage", 0).await;
    assert_eq!(pool.stats().warm, 0);

    // ... and the next run of the same action gets a fresh one.
    let again = run(&pool, job(&garbage, json!({}))).await;
    assert_eq!(again.start, Start::Cold);
    assert_eq!(again.outcome.status, Status::DeveloperError);
    assert_eq!(pool.stats().counters.cold_starts, 2);
    shutdown(&pool).await;
}

// ------------------------------------------------------------------------------------------------
// Leftovers of an earlier run

/// Containers a test made by hand, removed (bounded) when dropped, also after a failed assertion.
struct Handmade {
    ids: Vec<String>,
}

impl Drop for Handmade {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut self.ids);
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                && let Ok(docker) = Docker::connect_with_defaults()
            {
                for id in ids {
                    let options = RemoveContainerOptionsBuilder::new().force(true).build();
                    let _ = runtime.block_on(async {
                        tokio::time::timeout(
                            CALL_BOUND,
                            docker.remove_container(&id, Some(options)),
                        )
                        .await
                    });
                }
            }
        })
        .join();
    }
}

/// Creates and starts a container of the test image named `name` with `labels`, as another
/// invoker (or some other user of the daemon) would have; returns its id.
async fn start_by_hand(docker: &Docker, name: &str, labels: HashMap<String, String>) -> String {
    let options = RemoveContainerOptionsBuilder::new().force(true).build();
    let _ = within(
        "removing an old container",
        CALL_BOUND,
        docker.remove_container(name, Some(options)),
    )
    .await;
    let options = CreateContainerOptionsBuilder::new().name(name).build();
    let body = ContainerCreateBody {
        image: Some(IMAGE.into()),
        labels: Some(labels),
        ..ContainerCreateBody::default()
    };
    let id = within(
        "creating a container",
        CALL_BOUND,
        docker.create_container(Some(options), body),
    )
    .await
    .expect("create a container by hand")
    .id;
    within(
        "starting a container",
        CALL_BOUND,
        docker.start_container(&id, None),
    )
    .await
    .expect("start a container by hand");
    id
}

/// Whether the daemon still has container `id`, and whether it runs.
async fn state_of(docker: &Docker, id: &str) -> Option<bool> {
    let inspected = within("inspecting", CALL_BOUND, docker.inspect_container(id, None)).await;
    match inspected {
        Ok(info) => Some(info.state.and_then(|state| state.running) == Some(true)),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => None,
        Err(error) => panic!("inspect {id}: {error}"),
    }
}

#[tokio::test]
async fn test_pool_start_removes_this_invokers_leftovers_and_spares_the_rest() {
    let docker = daemon().await;
    let test_prefix = prefix("leftover");
    // An earlier run of this invoker (same prefix) left a running and a paused container behind:
    // its factory made them, then went away without destroying them.
    let earlier = DockerFactory::new(
        DockerConfig {
            name_prefix: test_prefix.clone(),
            ..DockerConfig::default()
        },
        manifest(),
    );
    let _earlier_cleanup = Cleanup(earlier.clone());
    let spec = ContainerSpec {
        kind: KIND.into(),
        image: None,
        memory_mb: COLD_MB,
        purpose: Purpose::Cold {
            namespace: "guest".into(),
            action: "leftover".into(),
        },
    };
    let mut leftovers = Vec::new();
    for paused in [false, true] {
        let container = within(
            "creating a leftover",
            CALL_BOUND,
            earlier.create(spec.clone()),
        )
        .await
        .expect("create a leftover");
        if paused {
            within("pausing a leftover", CALL_BOUND, container.pause())
                .await
                .expect("pause a leftover");
        }
        leftovers.push(container.id().to_string());
    }
    // Not this invoker's: another invoker's (its own label value and prefix), and one with our
    // prefix in its name but no label at all.
    let other_prefix = prefix("leftoverother");
    let unrelated = Handmade {
        ids: vec![
            start_by_hand(
                &docker,
                &format!("{other_prefix}_1_guest_theirs"),
                HashMap::from([(INSTANCE_LABEL.to_string(), other_prefix.clone())]),
            )
            .await,
            start_by_hand(
                &docker,
                &format!("{test_prefix}_99_unlabelled"),
                HashMap::new(),
            )
            .await,
        ],
    };
    for id in leftovers.iter().chain(&unrelated.ids) {
        assert!(
            state_of(&docker, id).await.is_some(),
            "{id} exists before the start"
        );
    }

    // The invoker restarts: a new factory with the same prefix, and nobody calls cleanup() but
    // the pool's start.
    let factory = DockerFactory::new(
        DockerConfig {
            name_prefix: test_prefix.clone(),
            ..DockerConfig::default()
        },
        manifest(),
    );
    let _cleanup = Cleanup(factory.clone());
    let pool = pool(config(), vec![PoolFactory::containers(factory)]).await;

    // Start returns after the cleanup: the leftovers are gone at once ...
    for id in &leftovers {
        assert_eq!(state_of(&docker, id).await, None, "leftover {id} removed");
    }
    // ... and what is not this invoker's still runs.
    for id in &unrelated.ids {
        assert_eq!(
            state_of(&docker, id).await,
            Some(true),
            "unrelated {id} spared"
        );
    }
    // The new pool works on its own containers.
    let env = native("env", COLD_MB);
    let fresh = run(&pool, job(&env, json!({}))).await;
    assert_eq!(fresh.start, Start::Cold);
    assert!(!leftovers.iter().any(|id| id.starts_with(&ran_on(&fresh))));
    shutdown(&pool).await;
    drop(unrelated);
}

// ------------------------------------------------------------------------------------------------
// Containers that fail the pool

#[tokio::test]
async fn test_unreachable_resumed_container_is_destroyed_and_the_job_rescheduled() {
    let docker = daemon().await;
    // Its own network: the address the cut-off container frees is taken by no other test's
    // container before the run below tries it.
    let network = Network::create(&docker, prefix("resched")).await;
    let (factory, _cleanup) = docker_factory_with(DockerConfig {
        name_prefix: prefix("resched"),
        network: network.name.clone(),
        ..DockerConfig::default()
    })
    .await;
    let config = PoolConfig {
        pause_grace: Duration::from_millis(500),
        ..config()
    };
    let pool = pool(config, vec![PoolFactory::containers(factory)]).await;
    let env = native("env", COLD_MB);

    let first = run(&pool, job(&env, json!({}))).await;
    let host = ran_on(&first);
    let named = containers(&docker, &prefix("resched"), "_guest_env").await;
    assert_eq!(named.len(), 1, "{named:?}");
    // Cut the container off its network: it still pauses and resumes, but cannot be reached.
    let disconnect = docker.disconnect_network(
        &network.name,
        NetworkDisconnectRequest {
            container: named[0].1.clone(),
            force: Some(true),
        },
    );
    within("disconnecting the container", CALL_BOUND, disconnect)
        .await
        .expect("disconnect the container");
    until("the pause", || pool.stats().counters.pauses == 1).await;

    // The run after the resume cannot reach it: never answered with that, run elsewhere instead.
    let moved = run(&pool, job(&env, json!({}))).await;
    assert_eq!(moved.start, Start::Cold);
    assert_ne!(ran_on(&moved), host);
    let counters = pool.stats().counters;
    assert_eq!((counters.reschedules, counters.cold_starts), (1, 2));
    // The unreachable container is destroyed; the new one stays.
    for _ in 0..600 {
        let left = containers(&docker, &prefix("resched"), "_guest_env").await;
        if left.len() == 1 {
            assert!(left[0].1.starts_with(&ran_on(&moved)), "{left:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = containers(&docker, &prefix("resched"), "_guest_env").await;
    assert_eq!(left.len(), 1, "{left:?}");
    shutdown(&pool).await;
}

#[tokio::test]
async fn test_failed_log_collection_destroys_the_container_after_a_success() {
    let docker = daemon().await;
    // The pool's factory reaches the daemon through the proxy; the cleanup goes direct.
    let (_direct, _cleanup) = docker_factory("logs").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("docker.sock");
    let mut proxy = SocketProxy::start(&socket);
    let factory = DockerFactory::new(
        DockerConfig {
            host: Some(format!("unix://{}", socket.display())),
            name_prefix: prefix("logs"),
            // Through the Engine API, which the cut takes away (the json-file needs no daemon).
            log_files: false,
            ..DockerConfig::default()
        },
        manifest(),
    );
    let pool = pool(config(), vec![PoolFactory::containers(factory)]).await;
    let env = native("env", COLD_MB);
    let first = run(&pool, job(&env, json!({}))).await;
    let host = ran_on(&first);

    // The runtime answers but its logs cannot be read: the activation keeps its result and its
    // logs end with the notice ...
    proxy.stop();
    let partial = run(&pool, job(&env, json!({}))).await;
    assert_eq!(partial.start, Start::Warm);
    assert_eq!(ran_on(&partial), host);
    assert!(
        partial
            .outcome
            .logs
            .last()
            .is_some_and(|line| line.ends_with(LOG_COLLECTION_ERROR)),
        "{:?}",
        partial.outcome.logs
    );
    // The factory said so in the typed fault, which is what the pool reads ...
    assert!(partial.outcome.logs_lost(), "{:?}", partial.outcome.fault);
    // ... and the container is not used again.
    assert_eq!(pool.stats().counters.log_failure_removals, 1);
    assert_eq!(pool.stats().warm, 0);

    let _proxy = SocketProxy::start(&socket);
    let fresh = run(&pool, job(&env, json!({}))).await;
    assert_eq!(fresh.start, Start::Cold);
    assert_ne!(ran_on(&fresh), host);
    assert!(
        !fresh
            .outcome
            .logs
            .iter()
            .any(|line| line.ends_with(LOG_COLLECTION_ERROR)),
        "{:?}",
        fresh.outcome.logs
    );
    shutdown(&pool).await;
    drop(docker);
}

#[tokio::test]
async fn test_docker_jobs_fail_fast_while_the_daemon_is_unreachable_and_wasm_jobs_run() {
    // The daemon of the machine must answer (these are Docker tests); the pool's Docker factory
    // is pointed at a socket nothing listens on.
    daemon().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let nothing = dir.path().join("no-daemon.sock");
    let unreachable = DockerFactory::new(
        DockerConfig {
            host: Some(format!("unix://{}", nothing.display())),
            name_prefix: prefix("nodaemon"),
            ..DockerConfig::default()
        },
        manifest(),
    );
    let health = within("the health check", CALL_BOUND, unreachable.health()).await;
    assert!(!health.is_healthy());
    let wasm =
        factory::wasm::WasmFactory::new(factory::wasm::WasmConfig::default()).expect("wasm engine");
    let pool = pool(
        config(),
        vec![
            PoolFactory::in_process(Arc::new(wasm)),
            PoolFactory::containers(unreachable),
        ],
    )
    .await;
    let env = native("env", COLD_MB);
    let echo = wasm_echo();

    for round in 0..3 {
        let docker_job = async {
            tokio::time::timeout(REFUSAL_BOUND, pool.run(job(&env, json!({"round": round}))))
                .await
                .expect("a Docker job is refused at once while the daemon is unreachable")
        };
        let wasm_job = run(&pool, job(&echo, json!({"round": round})));
        let (docker_job, wasm_job) = tokio::join!(docker_job, wasm_job);
        assert_eq!(docker_job.start, Start::NotStarted);
        assert_eq!(docker_job.outcome.status.code(), 3);
        assert_eq!(
            docker_job.outcome.result,
            Some(json!({"error": messages::RESOURCE_ERROR}))
        );
        assert_eq!(wasm_job.outcome.status, Status::Success);
        assert_eq!(wasm_job.outcome.result, Some(json!({"round": round})));
    }
    // Nothing is left booked for the refused jobs.
    let stats = pool.stats();
    assert_eq!((stats.active, stats.starting, stats.buffered), (0, 0, 0));
    assert_eq!(stats.reserved_mb, 0);
    shutdown(&pool).await;
}
