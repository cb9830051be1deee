//! The invoker's health value in etcd, under `{cluster}/invokers/{N}[/…]` (`InvokerResourceMessage`
//! in `Message.scala`): whether it takes work and how much memory it has for containers.

use serde::{Deserialize, Serialize};

/// The invoker's state as the scheduler and the controller read it (the controller's
/// `InvokerState` names). Only `Up` invokers get containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvokerStatus {
    /// Healthy: takes creation orders.
    Up,
    /// Its health test actions fail.
    Unhealthy,
    /// Disabled or going away.
    Down,
}

/// The value of the invoker's health key:
/// `{"status":"up","freeMemory":1792,"busyMemory":256,"inProgressMemory":0,"tags":[],"dedicatedNamespaces":[]}`.
/// Memory is in whole MB; `tags` and `dedicatedNamespaces` are always written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokerResourceMessage {
    /// Whether it takes work.
    pub status: InvokerStatus,
    /// User memory not used by busy or in-progress containers (paused and prewarm containers are not
    /// subtracted); what the scheduler compares with an action's memory.
    pub free_memory: u64,
    /// Memory of containers that are initialised or running.
    pub busy_memory: u64,
    /// Memory of containers being created or resumed.
    pub in_progress_memory: u64,
    /// Resource tags (`whisk.invoker.resource.tags`), for actions annotated `invoker-resources`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Namespaces this invoker is reserved for (`whisk.invoker.dedicated.namespaces`).
    #[serde(default)]
    pub dedicated_namespaces: Vec<String>,
}

wire_json!(
    InvokerResourceMessage,
    "Reads a health value from etcd bytes.",
    "The compact JSON text, as the etcd value."
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpc::message::test_support::{assert_bad_values_refused, assert_keys_required};
    use serde_json::{Value, json};

    const RESOURCE: &str = include_str!("../../../tests/fixtures/fpc/resource.json");

    #[test]
    fn test_golden_resource_message_round_trips() {
        let message = InvokerResourceMessage::parse(RESOURCE.as_bytes()).unwrap();
        assert_eq!(
            message,
            InvokerResourceMessage {
                status: InvokerStatus::Up,
                free_memory: 1792,
                busy_memory: 256,
                in_progress_memory: 0,
                tags: Vec::new(),
                dedicated_namespaces: Vec::new(),
            }
        );
        let golden: Value = serde_json::from_str(RESOURCE).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&message.to_json()).unwrap(),
            golden
        );
    }

    #[test]
    fn test_statuses_tags_and_namespaces_are_written() {
        for (status, name) in [
            (InvokerStatus::Up, "up"),
            (InvokerStatus::Unhealthy, "unhealthy"),
            (InvokerStatus::Down, "down"),
        ] {
            let message = InvokerResourceMessage {
                status,
                free_memory: 0,
                busy_memory: 2048,
                in_progress_memory: 0,
                tags: vec!["gpu".into()],
                dedicated_namespaces: vec!["team-a".into()],
            };
            let written: Value = serde_json::from_str(&message.to_json()).unwrap();
            assert_eq!(
                written,
                json!({"status": name, "freeMemory": 0, "busyMemory": 2048, "inProgressMemory": 0,
                    "tags": ["gpu"], "dedicatedNamespaces": ["team-a"]})
            );
            assert_eq!(
                InvokerResourceMessage::parse(message.to_json().as_bytes()).unwrap(),
                message
            );
        }
    }

    #[test]
    fn test_malformed_resource_messages_are_errors() {
        let golden: Value = serde_json::from_str(RESOURCE).unwrap();
        assert_keys_required(
            InvokerResourceMessage::parse,
            &golden,
            &["status", "freeMemory", "busyMemory", "inProgressMemory"],
        );
        assert_bad_values_refused(
            InvokerResourceMessage::parse,
            &golden,
            &[
                ("status", json!("Up")),
                ("status", json!("unresponsive")),
                ("freeMemory", json!(-1)),
                ("busyMemory", json!("256")),
                ("tags", json!("gpu")),
            ],
        );
        assert!(InvokerResourceMessage::parse(b"").is_err());
    }
}
