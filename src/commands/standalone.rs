//! `wasm-invoker standalone`: one process serving OpenWhisk's REST API (actions, activations, web
//! actions) on 127.0.0.1:3233, with the invoker's pool and factories (wasm always; Docker kinds when
//! a daemon answers and a runtimes manifest is given) and an embedded store under a data directory,
//! so actions and activations survive a restart.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use clap::Args;
use executor::config::{DEFAULT_USER_MEMORY, SHUTDOWN_GRACE};
use executor::pool::{PoolConfig, PoolFactory};
use executor::standalone::auth::{GUEST_KEY, GUEST_NAMESPACE, Subjects};
use executor::standalone::{DEFAULT_PORT, KindSet, Standalone, StandaloneConfig};
use factory::docker::DockerFactory;
use factory::wasm::{WASM_WASIP1_KIND, WasmConfig, WasmFactory};

use super::{runtimes_manifest, shutdown_signal};
use crate::error::{CliError, ExitStatus};

/// Name prefix (and ownership label) of the standalone node's Docker containers.
const DOCKER_NAME_PREFIX: &str = "wsksa0";

/// Arguments of `wasm-invoker standalone`.
#[derive(Debug, Args)]
pub struct StandaloneArgs {
    /// The port to listen on.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// The address to listen on (loopback by default: the API has a well-known default key).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Where actions and activations are stored (created when missing).
    #[arg(long, value_name = "DIR", default_value = ".wasm-invoker-standalone")]
    pub data_dir: PathBuf,

    /// Memory for running actions, in MB, shared by all activations.
    #[arg(long, value_name = "MB", default_value_t = DEFAULT_USER_MEMORY.as_mb())]
    pub user_memory: u64,

    /// An accepted API key and its namespace, `<uuid>:<secret>=<namespace>`; repeatable. Default:
    /// OpenWhisk's guest key for namespace `guest`.
    #[arg(long = "auth", value_name = "KEY=NAMESPACE")]
    pub auth: Vec<String>,

    /// The runtimes manifest (OpenWhisk's runtimes.json) for Docker kinds; default: the
    /// `RUNTIMES_MANIFEST` environment variable. Without one (or without a Docker daemon) only
    /// `wasm:wasip1` actions are accepted.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// Do not use Docker even when a daemon answers.
    #[arg(long)]
    pub no_docker: bool,
}

/// Serves until SIGINT or SIGTERM.
pub async fn execute(args: StandaloneArgs) -> Result<ExitStatus, CliError> {
    let mut config = StandaloneConfig::new(&args.data_dir);
    config.addr = SocketAddr::new(args.host, args.port);
    config.pool = PoolConfig {
        user_memory_mb: args.user_memory,
        ..PoolConfig::default()
    };
    config.subjects = subjects(&args.auth).map_err(CliError::Input)?;

    let wasm = WasmFactory::new(WasmConfig::default()).map_err(|error| {
        CliError::Internal(anyhow!(error).context("cannot start the wasm factory"))
    })?;
    let mut factories = vec![PoolFactory::in_process(Arc::new(wasm))];
    let mut manifest_kinds = Vec::new();
    if !args.no_docker
        && let Some((docker, kinds)) = docker(&args).await?
    {
        factories.push(PoolFactory::containers(docker));
        manifest_kinds = kinds;
    }
    config.kinds = KindSet::new(manifest_kinds);
    let kinds: Vec<String> = config.kinds.kinds.iter().cloned().collect();

    let node = Standalone::start(config, factories).await?;
    let addr = node.local_addr();
    eprintln!(
        "wasm-invoker standalone listening on http://{addr} (kinds: {})",
        kinds.join(", ")
    );
    eprintln!("data directory: {}", args.data_dir.display());
    if args.auth.is_empty() {
        eprintln!("API key (namespace {GUEST_NAMESPACE}): {GUEST_KEY}");
    }
    shutdown_signal().await;
    eprintln!("shutting down");
    node.shutdown(SHUTDOWN_GRACE).await;
    Ok(ExitStatus::Success)
}

/// The `--auth` keys, or the guest key.
fn subjects(auth: &[String]) -> anyhow::Result<Subjects> {
    if auth.is_empty() {
        return Ok(Subjects::default());
    }
    let mut keys = Vec::new();
    for entry in auth {
        let (key, namespace) = entry
            .rsplit_once('=')
            .ok_or_else(|| anyhow!("--auth {entry:?}: expected <uuid>:<secret>=<namespace>"))?;
        keys.push((key.to_string(), namespace.to_string()));
    }
    Subjects::new(keys).context("invalid --auth")
}

/// The Docker factory and the manifest's kinds, when a manifest is given and a daemon answers.
async fn docker(
    args: &StandaloneArgs,
) -> Result<Option<(Arc<DockerFactory>, Vec<(String, String, bool)>)>, CliError> {
    let Some(manifest) = runtimes_manifest(args.manifest.as_deref()).await? else {
        return Ok(None);
    };
    let kinds: Vec<(String, String, bool)> = manifest
        .runtimes()
        .map(|runtime| {
            (
                runtime.family.clone(),
                runtime.kind.clone(),
                runtime.default,
            )
        })
        .collect();
    let config = factory::docker::DockerConfig {
        // Its own container names and ownership label, so that its cleanup never touches the
        // containers of an invoker on the same daemon.
        name_prefix: DOCKER_NAME_PREFIX.to_string(),
        user_memory_mb: args.user_memory,
        ..factory::docker::DockerConfig::default()
    };
    match DockerFactory::connect(config, manifest).await {
        Ok(docker) => Ok(Some((docker, kinds))),
        Err(error) => {
            eprintln!("Docker is not available ({error}); serving {WASM_WASIP1_KIND} only");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_auth_flags_map_keys_to_namespaces() {
        assert!(subjects(&[]).is_ok());
        assert!(subjects(&["a:b=ns".to_string()]).is_ok());
        assert!(subjects(&["a:b".to_string()]).is_err());
        assert!(subjects(&["nocolon=ns".to_string()]).is_err());
    }
}
