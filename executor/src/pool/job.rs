//! What goes into the pool and what comes out: a [`Job`] (one activation of one action for one
//! namespace) and its [`Completed`] end, with the [`Start`] that says how it got its container.

use std::collections::BTreeMap;
use std::sync::Arc;

use factory::{InitRequest, Outcome, RunRequest, Status};

use crate::action::ExecutableAction;

/// One activation to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// The action, as the entity store resolved it.
    pub action: Arc<ExecutableAction>,
    /// The invoking namespace (`user.namespace.name`); containers are never shared across namespaces.
    pub namespace: String,
    /// Parameters, activation context and limits of the run.
    pub run: RunRequest,
    /// The init parameters (`initArgs`) as environment strings, used if this job initialises the
    /// container.
    pub init_env: BTreeMap<String, String>,
}

impl Job {
    /// The `/init` this job sends when it initialises its container: the action's code and entry
    /// point, the init environment, and the run's context and limits.
    pub fn init_request(&self) -> InitRequest {
        InitRequest {
            name: self.action.name.clone(),
            main: self.action.main.clone(),
            code: self.action.code.clone(),
            env: self.init_env.clone(),
            context: self.run.context.clone(),
            limits: self.run.limits,
        }
    }
}

/// How a job got its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Start {
    /// A container already initialised for this action (or being initialised by another job).
    Warm,
    /// A prewarmed stem cell, initialised by this job.
    Prewarmed,
    /// A new container, created and initialised by this job.
    Cold,
    /// No container ran the job: none could be created, no factory runs the kind, or the action does
    /// not fit in the pool at all. OpenWhisk answers these with one Combined ack.
    NotStarted,
    /// The job waited on a container whose creation or init failed and was aborted with that
    /// failure.
    Aborted,
}

impl Start {
    /// The label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Start::Warm => "warm",
            Start::Prewarmed => "prewarmed",
            Start::Cold => "cold",
            Start::NotStarted => "not_started",
            Start::Aborted => "aborted",
        }
    }
}

/// The end of a job.
#[derive(Debug, Clone)]
pub struct Completed {
    /// What the activation produced; `init_time` is set when this job initialised the container.
    pub outcome: Outcome,
    /// How the job got its container.
    pub start: Start,
}

/// The end of a job no container ran: a whisk error with OpenWhisk's `message`.
pub(super) fn not_started(message: &str) -> Completed {
    Completed {
        outcome: Outcome::instant_error(Status::WhiskError, message),
        start: Start::NotStarted,
    }
}
