//! The wire values of the scheduler's protocol ("FPC"), read and written as OpenWhisk 2.x does.
//!
//! On Kafka: the orders on `invoker{N}` ([`ContainerMessage`]: a [`ContainerCreationMessage`] or a
//! [`ContainerDeletionMessage`], `ContainerMessage` in `Message.scala`) and the invoker's answer to a
//! creation on `creationAck{S}` ([`ContainerCreationAckMessage`], with a [`ContainerCreationError`]
//! when it failed). In etcd: the invoker's health value ([`InvokerResourceMessage`],
//! `InvokerResourceMessage` in `Message.scala`) and what the schedulers publish about themselves
//! ([`SchedulerStates`] and [`SchedulerEndpoints`], `Scheduler.scala`). Plus the document-revision
//! order deletions use ([`revision_at_most`], `DocRevision.compare` in `DocInfo.scala`).
//!
//! The shared parts (transaction ids, action names, the invoker's id) are the classic protocol's
//! types from [`crate::message`], so both modes write them identically. As there, parsing never
//! panics (malformed input is a [`MessageError`]), key order is not significant, `None` options are
//! omitted and every other field is always written; document revisions are the exception, written
//! as `null` when empty because OpenWhisk's `DocRevision` is.
//!
//! One file per value: `creation.rs`, `deletion.rs`, `container.rs` (the two on one topic),
//! `ack.rs`, `creation_error.rs`, `resource.rs`, `scheduler.rs`, and the parts they share:
//! `creation_id.rs`, `revision.rs`. Everything is re-exported here.

/// The `parse` and `to_json` of a wire value (`$type`), the same for every value here: read from
/// bytes bounded and checked like the classic messages ([`parse_bounded`]), written as compact
/// JSON ([`to_json`]). `$read` and `$written` are their docs: what is read from where, and what
/// the text is for.
macro_rules! wire_json {
    ($type:ty, $read:literal, $written:literal $(,)?) => {
        impl $type {
            #[doc = $read]
            pub fn parse(bytes: &[u8]) -> Result<Self, super::MessageError> {
                super::parse_bounded(bytes)
            }

            #[doc = $written]
            pub fn to_json(&self) -> String {
                super::to_json(self)
            }
        }
    };
}

mod ack;
mod container;
mod creation;
mod creation_error;
mod creation_id;
mod deletion;
mod resource;
mod revision;
mod scheduler;

use std::borrow::Cow;

use serde::Deserialize;

pub use crate::message::MessageError;
pub use ack::ContainerCreationAckMessage;
pub use container::ContainerMessage;
pub use creation::ContainerCreationMessage;
pub use creation_error::ContainerCreationError;
pub use creation_id::CreationId;
pub use deletion::ContainerDeletionMessage;
pub use resource::{InvokerResourceMessage, InvokerStatus};
pub use revision::{revision_at_most, revision_generation};
pub use scheduler::{SchedulerEndpoints, SchedulerInstanceId, SchedulerStates};

use crate::message::MAX_MESSAGE_BYTES;

/// The text of a message, checked: at most [`MAX_MESSAGE_BYTES`], UTF-8, and a top-level numeric
/// `creationId` turned into a string (see [`creation_id`]) so that no digit is lost.
fn bounded_text(bytes: &[u8]) -> Result<Cow<'_, str>, MessageError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge(bytes.len()));
    }
    let text = std::str::from_utf8(bytes)?;
    Ok(creation_id::quote_numeric_creation_id(text))
}

/// Reads a message of type `T` from Kafka or etcd bytes, bounded like the classic messages.
fn parse_bounded<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, MessageError> {
    let text = bounded_text(bytes)?;
    Ok(serde_json::from_str(&text)?)
}

/// The compact JSON of a value this module built: its fields are strings, numbers and JSON values
/// with string keys, which always serialize.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("an FPC message serializes")
}

/// Checks shared by the values' tests.
#[cfg(test)]
mod test_support {
    use serde_json::Value;

    use super::MessageError;

    /// Asserts that `parse` refuses `golden` with any one of `keys` removed.
    pub(super) fn assert_keys_required<T>(
        parse: impl Fn(&[u8]) -> Result<T, MessageError>,
        golden: &Value,
        keys: &[&str],
    ) {
        for key in keys {
            let mut value = golden.clone();
            value.as_object_mut().expect("an object").remove(*key);
            assert!(
                parse(value.to_string().as_bytes()).is_err(),
                "accepted without {key}"
            );
        }
    }

    /// Asserts that `parse` refuses `golden` with `key` set to `bad`, for each pair of `cases`.
    pub(super) fn assert_bad_values_refused<T>(
        parse: impl Fn(&[u8]) -> Result<T, MessageError>,
        golden: &Value,
        cases: &[(&str, Value)],
    ) {
        for (key, bad) in cases {
            let mut value = golden.clone();
            value[*key] = bad.clone();
            assert!(
                parse(value.to_string().as_bytes()).is_err(),
                "accepted {key} = {bad}"
            );
        }
    }
}
