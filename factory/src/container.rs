//! The lifecycle + health interface every runtime implements: [`Factory`] makes [`Container`]s.
//!
//! The executor's pool is the only caller. It decides which container runs what; a factory never
//! queues work on its own. The life of a container, in the order the pool drives it:
//!
//! 1. [`Factory::create`]: provision a runtime for a kind (cold, or a prewarmed stem cell). No action
//!    code yet. May take hundreds of milliseconds (Docker) or microseconds (wasm).
//! 2. [`Container::init`]: give it one action's code and init environment. Called exactly once per
//!    container, before its first run. For wasm this is where a module is compiled (or found compiled).
//! 3. [`Container::run`]: run one activation. Called many times, up to [`Container::max_concurrency`] at
//!    once. Never fails: every failure is an [`Outcome`] with the status and message OpenWhisk would
//!    record.
//! 4. [`Container::pause`] / [`Container::resume`]: while idle, where the runtime can (Docker); no-ops
//!    otherwise.
//! 5. [`Container::destroy`]: release everything. Called once; after a developer or whisk error the pool
//!    always destroys.
//!
//! [`Container::health`] and [`Factory::health`] may be called at any time, from any task; they must be
//! cheap and must not disturb a running activation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::Value;

use crate::error::FactoryError;
use crate::limits::Limits;
use crate::outcome::Outcome;

/// Why a container is being created; Docker uses it for the container name
/// (`wsk{N}_{n}_{namespace}_{action}` or `wsk{N}_{n}_prewarm_{kind}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// A cold start for one action invoked by one namespace.
    Cold {
        /// The invoking namespace.
        namespace: String,
        /// The action's name (without package).
        action: String,
    },
    /// A stem cell created ahead of demand for its kind and memory.
    Prewarm,
}

/// What a factory needs to provision a container: the runtime, not the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// The exec kind, e.g. `wasm:wasip1`, `nodejs:20`, `blackbox`.
    pub kind: String,
    /// The image of a blackbox action (`exec.image`); `None` for managed kinds.
    pub image: Option<String>,
    /// Memory of the container in MB.
    pub memory_mb: u32,
    /// Cold start or prewarm.
    pub purpose: Purpose,
}

/// Action code as it is delivered to `/init`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// Source text (`binary: false`).
    Text(String),
    /// Raw bytes (`binary: true`; a zip or a wasm module). Sent to Docker runtimes as base64.
    Binary(Arc<[u8]>),
}

/// Everything `/init` carries: one action's code, entry point and init environment.
#[derive(Debug, Clone)]
pub struct InitRequest {
    /// The action's name (without namespace or package), `argv[0]` for wasm.
    pub name: String,
    /// `exec.main`, when the document has one.
    pub main: Option<String>,
    /// The code; `None` for a blackbox action that has none.
    pub code: Option<Code>,
    /// The action's init parameters (`initArgs`) as strings, to become environment variables.
    pub env: BTreeMap<String, String>,
    /// The activation that caused this init (its `__OW_` values go into `/init`'s env, as OpenWhisk
    /// does).
    pub context: ActivationContext,
    /// The action's limits; the init is bounded by `timeout`.
    pub limits: Limits,
}

/// The activation context a runtime sees as `__OW_` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationContext {
    /// The activation id (32 lowercase hex).
    pub activation_id: String,
    /// The invoking namespace.
    pub namespace: String,
    /// The action's fully qualified name with a leading slash: `/ns/name` or `/ns/pkg/name`.
    pub action_name: String,
    /// The action's version (`0.0.1`), when known.
    pub action_version: Option<String>,
    /// The id part of the transaction id.
    pub transaction_id: String,
    /// The caller's API key (`uuid:key`), only when the action's `provide-api-key` allows it.
    pub api_key: Option<String>,
    /// When the activation must be over.
    pub deadline: SystemTime,
}

impl ActivationContext {
    /// The deadline as epoch milliseconds, the form every runtime receives.
    pub fn deadline_millis(&self) -> u128 {
        self.deadline
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    }

    /// The context as `__OW_` environment variables, as OpenWhisk puts them into `/init`'s `env` and
    /// as runtimes export them for each `/run`.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = Vec::with_capacity(7);
        if let Some(key) = &self.api_key {
            env.push(("__OW_API_KEY".to_string(), key.clone()));
        }
        env.push(("__OW_NAMESPACE".to_string(), self.namespace.clone()));
        env.push(("__OW_ACTION_NAME".to_string(), self.action_name.clone()));
        if let Some(version) = &self.action_version {
            env.push(("__OW_ACTION_VERSION".to_string(), version.clone()));
        }
        env.push(("__OW_ACTIVATION_ID".to_string(), self.activation_id.clone()));
        env.push((
            "__OW_TRANSACTION_ID".to_string(),
            self.transaction_id.clone(),
        ));
        env.push((
            "__OW_DEADLINE".to_string(),
            self.deadline_millis().to_string(),
        ));
        env
    }

    /// The context fields of a `/run` body (lower case, unprefixed; `deadline` a string).
    pub fn run_fields(&self) -> serde_json::Map<String, Value> {
        let mut fields = serde_json::Map::with_capacity(7);
        if let Some(key) = &self.api_key {
            fields.insert("api_key".into(), Value::String(key.clone()));
        }
        fields.insert("namespace".into(), Value::String(self.namespace.clone()));
        fields.insert(
            "action_name".into(),
            Value::String(self.action_name.clone()),
        );
        fields.insert(
            "action_version".into(),
            self.action_version
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
        );
        fields.insert(
            "activation_id".into(),
            Value::String(self.activation_id.clone()),
        );
        fields.insert(
            "transaction_id".into(),
            Value::String(self.transaction_id.clone()),
        );
        fields.insert(
            "deadline".into(),
            Value::String(self.deadline_millis().to_string()),
        );
        fields
    }
}

/// One activation for [`Container::run`].
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The parameters (`/run`'s `value`): normally an object, possibly an array.
    pub params: Value,
    /// Who is running what, until when.
    pub context: ActivationContext,
    /// The action's limits: `timeout` bounds the run, `logs` the collected log bytes.
    pub limits: Limits,
}

/// A finished init: its interval, from which the pool takes the activation's `initTime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitDone {
    /// When the init started.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
}

impl InitDone {
    /// How long the init took.
    pub fn duration(&self) -> Duration {
        self.end.duration_since(self.start).unwrap_or_default()
    }
}

/// The health of a container or a factory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Working.
    Healthy,
    /// Not working, and why.
    Unhealthy(String),
}

impl Health {
    /// Whether this is [`Health::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy)
    }
}

/// Reactive top-up rules of a stem cell (OpenWhisk's `stemCells[].reactive`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactivePrewarm {
    /// Fewest prewarms to keep.
    pub min_count: u32,
    /// Most prewarms to keep.
    pub max_count: u32,
    /// Age after which an unused prewarm is removed.
    pub ttl: Duration,
    /// Cold starts per `increment` prewarms added.
    pub threshold: u32,
    /// Prewarms added per `threshold` cold starts.
    pub increment: u32,
}

/// Prewarm configuration of one (kind, memory), from the runtimes manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StemCell {
    /// The kind to prewarm.
    pub kind: String,
    /// The memory of each prewarm, in MB.
    pub memory_mb: u32,
    /// Prewarms created at start.
    pub initial_count: u32,
    /// Reactive top-up, when configured.
    pub reactive: Option<ReactivePrewarm>,
}

/// A provisioned runtime for one action. See the module docs for the order of calls.
#[async_trait]
pub trait Container: Send + Sync + std::fmt::Debug {
    /// A stable id for logs and metrics (the Docker container id, or a generated one).
    fn id(&self) -> &str;

    /// How many activations may run on this container at once. Wasm containers answer a large number:
    /// every activation gets its own instance, so only the pool's memory bounds them.
    fn max_concurrency(&self) -> u32;

    /// Whether [`Container::pause`] does anything for this runtime.
    fn can_pause(&self) -> bool {
        false
    }

    /// Initialises the container with one action. Called once, before the first run, bounded by
    /// `init.limits.timeout`. A failure is the outcome of the activation that caused the init (its
    /// interval is the init's, `init_time` set); the pool destroys the container afterwards.
    async fn init(&self, init: InitRequest) -> Result<InitDone, Box<Outcome>>;

    /// Runs one activation to its end and returns everything the record needs, logs included.
    /// Never panics on anything the action does; bounded by `run.limits.timeout`.
    async fn run(&self, run: RunRequest) -> Outcome;

    /// Freezes an idle container. Default: nothing to do.
    async fn pause(&self) -> Result<(), FactoryError> {
        Ok(())
    }

    /// Thaws a paused container before it runs again. Default: nothing to do. A failure means the
    /// container is unusable; the pool destroys it and re-queues the work elsewhere.
    async fn resume(&self) -> Result<(), FactoryError> {
        Ok(())
    }

    /// Releases the container. Called once; later calls on the container are errors.
    async fn destroy(&self) -> Result<(), FactoryError>;

    /// Whether the container still answers (a TCP probe for Docker).
    async fn health(&self) -> Health;
}

/// Makes containers for the kinds it supports.
#[async_trait]
pub trait Factory: Send + Sync {
    /// A short name for logs and metrics (`wasm`, `docker`).
    fn name(&self) -> &'static str;

    /// Whether this factory runs actions of `kind`.
    fn supports(&self, kind: &str) -> bool;

    /// The stem cells the pool should keep prewarmed. Default: none.
    fn stem_cells(&self) -> Vec<StemCell> {
        Vec::new()
    }

    /// Provisions a container for `spec`. A failure carries the status OpenWhisk would record (a whisk
    /// error for managed runtimes, a developer error for a blackbox image that cannot be pulled).
    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>, FactoryError>;

    /// Whether the factory can create containers now (the Docker daemon answers; the wasm engine is
    /// up).
    async fn health(&self) -> Health;

    /// Removes everything this factory left behind (Docker containers of this invoker from an earlier
    /// run). Called at start and at shutdown. Default: nothing to do.
    async fn cleanup(&self) -> Result<(), FactoryError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> ActivationContext {
        ActivationContext {
            activation_id: "a1b2c3".into(),
            namespace: "guest".into(),
            action_name: "/guest/hello".into(),
            action_version: Some("0.0.1".into()),
            transaction_id: "tid-1".into(),
            api_key: Some("uuid:key".into()),
            deadline: UNIX_EPOCH + Duration::from_millis(9_999_999_999_999),
        }
    }

    #[test]
    fn test_context_env_matches_what_runtimes_export() {
        let env: BTreeMap<_, _> = context().env().into_iter().collect();
        assert_eq!(env["__OW_ACTIVATION_ID"], "a1b2c3");
        assert_eq!(env["__OW_NAMESPACE"], "guest");
        assert_eq!(env["__OW_ACTION_NAME"], "/guest/hello");
        assert_eq!(env["__OW_ACTION_VERSION"], "0.0.1");
        assert_eq!(env["__OW_DEADLINE"], "9999999999999");
        assert_eq!(env["__OW_API_KEY"], "uuid:key");
        assert_eq!(env["__OW_TRANSACTION_ID"], "tid-1");
    }

    #[test]
    fn test_run_fields_leave_out_a_withheld_api_key() {
        let mut context = context();
        context.api_key = None;
        let fields = context.run_fields();
        assert!(!fields.contains_key("api_key"));
        assert_eq!(fields["deadline"], Value::String("9999999999999".into()));
    }
}
