//! The controller's health test action (`whisk.system/invokerHealthTestAction<C>`), answered
//! in-process.
//!
//! Its code is `function main(params) { return params; }`, so its result is its params
//! ([`identity`]). Answering it without a container means a node without Docker (or without a
//! Node.js runtime) is still found healthy by the controller. It is recognised by namespace and name
//! alone ([`is_health_action`]) and its document is read without resolving its kind: `nodejs:20`
//! needs the runtimes manifest, which such a node may not have. The record keeps the document's
//! kind.

use std::sync::Arc;
use std::time::SystemTime;

use factory::{Outcome, Status};
use tracing::warn;

use super::Processor;
use crate::action::ExecutableAction;
use crate::loader::classify;
use crate::message::ActivationMessage;
use crate::pool::{Completed, Start};
use crate::record::FallbackReason;
use crate::store::StoreError;

/// Namespace of the controller's health test actions.
pub const HEALTH_ACTION_NAMESPACE: &str = "whisk.system";
/// Name prefix of the controller's health test actions (`invokerHealthTestAction<C>`).
pub const HEALTH_ACTION_PREFIX: &str = "invokerHealthTestAction";

/// Whether a message is the controller's health test action.
pub fn is_health_action(message: &ActivationMessage) -> bool {
    message.action.path == HEALTH_ACTION_NAMESPACE
        && message.action.name.starts_with(HEALTH_ACTION_PREFIX)
}

impl Processor {
    /// The health test action's document as an action whose kind is the one stored (no kind
    /// resolution, no code: it runs in-process). A missing or unreadable document is a fallback as
    /// for any action. Its limits are not checked: the controller writes the defaults.
    pub(super) async fn load_health_action(
        &self,
        message: &ActivationMessage,
    ) -> Result<Arc<ExecutableAction>, FallbackReason> {
        let id = message.action_doc_id();
        let store = self.loader.store();
        let fetched = match store.get_action(&id, message.revision.as_deref()).await {
            Err(StoreError::RevisionMismatch { .. }) => store.get_action(&id, None).await,
            other => other,
        };
        let as_stored = |kind: &str| Some(kind.to_string());
        let action = fetched
            .and_then(|document| Ok(document.into_executable(None, &as_stored)?))
            .map_err(|error| {
                warn!(%error, action = %id, "health test action fetch failed");
                classify(&error)
            })?;
        if !action.executable {
            warn!(action = %id, "the health test action is not executable");
            return Err(FallbackReason::FetchFailed);
        }
        Ok(Arc::new(action))
    }
}

/// The health test action's run: its code is the identity function, so its result is its params.
pub fn identity(message: &ActivationMessage) -> Completed {
    let now = SystemTime::now();
    let result = match message.params() {
        serde_json::Value::Object(map) => serde_json::Value::Object(map),
        // `main` of a Node.js action must return an object; anything else is what Node would
        // refuse.
        other => serde_json::json!({ "params": other }),
    };
    let size = result.to_string().len();
    Completed {
        outcome: Outcome {
            size: Some(size),
            ..Outcome::new(Status::Success, result, now, now)
        },
        start: Start::Warm,
    }
}
