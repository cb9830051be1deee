//! The activation the factory benches (`benches/docker.rs`, `benches/wasm.rs`) give every init and
//! run: one fixed `ActivationContext` of `/guest/bench`, with a deadline the bench chooses.

use std::time::{Duration, SystemTime};

use factory::ActivationContext;

/// The context of the bench's activation, its deadline `deadline` from now.
pub fn context(deadline: Duration) -> ActivationContext {
    ActivationContext {
        activation_id: "0123456789abcdef0123456789abcdef".into(),
        namespace: "guest".into(),
        action_name: "/guest/bench".into(),
        action_version: Some("0.0.1".into()),
        transaction_id: "bench".into(),
        api_key: None,
        deadline: SystemTime::now() + deadline,
    }
}
