//! One action container: `/init`, `/run` (with logs, from its json-file or through the API, and OOM
//! detection), pause, resume, destroy and a TCP health probe, as OpenWhisk's `DockerContainer` does
//! them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use bytes::Bytes;
use tokio::time::Instant;

use crate::container::{Container, Health, InitDone, InitRequest, RunRequest};
use crate::docker::client::{self, Answer, CallError, MAX_INIT_RESPONSE_BYTES, Mapped, Retry};
use crate::docker::engine::{Engine, EngineError};
use crate::docker::log_file::LogFile;
use crate::docker::logs::{self, CollectedLogs, LogCursor, LogRequest};
use crate::docker::wire;
use crate::error::FactoryError;
use crate::outcome::{ContainerFault, Outcome, Status, error_result, messages};

/// Pause and unpause bound (OpenWhisk's `whisk.docker.client.timeouts`: 10 s).
const PAUSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Remove and inspect bound (1 minute).
const REMOVE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to look for `OOMKilled` after a dropped connection (OpenWhisk: 2 s).
const OOM_WAIT: Duration = Duration::from_secs(2);
/// How often to look during [`OOM_WAIT`].
const OOM_POLL: Duration = Duration::from_millis(20);
/// Bound of the TCP health probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Lifecycle {
    concurrency: u32,
    paused: bool,
    /// Resumed and not run since: a dropped connection means "reschedule", not "the action failed".
    resumed: bool,
    destroyed: bool,
    /// Log collection failed: the container must not be reused.
    logs_broken: bool,
}

/// A Docker container running an OpenWhisk runtime, reached at `address` (port 8080).
#[derive(Debug)]
pub struct DockerContainer {
    id: String,
    name: String,
    image: String,
    address: SocketAddr,
    sentinelled: bool,
    max_result_bytes: usize,
    /// Reached through docker's userland proxy (port published on the loopback), which accepts
    /// connections before the runtime listens: `/init` also retries connections closed unanswered.
    behind_userland_proxy: bool,
    engine: Arc<Engine>,
    lifecycle: Mutex<Lifecycle>,
    logs: tokio::sync::Mutex<LogPosition>,
}

/// Where the previous activation's logs ended: in the json-file itself when it is read directly, and
/// always for the API reader (moved along by the file reader, so either can take over).
#[derive(Debug, Default)]
struct LogPosition {
    cursor: LogCursor,
    file: Option<LogFile>,
}

impl DockerContainer {
    #[allow(
        clippy::too_many_arguments,
        reason = "a private constructor fed by the factory"
    )]
    pub(crate) fn new(
        id: String,
        name: String,
        image: String,
        address: SocketAddr,
        sentinelled: bool,
        max_result_bytes: usize,
        behind_userland_proxy: bool,
        engine: Arc<Engine>,
        log_file: Option<LogFile>,
    ) -> Self {
        Self {
            id,
            name,
            image,
            address,
            sentinelled,
            max_result_bytes,
            behind_userland_proxy,
            engine,
            lifecycle: Mutex::new(Lifecycle {
                concurrency: 1,
                ..Lifecycle::default()
            }),
            logs: tokio::sync::Mutex::new(LogPosition {
                cursor: LogCursor::default(),
                file: log_file,
            }),
        }
    }

    /// The json-file log read directly, when this container's logs do not go through the API.
    pub async fn log_file(&self) -> Option<std::path::PathBuf> {
        let position = self.logs.lock().await;
        position.file.as_ref().map(|f| f.path().to_path_buf())
    }

    /// The container's name (`wsk0_3_guest_hello`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where its runtime listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The image it runs.
    pub fn image(&self) -> &str {
        &self.image
    }

    fn lifecycle(&self) -> std::sync::MutexGuard<'_, Lifecycle> {
        self.lifecycle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether docker says the container was OOM-killed, asked for up to [`OOM_WAIT`] (the flag may
    /// lag the dropped connection).
    async fn oom_killed(&self) -> bool {
        let give_up = Instant::now() + OOM_WAIT;
        loop {
            let id = self.id.clone();
            let inspected = self
                .engine
                .call(REMOVE_TIMEOUT, |docker| async move {
                    docker.inspect_container(&id, None).await
                })
                .await;
            match inspected {
                Ok(info) if info.state.as_ref().and_then(|s| s.oom_killed) == Some(true) => {
                    return true;
                }
                Ok(_) => {}
                Err(_) => return false,
            }
            if Instant::now() + OOM_POLL >= give_up {
                return false;
            }
            tokio::time::sleep(OOM_POLL).await;
        }
    }

    /// The developer error of a dropped connection: out of memory, or the runtime died.
    async fn connection_failure(&self, abnormal: &'static str, reason: &str) -> Mapped {
        tracing::debug!(container = %self.id, reason, "connection to the runtime failed");
        let message = if self.oom_killed().await {
            messages::MEMORY_EXHAUSTED
        } else {
            abnormal
        };
        Mapped {
            status: Status::DeveloperError,
            result: error_result(message),
            size: None,
            timed_out: false,
        }
    }

    /// The activation's logs and, when they could not be collected, the fault that keeps the pool
    /// from reusing this container (its log position is lost).
    async fn collect_logs(
        &self,
        limit_mb: u32,
        developer_error: bool,
    ) -> (Vec<String>, Option<ContainerFault>) {
        let request = LogRequest {
            limit_mb,
            wait_for_sentinels: self.sentinelled,
            developer_error,
        };
        let mut position = self.logs.lock().await;
        let LogPosition { cursor, file } = &mut *position;
        let collected = match file {
            Some(file) => file.collect(cursor, request).await,
            None => match self.engine.docker().await {
                Ok(docker) => logs::collect(&docker, &self.id, cursor, request).await,
                Err(e) => {
                    tracing::warn!(container = %self.id, error = %e, "cannot read logs");
                    CollectedLogs::unreadable(developer_error)
                }
            },
        };
        drop(position);
        if collected.failed {
            self.lifecycle().logs_broken = true;
        }
        let fault = collected.failed.then_some(ContainerFault::LogsLost);
        (collected.lines, fault)
    }

    /// The container refused the activation (503, or unreachable right after a resume): the pool
    /// runs it elsewhere ([`ContainerFault::Refused`]).
    fn reschedule(start: SystemTime) -> Outcome {
        Outcome::reschedule(start, SystemTime::now())
    }
}

#[async_trait]
impl Container for DockerContainer {
    fn id(&self) -> &str {
        &self.id
    }

    fn max_concurrency(&self) -> u32 {
        self.lifecycle().concurrency.max(1)
    }

    fn can_pause(&self) -> bool {
        true
    }

    #[tracing::instrument(name = "docker_init", skip_all, fields(container = %self.id, activation_id = %init.context.activation_id))]
    async fn init(&self, init: InitRequest) -> Result<InitDone, Box<Outcome>> {
        let timeout = init.limits.timeout_duration();
        let body = Bytes::from(wire::init_body(&init).to_string());
        let start = SystemTime::now();
        let started = Instant::now();
        let retry = Retry {
            refused: true,
            unanswered: self.behind_userland_proxy,
        };
        let call = client::post(
            self.address,
            "/init",
            body,
            timeout,
            MAX_INIT_RESPONSE_BYTES,
            retry,
        )
        .await;
        let elapsed = started.elapsed();
        let mapped = match client::map_init(call, elapsed, timeout) {
            Answer::Mapped(mapped) => mapped,
            Answer::ShuttingDown => return Err(Box::new(Self::reschedule(start))),
            Answer::ConnectionFailed(reason) => {
                self.connection_failure(messages::ABNORMAL_INIT, &reason)
                    .await
            }
        };
        let end = SystemTime::now();
        if mapped.status == Status::Success {
            self.lifecycle().concurrency = init.limits.concurrency.max(1);
            return Ok(InitDone { start, end });
        }
        let (logs, fault) = self.collect_logs(init.limits.logs, true).await;
        Err(Box::new(Outcome {
            size: mapped.size,
            logs,
            init_time: Some(end.duration_since(start).unwrap_or_default()),
            timed_out: mapped.timed_out,
            fault,
            ..Outcome::new(mapped.status, mapped.result, start, end)
        }))
    }

    #[tracing::instrument(name = "docker_run", skip_all, fields(container = %self.id, activation_id = %run.context.activation_id))]
    async fn run(&self, run: RunRequest) -> Outcome {
        let timeout = run.limits.timeout_duration();
        let body = Bytes::from(wire::run_body(&run).to_string());
        let resumed = std::mem::take(&mut self.lifecycle().resumed);
        let start = SystemTime::now();
        let started = Instant::now();
        let call = client::post(
            self.address,
            "/run",
            body,
            timeout,
            self.max_result_bytes,
            Retry::default(),
        )
        .await;
        let elapsed = started.elapsed();
        // Right after a resume, a runtime that cannot be reached (refused, reset, or never accepting the
        // connection) is the container's failure, not the action's: the pool reschedules.
        if resumed
            && matches!(
                call,
                Err(CallError::Connection(_)) | Err(CallError::Timeout { connected: false })
            )
        {
            return Self::reschedule(start);
        }
        let mapped = match client::map_run(call, elapsed, timeout, self.max_result_bytes) {
            Answer::Mapped(mapped) => mapped,
            Answer::ShuttingDown => return Self::reschedule(start),
            Answer::ConnectionFailed(reason) => {
                self.connection_failure(messages::ABNORMAL_RUN, &reason)
                    .await
            }
        };
        let end = SystemTime::now();
        let (logs, fault) = self
            .collect_logs(run.limits.logs, mapped.status == Status::DeveloperError)
            .await;
        Outcome {
            size: mapped.size,
            logs,
            timed_out: mapped.timed_out,
            fault,
            ..Outcome::new(mapped.status, mapped.result, start, end)
        }
    }

    async fn pause(&self) -> Result<(), FactoryError> {
        let id = self.id.clone();
        self.engine
            .call(PAUSE_TIMEOUT, |docker| async move {
                docker.pause_container(&id).await
            })
            .await
            .map_err(|e| operation_error("pause", &self.id, e))?;
        self.lifecycle().paused = true;
        Ok(())
    }

    async fn resume(&self) -> Result<(), FactoryError> {
        let id = self.id.clone();
        self.engine
            .call(PAUSE_TIMEOUT, |docker| async move {
                docker.unpause_container(&id).await
            })
            .await
            .map_err(|e| operation_error("resume", &self.id, e))?;
        let mut lifecycle = self.lifecycle();
        lifecycle.paused = false;
        lifecycle.resumed = true;
        Ok(())
    }

    async fn destroy(&self) -> Result<(), FactoryError> {
        let was_paused = {
            let mut lifecycle = self.lifecycle();
            if lifecycle.destroyed {
                return Err(FactoryError::Operation {
                    operation: "destroy",
                    id: self.id.clone(),
                    reason: "already destroyed".into(),
                });
            }
            lifecycle.destroyed = true;
            lifecycle.paused
        };
        if was_paused {
            let id = self.id.clone();
            // A paused container cannot be killed cleanly everywhere; unpause first as OpenWhisk does.
            let _ = self
                .engine
                .call(PAUSE_TIMEOUT, |docker| async move {
                    docker.unpause_container(&id).await
                })
                .await;
        }
        remove(&self.engine, &self.id)
            .await
            .map_err(|e| operation_error("destroy", &self.id, e))
    }

    async fn health(&self) -> Health {
        if self.lifecycle().destroyed {
            return Health::Unhealthy("destroyed".into());
        }
        if self.lifecycle().logs_broken {
            return Health::Unhealthy("log collection failed".into());
        }
        match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(self.address))
            .await
        {
            Ok(Ok(_)) => Health::Healthy,
            Ok(Err(e)) => Health::Unhealthy(format!("connect to {}: {e}", self.address)),
            Err(_) => Health::Unhealthy(format!("connect to {} timed out", self.address)),
        }
    }
}

/// Removes a container with force; one that is already gone counts as removed.
pub(crate) async fn remove(engine: &Engine, id: &str) -> Result<(), EngineError> {
    let owned = id.to_string();
    let result = engine
        .call(REMOVE_TIMEOUT, |docker| async move {
            let options = RemoveContainerOptionsBuilder::new().force(true).build();
            docker.remove_container(&owned, Some(options)).await
        })
        .await;
    match result {
        Err(EngineError::Api { status: 404, .. }) => Ok(()),
        other => other,
    }
}

fn operation_error(operation: &'static str, id: &str, error: EngineError) -> FactoryError {
    FactoryError::Operation {
        operation,
        id: id.to_string(),
        reason: error.to_string(),
    }
}
