//! A two-node cluster deployed by our Ansible role (`deploy/ansible`) and driven as an OpenWhisk
//! controller drives its invokers.
//!
//! Topology: the test creates a Docker network (`wi-cluster-*`); Tansu and pouchdb-server run on the
//! host bound to its gateway; two "worker nodes" join it: containers of the image
//! `scripts/build-node-image` builds (Debian bookworm, systemd as PID 1, no Docker engine), started
//! without `--privileged` (one capability, `SYS_ADMIN`, so that systemd applies the unit's mount
//! sandbox; [`start_node`]). `ansible-playbook` deploys the debug binary cargo built for this test to
//! both in `service` mode (the systemd unit `deploy/systemd/wasm-invoker.service`), reaching them
//! through `community.docker`'s connection plugin, from an OpenWhisk-style inventory (groups
//! `invokers`, `kafkas`, `db`; OpenWhisk's `db_*`, `kafka.advertisedPort`, `invoker_user_memory`,
//! `runtimes_manifest`). The runtimes manifest is given and the nodes have no Docker daemon: the
//! invokers must start anyway and serve wasm actions.
//!
//! In order, on one cluster:
//!
//! 1. the deploy succeeds on both nodes, and a second run of it changes nothing (`changed=0`); the
//!    unit is active, enabled, passes `systemd-analyze verify` on the node, and its invoker runs
//!    with `/` read-only (`ProtectSystem=strict` in force);
//! 2. both nodes ping `health`; 400 activations alternating between `invoker0` and `invoker1` are
//!    each answered by exactly one slot-freeing ack on `completed0`, from the right invoker;
//! 3. a rolling restart by `deploy/ansible/rolling-restart.yml` while a steady stream flows to both
//!    topics restarts both units (new invocation ids), loses nothing and answers nothing twice;
//! 4. `docker kill` of node 1 during a stream: its pings stop, node 0 goes on answering; `docker start`
//!    of it: systemd starts the enabled unit, node 1 pings again and answers its topic, the messages
//!    sent while it was down included. Only what it had taken when it was killed may be lost (at
//!    most once, as OpenWhisk's invoker; at most maxPeek = 8 with 1024 MB).
//!
//! A second, quick test ([`test_units_verify_and_the_container_mode_renders`]) verifies both unit
//! files (the template too) with `systemd-analyze verify`, syntax-checks both playbooks and runs the
//! role's `container` mode in check mode (the nodes have no Docker engine to run it for real).
//!
//! What was answered is judged on `completed0` read again from offset 0 (Tansu can hide a record from
//! a consumer reading while two invokers produce; README, "Known limits"), and every message is
//! produced one record per batch (Tansu answers a fetch inside a multi-record batch without the
//! rest of it).
//!
//! **Needs** a Docker daemon, `tansu`, `pouchdb-server`, the node image
//! (`wasm-invoker/test-node:bookworm`, `scripts/build-node-image`) and `ansible-playbook` (PyPI's
//! `ansible`, which includes `community.docker`, with `requests` in its Python for the
//! container-mode check; `$ANSIBLE_PLAYBOOK` or `PATH`): `scripts/test`
//! provides all of them. It fails when one is missing; it is skipped only when
//! `WASM_INVOKER_SKIP_CLUSTER_TEST=1` says so. Every container and the network are removed at the end,
//! also after a failure.

#[path = "support/controller.rs"]
mod controller;
#[path = "support/docker_cli.rs"]
mod docker_cli;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use controller::{Cluster, MANIFEST, message, next_with_time, now_millis, within};
use docker_cli::{docker, docker_async};
use executor::message::PingMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

/// Set to `1` to skip this test (it needs the node image and Ansible).
const SKIP_ENV: &str = "WASM_INVOKER_SKIP_CLUSTER_TEST";
/// The worker node image (`scripts/build-node-image`).
const NODE_IMAGE: &str = "wasm-invoker/test-node:bookworm";
/// Prefix of every Docker name this test creates.
const NAME_PREFIX: &str = "wi-cluster-";
/// OpenWhisk's `invoker.port`: invoker N's admin server listens on 12001 + N.
const ADMIN_BASE_PORT: u16 = 12001;
/// The user memory of each invoker, in OpenWhisk's syntax: maxPeek 8 with 128 MB actions.
const USER_MEMORY: &str = "1024m";
/// What a killed invoker may lose: the messages it had taken (maxPeek = 1024 MB / 128 MB).
const IN_FLIGHT: usize = 8;
/// How many activations the first load sends (alternating between the two topics).
const BATCH: u32 = 400;
/// The steady stream: one message every `STREAM_EVERY`, alternating topics, at most `STREAM_MAX`.
const STREAM_EVERY: Duration = Duration::from_millis(200);
const STREAM_MAX: u32 = 1500;
/// How long a node may take to boot systemd.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one `ansible-playbook` run may take.
const PLAYBOOK_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the acks of a phase may take after its last message.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(240);
/// How long after its pings' last one the test looks for another from a killed node.
const SILENCE: Duration = Duration::from_secs(10);
/// How long after the SIGKILL node 1 is started again: past the consumer's session timeout (30 s)
/// from its last heartbeat. Tansu 0.6.0 leaves a member that joins next to a dead one without a
/// partition (README, "Known limits"; `tests/invoker_scale.rs`), which the feed would work around
/// only after 45 s (`REJOIN_LIMIT`).
const DEAD_MEMBER_EXPIRED: Duration = Duration::from_secs(40);
/// How long reading `completed0` again waits for one more record before it calls the topic read.
const QUIET: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------------
// Docker

/// `docker exec <container> <command...>`: (exit success, stdout + stderr), never a panic.
async fn exec(container: &str, command: &[&str]) -> (bool, String) {
    let mut args = vec!["exec".to_string(), container.to_string()];
    args.extend(command.iter().map(|c| (*c).to_string()));
    tokio::task::spawn_blocking(move || match Command::new("docker").args(&args).output() {
        Ok(output) => (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        ),
        Err(error) => (false, error.to_string()),
    })
    .await
    .expect("docker exec task")
}

/// Removes the containers and the network when dropped, also after a failed assertion.
struct DockerGuard {
    network: Option<String>,
    nodes: Vec<String>,
}

impl Drop for DockerGuard {
    fn drop(&mut self) {
        for node in &self.nodes {
            let _ = Command::new("docker").args(["rm", "-f", node]).output();
        }
        if let Some(network) = &self.network {
            let _ = Command::new("docker")
                .args(["network", "rm", network])
                .output();
        }
    }
}

/// Starts a worker node container on `network`: systemd as PID 1 in the host's cgroup namespace,
/// not privileged:
/// `docker run -d --name N --hostname H --network NET --cap-add SYS_ADMIN --cgroupns=host
/// -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --tmpfs /tmp
/// --stop-signal SIGRTMIN+3 wasm-invoker/test-node:bookworm`.
///
/// `CAP_SYS_ADMIN` (one capability, not `--privileged`) lets systemd set up the unit's mount
/// namespace: without it systemd skips `ProtectSystem=strict`, `PrivateTmp=`, `PrivateDevices=`
/// and the state/cache directory mounts ("assuming containerized execution") and the node would
/// not run the unit's sandbox at all. With it, the invoker runs with `/` read-only but for its
/// state and cache directories, as on a real host.
fn start_node(name: &str, hostname: &str, network: &str) {
    docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        hostname,
        "--network",
        network,
        "--cap-add",
        "SYS_ADMIN",
        "--cgroupns=host",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--tmpfs",
        "/run",
        // Mounted for it: systemd may not mount a tmpfs there itself without CAP_SYS_ADMIN.
        "--tmpfs",
        "/run/lock",
        "--tmpfs",
        "/tmp",
        // systemd stops cleanly on SIGRTMIN+3 (SIGTERM makes it re-execute itself).
        "--stop-signal",
        "SIGRTMIN+3",
        NODE_IMAGE,
    ]);
}

/// Waits until systemd in `node` finished booting (`running`, or `degraded` when some unit of the
/// minimal image failed, which the invoker does not need).
async fn wait_booted(node: &str) {
    let deadline = Instant::now() + BOOT_TIMEOUT;
    loop {
        let (_, state) = exec(node, &["systemctl", "is-system-running"]).await;
        let state = state.trim();
        if state == "running" || state == "degraded" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{node}: systemd not booted within {BOOT_TIMEOUT:?} (state {state:?}); failed units: {}",
            exec(node, &["systemctl", "--failed", "--no-pager"]).await.1
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `systemctl show -p <property> --value wasm-invoker` on `node`.
async fn unit_property(node: &str, property: &str) -> String {
    let (ok, value) = exec(
        node,
        &[
            "systemctl",
            "show",
            "-p",
            property,
            "--value",
            "wasm-invoker",
        ],
    )
    .await;
    assert!(ok, "{node}: systemctl show -p {property}: {value}");
    value.trim().to_string()
}

/// The main PID of the invoker's unit on `node` (it runs).
async fn main_pid(node: &str) -> u32 {
    let pid = unit_property(node, "MainPID").await;
    match pid.parse() {
        Ok(pid) if pid > 0 => pid,
        _ => panic!("{node}: wasm-invoker has no main process ({pid:?})"),
    }
}

/// The id of the unit's current run on `node` (a new one for every start).
async fn invocation(node: &str) -> String {
    let id = unit_property(node, "InvocationID").await;
    assert!(!id.is_empty(), "{node}: wasm-invoker has no invocation id");
    id
}

/// The journal of the invoker on `node` (for failure messages).
async fn journal(node: &str) -> String {
    exec(
        node,
        &["journalctl", "-u", "wasm-invoker", "--no-pager", "-n", "60"],
    )
    .await
    .1
}

// ---------------------------------------------------------------------------------------------
// Ansible

/// `$ANSIBLE_PLAYBOOK`, else `ansible-playbook` on `PATH`.
fn ansible_playbook() -> PathBuf {
    if let Some(path) = std::env::var_os("ANSIBLE_PLAYBOOK") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("ansible-playbook"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "ansible-playbook not found: set ANSIBLE_PLAYBOOK or put it on PATH (scripts/test \
                 installs PyPI's ansible into a venv), or set {SKIP_ENV}=1 to skip this test"
            )
        })
}

/// One host's line of the PLAY RECAP: counter name -> value.
type Recap = BTreeMap<String, BTreeMap<String, u64>>;

/// The PLAY RECAP of an `ansible-playbook` output: `node0 : ok=14 changed=0 unreachable=0 ...`.
fn recap(output: &str) -> Recap {
    let mut hosts = Recap::new();
    let Some((_, tail)) = output.rsplit_once("PLAY RECAP") else {
        return hosts;
    };
    for line in tail.lines().skip(1) {
        let Some((host, counters)) = line.split_once(" : ") else {
            continue;
        };
        let counters: BTreeMap<String, u64> = counters
            .split_whitespace()
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                Some((name.to_string(), value.parse().ok()?))
            })
            .collect();
        hosts.insert(host.trim().to_string(), counters);
    }
    hosts
}

/// Runs `ansible-playbook -i <inventory> <playbook> <extra...>` from the repository root and returns
/// its recap; a failed run (or a host that failed or was unreachable) fails the test with the
/// output.
async fn run_playbook(inventory: &Path, playbook: &str, extra: &[String]) -> (Recap, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = tokio::process::Command::new(ansible_playbook());
    command
        .current_dir(root)
        .arg("-i")
        .arg(inventory)
        .arg(playbook)
        .args(extra)
        // No colours, no retry files; modules piped through one `docker exec` each.
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env("ANSIBLE_PIPELINING", "1")
        .env(
            "ANSIBLE_LOCAL_TEMP",
            inventory.with_file_name("ansible-tmp"),
        )
        .stdin(Stdio::null())
        .kill_on_drop(true);
    eprintln!(
        "running: ansible-playbook -i {} {playbook} {}",
        inventory.display(),
        extra.join(" ")
    );
    let started = Instant::now();
    let output = within(
        PLAYBOOK_TIMEOUT,
        &format!("ansible-playbook {playbook}"),
        command.output(),
    )
    .await
    .unwrap_or_else(|error| panic!("ansible-playbook cannot run: {error}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "ansible-playbook {playbook}: {:?} in {:.1} s",
        output.status,
        started.elapsed().as_secs_f64()
    );
    let hosts = recap(&text);
    assert!(
        output.status.success(),
        "ansible-playbook {playbook} failed:\n{text}"
    );
    for (host, counters) in &hosts {
        assert_eq!(counters.get("failed"), Some(&0), "{host} failed:\n{text}");
        assert_eq!(
            counters.get("unreachable"),
            Some(&0),
            "{host} unreachable:\n{text}"
        );
    }
    (hosts, text)
}

/// The inventory (`hosts.ini`, OpenWhisk's groups) and its `group_vars/all.yml` (OpenWhisk's
/// variable names) for `nodes`, the broker and CouchDB of `cluster` at `gateway`.
fn write_inventory(dir: &Path, nodes: &[String], gateway: Ipv4Addr, cluster: &Cluster) -> PathBuf {
    let mut hosts = String::from("[invokers]\n");
    for (index, node) in nodes.iter().enumerate() {
        hosts.push_str(&format!(
            "node{index} ansible_connection=community.docker.docker ansible_host={node}\n"
        ));
    }
    hosts.push_str(&format!(
        "\n[kafkas]\nkafka0 ansible_host={gateway}\n\n[db]\n{gateway} ansible_host={gateway}\n\n\
         [all:vars]\nansible_python_interpreter=/usr/bin/python3\n"
    ));
    let couch = &cluster.couch;
    let prefix = couch
        .entity_db
        .strip_suffix("whisks")
        .expect("OpenWhisk's database names: <db_prefix>whisks");
    // JSON is YAML.
    let vars = json!({
        "kafka": {"advertisedPort": cluster.tansu.port()},
        "db_protocol": couch.protocol,
        "db_host": couch.host,
        "db_port": couch.port,
        "db_username": couch.username,
        "db_password": couch.password,
        "db_prefix": prefix,
        "invoker_user_memory": USER_MEMORY,
        "runtimes_manifest": serde_json::from_str::<Value>(MANIFEST).expect("manifest is JSON"),
        "wasm_invoker_mode": "service",
        // Tansu holds every fetch for the whole wait (benches/RESULTS-kafka.md).
        "wasm_invoker_extra_env": {"CONFIG_whisk_kafka_consumer_fetchMaxWaitMs": "5"},
    });
    std::fs::create_dir_all(dir.join("group_vars")).expect("group_vars");
    std::fs::write(dir.join("group_vars/all.yml"), vars.to_string()).expect("group vars");
    let inventory = dir.join("hosts.ini");
    std::fs::write(&inventory, hosts).expect("inventory");
    inventory
}

// ---------------------------------------------------------------------------------------------
// Kafka, as the controller

/// Produces `payload` to `topic` and waits for the broker to take it (one record per batch).
async fn produce(producer: &FutureProducer, topic: &str, payload: &str) {
    within(
        Duration::from_secs(60),
        "producing a record",
        producer.send(
            FutureRecord::<(), str>::to(topic).payload(payload),
            Duration::from_secs(10),
        ),
    )
    .await
    .map_err(|(error, _)| error)
    .expect("produce");
}

/// A non-blocking `echo0` activation number `n` for invoker `invoker`: (id, topic, payload).
fn activation(n: u32, invoker: u32) -> (String, String, String) {
    let (id, msg) = message("echo0", n, false, json!({"n": n}));
    (id, format!("invoker{invoker}"), msg.to_string())
}

/// A stream of activations alternating between the two topics, one every [`STREAM_EVERY`], until
/// `stop` is set (or [`STREAM_MAX`]); returns (id, invoker, produced at ms since the epoch).
fn stream(
    producer: FutureProducer,
    first: u32,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(String, u32, u64)>> {
    tokio::spawn(async move {
        let mut sent = Vec::new();
        let mut ticker = tokio::time::interval(STREAM_EVERY);
        for n in first..first + STREAM_MAX {
            ticker.tick().await;
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let invoker = n % 2;
            let (id, topic, payload) = activation(n, invoker);
            produce(&producer, &topic, &payload).await;
            sent.push((id, invoker, now_millis()));
        }
        sent
    })
}

/// Every slot-freeing ack in `completed0`, read again from offset 0 ([`controller::reread_acks`]):
/// activation id -> the instances that answered it (one entry per ack).
async fn read_acks(bootstrap: &str) -> HashMap<String, Vec<u32>> {
    let mut acks: HashMap<String, Vec<u32>> = HashMap::new();
    for (id, from) in controller::reread_acks(bootstrap, "completed0-cluster-reread", QUIET).await {
        acks.entry(id).or_default().push(from);
    }
    acks
}

/// Reads `completed0` again until every id of `expected` has an ack or `limit` passes; returns the
/// last reading.
async fn wait_answered<'a>(
    bootstrap: &str,
    expected: impl IntoIterator<Item = &'a String> + Clone,
    limit: Duration,
) -> HashMap<String, Vec<u32>> {
    let deadline = Instant::now() + limit;
    loop {
        let acks = read_acks(bootstrap).await;
        let missing = expected
            .clone()
            .into_iter()
            .filter(|id| !acks.contains_key(*id))
            .count();
        if missing == 0 || Instant::now() >= deadline {
            return acks;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Fails the test unless each of `ids` was answered exactly once, by `invoker`.
fn assert_once(acks: &HashMap<String, Vec<u32>>, ids: &[(String, u32)], what: &str) {
    for (id, invoker) in ids {
        assert_eq!(
            acks.get(id),
            Some(&vec![*invoker]),
            "{what}: activation {id} of invoker{invoker}"
        );
    }
}

/// The next ping from the live `health` read with its record time (ms since the epoch), or `None`
/// after `timeout`.
async fn ping_with_time(cluster: &Cluster, timeout: Duration) -> Option<(PingMessage, i64)> {
    let (raw, time) = next_with_time(&cluster.health, timeout).await?;
    let ping = PingMessage::parse(&raw).expect("ping parses");
    Some((ping, time.unwrap_or_default()))
}

/// Reads pings until one from `instance` that was sent after `after` (ms since the epoch), within
/// `limit`. Older pings (the live read lags behind after a long phase) are skipped.
async fn await_ping_after(cluster: &Cluster, instance: u32, after: i64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while let Some((ping, time)) =
        ping_with_time(cluster, deadline.saturating_duration_since(Instant::now())).await
    {
        if ping.name.instance == instance && time > after {
            return true;
        }
    }
    false
}

/// One HTTP/1.1 GET to `address:port`; (status, body), or `None` when it cannot connect.
async fn http_get(address: &str, port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((address, port)).await.ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let status = response.split(' ').nth(1)?.parse().ok()?;
        let body = response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten()
}

/// The address of `container` on `network`.
fn address(container: &str, network: &str) -> String {
    docker(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
        container,
    ])
}

// ---------------------------------------------------------------------------------------------

#[test]
fn test_two_nodes_deployed_by_ansible_serve_restart_and_survive_a_kill() {
    if std::env::var(SKIP_ENV).is_ok_and(|value| value == "1") {
        eprintln!("skipped: {SKIP_ENV}=1");
        return;
    }
    let playbook = ansible_playbook();
    eprintln!("ansible-playbook: {}", playbook.display());
    let present = Command::new("docker")
        .args(["image", "inspect", NODE_IMAGE])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        present,
        "the node image {NODE_IMAGE} is missing: run scripts/build-node-image (scripts/test does), \
         or set {SKIP_ENV}=1 to skip this test"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(cluster_case());
}

async fn cluster_case() {
    let started = Instant::now();
    let phase = |name: &str| eprintln!("[{:6.1} s] {name}", started.elapsed().as_secs_f64());
    let unique = format!(
        "{NAME_PREFIX}{}-{}",
        std::process::id(),
        now_millis() % 100_000
    );
    let nodes: Vec<String> = (0..2).map(|n| format!("{unique}-node{n}")).collect();
    let guard = DockerGuard {
        network: Some(unique.clone()),
        nodes: nodes.clone(),
    };
    docker(&["network", "create", &unique]);
    let gateway: Ipv4Addr = docker(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        &unique,
    ])
    .parse()
    .expect("the network's gateway is an IPv4 address");
    for (index, node) in nodes.iter().enumerate() {
        start_node(node, &format!("node{index}"), &unique);
    }
    let cluster = Cluster::services_on(gateway).await;
    for node in &nodes {
        wait_booted(node).await;
    }
    phase("nodes booted, broker and CouchDB up");

    // 1. Deploy, twice.
    let dir = tempfile::tempdir().expect("tmp");
    let inventory = write_inventory(dir.path(), &nodes, gateway, &cluster);
    let binary = format!("wasm_invoker_binary={}", env!("CARGO_BIN_EXE_wasm-invoker"));
    let deploy = ["-e".to_string(), binary];
    let (first, _) = run_playbook(&inventory, "deploy/ansible/invoker.yml", &deploy).await;
    for host in ["node0", "node1"] {
        let changed = first.get(host).and_then(|c| c.get("changed")).copied();
        assert!(
            changed.unwrap_or(0) > 0,
            "{host}: the first deploy changed nothing: {first:?}"
        );
    }
    phase("deployed");
    let (second, text) = run_playbook(&inventory, "deploy/ansible/invoker.yml", &deploy).await;
    for host in ["node0", "node1"] {
        assert_eq!(
            second.get(host).and_then(|c| c.get("changed")),
            Some(&0),
            "{host}: the second deploy changed something:\n{text}"
        );
    }
    phase("deployed again: changed=0");
    for node in &nodes {
        let (active, state) = exec(node, &["systemctl", "is-active", "wasm-invoker"]).await;
        assert!(active, "{node}: wasm-invoker is {state}");
        let (enabled, state) = exec(node, &["systemctl", "is-enabled", "wasm-invoker"]).await;
        assert!(enabled, "{node}: wasm-invoker is {state}");
        let (ok, out) = exec(node, &["systemd-analyze", "verify", "wasm-invoker.service"]).await;
        assert!(ok, "{node}: systemd-analyze verify: {out}");
        // The unit's sandbox is in force: the invoker sees `/` read-only (ProtectSystem=strict).
        let pid = main_pid(node).await;
        let (_, mounts) = exec(node, &["cat", &format!("/proc/{pid}/mountinfo")]).await;
        let root_options = mounts
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|fields| fields.get(4) == Some(&"/"))
            .and_then(|fields| fields.get(5).map(|options| (*options).to_string()));
        assert!(
            root_options
                .as_deref()
                .is_some_and(|options| options.split(',').any(|o| o == "ro")),
            "{node}: the invoker's / is not read-only ({root_options:?}): no ProtectSystem=strict"
        );
    }

    // 2. Pings, then 400 activations alternating between the topics.
    within(
        Duration::from_secs(120),
        "pings from both nodes",
        cluster.await_pings(&[0, 1], Duration::from_secs(120)),
    )
    .await;
    for (index, node) in nodes.iter().enumerate() {
        let port = ADMIN_BASE_PORT + u16::try_from(index).expect("two nodes");
        let answer = http_get(&address(node, &unique), port, "/ping").await;
        assert_eq!(answer, Some((200, "pong".to_string())), "{node}: GET /ping");
    }
    phase("both nodes ping; /ping answers on 12001 and 12002");
    let mut expected: Vec<(String, u32)> = Vec::new();
    for n in 0..BATCH {
        let invoker = n % 2;
        let (id, topic, payload) = activation(n, invoker);
        produce(&cluster.producer, &topic, &payload).await;
        expected.push((id, invoker));
    }
    let bootstrap = cluster.tansu.bootstrap();
    let ids = || expected.iter().map(|(id, _)| id);
    let acks = wait_answered(&bootstrap, ids(), ANSWER_TIMEOUT).await;
    assert_once(&acks, &expected, "the first 400");
    assert_eq!(acks.len(), expected.len(), "acks of unknown activations");
    phase("400 activations answered exactly once");

    // 3. A rolling restart while a stream flows.
    let mut before = Vec::new();
    for node in &nodes {
        before.push(invocation(node).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flowing = stream(cluster.producer.clone(), 10_000, stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rolled, text) = run_playbook(&inventory, "deploy/ansible/rolling-restart.yml", &[]).await;
    for (node, before) in nodes.iter().zip(&before) {
        let after = invocation(node).await;
        assert_ne!(
            &after, before,
            "{node}: the unit was not restarted:\n{text}"
        );
    }
    for host in ["node0", "node1"] {
        assert!(
            rolled
                .get(host)
                .and_then(|c| c.get("changed"))
                .copied()
                .unwrap_or(0)
                > 0,
            "{host}: not restarted:\n{text}"
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let sent = within(Duration::from_secs(60), "the stream's end", flowing)
        .await
        .expect("stream task");
    assert!(
        sent.len() < STREAM_MAX as usize,
        "the stream ran out before the restart ended"
    );
    let streamed: Vec<(String, u32)> = sent.iter().map(|(id, i, _)| (id.clone(), *i)).collect();
    expected.extend(streamed.iter().cloned());
    let acks = wait_answered(
        &bootstrap,
        expected.iter().map(|(id, _)| id),
        ANSWER_TIMEOUT,
    )
    .await;
    assert_once(&acks, &expected, "during the rolling restart");
    assert_eq!(acks.len(), expected.len(), "acks of unknown activations");
    phase(&format!(
        "rolling restart: {} streamed activations answered exactly once",
        streamed.len()
    ));

    // 4. docker kill of node 1 during a stream; node 0 goes on; docker start brings node 1 back.
    let stop = Arc::new(AtomicBool::new(false));
    let flowing = stream(cluster.producer.clone(), 20_000, stop.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    docker_async(&["kill", &nodes[1]]).await;
    let killed_at = Instant::now();
    let killed_ms = i64::try_from(now_millis()).expect("fits");
    phase("node 1 killed");
    // No ping from invoker 1 sent after the kill (allowing a second for one in flight); invoker 0
    // pings on.
    let silence_end = killed_ms + i64::try_from(SILENCE.as_millis()).expect("fits");
    let deadline = Instant::now() + SILENCE + Duration::from_secs(30);
    let mut zero_after_silence = false;
    while !zero_after_silence {
        let (ping, time) =
            ping_with_time(&cluster, deadline.saturating_duration_since(Instant::now()))
                .await
                .unwrap_or_else(|| panic!("no ping from invoker 0 after the kill"));
        if ping.name.instance == 1 {
            assert!(
                time <= killed_ms + 1000,
                "invoker 1 pinged {} ms after its node was killed",
                time - killed_ms
            );
        } else if time > silence_end {
            zero_after_silence = true;
        }
    }
    phase("node 1 silent, node 0 pings");
    tokio::time::sleep_until((killed_at + DEAD_MEMBER_EXPIRED).into()).await;
    docker_async(&["start", &nodes[1]]).await;
    let restarted_ms = i64::try_from(now_millis()).expect("fits");
    phase("node 1 started again");
    if !await_ping_after(&cluster, 1, restarted_ms, Duration::from_secs(180)).await {
        panic!(
            "invoker 1 does not ping after docker start; its journal:\n{}",
            journal(&nodes[1]).await
        );
    }
    phase("node 1 pings again");
    let (active, state) = exec(&nodes[1], &["systemctl", "is-active", "wasm-invoker"]).await;
    assert!(active, "node 1: wasm-invoker is {state} after docker start");
    let answer = http_get(&address(&nodes[1], &unique), ADMIN_BASE_PORT + 1, "/ping").await;
    assert_eq!(
        answer,
        Some((200, "pong".to_string())),
        "node 1: GET /ping after docker start"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::SeqCst);
    let sent = within(Duration::from_secs(60), "the stream's end", flowing)
        .await
        .expect("stream task");
    // A second of margin: `docker kill` returns once the signal is sent, not once the node is dead.
    let killed_ms = u64::try_from(killed_ms).expect("positive") + 1000;
    // Invoker 0's, and invoker 1's sent after the kill: every one answered once. Invoker 1's sent
    // before: at most IN_FLIGHT lost (taken, not yet answered, when it died), none twice.
    let must: Vec<(String, u32)> = sent
        .iter()
        .filter(|(_, invoker, at)| *invoker == 0 || *at > killed_ms)
        .map(|(id, i, _)| (id.clone(), *i))
        .collect();
    let may: BTreeSet<String> = sent
        .iter()
        .filter(|(_, invoker, at)| *invoker == 1 && *at <= killed_ms)
        .map(|(id, _, _)| id.clone())
        .collect();
    let acks = wait_answered(&bootstrap, must.iter().map(|(id, _)| id), ANSWER_TIMEOUT).await;
    assert_once(&acks, &expected, "earlier phases");
    assert_once(&acks, &must, "around the kill");
    let lost = may.iter().filter(|id| !acks.contains_key(*id)).count();
    for id in &may {
        if let Some(from) = acks.get(id) {
            assert_eq!(from, &vec![1], "activation {id} of invoker1");
        }
    }
    assert!(
        lost <= IN_FLIGHT,
        "{lost} of invoker 1's messages lost at the kill"
    );
    assert_eq!(
        acks.len(),
        expected.len() + must.len() + may.len() - lost,
        "acks of unknown activations"
    );
    phase(&format!(
        "kill: {} answered exactly once after the kill, {} of {} sent to node 1 before it lost",
        must.len(),
        lost,
        may.len()
    ));
    drop(cluster);
    drop(guard);
}

/// The unit files pass `systemd-analyze verify` (the node image's systemd 252, with the binary this
/// test built at `ExecStart=`'s path; the template as an instance), both playbooks pass
/// `--syntax-check`, and the role's `container` mode, which the nodes cannot run (they have no
/// Docker engine), renders and passes community.docker's argument checks in a check-mode run
/// against this host's engine: it only reads (the image, a container by a `wi-cluster-` name that
/// does not exist) and creates nothing. A real container-mode deploy is not run here.
#[test]
fn test_units_verify_and_the_container_mode_renders() {
    if std::env::var(SKIP_ENV).is_ok_and(|value| value == "1") {
        eprintln!("skipped: {SKIP_ENV}=1");
        return;
    }
    let playbook = ansible_playbook();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unique = format!(
        "{NAME_PREFIX}check-{}-{}",
        std::process::id(),
        now_millis() % 100_000
    );
    let verifier = format!("{unique}-verify");
    let container = format!("{unique}-invoker0");
    let _guard = DockerGuard {
        network: None,
        nodes: vec![verifier.clone(), container.clone()],
    };

    // 1. systemd-analyze verify, in the node image.
    let units = root.join("deploy/systemd");
    let binary = env!("CARGO_BIN_EXE_wasm-invoker");
    let output = Command::new("docker")
        .args(["run", "--rm", "--name", &verifier, "-v"])
        .arg(format!("{}:/units:ro", units.display()))
        .arg("-v")
        .arg(format!("{binary}:/usr/local/bin/wasm-invoker:ro"))
        .args([
            NODE_IMAGE,
            "timeout",
            "60",
            "systemd-analyze",
            "verify",
            "/units/wasm-invoker.service",
            "/units/wasm-invoker@.service",
        ])
        .output()
        .expect("docker run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && text.trim().is_empty(),
        "systemd-analyze verify of deploy/systemd ({}): {text}",
        output.status
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tmp");
        // community.docker's modules need `requests` in the interpreter that runs them: the venv's
        // own (scripts/test installs it there).
        let python = playbook.with_file_name("python");
        let python = if python.is_file() {
            python
        } else {
            PathBuf::from("/usr/bin/python3")
        };
        let inventory = dir.path().join("hosts.ini");
        std::fs::write(
            &inventory,
            format!(
                "[invokers]\nnode0 ansible_connection=local ansible_python_interpreter={}\n\n\
                 [kafkas]\nkafka0 ansible_host=127.0.0.1\n",
                python.display()
            ),
        )
        .expect("inventory");

        // 2. Both playbooks parse.
        for book in [
            "deploy/ansible/invoker.yml",
            "deploy/ansible/rolling-restart.yml",
        ] {
            run_playbook(&inventory, book, &["--syntax-check".to_string()]).await;
        }

        // 3. container mode, check mode: the container task is reached and accepted.
        let extra: Vec<String> = [
            "--check".to_string(),
            "--diff".to_string(),
            "-e".to_string(),
            "wasm_invoker_mode=container".to_string(),
            "-e".to_string(),
            format!("wasm_invoker_name={container}"),
            "-e".to_string(),
            format!(
                "wasm_invoker_logs_dir={}",
                dir.path().join("logs").display()
            ),
        ]
        .into();
        let (hosts, text) = run_playbook(&inventory, "deploy/ansible/invoker.yml", &extra).await;
        let node = hosts
            .get("node0")
            .unwrap_or_else(|| panic!("no recap:\n{text}"));
        assert_eq!(node.get("failed"), Some(&0), "{text}");
        let task = text
            .split_once("TASK [wasm_invoker : The invoker container]")
            .map(|(_, rest)| rest.split("TASK [").next().unwrap_or_default())
            .unwrap_or_else(|| panic!("the container task did not run:\n{text}"));
        assert!(
            task.contains("changed: [node0]"),
            "the container task in check mode (a container to create):\n{text}"
        );
        assert!(
            !dir.path().join("logs").exists(),
            "check mode created the log directory"
        );
    });
    let present = Command::new("docker")
        .args(["container", "inspect", &container])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(!present, "check mode created the container {container}");
}
