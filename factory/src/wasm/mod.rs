//! Wasm factory (in progress).
