//! `wasm-invoker run`: runs one action file once, exactly as the invoker would, for action authors.
//!
//! The result goes to stdout as one line of JSON; the activation's formatted log lines go to stderr.
//! The exit status is the activation's status code (0 success, 1 application error, 2 developer
//! error, 3 internal error), so a shell script can tell an action's error from a platform failure.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use factory::limits::{DEFAULT_LOGS_MB, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS};
use factory::wasm::WASM_WASIP1_KIND;
use factory::{
    ActivationContext, Code, ContainerSpec, Factory, InitRequest, Limits, Outcome, Purpose,
    RunRequest,
};
use serde_json::{Map, Value};

use super::runtimes_manifest;
use crate::error::{CliError, ExitStatus};

/// The namespace the activation runs in; there is no caller, so it is OpenWhisk's default user's.
const NAMESPACE: &str = "guest";

/// Arguments of `wasm-invoker run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The action: a wasm module (`.wasm`) or a zip holding one; with `--kind`, the source file, zip or
    /// executable the runtime expects.
    pub file: PathBuf,

    /// A parameter. VALUE is JSON when it parses as JSON, else a string (as `wsk` does). Repeatable;
    /// later values override earlier ones and the parameter file.
    #[arg(short = 'p', long = "param", num_args = 2, value_names = ["KEY", "VALUE"], action = clap::ArgAction::Append)]
    pub params: Vec<String>,

    /// A JSON file holding an object of parameters, applied before `-p`.
    #[arg(short = 'P', long = "param-file", value_name = "FILE")]
    pub param_file: Option<PathBuf>,

    /// Memory limit in MB.
    #[arg(short = 'm', long, value_name = "MB", default_value_t = DEFAULT_MEMORY_MB)]
    pub memory: u32,

    /// Time limit in milliseconds.
    #[arg(short = 't', long, value_name = "MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    pub timeout: u64,

    /// Log limit in MB (0 keeps no logs).
    #[arg(short = 'l', long, value_name = "MB", default_value_t = DEFAULT_LOGS_MB)]
    pub logs: u32,

    /// CPU budget in wasmtime fuel units (wasm only); the fuel used is printed on stderr.
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,

    /// The action's kind, e.g. `wasm:wasip1` (the default), `nodejs:20`, `python:3.11`, `blackbox`.
    #[arg(long, default_value = WASM_WASIP1_KIND)]
    pub kind: String,

    /// The image of a `blackbox` action.
    #[arg(long)]
    pub image: Option<String>,

    /// The runtimes manifest (OpenWhisk's runtimes.json) for Docker kinds; default: the
    /// `RUNTIMES_MANIFEST` environment variable.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// The entry point (`exec.main`): the function for source kinds, the module inside a zip for wasm.
    #[arg(long)]
    pub main: Option<String>,
}

/// Runs the action and prints its result; see the module docs for the exit status.
pub async fn execute(args: RunArgs) -> Result<ExitStatus, CliError> {
    let outcome = run(args).await?;
    for line in &outcome.logs {
        eprintln!("{line}");
    }
    if let Some(fuel) = outcome.fuel {
        eprintln!("fuel used: {fuel}");
    }
    let result = outcome
        .result
        .clone()
        .unwrap_or_else(|| Value::Object(Map::new()));
    println!("{result}");
    Ok(outcome.status.into())
}

async fn run(args: RunArgs) -> Result<Outcome, CliError> {
    let params = parameters(&args).map_err(CliError::Input)?;
    let bytes = read_file(&args.file).await.map_err(CliError::Input)?;
    let limits = Limits {
        timeout: args.timeout,
        memory: args.memory,
        logs: args.logs,
        concurrency: 1,
    };
    let factory = make_factory(&args).await?;
    if !factory.supports(&args.kind) {
        return Err(CliError::Input(anyhow!(
            "kind '{}' is not supported here",
            args.kind
        )));
    }
    let name = action_name(&args.file);
    let context = ActivationContext {
        activation_id: random_hex(),
        namespace: NAMESPACE.to_string(),
        action_name: format!("/{NAMESPACE}/{name}"),
        action_version: Some("0.0.1".to_string()),
        transaction_id: random_hex(),
        api_key: None,
        deadline: SystemTime::now() + Duration::from_millis(args.timeout),
    };
    let spec = ContainerSpec {
        kind: args.kind.clone(),
        image: args.image.clone(),
        memory_mb: args.memory,
        purpose: Purpose::Cold {
            namespace: NAMESPACE.to_string(),
            action: name.clone(),
        },
    };
    let container = match factory.create(spec).await {
        Ok(container) => container,
        Err(error) => {
            tracing::error!(%error, "cannot create a container");
            eprintln!("error: {error}");
            return Ok(error.to_outcome());
        }
    };
    let init = InitRequest {
        name,
        main: args.main.clone(),
        code: Some(code_for(&args.kind, bytes)),
        env: Default::default(),
        context: context.clone(),
        limits,
    };
    let outcome = match container.init(init).await {
        Ok(done) => {
            let mut outcome = container
                .run(RunRequest {
                    params,
                    context,
                    limits,
                })
                .await;
            outcome.init_time = Some(done.duration());
            outcome
        }
        Err(outcome) => *outcome,
    };
    if let Err(error) = container.destroy().await {
        tracing::warn!(%error, "cannot destroy the container");
    }
    Ok(outcome)
}

/// Builds the factory for the kind: wasm in-process, anything else through the Docker daemon.
async fn make_factory(args: &RunArgs) -> Result<Arc<dyn Factory>, CliError> {
    let mut wasm_config = factory::wasm::WasmConfig::default();
    if wasm_config.kinds.iter().any(|kind| kind == &args.kind) {
        if let Some(fuel) = args.fuel {
            wasm_config.fuel = factory::wasm::FuelMode::Fixed(fuel);
        }
        let wasm = factory::wasm::WasmFactory::new(wasm_config).map_err(|error| {
            CliError::Internal(anyhow!(error).context("cannot start the wasm factory"))
        })?;
        return Ok(Arc::new(wasm));
    }
    if args.fuel.is_some() {
        return Err(CliError::Input(anyhow!(
            "--fuel applies to wasm kinds only"
        )));
    }
    let manifest = runtimes_manifest(args.manifest.as_deref())
        .await?
        .ok_or_else(|| {
            CliError::Input(anyhow!(
                "kind '{}' runs in Docker and needs a runtimes manifest: pass --manifest FILE or set RUNTIMES_MANIFEST",
                args.kind
            ))
        })?;
    // A prefix of its own, so this container can never be taken for (or clean up) an invoker's.
    let config = factory::docker::DockerConfig {
        name_prefix: format!("wskrun{}", std::process::id()),
        ..factory::docker::DockerConfig::default()
    };
    let docker = factory::docker::DockerFactory::connect(config, manifest)
        .await
        .map_err(|error| {
            CliError::Internal(anyhow!(error).context("cannot reach the Docker daemon"))
        })?;
    Ok(docker)
}

/// The code as `/init` carries it: wasm modules, zips and executables as bytes, source as text.
fn code_for(kind: &str, bytes: Vec<u8>) -> Code {
    if kind.starts_with("wasm:") || bytes.starts_with(b"PK\x03\x04") {
        return Code::Binary(bytes.into());
    }
    match String::from_utf8(bytes) {
        Ok(text) => Code::Text(text),
        Err(error) => Code::Binary(error.into_bytes().into()),
    }
}

/// The action's name: the file name without its extension.
fn action_name(file: &Path) -> String {
    file.file_stem()
        .and_then(|stem| stem.to_str())
        .filter(|stem| !stem.is_empty())
        .unwrap_or("action")
        .to_string()
}

async fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    tokio::fs::read(path)
        .await
        .with_context(|| format!("cannot read the action file {}", path.display()))
}

/// Merges the parameter file and the `-p` pairs into one object, `-p` last.
fn parameters(args: &RunArgs) -> anyhow::Result<Value> {
    let mut params = Map::new();
    if let Some(path) = &args.param_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the parameter file {}", path.display()))?;
        match serde_json::from_str::<Value>(&text)
            .with_context(|| format!("the parameter file {} is not JSON", path.display()))?
        {
            Value::Object(map) => params.extend(map),
            _ => bail!(
                "the parameter file {} must hold a JSON object",
                path.display()
            ),
        }
    }
    for pair in args.params.chunks(2) {
        let [key, value] = pair else {
            bail!("-p needs a KEY and a VALUE");
        };
        params.insert(key.clone(), parse_value(value));
    }
    Ok(Value::Object(params))
}

/// A `-p` value: JSON when it parses as JSON, else the string itself (as `wsk` does).
fn parse_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// 32 lowercase hex characters, the form of OpenWhisk activation and transaction ids.
fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_parse_value_follows_wsk() {
        assert_eq!(parse_value("42"), json!(42));
        assert_eq!(parse_value("true"), json!(true));
        assert_eq!(parse_value(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(parse_value("Ada"), json!("Ada"));
        assert_eq!(parse_value("\"quoted\""), json!("quoted"));
    }

    #[test]
    fn test_code_for_keeps_source_as_text() {
        assert_eq!(
            code_for("nodejs:20", b"function main(){}".to_vec()),
            Code::Text("function main(){}".into())
        );
        assert!(matches!(
            code_for("wasm:wasip1", b"\0asm".to_vec()),
            Code::Binary(_)
        ));
        assert!(matches!(
            code_for("python:3.11", b"PK\x03\x04rest".to_vec()),
            Code::Binary(_)
        ));
    }
}
