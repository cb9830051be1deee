//! Errors of the Docker factory's own setup (connecting, reading the manifest). Failures of lifecycle
//! operations are [`FactoryError`](crate::FactoryError)s; failures inside activations are outcomes.

use thiserror::Error;

use crate::docker::manifest::ManifestError;

/// The Docker factory could not be set up.
#[derive(Debug, Error)]
pub enum DockerError {
    /// The daemon did not answer or its API version could not be negotiated.
    #[error("cannot reach the Docker daemon at {host}: {reason}")]
    Connect {
        /// The daemon's address.
        host: String,
        /// Why.
        reason: String,
    },
    /// The runtimes manifest is not usable.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}
