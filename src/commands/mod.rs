//! One module per subcommand, and what they share: exit statuses and logging setup.

pub mod invoker;
pub mod run;
pub mod standalone;

use factory::Status;

/// The process exit status of every subcommand, following the activation status codes so scripts can
/// tell an action's failure from ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// 0: the action succeeded, or the server ran and stopped cleanly.
    Success = 0,
    /// 1: the action returned an application error.
    ApplicationError = 1,
    /// 2: the action (or the command line, or its input files) is at fault.
    DeveloperError = 2,
    /// 3: wasm-invoker itself, or a service it needs, failed.
    InternalError = 3,
}

impl From<Status> for ExitStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Success => ExitStatus::Success,
            Status::ApplicationError => ExitStatus::ApplicationError,
            Status::DeveloperError => ExitStatus::DeveloperError,
            Status::WhiskError => ExitStatus::InternalError,
        }
    }
}

/// The multi-threaded tokio runtime every subcommand runs on; a failure to start it is reported on
/// stderr and becomes [`ExitStatus::InternalError`].
pub fn runtime() -> Result<tokio::runtime::Runtime, ExitStatus> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("error: cannot start the async runtime: {error}");
            ExitStatus::InternalError
        })
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings, so `run` prints only the action's logs).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A second initialisation (tests calling in twice) is harmless; ignore it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
