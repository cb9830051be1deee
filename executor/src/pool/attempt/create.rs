//! Step 1 of an attempt: the container. A cold placement's container is created by the first job
//! that gets to it (normally the job it was made for); a warm or prewarmed one exists already. Jobs
//! that waited on a creation that failed end as [`Start::Aborted`].

use std::sync::Arc;

use factory::outcome::messages;
use factory::{Container, ContainerSpec, Outcome, Purpose, Status};
use tracing::warn;

use crate::pool::Inner;
use crate::pool::config::Accounting;
use crate::pool::job::{Completed, Job, Start};
use crate::pool::state::{Needs, Phase, Placement};

/// The container an attempt runs on.
pub(super) struct Created {
    /// The container.
    pub container: Arc<dyn Container>,
    /// Whether this job created it (then it reports the placement's start, not [`Start::Warm`]).
    pub by_this_job: bool,
}

impl Inner {
    /// The placement's container, created now if nobody has yet. A failure is the job's end:
    /// [`Start::NotStarted`] with the factory's outcome for the job that tried, [`Start::Aborted`]
    /// for the jobs that waited on it.
    pub(super) async fn create(
        &self,
        job: &Job,
        needs: &Needs,
        placement: &Placement,
    ) -> Result<Created, Completed> {
        let entry = &self.factories[needs.factory];
        let mut did_create = false;
        let created = placement
            .cell
            .container
            .get_or_init(|| async {
                did_create = true;
                let spec = ContainerSpec {
                    kind: job.action.kind.clone(),
                    image: job.action.image.clone(),
                    memory_mb: job.action.limits.memory,
                    purpose: Purpose::Cold {
                        namespace: job.namespace.clone(),
                        action: job.action.name.clone(),
                    },
                };
                entry.factory.create(spec).await.map_err(|error| {
                    warn!(%error, factory = entry.factory.name(), "container creation failed");
                    Box::new(error.to_outcome())
                })
            })
            .await;
        let container = match created {
            Ok(container) => container.clone(),
            Err(outcome) if did_create => {
                return Err(Completed {
                    outcome: (**outcome).clone(),
                    start: Start::NotStarted,
                });
            }
            Err(_) => {
                return Err(Completed {
                    outcome: Outcome::instant_error(Status::WhiskError, messages::ABNORMAL_RUN),
                    start: Start::Aborted,
                });
            }
        };
        if did_create {
            self.record_created(placement.cell.id, needs, container.as_ref());
        }
        Ok(Created {
            container,
            by_this_job: did_create,
        })
    }

    /// Books what the new container can do: pause, and how many activations it takes at once (an
    /// in-process container as many as it says, a real one no more than the action allows).
    fn record_created(&self, id: u64, needs: &Needs, container: &dyn Container) {
        let mut state = self.lock();
        if let Some(slot) = state.slots.get_mut(&id) {
            slot.can_pause = container.can_pause();
            slot.max_concurrency = match needs.accounting {
                Accounting::PerActivation => container.max_concurrency().max(1),
                Accounting::PerContainer => {
                    needs.concurrency.min(container.max_concurrency()).max(1)
                }
            };
            if slot.phase == Phase::Starting {
                slot.phase = Phase::Ready;
            }
        }
    }
}
