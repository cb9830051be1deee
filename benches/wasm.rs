//! The wasm factory's costs, measured with criterion on the real example actions:
//!
//! - `warm/echo_activation`: one warm activation of `echo` through `Container::run` (a pool slot,
//!   a blocking-thread hop, a fresh store + WASI context + instance, the run, the output parsed).
//! - `warm/instantiate_only`: the pooled instantiation alone (store + WASI context + instance,
//!   created and dropped, nothing run).
//! - `warm/instantiate_reset_after`: the same instantiation, with the slot's reset done after the
//!   timed part, as a worker resets it when it goes idle after an activation (the binary's runtime
//!   does, through `reset_idle_slots`): what stands on the activation's path.
//! - `warm/instantiate_bare`: wasmtime's share of that: the same module on the same engine and pool,
//!   in an empty store with every import a trap (no WASI context, limiter, fuel or deadline).
//! - `*_keep_resident_0`: the same cases with `keep_resident_bytes = 0` (every finished instance's
//!   pages released with `madvise`, wasmtime's default), for comparison.
//! - `cold/compile`: create + init of `echo` with an empty cache (validation, compilation, linking).
//! - `cold/disk_cache`: create + init of `echo` with an empty memory cache and the module on disk
//!   (open the file, check its owner and mode, let wasmtime map it, link; the file was authenticated
//!   by an earlier load of this process).
//! - `cold/disk_cache_first_load`: the same with the file not yet authenticated by this process (its
//!   first load after a restart: the HMAC over the file is checked; later loads skip it).
//! - `cold/memory_cache`: create + init + one run of `echo` with the module in the memory cache (the
//!   cold start of an action the invoker has run before), for the report's cold-start plot.
//! - `prime/fuel_off`, `prime/fuel_on`: a CPU-bound activation (`prime`, n = 20000) without and with
//!   fuel metering.
//! - `throughput/echo_x64`: 64 concurrent warm `echo` activations on a multi-threaded runtime with
//!   every core busy; criterion reports activations per second.
//!
//! Then cases outside criterion, which needs the whole distribution, not means of batches:
//!
//! - `latency/echo`: 20,000 sequential warm `echo` activations, each timed on its own, from a task
//!   on a multi-threaded runtime (as the invoker runs them); p50, p90, p99, p99.9 and max.
//! - `idle/echo`, `idle/instantiate`: 5,000 warm `echo` activations (or instantiations alone, as
//!   `warm/instantiate_only`), one at a time with the worker idle for [`IDLE_GAP`] before each, as
//!   an invoker's activations arrive; each timed on its own. Alternating chunks run on a runtime
//!   whose workers reset finished slots when they go idle (`reset_idle_slots`, as the
//!   `wasm-invoker` binary's) and, as `*_reset_inline`, on one without that hook, where each slot
//!   is reset inside the activation. The difference is the reset moved after the answer.
//! - `fairness/echo`: 500 warm `echo` activations, one every 2 ms, each spawned onto a runtime
//!   with 2 workers from a thread outside it and timed from the spawn to its outcome: first alone, then while 2 `spin` guests
//!   burn both workers (they yield at every epoch tick). The difference is what a CPU-bound guest
//!   costs its neighbours.
//!
//! Run: `cargo bench --bench wasm -- --warm-up-time 1 --measurement-time 3`, optionally with one
//! filter (a regex, e.g. `'cold/|warm/instantiate'`; the cases outside criterion run when there
//! is no filter or the filter names them, e.g. `'latency|fairness'`). The medians and the machine go to
//! `benches/RESULTS-wasm.md`; the per-sample means of the cases the report plots go to
//! `target/bench-results/wasm.json` (read back from criterion's `sample.json` files). Every
//! measurement is bounded by criterion's time and sample settings; nothing leaves the process.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

#[path = "support/activation_context.rs"]
mod activation_context;
#[path = "support/results.rs"]
mod results;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, Throughput, criterion_group};
use factory::wasm::{FuelMode, WASM_WASIP1_KIND, WasmConfig, WasmFactory};
use factory::{
    Code, Container, ContainerSpec, Factory, InitRequest, Limits, Purpose, RunRequest, Status,
};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

use crate::activation_context::context;

/// Pool slots of the bench factories: more than the concurrent activations of the throughput case.
const POOL: u32 = 128;
/// Concurrent activations per iteration of the throughput case.
const CONCURRENT: usize = 64;
/// `n` for `prime`: ~2k primes, a few milliseconds of arithmetic.
const PRIME_N: u64 = 20_000;
/// Timed activations of `latency/echo`, after as many untimed ones as [`LATENCY_WARM_UP`].
const LATENCY_RUNS: usize = 20_000;
const LATENCY_WARM_UP: usize = 2_000;
/// Timed activations (or instantiations) of each `idle/*` case, in [`IDLE_CHUNKS`] chunks per
/// runtime, each after [`IDLE_WARM_UP`] untimed ones.
const IDLE_RUNS: usize = 5_000;
const IDLE_CHUNKS: usize = 5;
const IDLE_WARM_UP: usize = 100;
/// How long the worker is idle before each `idle/*` activation: the task awaits a sleep on a
/// blocking thread, so its worker parks meanwhile.
const IDLE_GAP: Duration = Duration::from_micros(100);
/// Timed activations of each `fairness/echo` case, one every [`FAIRNESS_PERIOD`].
const FAIRNESS_RUNS: usize = 500;
const FAIRNESS_PERIOD: Duration = Duration::from_millis(2);
/// CPU-bound guests running beside the `fairness/echo` activations, and the workers they share.
const FAIRNESS_SPINS: usize = 2;
const FAIRNESS_WORKERS: usize = 2;
/// Each activation's deadline, from its init or run: far beyond any activation measured here.
const DEADLINE: Duration = Duration::from_secs(60);

fn code(name: &str) -> Code {
    let path = ow_action::artifacts::wasm_module(name).expect("the example actions build");
    Code::Binary(Arc::from(std::fs::read(path).expect("the built module")))
}

fn factory(config: WasmConfig) -> WasmFactory {
    WasmFactory::new(WasmConfig {
        pool_instances: POOL,
        ..config
    })
    .expect("a wasm factory")
}

async fn deploy(factory: &WasmFactory, code: &Code) -> Arc<dyn Container> {
    let spec = ContainerSpec {
        kind: WASM_WASIP1_KIND.into(),
        image: None,
        memory_mb: 256,
        purpose: Purpose::Prewarm,
    };
    let container = factory.create(spec).await.expect("a container");
    let init = InitRequest {
        name: "bench".into(),
        main: None,
        code: Some(code.clone()),
        env: BTreeMap::new(),
        context: context(DEADLINE),
        limits: Limits::default(),
    };
    container.init(init).await.expect("init");
    container
}

async fn run(container: &dyn Container, params: Value) {
    let request = RunRequest {
        params,
        context: context(DEADLINE),
        limits: Limits::default(),
    };
    let outcome = container.run(request).await;
    assert_eq!(outcome.status, Status::Success, "{outcome:?}");
}

/// The factory configuration of the `*_keep_resident_0` cases: pool slots released with `madvise`
/// when an instance ends (wasmtime's default), for comparison with the default configuration.
fn released() -> WasmConfig {
    WasmConfig {
        keep_resident_bytes: 0,
        ..WasmConfig::default()
    }
}

fn warm(c: &mut Criterion) {
    let rt = Runtime::new().expect("a tokio runtime");
    let factory = factory(WasmConfig::default());
    let echo = code("echo");
    let container = rt.block_on(deploy(&factory, &echo));
    let params = json!({"name": "bench", "n": 1});
    let mut group = c.benchmark_group("warm");
    group.bench_function("echo_activation", |b| {
        b.iter(|| rt.block_on(run(container.as_ref(), params.clone())));
    });
    let released_factory = self::factory(released());
    let released_container = rt.block_on(deploy(&released_factory, &echo));
    group.bench_function("echo_activation_keep_resident_0", |b| {
        b.iter(|| rt.block_on(run(released_container.as_ref(), params.clone())));
    });
    let (module, _) = factory.load(&echo, None).expect("echo loads");
    group.bench_function("instantiate_only", |b| {
        b.iter(|| {
            rt.block_on(factory.instantiate_only(&module))
                .expect("instantiates")
        });
    });
    // The same, with the slot reset after the timed part, as a worker that goes idle after an
    // activation resets it (`reset_idle_slots`, the park hook of the binary's runtime): what stands
    // on an activation's path when its worker has an idle moment before the next one.
    // It runs on a thread of its own, so that the bench thread never keeps a store.
    group.bench_function("instantiate_reset_after", |b| {
        b.iter_custom(|iterations| {
            std::thread::scope(|scope| {
                let worker = scope.spawn(|| {
                    factory::wasm::reset_idle_slots();
                    let mut on_path = Duration::ZERO;
                    for _ in 0..iterations {
                        let started = Instant::now();
                        rt.block_on(factory.instantiate_only(&module))
                            .expect("instantiates");
                        on_path += started.elapsed();
                        factory::wasm::reset_idle_slots();
                    }
                    on_path
                });
                worker.join().expect("the probe's thread")
            })
        });
    });
    let bare = factory
        .bare_instantiation(&module)
        .expect("echo links with trapping imports");
    group.bench_function("instantiate_bare", |b| {
        b.iter(|| rt.block_on(bare.instantiate()).expect("instantiates"));
    });
    let (released_module, _) = released_factory.load(&echo, None).expect("echo loads");
    group.bench_function("instantiate_only_keep_resident_0", |b| {
        b.iter(|| {
            rt.block_on(released_factory.instantiate_only(&released_module))
                .expect("instantiates")
        });
    });
    group.finish();
}

fn cold(c: &mut Criterion) {
    let rt = Runtime::new().expect("a tokio runtime");
    let echo = code("echo");
    let mut group = c.benchmark_group("cold");
    group.sample_size(20);

    let memory_only = factory(WasmConfig::default());
    group.bench_function("compile", |b| {
        b.iter(|| {
            memory_only.clear_memory_cache();
            rt.block_on(deploy(&memory_only, &echo));
        });
    });
    // Zero when the case was filtered out on the command line.
    assert_ne!(memory_only.metrics().cache.compiles, 1);

    let dir = tempfile::tempdir().expect("a cache directory");
    let disk = factory(WasmConfig {
        disk_cache_dir: Some(dir.path().to_path_buf()),
        ..WasmConfig::default()
    });
    rt.block_on(deploy(&disk, &echo));
    group.bench_function("disk_cache", |b| {
        b.iter(|| {
            disk.clear_memory_cache();
            rt.block_on(deploy(&disk, &echo));
        });
    });
    // The same load of a file this process has not authenticated yet (its first load after a
    // restart): the HMAC over the whole file is part of it.
    group.bench_function("disk_cache_first_load", |b| {
        b.iter(|| {
            disk.clear_memory_cache();
            disk.forget_checked_files();
            rt.block_on(deploy(&disk, &echo));
        });
    });
    let metrics = disk.metrics().cache;
    assert_eq!(
        metrics.compiles, 1,
        "every cold start after the first came from disk"
    );
    // Zero when the case was filtered out on the command line.
    assert_ne!(metrics.disk_hits, 1);

    let params = json!({"name": "bench", "n": 1});
    group.bench_function("memory_cache", |b| {
        b.iter(|| {
            rt.block_on(async {
                let container = deploy(&memory_only, &echo).await;
                run(container.as_ref(), params.clone()).await;
                container.destroy().await.expect("destroy");
            });
        });
    });
    group.finish();
}

fn prime(c: &mut Criterion) {
    let rt = Runtime::new().expect("a tokio runtime");
    let prime = code("prime");
    let params = json!({ "n": PRIME_N });
    let mut group = c.benchmark_group("prime");
    for (name, fuel) in [
        ("fuel_off", FuelMode::Off),
        ("fuel_on", FuelMode::Fixed(u64::MAX / 2)),
    ] {
        let factory = factory(WasmConfig {
            fuel,
            ..WasmConfig::default()
        });
        let container = rt.block_on(deploy(&factory, &prime));
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(run(container.as_ref(), params.clone())));
        });
    }
    group.finish();
}

fn throughput(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let rt = runtime(threads);
    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Elements(CONCURRENT as u64));
    for (suffix, config) in [
        ("", WasmConfig::default()),
        ("_keep_resident_0", released()),
    ] {
        let factory = factory(config);
        let container = rt.block_on(deploy(&factory, &code("echo")));
        parallel_echo(
            &mut group,
            &rt,
            &container,
            &format!("echo_x{CONCURRENT}{suffix}"),
        );
    }
    group.finish();
}

/// `CONCURRENT` concurrent activations of `container` per iteration, spawned on `rt`.
fn parallel_echo(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    container: &Arc<dyn Container>,
    name: &str,
) {
    group.bench_function(name, |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..CONCURRENT)
                    .map(|i| {
                        let container = Arc::clone(container);
                        tokio::spawn(
                            async move { run(container.as_ref(), json!({ "i": i })).await },
                        )
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("an activation task");
                }
            });
        });
    });
}

criterion_group!(benches, warm, cold, prime, throughput);

/// What `criterion_main!` would generate, the cases outside criterion, then the summary for the
/// report.
fn main() {
    let mut recorder = results::Recorder::start("wasm");
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --benches` runs each case once, without samples: nothing to measure or record.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    if selected("latency") {
        let samples = latency();
        print_distribution("latency/echo", &samples);
        recorder.durations(
            "warm_latency",
            "wasm echo, Container::run (each activation)",
            &samples,
        );
    }
    for (probe, case) in [
        (Probe::Activation, "idle/echo"),
        (Probe::Instantiation, "idle/instantiate"),
    ] {
        if selected(case) {
            let (deferred, inline) = idle(probe);
            print_distribution(case, &deferred);
            print_distribution(&format!("{case}_reset_inline"), &inline);
        }
    }
    if selected("fairness") {
        for spins in [0, FAIRNESS_SPINS] {
            let samples = fairness(spins);
            print_distribution(
                &format!("fairness/echo beside {spins} spin guests"),
                &samples,
            );
            recorder.durations(
                "fairness",
                &format!("wasm echo beside {spins} spin guests on {FAIRNESS_WORKERS} workers"),
                &samples,
            );
        }
    }
    record(recorder);
}

/// Whether a case outside criterion is selected: no filter on the command line, or a filter naming
/// it. (Criterion's filter is a regex over its own cases; these are matched by name only.)
fn selected(case: &str) -> bool {
    const VALUE_FLAGS: [&str; 7] = [
        "--warm-up-time",
        "--measurement-time",
        "--save-baseline",
        "--baseline",
        "--sample-size",
        "--noise-threshold",
        "--profile-time",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = args.iter().enumerate().find(|(i, arg)| {
        let flag_value = *i > 0 && VALUE_FLAGS.contains(&args[*i - 1].as_str());
        !arg.starts_with("--") && !flag_value
    });
    filter.is_none_or(|(_, filter)| filter.contains(case))
}

/// The builder of a multi-threaded runtime with `workers` workers.
fn runtime_builder(workers: usize) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(workers).enable_all();
    builder
}

/// A multi-threaded runtime with `workers` workers.
fn runtime(workers: usize) -> Runtime {
    runtime_builder(workers).build().expect("a tokio runtime")
}

/// A multi-threaded runtime as the `wasm-invoker` binary builds it: its workers reset finished
/// activations' slots when they go idle.
fn runtime_resetting_idle_slots(workers: usize) -> Runtime {
    runtime_builder(workers)
        .on_thread_park(factory::wasm::reset_idle_slots)
        .build()
        .expect("a tokio runtime")
}

/// What an `idle/*` case times.
#[derive(Debug, Clone, Copy)]
enum Probe {
    /// A warm `echo` activation through `Container::run`.
    Activation,
    /// `WasmFactory::instantiate_only` of `echo`.
    Instantiation,
}

/// `idle/*`: [`IDLE_RUNS`] timed probes on a runtime whose workers reset idle slots, and as many on
/// one whose workers do not, in alternating chunks; one at a time from a task, the worker idle for
/// [`IDLE_GAP`] before each. Returns (deferred reset, inline reset).
fn idle(probe: Probe) -> (Vec<Duration>, Vec<Duration>) {
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let runtimes = [runtime_resetting_idle_slots(workers), runtime(workers)];
    let factory = factory(WasmConfig::default());
    let echo = code("echo");
    let container = runtimes[0].block_on(deploy(&factory, &echo));
    let (module, _) = factory.load(&echo, None).expect("echo loads");
    let mut samples = [Vec::new(), Vec::new()];
    for _ in 0..IDLE_CHUNKS {
        for (rt, samples) in runtimes.iter().zip(samples.iter_mut()) {
            let container = Arc::clone(&container);
            let module = Arc::clone(&module);
            let factory = factory.clone();
            let chunk = rt.spawn(async move {
                let mut timed = Vec::with_capacity(IDLE_RUNS / IDLE_CHUNKS);
                for i in 0..IDLE_WARM_UP + IDLE_RUNS / IDLE_CHUNKS {
                    tokio::task::spawn_blocking(|| std::thread::sleep(IDLE_GAP))
                        .await
                        .expect("the idle gap");
                    let started = Instant::now();
                    match probe {
                        Probe::Activation => {
                            run(container.as_ref(), json!({"name": "bench", "n": 1})).await;
                        }
                        Probe::Instantiation => {
                            factory
                                .instantiate_only(&module)
                                .await
                                .expect("instantiates");
                        }
                    }
                    if i >= IDLE_WARM_UP {
                        timed.push(started.elapsed());
                    }
                }
                timed
            });
            samples.extend(rt.block_on(chunk).expect("an idle chunk"));
        }
    }
    let [deferred, inline] = samples;
    (deferred, inline)
}

/// `latency/echo`: the time of each of [`LATENCY_RUNS`] sequential warm activations.
fn latency() -> Vec<Duration> {
    let rt = runtime(std::thread::available_parallelism().map_or(2, usize::from));
    let factory = factory(WasmConfig::default());
    let container = rt.block_on(deploy(&factory, &code("echo")));
    let params = json!({"name": "bench", "n": 1});
    let driver = rt.spawn(async move {
        for _ in 0..LATENCY_WARM_UP {
            run(container.as_ref(), params.clone()).await;
        }
        let mut samples = Vec::with_capacity(LATENCY_RUNS);
        for _ in 0..LATENCY_RUNS {
            let started = Instant::now();
            run(container.as_ref(), params.clone()).await;
            samples.push(started.elapsed());
        }
        samples
    });
    rt.block_on(driver).expect("the latency driver")
}

/// `fairness/echo`: the time from due to outcome of [`FAIRNESS_RUNS`] warm `echo` activations, one
/// every [`FAIRNESS_PERIOD`], on [`FAIRNESS_WORKERS`] workers, with `spins` `spin` guests running
/// meanwhile (cancelled at the end; each would otherwise run to its 60 s timeout).
fn fairness(spins: usize) -> Vec<Duration> {
    let rt = runtime(FAIRNESS_WORKERS);
    let factory = factory(WasmConfig::default());
    let echo = rt.block_on(deploy(&factory, &code("echo")));
    let spin = rt.block_on(deploy(&factory, &code("spin")));
    let spinning: Vec<_> = (0..spins)
        .map(|_| {
            let spin = Arc::clone(&spin);
            rt.spawn(async move {
                let request = RunRequest {
                    params: json!({}),
                    context: context(DEADLINE),
                    limits: Limits::default(),
                };
                spin.run(request).await
            })
        })
        .collect();
    let busy = Instant::now() + Duration::from_secs(10);
    while factory.metrics().activations_running < spins as u64 {
        assert!(Instant::now() < busy, "the spin guests did not start");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Each activation arrives from outside the runtime, as the invoker's work arrives from the
    // Kafka consumer's thread: this thread sleeps until it is due (a tokio timer would add up to
    // its 1 ms resolution), spawns it, and it is timed from the spawn to its outcome, waiting for
    // a worker included.
    let echo = Arc::new(echo);
    let mut samples = Vec::with_capacity(FAIRNESS_RUNS);
    let mut due = Instant::now();
    for _ in 0..FAIRNESS_RUNS {
        due += FAIRNESS_PERIOD;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let echo = Arc::clone(&echo);
        let arrived = Instant::now();
        let task = rt.spawn(async move {
            run(echo.as_ref().as_ref(), json!({"name": "bench", "n": 1})).await;
            Instant::now()
        });
        let done = rt.block_on(task).expect("an echo activation");
        samples.push(done.duration_since(arrived));
    }
    for task in &spinning {
        task.abort();
    }
    assert_eq!(
        factory.metrics().activations_running,
        spins as u64,
        "the spin guests ran until the end"
    );
    samples
}

/// Prints the quantiles of `samples`.
fn print_distribution(case: &str, samples: &[Duration]) {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| {
        let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    };
    println!(
        "{case:<40} n {:>6}  p50 {:>10.1?}  p90 {:>10.1?}  p99 {:>10.1?}  p99.9 {:>10.1?}  max {:>10.1?}",
        sorted.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        sorted.last().copied().unwrap_or_default(),
    );
}

/// The per-iteration means of criterion's samples of `group/case`, in ms, from its `sample.json`
/// (under `target/criterion`, in the baseline directory `--save-baseline` named, else `new`);
/// `None` unless this run (started at `since`) wrote it: a filtered run leaves the other cases'
/// files of earlier runs in place.
fn criterion_samples(group: &str, case: &str, since: SystemTime) -> Option<Vec<f64>> {
    #[derive(serde::Deserialize)]
    struct Sample {
        iters: Vec<f64>,
        times: Vec<f64>,
    }
    let args: Vec<String> = std::env::args().collect();
    let baseline = args
        .iter()
        .position(|arg| arg == "--save-baseline")
        .and_then(|i| args.get(i + 1))
        .map_or("new", String::as_str);
    let path = results::results_dir()
        .with_file_name("criterion")
        .join(group)
        .join(case)
        .join(baseline)
        .join("sample.json");
    if std::fs::metadata(&path).and_then(|m| m.modified()).ok()? < since {
        return None;
    }
    let sample: Sample = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Some(
        sample
            .iters
            .iter()
            .zip(&sample.times)
            .map(|(iters, nanos)| nanos / iters / 1e6)
            .collect(),
    )
}

/// Writes `target/bench-results/wasm.json` from the cases this run measured.
fn record(mut recorder: results::Recorder) {
    use results::Series;
    let median = |samples: &[f64]| Series::samples("", "", "", samples.to_vec()).quantile(0.5);
    let since = recorder.started_at();
    let warm = criterion_samples("warm", "echo_activation", since);
    // The latency case's own samples, when it ran, are the better distribution.
    if let Some(samples) = warm.as_ref().filter(|_| !selected("latency")) {
        recorder.push(Series::samples(
            "warm_latency",
            "wasm echo, Container::run",
            "ms",
            samples.clone(),
        ));
    }
    for (case, name) in [
        (
            "memory_cache",
            "wasm echo: module in memory (create+init+run)",
        ),
        ("disk_cache", "wasm echo: module on disk (create+init)"),
        (
            "disk_cache_first_load",
            "wasm echo: module on disk, first load (create+init+HMAC)",
        ),
        ("compile", "wasm echo: compiled (create+init)"),
    ] {
        if let Some(samples) = criterion_samples("cold", case, since) {
            recorder.push(Series::samples("cold_start", name, "ms", samples));
        }
    }
    let mut rates = Vec::new();
    if let Some(ms) = warm.as_deref().and_then(median) {
        rates.push((1.0, 1000.0 / ms));
    }
    if let Some(ms) = criterion_samples("throughput", &format!("echo_x{CONCURRENT}"), since)
        .as_deref()
        .and_then(median)
    {
        rates.push((CONCURRENT as f64, CONCURRENT as f64 * 1000.0 / ms));
    }
    if !rates.is_empty() {
        recorder.push(Series::points(
            "throughput",
            "wasm echo, Container::run",
            "activations/s",
            "concurrent activations",
            rates,
        ));
    }
    recorder.finish();
}
