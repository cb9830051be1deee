//! One job's way through the pool: placed (or buffered until capacity frees), then attempted on its
//! placement in four steps, one module each, and placed again when the container went away under it
//! or refused it.
//!
//! - [`create`]: the container, created by this job (cold) or by whoever got there first.
//! - [`resume`]: a paused container is resumed; one that cannot be is dropped and the job placed again.
//! - [`init`]: once per container, by the first job that gets there; the others wait on it.
//! - [`run`]: the activation, then the container's fate: kept, destroyed, or (refused) the job placed
//!   again, at most [`MAX_RESCHEDULES`] times.
//!
//! The job holds its capacity in an [`ActiveGuard`] from placement to the end, so that a cancelled
//! job never leaks it.

mod create;
mod init;
mod resume;
mod run;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use factory::outcome::messages;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::Inner;
use super::job::{Completed, Job, not_started};
use super::state::{Needs, Place, Placement, State, Waiting, WarmKey};

/// Most times one job is placed again after its container refused it
/// ([`factory::ContainerFault::Refused`]). Threat: a runtime that answers every `/init` or `/run`
/// with 503 would otherwise bounce a job from container to container forever (OpenWhisk has no
/// bound); after this many the whisk error is the job's outcome.
pub const MAX_RESCHEDULES: u32 = 3;

/// What one attempt to run a job on a placement ended in.
enum Attempt {
    Done(Completed),
    /// The container went away under the job (resume failed): schedule it again.
    Again,
    /// The container refused the job ([`factory::ContainerFault::Refused`]; it is being destroyed):
    /// schedule it again unless [`MAX_RESCHEDULES`] are spent, then this is the job's end.
    Reschedule(Completed),
}

/// Holds one placed activation's capacity; releases it when finished or dropped (a cancelled job
/// never leaks capacity; its container is then destroyed, since its state is unknown).
struct ActiveGuard {
    inner: Arc<Inner>,
    id: u64,
    activation_mb: u64,
    done: bool,
}

impl ActiveGuard {
    fn new(inner: &Arc<Inner>, placement: &Placement) -> Self {
        Self {
            inner: inner.clone(),
            id: placement.cell.id,
            activation_mb: placement.activation_mb,
            done: false,
        }
    }

    /// Releases the capacity; `keep` leaves the container for the next job, else it is destroyed.
    fn finish(mut self, keep: bool) {
        self.done = true;
        self.inner.finish(self.id, self.activation_mb, keep);
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if !self.done {
            self.inner.finish(self.id, self.activation_mb, false);
        }
    }
}

impl Inner {
    /// Runs one job to its end: places it (or waits for a place), attempts it, and places it again
    /// when its container went away or refused it.
    pub(in crate::pool) async fn run(self: Arc<Self>, job: Job) -> Completed {
        let action = &job.action;
        let Some(factory) = self.factory_for(&action.kind) else {
            warn!(kind = %action.kind, "no factory runs this kind");
            return not_started(messages::RESOURCE_ERROR);
        };
        let memory_mb = action.limits.memory;
        if u64::from(memory_mb) > self.config.user_memory_mb {
            warn!(
                memory_mb,
                user_memory_mb = self.config.user_memory_mb,
                "action does not fit in the pool"
            );
            return not_started(messages::RESOURCE_ERROR);
        }
        let needs = Needs {
            factory,
            accounting: self.factories[factory].accounting,
            key: WarmKey {
                namespace: job.namespace.clone(),
                path: action.path(),
                revision: action.revision.clone(),
                version: action.version.clone(),
                kind: action.kind.clone(),
                memory_mb,
            },
            image: action.image.clone(),
            concurrency: action.limits.concurrency.max(1),
        };
        let mut reschedules = 0;
        loop {
            let placement = match self.place_or_wait(&needs) {
                Ok(placement) => placement,
                Err(Some(rx)) => match rx.await {
                    Ok(placement) => placement,
                    Err(_) => return not_started(messages::RESOURCE_ERROR),
                },
                Err(None) => return not_started(messages::RESOURCE_ERROR),
            };
            match self.clone().attempt(&job, &needs, placement).await {
                Attempt::Done(completed) => return completed,
                Attempt::Again => continue,
                Attempt::Reschedule(completed) => {
                    if reschedules >= MAX_RESCHEDULES {
                        warn!(
                            reschedules,
                            "container refused the job again: giving up rescheduling"
                        );
                        return completed;
                    }
                    reschedules += 1;
                    self.lock().counters.reschedules += 1;
                    info!(
                        reschedules,
                        "container refused the job: destroying it and scheduling the job again"
                    );
                }
            }
        }
    }

    /// Places the job now, or queues it (`Err(Some(receiver))`), or refuses it because the pool is
    /// closed (`Err(None)`).
    fn place_or_wait(
        self: &Arc<Self>,
        needs: &Needs,
    ) -> Result<Placement, Option<oneshot::Receiver<Placement>>> {
        let now = self.clock.now();
        let mut effects = Vec::new();
        let result = {
            let mut state = self.lock();
            if state.closed {
                Err(None)
            } else if !state.buffer.is_empty() {
                // Others wait already: queue behind them to keep arrival order.
                Err(Some(enqueue(&mut state, needs)))
            } else {
                match state.place(needs, now, &mut effects) {
                    Place::Placed(placement) => Ok(placement),
                    Place::Full => Err(Some(enqueue(&mut state, needs))),
                }
            }
        };
        if matches!(result, Err(Some(_))) {
            debug!("pool full: job buffered");
        }
        self.apply(effects);
        result
    }

    /// One attempt of `job` on `placement`: create, resume, init, run.
    async fn attempt(self: Arc<Self>, job: &Job, needs: &Needs, placement: Placement) -> Attempt {
        let guard = ActiveGuard::new(&self, &placement);
        let created = match self.create(job, needs, &placement).await {
            Ok(created) => created,
            Err(completed) => {
                guard.finish(false);
                return Attempt::Done(completed);
            }
        };
        if placement.resume && !self.resume(&created.container, placement.cell.id).await {
            guard.finish(false);
            return Attempt::Again;
        }
        let initialised = match init::init(job, &placement, &created.container).await {
            Ok(initialised) => initialised,
            Err(completed) => {
                guard.finish(false);
                // Jobs that waited on a refused init go elsewhere too.
                return if completed.outcome.needs_reschedule() {
                    Attempt::Reschedule(completed)
                } else {
                    Attempt::Done(completed)
                };
            }
        };
        self.run_activation(job, &placement, &created, &initialised, guard)
            .await
    }
}

fn enqueue(state: &mut State, needs: &Needs) -> oneshot::Receiver<Placement> {
    let (tx, rx) = oneshot::channel();
    state.buffer.push_back(Waiting {
        needs: needs.clone(),
        tx,
    });
    state.counters.buffered += 1;
    rx
}
