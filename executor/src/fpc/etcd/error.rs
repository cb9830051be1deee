//! What can go wrong talking to etcd.

use std::time::Duration;

/// An etcd operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The configuration has no endpoint.
    #[error("no etcd endpoint configured")]
    NoEndpoint,
    /// The client or the server reported an error (connection refused, gRPC status, ...).
    #[error("etcd {operation} failed: {source}")]
    Client {
        /// The operation (`get`, `put`, `lease grant`, ...).
        operation: &'static str,
        /// What the client said.
        #[source]
        source: etcd_client::Error,
    },
    /// The server did not answer in time.
    #[error("etcd {operation} timed out after {timeout:?}")]
    Timeout {
        /// The operation.
        operation: &'static str,
        /// How long it waited.
        timeout: Duration,
    },
    /// A key or value that is not UTF-8 (the invoker only reads and writes text).
    #[error("etcd returned a key or value that is not UTF-8: {0}")]
    NotUtf8(String),
    /// The server answered with something the protocol does not allow (e.g. a lease without TTL).
    #[error("unexpected etcd reply to {operation}: {detail}")]
    Unexpected {
        /// The operation.
        operation: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The registry was shut down.
    #[error("the etcd registry is shut down")]
    Shutdown,
}
