//! [`WasmContainer`]: one action's compiled module behind the [`Container`] interface.
//!
//! A wasm "container" is cheap: creating it allocates nothing, init finds (or compiles) the module,
//! and each run takes a pool slot, instantiates the module in a fresh store on the calling tokio
//! worker (the guest yields it every epoch tick) and gives the slot back. Activations of one container run in parallel, each in its own instance, so
//! [`Container::max_concurrency`] is large; the pool's slots ([`WasmConfig::pool_instances`]) are the
//! real bound, and an activation beyond them waits for a slot rather than failing.
//!
//! [`WasmConfig::pool_instances`]: super::WasmConfig::pool_instances

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::FutureExt as _;
use tracing::Instrument as _;

use crate::container::{Container, ContainerSpec, Health, InitDone, InitRequest, RunRequest};
use crate::error::{FactoryError, panic_message};
use crate::outcome::{Outcome, Status, messages};

use super::Shared;
use super::activation::{self, ActionSetup, is_valid_env};
use super::cache::CompiledModule;
use super::error::WasmError;
use super::output::OutputCapture;

/// What [`Container::max_concurrency`] answers: more than any invoker runs at once. Activations
/// beyond the pool's slots wait for one inside [`Container::run`].
pub const CONTAINER_MAX_CONCURRENCY: u32 = 10_000;

/// How long after its timeout an activation's result is waited for before it is reported as timed
/// out anyway. Wasm is interrupted within one epoch tick of the deadline and a guest sleeping in
/// `poll_oneoff` is woken at the deadline ([`poll`](super::poll)); this margin is a safety net for
/// a host call that still waits past it (e.g. a scratch-file write on a stalled disk). The
/// abandoned activation is cancelled: wasmtime unwinds its fiber, its store and pool slot are
/// released; only the stalled file operation itself lingers on its blocking thread.
pub const ABANDON_GRACE: Duration = Duration::from_secs(2);

/// OpenWhisk runtimes' answer to a second `/init`.
const ALREADY_INITIALIZED: &str = "Cannot initialize the action more than once.";

#[derive(Debug)]
struct Ready {
    module: Arc<CompiledModule>,
    setup: Arc<ActionSetup>,
}

/// A wasm container: see the module docs.
pub struct WasmContainer {
    id: String,
    spec: ContainerSpec,
    shared: Arc<Shared>,
    ready: OnceLock<Ready>,
    destroyed: AtomicBool,
}

impl std::fmt::Debug for WasmContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmContainer")
            .field("id", &self.id)
            .field("kind", &self.spec.kind)
            .field("ready", &self.ready.get())
            .finish_non_exhaustive()
    }
}

impl WasmContainer {
    pub(crate) fn new(id: String, spec: ContainerSpec, shared: Arc<Shared>) -> Self {
        Self {
            id,
            spec,
            shared,
            ready: OnceLock::new(),
            destroyed: AtomicBool::new(false),
        }
    }

    /// The compiled module, once initialised.
    pub fn module(&self) -> Option<&Arc<CompiledModule>> {
        self.ready.get().map(|ready| &ready.module)
    }
}

fn init_failure(status: Status, message: impl Into<String>, start: SystemTime) -> Box<Outcome> {
    let end = SystemTime::now();
    let mut outcome = Outcome::error(status, message, start, end);
    outcome.init_time = Some(end.duration_since(start).unwrap_or_default());
    Box::new(outcome)
}

#[async_trait]
impl Container for WasmContainer {
    fn id(&self) -> &str {
        &self.id
    }

    fn max_concurrency(&self) -> u32 {
        CONTAINER_MAX_CONCURRENCY
    }

    async fn init(&self, init: InitRequest) -> Result<InitDone, Box<Outcome>> {
        let start = SystemTime::now();
        let span = tracing::info_span!("wasm_init", container = %self.id, activation = %init.context.activation_id);
        if self.ready.get().is_some() {
            return Err(init_failure(
                Status::DeveloperError,
                ALREADY_INITIALIZED,
                start,
            ));
        }
        if self.destroyed.load(Ordering::Acquire) {
            return Err(init_failure(
                Status::WhiskError,
                messages::RESOURCE_ERROR,
                start,
            ));
        }
        let shared = Arc::clone(&self.shared);
        let (code, main) = (init.code.clone(), init.main.clone());
        let compile_span = span.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _entered = compile_span.enter();
            shared.resolve(code.as_ref(), main.as_deref())
        });
        let resolved = tokio::time::timeout(init.limits.timeout_duration(), task)
            .instrument(span)
            .await;
        let module = match resolved {
            // The compilation goes on in the background and still fills the cache.
            Err(_elapsed) => {
                let mut outcome = init_failure(
                    Status::DeveloperError,
                    messages::init_timed_out(init.limits.timeout),
                    start,
                );
                outcome.timed_out = true;
                return Err(outcome);
            }
            Ok(Err(join_error)) => {
                tracing::error!(error = %join_error, "the wasm init task failed");
                return Err(init_failure(
                    Status::WhiskError,
                    messages::RESOURCE_ERROR,
                    start,
                ));
            }
            Ok(Ok(Err(WasmError::Code(error)))) => {
                return Err(init_failure(Status::DeveloperError, error.message(), start));
            }
            Ok(Ok(Err(error))) => {
                tracing::error!(%error, "cannot prepare a wasm module");
                return Err(init_failure(
                    Status::WhiskError,
                    messages::RESOURCE_ERROR,
                    start,
                ));
            }
            Ok(Ok(Ok((module, _source)))) => module,
        };
        let init_env = init
            .env
            .into_iter()
            .filter(|(name, value)| is_valid_env(name, value))
            .collect();
        let setup = Arc::new(ActionSetup {
            name: init.name,
            init_env,
        });
        if self.ready.set(Ready { module, setup }).is_err() {
            // Two concurrent inits: the first to finish won.
            return Err(init_failure(
                Status::DeveloperError,
                ALREADY_INITIALIZED,
                start,
            ));
        }
        Ok(InitDone {
            start,
            end: SystemTime::now(),
        })
    }

    async fn run(&self, run: RunRequest) -> Outcome {
        let span = tracing::info_span!("wasm_run", container = %self.id, activation = %run.context.activation_id);
        let Some(ready) = self
            .ready
            .get()
            .filter(|_| !self.destroyed.load(Ordering::Acquire))
        else {
            let _entered = span.enter();
            tracing::error!("run on a wasm container that is not initialised or was destroyed");
            return Outcome::instant_error(Status::WhiskError, messages::RESOURCE_ERROR);
        };
        // Waiting for a slot is the invoker's queueing time, not the action's: the activation's
        // interval starts once it has one.
        let Ok(permit) = Arc::clone(&self.shared.slots).acquire_owned().await else {
            return Outcome::instant_error(Status::WhiskError, messages::RESOURCE_ERROR);
        };
        let start = SystemTime::now();
        let capture =
            OutputCapture::new(run.limits.log_bytes(), self.shared.config.max_result_bytes);
        let wait = run.limits.timeout_duration() + ABANDON_GRACE;
        let running = self.shared.running();
        // A panic in the host (our bug) fails this activation, not the caller's task.
        let work = AssertUnwindSafe(activation::run(
            &self.shared,
            &ready.module,
            &ready.setup,
            &run,
            &capture,
        ))
        .catch_unwind();
        let outcome = match tokio::time::timeout(wait, work).instrument(span).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(panic)) => activation::task_failed(
                start,
                &panic_message(panic.as_ref()).unwrap_or("a panic without a message"),
            ),
            Err(_elapsed) => activation::abandoned(&capture, start, run.limits.timeout),
        };
        drop(running);
        drop(permit);
        outcome
    }

    async fn destroy(&self) -> Result<(), FactoryError> {
        if self.destroyed.swap(true, Ordering::AcqRel) {
            return Err(FactoryError::Operation {
                operation: "destroy",
                id: self.id.clone(),
                reason: "already destroyed".into(),
            });
        }
        Ok(())
    }

    async fn health(&self) -> Health {
        if self.destroyed.load(Ordering::Acquire) {
            Health::Unhealthy("destroyed".into())
        } else {
            Health::Healthy
        }
    }
}
