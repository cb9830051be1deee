//! The execution side of wasm-invoker: one lifecycle + health interface, two runtimes behind it.
//!
//! The executor's pool drives every action through [`Factory`] and [`Container`] (see [`container`] for
//! the order of calls and what each may do) and gets back one [`Outcome`] per activation, already in
//! OpenWhisk's terms (status 0-3, result, formatted logs, times, timeout flag, fuel).
//!
//! - [`wasm`]: actions of kind `wasm:wasip1` (WASI preview 1 commands) in pooled wasmtime instances,
//!   compiled once per module digest, with memory, time, fuel, log and result limits.
//! - [`docker`]: every other kind, in OpenWhisk's own runtime images through the Docker Engine API.
//!
//! This crate knows actions only as kind, code, entry point, limits and init environment, and
//! activations as parameters, context and deadline. It knows nothing of Kafka, CouchDB or HTTP APIs.

pub mod container;
pub mod docker;
pub mod error;
pub mod limits;
pub mod logs;
pub mod outcome;
pub mod wasm;

pub use container::{
    ActivationContext, Code, Container, ContainerSpec, Factory, Health, InitDone, InitRequest,
    Purpose, ReactivePrewarm, RunRequest, StemCell,
};
pub use error::FactoryError;
pub use limits::Limits;
pub use outcome::{ContainerFault, Outcome, Status};
