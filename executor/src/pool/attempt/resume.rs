//! Step 2 of an attempt: a paused container is resumed before it runs. One that cannot be resumed
//! is unusable: the caller releases it (destroying it) and places the job again.

use std::sync::Arc;

use factory::Container;
use tracing::warn;

use crate::pool::Inner;
use crate::pool::state::Phase;

impl Inner {
    /// Resumes the container of slot `id`; `false` when it could not be resumed.
    pub(super) async fn resume(&self, container: &Arc<dyn Container>, id: u64) -> bool {
        match container.resume().await {
            Ok(()) => {
                let mut state = self.lock();
                if let Some(slot) = state.slots.get_mut(&id)
                    && slot.phase == Phase::Resuming
                {
                    slot.phase = Phase::Ready;
                }
                true
            }
            Err(error) => {
                warn!(%error, container = container.id(), "resume failed: destroying it and scheduling the job again");
                false
            }
        }
    }
}
