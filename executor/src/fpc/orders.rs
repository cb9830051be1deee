//! Creation and deletion orders from `invoker{N}`: OpenWhisk's `ContainerMessageConsumer`.
//!
//! A creation order is checked before it reaches the pool: the action must exist at the order's
//! revision, be executable, and hold limits within the node's ranges. Each failure is answered on
//! `creationAck{S}` with the error the scheduler acts on (`DBFetchError`, `InvalidActionLimitError`:
//! not rescheduled). The scheduler's warm-up order (`whisk.system/warmUp`) is dropped without an
//! ack, as OpenWhisk does. A message that does not parse is logged and dropped without an ack (there
//! is nothing to answer it with).
//!
//! Differences from OpenWhisk, by choice (docs/fpc.md, "Choices"):
//! - an unknown `exec.kind` is answered `DBFetchError` instead of being dropped silently (the
//!   scheduler would wait 20 s for an ack that never comes);
//! - a non-executable action (a sequence) is answered `DBFetchError`: OpenWhisk's own
//!   `NonExecutableActionError` cannot be read by its scheduler, which then waits 20 s;
//! - the namespace's own limits are not read from the subjects database at creation: the limits
//!   are checked against the node's ranges here and against the invoking user's limits (carried by
//!   every activation) when each activation runs.

use std::sync::Arc;

use tracing::{info, warn};

use super::message::{ContainerCreationError, ContainerCreationMessage, ContainerMessage};
use super::pool::{Creation, FpcPool, fqn_text};
use crate::action::ExecutableAction;
use crate::limits::LimitRanges;
use crate::loader::{ActionLoader, classify};
use crate::log_throttle::{LogThrottle, Verdict};
use crate::message::UserLimits;
use crate::record::{FallbackReason, MSG_FETCH_FAILED, MSG_INCOMPATIBLE, MSG_NOT_FOUND};

/// Malformed orders logged per interval (the rest are counted in the log line's `suppressed`).
static MALFORMED_LOG: LogThrottle = LogThrottle::new(5, std::time::Duration::from_secs(10));
/// Bytes of a malformed order quoted in its log line.
const MALFORMED_EXCERPT_BYTES: usize = 200;

/// Checks orders and hands them to the pool.
pub struct Orders {
    /// The pool.
    pub pool: FpcPool,
    /// Reads action documents (shared with the activation path, so its cache serves both).
    pub loader: Arc<ActionLoader>,
    /// The node's limit ranges.
    pub ranges: LimitRanges,
}

impl std::fmt::Debug for Orders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orders")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl Orders {
    /// Takes one record of `invoker{N}`. Returns whether it parsed.
    pub async fn handle(&self, payload: &[u8]) -> bool {
        let message = match ContainerMessage::parse(payload) {
            Ok(message) => message,
            Err(error) => {
                if let Verdict::Log { suppressed } = MALFORMED_LOG.admit() {
                    let excerpt = &payload[..payload.len().min(MALFORMED_EXCERPT_BYTES)];
                    warn!(%error, message = %String::from_utf8_lossy(excerpt), suppressed,
                        "skipping an order that does not parse (no ack)");
                }
                return false;
            }
        };
        match message {
            ContainerMessage::Creation(order) => self.create(order).await,
            ContainerMessage::Deletion(order) => {
                info!(action = %order.action.doc_id(), revision = ?order.revision, "deletion order");
                self.pool.delete(&order);
            }
        }
        true
    }

    async fn create(&self, order: ContainerCreationMessage) {
        if order.is_warm_up() {
            info!("the scheduler's warm-up order: dropped");
            return;
        }
        info!(creation_id = %order.creation_id, action = %order.action.doc_id(),
            retry_count = order.retry_count, "creation order");
        match self.check(&order).await {
            Ok(action) => self.pool.create(Creation { order, action }).await,
            Err((error, reason)) => {
                self.pool.refuse(&order, error, reason).await;
            }
        }
    }

    async fn check(
        &self,
        order: &ContainerCreationMessage,
    ) -> Result<Arc<ExecutableAction>, (ContainerCreationError, String)> {
        let id = order.action.doc_id();
        let action = self
            .loader
            .load_document(&id, order.revision.as_deref())
            .await
            .map_err(|error| {
                warn!(%error, action = %id, "creation order: the action cannot be read");
                let reason = match classify(&error) {
                    FallbackReason::NotFound => MSG_NOT_FOUND,
                    FallbackReason::Incompatible => MSG_INCOMPATIBLE,
                    _ => MSG_FETCH_FAILED,
                };
                (ContainerCreationError::DBFetchError, reason.to_string())
            })?;
        if !action.executable {
            return Err((
                ContainerCreationError::DBFetchError,
                format!(
                    "creationId: {}, non-executable action reached the container pool {}",
                    order.creation_id,
                    fqn_text(order)
                ),
            ));
        }
        self.ranges
            .check(&action.limits, &UserLimits::default())
            .map_err(|reason| (ContainerCreationError::InvalidActionLimitError, reason))?;
        Ok(action)
    }
}
