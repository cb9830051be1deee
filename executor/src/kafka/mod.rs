//! Kafka plumbing of the invoker (rdkafka): the topic check at start ([`ensure_topic`]), the
//! [`Producer`] of acks, pings and events, and the [`Feed`] that reads `invoker{N}`.
//!
//! Client settings are OpenWhisk's (docs/protocol.md §1), translated to librdkafka names.

mod feed;
mod producer;

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::util::Timeout;
use thiserror::Error;
use tracing::{debug, info};

use crate::message::MAX_MESSAGE_BYTES;

#[cfg(feature = "fault-injection")]
pub use feed::INJECTED_FEED_PANIC;
pub use feed::{Delivered, Feed, FeedConfig, REJOIN_LIMIT, prefetch_settings};
pub use producer::{DeliveryReport, OnDelivery, Pending, Producer, SendError};

/// How long one poll waits for a message (OpenWhisk's invoker long-polls 1 s). Also bounds how long
/// stopping the feed takes.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a produced record may wait in the local queue before the send fails.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long topic creation may take.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// OpenWhisk's consumer `fetch.max.wait.ms` (500 ms). A real Kafka broker answers a fetch as soon as
/// data arrives; a broker that always waits the full time (Tansu) adds up to this much latency to
/// every message, hence [`FeedConfig::fetch_wait_max_ms`].
pub const DEFAULT_FETCH_WAIT_MAX_MS: u32 = 500;
/// The producer's `linger.ms` by default: half a millisecond. The acks of a poll batch are handed
/// over within a few hundred µs of each other, and this lets them share one produce request: at
/// 32 activations outstanding it took the invoker's CPU per activation from 119 to 102 µs
/// (medians of 4 alternating pairs, 2026-12-06, benches/RESULTS-kafka.md). The price is up to
/// 0.5 ms on an ack that finds the producer idle. OpenWhisk's own invoker uses the Java client's
/// default of that time, 0 (librdkafka's is 5 ms, and Kafka 4.0's Java client moved to 5 ms
/// too); 0 here sends every ack at once.
pub const DEFAULT_PRODUCER_LINGER_MS: f64 = 0.5;
/// The largest producer `linger.ms` accepted. librdkafka requires it below `message.timeout.ms`
/// ([`SEND_TIMEOUT`]); and an ack held for more than a second would delay the controller's view
/// of the invoker's capacity and every blocking caller by as much, for no further saving (a
/// produce request then already carries every ack of that second).
pub const MAX_PRODUCER_LINGER_MS: f64 = 1_000.0;
/// How often the consumer lag is measured.
pub const LAG_INTERVAL: Duration = Duration::from_secs(5);

/// Errors of the Kafka plumbing.
#[derive(Debug, Error)]
pub enum KafkaPlumbingError {
    /// A client could not be created from its configuration.
    #[error("cannot create the Kafka {client}: {source}")]
    Client {
        /// Which client.
        client: &'static str,
        /// Why.
        source: KafkaError,
    },
    /// The invoker topic could not be created.
    #[error("cannot create topic {topic}: {reason}")]
    Topic {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// Subscribing the consumer failed.
    #[error("cannot subscribe to {topic}: {source}")]
    Subscribe {
        /// The topic.
        topic: String,
        /// Why.
        source: KafkaError,
    },
    /// The feed thread could not be started.
    #[error("cannot start the feed thread: {0}")]
    Thread(std::io::Error),
}

/// The common client settings: bootstrap servers, `security.protocol=plaintext`, and no Nagle
/// delay: Kafka's Java client (OpenWhisk's) always sets `TCP_NODELAY`, while librdkafka leaves
/// Nagle on by default, which can hold a small request (an ack, a commit) back until the broker
/// acknowledges the previous segment.
fn common(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("security.protocol", "plaintext")
        .set("socket.nagle.disable", "true");
    config
}

/// Creates `topic` with 1 partition, replication 1 and `max.message.bytes` = [`MAX_MESSAGE_BYTES`]
/// unless it exists (OpenWhisk's `ensureTopic`).
pub async fn ensure_topic(bootstrap: &str, topic: &str) -> Result<(), KafkaPlumbingError> {
    let admin: AdminClient<DefaultClientContext> =
        common(bootstrap)
            .create()
            .map_err(|source| KafkaPlumbingError::Client {
                client: "admin client",
                source,
            })?;
    let max_bytes = MAX_MESSAGE_BYTES.to_string();
    let new_topic = NewTopic::new(topic, 1, TopicReplication::Fixed(1))
        .set("max.message.bytes", &max_bytes)
        .set("segment.bytes", "536870912")
        .set("retention.bytes", "1073741824")
        .set("retention.ms", "172800000");
    let options = AdminOptions::new()
        .operation_timeout(Some(Timeout::After(ADMIN_TIMEOUT)))
        .request_timeout(Some(Timeout::After(ADMIN_TIMEOUT)));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(|error| KafkaPlumbingError::Topic {
            topic: topic.to_string(),
            reason: error.to_string(),
        })?;
    for result in results {
        match result {
            Ok(name) => info!(topic = %name, "created topic"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                debug!(topic = %name, "topic exists")
            }
            Err((name, code)) => {
                return Err(KafkaPlumbingError::Topic {
                    topic: name,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}
