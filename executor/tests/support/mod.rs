//! Test support shared by the executor's integration tests (and reusable from other test crates with
//! `#[path = "../executor/tests/support/mod.rs"] mod support;`):
//!
//! - [`pouchdb::PouchDb`]: a real `pouchdb-server --in-memory` on a free 127.0.0.1 port, with an admin
//!   user, killed when dropped;
//! - [`ports::free_port`]: the one port picker for servers a test starts (outside the kernel's
//!   ephemeral range, reserved machine-wide; [`etcd`], [`pouchdb`] and [`tansu`] include it too);
//! - [`fixtures`]: OpenWhisk's golden fixtures in `executor/tests/fixtures/` and a runtimes-manifest
//!   kind resolver built from the fixture manifest.

#![allow(
    dead_code,
    reason = "each test crate uses a different part of the support module"
)]

pub mod etcd;
pub mod fixtures;
pub mod ports;
pub mod pouchdb;
pub mod tansu;
