//! Who invokes (`Identity.scala`): the subject, the namespace, the API key passed to actions and the
//! namespace's limits, the `user` of an [`ActivationMessage`](super::ActivationMessage).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::bytesize::ByteSize;

/// The invoking namespace (`{"name":"guest","uuid":"..."}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// The namespace name; the activation record's `namespace`.
    pub name: String,
    /// The namespace's uuid; `userId` in user events.
    pub uuid: String,
}

/// Per-namespace limits (`UserLimits`); every field optional. Unknown keys are kept and written back.
/// The invoker uses `storeActivations`, the min/max action limits and the payload sizes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserLimits {
    /// Invocations per minute allowed (controller-side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocations_per_minute: Option<i64>,
    /// Concurrent invocations allowed (controller-side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_invocations: Option<i64>,
    /// Trigger fires per minute allowed (controller-side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fires_per_minute: Option<i64>,
    /// Kinds the namespace may create (controller-side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_kinds: Option<Vec<String>>,
    /// `false`: the invoker must not store this namespace's activation records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_activations: Option<bool>,
    /// Smallest action memory, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action_memory: Option<u64>,
    /// Largest action memory, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_memory: Option<u64>,
    /// Smallest action log limit, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action_logs: Option<u64>,
    /// Largest action log limit, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_logs: Option<u64>,
    /// Smallest action timeout, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action_timeout: Option<u64>,
    /// Largest action timeout, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_timeout: Option<u64>,
    /// Smallest intra-container concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_action_concurrency: Option<u64>,
    /// Largest intra-container concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_concurrency: Option<u64>,
    /// Largest parameters (controller-side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parameter_size: Option<ByteSize>,
    /// Largest result before truncation (capped by the system's payload limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload_size: Option<ByteSize>,
    /// Bytes kept of an oversize result in its error message (capped by the system's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation_size: Option<ByteSize>,
    /// FPC only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmed_container_keeping_count: Option<i64>,
    /// FPC only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmed_container_keeping_timeout: Option<String>,
    /// FPC only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_action_instances: Option<i64>,
    /// Keys this version does not know, kept so that re-serialization loses nothing.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The invoking identity (`user`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The authenticated subject.
    pub subject: String,
    /// The invoking namespace.
    pub namespace: Namespace,
    /// The key's environment map, `{"api_key":"<uuid>:<secret>"}` for basic-auth keys.
    pub authkey: BTreeMap<String, String>,
    /// `READ`, `PUT`, `DELETE`, `ACTIVATE`, `REJECT`.
    pub rights: Vec<String>,
    /// Namespace limits, `{}` when none are overridden.
    #[serde(default)]
    pub limits: UserLimits,
}

impl Identity {
    /// The caller's API key (`uuid:key`), passed to actions unless `provide-api-key` is falsy.
    pub fn api_key(&self) -> Option<&str> {
        self.authkey.get("api_key").map(String::as_str)
    }
}
