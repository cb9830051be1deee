//! The two orders that share `invoker{N}` (`ContainerMessage` in `Message.scala`), told apart as
//! OpenWhisk's reader does: an object with a `creationId` key is a creation, anything else a
//! deletion.

use serde_json::Value;

use super::creation_id::CREATION_ID_KEY;
use super::{ContainerCreationMessage, ContainerDeletionMessage, MessageError, bounded_text};

/// An order read from `invoker{N}` in the scheduler's protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerMessage {
    /// Create a container (or drop the warm-up order, see
    /// [`ContainerCreationMessage::is_warm_up`]) and ack on `creationAck{S}`.
    Creation(ContainerCreationMessage),
    /// Retire containers of an old revision; no ack.
    Deletion(ContainerDeletionMessage),
}

impl ContainerMessage {
    /// Reads an order from Kafka bytes: at most [`crate::message::MAX_MESSAGE_BYTES`], UTF-8 JSON;
    /// a creation if it is an object with a `creationId` key, otherwise a deletion.
    pub fn parse(bytes: &[u8]) -> Result<Self, MessageError> {
        let text = bounded_text(bytes)?;
        let value: Value = serde_json::from_str(&text)?;
        let is_creation = value
            .as_object()
            .is_some_and(|object| object.contains_key(CREATION_ID_KEY));
        Ok(if is_creation {
            ContainerMessage::Creation(serde_json::from_value(value)?)
        } else {
            ContainerMessage::Deletion(serde_json::from_value(value)?)
        })
    }

    /// The compact JSON text of the order.
    pub fn to_json(&self) -> String {
        match self {
            ContainerMessage::Creation(creation) => creation.to_json(),
            ContainerMessage::Deletion(deletion) => deletion.to_json(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MAX_MESSAGE_BYTES;
    use serde_json::json;

    const CREATION: &str = include_str!("../../../tests/fixtures/fpc/creation.json");
    const DELETION: &str = include_str!("../../../tests/fixtures/fpc/deletion.json");

    #[test]
    fn test_creation_and_deletion_are_told_apart_by_creation_id() {
        let creation = ContainerMessage::parse(CREATION.as_bytes()).unwrap();
        assert!(
            matches!(&creation, ContainerMessage::Creation(c) if c.creation_id.as_str() == "9f1c7a2b3d4e4f5a8b6c7d8e9f0a1b2c")
        );
        let deletion = ContainerMessage::parse(DELETION.as_bytes()).unwrap();
        assert!(matches!(&deletion, ContainerMessage::Deletion(_)));
        for message in [creation, deletion] {
            assert_eq!(
                ContainerMessage::parse(message.to_json().as_bytes()).unwrap(),
                message
            );
        }
    }

    #[test]
    fn test_a_creation_id_key_makes_a_creation_even_if_it_then_fails() {
        // A deletion with a stray creationId is read as a (malformed) creation, as upstream does.
        let mut value: Value = serde_json::from_str(DELETION).unwrap();
        value["creationId"] = json!("9f1c7a2b3d4e4f5a8b6c7d8e9f0a1b2c");
        assert!(ContainerMessage::parse(value.to_string().as_bytes()).is_err());
        // A creation with a bad creationId is not silently read as a deletion.
        let mut value: Value = serde_json::from_str(CREATION).unwrap();
        value["creationId"] = json!("nope");
        assert!(ContainerMessage::parse(value.to_string().as_bytes()).is_err());
        // A creationId only inside the metadata does not count.
        let mut value: Value = serde_json::from_str(DELETION).unwrap();
        value["whiskActionMetaData"]["creationId"] = json!("9f1c7a2b3d4e4f5a8b6c7d8e9f0a1b2c");
        assert!(matches!(
            ContainerMessage::parse(value.to_string().as_bytes()),
            Ok(ContainerMessage::Deletion(_))
        ));
    }

    #[test]
    fn test_malformed_orders_are_errors_not_panics() {
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"{".to_vec(),
            b"null".to_vec(),
            b"[]".to_vec(),
            b"\"creationId\"".to_vec(),
            b"{}".to_vec(),
            br#"{"creationId":12}"#.to_vec(),
            br#"{"creationId":1e400}"#.to_vec(),
            br#"{"creationId":-0}"#.to_vec(),
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            format!("{{\"a\":{}1{}}}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            vec![0xff, 0xfe],
            CREATION.as_bytes()[..CREATION.len() / 2].to_vec(),
        ];
        for bytes in cases {
            assert!(
                ContainerMessage::parse(&bytes).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
            );
        }
        assert!(matches!(
            ContainerMessage::parse(&vec![b' '; MAX_MESSAGE_BYTES + 1]),
            Err(MessageError::TooLarge(_))
        ));
    }

    #[test]
    fn test_every_truncation_of_a_creation_is_an_error() {
        for end in 0..CREATION.len() - 1 {
            assert!(
                ContainerMessage::parse(&CREATION.as_bytes()[..end]).is_err(),
                "prefix of {end} bytes accepted"
            );
        }
    }
}
