//! The standalone server: one process serving the subset of OpenWhisk's controller REST API that
//! creates, lists, reads, updates, deletes and invokes actions, reads activations and serves web
//! actions, backed by an embedded store under a data directory.
//!
//! It is a second *source* feeding the same pool and record builder as the Kafka invoker: every
//! invoke becomes one [`crate::message::ActivationMessage`], exactly as the controller would have
//! put it on `invoker{N}`.

pub mod auth;
pub mod http;
pub mod validate;
pub mod web;
pub mod api;
pub mod backend;
