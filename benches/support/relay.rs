//! The Kafka floor of the invoker (`BENCH_RELAY=1` in `benches/kafka.rs`, which includes
//! `benches/support/echo_action.rs` as `mod echo_action`): a process that does
//! only the invoker's Kafka part of an activation, with the invoker's own plumbing. It reads
//! `invoker{N}` through [`executor::kafka::Feed`] (same consumer settings, same synchronous commit
//! per poll batch, the invoker's permits), parses each `ActivationMessage`, and hands a
//! `CompletionMessage` to [`executor::kafka::Producer`], freeing the slot once the ack is queued
//! and handling its delivery report on the producer's thread, as the invoker's ack sender does. No action is
//! fetched or run and no record is stored: the harness measures this process's CPU per activation
//! exactly as it measures the invoker's, so the difference of the two runs is what the invoker
//! spends beyond its Kafka plumbing.

use std::sync::Arc;

use executor::bytesize::ByteSize;
use executor::kafka::{DeliveryReport, Feed, FeedConfig, OnDelivery, Producer, ensure_topic};
use executor::message::{AcknowledgementMessage, ActivationMessage, InvokerInstanceId};
use executor::metrics::Metrics;
use tokio::sync::Semaphore;

/// The environment variable that makes the bench binary a relay, with the invoker id as value.
pub const ROLE: &str = "BENCH_RELAY_ID";
/// The relay's bootstrap servers.
pub const BOOTSTRAP: &str = "BENCH_RELAY_BOOTSTRAP";
/// The relay's `fetch.wait.max.ms`.
pub const FETCH_WAIT: &str = "BENCH_RELAY_FETCH_WAIT_MS";
/// The relay's permits: the invoker's slots for `echo` in its user memory.
pub const MAX_PEEK: &str = "BENCH_RELAY_MAX_PEEK";

/// Runs the relay until the process is killed; `Err` says why it could not start.
pub fn run(id: u32) -> Result<(), String> {
    let bootstrap = std::env::var(BOOTSTRAP).map_err(|_| format!("{BOOTSTRAP} is not set"))?;
    let fetch_wait_max_ms = std::env::var(FETCH_WAIT)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(5);
    let max_peek = std::env::var(MAX_PEEK)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(16);
    // The invoker's runtime: tokio's default multi-thread runtime (one worker per core).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("runtime: {error}"))?;
    // On a worker, as the invoker's command runs (see its `main.rs`).
    let relay = runtime.spawn(async move {
        let topic = format!("invoker{id}");
        ensure_topic(&bootstrap, &topic)
            .await
            .map_err(|error| error.to_string())?;
        let producer = Arc::new(Producer::new(&bootstrap).map_err(|error| error.to_string())?);
        let instance = InvokerInstanceId::new(
            id,
            ByteSize::mb((max_peek * crate::echo_action::MEMORY_MB) as u64),
            Some(id.to_string()),
            None,
        );
        let mut feed = Feed::start(
            FeedConfig {
                bootstrap: bootstrap.clone(),
                topic,
                permits: Arc::new(Semaphore::new(max_peek)),
                fetch_wait_max_ms,
            },
            Arc::new(Metrics::new()),
        )
        .map_err(|error| error.to_string())?;
        while let Some(delivered) = feed.messages.recv().await {
            let producer = producer.clone();
            let instance = instance.clone();
            tokio::spawn(async move {
                let Ok(message) = ActivationMessage::parse(&delivered.payload) else {
                    eprintln!("relay: unreadable message at offset {}", delivered.offset);
                    return;
                };
                let ack = AcknowledgementMessage::Completion {
                    transid: message.transid.clone(),
                    activation_id: message.activation_id.clone(),
                    is_system_error: false,
                    instance,
                };
                // As the invoker's acks: the delivery report is handled on the producer's thread.
                let then: OnDelivery = Box::new(|report: DeliveryReport| {
                    if let Err(error) = report.result {
                        eprintln!("relay: ack not delivered: {error}");
                    }
                });
                let queued = producer.enqueue_then(&message.ack_topic(), &ack.to_json(), then);
                drop(delivered.permit);
                if let Err(error) = queued {
                    eprintln!("relay: ack not queued: {error}");
                }
            });
        }
        Ok(())
    });
    runtime
        .block_on(relay)
        .map_err(|error| format!("relay task: {error}"))?
}
