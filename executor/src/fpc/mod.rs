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
//!   the polling client.

pub mod etcd;
pub mod grpc;
pub mod message;
