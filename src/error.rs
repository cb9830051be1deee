//! What the process reports: [`CliError`], the one error type of every subcommand, and the
//! [`ExitStatus`] it maps to (once, in `main`).
//!
//! The exit statuses follow the activation status codes, so a script can tell an action's failure
//! (or its own mistake) from ours.

use executor::config::ConfigError;
use executor::invoker::InvokerError;
use executor::standalone::StandaloneError;
use factory::Status;
use factory::docker::manifest::ManifestError;
use thiserror::Error;

/// The process exit status of every subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// 0: the action succeeded, or the server ran and stopped cleanly.
    Success = 0,
    /// 1: the action returned an application error.
    ApplicationError = 1,
    /// 2: the action (or the command line, its configuration or its input files) is at fault.
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

/// Why a subcommand could not do its work. Printed as `error: <message>` on stderr.
#[derive(Debug, Error)]
pub enum CliError {
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The invoker's configuration (file, environment, flags) cannot be used.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The runtimes manifest cannot be read or is not valid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The invoker could not start, or failed while running.
    #[error(transparent)]
    Invoker(#[from] InvokerError),
    /// The standalone node could not start.
    #[error(transparent)]
    Standalone(#[from] StandaloneError),
    /// The command line or an input file is at fault.
    #[error("{0:#}")]
    Input(anyhow::Error),
    /// wasm-invoker, or a service it needs, failed.
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

impl CliError {
    /// The exit status this error ends the process with.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            CliError::Config(_) | CliError::Manifest(_) | CliError::Input(_) => {
                ExitStatus::DeveloperError
            }
            CliError::Invoker(error) if error.is_configuration() => ExitStatus::DeveloperError,
            CliError::Runtime(_)
            | CliError::Invoker(_)
            | CliError::Standalone(_)
            | CliError::Internal(_) => ExitStatus::InternalError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_status_maps_to_exit_status() {
        assert_eq!(ExitStatus::from(Status::Success) as u8, 0);
        assert_eq!(ExitStatus::from(Status::ApplicationError) as u8, 1);
        assert_eq!(ExitStatus::from(Status::DeveloperError) as u8, 2);
        assert_eq!(ExitStatus::from(Status::WhiskError) as u8, 3);
    }

    #[test]
    fn test_errors_map_to_who_is_at_fault() {
        let input = CliError::Input(anyhow::anyhow!("bad flag"));
        assert_eq!(input.exit_status(), ExitStatus::DeveloperError);
        assert_eq!(input.to_string(), "bad flag");
        let config = CliError::from(ConfigError::Invalid("kafka.hosts is empty".into()));
        assert_eq!(config.exit_status(), ExitStatus::DeveloperError);
        let manifest = CliError::from(ManifestError::Parse("eof".into()));
        assert_eq!(manifest.exit_status(), ExitStatus::DeveloperError);
        let invoker = CliError::from(InvokerError::from(ConfigError::Invalid("x".into())));
        assert_eq!(invoker.exit_status(), ExitStatus::DeveloperError);
        let listen = CliError::from(InvokerError::Listen {
            port: 1,
            source: std::io::Error::other("in use"),
        });
        assert_eq!(listen.exit_status(), ExitStatus::InternalError);
        let internal = CliError::Internal(anyhow::anyhow!("no daemon"));
        assert_eq!(internal.exit_status(), ExitStatus::InternalError);
    }
}
