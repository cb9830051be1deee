//! Density: how many concurrent activations of a sleeping `echo`-sized guest (the `sleep` example
//! action) fit in 1 GiB of the invoker's resident memory, and what an idle warm container and an
//! idle warm pool slot cost; beside it Docker's figure for the same action when a daemon is up.
//!
//! Wasm: each point N (0, 100, 250, 500, 1000) runs in a fresh child process (this executable again,
//! with `DENSITY_CHILD` set) so that its baseline holds nothing from other points. The child builds
//! a wasm factory with `POOL` slots (the same for every N, so that only the activations differ),
//! compiles `sleep` and runs it once (the baseline: runtime, engine, one compiled module), then
//! - `idle`: creates and initialises N containers (one per activation, as OpenWhisk's default
//!   action concurrency of 1 asks) and reads VmRSS;
//! - `active`: starts one sleeping activation in each, waits until all N hold a pool memory, and
//!   reads VmRSS while they sleep;
//! - `after`: waits for them to end and for any idle blocking thread to leave
//!   (`THREAD_KEEP_ALIVE`; guests run on the workers and hold no thread, but compilation does), and
//!   reads VmRSS again: N idle warm containers whose pool slots keep up
//!   to `keep_resident_bytes` resident each.
//!
//! The parent fits a line through the points of each phase: the slope is the cost of one more
//! activation (or container, or warm slot), the intercept the fixed baseline. Both the default
//! configuration and `keep_resident_bytes = 0` are measured.
//!
//! Docker: `DOCKER_CONTAINERS` containers of the test runtime image running the native `sleep`,
//! each container's memory read from its cgroup (what `docker stats` shows: usage less inactive file
//! cache), plus the proportional resident memory (PSS) of each container's `containerd-shim`
//! process and the growth of `dockerd`'s. Skipped, with the reason, when there is no daemon or no image
//! (`scripts/build-test-image`).
//!
//! Run: `cargo bench --bench density`. Every wait is bounded (`CHILD_BUDGET`, `START_BUDGET`); the
//! only traffic is to our own containers on this host. Results go to
//! `target/bench-results/density.json` (see `benches/support/results.rs`) and, by hand, to
//! `benches/RESULTS-density.md`.

#[path = "support/results.rs"]
mod results;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use factory::docker::{DockerConfig, DockerFactory, Manifest};
use factory::wasm::{WASM_WASIP1_KIND, WasmConfig, WasmFactory};
use factory::{
    ActivationContext, Code, Container, ContainerSpec, Factory, InitRequest, Limits, Purpose,
    RunRequest, Status,
};
use results::{Recorder, Series};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The environment variable that makes this executable a measuring child: `<n>:<keep_resident>`.
const CHILD_ENV: &str = "DENSITY_CHILD";
/// Concurrent activations measured.
const POINTS: [usize; 5] = [0, 100, 250, 500, 1000];
/// Pool slots of every child: the largest point.
const POOL: u32 = 1000;
/// How long each wasm activation sleeps: long enough to start all of them and read the RSS.
const SLEEP_MS: u64 = 6000;
/// Longest wait for all activations of a point to be running.
const START_BUDGET: Duration = Duration::from_secs(60);
/// A child taking longer than this is killed and its point dropped.
const CHILD_BUDGET: Duration = Duration::from_secs(120);
/// How long an idle tokio blocking thread lives in the children.
const THREAD_KEEP_ALIVE: Duration = Duration::from_millis(500);
/// Docker containers measured (each one `sleep` activation).
const DOCKER_CONTAINERS: usize = 16;
/// How long each Docker activation sleeps.
const DOCKER_SLEEP_MS: u64 = 20_000;
/// 1 GiB in MiB.
const GIB_MIB: f64 = 1024.0;

/// What a child measured, in KiB (as `/proc/self/status` gives them).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Point {
    n: usize,
    keep_resident_bytes: u64,
    base_kib: u64,
    idle_kib: u64,
    active_kib: u64,
    after_kib: u64,
    /// `RssAnon` while the activations sleep.
    active_anon_kib: u64,
    /// Threads of the process while the activations sleep.
    active_threads: u64,
    /// Threads of the process after the activations ended and idle blocking threads left.
    after_threads: u64,
    /// `pool_unused_memory_bytes_resident` of the factory after the activations ended.
    after_pool_resident_bytes: u64,
}

fn limits() -> Limits {
    Limits {
        timeout: 60_000,
        memory: 128,
        logs: 0,
        concurrency: 1,
    }
}

fn context() -> ActivationContext {
    ActivationContext {
        activation_id: "0123456789abcdef0123456789abcdef".into(),
        namespace: "guest".into(),
        action_name: "/guest/sleep".into(),
        action_version: Some("0.0.1".into()),
        transaction_id: "density".into(),
        api_key: None,
        deadline: SystemTime::now() + Duration::from_secs(60),
    }
}

fn spec(kind: &str) -> ContainerSpec {
    ContainerSpec {
        kind: kind.into(),
        image: None,
        memory_mb: 128,
        purpose: Purpose::Cold {
            namespace: "guest".into(),
            action: "sleep".into(),
        },
    }
}

async fn deploy(factory: &dyn Factory, kind: &str, code: &Code) -> Arc<dyn Container> {
    let container = factory.create(spec(kind)).await.expect("a container");
    let init = InitRequest {
        name: "sleep".into(),
        main: None,
        code: Some(code.clone()),
        env: BTreeMap::new(),
        context: context(),
        limits: limits(),
    };
    container.init(init).await.expect("init");
    container
}

async fn sleep(container: Arc<dyn Container>, ms: u64) {
    let request = RunRequest {
        params: json!({ "ms": ms }),
        context: context(),
        limits: limits(),
    };
    let outcome = container.run(request).await;
    assert_eq!(outcome.status, Status::Success, "{outcome:?}");
}

/// A field of `/proc/self/status` (or of another process's), in KiB.
fn status_kib(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `Threads` of a `/proc/<pid>/status`.
fn threads(status: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0)
}

fn own_status() -> String {
    std::fs::read_to_string("/proc/self/status").expect("/proc/self/status")
}

/// The measuring child: one point, printed as one JSON line on stdout.
fn child(n: usize, keep_resident_bytes: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(n + 16)
        // Idle blocking threads end after this (tokio's default is 10 s), so that `after` measures
        // the warm containers and slots rather than threads about to go.
        .thread_keep_alive(THREAD_KEEP_ALIVE)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let point = runtime.block_on(async {
        let factory = WasmFactory::new(WasmConfig {
            pool_instances: POOL,
            keep_resident_bytes,
            ..WasmConfig::default()
        })
        .expect("a wasm factory");
        let path = ow_action::artifacts::wasm_module("sleep").expect("the example actions build");
        let code = Code::Binary(Arc::from(std::fs::read(path).expect("the built module")));
        // The baseline has run the action once: runtime, engine, ticker and the compiled module.
        sleep(deploy(&factory, WASM_WASIP1_KIND, &code).await, 1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let base_kib = status_kib(&own_status(), "VmRSS");

        let mut containers = Vec::with_capacity(n);
        for _ in 0..n {
            containers.push(deploy(&factory, WASM_WASIP1_KIND, &code).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let idle_kib = status_kib(&own_status(), "VmRSS");

        let tasks: Vec<_> = containers
            .iter()
            .map(|container| tokio::spawn(sleep(Arc::clone(container), SLEEP_MS)))
            .collect();
        let deadline = Instant::now() + START_BUDGET;
        // Plus the memory of the baseline's finished instance, which the pool does not count.
        while factory.metrics().pool_memories < n as u64 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let running = factory.metrics().pool_memories;
        assert_eq!(
            running, n as u64,
            "all activations running within the budget"
        );
        // Each one is past instantiation; give the last ones time to reach their sleep.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = own_status();
        let (active_kib, active_anon_kib, active_threads) = (
            status_kib(&status, "VmRSS"),
            status_kib(&status, "RssAnon"),
            threads(&status),
        );
        for task in tasks {
            task.await.expect("an activation task");
        }
        tokio::time::sleep(THREAD_KEEP_ALIVE * 3).await;
        let status = own_status();
        let after_kib = status_kib(&status, "VmRSS");
        let after_threads = threads(&status);
        Point {
            n,
            keep_resident_bytes,
            base_kib,
            idle_kib,
            active_kib,
            after_kib,
            active_anon_kib,
            active_threads,
            after_threads,
            after_pool_resident_bytes: factory.metrics().pool_unused_memory_bytes_resident,
        }
    });
    println!(
        "{}",
        serde_json::to_string(&point).expect("a point serialises")
    );
}

/// Runs one point in a child process, bounded by `CHILD_BUDGET`.
fn measure(n: usize, keep_resident_bytes: u64) -> Option<Point> {
    let exe = std::env::current_exe().expect("this executable");
    let mut child = Command::new(exe)
        .env(CHILD_ENV, format!("{n}:{keep_resident_bytes}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("a child process");
    let deadline = Instant::now() + CHILD_BUDGET;
    let status = loop {
        match child.try_wait().expect("the child's status") {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => break None,
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let Some(status) = status else {
        eprintln!("density: the point N = {n} took longer than {CHILD_BUDGET:?}; killed");
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    let mut output = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_string(&mut output)
            .expect("the child's output");
    }
    if !status.success() {
        eprintln!("density: the point N = {n} failed ({status})");
        return None;
    }
    output
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
}

/// Least-squares line through `(x, y)`: (slope, intercept).
fn fit(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (sxy, sxx) = points.iter().fold((0.0, 0.0), |(sxy, sxx), (x, y)| {
        (sxy + (x - mx) * (y - my), sxx + (x - mx) * (x - mx))
    });
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (slope, my - slope * mx)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The wasm points of one configuration; prints the table and records the series.
fn wasm(recorder: &mut Recorder, keep_resident_bytes: u64, label: &str) {
    let points: Vec<Point> = POINTS
        .iter()
        .filter_map(|&n| measure(n, keep_resident_bytes))
        .collect();
    println!("\nwasm, {label} (pool {POOL} slots, `sleep` {SLEEP_MS} ms):\n");
    println!(
        "| N | baseline MiB | N idle containers MiB | N sleeping MiB | RssAnon MiB | threads | after (N warm slots) MiB | threads after | pool resident MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for p in &points {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} | {} | {:.1} |",
            p.n,
            mib(p.base_kib),
            mib(p.idle_kib),
            mib(p.active_kib),
            mib(p.active_anon_kib),
            p.active_threads,
            mib(p.after_kib),
            p.after_threads,
            p.after_pool_resident_bytes as f64 / 1048576.0,
        );
    }
    if points.len() < 2 {
        recorder.note(format!("wasm {label}: fewer than two points measured"));
        return;
    }
    let phase = |of: fn(&Point) -> u64| -> Vec<(f64, f64)> {
        points.iter().map(|p| (p.n as f64, mib(of(p)))).collect()
    };
    let active = phase(|p| p.active_kib);
    let idle = phase(|p| p.idle_kib - p.base_kib);
    let after = phase(|p| p.after_kib - p.idle_kib);
    let (active_slope, active_base) = fit(&active);
    let (idle_slope, _) = fit(&idle);
    let (after_slope, _) = fit(&after);
    let summary = format!(
        "wasm {label}: {:.3} MiB per sleeping activation (its container included), {:.0} activations per GiB, fixed baseline {:.1} MiB; idle warm container {:.1} KiB; idle warm pool slot {:.1} KiB",
        active_slope,
        GIB_MIB / active_slope,
        active_base,
        idle_slope * 1024.0,
        after_slope * 1024.0,
    );
    println!("\n{summary}");
    recorder.note(summary);
    recorder.push(Series::points(
        "density_rss",
        &format!("wasm {label}: N sleeping"),
        "MiB",
        "concurrent sleeping activations",
        active,
    ));
    recorder.push(Series::points(
        "density_rss",
        &format!("wasm {label}: N idle warm (after)"),
        "MiB",
        "concurrent sleeping activations",
        phase(|p| p.after_kib),
    ));
    recorder.push(Series::points(
        "density_per_activation",
        &format!("wasm {label}"),
        "MiB",
        "",
        vec![
            (0.0, active_slope),
            (1.0, idle_slope),
            (2.0, after_slope),
            (3.0, active_base),
        ],
    ));
}

/// The memory of one Docker container, in KiB: its cgroup's usage less inactive file cache (what
/// `docker stats` shows), cgroup v1 or v2.
fn container_kib(id: &str) -> Option<u64> {
    let stat_value = |stat: &str, key: &str| {
        stat.lines().find_map(|line| {
            let (name, value) = line.split_once(' ')?;
            (name == key).then(|| value.trim().parse::<u64>().ok())?
        })
    };
    let v1 = Path::new("/sys/fs/cgroup/memory/docker").join(id);
    if let Ok(usage) = std::fs::read_to_string(v1.join("memory.usage_in_bytes")) {
        let stat = std::fs::read_to_string(v1.join("memory.stat")).unwrap_or_default();
        let inactive = stat_value(&stat, "total_inactive_file").unwrap_or(0);
        return Some(usage.trim().parse::<u64>().ok()?.saturating_sub(inactive) / 1024);
    }
    for v2 in [
        Path::new("/sys/fs/cgroup/system.slice").join(format!("docker-{id}.scope")),
        Path::new("/sys/fs/cgroup/docker").join(id),
    ] {
        if let Ok(current) = std::fs::read_to_string(v2.join("memory.current")) {
            let stat = std::fs::read_to_string(v2.join("memory.stat")).unwrap_or_default();
            let inactive = stat_value(&stat, "inactive_file").unwrap_or(0);
            return Some(current.trim().parse::<u64>().ok()?.saturating_sub(inactive) / 1024);
        }
    }
    None
}

/// Proportional resident KiB (`Pss` of `smaps_rollup`: shared pages such as the code of the
/// identical shim binaries counted once in total, not once per process; `VmRSS` where the kernel
/// has no `smaps_rollup`) of the processes whose command line satisfies `wanted`, and how many
/// there are.
fn processes_kib(wanted: impl Fn(&str) -> bool) -> (u64, usize) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    let mut total = (0, 0);
    for entry in entries.flatten() {
        let dir = entry.path();
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if wanted(&cmdline) {
            let kib = match std::fs::read_to_string(dir.join("smaps_rollup")) {
                Ok(rollup) => status_kib(&rollup, "Pss"),
                Err(_) => status_kib(
                    &std::fs::read_to_string(dir.join("status")).unwrap_or_default(),
                    "VmRSS",
                ),
            };
            total.0 += kib;
            total.1 += 1;
        }
    }
    total
}

fn dockerd_kib() -> u64 {
    processes_kib(|cmdline| {
        cmdline
            .split(' ')
            .next()
            .is_some_and(|exe| exe.ends_with("dockerd"))
    })
    .0
}

/// Docker's figure, or why it was skipped.
async fn docker(recorder: &mut Recorder) -> Result<(), String> {
    let manifest = Manifest::from_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("factory/tests/docker/runtimes.json"),
    )
    .map_err(|error| format!("the test manifest: {error}"))?;
    let config = DockerConfig {
        name_prefix: "wskdensity".into(),
        ..DockerConfig::default()
    };
    let docker = DockerFactory::connect(config, manifest)
        .await
        .map_err(|error| format!("no Docker daemon: {error}"))?;
    docker
        .cleanup()
        .await
        .map_err(|error| format!("cleanup: {error}"))?;
    let binary = ow_action::artifacts::native_binary("sleep")
        .map_err(|error| format!("the native sleep action: {error}"))?;
    let code = Code::Binary(
        std::fs::read(binary)
            .map_err(|error| format!("the native sleep action: {error}"))?
            .into(),
    );
    let dockerd_before = dockerd_kib();
    let mut containers = Vec::with_capacity(DOCKER_CONTAINERS);
    for _ in 0..DOCKER_CONTAINERS {
        let container = docker.create(spec("native:test")).await.map_err(|error| {
            format!("cannot create a container (scripts/build-test-image?): {error}")
        })?;
        let init = InitRequest {
            name: "sleep".into(),
            main: None,
            code: Some(code.clone()),
            env: BTreeMap::new(),
            context: context(),
            limits: limits(),
        };
        container
            .init(init)
            .await
            .map_err(|outcome| format!("init: {:?}", outcome.result))?;
        containers.push(container);
    }
    let tasks: Vec<_> = containers
        .iter()
        .map(|container| tokio::spawn(sleep(Arc::clone(container), DOCKER_SLEEP_MS)))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let measure_all =
        |containers: &[Arc<dyn Container>]| -> Result<(Vec<f64>, f64, usize), String> {
            let mut memory = Vec::new();
            let mut shims = (0, 0);
            for container in containers {
                let id = container.id();
                memory.push(mib(container_kib(id).ok_or_else(|| {
                    format!("no cgroup memory files for container {id}")
                })?));
                let (kib, count) = processes_kib(|cmdline| {
                    cmdline.contains("containerd-shim") && cmdline.contains(id)
                });
                shims = (shims.0 + kib, shims.1 + count);
            }
            Ok((memory, mib(shims.0), shims.1))
        };
    let sleeping = measure_all(&containers);
    let dockerd_growth = mib(dockerd_kib().saturating_sub(dockerd_before));
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_millis(DOCKER_SLEEP_MS + 30_000), task).await;
    }
    let idle = measure_all(&containers);
    for container in &containers {
        let _ = container.destroy().await;
    }
    let _ = docker.cleanup().await;
    let (sleeping, shim_mib, shim_count) = sleeping?;
    let (idle, _, _) = idle?;
    let n = containers.len() as f64;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let per_container = mean(&sleeping) + shim_mib / n + dockerd_growth / n;
    let summary = format!(
        "docker: {:.2} MiB per sleeping container (cgroup {:.2} MiB + containerd-shim {:.2} MiB PSS ({} shims for {} containers) + dockerd growth {:.2} MiB PSS), {:.0} containers per GiB; idle warm container cgroup {:.2} MiB",
        per_container,
        mean(&sleeping),
        shim_mib / n,
        shim_count,
        containers.len(),
        dockerd_growth / n,
        GIB_MIB / per_container,
        mean(&idle),
    );
    println!("\n{summary}");
    recorder.note(summary);
    recorder.push(Series::points(
        "density_rss",
        "docker: N sleeping containers (cgroup + shim + dockerd growth)",
        "MiB",
        "concurrent sleeping activations",
        vec![(0.0, 0.0), (n, n * per_container)],
    ));
    recorder.push(Series::samples(
        "docker_container_mib",
        "docker: sleeping container (cgroup)",
        "MiB",
        sleeping,
    ));
    recorder.push(Series::points(
        "density_per_activation",
        "docker",
        "MiB",
        "",
        vec![
            (0.0, per_container),
            (1.0, mean(&idle) + shim_mib / n),
            (4.0, shim_mib / n),
            (5.0, dockerd_growth / n),
        ],
    ));
    Ok(())
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (n, keep) = spec
            .split_once(':')
            .and_then(|(n, keep)| Some((n.parse().ok()?, keep.parse().ok()?)))
            .expect("DENSITY_CHILD is <n>:<keep_resident_bytes>");
        child(n, keep);
        return;
    }
    let mut recorder = Recorder::start("density");
    // Build the example actions before the children need them.
    ow_action::artifacts::wasm_module("sleep").expect("the example actions build");
    wasm(
        &mut recorder,
        WasmConfig::default().keep_resident_bytes,
        "default config",
    );
    wasm(&mut recorder, 0, "keep_resident_bytes = 0");
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    if let Err(reason) = runtime.block_on(docker(&mut recorder)) {
        let note = format!("docker: skipped: {reason}");
        println!("\n{note}");
        recorder.note(note);
    }
    recorder.finish();
}
