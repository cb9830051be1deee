//! The invoker image (`scripts/build-invoker-image`, `deploy/image/`) started the way OpenWhisk's
//! Ansible invoker role starts `whisk/invoker:latest`: the role's environment block (the fixture
//! `executor/tests/fixtures/ansible/invoker-env.txt`, pointed at this test's broker and CouchDB),
//! its volumes (`/logs`, `/conf`, the Docker socket, `/sys/fs/cgroup`, the daemon's `containers/`),
//! its published admin port, `--pid host`, `--userns host`, `--restart always`, and its command
//! `/bin/sh -c "exec /init.sh --id 0 --uniqueName U >> /logs/invoker0_logs.log 2>&1"`; but **without
//! `--privileged`**: the invoker needs only the Docker socket.
//!
//! It checks what an operator relies on: `/ping` answers on the published port over https with the
//! role's defaults (`invoker_protocol: https`, `clientAuth: true`: a keystore made as `genssl.sh`
//! makes it in `/conf`, the request presenting its certificate; plain http gets no answer), the node pings
//! `health`, a wasm activation and a Docker-runtime (`blackbox`) activation are answered on
//! `completed0` (the Docker factory, inside a container, reaches the runtime container it started
//! on the configured network), the log file in the `/logs` volume holds the invoker's lines, and
//! `docker stop` ends it with status 0 and no runtime container of it left.
//!
//! Topology: the test creates its own Docker network (`wi-image-*`); Tansu and pouchdb-server run on
//! the host bound to its gateway; the invoker container joins it and so do the runtime containers it
//! creates (`CONFIG_whisk_containerFactory_containerArgs_network`). In OpenWhisk's role both are on
//! the default `bridge` instead: the same shape, one network shared by the invoker and its runtimes.
//!
//! The unique name is `image`, not the role's `0`: the container name prefix (`wskimage0`) is then
//! this test's alone, so the invoker's startup cleanup never removes another test's containers on
//! the shared daemon.
//!
//! **Needs a running Docker daemon, `tansu`, `pouchdb-server`** and the test runtime image
//! `wasm-invoker/action-proxy:test` (built by `scripts/build-test-image` when missing); fails, never
//! skips, when one is missing. The image is built from the debug binary cargo test already built,
//! under a test-only tag. Everything created is removed at the end, also after a failure.

#[path = "support/controller.rs"]
mod controller;
#[path = "support/docker_cli.rs"]
mod docker_cli;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use controller::{Cluster, within};
use docker_cli::{docker, docker_async};
use serde_json::{Value, json};

/// The tag the test builds the image under (never the operators' `latest`).
const IMAGE: &str = "wasm-invoker/invoker:image-test";
/// The test runtime image, run as a native blackbox.
const RUNTIME_IMAGE: &str = docker_cli::TEST_RUNTIME_IMAGE;
/// Prefix of every Docker name this test creates.
const NAME_PREFIX: &str = "wi-image-";
/// `--uniqueName` of the invoker (see the module doc).
const UNIQUE_NAME: &str = "image";
/// The invoker's container name prefix and ownership label: `"wsk" + uniqueName + id`.
const CONTAINER_PREFIX: &str = "wskimage0";
/// The blackbox action.
const BLACKBOX_ACTION: &str = "bbhello";
/// How long the preparation may take: the example actions (wasm and native, nested release builds,
/// minutes on a cold cache), the test runtime image when missing, and the invoker image (a busybox
/// download on the first run).
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the invoker may take to answer `/ping` after `docker run`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one activation may take to be answered (a runtime container is created for the blackbox).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// `docker stop`'s grace period. Docker's default is 10 s; the shutdown (a drain ping, the consumer
/// leaving its group, the acks, records and runtime containers) takes a few seconds, but a debug
/// binary on a loaded 2-core CI machine must not be SIGKILLed into a false failure: status 0 (not
/// 137) is what shows the drain ran to its end. The measured time is printed.
const STOP_GRACE_SECS: u64 = 60;

/// The ids of every container, running or not, that carries the invoker's ownership label.
fn runtime_containers() -> Vec<String> {
    let label = format!(
        "label={}={CONTAINER_PREFIX}",
        factory::docker::INSTANCE_LABEL
    );
    docker(&["ps", "-a", "-q", "--filter", &label])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Removes the invoker container, its runtime containers, the network and the test's image when
/// dropped, also after a failed assertion (each only if it exists; errors are ignored). The image goes
/// too: each run builds it from a new debug binary, and the old ones would pile up on a CI disk.
struct DockerGuard {
    network: String,
    invoker: String,
}

impl Drop for DockerGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.invoker])
            .output();
        for id in runtime_containers_quiet() {
            let _ = Command::new("docker").args(["rm", "-f", &id]).output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
        let _ = Command::new("docker").args(["rmi", IMAGE]).output();
    }
}

/// [`runtime_containers`] without panicking (for the guard).
fn runtime_containers_quiet() -> Vec<String> {
    let label = format!(
        "label={}={CONTAINER_PREFIX}",
        factory::docker::INSTANCE_LABEL
    );
    Command::new("docker")
        .args(["ps", "-a", "-q", "--filter", &label])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Builds the image from the binary cargo built for this test.
fn build_image(root: &Path) {
    let status = Command::new(root.join("scripts/build-invoker-image"))
        .env("IMAGE", IMAGE)
        .env("INVOKER_BINARY", env!("CARGO_BIN_EXE_wasm-invoker"))
        .status()
        .expect("scripts/build-invoker-image runs");
    assert!(status.success(), "scripts/build-invoker-image failed");
}

/// The role's environment block (fixture), in order, as (name, value); values kept byte for byte.
fn role_environment() -> Vec<(String, String)> {
    controller::fixture("ansible/invoker-env.txt")
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("fixture line without '=': {line}"));
            (name.to_string(), value.to_string())
        })
        .collect()
}

/// The fixture's environment pointed at this test's services and network; every other variable
/// (the empty ones, the JVM's and Kamon's included) unchanged.
fn environment(cluster: &Cluster, network: &str) -> Vec<(String, String)> {
    let couch = &cluster.couch;
    let mut replaced: BTreeMap<&str, String> = BTreeMap::from([
        ("KAFKA_HOSTS", cluster.tansu.bootstrap()),
        ("CONFIG_whisk_couchdb_protocol", couch.protocol.clone()),
        ("CONFIG_whisk_couchdb_host", couch.host.clone()),
        ("CONFIG_whisk_couchdb_port", couch.port.to_string()),
        ("CONFIG_whisk_couchdb_username", couch.username.clone()),
        ("CONFIG_whisk_couchdb_password", couch.password.clone()),
        (
            "CONFIG_whisk_couchdb_databases_WhiskAuth",
            couch.auth_db.clone(),
        ),
        (
            "CONFIG_whisk_couchdb_databases_WhiskEntity",
            couch.entity_db.clone(),
        ),
        (
            "CONFIG_whisk_couchdb_databases_WhiskActivation",
            couch.activation_db.clone(),
        ),
        ("DB_WHISK_ACTIONS", couch.entity_db.clone()),
        ("DB_WHISK_ACTIVATIONS", couch.activation_db.clone()),
        ("DB_WHISK_AUTHS", couch.auth_db.clone()),
        (
            "CONFIG_whisk_containerFactory_containerArgs_network",
            network.to_string(),
        ),
    ]);
    let environment: Vec<(String, String)> = role_environment()
        .into_iter()
        .map(|(name, value)| match replaced.remove(name.as_str()) {
            Some(new) => (name, new),
            None if name == "RUNTIMES_MANIFEST" => (name, with_test_blackbox(&value)),
            None => (name, value),
        })
        .collect();
    assert!(
        replaced.is_empty(),
        "the fixture lacks {:?}",
        replaced.keys()
    );
    // No RUST_LOG: init.sh derives it from the role's CONFIG_logback_log_level (INFO).
    environment
}

/// The role's runtimes manifest with the test runtime image added as a native blackbox (an
/// operator's own image listed the same way: no pull, sentinelled logs).
fn with_test_blackbox(manifest: &str) -> String {
    let mut manifest: Value =
        serde_json::from_str(manifest).expect("the fixture's manifest is JSON");
    manifest["blackboxes"]
        .as_array_mut()
        .expect("blackboxes")
        .push(json!({"prefix": "wasm-invoker", "name": "action-proxy", "tag": "test"}));
    manifest.to_string()
}

/// The blackbox action's document: the test runtime image, the native `hello` executable as a
/// `couch:` attachment.
fn blackbox_document(attachment: &str) -> Value {
    json!({
        "_id": format!("guest/{BLACKBOX_ACTION}"),
        "entityType": "action",
        "namespace": "guest",
        "name": BLACKBOX_ACTION,
        "exec": {"kind": "blackbox", "image": RUNTIME_IMAGE, "binary": true,
                 "code": {"attachmentName": format!("couch:{attachment}"), "attachmentType": "application/octet-stream"}},
        "parameters": [],
        "limits": {"timeout": 30000, "memory": 128, "logs": 10, "concurrency": 1},
        "version": "0.0.1",
        "publish": false,
        "annotations": [{"key": "provide-api-key", "value": false}, {"key": "exec", "value": "blackbox"}],
        "updated": 1741942502117u64
    })
}

/// The gateway address of `network`.
fn gateway(network: &str) -> Ipv4Addr {
    let text = docker(&[
        "network",
        "inspect",
        "--format",
        "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
        network,
    ]);
    text.split_whitespace()
        .find_map(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("no IPv4 gateway on {network}: {text:?}"))
}

/// The keystore the role's `genssl.sh` puts in `<conf>/invokerN/` (a fixture made the same way:
/// `executor/tests/fixtures/tls/README.md`), as the fixture's environment names it.
const KEYSTORE_FIXTURE: &str = "executor/tests/fixtures/tls/invoker-keystore.p12";
/// Its name in `/conf` (`CONFIG_whisk_invoker_https_keystorePath` of the role's block).
const KEYSTORE_NAME: &str = "invoker-openwhisk-keystore.p12";

/// The role's `/ping` check as a TLS client: it presents the keystore's own certificate and key
/// and trusts the invoker's certificate of the same keystore.
fn role_ping_client() -> rustls::ClientConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(KEYSTORE_FIXTURE);
    let bytes = std::fs::read(&path).expect("keystore fixture");
    let keystore =
        executor::tls::Keystore::from_pkcs12(&path, &bytes, "openwhisk").expect("keystore");
    executor::tls::client::client_config(&keystore, Some(&keystore), None).expect("client")
}

/// One `GET /ping` to `port` on 127.0.0.1, over TLS with `tls`, else plain: the status, 0 when
/// there is no HTTP answer.
async fn ping_status(port: u16, tls: Option<&rustls::ClientConfig>) -> u16 {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    async fn exchange(mut stream: impl AsyncRead + AsyncWrite + Unpin) -> std::io::Result<String> {
        stream
            .write_all(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok(response)
    }
    let request = async {
        let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        match tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from("invoker0")
                    .map_err(std::io::Error::other)?;
                let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config.clone()))
                    .connect(name, tcp)
                    .await?;
                exchange(stream).await
            }
            None => exchange(tcp).await,
        }
    };
    match tokio::time::timeout(Duration::from_secs(5), request).await {
        Ok(Ok(response)) => response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// What the invoker wrote to the log file in the `/logs` volume so far.
fn invoker_log(logs: &Path) -> String {
    std::fs::read_to_string(logs.join("invoker0_logs.log")).unwrap_or_default()
}

/// Reads acks until activation `id` is answered (its activation and `isSystemError`, from a Result
/// and a Completion ack or one Combined ack); returns the activation.
async fn answer(cluster: &Cluster, id: &str, logs: &Path) -> Value {
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let (mut activation, mut system_error) = (None, None);
    while activation.is_none() || system_error.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some((_, raw)) = cluster.ack_within(left).await else {
            panic!(
                "{id} not answered within {ANSWER_TIMEOUT:?}; log:\n{}",
                invoker_log(logs)
            );
        };
        let of = raw["activationId"]
            .as_str()
            .or_else(|| raw["response"]["activationId"].as_str());
        if of != Some(id) {
            continue;
        }
        if raw["response"].is_object() {
            activation = Some(raw["response"].clone());
        }
        if let Some(flag) = raw["isSystemError"].as_bool() {
            system_error = Some(flag);
        }
    }
    assert_eq!(system_error, Some(false), "{activation:?}");
    activation.expect("answered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_image_runs_as_openwhisk_role_starts_it() {
    let started = Instant::now();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let suffix = format!("{}-{}", std::process::id(), controller::now_millis());
    let network = format!("{NAME_PREFIX}{suffix}");
    let invoker = format!("{NAME_PREFIX}{suffix}-invoker0");
    let _guard = DockerGuard {
        network: network.clone(),
        invoker: invoker.clone(),
    };
    // Everything slow before the services start: the example actions (the wasm `echo` the cluster
    // stores, the native `hello` of the blackbox) and the images.
    let hello = within(
        BUILD_TIMEOUT,
        "building the example actions and the images",
        tokio::task::spawn_blocking({
            let root = root.clone();
            move || {
                ow_action::artifacts::wasm_module("echo").expect("the wasm examples build");
                let hello = ow_action::artifacts::native_binary("hello")
                    .expect("the native examples build");
                docker_cli::ensure_test_runtime_image();
                build_image(&root);
                std::fs::read(hello).expect("native hello")
            }
        }),
    )
    .await
    .expect("build task");
    eprintln!("images built after {:?}", started.elapsed());

    docker_async(&["network", "create", &network]).await;
    let gateway = gateway(&network);
    let cluster = Cluster::services_on(gateway).await;
    within(
        Duration::from_secs(60),
        "creating invoker0",
        cluster.tansu.create_topics(&["invoker0"]),
    )
    .await;
    cluster
        .put_action(
            &blackbox_document("hello-native"),
            &[("hello-native", hello)],
        )
        .await;

    // The role's host directories: <logs>/invoker0 and <conf>/invoker0.
    let host = tempfile::tempdir().expect("tmp");
    let logs = host.path().join("logs/invoker0");
    let conf = host.path().join("conf/invoker0");
    std::fs::create_dir_all(&logs).expect("logs dir");
    std::fs::create_dir_all(&conf).expect("conf dir");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(KEYSTORE_FIXTURE),
        conf.join(KEYSTORE_NAME),
    )
    .expect("keystore into /conf");
    let docker_root = docker_async(&["info", "--format", "{{.DockerRootDir}}"]).await;

    let mut args: Vec<String> = [
        "run",
        "-d",
        "--name",
        &invoker,
        "--hostname",
        "invoker0",
        "--network",
        &network,
        "--pid",
        "host",
        "--userns",
        "host",
        "--restart",
        "always",
        "-p",
        "127.0.0.1::8080",
    ]
    .iter()
    .map(|a| (*a).to_string())
    .collect();
    for volume in [
        "/sys/fs/cgroup:/sys/fs/cgroup".to_string(),
        format!("{}:/logs", logs.display()),
        format!("{}:/conf", conf.display()),
        format!("{docker_root}/containers/:/containers"),
        "/var/run/docker.sock:/var/run/docker.sock".to_string(),
    ] {
        args.push("-v".into());
        args.push(volume);
    }
    for (name, value) in environment(&cluster, &network) {
        args.push("-e".into());
        args.push(format!("{name}={value}"));
    }
    args.push(IMAGE.into());
    args.extend([
        "/bin/sh".to_string(),
        "-c".to_string(),
        format!("exec /init.sh --id 0 --uniqueName {UNIQUE_NAME} >> /logs/invoker0_logs.log 2>&1"),
    ]);
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    docker_async(&arg_refs).await;
    let published = docker_async(&["port", &invoker, "8080/tcp"]).await;
    let port: u16 = published
        .lines()
        .next()
        .and_then(|line| line.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no published port: {published:?}"));

    // /ping on the published port, over https with the keystore's certificate as the role's check
    // sends it (the role's default: invoker_protocol https, clientAuth true).
    let client = role_ping_client();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if ping_status(port, Some(&client)).await == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no /ping 200 on 127.0.0.1:{port} within {START_TIMEOUT:?}; log:\n{}",
            invoker_log(&logs)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("/ping 200 after {:?}", started.elapsed());
    assert_eq!(
        ping_status(port, None).await,
        0,
        "the admin server answered plain http although the role configures https"
    );

    // A ping on `health` from invoker 0 with the unique name given on the command line.
    let ping = cluster
        .ping(Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("no health ping; log:\n{}", invoker_log(&logs)));
    assert_eq!(ping.name.instance, 0);
    assert_eq!(ping.name.unique_name.as_deref(), Some(UNIQUE_NAME));

    // A wasm activation, run in-process.
    let (wasm_id, message) = controller::message("echo", 1, true, json!({"name": "image"}));
    cluster.produce(&message.to_string()).await;
    let activation = answer(&cluster, &wasm_id, &logs).await;
    assert_eq!(
        activation["response"]["statusCode"], 0,
        "wasm activation: {activation}"
    );
    assert_eq!(activation["response"]["result"]["name"], "image");

    // A Docker-runtime activation: a blackbox container the invoker starts through the socket and
    // reaches on the test network.
    let (docker_id, message) =
        controller::message(BLACKBOX_ACTION, 2, true, json!({"name": "image"}));
    cluster.produce(&message.to_string()).await;
    let activation = answer(&cluster, &docker_id, &logs).await;
    assert_eq!(
        activation["response"]["statusCode"],
        0,
        "blackbox activation: {activation}\nlog:\n{}",
        invoker_log(&logs)
    );
    assert_eq!(
        activation["response"]["result"],
        json!({"greeting": "Hello, image!"})
    );
    let running = tokio::task::spawn_blocking(runtime_containers)
        .await
        .expect("docker ps");
    assert!(
        !running.is_empty(),
        "the blackbox container is not labelled {CONTAINER_PREFIX}"
    );
    eprintln!("activations answered after {:?}", started.elapsed());

    // The log file of the /logs volume: init.sh's line about INVOKER_OPTS, the invoker's lines,
    // plain text (no terminal colours in a file).
    let log = invoker_log(&logs);
    assert!(
        log.contains("init.sh: INVOKER_OPTS: ignoring"),
        "no INVOKER_OPTS line:\n{log}"
    );
    assert!(log.contains("invoker started"), "no start line:\n{log}");
    assert!(
        !log.contains('\u{1b}'),
        "terminal escapes in the log file:\n{log}"
    );

    // docker stop: SIGTERM, a drain, exit 0 within the grace period, runtime containers removed.
    let grace = STOP_GRACE_SECS.to_string();
    let stop_started = Instant::now();
    docker_async(&["stop", "-t", &grace, &invoker]).await;
    let stop_took = stop_started.elapsed();
    let state = docker_async(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}",
        &invoker,
    ])
    .await;
    let log = invoker_log(&logs);
    assert_eq!(
        state, "exited 0 false",
        "after docker stop ({stop_took:?}); log:\n{log}"
    );
    assert!(log.contains("invoker stopped"), "no stop line:\n{log}");
    let left = tokio::task::spawn_blocking(runtime_containers)
        .await
        .expect("docker ps");
    assert!(
        left.is_empty(),
        "runtime containers left after docker stop: {left:?}; log:\n{log}"
    );
    eprintln!(
        "docker stop took {stop_took:?}; whole test {:?}",
        started.elapsed()
    );
}
