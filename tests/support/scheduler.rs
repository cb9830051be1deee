//! The gRPC half of a fake OpenWhisk 2.x scheduler for the root package's end-to-end tests: a real
//! tonic `ActivationService` server that queues activations and answers polls as the scheduler's
//! `ActivationServiceImpl` does. The one copy lives in `executor/tests/support/scheduler.rs` (the
//! executor's own `grpc` test uses it too); this file re-exports it for
//! `#[path = "support/scheduler.rs"] mod scheduler;`.

#[path = "../../executor/tests/support/scheduler.rs"]
mod fake;

#[allow(
    unused_imports,
    reason = "each test crate uses a different part of the fake scheduler"
)]
pub use fake::*;
