//! What the schedulers say about themselves: their id (`SchedulerInstanceId` in `InstanceId.scala`),
//! where to reach one (`SchedulerEndpoints`, the value of a queue's leader key) and its state
//! (`SchedulerStates`, the value of `{cluster}/scheduler/{S}`), both in `Scheduler.scala`.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::message::is_valid_instance_id;

/// A scheduler's identity, `{"asString":"0"}` (no `instanceType` is written, as upstream). Names the
/// `creationAck{asString}` topic, so it is checked like every OpenWhisk instance id:
/// `[a-zA-Z0-9._-]+`, at most 128 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchedulerInstanceId {
    /// The id text.
    pub as_string: String,
}

impl SchedulerInstanceId {
    /// A scheduler id, checked like OpenWhisk's reader.
    pub fn new(as_string: impl Into<String>) -> Result<Self, String> {
        let as_string = as_string.into();
        if is_valid_instance_id(&as_string) {
            Ok(Self { as_string })
        } else {
            Err(format!(
                "invalid scheduler instance id {:?}",
                as_string.chars().take(64).collect::<String>()
            ))
        }
    }
}

impl fmt::Display for SchedulerInstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchedulerIdWire {
    as_string: String,
}

impl Serialize for SchedulerInstanceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SchedulerIdWire {
            as_string: self.as_string.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SchedulerInstanceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = SchedulerIdWire::deserialize(deserializer)?;
        SchedulerInstanceId::new(wire.as_string).map_err(D::Error::custom)
    }
}

/// Where a scheduler listens: `{"host":"10.0.0.5","rpcPort":13001,"pekkoPort":17355}`. The invoker
/// uses only `host` and `rpcPort` (its gRPC server).
///
/// OpenWhisk up to 2.0.0 names the third field `akkaPort`; later ones `pekkoPort`. Either is read
/// (`pekkoPort` first), unknown fields are ignored, and it is written as `pekkoPort`. As upstream,
/// the two ports may not both be 0 (or missing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "EndpointsWire", into = "EndpointsWire")]
pub struct SchedulerEndpoints {
    /// The scheduler's host (an IP address in Ansible deployments).
    pub host: String,
    /// Its gRPC port (`ActivationService`).
    pub rpc_port: u16,
    /// Its actor-system port (`pekkoPort` or `akkaPort`), kept so the value round-trips.
    pub pekko_port: u16,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndpointsWire {
    host: String,
    rpc_port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pekko_port: Option<u16>,
    #[serde(default, skip_serializing)]
    akka_port: Option<u16>,
}

impl TryFrom<EndpointsWire> for SchedulerEndpoints {
    type Error = String;

    fn try_from(wire: EndpointsWire) -> Result<Self, Self::Error> {
        let pekko_port = wire.pekko_port.or(wire.akka_port).unwrap_or(0);
        if wire.rpc_port == 0 && pekko_port == 0 {
            return Err("scheduler endpoints need a non-zero rpcPort or pekkoPort".to_string());
        }
        Ok(Self {
            host: wire.host,
            rpc_port: wire.rpc_port,
            pekko_port,
        })
    }
}

impl From<SchedulerEndpoints> for EndpointsWire {
    fn from(endpoints: SchedulerEndpoints) -> Self {
        Self {
            host: endpoints.host,
            rpc_port: endpoints.rpc_port,
            pekko_port: Some(endpoints.pekko_port),
            akka_port: None,
        }
    }
}

wire_json!(
    SchedulerEndpoints,
    "Reads a leader-key value from etcd bytes.",
    "The compact JSON text (with `pekkoPort`)."
);

/// A scheduler's state, the value of `{cluster}/scheduler/{S}`:
/// `{"sid":{"asString":"0"},"queueSize":3,"endpoints":{…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulerStates {
    /// The scheduler's id text (the `asString` of `sid`).
    #[serde(serialize_with = "serialize_sid", deserialize_with = "deserialize_sid")]
    pub sid: String,
    /// How many queues this scheduler leads.
    pub queue_size: u64,
    /// Where it listens.
    pub endpoints: SchedulerEndpoints,
}

fn serialize_sid<S: Serializer>(sid: &str, serializer: S) -> Result<S::Ok, S::Error> {
    SchedulerIdWire {
        as_string: sid.to_string(),
    }
    .serialize(serializer)
}

fn deserialize_sid<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(SchedulerInstanceId::deserialize(deserializer)?.as_string)
}

wire_json!(
    SchedulerStates,
    "Reads a scheduler-state value from etcd bytes.",
    "The compact JSON text."
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const STATES: &str = include_str!("../../../tests/fixtures/fpc/scheduler_states.json");
    const ENDPOINTS_AKKA: &str = include_str!("../../../tests/fixtures/fpc/endpoints_akka.json");

    #[test]
    fn test_scheduler_states_golden_round_trip() {
        let states = SchedulerStates::parse(STATES.as_bytes()).unwrap();
        assert_eq!(
            states,
            SchedulerStates {
                sid: "0".into(),
                queue_size: 3,
                endpoints: SchedulerEndpoints {
                    host: "10.0.0.5".into(),
                    rpc_port: 13001,
                    pekko_port: 17355,
                },
            }
        );
        let golden: Value = serde_json::from_str(STATES).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&states.to_json()).unwrap(),
            golden
        );
    }

    #[test]
    fn test_endpoints_read_akka_port_and_ignore_unknown_fields() {
        let endpoints = SchedulerEndpoints::parse(ENDPOINTS_AKKA.as_bytes()).unwrap();
        assert_eq!(endpoints.host, "scheduler-0");
        assert_eq!(endpoints.rpc_port, 13002);
        assert_eq!(endpoints.pekko_port, 25520);
        assert_eq!(
            serde_json::from_str::<Value>(&endpoints.to_json()).unwrap(),
            json!({"host": "scheduler-0", "rpcPort": 13002, "pekkoPort": 25520})
        );
        let both: SchedulerEndpoints = serde_json::from_value(
            json!({"host": "h", "rpcPort": 1, "pekkoPort": 2, "akkaPort": 3}),
        )
        .unwrap();
        assert_eq!(both.pekko_port, 2);
        let rpc_only: SchedulerEndpoints =
            serde_json::from_value(json!({"host": "h", "rpcPort": 13001})).unwrap();
        assert_eq!(rpc_only.pekko_port, 0);
    }

    #[test]
    fn test_malformed_scheduler_values_are_errors() {
        for bad in [
            json!({"host": "h", "rpcPort": 0, "pekkoPort": 0}),
            json!({"host": "h"}),
            json!({"rpcPort": 13001, "pekkoPort": 1}),
            json!({"host": "h", "rpcPort": 70000, "pekkoPort": 1}),
            json!({"host": "h", "rpcPort": -1, "pekkoPort": 1}),
            json!({"host": 5, "rpcPort": 1}),
            json!("h:1"),
        ] {
            assert!(
                serde_json::from_value::<SchedulerEndpoints>(bad.clone()).is_err(),
                "{bad} accepted"
            );
        }
        let endpoints = json!({"host": "h", "rpcPort": 1, "pekkoPort": 2});
        for bad in [
            json!({"sid": "0", "queueSize": 1, "endpoints": endpoints}),
            json!({"sid": {"asString": "a/b"}, "queueSize": 1, "endpoints": endpoints}),
            json!({"sid": {"asString": ""}, "queueSize": 1, "endpoints": endpoints}),
            json!({"sid": {"asString": "0"}, "queueSize": -1, "endpoints": endpoints}),
            json!({"sid": {"asString": "0"}, "endpoints": endpoints}),
            json!({"sid": {"asString": "0"}, "queueSize": 1}),
        ] {
            assert!(
                SchedulerStates::parse(bad.to_string().as_bytes()).is_err(),
                "{bad} accepted"
            );
        }
        assert!(SchedulerStates::parse(b"{").is_err());
        assert!(SchedulerStates::parse(&[0xff]).is_err());
    }

    #[test]
    fn test_scheduler_instance_id_wire_form() {
        let id = SchedulerInstanceId::new("scheduler-1.a_b").unwrap();
        assert_eq!(
            serde_json::to_value(&id).unwrap(),
            json!({"asString": "scheduler-1.a_b"})
        );
        let read: SchedulerInstanceId =
            serde_json::from_value(json!({"asString": "0", "instanceType": "scheduler"})).unwrap();
        assert_eq!(read.to_string(), "0");
        assert!(SchedulerInstanceId::new("x".repeat(129)).is_err());
        assert!(SchedulerInstanceId::new("a b").is_err());
    }
}
