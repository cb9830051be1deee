//! A failed `ActivationService` call. The container's next step depends on it: an unresolvable host
//! destroys the container, any other failure sends it to the queue's leader key in etcd.

use std::error::Error as _;

/// A gRPC call that did not produce an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GrpcError {
    /// The endpoint does not make a valid URI.
    #[error("invalid scheduler endpoint {endpoint}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given (`host:port`).
        endpoint: String,
        /// Why tonic refused it.
        reason: String,
    },
    /// A client was made outside a tokio runtime (the channel's worker task needs one).
    #[error("a gRPC client needs a tokio runtime")]
    NoRuntime,
    /// The call ended with a non-OK status, or got no answer within its deadline
    /// ([`tonic::Code::DeadlineExceeded`]).
    #[error("gRPC call failed ({code:?}): {message}")]
    Status {
        /// The status code.
        code: tonic::Code,
        /// The status message, followed by its causes (connection and DNS errors are causes).
        message: String,
    },
}

impl GrpcError {
    /// The status code of a failed call (`None` when no call was made).
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Self::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the scheduler's host name could not be resolved. OpenWhisk's `ActivationClientProxy`
    /// destroys the container in that case (its message says "Unable to resolve host") instead of
    /// looking the queue's leader up again; hyper reports the same failure as a "dns error".
    pub fn is_unresolvable_host(&self) -> bool {
        match self {
            Self::Status { message, .. } => {
                let lower = message.to_ascii_lowercase();
                lower.contains("unable to resolve host")
                    || lower.contains("dns error")
                    || lower.contains("failed to lookup address")
            }
            _ => false,
        }
    }

    /// A call that got no answer within `deadline`.
    pub(crate) fn deadline(what: &str, deadline: std::time::Duration) -> Self {
        Self::Status {
            code: tonic::Code::DeadlineExceeded,
            message: format!("{what}: no answer within {deadline:?}"),
        }
    }
}

impl From<tonic::Status> for GrpcError {
    fn from(status: tonic::Status) -> Self {
        // tonic puts a transport failure's detail (connection refused, DNS) in the status's causes,
        // not its message; the message alone would not tell an unresolvable host from the rest.
        let mut message = status.message().to_string();
        let mut cause = status.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !message.contains(&text) {
                if !message.is_empty() {
                    message.push_str(": ");
                }
                message.push_str(&text);
            }
            cause = error.source();
        }
        Self::Status {
            code: status.code(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_status_keeps_code_and_message() {
        let error = GrpcError::from(tonic::Status::unavailable("connection refused"));
        assert_eq!(error.code(), Some(tonic::Code::Unavailable));
        assert!(error.to_string().contains("connection refused"));
        assert!(!error.is_unresolvable_host());
    }

    #[test]
    fn test_unresolvable_host_is_recognised() {
        for message in [
            "Unable to resolve host scheduler0",
            "error trying to connect: dns error: failed to lookup address information",
        ] {
            let error = GrpcError::from(tonic::Status::unavailable(message));
            assert!(error.is_unresolvable_host(), "{message}");
        }
        assert!(!GrpcError::NoRuntime.is_unresolvable_host());
        assert!(
            !GrpcError::deadline("fetch", std::time::Duration::from_secs(1)).is_unresolvable_host()
        );
    }

    #[test]
    fn test_causes_are_part_of_the_message() {
        let status =
            tonic::Status::from_error(Box::new(std::io::Error::other("dns error: no such host")));
        let error = GrpcError::from(status);
        assert!(error.is_unresolvable_host(), "{error}");
    }
}
