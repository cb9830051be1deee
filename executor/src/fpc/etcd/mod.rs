//! etcd for the FPC invoker: the key formats, the lease and the keys kept alive on it.
//!
//! An FPC invoker announces itself and its containers as etcd keys attached to one lease: its
//! health key (`{cluster}/invokers/...`, read by schedulers and controllers), one key per existing
//! and per paused container (read by the schedulers' queues), and its lease key. If the invoker
//! dies the lease expires and every key goes with it; while it lives, keys lost to a lease loss or
//! an external delete must come back, or the schedulers stop sending it work.
//!
//! - [`keys`]: the key formats of OpenWhisk's `EtcdKV` as pure functions;
//! - [`EtcdConfig`]: endpoints, credentials, lease TTL, retry interval;
//! - [`Registry`]: OpenWhisk's `LeaseKeepAliveService` (grant, keep-alive every 500 ms, re-grant
//!   on loss) and `DataManagementService` (registered keys written on the current lease, retried,
//!   deduplicated, re-created when deleted) in one object, plus the reads and the prefix watch the
//!   invoker needs ([`PrefixEvent`]);
//! - [`EtcdError`]: what a call can fail with.
//!
//! All values are UTF-8 text, as upstream writes them.

mod config;
mod error;
pub mod keys;
mod lease;
mod ops;
mod prefix;
mod registry;

pub use config::{EtcdConfig, KEEP_ALIVE_PERIOD};
pub use error::EtcdError;
pub use keys::ContainerKind;
pub use prefix::PrefixEvent;
pub use registry::Registry;
