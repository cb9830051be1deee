//! The activation context the invoker passes as `__OW_` environment variables.

use std::env;

/// The activation context, read from the `__OW_` environment variables.
///
/// Every field is `None` when its variable is absent (e.g. a native binary run by hand) or not
/// valid UTF-8. The action's init parameters (`initArgs`) are plain environment variables of their
/// own: read them with [`std::env::var`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activation {
    /// `__OW_ACTIVATION_ID`.
    pub activation_id: Option<String>,
    /// `__OW_NAMESPACE`.
    pub namespace: Option<String>,
    /// `__OW_ACTION_NAME`, fully qualified (`/namespace/package/action`).
    pub action_name: Option<String>,
    /// `__OW_ACTION_VERSION`.
    pub action_version: Option<String>,
    /// `__OW_DEADLINE`: when the activation times out, in milliseconds since the Unix epoch.
    pub deadline_ms: Option<u64>,
    /// `__OW_TRANSACTION_ID`.
    pub transaction_id: Option<String>,
    /// `__OW_API_KEY`, only present where the action's `provide-api-key` annotation allows it.
    pub api_key: Option<String>,
    /// `__OW_API_HOST`, only present when the invoker is configured with one.
    pub api_host: Option<String>,
}

impl Activation {
    /// Reads the activation context from the environment.
    pub fn from_env() -> Self {
        let var = |name: &str| env::var(name).ok();
        Self {
            activation_id: var("__OW_ACTIVATION_ID"),
            namespace: var("__OW_NAMESPACE"),
            action_name: var("__OW_ACTION_NAME"),
            action_version: var("__OW_ACTION_VERSION"),
            deadline_ms: var("__OW_DEADLINE").and_then(|d| d.trim().parse().ok()),
            transaction_id: var("__OW_TRANSACTION_ID"),
            api_key: var("__OW_API_KEY"),
            api_host: var("__OW_API_HOST"),
        }
    }
}
