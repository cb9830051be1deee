//! Integration tests of the Docker factory against the real Docker daemon.
//!
//! **Every test here needs a running Docker daemon** (`DOCKER_HOST` or `/var/run/docker.sock`) and
//! fails, never skips, when none answers. The runtime image `wasm-invoker/action-proxy:test`
//! (factory/proxy) is built by `scripts/build-test-image` when it is missing; the actions are
//! `actions/`'s examples built as static native executables. Each test uses its own container name
//! prefix, so tests (and other users of the daemon) never see each other's containers, and removes
//! what it created even when it fails. No traffic leaves the machine: containers are reached on the
//! local bridge, and the only registry ever asked is 127.0.0.1:1, where nothing listens.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bollard::Docker;
use bollard::query_parameters::{RemoveContainerOptionsBuilder, TagImageOptionsBuilder};
use factory::docker::{DockerConfig, DockerFactory, INSTANCE_LABEL, Manifest, logs as docker_logs};
use factory::outcome::messages;
use factory::{
    ActivationContext, Code, Container, ContainerFault, ContainerSpec, Factory, FactoryError,
    InitRequest, Limits, Outcome, Purpose, RunRequest, Status,
};
use serde_json::{Value, json};

const KIND: &str = "native:test";

#[path = "docker/socket_proxy.rs"]
mod socket_proxy;
use socket_proxy::SocketProxy;
#[path = "docker/daemon.rs"]
mod docker_daemon;
use docker_daemon::{IMAGE, daemon};

fn manifest_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/docker/runtimes.json")
}

fn prefix(test: &str) -> String {
    format!("wsktest{}{test}", std::process::id())
}

/// Removes every container of `prefix` when dropped, also after a failed assertion.
struct Cleanup(Arc<DockerFactory>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let factory = self.0.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = runtime.block_on(factory.cleanup());
            }
        })
        .join();
    }
}

fn factory_with(config: DockerConfig) -> (Arc<DockerFactory>, Cleanup) {
    let manifest = Manifest::from_file(&manifest_path()).expect("the test manifest");
    let factory = DockerFactory::new(config, manifest);
    let cleanup = Cleanup(factory.clone());
    (factory, cleanup)
}

async fn setup(test: &str) -> (Docker, Arc<DockerFactory>, Cleanup) {
    let docker = daemon().await;
    let (factory, cleanup) = factory_with(DockerConfig {
        name_prefix: prefix(test),
        ..DockerConfig::default()
    });
    factory.cleanup().await.expect("cleanup of an earlier run");
    (docker, factory, cleanup)
}

fn context(timeout: Duration) -> ActivationContext {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    ActivationContext {
        activation_id: format!("{nanos:032x}"),
        namespace: "guest".into(),
        action_name: "/guest/test".into(),
        action_version: Some("0.0.1".into()),
        transaction_id: "tid-docker-test".into(),
        api_key: Some("uuid:key".into()),
        deadline: SystemTime::now() + timeout,
    }
}

fn limits(timeout_ms: u64, memory: u32, logs: u32) -> Limits {
    Limits {
        timeout: timeout_ms,
        memory,
        logs,
        concurrency: 1,
    }
}

fn native(action: &str) -> Code {
    let path =
        ow_action::artifacts::native_binary(action).expect("the example actions build natively");
    Code::Binary(std::fs::read(path).expect("read the action").into())
}

fn init_request(code: Option<Code>, limits: Limits, env: &[(&str, &str)]) -> InitRequest {
    InitRequest {
        name: "test".into(),
        main: None,
        code,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        context: context(limits.timeout_duration()),
        limits,
    }
}

fn run_request(params: Value, limits: Limits) -> RunRequest {
    RunRequest {
        params,
        context: context(limits.timeout_duration()),
        limits,
    }
}

fn cold(memory_mb: u32) -> ContainerSpec {
    ContainerSpec {
        kind: KIND.into(),
        image: None,
        memory_mb,
        purpose: Purpose::Cold {
            namespace: "guest".into(),
            action: "test".into(),
        },
    }
}

/// A container of the test runtime initialised with the native example `action`.
async fn warm(factory: &DockerFactory, action: &str, limits: Limits) -> Arc<dyn Container> {
    let container = factory.create(cold(limits.memory)).await.expect("create");
    container
        .init(init_request(Some(native(action)), limits, &[]))
        .await
        .expect("init");
    container
}

fn error_of(outcome: &Outcome) -> Value {
    outcome
        .result
        .as_ref()
        .and_then(|r| r.get("error"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The text of formatted log lines of one stream, in order.
fn stream_lines(logs: &[String], stream: &str) -> Vec<String> {
    let marker = format!(" {stream}: ");
    logs.iter()
        .filter_map(|l| l.split_once(&marker).map(|(_, text)| text.to_string()))
        .collect()
}

async fn exists(docker: &Docker, id: &str) -> bool {
    docker.inspect_container(id, None).await.is_ok()
}

#[tokio::test]
async fn test_docker_cold_start_then_warm_reuse() {
    let (docker, factory, _cleanup) = setup("warm").await;
    assert!(factory.health().await.is_healthy());
    let limits = limits(10_000, 256, 10);
    let container = factory.create(cold(256)).await.expect("create");
    let info = docker
        .inspect_container(container.id(), None)
        .await
        .expect("inspect");
    let name = info.name.clone().unwrap_or_default();
    assert!(name.starts_with(&format!("/{}_", prefix("warm"))), "{name}");
    assert!(name.ends_with("_guest_test"), "{name}");
    let host = info.host_config.expect("host config");
    assert_eq!(host.memory, Some(256 * 1024 * 1024));
    assert_eq!(host.memory_swap, Some(256 * 1024 * 1024));
    assert_eq!(host.cpu_shares, Some(128));
    assert_eq!(host.pids_limit, Some(1024));
    assert_eq!(
        info.config.and_then(|c| c.labels).unwrap_or_default()[INSTANCE_LABEL],
        prefix("warm")
    );
    assert!(container.can_pause());

    let done = container
        .init(init_request(Some(native("hello")), limits, &[]))
        .await
        .expect("init");
    assert!(done.end >= done.start);
    // Listening now (right after create it may not be yet).
    assert!(container.health().await.is_healthy());
    let first = container
        .run(run_request(json!({"name": "Ada"}), limits))
        .await;
    assert_eq!(first.status, Status::Success, "{first:?}");
    assert_eq!(first.result, Some(json!({"greeting": "Hello, Ada!"})));
    assert_eq!(stream_lines(&first.logs, "stdout"), vec!["greeting Ada"]);

    let second = container
        .run(run_request(json!({"name": "Grace"}), limits))
        .await;
    assert_eq!(second.status, Status::Success, "{second:?}");
    assert_eq!(second.result, Some(json!({"greeting": "Hello, Grace!"})));
    assert_eq!(
        stream_lines(&second.logs, "stdout"),
        vec!["greeting Grace"],
        "only its own lines"
    );
    assert_eq!(
        second.size,
        Some(r#"{"greeting":"Hello, Grace!"}"#.len() + 1)
    );

    container.destroy().await.expect("destroy");
    assert!(!exists(&docker, container.id()).await);
    assert!(!container.health().await.is_healthy());
    assert!(
        container.destroy().await.is_err(),
        "a second destroy is an error"
    );
}

#[tokio::test]
async fn test_docker_prewarm_then_init_with_context_and_env() {
    let (docker, factory, _cleanup) = setup("prewarm").await;
    let cells = factory.stem_cells();
    assert_eq!(cells.len(), 1);
    assert_eq!(
        (
            cells[0].kind.as_str(),
            cells[0].memory_mb,
            cells[0].initial_count
        ),
        (KIND, 128, 1)
    );
    assert!(
        factory.supports(KIND)
            && factory.supports("native:default")
            && factory.supports("blackbox")
    );
    assert!(!factory.supports("wasm:wasip1"));

    let spec = ContainerSpec {
        kind: "native:default".into(),
        image: None,
        memory_mb: 128,
        purpose: Purpose::Prewarm,
    };
    let container = factory.create(spec).await.expect("create prewarm");
    let name = docker
        .inspect_container(container.id(), None)
        .await
        .expect("inspect")
        .name
        .unwrap_or_default();
    assert!(name.ends_with("_prewarm_nativedefault"), "{name}");

    let limits = limits(10_000, 128, 10);
    container
        .init(init_request(
            Some(native("env")),
            limits,
            &[("DB_URL", "http://db:5984")],
        ))
        .await
        .expect("init");
    let run = run_request(json!({}), limits);
    let activation_id = run.context.activation_id.clone();
    let outcome = container.run(run).await;
    assert_eq!(outcome.status, Status::Success, "{outcome:?}");
    let env = outcome.result.expect("result");
    assert_eq!(env["__OW_ACTIVATION_ID"], json!(activation_id));
    assert_eq!(env["__OW_NAMESPACE"], json!("guest"));
    assert_eq!(env["__OW_ACTION_NAME"], json!("/guest/test"));
    assert_eq!(env["__OW_API_KEY"], json!("uuid:key"));
    assert_eq!(env["__OW_API_HOST"], json!(""));
    assert_eq!(env["DB_URL"], json!("http://db:5984"));

    let echo = warm(&factory, "echo", limits).await;
    let array = echo.run(run_request(json!([1, {"a": "b"}]), limits)).await;
    assert_eq!(
        (array.status, array.result),
        (Status::Success, Some(json!([1, {"a": "b"}])))
    );
    let app_error = echo
        .run(run_request(json!({"error": "nope", "x": 1}), limits))
        .await;
    assert_eq!(
        (app_error.status, app_error.result),
        (Status::ApplicationError, Some(json!({"error": "nope"})))
    );
}

#[tokio::test]
async fn test_docker_pause_then_resume_then_run() {
    let (docker, factory, _cleanup) = setup("pause").await;
    let limits = limits(10_000, 128, 10);
    let container = warm(&factory, "echo", limits).await;
    assert_eq!(
        container
            .run(run_request(json!({"n": 1}), limits))
            .await
            .status,
        Status::Success
    );
    container.pause().await.expect("pause");
    let state = docker
        .inspect_container(container.id(), None)
        .await
        .expect("inspect")
        .state
        .expect("state");
    assert_eq!(state.paused, Some(true));
    container.resume().await.expect("resume");
    let outcome = container.run(run_request(json!({"n": 2}), limits)).await;
    assert_eq!(
        (outcome.status, outcome.result),
        (Status::Success, Some(json!({"n": 2})))
    );
    // Destroying a paused container unpauses it first.
    container.pause().await.expect("pause again");
    container.destroy().await.expect("destroy paused");
    assert!(!exists(&docker, container.id()).await);
}

#[tokio::test]
async fn test_docker_init_failures() {
    let (_docker, factory, _cleanup) = setup("initfail").await;
    let limits = limits(10_000, 128, 10);

    // A zip without `exec`: the runtime cannot locate a binary (502 with an error).
    let mut zipped = Vec::new();
    {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut zipped));
        zip.start_file("README", zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        zip.write_all(b"no exec here").expect("zip write");
        zip.finish().expect("zip");
    }
    let container = factory.create(cold(128)).await.expect("create");
    let failed = container
        .init(init_request(Some(Code::Binary(zipped.into())), limits, &[]))
        .await
        .unwrap_err();
    assert_eq!(failed.status, Status::DeveloperError);
    assert_eq!(
        error_of(&failed),
        json!("The action failed to generate or locate a binary. See logs for details.")
    );
    assert!(failed.init_time.is_some());
    assert!(!failed.timed_out);
    assert!(
        failed
            .logs
            .last()
            .expect("a notice")
            .ends_with(docker_logs::DEVELOPER_ERROR_LOGS),
        "{:?}",
        failed.logs
    );

    // A zip holding `exec` works, and a second init is refused as by every OpenWhisk runtime.
    let echo =
        std::fs::read(ow_action::artifacts::native_binary("echo").expect("echo")).expect("read");
    let mut zipped = Vec::new();
    {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut zipped));
        let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        zip.start_file("exec", options).expect("zip entry");
        zip.write_all(&echo).expect("zip write");
        zip.finish().expect("zip");
    }
    let container = factory.create(cold(128)).await.expect("create");
    container
        .init(init_request(Some(Code::Binary(zipped.into())), limits, &[]))
        .await
        .expect("zip init");
    let again = container
        .init(init_request(Some(native("echo")), limits, &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (again.status, error_of(&again)),
        (
            Status::DeveloperError,
            json!("Cannot initialize the action more than once.")
        )
    );
}

#[tokio::test]
async fn test_docker_run_failures_map_like_openwhisk() {
    let (_docker, factory, _cleanup) = setup("runfail").await;
    let limits = limits(10_000, 128, 10);
    for action in ["garbage", "panic"] {
        let container = warm(&factory, action, limits).await;
        let outcome = container.run(run_request(json!({}), limits)).await;
        assert_eq!(
            outcome.status,
            Status::DeveloperError,
            "{action}: {outcome:?}"
        );
        assert_eq!(
            error_of(&outcome),
            json!(messages::NOT_A_DICTIONARY_OR_ARRAY),
            "{action}"
        );
        assert!(
            outcome
                .logs
                .last()
                .expect("notice")
                .ends_with(docker_logs::DEVELOPER_ERROR_LOGS),
            "{action}"
        );
        assert!(!outcome.timed_out);
    }
}

#[tokio::test]
async fn test_docker_timeout_obeyed_and_violated() {
    let (_docker, factory, _cleanup) = setup("timeout").await;
    let limits = limits(1000, 128, 10);
    let echo = warm(&factory, "echo", limits).await;
    let obeyed = echo.run(run_request(json!({"ok": true}), limits)).await;
    assert_eq!((obeyed.status, obeyed.timed_out), (Status::Success, false));

    let spin = warm(&factory, "spin", limits).await;
    let violated = spin.run(run_request(json!({}), limits)).await;
    assert_eq!(violated.status, Status::DeveloperError);
    assert_eq!(
        error_of(&violated),
        json!("The action exceeded its time limits of 1000 milliseconds.")
    );
    assert!(violated.timed_out);
    assert_eq!(violated.size, None);
    assert!(violated.duration() >= Duration::from_millis(1000));
}

#[tokio::test]
async fn test_docker_memory_obeyed_and_exhausted() {
    let (_docker, factory, _cleanup) = setup("oom").await;
    let limits = limits(30_000, 128, 10);
    let hog = warm(&factory, "hog", limits).await;
    let obeyed = hog.run(run_request(json!({"max_mb": 16}), limits)).await;
    assert_eq!(
        (obeyed.status, obeyed.result),
        (Status::Success, Some(json!({"allocated_mb": 16})))
    );
    let exhausted = hog.run(run_request(json!({}), limits)).await;
    assert_eq!(exhausted.status, Status::DeveloperError, "{exhausted:?}");
    assert_eq!(
        error_of(&exhausted),
        json!("The action exhausted its memory and was aborted.")
    );
}

#[tokio::test]
async fn test_docker_logs_are_per_activation_and_sentinel_free() {
    let (_docker, factory, _cleanup) = setup("logs").await;
    let limits = limits(10_000, 128, 10);
    // The native blackbox image: never pulled, sentinelled logs.
    let spec = ContainerSpec {
        kind: "blackbox".into(),
        image: Some(IMAGE.into()),
        memory_mb: 128,
        purpose: Purpose::Cold {
            namespace: "guest".into(),
            action: "logs".into(),
        },
    };
    let container = factory.create(spec).await.expect("create blackbox");
    container
        .init(init_request(Some(native("logs")), limits, &[]))
        .await
        .expect("init");
    let first = container.run(run_request(json!({"n": 3}), limits)).await;
    assert_eq!(first.status, Status::Success, "{first:?}");
    assert_eq!(
        stream_lines(&first.logs, "stdout"),
        vec!["stdout line 0", "stdout line 1", "stdout line 2"],
        "{:#?}",
        first.logs
    );
    assert_eq!(
        stream_lines(&first.logs, "stderr"),
        vec!["stderr line 0", "stderr line 1", "stderr line 2"]
    );
    assert_eq!(first.logs.len(), 6, "{:?}", first.logs);
    for line in &first.logs {
        assert!(!line.contains(docker_logs::SENTINEL));
        // `<docker time, 30 columns> <stream>: <text>`
        assert_eq!(line.as_bytes()[30], b' ', "{line}");
        assert!(
            line[..30].ends_with('Z') && line.starts_with("20"),
            "{line}"
        );
    }
    let second = container.run(run_request(json!({"n": 1}), limits)).await;
    assert_eq!(stream_lines(&second.logs, "stdout"), vec!["stdout line 0"]);
    assert_eq!(stream_lines(&second.logs, "stderr"), vec!["stderr line 0"]);
    assert_eq!(second.logs.len(), 2, "{:?}", second.logs);
}

#[tokio::test]
async fn test_docker_log_limit_obeyed_and_violated() {
    let (_docker, factory, _cleanup) = setup("loglimit").await;
    let limits = limits(30_000, 256, 1);
    let flood = warm(&factory, "flood", limits).await;
    // 1 MB of lines fits a 2 MB limit...
    let obeyed = flood
        .run(run_request(json!({"mb": 1}), Limits { logs: 2, ..limits }))
        .await;
    assert_eq!(obeyed.status, Status::Success, "{:?}", obeyed.result);
    assert!(
        !obeyed
            .logs
            .iter()
            .any(|l| l.contains("Logs were truncated"))
    );
    assert!(obeyed.logs.len() > 10_000, "{}", obeyed.logs.len());
    // ...3 MB do not fit 1 MB.
    let violated = flood.run(run_request(json!({"mb": 3}), limits)).await;
    assert_eq!(violated.status, Status::Success, "{:?}", violated.result);
    let last = violated.logs.last().expect("lines");
    assert!(
        last.ends_with("stderr: Logs were truncated because the total bytes size exceeds the limit of 1048576 bytes."),
        "{last}"
    );
    let kept: usize = violated.logs[..violated.logs.len() - 1]
        .iter()
        .map(|l| l.split_once(": ").map_or(0, |(_, text)| text.len() + 1))
        .sum();
    assert!(kept <= 1024 * 1024, "{kept}");
    assert!(kept > 1000 * 1000, "{kept}");
    // The rest of the flood was consumed: the next activation sees only its own (no) lines.
    let next = flood.run(run_request(json!({"mb": 0}), limits)).await;
    assert!(
        next.logs.is_empty(),
        "{:?}",
        &next.logs[..next.logs.len().min(3)]
    );
}

#[tokio::test]
async fn test_docker_result_size_obeyed_and_violated() {
    let (_docker, factory, _cleanup) = setup("bigout").await;
    let limits = limits(30_000, 256, 10);
    let bigout = warm(&factory, "bigout", limits).await;
    let obeyed = bigout
        .run(run_request(json!({"bytes": 1000}), limits))
        .await;
    assert_eq!(obeyed.status, Status::Success);
    let violated = bigout
        .run(run_request(json!({"bytes": 2 * 1024 * 1024}), limits))
        .await;
    assert_eq!(violated.status, Status::ApplicationError);
    let length = violated.size.expect("size");
    assert!(length > 2 * 1024 * 1024);
    let message = error_of(&violated);
    let message = message.as_str().expect("a message");
    let expected = format!(
        "The action produced a response that exceeded the allowed length: {length} > 1048576 bytes. The truncated response was: {{\"data\":\"xxx"
    );
    assert!(message.starts_with(&expected), "{}", &message[..200]);
}

#[tokio::test]
async fn test_docker_cleanup_removes_only_this_invokers_leftovers() {
    let (docker, factory, cleanup) = setup("cleanup").await;
    let limits = limits(10_000, 128, 10);
    let a = factory.create(cold(128)).await.expect("create");
    let b = warm(&factory, "echo", limits).await;
    b.pause().await.expect("pause");
    let ours = [a.id().to_string(), b.id().to_string()];
    drop((a, b, factory));
    // Unrelated: our name prefix without our label, and our label without our name prefix.
    let unrelated_name = format!("{}_99_not_ours", prefix("cleanup"));
    let unrelated_label = format!("other{}", prefix("cleanup"));
    let mut ids = Vec::new();
    for (name, labels) in [
        (unrelated_name.as_str(), HashMap::new()),
        (
            unrelated_label.as_str(),
            HashMap::from([(INSTANCE_LABEL.to_string(), prefix("cleanup"))]),
        ),
    ] {
        let _ = docker
            .remove_container(
                name,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;
        let options = bollard::query_parameters::CreateContainerOptionsBuilder::new()
            .name(name)
            .build();
        let body = bollard::models::ContainerCreateBody {
            image: Some(IMAGE.into()),
            labels: Some(labels),
            ..Default::default()
        };
        let id = docker
            .create_container(Some(options), body)
            .await
            .expect("unrelated container")
            .id;
        docker
            .start_container(&id, None)
            .await
            .expect("start the unrelated container");
        ids.push(id);
    }
    // The invoker "restarts": a new factory with the same prefix cleans up at start.
    drop(cleanup_without_running(cleanup));
    let (fresh, _fresh_cleanup) = factory_with(DockerConfig {
        name_prefix: prefix("cleanup"),
        ..DockerConfig::default()
    });
    fresh.cleanup().await.expect("cleanup");
    for id in &ours {
        assert!(!exists(&docker, id).await, "leftover {id} removed");
    }
    for id in &ids {
        let state = docker
            .inspect_container(id, None)
            .await
            .expect("unrelated survives")
            .state;
        assert_eq!(
            state.and_then(|s| s.running),
            Some(true),
            "unrelated {id} still runs"
        );
        docker
            .remove_container(
                id,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await
            .expect("remove unrelated");
    }
}

/// Disarms a [`Cleanup`] guard (the test checks that a new factory does the cleanup).
fn cleanup_without_running(cleanup: Cleanup) -> Arc<DockerFactory> {
    let factory = cleanup.0.clone();
    std::mem::forget(cleanup);
    factory
}

#[tokio::test]
async fn test_docker_missing_images() {
    let (docker, factory, _cleanup) = setup("missing").await;
    // A managed image that is not on the host is never pulled: a whisk error.
    let spec = ContainerSpec {
        kind: "missing:test".into(),
        ..cold(128)
    };
    let error = match factory.create(spec).await {
        Err(error) => error,
        Ok(container) => panic!("created {}", container.id()),
    };
    assert!(matches!(error, FactoryError::Provision { .. }), "{error:?}");
    let outcome = error.to_outcome();
    assert_eq!(
        (outcome.status, error_of(&outcome)),
        (
            Status::WhiskError,
            json!("Failed to provision resources to run the action.")
        )
    );

    // A blackbox image with tag latest (or none) whose pull fails: a developer error. The registry is
    // 127.0.0.1:1, where nothing listens.
    let image = "127.0.0.1:1/wasm-invoker/no-such-image";
    let spec = ContainerSpec {
        kind: "blackbox".into(),
        image: Some(image.into()),
        ..cold(128)
    };
    let error = match factory.create(spec).await {
        Err(error) => error,
        Ok(container) => panic!("created {}", container.id()),
    };
    let outcome = error.to_outcome();
    assert_eq!(
        (outcome.status, error_of(&outcome)),
        (
            Status::DeveloperError,
            json!("Failed to pull container image '127.0.0.1:1/wasm-invoker/no-such-image'.")
        )
    );

    // Another tag tolerates the failed pull and runs the local copy (not sentinelled: not native).
    let tagged = "127.0.0.1:1/wasm-invoker/action-proxy:test";
    docker
        .tag_image(
            IMAGE,
            Some(
                TagImageOptionsBuilder::new()
                    .repo("127.0.0.1:1/wasm-invoker/action-proxy")
                    .tag("test")
                    .build(),
            ),
        )
        .await
        .expect("tag");
    let spec = ContainerSpec {
        kind: "blackbox".into(),
        image: Some(tagged.into()),
        ..cold(128)
    };
    let limits = limits(10_000, 128, 10);
    let container = factory
        .create(spec)
        .await
        .expect("a local copy after a tolerated failed pull");
    container
        .init(init_request(Some(native("hello")), limits, &[]))
        .await
        .expect("init");
    let outcome = container
        .run(run_request(json!({"name": "Bo"}), limits))
        .await;
    assert_eq!(outcome.result, Some(json!({"greeting": "Hello, Bo!"})));
    container.destroy().await.expect("destroy");
    let _ = docker
        .remove_image(
            tagged,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await;
}

#[tokio::test]
async fn test_docker_daemon_away_and_back() {
    let docker = daemon().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("docker.sock");
    let mut proxy = SocketProxy::start(&socket);
    let config = DockerConfig {
        host: Some(format!("unix://{}", socket.display())),
        name_prefix: prefix("away"),
        // The API reader: the one that loses the logs while the daemon is away (the json-file reader
        // does not need the daemon; test_docker_logs_from_the_file_or_through_the_api).
        log_files: false,
        ..DockerConfig::default()
    };
    let (factory, _cleanup) = factory_with(config);
    assert!(factory.health().await.is_healthy());
    let limits = limits(10_000, 128, 10);
    let container = warm(&factory, "hello", limits).await;

    proxy.stop();
    let health = factory.health().await;
    assert!(!health.is_healthy(), "{health:?}");
    let error = match factory.create(cold(128)).await {
        Err(error) => error,
        Ok(container) => panic!("created {} without a daemon", container.id()),
    };
    assert!(
        matches!(error, FactoryError::Unavailable { .. }),
        "{error:?}"
    );
    assert_eq!(error.status(), Status::WhiskError);
    assert_eq!(error.status().code(), 3);
    // The container itself still answers; only its logs cannot be read, and it is marked unhealthy.
    let outcome = container
        .run(run_request(json!({"name": "Al"}), limits))
        .await;
    assert_eq!(
        (outcome.status, outcome.result),
        (Status::Success, Some(json!({"greeting": "Hello, Al!"})))
    );
    assert!(
        outcome
            .logs
            .last()
            .expect("notice")
            .ends_with(docker_logs::LOG_COLLECTION_ERROR)
    );
    // The factory says so in the outcome's typed fault, not only in the notice.
    assert_eq!(outcome.fault, Some(ContainerFault::LogsLost));
    assert!(!container.health().await.is_healthy());

    let _proxy = SocketProxy::start(&socket);
    assert!(factory.health().await.is_healthy());
    let again = warm(&factory, "hello", limits).await;
    let outcome = again.run(run_request(json!({"name": "Bea"}), limits)).await;
    assert_eq!(
        (outcome.status, outcome.result),
        (Status::Success, Some(json!({"greeting": "Hello, Bea!"})))
    );
    assert_eq!(stream_lines(&outcome.logs, "stdout"), vec!["greeting Bea"]);
    assert_eq!(outcome.fault, None);
    container
        .destroy()
        .await
        .expect("destroy after the daemon came back");
    again.destroy().await.expect("destroy");
    drop(docker);
}

#[tokio::test]
async fn test_docker_publish_on_loopback() {
    daemon().await;
    let (factory, _cleanup) = factory_with(DockerConfig {
        name_prefix: prefix("loopback"),
        publish_on_loopback: true,
        ..DockerConfig::default()
    });
    let limits = limits(10_000, 128, 10);
    let container = warm(&factory, "echo", limits).await;
    let outcome = container
        .run(run_request(json!({"via": "loopback"}), limits))
        .await;
    assert_eq!(outcome.result, Some(json!({"via": "loopback"})));
    assert!(container.health().await.is_healthy());
}

#[tokio::test]
async fn test_docker_unreachable_after_resume_is_rescheduled() {
    let (docker, factory, _cleanup) = setup("resched").await;
    let limits = limits(3_000, 128, 10);
    // Right after a resume, a runtime that cannot be reached is the container's fault: reschedule.
    let resumed = warm(&factory, "echo", limits).await;
    resumed.pause().await.expect("pause");
    resumed.resume().await.expect("resume");
    docker
        .kill_container(
            resumed.id(),
            None::<bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .expect("kill");
    let outcome = resumed.run(run_request(json!({}), limits)).await;
    assert_eq!(outcome.fault, Some(ContainerFault::Refused), "{outcome:?}");
    assert!(outcome.needs_reschedule());
    assert_eq!(
        (outcome.status, error_of(&outcome)),
        (Status::WhiskError, json!(messages::RESCHEDULE))
    );
    // Otherwise the same failure is the action's.
    let plain = warm(&factory, "echo", limits).await;
    docker
        .kill_container(
            plain.id(),
            None::<bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .expect("kill");
    let outcome = plain.run(run_request(json!({}), limits)).await;
    assert_eq!(outcome.fault, None);
    assert_eq!(outcome.status, Status::DeveloperError);
    // A dead container's address either refuses at once or (ARP still cached) never answers: OpenWhisk
    // reports the first as an abnormal exit and the second, after the time limit, as a timeout.
    let error = error_of(&outcome);
    assert!(
        error == json!(messages::ABNORMAL_RUN)
            || error == json!("The action exceeded its time limits of 3000 milliseconds."),
        "{error}"
    );
}

/// Runs the `logs` example on a container of `factory`, then again after the daemon went away (the
/// socket `proxy` stopped): the logs of both runs.
async fn logs_before_and_after_the_daemon_left(
    factory: &DockerFactory,
    proxy: &mut SocketProxy,
) -> (Outcome, Outcome, Arc<dyn Container>) {
    let limits = limits(10_000, 128, 10);
    let container = warm(factory, "logs", limits).await;
    let before = container.run(run_request(json!({"n": 2}), limits)).await;
    proxy.stop();
    let after = container.run(run_request(json!({"n": 3}), limits)).await;
    (before, after, container)
}

#[tokio::test]
async fn test_docker_logs_from_the_file_or_through_the_api() {
    // The direct factory of this prefix removes the containers at the end.
    let (_docker, _direct, _cleanup) = setup("logfile").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let through_proxy = |socket: &Path, containers_dir: Option<PathBuf>| {
        DockerFactory::new(
            DockerConfig {
                host: Some(format!("unix://{}", socket.display())),
                name_prefix: prefix("logfile"),
                containers_dir,
                ..DockerConfig::default()
            },
            Manifest::from_file(&manifest_path()).expect("the test manifest"),
        )
    };

    // The containers directory is readable: the logs come from the json-file, which needs no daemon.
    let socket = dir.path().join("file.sock");
    let mut proxy = SocketProxy::start(&socket);
    let files = through_proxy(&socket, None);
    let (before, after, _container) =
        logs_before_and_after_the_daemon_left(&files, &mut proxy).await;
    let expected = |n: usize, stream: &str| -> Vec<String> {
        (0..n).map(|i| format!("{stream} line {i}")).collect()
    };
    for (outcome, n) in [(&before, 2), (&after, 3)] {
        assert_eq!(outcome.status, Status::Success, "{outcome:?}");
        assert_eq!(outcome.fault, None, "{:?}", outcome.logs);
        assert_eq!(stream_lines(&outcome.logs, "stdout"), expected(n, "stdout"));
        assert_eq!(stream_lines(&outcome.logs, "stderr"), expected(n, "stderr"));
        assert_eq!(outcome.logs.len(), 2 * n, "{:?}", outcome.logs);
        for line in &outcome.logs {
            assert_eq!(line.as_bytes()[30], b' ', "{line}");
            assert!(line[..30].ends_with('Z'), "{line}");
        }
    }

    // A containers directory without the container's log: the API, which needs the daemon.
    let socket = dir.path().join("api.sock");
    let mut proxy = SocketProxy::start(&socket);
    let empty = tempfile::tempdir().expect("tempdir");
    let api = through_proxy(&socket, Some(empty.path().to_path_buf()));
    let (api_before, api_after, container) =
        logs_before_and_after_the_daemon_left(&api, &mut proxy).await;
    // The same lines as from the file...
    assert_eq!(api_before.fault, None);
    assert_eq!(
        stream_lines(&api_before.logs, "stdout"),
        stream_lines(&before.logs, "stdout")
    );
    assert_eq!(
        stream_lines(&api_before.logs, "stderr"),
        stream_lines(&before.logs, "stderr")
    );
    assert_eq!(api_before.logs.len(), before.logs.len());
    // ...and without the daemon, none.
    assert_eq!(api_after.status, Status::Success);
    assert_eq!(api_after.fault, Some(ContainerFault::LogsLost));
    assert!(
        api_after
            .logs
            .last()
            .expect("notice")
            .ends_with(docker_logs::LOG_COLLECTION_ERROR)
    );
    assert!(!container.health().await.is_healthy());
}
