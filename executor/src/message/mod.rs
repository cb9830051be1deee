//! OpenWhisk's Kafka wire types (`C/core/connector/Message.scala` and friends), read and written
//! exactly as the Scala controller and invoker do.
//!
//! [`ActivationMessage`] is THE activation type of the workspace: the Kafka source parses it from
//! `invoker{N}` and the standalone REST server builds one per request, so the pool and the record
//! builder see one shape whatever the source. Acks ([`AcknowledgementMessage`]), health pings
//! ([`PingMessage`]) and user events ([`EventMessage`]) are the invoker's replies.
//!
//! Parsing never panics: malformed input is a [`MessageError`]. Key order is not significant anywhere
//! (spray-json objects are maps); `None` fields are omitted, every other field is always written.
//!
//! One file per message, named for it: `activation.rs` (`invoker{N}`), `ack.rs` (`completed{C}`),
//! `ping.rs` (`health`), `event.rs` (`events`), and the parts they share: `transaction.rs` (transaction
//! ids), `instance.rs` (controller and invoker ids), `names.rs` (activation ids, action names) and
//! `identity.rs` (the invoking user). The files are private and everything is re-exported here, so
//! callers write `message::AcknowledgementMessage`. `docs/protocol.md` describes the wire contract.

mod ack;
mod activation;
mod event;
mod identity;
mod instance;
mod names;
mod ping;
mod transaction;

use serde::Deserialize;

pub use ack::{AckResponse, AcknowledgementMessage};
pub use activation::{Activation, ActivationMessage};
pub use event::{ActivationEvent, EventBody, EventMessage, MetricEvent};
pub use identity::{Identity, Namespace, UserLimits};
pub(crate) use instance::is_valid_instance_id;
pub use instance::{ControllerInstanceId, InvokerInstanceId};
pub use names::{ActivationId, FullyQualifiedEntityName};
pub use ping::PingMessage;
pub use transaction::{
    SID_INVOKER, SID_INVOKER_HEALTH, SID_INVOKER_NANNY, SID_INVOKER_WARMUP, SID_UNKNOWN,
    TransactionId,
};

/// OpenWhisk's `whisk.activation.serdes-overhead`: what a message may carry beyond its payload.
pub const SERDES_OVERHEAD_BYTES: usize = 6068;
/// Largest message the invoker accepts or produces: `payload.max` (1 MiB) + `serdes-overhead` (6068),
/// OpenWhisk's `MAX_ACTIVATION_LIMIT`. Bounds what a peer can make us parse.
pub const MAX_MESSAGE_BYTES: usize =
    factory::limits::DEFAULT_MAX_RESULT_BYTES + SERDES_OVERHEAD_BYTES;

/// A message that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The bytes are larger than [`MAX_MESSAGE_BYTES`].
    #[error("message of {0} bytes exceeds the limit of {MAX_MESSAGE_BYTES} bytes")]
    TooLarge(usize),
    /// The bytes are not UTF-8.
    #[error("message is not UTF-8: {0}")]
    Utf8(#[from] std::str::Utf8Error),
    /// The JSON is malformed or does not have the message's shape.
    #[error("malformed message: {0}")]
    Json(#[from] serde_json::Error),
}

fn parse_bounded<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, MessageError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge(bytes.len()));
    }
    let text = std::str::from_utf8(bytes)?;
    Ok(serde_json::from_str(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_malformed_messages_are_errors() {
        assert!(matches!(
            ActivationMessage::parse(b"{"),
            Err(MessageError::Json(_))
        ));
        assert!(matches!(
            ActivationMessage::parse(&[0xff, 0xfe]),
            Err(MessageError::Utf8(_))
        ));
        assert!(matches!(
            ActivationMessage::parse(&vec![b' '; MAX_MESSAGE_BYTES + 1]),
            Err(MessageError::TooLarge(_))
        ));
        assert!(matches!(
            ActivationMessage::parse(br#"{"transid":["a",1]}"#),
            Err(MessageError::Json(_))
        ));
    }
}
