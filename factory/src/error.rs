//! Errors of the lifecycle interface itself: a container that cannot be provisioned or operated.
//!
//! Failures *inside* an activation are not errors here: they are [`Outcome`]s. Each implementation has
//! its own error module for its internals and converts into [`FactoryError`] at the interface.

use thiserror::Error;

use crate::outcome::{Outcome, Status, messages};

/// A lifecycle operation that failed.
#[derive(Debug, Error)]
pub enum FactoryError {
    /// The factory does not run this kind.
    #[error("the {factory} factory does not run kind '{kind}'")]
    UnsupportedKind {
        /// The factory asked.
        factory: &'static str,
        /// The kind it was asked for.
        kind: String,
    },
    /// A managed runtime could not be provisioned (missing image, daemon error): a whisk error.
    #[error("failed to provision a container: {reason}")]
    Provision {
        /// What went wrong, for the invoker's log (never shown to the user).
        reason: String,
    },
    /// A blackbox container could not be started for a reason that is the action's (an image that
    /// cannot be pulled): a developer error whose message the user sees.
    #[error("{message}")]
    BlackboxStart {
        /// The message recorded in the activation.
        message: String,
    },
    /// The runtime behind the factory does not answer (the Docker daemon is down).
    #[error("the {factory} runtime is unavailable: {reason}")]
    Unavailable {
        /// The factory.
        factory: &'static str,
        /// Why.
        reason: String,
    },
    /// Pause, resume or destroy failed; the container is unusable.
    #[error("{operation} of container {id} failed: {reason}")]
    Operation {
        /// `pause`, `resume` or `destroy`.
        operation: &'static str,
        /// The container.
        id: String,
        /// Why.
        reason: String,
    },
}

impl FactoryError {
    /// The status an activation gets when this error prevented it from running.
    pub fn status(&self) -> Status {
        match self {
            FactoryError::BlackboxStart { .. } => Status::DeveloperError,
            _ => Status::WhiskError,
        }
    }

    /// The outcome of an activation this error prevented, with OpenWhisk's message: internal details
    /// stay in the invoker's log; the user sees "Failed to provision resources to run the action."
    pub fn to_outcome(&self) -> Outcome {
        match self {
            FactoryError::BlackboxStart { message } => {
                Outcome::instant_error(Status::DeveloperError, message.clone())
            }
            _ => Outcome::instant_error(Status::WhiskError, messages::RESOURCE_ERROR),
        }
    }
}

/// The text a caught panic carries (`panic!` with a literal or a formatted message), if any: for
/// reporting a host bug that `catch_unwind` turned into a failed operation.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_panic_messages_literal_formatted_and_none() {
        let literal = std::panic::catch_unwind(|| panic!("literal")).unwrap_err();
        assert_eq!(panic_message(literal.as_ref()), Some("literal"));
        let n = 7;
        let formatted = std::panic::catch_unwind(|| panic!("formatted {n}")).unwrap_err();
        assert_eq!(panic_message(formatted.as_ref()), Some("formatted 7"));
        let other = std::panic::catch_unwind(|| std::panic::panic_any(42_u8)).unwrap_err();
        assert_eq!(panic_message(other.as_ref()), None);
    }
}
