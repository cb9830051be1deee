//! One activation, start to end, on the calling tokio worker: a fresh store, WASI preview 1 context
//! and instance; the action's input as the contract gives it; its output turned into an [`Outcome`].
//!
//! This is where the wasm action contract (`actions/README.md`) is carried out:
//!
//! - **Input**: `argv` = `[name, params]` when the params JSON is at most [`MAX_ARGV_PARAMS_BYTES`],
//!   else `[name]`; stdin = the params JSON, then end of file; the environment = the activation
//!   context's `__OW_` variables, `__OW_API_HOST` when configured, and the init parameters. Nothing
//!   of the host: no inherited environment, no preopened directory but the optional scratch `/tmp`,
//!   no sockets.
//! - **Limits**: memory by the store's `ActivationLimiter`, time by the per-tick epoch callback
//!   ([`arm_deadline`]; and, for a guest waiting in the host, by the deadline-bounded `poll_oneoff`
//!   of [`poll`](super::poll)), CPU by fuel when on, output by the `OutputCapture`, the host work
//!   of one WASI call by [`MAX_HOST_CALL_BYTES`] and [`MAX_RANDOM_BYTES_PER_CALL`].
//! - **Output**: the last stdout line is the result; see `finish` for every failure's status and
//!   message.
//!
//! The guest runs on a wasmtime fiber polled by the caller's task: it gives the worker back at every
//! epoch tick and whenever it waits, so it must be driven on a tokio runtime (the engine has async
//! support; the WASI linker is the async one). File system work (the scratch directory) goes to
//! tokio's blocking threads; nothing here blocks the worker for longer than one WASI call's
//! bounded host work.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use serde_json::Value;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::container::RunRequest;
use crate::logs::{LogBuffer, Stream};
use crate::outcome::{Outcome, Status, classify_result, messages};

use super::Shared;
use super::cache::CompiledModule;
use super::limits::ActivationLimiter;
use super::output::{Captured, OutputCapture};
use super::poll::DeadlineReached;
use super::scratch::{ScratchDir, ScratchWatcher};

/// Longest params JSON passed in `argv[1]`; longer params come on stdin only. The contract's
/// number: Linux's `MAX_ARG_STRLEN` (128 KiB with the terminating NUL), so an action behaves the
/// same compiled natively under the docker skeleton.
pub const MAX_ARGV_PARAMS_BYTES: usize = 131_071;

/// Most random bytes one `random_get` call may ask for (wasmtime-wasi's default is 64 MiB). Threat:
/// the bytes are generated in the host, on the guest's tokio worker, where epoch interruption
/// cannot reach; a guest asking for 64 MiB at a time would hold the worker for tens of
/// milliseconds per call. 1 MiB takes about a millisecond; a larger request traps. Programs ask
/// for a few bytes (seeds, keys) or loop in small chunks (wasi-libc's `getentropy` takes 256).
pub const MAX_RANDOM_BYTES_PER_CALL: u64 = 1024 * 1024;

/// Most bytes one WASI call may copy between guest memory and the host (wasmtime's host-call
/// fuel; its default is 128 MiB). Threat as above: one `fd_write` of a huge buffer is copied and
/// scanned for log lines in one host call, on the worker. 16 MiB takes a few milliseconds and is
/// far above what the output caps keep; a larger single call fails with `ENOMEM`, which the
/// guest's standard library retries in smaller pieces or reports.
pub const MAX_HOST_CALL_BYTES: usize = 16 * 1024 * 1024;

/// The data of one activation's store.
pub struct ActivationState {
    wasi: WasiP1Ctx,
    limiter: ActivationLimiter,
    /// When the activation times out; `None` when too far away to represent.
    deadline: Option<Instant>,
    scratch_exceeded: bool,
}

impl ActivationState {
    /// The state of a store running with `wasi` under `limiter` until `deadline`.
    pub(crate) fn new(
        wasi: WasiP1Ctx,
        limiter: ActivationLimiter,
        deadline: Option<Instant>,
    ) -> Self {
        Self {
            wasi,
            limiter,
            deadline,
            scratch_exceeded: false,
        }
    }

    /// When the activation times out: host calls that wait (`poll_oneoff`) wait no longer.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The store's limiter.
    pub(crate) fn limiter(&mut self) -> &mut ActivationLimiter {
        &mut self.limiter
    }

    /// The WASI context, for the linker.
    pub(crate) fn wasi(&mut self) -> &mut WasiP1Ctx {
        &mut self.wasi
    }
}

/// What init fixed for every activation of a container.
#[derive(Debug, Clone)]
pub(crate) struct ActionSetup {
    /// `argv[0]`: the action's name.
    pub(crate) name: String,
    /// The init parameters, as environment variables.
    pub(crate) init_env: Vec<(String, String)>,
}

/// How an activation's wasm ended.
enum Ending {
    /// `_start` returned, or the action called `proc_exit` (any code).
    Returned,
    /// A trap or host error ended it.
    Trapped(wasmtime::Error),
}

/// The environment of an activation: context, API host, then init parameters (those naming a
/// variable already set are dropped, so an action cannot be misled about its own identity).
fn environment(shared: &Shared, setup: &ActionSetup, run: &RunRequest) -> Vec<(String, String)> {
    let mut env = run.context.env();
    if let Some(host) = &shared.config.api_host {
        env.push(("__OW_API_HOST".to_string(), host.clone()));
    }
    for (name, value) in &setup.init_env {
        if is_valid_env(name, value) && !env.iter().any(|(existing, _)| existing == name) {
            env.push((name.clone(), value.clone()));
        }
    }
    env
}

/// A name and value that can be a WASI environment entry (`name=value`, NUL-terminated).
pub(crate) fn is_valid_env(name: &str, value: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0']) && !value.contains('\0')
}

/// Runs one activation of `module` and returns its outcome, on the calling tokio worker: the guest
/// yields it every epoch tick and waits for timers without holding it (see the module docs).
pub(crate) async fn run(
    shared: &Shared,
    module: &CompiledModule,
    setup: &ActionSetup,
    run: &RunRequest,
    capture: &OutputCapture,
) -> Outcome {
    let start = SystemTime::now();
    let started = Instant::now();
    let timeout = run.limits.timeout_duration();
    let whisk_error = |what: &str, error: &dyn std::fmt::Display| {
        tracing::error!(activation = %run.context.activation_id, %error, "{what}");
        Outcome::error(
            Status::WhiskError,
            messages::RESOURCE_ERROR,
            start,
            SystemTime::now(),
        )
    };

    let params = serde_json::to_string(&run.params).unwrap_or_else(|_| "{}".to_string());
    let scratch = if shared.config.scratch.enabled {
        let config = shared.config.scratch.clone();
        match blocking(move || ScratchDir::create(&config)).await {
            Ok(Ok(dir)) => Some(dir),
            Ok(Err(error)) => return whisk_error("cannot create a scratch directory", &error),
            Err(error) => return whisk_error("cannot create a scratch directory", &error),
        }
    } else {
        None
    };

    // File operations (the scratch directory) go to tokio's blocking threads: the guest runs on a
    // worker, which must not block.
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdin(MemoryInputPipe::new(params.clone().into_bytes()))
        .stdout(capture.stdout())
        .stderr(capture.stderr())
        .envs(&environment(shared, setup, run))
        .max_random_size(MAX_RANDOM_BYTES_PER_CALL);
    if params.len() <= MAX_ARGV_PARAMS_BYTES {
        wasi.args(&[setup.name.as_str(), params.as_str()]);
    } else {
        wasi.args(&[setup.name.as_str()]);
    }
    drop(params);
    if let Some(dir) = &scratch
        && let Err(error) = wasi.preopened_dir(dir.path(), "/tmp", FsPerms::ReadWrite)
    {
        return whisk_error("cannot preopen the scratch directory", &error);
    }

    let memory_bytes = run
        .limits
        .memory_bytes()
        .min(shared.config.max_memory_bytes());
    let limiter = ActivationLimiter::new(usize::try_from(memory_bytes).unwrap_or(usize::MAX));
    let deadline = started.checked_add(timeout);
    let state = ActivationState::new(wasi.build_p1(), limiter, deadline);
    let mut store = Store::new(shared.engine.engine(), state);
    store.limiter(|state| state.limiter());
    store.set_hostcall_fuel(MAX_HOST_CALL_BYTES);
    let fuel = shared.config.fuel.budget(run.limits.timeout);
    if let Some(fuel) = fuel
        && let Err(error) = store.set_fuel(fuel)
    {
        return whisk_error("cannot set fuel", &error);
    }
    let watcher = scratch
        .as_ref()
        .map(|dir| ScratchWatcher::start(dir, &shared.config.scratch));
    arm_deadline(&mut store, watcher.as_ref().map(ScratchWatcher::over));

    let ending = match module.instance_pre().instantiate_async(&mut store).await {
        Ok(instance) => match instance.get_typed_func::<(), ()>(&mut store, "_start") {
            Ok(start_fn) => match start_fn.call_async(&mut store, ()).await {
                Ok(()) => Ending::Returned,
                Err(error) if error.downcast_ref::<I32Exit>().is_some() => Ending::Returned,
                Err(error) => Ending::Trapped(error),
            },
            // Checked at init; reaching this means the module changed under us.
            Err(error) => {
                return whisk_error("the module lost its _start export", &format!("{error:#}"));
            }
        },
        // Cannot happen while every run holds a slot permit; if it does, it is ours, not the action's.
        Err(error)
            if error
                .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                .is_some() =>
        {
            return whisk_error("the instance pool is exhausted", &format!("{error:#}"));
        }
        Err(error) => Ending::Trapped(error),
    };
    drop(watcher);

    let consumed = fuel.map(|budget| budget.saturating_sub(store.get_fuel().unwrap_or(0)));
    let memory_denied = store.data().limiter.memory_denied();
    let stopped_for_scratch = store.data().scratch_exceeded;
    // The instance goes back to the pool before the output is examined: reset now, or, on a worker
    // that goes idle, once the answer is out (a store holding a scratch directory is reset now, so
    // that the directory is closed before it is measured and removed).
    if scratch.is_none() {
        super::idle_reset::release(store);
    } else {
        drop(store);
    }
    let scratch_exceeded = match scratch {
        // The last measurement and the removal walk the directory: file system work, off the worker.
        Some(dir) => {
            let message = dir.exhausted_message();
            let over = blocking(move || dir.over_cap()).await.unwrap_or(false);
            (stopped_for_scratch || over).then_some(message)
        }
        None => None,
    };

    let captured = capture.finish();
    let mut outcome = if let Some(message) = scratch_exceeded {
        let logs = captured.into_logs(false);
        failure(Status::DeveloperError, message, logs)
    } else {
        match ending {
            Ending::Returned => finish(captured, shared.config.max_result_bytes),
            Ending::Trapped(error) => {
                trapped(captured, &error, memory_denied, run.limits.timeout, fuel)
            }
        }
    };
    outcome.start = start;
    outcome.end = SystemTime::now();
    outcome.fuel = consumed;
    outcome
}

/// Runs blocking file-system work on tokio's blocking threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(work).await
}

/// Arms the per-tick callback that keeps the guest within its limits and its worker shared: at
/// every epoch tick the guest is interrupted ([`Trap::Interrupt`], reported as its timeout) once
/// the wall-clock deadline of its [`ActivationState`] has passed, or stopped once its scratch directory went over a cap;
/// otherwise it yields to tokio's scheduler and runs on at the next turn. So a timeout fires
/// between `timeout` and `timeout` + one tick, and no guest holds a worker longer than one tick
/// (but for its first slice when it started on a quiet engine: see [`engine`](super::engine)).
///
/// The yield is tokio's own [`tokio::task::yield_now`], as wasmtime advises, rather than a plain
/// self-wake: tokio then lets the worker poll its timers and I/O before the guest runs again. With a
/// self-wake a worker busy with yielding guests would look at its timers only every 61 scheduler
/// turns (its `event_interval`), i.e. every 61 ticks: a sleeping activation, or the invoker's own
/// timers, would wake that much late.
pub(crate) fn arm_deadline(
    store: &mut Store<ActivationState>,
    scratch_over: Option<Arc<AtomicBool>>,
) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut context| {
        if scratch_over
            .as_ref()
            .is_some_and(|over| over.load(Ordering::Acquire))
        {
            context.data_mut().scratch_exceeded = true;
            return Ok(UpdateDeadline::Interrupt);
        }
        if context
            .data()
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            return Ok(UpdateDeadline::Interrupt);
        }
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    });
}

/// A failure outcome with `message` and `logs` (times set by the caller).
fn failure(status: Status, message: impl Into<String>, logs: LogBuffer) -> Outcome {
    let now = SystemTime::now();
    let mut outcome = Outcome::error(status, message, now, now);
    outcome.logs = logs.into_lines();
    outcome
}

/// The outcome of an action that ended normally: its last stdout line decides.
fn finish(captured: Captured, max_result_bytes: usize) -> Outcome {
    let Some(line) = captured.result_line() else {
        return failure(
            Status::DeveloperError,
            messages::NOT_A_DICTIONARY_OR_ARRAY,
            captured.into_logs(false),
        );
    };
    let len = line.len;
    if len > max_result_bytes {
        let shown = String::from_utf8_lossy(&line.text[..max_result_bytes.min(line.text.len())]);
        let message = messages::truncated_response(len, max_result_bytes, &shown);
        let mut outcome = failure(Status::ApplicationError, message, captured.into_logs(true));
        outcome.size = Some(len);
        return outcome;
    }
    match serde_json::from_slice::<Value>(line.text)
        .ok()
        .and_then(classify_result)
    {
        Some((status, result)) => {
            let now = SystemTime::now();
            Outcome {
                size: Some(len),
                logs: captured.into_logs(true).into_lines(),
                ..Outcome::new(status, result, now, now)
            }
        }
        None => failure(
            Status::DeveloperError,
            messages::NOT_A_DICTIONARY_OR_ARRAY,
            captured.into_logs(false),
        ),
    }
}

/// The outcome of an action stopped by a trap (or that could not be instantiated).
fn trapped(
    captured: Captured,
    error: &wasmtime::Error,
    memory_denied: bool,
    timeout_ms: u64,
    fuel: Option<u64>,
) -> Outcome {
    let logs = captured.into_logs(false);
    // The epoch deadline interrupts wasm; `poll_oneoff` stops a guest waiting in the host.
    let timed_out = error.downcast_ref::<DeadlineReached>().is_some();
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => timeout_outcome(logs, timeout_ms),
        _ if timed_out => timeout_outcome(logs, timeout_ms),
        Some(Trap::OutOfFuel) => failure(
            Status::DeveloperError,
            messages::fuel_exhausted(fuel.unwrap_or(0)),
            logs,
        ),
        _ if memory_denied => failure(Status::DeveloperError, messages::MEMORY_EXHAUSTED, logs),
        trap => {
            let mut logs = logs;
            logs.push_notice(Stream::Stderr, &trap_message(error, trap));
            failure(Status::DeveloperError, messages::ABNORMAL_RUN, logs)
        }
    }
}

/// The timeout's outcome (developer error, annotation `timeout: true`) with `logs`.
fn timeout_outcome(logs: LogBuffer, timeout_ms: u64) -> Outcome {
    let mut outcome = failure(
        Status::DeveloperError,
        messages::timed_out(timeout_ms),
        logs,
    );
    outcome.timed_out = true;
    outcome
}

/// One line saying why the action stopped: the trap and, when known, the function it was in.
fn trap_message(error: &wasmtime::Error, trap: Option<&Trap>) -> String {
    let what = match trap {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}").replace('\n', " "),
    };
    let frame = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .and_then(|trace| {
            trace
                .frames()
                .iter()
                .find_map(|frame| frame.func_name().map(str::to_string))
        });
    match frame {
        Some(function) => format!("{what} (in {function})"),
        None => what,
    }
}

/// The outcome of an activation whose blocking task did not come back in time (a host call
/// blocked well past the deadline; sleeps are bounded by it, so this is a safety net): a timeout,
/// with whatever it logged so far.
pub(crate) fn abandoned(capture: &OutputCapture, start: SystemTime, timeout_ms: u64) -> Outcome {
    let mut outcome = timeout_outcome(capture.finish().into_logs(false), timeout_ms);
    outcome.start = start;
    outcome
}

/// The outcome when the blocking task itself failed (a panic in the host: our bug).
pub(crate) fn task_failed(start: SystemTime, error: &dyn std::fmt::Display) -> Outcome {
    tracing::error!(%error, "a wasm activation task failed");
    let mut outcome = Outcome::instant_error(Status::WhiskError, messages::RESOURCE_ERROR);
    outcome.start = start;
    outcome
}
