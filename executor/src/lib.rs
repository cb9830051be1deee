//! The OpenWhisk side of wasm-invoker: everything shaped like OpenWhisk.
//!
//! Two sources feed one pool: the Kafka invoker (`invoker{N}` topic, acks on `completed{C}`, pings on
//! `health`) and the standalone REST server. Both turn requests into activations, fetch actions from
//! an entity store (CouchDB or a local directory), run them through the pool (the only caller of the
//! [`factory`] interface), build OpenWhisk activation records and store them.
//!
//! # Where to start reading
//!
//! - [`processor`]: the path of one activation from a parsed message to its acks and record, shared
//!   by both sources. Everything else hangs off it:
//!   [`loader`] (fetching and checking an action), [`pool`] (which container runs it),
//!   [`record`] and [`ack`] (what the controller gets back), [`store`] (where documents and records
//!   live).
//! - [`invoker`]: the Kafka service ([`invoker::Invoker::assemble`] builds it from an
//!   [`config::InvokerConfig`]); [`standalone`]: the REST server.
//! - [`message`], [`document`], [`record`]: OpenWhisk's wire and database forms, field by field.
//!
//! `docs/ARCHITECTURE.md` walks one activation through these files; `docs/protocol.md` is the wire
//! contract they implement.

pub mod ack;
pub mod action;
pub mod admin;
pub mod blacklist;
pub mod bytesize;
pub mod clock;
pub mod config;
pub mod document;
pub mod fatal;
pub mod fpc;
pub mod invoker;
pub mod kafka;
pub mod limits;
pub mod loader;
pub mod log_throttle;
pub mod message;
pub mod metrics;
pub mod ping;
pub mod pool;
pub mod processor;
pub mod record;
/// The HTTP/1.1 accept loop (connection bound, timeouts) shared by the admin and standalone servers.
pub mod serve;
pub mod service;
pub mod standalone;
pub mod store;
pub mod tls;
