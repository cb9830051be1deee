//! [`WasmError`]: what can go wrong in the wasm factory outside an activation.
//!
//! Failures *inside* an activation (traps, timeouts, bad output) are never errors: they become
//! [`Outcome`](crate::Outcome)s in [`container`](super::container). A module the user sent that
//! cannot run is a [`CodeError`], shown to the user as a developer error; everything else here is
//! the operator's or the host's problem.

use thiserror::Error;

use crate::error::FactoryError;

use super::cache::CacheError;
use super::code::CodeError;

/// A failure of the wasm factory itself, or a module refused at init.
#[derive(Debug, Error)]
pub enum WasmError {
    /// A configuration value is out of range.
    #[error("invalid wasm configuration: {field} {reason}")]
    Config {
        /// The field of [`WasmConfig`](super::WasmConfig).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// wasmtime refused the engine configuration (e.g. the pool does not fit the address space).
    #[error("cannot create the wasmtime engine: {reason}")]
    Engine {
        /// wasmtime's error, with its causes.
        reason: String,
    },
    /// The epoch ticker thread could not be started.
    #[error("cannot start the epoch ticker thread: {0}")]
    Ticker(#[source] std::io::Error),
    /// The WASI preview 1 functions could not be added to the linker.
    #[error("cannot link WASI preview 1: {reason}")]
    Linker {
        /// wasmtime's error.
        reason: String,
    },
    /// The action's code is not a runnable module (the user's error).
    #[error(transparent)]
    Code(#[from] CodeError),
    /// The compiled-module cache failed (setting up its directory).
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// An instance could not be created for a reason that is not the module's (benches only).
    #[error("cannot instantiate the module: {reason}")]
    Instantiate {
        /// wasmtime's error.
        reason: String,
    },
    /// A compiled module could not be serialized.
    #[error("cannot serialize the compiled module: {reason}")]
    Serialize {
        /// wasmtime's error.
        reason: String,
    },
}

impl From<WasmError> for FactoryError {
    fn from(error: WasmError) -> Self {
        FactoryError::Unavailable {
            factory: "wasm",
            reason: error.to_string(),
        }
    }
}

/// Formats a wasmtime error with its causes on one line (`outer: inner: root`).
pub(crate) fn describe(error: &wasmtime::Error) -> String {
    format!("{error:#}")
}
