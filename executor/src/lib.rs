//! The OpenWhisk side of wasm-invoker: everything shaped like OpenWhisk.
//!
//! Two sources feed one pool: the Kafka invoker (`invoker{N}` topic, acks on `completed{C}`, pings on
//! `health`) and the standalone REST server. Both turn requests into activations, fetch actions from
//! an entity store (CouchDB or a local directory), run them through the pool (the only caller of the
//! [`factory`] interface), build OpenWhisk activation records and store them.

pub mod action;
pub mod standalone;
pub mod clock;
pub mod pool;
pub mod bytesize;
pub mod document;
pub mod message;
pub mod record;
pub mod store;
pub mod config;
pub mod ack;
pub mod admin;
pub mod invoker;
pub mod kafka;
pub mod metrics;
pub mod ping;
