//! Step 3 of an attempt: the init, done once per container by the first job that gets there; jobs
//! that arrive meanwhile wait on it and share its result. A failed init ends every one of them with
//! the same outcome (the waiters as [`Start::Aborted`]).

use std::sync::Arc;

use factory::{Container, InitDone};

use crate::pool::job::{Completed, Job, Start};
use crate::pool::state::Placement;

/// A container's finished init, as one job saw it.
pub(super) struct Initialised {
    /// When the init ran.
    pub done: InitDone,
    /// Whether this job did it (then its activation reports the init time).
    pub by_this_job: bool,
}

/// Initialises the placement's container with `job`'s action, unless someone did (or is doing) it.
pub(super) async fn init(
    job: &Job,
    placement: &Placement,
    container: &Arc<dyn Container>,
) -> Result<Initialised, Completed> {
    let mut did_init = false;
    let initialised = placement
        .cell
        .init
        .get_or_init(|| async {
            did_init = true;
            container.init(job.init_request()).await
        })
        .await
        .clone();
    match initialised {
        Ok(done) => Ok(Initialised {
            done,
            by_this_job: did_init,
        }),
        Err(outcome) => Err(Completed {
            outcome: *outcome,
            start: if did_init {
                placement.start
            } else {
                Start::Aborted
            },
        }),
    }
}
