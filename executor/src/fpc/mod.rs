//! OpenWhisk 2.x's default invoker protocol, the scheduler's ("FPC", function pulling containers):
//! OpenWhisk's `FPCInvokerReactive` over the same pool, stores and acks as the classic invoker.
//!
//! In this mode `invoker{N}` carries container creation and deletion orders from a scheduler, not
//! activations; the invoker answers each creation on `creationAck{S}`, registers itself and its
//! containers in etcd under a lease, and every container pulls its activations from the scheduler
//! with gRPC long polls. Results still go to `completed{C}` and records to the activation store.
//! `docs/fpc.md` is the wire contract and the operator's guide.
//!
//! # Where things are
//!
//! - [`message`]: the Kafka messages of this mode (creation, deletion, creation ack) and the etcd
//!   values (the invoker's resource message, scheduler endpoints);
//! - [`etcd`]: the lease, its keep-alive and the invoker's keys (re-created when lost), and the key
//!   formats;
//! - [`grpc`]: the scheduler's `ActivationService` (generated from `proto/activation.proto`) and
//!   the polling client;
//! - [`orders`]: creation and deletion orders, checked and handed to the pool;
//! - [`pool`]: the scheduler-ordered containers and their memory; `container`: one container's
//!   life (create, poll, run, pause, resume, drain), OpenWhisk's `FunctionPullingContainerProxy`;
//! - [`health`]: the invoker's health key (`up`, `unhealthy`, `down`) and its self-test;
//! - `service`: the whole node, start to shutdown ([`run`]), and its admin switch.

mod container;
pub mod etcd;
pub mod grpc;
pub mod health;
pub mod message;
pub mod orders;
pub mod pool;
mod service;

pub use service::{FpcSettings, run};
