//! [`Fatal`]: how a part of the invoker that runs on its own (the feed, the producer, the pinger)
//! says the node can no longer work. The invoker then stops and exits non-zero, so that its
//! supervisor (systemd, Docker's restart policy) starts a fresh one: a node that looks alive but
//! cannot take or answer work is worse than a restart.

use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;
use tracing::error;

/// A fatal condition, raised once by whichever part meets it first. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct Fatal {
    raised: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
}

impl Fatal {
    /// A fatal condition not raised yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises it with `reason` (the first reason is kept).
    pub fn raise(&self, reason: impl Into<String>) {
        let reason = reason.into();
        let mut slot = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            error!(%reason, "fatal: the invoker stops");
            *slot = Some(reason);
        }
        self.raised.cancel();
    }

    /// Waits until it is raised; returns the reason.
    pub async fn raised(&self) -> String {
        self.raised.cancelled().await;
        self.reason().unwrap_or_default()
    }

    /// The reason, once raised.
    pub fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
