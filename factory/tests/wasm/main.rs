//! Integration tests of the wasm factory, with the real example actions of `actions/` built for
//! `wasm32-wasip1` (by `ow_action::artifacts::wasm_module`, on first use). Hand-made bytes appear
//! only where the point is a module the factory must refuse.
//!
//! One binary, one `mod` per topic; each limit is tested as an obeyed/violated pair asserting the
//! exact status and message. Nothing here measures speed: timings are in `benches/wasm.rs`.

mod cache;
mod cache_mapping;
mod code;
mod concurrency;
mod env;
mod idle_reset;
mod limits;
mod logs;
mod results;
mod scratch;
mod sleep;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use factory::wasm::{WasmConfig, WasmFactory};
use factory::{
    ActivationContext, Code, Container, ContainerSpec, Factory, InitRequest, Limits, Outcome,
    Purpose, RunRequest,
};
use serde_json::Value;

/// Pool size of the test factories: small, so that many factories fit the address space at once
/// and the pool is really exercised.
pub const TEST_POOL: u32 = 16;

/// A factory configuration for tests.
pub fn config() -> WasmConfig {
    WasmConfig {
        pool_instances: TEST_POOL,
        ..WasmConfig::default()
    }
}

/// A factory with `config`.
pub fn factory_with(config: WasmConfig) -> WasmFactory {
    WasmFactory::new(config).expect("a wasm factory")
}

/// The bytes of an example action.
pub fn example(name: &str) -> Vec<u8> {
    let path = ow_action::artifacts::wasm_module(name)
        .unwrap_or_else(|e| panic!("build of example {name}: {e}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The code of an example action, as `/init` carries it.
pub fn example_code(name: &str) -> Code {
    Code::Binary(Arc::from(example(name)))
}

/// An activation context for action `name`, with a fresh id and a deadline a minute away.
pub fn context(name: &str) -> ActivationContext {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    ActivationContext {
        activation_id: format!("{n:032x}"),
        namespace: "guest".into(),
        action_name: format!("/guest/{name}"),
        action_version: Some("0.0.1".into()),
        transaction_id: format!("tid{n}"),
        api_key: None,
        deadline: SystemTime::now() + Duration::from_secs(60),
    }
}

/// An action deployed on a container of `factory`.
pub struct Deployed {
    /// The action's name.
    pub name: String,
    /// Its container.
    pub container: Arc<dyn Container>,
    /// The limits its activations run with.
    pub limits: Limits,
}

impl Deployed {
    /// Runs one activation with `params`.
    pub async fn run(&self, params: Value) -> Outcome {
        self.run_with(params, self.limits).await
    }

    /// Runs one activation with `params` and `limits`.
    pub async fn run_with(&self, params: Value, limits: Limits) -> Outcome {
        let request = RunRequest {
            params,
            context: context(&self.name),
            limits,
        };
        self.container.run(request).await
    }
}

/// Creates a container and initialises it with `code`; the init's failure outcome on error.
pub async fn deploy_code(
    factory: &WasmFactory,
    name: &str,
    code: Option<Code>,
    main: Option<&str>,
    env: BTreeMap<String, String>,
    limits: Limits,
) -> Result<Deployed, Box<Outcome>> {
    let spec = ContainerSpec {
        kind: "wasm:wasip1".into(),
        image: None,
        memory_mb: limits.memory,
        purpose: Purpose::Cold {
            namespace: "guest".into(),
            action: name.into(),
        },
    };
    let container = factory.create(spec).await.expect("a wasm container");
    let init = InitRequest {
        name: name.into(),
        main: main.map(str::to_string),
        code,
        env,
        context: context(name),
        limits,
    };
    let done = container.init(init).await?;
    assert!(done.end >= done.start);
    Ok(Deployed {
        name: name.into(),
        container,
        limits,
    })
}

/// Deploys the example `name` with default limits.
pub async fn deploy(factory: &WasmFactory, name: &str) -> Deployed {
    deploy_with(factory, name, Limits::default()).await
}

/// Deploys the example `name` with `limits`.
pub async fn deploy_with(factory: &WasmFactory, name: &str, limits: Limits) -> Deployed {
    deploy_code(
        factory,
        name,
        Some(example_code(name)),
        None,
        BTreeMap::new(),
        limits,
    )
    .await
    .unwrap_or_else(|outcome| panic!("init of {name} failed: {outcome:?}"))
}

/// The text of formatted log lines, without their time and after checking its format: a UTC RFC
/// 3339 time with nine fraction digits (or a padded notice time), padded to 30 columns.
pub fn log_texts(outcome: &Outcome) -> Vec<String> {
    outcome
        .logs
        .iter()
        .map(|line| {
            let (time, text) = line.split_at(31);
            let time = time.trim_end();
            assert!(
                time.len() >= 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
                "{line}"
            );
            text.to_string()
        })
        .collect()
}

/// The `{"error": message}` result.
pub fn error_of(outcome: &Outcome) -> &str {
    outcome
        .result
        .as_ref()
        .and_then(|result| result.get("error"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no error message in {outcome:?}"))
}
