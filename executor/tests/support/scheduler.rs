//! The gRPC half of a fake OpenWhisk 2.x scheduler: a real tonic server of the `ActivationService`
//! (generated from `executor/proto/activation.proto`) on a free 127.0.0.1 port, whose
//! `FetchActivation` behaves like the scheduler's `ActivationServiceImpl` in front of its
//! `MemoryQueue`s, with exactly the scheduler's JSON answers:
//!
//! - a queue per (invocation namespace, action document id, revision), fed with
//!   [`FakeScheduler::push_activation`]; an activation queued → answered at once; none → the poll is
//!   parked up to the poll timeout (1 s like the scheduler's, configurable) and answered "no
//!   activation" unless an activation arrives first (warmed containers are served first);
//! - the warm-up action and `alive = false` goodbyes → "no activation" at once;
//! - a per-queue [`QueueMode`] to answer `NoMemoryQueue`, `ActionMismatch` or any raw text;
//! - `RescheduleActivation` answers [`FakeScheduler::set_reschedule_answer`] (default `true`) and,
//!   when `true`, queues the activation again, as the scheduler does;
//! - every request is logged, and [`FakeScheduler::stop`] shuts the server down (scheduler restarts).
//!
//! Unlike the real scheduler, polls for a queue nobody made create an empty one: the fake assumes
//! the queue the scheduler would have made before ordering the container.
//!
//! Used by `executor/tests/grpc.rs` (`#[path = "support/scheduler.rs"] mod scheduler;`) and, through
//! `tests/support/scheduler.rs`, by the root package's end-to-end tests.

#![allow(
    dead_code,
    reason = "each test crate uses a different part of the fake scheduler"
)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use executor::fpc::grpc::proto::activation_service_server::{
    ActivationService, ActivationServiceServer,
};
use executor::fpc::grpc::proto::{
    FetchRequest, FetchResponse, RescheduleRequest, RescheduleResponse,
};
use executor::fpc::grpc::{
    ACTION_MISMATCH_JSON, NO_ACTIVATION_JSON, NO_MEMORY_QUEUE_JSON, SchedulerEndpoint,
};
use executor::message::FullyQualifiedEntityName;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// The scheduler's poll timeout (`pollTimeOut`): how long a poll waits for an activation.
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(1);

/// How a queue answers polls.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum QueueMode {
    /// Like a live queue: activations, or "no activation" after the poll timeout.
    #[default]
    Normal,
    /// `{"message":{"noMemoryQueue":...,"type":"NoMemoryQueue"}}` at once.
    NoMemoryQueue,
    /// `{"message":{"actionMisMatch":...,"type":"ActionMismatch"}}` at once.
    ActionMismatch,
    /// This exact text as `activationMessage`, at once (garbage, wrong shapes).
    Raw(String),
}

/// A queue's key: (invocation namespace, action document id `path/name`, revision without quotes;
/// `""` for a `null` revision).
type QueueKey = (String, String, String);

#[derive(Default)]
struct Queue {
    mode: QueueMode,
    activations: VecDeque<String>,
    /// Parked polls: (serving priority `"1"|"0" + containerId`, sequence number, answer channel).
    waiters: Vec<(String, u64, oneshot::Sender<String>)>,
}

struct State {
    queues: BTreeMap<QueueKey, Queue>,
    requests: Vec<FetchRequest>,
    reschedules: Vec<RescheduleRequest>,
    reschedule_answer: bool,
    poll_timeout: Duration,
    next_waiter: u64,
    /// Set by [`FakeScheduler::stop`]: every call fails as on a dead scheduler.
    stopped: bool,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<State>>,
    /// The number of logged fetch requests, for waiting on new ones.
    logged: Arc<watch::Sender<usize>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the log from the others.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fails every call from now on and ends the parked polls (dropping their answer channels), so
    /// that the server's graceful shutdown does not wait for them.
    fn halt(&self) {
        let mut state = self.lock();
        state.stopped = true;
        for queue in state.queues.values_mut() {
            queue.waiters.clear();
        }
    }
}

fn stopped() -> Status {
    Status::unavailable("the fake scheduler is stopped")
}

/// A running fake scheduler. Dropping it stops the server (without waiting).
pub struct FakeScheduler {
    shared: Shared,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    /// How many requests [`FakeScheduler::next_request`] has returned.
    cursor: Mutex<usize>,
}

impl FakeScheduler {
    /// A fake scheduler on a free 127.0.0.1 port.
    pub async fn start() -> Self {
        Self::start_on_port(0).await
    }

    /// A fake scheduler on 127.0.0.1:`port` (0: a free one); a stopped scheduler's port can be
    /// reused to restart "the same" scheduler.
    pub async fn start_on_port(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the fake scheduler's port");
        let addr = listener.local_addr().expect("local address");
        let shared = Shared {
            state: Arc::new(Mutex::new(State {
                queues: BTreeMap::new(),
                requests: Vec::new(),
                reschedules: Vec::new(),
                reschedule_answer: true,
                poll_timeout: DEFAULT_POLL_TIMEOUT,
                next_waiter: 0,
                stopped: false,
            })),
            logged: Arc::new(watch::channel(0).0),
        };
        let (shutdown, signal) = oneshot::channel::<()>();
        let service = ActivationServiceServer::new(Service {
            shared: shared.clone(),
        });
        let server = tokio::spawn(async move {
            let result = tonic::transport::Server::builder()
                // TCP_NODELAY, as a real scheduler's server sets it: without it each answer waits
                // for the client's delayed ACK (about 40 ms), which the FPC bench measured.
                .serve_with_incoming_shutdown(
                    service,
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    async {
                        let _ = signal.await;
                    },
                )
                .await;
            if let Err(error) = result {
                eprintln!("fake scheduler on {addr}: {error}");
            }
        });
        Self {
            shared,
            addr,
            shutdown: Some(shutdown),
            server: Some(server),
            cursor: Mutex::new(0),
        }
    }

    /// The gRPC port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Where containers poll: `127.0.0.1:port`.
    pub fn endpoint(&self) -> SchedulerEndpoint {
        SchedulerEndpoint::new("127.0.0.1", self.port())
    }

    /// How long a poll is parked when nothing is queued (default 1 s, like the scheduler).
    pub fn set_poll_timeout(&self, timeout: Duration) {
        self.shared.lock().poll_timeout = timeout;
    }

    /// How `RescheduleActivation` answers from now on (default `true`).
    pub fn set_reschedule_answer(&self, answer: bool) {
        self.shared.lock().reschedule_answer = answer;
    }

    /// How the queue for (`invocation_namespace`, `fqn_doc_id` = `path/name`, `rev` without quotes)
    /// answers polls from now on.
    pub fn set_queue_mode(
        &self,
        invocation_namespace: &str,
        fqn_doc_id: &str,
        rev: &str,
        mode: QueueMode,
    ) {
        let key = (
            invocation_namespace.to_string(),
            fqn_doc_id.to_string(),
            rev.to_string(),
        );
        self.shared.lock().queues.entry(key).or_default().mode = mode;
    }

    /// Queues `activation_json` (an ActivationMessage) for (`invocation_namespace`, `fqn_doc_id` =
    /// `path/name`, `rev` without quotes, `""` for `null`). A parked poll gets it at once.
    pub fn push_activation(
        &self,
        invocation_namespace: &str,
        fqn_doc_id: &str,
        rev: &str,
        activation_json: String,
    ) {
        let key = (
            invocation_namespace.to_string(),
            fqn_doc_id.to_string(),
            rev.to_string(),
        );
        let mut state = self.shared.lock();
        deliver(state.queues.entry(key).or_default(), activation_json);
    }

    /// How many activations wait in a queue (not yet fetched).
    pub fn queued(&self, invocation_namespace: &str, fqn_doc_id: &str, rev: &str) -> usize {
        let key = (
            invocation_namespace.to_string(),
            fqn_doc_id.to_string(),
            rev.to_string(),
        );
        self.shared
            .lock()
            .queues
            .get(&key)
            .map_or(0, |queue| queue.activations.len())
    }

    /// How many polls are parked right now, across all queues.
    pub fn parked(&self) -> usize {
        self.shared
            .lock()
            .queues
            .values()
            .map(|queue| queue.waiters.iter().filter(|w| !w.2.is_closed()).count())
            .sum()
    }

    /// Every `FetchActivation` request received, oldest first.
    pub fn requests(&self) -> Vec<FetchRequest> {
        self.shared.lock().requests.clone()
    }

    /// The requests of one container.
    pub fn requests_of_container(&self, container_id: &str) -> Vec<FetchRequest> {
        self.requests_where(|request| request.container_id == container_id)
    }

    /// The requests with this `alive` flag (`false`: goodbyes and warm-ups).
    pub fn requests_alive(&self, alive: bool) -> Vec<FetchRequest> {
        self.requests_where(|request| request.alive == alive)
    }

    /// The requests that match `predicate`.
    pub fn requests_where(&self, predicate: impl Fn(&FetchRequest) -> bool) -> Vec<FetchRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|request| predicate(request))
            .cloned()
            .collect()
    }

    /// The next request after the last one this method returned, waiting up to `timeout` for it.
    pub async fn next_request(&self, timeout: Duration) -> Option<FetchRequest> {
        let index = *self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        let request = self
            .wait_for(timeout, |requests| requests.get(index).cloned())
            .await?;
        *self.cursor.lock().unwrap_or_else(|p| p.into_inner()) = index + 1;
        Some(request)
    }

    /// The first request (already received or arriving within `timeout`) that matches `predicate`.
    pub async fn wait_for_request(
        &self,
        timeout: Duration,
        predicate: impl Fn(&FetchRequest) -> bool,
    ) -> Option<FetchRequest> {
        self.wait_for(timeout, |requests| {
            requests.iter().find(|r| predicate(r)).cloned()
        })
        .await
    }

    async fn wait_for<T>(
        &self,
        timeout: Duration,
        find: impl Fn(&[FetchRequest]) -> Option<T>,
    ) -> Option<T> {
        let mut logged = self.shared.logged.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            logged.borrow_and_update();
            if let Some(found) = find(&self.shared.lock().requests) {
                return Some(found);
            }
            match tokio::time::timeout_at(deadline, logged.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    /// Every `RescheduleActivation` request received, oldest first.
    pub fn reschedule_requests(&self) -> Vec<RescheduleRequest> {
        self.shared.lock().reschedules.clone()
    }

    /// Shuts the server down like a dying scheduler: parked polls and any call still arriving fail
    /// with `UNAVAILABLE`, open connections are closed and the port is free again afterwards.
    pub async fn stop(&mut self) {
        self.shared.halt();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(mut server) = self.server.take() {
            let grace = self.shared.lock().poll_timeout + Duration::from_secs(1);
            if tokio::time::timeout(grace, &mut server).await.is_err() {
                server.abort();
                let _ = server.await;
            }
        }
    }
}

impl Drop for FakeScheduler {
    fn drop(&mut self) {
        self.shared.halt();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Hands `activation` to the highest-priority parked poll still waiting, or queues it.
fn deliver(queue: &mut Queue, mut activation: String) {
    // Warmed containers ("1" + id) before cold ones ("0" + id), highest key first, as the
    // scheduler's MemoryQueue serves its parked requests.
    queue
        .waiters
        .sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    while let Some((_, _, answer)) = queue.waiters.pop() {
        match answer.send(activation) {
            Ok(()) => return,
            // The poll was given up (the client went away): try the next one.
            Err(returned) => activation = returned,
        }
    }
    queue.activations.push_back(activation);
}

fn message_of(activation_json: &str) -> String {
    format!(r#"{{"message":{activation_json}}}"#)
}

fn answer(text: impl Into<String>) -> Result<Response<FetchResponse>, Status> {
    Ok(Response::new(FetchResponse {
        activation_message: text.into(),
    }))
}

/// The queue key of a request's `fqn` and `rev` JSON texts; a status like the scheduler's failed
/// handler when either is not JSON.
fn queue_key(
    invocation_namespace: &str,
    fqn_json: &str,
    rev_json: &str,
) -> Result<(FullyQualifiedEntityName, QueueKey), Status> {
    let fqn: FullyQualifiedEntityName = serde_json::from_str(fqn_json)
        .map_err(|error| Status::internal(format!("fqn {fqn_json:?}: {error}")))?;
    let rev = match serde_json::from_str::<serde_json::Value>(rev_json) {
        Ok(serde_json::Value::String(rev)) => rev,
        Ok(serde_json::Value::Null) => String::new(),
        _ => {
            return Err(Status::internal(format!(
                "rev {rev_json:?} is not a DocRevision"
            )));
        }
    };
    let key = (invocation_namespace.to_string(), fqn.doc_id(), rev);
    Ok((fqn, key))
}

struct Service {
    shared: Shared,
}

#[tonic::async_trait]
impl ActivationService for Service {
    async fn fetch_activation(
        &self,
        request: Request<FetchRequest>,
    ) -> Result<Response<FetchResponse>, Status> {
        let request = request.into_inner();
        {
            let mut state = self.shared.lock();
            if state.stopped {
                return Err(stopped());
            }
            state.requests.push(request.clone());
            let count = state.requests.len();
            drop(state);
            self.shared.logged.send_replace(count);
        }
        let (fqn, key) = queue_key(&request.invocation_namespace, &request.fqn, &request.rev)?;
        if fqn.path == "whisk.system" && fqn.name == "warmUp" {
            return answer(NO_ACTIVATION_JSON);
        }
        let (waiter, answer_rx, poll_timeout) = {
            let mut state = self.shared.lock();
            let poll_timeout = state.poll_timeout;
            let waiter = state.next_waiter;
            state.next_waiter += 1;
            let queue = state.queues.entry(key.clone()).or_default();
            match &queue.mode {
                QueueMode::Normal => {}
                QueueMode::NoMemoryQueue => return answer(NO_MEMORY_QUEUE_JSON),
                QueueMode::ActionMismatch => return answer(ACTION_MISMATCH_JSON),
                QueueMode::Raw(text) => return answer(text.clone()),
            }
            if !request.alive {
                return answer(NO_ACTIVATION_JSON);
            }
            if let Some(activation) = queue.activations.pop_front() {
                return answer(message_of(&activation));
            }
            let priority = format!(
                "{}{}",
                if request.warmed { "1" } else { "0" },
                request.container_id
            );
            let (tx, rx) = oneshot::channel();
            queue.waiters.push((priority, waiter, tx));
            (waiter, rx, poll_timeout)
        };
        let mut answer_rx = answer_rx;
        match tokio::time::timeout(poll_timeout, &mut answer_rx).await {
            Ok(Ok(activation)) => answer(message_of(&activation)),
            Ok(Err(_)) => Err(stopped()),
            Err(_) => {
                let mut state = self.shared.lock();
                if let Some(queue) = state.queues.get_mut(&key) {
                    queue.waiters.retain(|w| w.1 != waiter);
                }
                // An activation handed over between the timeout and the lock is not lost.
                match answer_rx.try_recv() {
                    Ok(activation) => answer(message_of(&activation)),
                    Err(_) => answer(NO_ACTIVATION_JSON),
                }
            }
        }
    }

    async fn reschedule_activation(
        &self,
        request: Request<RescheduleRequest>,
    ) -> Result<Response<RescheduleResponse>, Status> {
        let request = request.into_inner();
        let mut state = self.shared.lock();
        if state.stopped {
            return Err(stopped());
        }
        state.reschedules.push(request.clone());
        let is_rescheduled = state.reschedule_answer;
        if is_rescheduled {
            let (_, key) = queue_key(&request.invocation_namespace, &request.fqn, &request.rev)?;
            deliver(
                state.queues.entry(key).or_default(),
                request.activation_message,
            );
        }
        Ok(Response::new(RescheduleResponse { is_rescheduled }))
    }
}
