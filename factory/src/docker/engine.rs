//! The connection to the Docker daemon: made lazily, dropped when the daemon stops answering and made
//! again on the next call, so the factory recovers by itself when the daemon comes back.

use std::sync::Mutex;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;

/// The daemon's default address when neither the config nor `DOCKER_HOST` names one.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Longest wait for the daemon to answer the version negotiation (and pings). Bounds `create` and
/// `health` while the daemon hangs.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The HTTP timeout of the Engine API client; each operation has its own, shorter bound on top (the
/// longest is an image pull, 10 minutes).
const CLIENT_TIMEOUT_SECS: u64 = 600;

/// A lazily (re)connected Engine API client.
#[derive(Debug)]
pub struct Engine {
    host: String,
    client: Mutex<Option<Docker>>,
}

/// Why the Engine API could not be used.
#[derive(Debug)]
pub enum EngineError {
    /// The daemon does not answer (down, socket gone, hanging).
    Unavailable(String),
    /// The daemon answered with an error (`status` is its HTTP status).
    Api {
        /// HTTP status of the daemon's answer.
        status: u16,
        /// The daemon's message.
        message: String,
    },
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::Unavailable(reason) => {
                write!(f, "the Docker daemon does not answer: {reason}")
            }
            EngineError::Api { status, message } => {
                write!(f, "Docker API error {status}: {message}")
            }
        }
    }
}

impl Engine {
    /// An engine for `host` (`None`: `DOCKER_HOST`, else [`DEFAULT_HOST`]). Connects on first use.
    pub fn new(host: Option<String>) -> Self {
        let host = host
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        Self {
            host,
            client: Mutex::new(None),
        }
    }

    /// The daemon's address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// A connected client, connecting (and negotiating the API version) when there is none.
    pub async fn docker(&self) -> Result<Docker, EngineError> {
        if let Some(docker) = self
            .client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(docker);
        }
        let docker = Docker::connect_with_host(&self.host)
            .map_err(|e| EngineError::Unavailable(e.to_string()))?
            .with_timeout(Duration::from_secs(CLIENT_TIMEOUT_SECS));
        // bollard speaks a newer API than a 20.10 daemon; without negotiation every request fails.
        let docker = match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
            Ok(Ok(docker)) => docker,
            Ok(Err(e)) => return Err(self.classify(e)),
            Err(_) => {
                return Err(EngineError::Unavailable(
                    "version negotiation timed out".into(),
                ));
            }
        };
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(docker.clone());
        Ok(docker)
    }

    /// Forgets the client so the next call connects anew.
    pub fn invalidate(&self) {
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Turns a bollard error into an [`EngineError`], forgetting the client when the daemon did not
    /// answer.
    pub fn classify(&self, error: BollardError) -> EngineError {
        match error {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => EngineError::Api {
                status: status_code,
                message,
            },
            BollardError::JsonDataError { message, .. } => EngineError::Api {
                status: 200,
                message,
            },
            other => {
                self.invalidate();
                EngineError::Unavailable(other.to_string())
            }
        }
    }

    /// Runs one API call on a connected client within `timeout`, classifying its failure.
    pub async fn call<T, F, Fut>(&self, timeout: Duration, f: F) -> Result<T, EngineError>
    where
        F: FnOnce(Docker) -> Fut,
        Fut: std::future::Future<Output = Result<T, BollardError>>,
    {
        let docker = self.docker().await?;
        match tokio::time::timeout(timeout, f(docker)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.classify(e)),
            Err(_) => {
                self.invalidate();
                Err(EngineError::Unavailable(format!(
                    "no answer within {timeout:?}"
                )))
            }
        }
    }
}
