//! One module per subcommand, and what they share: the async runtime, logging, the shutdown signal
//! and the runtimes manifest of `run` and `standalone`.

pub mod invoker;
pub mod run;
pub mod standalone;

use std::path::Path;

use executor::config::ManifestSource;
use factory::docker::Manifest;

use crate::error::CliError;

/// The multi-threaded tokio runtime every subcommand runs on. Its workers reset the instance slots
/// of finished wasm activations when they go idle, after the answers are out.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(factory::wasm::reset_idle_slots)
        .build()
        .map_err(CliError::Runtime)
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings, so `run` prints only the action's logs).
/// Colours only on a terminal: OpenWhisk's invoker role sends stderr to a log file.
pub fn init_tracing() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A second initialisation (tests calling in twice) is harmless; ignore it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Completes on SIGTERM or SIGINT (Ctrl-C): the one stop signal of the servers.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the process");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The runtimes manifest of `run` and `standalone`: `--manifest FILE`, else the `RUNTIMES_MANIFEST`
/// environment variable, else none. (The invoker reads its own from its configuration, through the
/// same [`ManifestSource`].)
pub async fn runtimes_manifest(file: Option<&Path>) -> Result<Option<Manifest>, CliError> {
    match ManifestSource::file_or_env(file) {
        Some(source) => Ok(Some(source.load().await?)),
        None => Ok(None),
    }
}
