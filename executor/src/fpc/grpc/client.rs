//! The invoker's side of the scheduler's `ActivationService` (OpenWhisk's `ActivationClientProxy`):
//! polls, the goodbye call, reschedules and the warm-up call.
//!
//! Upstream opens one HTTP/2 connection per container; here one [`ActivationClient`] holds one lazy
//! plaintext channel to one scheduler, and its clones (one per container) share it, because HTTP/2
//! multiplexes the long polls of all containers on it. Upstream sets no deadline on calls; a poll is
//! bounded here anyway (above the scheduler's 5 s internal ask timeout, so a slow but working
//! scheduler is never cut off) so that a half-open connection cannot hang a container forever.

use std::future::Future;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use super::proto::activation_service_client::ActivationServiceClient;
use super::proto::{FetchRequest, FetchResponse, RescheduleRequest};
use super::{FetchReply, GrpcError, PollRequest, SchedulerEndpoint};

/// How long establishing the TCP connection may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a poll may take: the scheduler parks a poll for 1 s and asks its queue with a 5 s
/// timeout, so an answer later than this means the scheduler or the connection is gone.
pub const DEFAULT_FETCH_DEADLINE: Duration = Duration::from_secs(15);
/// How long a reschedule may take; without an answer by then the activation fails (OpenWhisk's
/// container proxy waits 10 s too).
pub const RESCHEDULE_DEADLINE: Duration = Duration::from_secs(10);
/// How long the goodbye call may hold up a container's removal.
pub const GOODBYE_DEADLINE: Duration = Duration::from_secs(5);
/// How long the warm-up call may take, connection included.
pub const WARM_UP_DEADLINE: Duration = Duration::from_secs(10);

/// A client of one scheduler's `ActivationService`. Cheap to clone: clones share the channel.
#[derive(Debug, Clone)]
pub struct ActivationClient {
    endpoint: SchedulerEndpoint,
    service: ActivationServiceClient<Channel>,
    fetch_deadline: Duration,
}

impl ActivationClient {
    /// A client of `endpoint` over plaintext HTTP/2 (the scheduler serves gRPC without TLS). The
    /// connection is made on the first call and re-made after it breaks, so this fails only on an
    /// invalid endpoint or outside a tokio runtime.
    pub fn new(endpoint: SchedulerEndpoint) -> Result<Self, GrpcError> {
        // The lazy channel spawns its worker task at once; outside a runtime that would panic.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(GrpcError::NoRuntime);
        }
        let channel = Endpoint::from_shared(endpoint.uri())
            .map_err(|error| GrpcError::InvalidEndpoint {
                endpoint: endpoint.to_string(),
                reason: error.to_string(),
            })?
            .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Self {
            endpoint,
            service: ActivationServiceClient::new(channel),
            fetch_deadline: DEFAULT_FETCH_DEADLINE,
        })
    }

    /// The same client with another poll deadline (the default is [`DEFAULT_FETCH_DEADLINE`]).
    pub fn with_fetch_deadline(mut self, deadline: Duration) -> Self {
        self.fetch_deadline = deadline;
        self
    }

    /// The scheduler this client polls.
    pub fn endpoint(&self) -> &SchedulerEndpoint {
        &self.endpoint
    }

    /// One `FetchActivation` long poll, with a fresh transaction id.
    pub async fn fetch(&self, request: &PollRequest) -> Result<FetchReply, GrpcError> {
        let response = self
            .fetch_raw(request.to_proto(), self.fetch_deadline)
            .await?;
        Ok(FetchReply::parse(&response.activation_message))
    }

    /// The goodbye call of a container going away: the same poll with `alive = false`, which makes
    /// the scheduler's queue forget the container. Its outcome is only logged, and it takes at most
    /// [`GOODBYE_DEADLINE`].
    pub async fn goodbye(&self, request: &PollRequest) {
        let goodbye = PollRequest {
            alive: false,
            ..request.clone()
        };
        match self.fetch_raw(goodbye.to_proto(), GOODBYE_DEADLINE).await {
            Ok(_) => tracing::debug!(
                endpoint = %self.endpoint,
                container = %request.container_id,
                "goodbye sent to the scheduler"
            ),
            Err(error) => tracing::debug!(
                endpoint = %self.endpoint,
                container = %request.container_id,
                %error,
                "goodbye to the scheduler failed"
            ),
        }
    }

    /// Hands back an activation its container could not run. `true` means the scheduler queued it
    /// again (it will run elsewhere: send no ack); `false` means it had no queue for the action.
    /// Without an answer within [`RESCHEDULE_DEADLINE`] this is an error.
    pub async fn reschedule(
        &self,
        invocation_namespace: &str,
        fqn_json: &str,
        rev_json: &str,
        activation_json: &str,
    ) -> Result<bool, GrpcError> {
        let request = RescheduleRequest {
            invocation_namespace: invocation_namespace.to_string(),
            fqn: fqn_json.to_string(),
            rev: rev_json.to_string(),
            activation_message: activation_json.to_string(),
        };
        let mut service = self.service.clone();
        let response = bounded(
            "RescheduleActivation",
            RESCHEDULE_DEADLINE,
            service.reschedule_activation(request),
        )
        .await?;
        Ok(response.is_rescheduled)
    }

    async fn fetch_raw(
        &self,
        request: FetchRequest,
        deadline: Duration,
    ) -> Result<FetchResponse, GrpcError> {
        let mut service = self.service.clone();
        bounded(
            "FetchActivation",
            deadline,
            service.fetch_activation(request),
        )
        .await
    }
}

/// The one warm-up call the invoker makes to a scheduler it discovers (on start and on `/enable`), so
/// that the scheduler's side of gRPC is ready before the first container polls. The scheduler
/// answers "no activation"; the outcome is only logged.
pub async fn warm_up(endpoint: &SchedulerEndpoint) {
    let client = match ActivationClient::new(endpoint.clone()) {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%endpoint, %error, "no warm-up call to the scheduler");
            return;
        }
    };
    match client
        .fetch_raw(PollRequest::warm_up().to_proto(), WARM_UP_DEADLINE)
        .await
    {
        Ok(_) => tracing::info!(%endpoint, "scheduler warmed up"),
        Err(error) => tracing::warn!(%endpoint, %error, "warm-up call to the scheduler failed"),
    }
}

/// A call that fails with [`tonic::Code::DeadlineExceeded`] when it has no answer within `deadline`.
/// The deadline is enforced here rather than sent as `grpc-timeout`, because upstream's invoker sends
/// none and the scheduler's behaviour with one is untested.
async fn bounded<T>(
    what: &str,
    deadline: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, GrpcError> {
    match tokio::time::timeout(deadline, call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(GrpcError::from(status)),
        Err(_) => Err(GrpcError::deadline(what, deadline)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_new_needs_a_runtime() {
        let error = ActivationClient::new(SchedulerEndpoint::new("localhost", 1)).unwrap_err();
        assert!(matches!(error, GrpcError::NoRuntime));
    }

    #[tokio::test]
    async fn test_new_rejects_an_invalid_endpoint() {
        let error = ActivationClient::new(SchedulerEndpoint::new("bad host", 1)).unwrap_err();
        assert!(
            matches!(error, GrpcError::InvalidEndpoint { .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn test_new_is_lazy() {
        // Nothing listens on port 1: making the client does not connect.
        let client = ActivationClient::new(SchedulerEndpoint::new("127.0.0.1", 1)).unwrap();
        assert_eq!(client.endpoint().to_string(), "127.0.0.1:1");
        assert_eq!(client.clone().endpoint(), client.endpoint());
    }
}
