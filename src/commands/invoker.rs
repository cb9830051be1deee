//! `wasm-invoker invoker`: the drop-in OpenWhisk invoker. Consumes `invoker{N}` from Kafka, runs
//! activations (wasm in-process, other kinds in Docker), answers on `completed{C}`, pings `health`,
//! serves the admin routes on `PORT`, and stores records in CouchDB (or a local directory).
//!
//! Configuration: a TOML file (`--config`), then OpenWhisk's environment names (`KAFKA_HOSTS`, `PORT`,
//! `RUNTIMES_MANIFEST`, `WHISK_API_HOST_*`, `CONFIG_whisk_*`, ...: the table is `executor::config`'s),
//! then these flags. Without a runtimes manifest, or without a reachable Docker daemon, only wasm
//! kinds run (other kinds get a whisk error); the controller's health test action is answered
//! in-process either way.
//!
//! Stops on SIGTERM or Ctrl-C: no new messages, running activations finish and are acknowledged
//! and stored, one disabled ping, exit 0.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;
use executor::config::{ConfigOverrides, InvokerConfig};
use executor::invoker::Invoker;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::shutdown_signal;
use crate::error::{CliError, ExitStatus};

/// Arguments of `wasm-invoker invoker`.
#[derive(Debug, Args)]
pub struct InvokerArgs {
    /// The instance number N: this invoker consumes topic `invoker{N}` (OpenWhisk's `--id`).
    #[arg(long)]
    pub id: Option<u32>,

    /// A stable unique name, part of the identity the controller sees (OpenWhisk's `--uniqueName`).
    #[arg(long = "unique-name", alias = "uniqueName", value_name = "S")]
    pub unique_name: Option<String>,

    /// A friendlier name for the controller's logs (OpenWhisk's `--displayedName`).
    #[arg(long = "displayed-name", alias = "displayedName", value_name = "S")]
    pub displayed_name: Option<String>,

    /// A TOML configuration file; environment variables and flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Loads the configuration, assembles the node ([`Invoker::assemble`]) and runs it until SIGTERM /
/// Ctrl-C.
pub async fn execute(args: InvokerArgs) -> Result<ExitStatus, CliError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let overrides = ConfigOverrides {
        id: args.id,
        unique_name: args.unique_name,
        displayed_name: args.displayed_name,
        ..ConfigOverrides::default()
    };
    let config = InvokerConfig::load(args.config.as_deref(), &env, &overrides)?;
    let parts = Invoker::assemble(&config).await?;

    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown_signal().await;
            info!("signal received: shutting down");
            shutdown.cancel();
        }
    });
    Invoker::run(parts, shutdown).await?;
    Ok(ExitStatus::Success)
}
