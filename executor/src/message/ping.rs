//! The health ping on `health` (`PingMessage` in `Message.scala`): this invoker is alive, and whether
//! it takes work.

use serde::{Deserialize, Serialize};

use super::{InvokerInstanceId, MessageError, parse_bounded};

/// A health ping on `health` (`PingMessage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PingMessage {
    /// This invoker.
    pub name: InvokerInstanceId,
    /// `false` only in the single ping `POST /disable` sends; missing reads as `true`.
    #[serde(default = "enabled")]
    pub is_enabled: bool,
}

fn enabled() -> bool {
    true
}

impl PingMessage {
    /// A ping saying whether this invoker takes work.
    pub fn new(name: InvokerInstanceId, is_enabled: bool) -> Self {
        Self { name, is_enabled }
    }

    /// Reads a ping from Kafka bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, MessageError> {
        parse_bounded(bytes)
    }

    /// The compact JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a ping serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytesize::ByteSize;
    use serde_json::json;

    #[test]
    fn test_ping_missing_is_enabled_reads_true() {
        let instance = InvokerInstanceId::new(3, ByteSize::mb(1024), None, None);
        let ping: PingMessage = serde_json::from_value(json!({"name": instance})).unwrap();
        assert!(ping.is_enabled);
    }
}
