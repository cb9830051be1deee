//! A test-only factory for the pool's unit tests. Its containers run no code: they answer every
//! run with its parameters, except the first few, which misbehave in one chosen way (refuse the
//! init or the run as a runtime answering 503 does, or report lost logs). It tests the pool's
//! handling of the factory's signals, not a runtime; real runtimes are in `tests/pool.rs` (wasm) and
//! `tests/pool_docker.rs` (Docker).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use factory::logs::{LOG_COLLECTION_ERROR, Stream, format_notice};
use factory::{
    ActivationContext, Container, ContainerFault, ContainerSpec, Factory, FactoryError, Health,
    InitDone, InitRequest, Limits, Outcome, RunRequest, Status, StemCell,
};
use serde_json::json;

use crate::action::ExecutableAction;
use crate::pool::Job;

/// How the first containers of a [`TestFactory`] misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Misbehaviour {
    /// `init` answers [`Outcome::reschedule`].
    RefuseInit,
    /// `run` answers [`Outcome::reschedule`].
    RefuseRun,
    /// `run` succeeds, its logs end with the collection failure notice and the fault says so.
    LoseLogs,
    /// `run` succeeds and its logs end with the collection failure notice, but no fault is set: the
    /// pool must not read the text.
    NoticeOnly,
}

/// How every creation of a [`TestFactory`] fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateFailure {
    /// [`FactoryError::BlackboxStart`], as for an image that cannot be pulled.
    Blackbox,
    /// [`FactoryError::Provision`], as for a platform failure.
    Provision,
}

/// The test-only factory; counts the containers it made and the destroys.
#[derive(Debug)]
pub(crate) struct TestFactory {
    misbehaviour: Option<Misbehaviour>,
    /// How many containers misbehave before the rest work.
    misbehaving: AtomicU32,
    pub created: AtomicU32,
    pub destroyed: Arc<AtomicU32>,
    stem_cells: Vec<StemCell>,
    create_failure: Option<CreateFailure>,
}

impl TestFactory {
    /// The kind it runs.
    pub const KIND: &str = "test:pool";

    /// A factory whose first `count` containers misbehave as said.
    pub fn misbehaving(misbehaviour: Misbehaviour, count: u32) -> Self {
        Self {
            misbehaviour: Some(misbehaviour),
            misbehaving: AtomicU32::new(count),
            created: AtomicU32::new(0),
            destroyed: Arc::new(AtomicU32::new(0)),
            stem_cells: Vec::new(),
            create_failure: None,
        }
    }

    /// A factory that creates no container: every creation fails as said.
    pub fn failing_creates(failure: CreateFailure) -> Self {
        Self {
            create_failure: Some(failure),
            ..Self::with_stem_cells(Vec::new())
        }
    }

    /// A well-behaved factory that asks for these prewarms.
    pub fn with_stem_cells(stem_cells: Vec<StemCell>) -> Self {
        Self {
            misbehaviour: None,
            stem_cells,
            ..Self::misbehaving(Misbehaviour::RefuseRun, 0)
        }
    }

    pub fn created(&self) -> u32 {
        self.created.load(Ordering::SeqCst)
    }

    pub fn destroyed(&self) -> u32 {
        self.destroyed.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct TestContainer {
    id: String,
    misbehaviour: Option<Misbehaviour>,
    destroyed: Arc<AtomicU32>,
}

#[async_trait]
impl Container for TestContainer {
    fn id(&self) -> &str {
        &self.id
    }

    fn max_concurrency(&self) -> u32 {
        1
    }

    async fn init(&self, _init: InitRequest) -> Result<InitDone, Box<Outcome>> {
        let now = SystemTime::now();
        match self.misbehaviour {
            Some(Misbehaviour::RefuseInit) => Err(Box::new(Outcome::reschedule(now, now))),
            _ => Ok(InitDone {
                start: now,
                end: now,
            }),
        }
    }

    async fn run(&self, run: RunRequest) -> Outcome {
        let now = SystemTime::now();
        let worked = Outcome::new(Status::Success, run.params, now, now);
        let lost_logs = vec![format_notice(now, Stream::Stderr, LOG_COLLECTION_ERROR)];
        match self.misbehaviour {
            Some(Misbehaviour::RefuseRun) => Outcome::reschedule(now, now),
            Some(Misbehaviour::LoseLogs) => Outcome {
                logs: lost_logs,
                fault: Some(ContainerFault::LogsLost),
                ..worked
            },
            Some(Misbehaviour::NoticeOnly) => Outcome {
                logs: lost_logs,
                ..worked
            },
            _ => worked,
        }
    }

    async fn destroy(&self) -> Result<(), FactoryError> {
        self.destroyed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn health(&self) -> Health {
        Health::Healthy
    }
}

#[async_trait]
impl Factory for TestFactory {
    fn name(&self) -> &'static str {
        "test"
    }

    fn supports(&self, kind: &str) -> bool {
        kind == Self::KIND
    }

    fn stem_cells(&self) -> Vec<StemCell> {
        self.stem_cells.clone()
    }

    async fn create(&self, _spec: ContainerSpec) -> Result<Arc<dyn Container>, FactoryError> {
        match self.create_failure {
            Some(CreateFailure::Blackbox) => {
                return Err(FactoryError::BlackboxStart {
                    message: "Failed to pull container image 'example/missing'.".into(),
                });
            }
            Some(CreateFailure::Provision) => {
                return Err(FactoryError::Provision {
                    reason: "the test factory fails every creation".into(),
                });
            }
            None => {}
        }
        let n = self.created.fetch_add(1, Ordering::SeqCst);
        let misbehaves = self
            .misbehaving
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        Ok(Arc::new(TestContainer {
            id: format!("test-{n}"),
            misbehaviour: self.misbehaviour.filter(|_| misbehaves),
            destroyed: self.destroyed.clone(),
        }))
    }

    async fn health(&self) -> Health {
        Health::Healthy
    }
}

/// A job of the test kind; the container answers `{"n": 1}`.
pub(crate) fn job() -> Job {
    let action = Arc::new(ExecutableAction {
        namespace: "guest".into(),
        name: "tested".into(),
        revision: Some("1-abc".into()),
        version: "0.0.1".into(),
        kind: TestFactory::KIND.into(),
        image: None,
        code: None,
        main: None,
        limits: Limits::default(),
        provide_api_key: false,
        parameters: serde_json::Map::new(),
        init_parameters: Vec::new(),
        annotations: Vec::new(),
        executable: true,
    });
    Job {
        namespace: "guest".into(),
        run: RunRequest {
            params: json!({"n": 1}),
            context: ActivationContext {
                activation_id: "0123456789abcdef0123456789abcdef".into(),
                namespace: "guest".into(),
                action_name: action.action_name(),
                action_version: Some("0.0.1".into()),
                transaction_id: "tid".into(),
                api_key: None,
                deadline: SystemTime::now() + Duration::from_secs(60),
            },
            limits: action.limits,
        },
        init_env: BTreeMap::new(),
        action,
    }
}

/// Waits (at most 10 s, then fails the test) until `done` holds.
pub(crate) async fn until(what: &str, done: impl Fn() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}
