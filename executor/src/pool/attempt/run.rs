//! Step 4 of an attempt: the activation, and then the container's fate. The status decides
//! ([`factory::Status::keeps_container`]) unless the factory reported a fault of the container
//! itself ([`ContainerFault`]): refused, the job goes elsewhere; logs lost, the activation stands
//! and the container is destroyed. The pool reads these typed signals, never a result text or a log
//! line.

use factory::ContainerFault;
use tracing::debug;

use super::create::Created;
use super::init::Initialised;
use super::{ActiveGuard, Attempt};
use crate::pool::Inner;
use crate::pool::job::{Completed, Job, Start};
use crate::pool::state::Placement;

impl Inner {
    /// Runs the activation on the initialised container and releases the job's capacity, keeping
    /// or destroying the container.
    pub(super) async fn run_activation(
        &self,
        job: &Job,
        placement: &Placement,
        created: &Created,
        initialised: &Initialised,
        guard: ActiveGuard,
    ) -> Attempt {
        let container = &created.container;
        let mut outcome = container.run(job.run.clone()).await;
        if initialised.by_this_job {
            outcome.init_time.get_or_insert(initialised.done.duration());
        } else {
            // Only the job that initialised the container reports an init time.
            outcome.init_time = None;
        }
        let start = if initialised.by_this_job || created.by_this_job {
            placement.start
        } else {
            Start::Warm
        };
        let keep = match outcome.fault {
            Some(ContainerFault::Refused) => {
                guard.finish(false);
                return Attempt::Reschedule(Completed { outcome, start });
            }
            Some(ContainerFault::LogsLost) => {
                self.lock().counters.log_failure_removals += 1;
                debug!(
                    status = outcome.status.code(),
                    container = container.id(),
                    "destroying the container after its logs could not be collected"
                );
                false
            }
            None => {
                let keep = outcome.status.keeps_container();
                if !keep {
                    debug!(
                        status = outcome.status.code(),
                        container = container.id(),
                        "destroying the container after a failed run"
                    );
                }
                keep
            }
        };
        guard.finish(keep);
        Attempt::Done(Completed { outcome, start })
    }
}
