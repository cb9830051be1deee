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
//! Two protocols (`--mode`): OpenWhisk 1.x's classic one, and OpenWhisk 2.x's scheduler ("FPC":
//! container orders on `invoker{N}`, acks on `creationAck{S}`, etcd, gRPC polls; `executor::fpc`).
//!
//! Stops on SIGTERM or Ctrl-C: no new messages, running activations finish and are acknowledged
//! and stored, one disabled ping, exit 0.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;
use executor::config::{ConfigOverrides, InvokerConfig, ModeSetting};
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

    /// The protocol. `classic`: OpenWhisk 1.x's, activations on `invoker{N}` and pings on `health`.
    /// `fpc`: OpenWhisk 2.x's scheduler, container orders on `invoker{N}`, etcd registration and
    /// gRPC polls (needs CONFIG_whisk_etcd_hosts). `auto` (the default, or `scheduler.mode` in the
    /// file): FPC when CONFIG_whisk_spi_InvokerProvider names FPCInvokerReactive, classic when it
    /// names another class, and otherwise FPC exactly when CONFIG_whisk_etcd_hosts is set.
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<ModeArg>,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// OpenWhisk's own settings decide.
    Auto,
    /// OpenWhisk 1.x's protocol.
    Classic,
    /// OpenWhisk 2.x's scheduler protocol.
    Fpc,
}

impl From<ModeArg> for ModeSetting {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Auto => Self::Auto,
            ModeArg::Classic => Self::Classic,
            ModeArg::Fpc => Self::Fpc,
        }
    }
}

/// Loads the configuration, assembles the node ([`Invoker::assemble`]) and runs it until SIGTERM /
/// Ctrl-C.
pub async fn execute(args: InvokerArgs) -> Result<ExitStatus, CliError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let overrides = ConfigOverrides {
        id: args.id,
        unique_name: args.unique_name,
        displayed_name: args.displayed_name,
        mode: args.mode.map(ModeSetting::from),
        ..ConfigOverrides::default()
    };
    let config = InvokerConfig::load(args.config.as_deref(), &env, &overrides)?;
    info!(mode = %config.invoker_mode(), "protocol");
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
