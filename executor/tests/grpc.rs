//! The invoker's `ActivationService` client (`executor::fpc::grpc`) against a real tonic server: the
//! fake scheduler of `support/scheduler.rs`, which answers like OpenWhisk's `ActivationServiceImpl`.
//! Covers every answer a poll can get, the exact request fields on the wire, goodbye, warm-up,
//! reschedule, deadlines, an absent or unresolvable scheduler and a scheduler restart.

#[path = "support/ports.rs"]
mod ports;
#[path = "support/scheduler.rs"]
mod scheduler;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use executor::fpc::grpc::{
    ActivationClient, FetchReply, GrpcError, PollRequest, SchedulerEndpoint, warm_up,
};
use scheduler::{FakeScheduler, QueueMode};
use serde_json::Value;

const NS: &str = "guest";
const DOC_ID: &str = "guest/hello";
const REV: &str = "1-abc";
const FQN_JSON: &str = r#"{"path":"guest","name":"hello","version":"0.0.1"}"#;

fn poll(container_id: &str) -> PollRequest {
    PollRequest {
        invocation_namespace: NS.to_string(),
        fqn_json: FQN_JSON.to_string(),
        rev_json: format!("\"{REV}\""),
        container_id: container_id.to_string(),
        warmed: false,
        last_duration_ms: None,
        alive: true,
    }
}

fn activation_json(activation_id: &str) -> String {
    format!(
        r#"{{"transid":["tid-{activation_id}",1717000000000],"action":{FQN_JSON},"revision":"{REV}","user":{{"subject":"guest","namespace":{{"name":"guest","uuid":"23bc46b1-71f6-4ed5-8c54-816aa4f8c502"}},"authkey":{{"api_key":"23bc46b1-71f6-4ed5-8c54-816aa4f8c502:secret"}},"rights":["READ","PUT","DELETE","ACTIVATE"],"limits":{{}}}},"activationId":"{activation_id}","rootControllerIndex":{{"asString":"0","instanceType":"controller"}},"blocking":true,"content":{{"name":"x"}},"initArgs":[],"lockedArgs":{{}}}}"#
    )
}

fn activation_id(reply: &FetchReply) -> String {
    match reply {
        FetchReply::Activation(activation) => activation.activation_id.as_str().to_string(),
        other => panic!("expected an activation, got {other:?}"),
    }
}

async fn started() -> (FakeScheduler, ActivationClient) {
    let scheduler = FakeScheduler::start().await;
    let client = ActivationClient::new(scheduler.endpoint()).unwrap();
    (scheduler, client)
}

#[tokio::test]
async fn test_fetch_returns_a_queued_activation_at_once() {
    let (scheduler, client) = started().await;
    let id = "a0000000000000000000000000000001";
    scheduler.push_activation(NS, DOC_ID, REV, activation_json(id));
    let started = Instant::now();
    let reply = client.fetch(&poll("c1")).await.unwrap();
    assert_eq!(activation_id(&reply), id);
    assert!(started.elapsed() < Duration::from_millis(900), "not parked");
    let FetchReply::Activation(activation) = reply else {
        unreachable!()
    };
    assert_eq!(activation.action.doc_id(), DOC_ID);
    assert_eq!(activation.action.version.as_deref(), Some("0.0.1"));
    assert_eq!(activation.revision.as_deref(), Some(REV));
    assert_eq!(activation.params(), serde_json::json!({"name": "x"}));
    assert_eq!(scheduler.queued(NS, DOC_ID, REV), 0);
}

#[tokio::test]
async fn test_parked_fetch_gets_an_activation_pushed_later() {
    let (scheduler, client) = started().await;
    scheduler.set_poll_timeout(Duration::from_secs(5));
    let id = "a0000000000000000000000000000002";
    let poller = tokio::spawn({
        let client = client.clone();
        async move { client.fetch(&poll("c1")).await }
    });
    scheduler
        .next_request(Duration::from_secs(5))
        .await
        .expect("the poll arrives");
    let started = Instant::now();
    scheduler.push_activation(NS, DOC_ID, REV, activation_json(id));
    let reply = poller.await.unwrap().unwrap();
    assert_eq!(activation_id(&reply), id);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn test_warmed_containers_are_served_first() {
    let (scheduler, client) = started().await;
    scheduler.set_poll_timeout(Duration::from_millis(1500));
    let cold = tokio::spawn({
        let client = client.clone();
        async move { client.fetch(&poll("cold")).await }
    });
    scheduler
        .next_request(Duration::from_secs(5))
        .await
        .unwrap();
    let warm = tokio::spawn({
        let client = client.clone();
        async move {
            let request = PollRequest {
                warmed: true,
                ..poll("warm")
            };
            client.fetch(&request).await
        }
    });
    scheduler
        .next_request(Duration::from_secs(5))
        .await
        .unwrap();
    let id = "a0000000000000000000000000000003";
    scheduler.push_activation(NS, DOC_ID, REV, activation_json(id));
    assert_eq!(activation_id(&warm.await.unwrap().unwrap()), id);
    assert_eq!(cold.await.unwrap().unwrap(), FetchReply::NoActivation);
}

#[tokio::test]
async fn test_no_activation_after_the_poll_timeout() {
    let (scheduler, client) = started().await;
    scheduler.set_poll_timeout(Duration::from_millis(400));
    let started = Instant::now();
    let reply = client.fetch(&poll("c1")).await.unwrap();
    assert_eq!(reply, FetchReply::NoActivation);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(400), "parked: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(scheduler.parked(), 0);
}

#[tokio::test]
async fn test_no_memory_queue_and_action_mismatch() {
    let (scheduler, client) = started().await;
    scheduler.set_queue_mode(NS, DOC_ID, REV, QueueMode::NoMemoryQueue);
    assert_eq!(
        client.fetch(&poll("c1")).await.unwrap(),
        FetchReply::NoMemoryQueue
    );
    scheduler.set_queue_mode(NS, DOC_ID, REV, QueueMode::ActionMismatch);
    assert_eq!(
        client.fetch(&poll("c1")).await.unwrap(),
        FetchReply::ActionMismatch
    );
}

#[tokio::test]
async fn test_not_json_and_wrong_shape() {
    let (scheduler, client) = started().await;
    scheduler.set_queue_mode(NS, DOC_ID, REV, QueueMode::Raw("not json {".into()));
    assert_eq!(
        client.fetch(&poll("c1")).await.unwrap(),
        FetchReply::NotJson
    );
    scheduler.set_queue_mode(
        NS,
        DOC_ID,
        REV,
        QueueMode::Raw(r#"{"message":{"a":1}}"#.into()),
    );
    let reply = client.fetch(&poll("c1")).await.unwrap();
    assert!(matches!(reply, FetchReply::WrongShape(_)), "{reply:?}");
    scheduler.set_queue_mode(NS, DOC_ID, REV, QueueMode::Raw("[1,2]".into()));
    let reply = client.fetch(&poll("c1")).await.unwrap();
    assert!(matches!(reply, FetchReply::WrongShape(_)), "{reply:?}");
}

#[tokio::test]
async fn test_request_fields_arrive_as_sent() {
    let (scheduler, client) = started().await;
    scheduler.push_activation(
        NS,
        DOC_ID,
        REV,
        activation_json("a0000000000000000000000000000004"),
    );
    client.fetch(&poll("c1")).await.unwrap();
    let after = PollRequest {
        warmed: true,
        last_duration_ms: Some(1234),
        ..poll("c1")
    };
    scheduler.set_poll_timeout(Duration::from_millis(100));
    client.fetch(&after).await.unwrap();

    let first = scheduler
        .next_request(Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(first.invocation_namespace, "guest");
    assert_eq!(first.fqn, FQN_JSON);
    assert_eq!(first.rev, "\"1-abc\"");
    assert_eq!(first.container_id, "c1");
    assert!(!first.warmed);
    assert!(first.alive);
    assert_eq!(first.last_duration, None);

    let second = scheduler
        .next_request(Duration::from_secs(1))
        .await
        .unwrap();
    assert!(second.warmed);
    assert_eq!(second.last_duration.map(|d| d.value), Some(1234));
    assert_ne!(
        first.transaction_id, second.transaction_id,
        "fresh per call"
    );

    for request in [&first, &second] {
        let tid: Value = serde_json::from_str(&request.transaction_id).unwrap();
        let parts = tid.as_array().unwrap();
        assert_eq!(parts.len(), 2, "{tid}");
        let id = parts[0].as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(parts[1].as_u64().unwrap() > 1_600_000_000_000);
    }
    assert!(
        scheduler
            .next_request(Duration::from_millis(100))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn test_goodbye_sends_alive_false() {
    let (scheduler, client) = started().await;
    let request = PollRequest {
        warmed: true,
        ..poll("c9")
    };
    let started = Instant::now();
    client.goodbye(&request).await;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "answered at once"
    );
    let goodbyes = scheduler.requests_alive(false);
    assert_eq!(goodbyes.len(), 1);
    assert_eq!(goodbyes[0].container_id, "c9");
    assert_eq!(goodbyes[0].fqn, FQN_JSON);
    assert!(goodbyes[0].warmed);
    assert_eq!(scheduler.requests_of_container("c9").len(), 1);
}

#[tokio::test]
async fn test_warm_up_sends_the_warm_up_request() {
    let scheduler = FakeScheduler::start().await;
    warm_up(&scheduler.endpoint()).await;
    let requests = scheduler.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.invocation_namespace, "whisk.system");
    assert_eq!(request.fqn, r#"{"path":"whisk.system","name":"warmUp"}"#);
    assert_eq!(request.rev, "null");
    assert_eq!(request.container_id, "");
    assert!(!request.warmed);
    assert_eq!(request.last_duration, None);
    assert!(!request.alive);
    let tid: Value = serde_json::from_str(&request.transaction_id).unwrap();
    assert_eq!(tid.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn test_reschedule_returns_the_answer() {
    let (scheduler, client) = started().await;
    let id = "a0000000000000000000000000000005";
    let rev_json = format!("\"{REV}\"");
    assert!(
        client
            .reschedule(NS, FQN_JSON, &rev_json, &activation_json(id))
            .await
            .unwrap()
    );
    // The scheduler queued it again.
    assert_eq!(activation_id(&client.fetch(&poll("c2")).await.unwrap()), id);

    scheduler.set_reschedule_answer(false);
    assert!(
        !client
            .reschedule(NS, FQN_JSON, &rev_json, &activation_json(id))
            .await
            .unwrap()
    );
    let requests = scheduler.reschedule_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].invocation_namespace, NS);
    assert_eq!(requests[0].fqn, FQN_JSON);
    assert_eq!(requests[0].rev, rev_json);
    assert_eq!(requests[0].activation_message, activation_json(id));
}

#[tokio::test]
async fn test_invalid_fqn_is_an_error_status() {
    let (_scheduler, client) = started().await;
    let request = PollRequest {
        fqn_json: "not json".into(),
        ..poll("c1")
    };
    let error = client.fetch(&request).await.unwrap_err();
    assert_ne!(error.code(), Some(tonic::Code::Ok));
    assert!(!error.is_unresolvable_host());
}

#[tokio::test]
async fn test_fetch_deadline() {
    let (scheduler, client) = started().await;
    scheduler.set_poll_timeout(Duration::from_secs(30));
    let client = client.with_fetch_deadline(Duration::from_millis(300));
    let started = Instant::now();
    let error = client.fetch(&poll("c1")).await.unwrap_err();
    assert_eq!(error.code(), Some(tonic::Code::DeadlineExceeded), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn test_nothing_listening_is_an_error_not_a_hang() {
    // Free, and (outside the ephemeral range, reserved) no other test's server or client takes it.
    let port = ports::free_port(Ipv4Addr::LOCALHOST);
    let client = ActivationClient::new(SchedulerEndpoint::new("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    let error = client.fetch(&poll("c1")).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.code(), Some(tonic::Code::Unavailable), "{error}");
    assert!(!error.is_unresolvable_host(), "{error}");
    // The goodbye and warm-up to nowhere end too.
    client.goodbye(&poll("c1")).await;
    warm_up(client.endpoint()).await;
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn test_unresolvable_host_is_recognised() {
    let client =
        ActivationClient::new(SchedulerEndpoint::new("no-such-scheduler.invalid", 13001)).unwrap();
    let started = Instant::now();
    let error: GrpcError = client.fetch(&poll("c1")).await.unwrap_err();
    assert!(error.is_unresolvable_host(), "{error}");
    assert!(started.elapsed() < Duration::from_secs(16));
}

#[tokio::test]
async fn test_scheduler_restart() {
    // A port outside the ephemeral range: no client socket of a parallel test takes it while the
    // scheduler is stopped, before it starts again on it.
    let port = ports::free_port(Ipv4Addr::LOCALHOST);
    let mut scheduler = FakeScheduler::start_on_port(port).await;
    let client = ActivationClient::new(scheduler.endpoint()).unwrap();
    scheduler.set_poll_timeout(Duration::from_millis(100));
    assert_eq!(
        client.fetch(&poll("c1")).await.unwrap(),
        FetchReply::NoActivation
    );

    // A poll parked when the scheduler goes away fails at once, and so do later ones.
    scheduler.set_poll_timeout(Duration::from_secs(30));
    let parked = tokio::spawn({
        let client = client.clone();
        async move { client.fetch(&poll("c1")).await }
    });
    for _ in 0..50 {
        if scheduler.parked() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(scheduler.parked(), 1);
    let started = Instant::now();
    scheduler.stop().await;
    let error = parked.await.unwrap().unwrap_err();
    assert_eq!(error.code(), Some(tonic::Code::Unavailable), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let error = client.fetch(&poll("c1")).await.unwrap_err();
    assert_eq!(error.code(), Some(tonic::Code::Unavailable), "{error}");

    // The same client reconnects to the scheduler started again on the same port.
    let restarted = FakeScheduler::start_on_port(port).await;
    let id = "a0000000000000000000000000000006";
    restarted.push_activation(NS, DOC_ID, REV, activation_json(id));
    let mut reply = client.fetch(&poll("c1")).await;
    for _ in 0..20 {
        if reply.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        reply = client.fetch(&poll("c1")).await;
    }
    assert_eq!(activation_id(&reply.unwrap()), id);
    assert_eq!(
        scheduler.requests().len(),
        2,
        "the stopped scheduler logged no more"
    );
    assert!(!restarted.requests().is_empty());
}
