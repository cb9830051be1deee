//! Kafka plumbing of the invoker (rdkafka): the topic check at start, the producer of acks, pings and
//! events, and the feed that reads `invoker{N}`.
//!
//! Client settings are OpenWhisk's (docs/protocol.md §1), translated to librdkafka names.
//!
//! # Commit semantics (at most once, as OpenWhisk)
//!
//! The [`Feed`] polls, then **commits the offsets of what it polled synchronously, before the messages
//! are processed** (OpenWhisk's `MessageFeed`). A crash after the commit loses the messages in flight;
//! the controller's forced completion then frees their slots. Nothing is ever processed twice.
//!
//! # Backpressure
//!
//! The feed takes one permit of a shared semaphore per message before it polls for it; the permit
//! travels with the message and is dropped when the activation's slot-freeing ack has been sent. With
//! `permits = max_peek` a flood of messages waits in Kafka, not in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tracing::{debug, info, warn};

use crate::message::MAX_MESSAGE_BYTES;
use crate::metrics::Metrics;

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

/// A send that failed.
#[derive(Debug, Error)]
pub enum SendError {
    /// The record is larger than Kafka accepts (`RecordTooLargeException`): shrink and retry.
    #[error("record of {0} bytes is too large for Kafka")]
    TooLarge(usize),
    /// Any other failure.
    #[error("send failed: {0}")]
    Kafka(#[from] KafkaError),
}

/// The common client settings: bootstrap servers and `security.protocol=plaintext`.
fn common(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("security.protocol", "plaintext");
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

/// The producer of acks, pings and events (OpenWhisk's invoker producer: `acks=1`,
/// `max.request.size` = [`MAX_MESSAGE_BYTES`]).
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

impl Producer {
    /// A producer for `bootstrap`.
    pub fn new(bootstrap: &str) -> Result<Self, KafkaPlumbingError> {
        let inner = common(bootstrap)
            .set("acks", "1")
            .set("request.timeout.ms", "30000")
            .set("metadata.max.age.ms", "15000")
            .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
            .set("linger.ms", "0")
            .set("message.timeout.ms", SEND_TIMEOUT.as_millis().to_string())
            .create()
            .map_err(|source| KafkaPlumbingError::Client {
                client: "producer",
                source,
            })?;
        Ok(Self { inner })
    }

    /// Sends one record (null key, UTF-8 JSON value) and waits for the broker's ack.
    pub async fn send(&self, topic: &str, payload: &str) -> Result<(), SendError> {
        let record = FutureRecord::<(), str>::to(topic).payload(payload);
        match self.inner.send(record, Timeout::After(SEND_TIMEOUT)).await {
            Ok(_) => Ok(()),
            Err((error, _)) => match error.rdkafka_error_code() {
                Some(RDKafkaErrorCode::MessageSizeTooLarge)
                | Some(RDKafkaErrorCode::InvalidMessageSize) => {
                    Err(SendError::TooLarge(payload.len()))
                }
                _ => Err(SendError::Kafka(error)),
            },
        }
    }

    /// Waits (at most `timeout`) until every queued record has been delivered.
    pub fn flush(&self, timeout: Duration) {
        if let Err(error) = self.inner.flush(Timeout::After(timeout)) {
            warn!(%error, "flushing the producer failed");
        }
    }
}

/// One message taken from the invoker topic, with the permit that bounds work in flight.
#[derive(Debug)]
pub struct Delivered {
    /// The record value.
    pub payload: Vec<u8>,
    /// The record's offset.
    pub offset: i64,
    /// Drop it when the message's slot is freed.
    pub permit: OwnedSemaphorePermit,
}

/// The consumer of `invoker{N}`: a dedicated thread that polls, commits, and hands messages over.
#[derive(Debug)]
pub struct Feed {
    /// Messages, in topic order.
    pub messages: mpsc::Receiver<Delivered>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Settings of a feed.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// Bootstrap servers.
    pub bootstrap: String,
    /// The topic, also the group id (`invoker{N}`).
    pub topic: String,
    /// Permits: at most this many messages are in flight.
    pub permits: Arc<Semaphore>,
    /// Longest time the broker may hold a fetch when no data is there, ms. Default
    /// [`DEFAULT_FETCH_WAIT_MAX_MS`].
    pub fetch_wait_max_ms: u32,
}

impl Feed {
    /// Subscribes and starts the feed thread. Must be called inside a tokio runtime.
    pub fn start(config: FeedConfig, metrics: Arc<Metrics>) -> Result<Self, KafkaPlumbingError> {
        let consumer: BaseConsumer = common(&config.bootstrap)
            .set("group.id", &config.topic)
            .set("client.id", format!("consumer-{}", config.topic))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "30000")
            .set("heartbeat.interval.ms", "10000")
            .set("max.poll.interval.ms", "1800000")
            .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string())
            .set("fetch.message.max.bytes", MAX_MESSAGE_BYTES.to_string())
            .create()
            .map_err(|source| KafkaPlumbingError::Client {
                client: "consumer",
                source,
            })?;
        consumer
            .subscribe(&[&config.topic])
            .map_err(|source| KafkaPlumbingError::Subscribe {
                topic: config.topic.clone(),
                source,
            })?;
        let (tx, messages) = mpsc::channel(config.permits.available_permits().max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = tokio::runtime::Handle::current();
        let thread = std::thread::Builder::new()
            .name(format!("feed-{}", config.topic))
            .spawn({
                let stop = stop.clone();
                move || feed_loop(consumer, config, tx, stop, handle, metrics)
            })
            .map_err(KafkaPlumbingError::Thread)?;
        Ok(Self {
            messages,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops polling (within [`POLL_TIMEOUT`]) and leaves the group. Messages already handed over
    /// stay in [`Feed::messages`].
    pub async fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        // The thread notices within one poll and exits on its own.
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn feed_loop(
    consumer: BaseConsumer,
    config: FeedConfig,
    tx: mpsc::Sender<Delivered>,
    stop: Arc<AtomicBool>,
    handle: tokio::runtime::Handle,
    metrics: Arc<Metrics>,
) {
    let mut last_lag = Instant::now() - LAG_INTERVAL;
    let mut next_offset: Option<i64> = None;
    while !stop.load(Ordering::SeqCst) && !tx.is_closed() {
        // A permit first: never take a message the pool cannot start.
        let permit = handle.block_on(async {
            tokio::select! {
                permit = config.permits.clone().acquire_owned() => permit.ok(),
                () = tokio::time::sleep(POLL_TIMEOUT) => None,
            }
        });
        let Some(permit) = permit else { continue };
        let mut batch = Vec::new();
        let mut permit = Some(permit);
        let mut timeout = POLL_TIMEOUT;
        // Take as many messages as there are permits, then commit them all before handing them on.
        while let Some(held) = permit.take() {
            match consumer.poll(timeout) {
                None => {
                    permit = Some(held);
                    break;
                }
                Some(Err(error)) => {
                    warn!(%error, "poll failed");
                    permit = Some(held);
                    break;
                }
                Some(Ok(message)) => {
                    let payload = message.payload().map(<[u8]>::to_vec).unwrap_or_default();
                    let offset = message.offset();
                    let partition = message.partition();
                    batch.push((payload, offset, partition, held));
                    permit = config.permits.clone().try_acquire_owned().ok();
                    timeout = Duration::ZERO;
                }
            }
        }
        drop(permit);
        if batch.is_empty() {
            maybe_report_lag(
                &consumer,
                &config.topic,
                next_offset,
                &mut last_lag,
                &metrics,
            );
            continue;
        }
        let mut offsets = TopicPartitionList::new();
        for (_, offset, partition, _) in &batch {
            // One partition in practice; the last offset per partition wins.
            let _ =
                offsets.add_partition_offset(&config.topic, *partition, Offset::Offset(offset + 1));
            next_offset = Some(offset + 1);
        }
        if let Err(error) = consumer.commit(&offsets, CommitMode::Sync) {
            // OpenWhisk logs and goes on; the messages are still processed.
            warn!(%error, "synchronous commit failed");
        }
        for (payload, offset, _, permit) in batch {
            if tx
                .blocking_send(Delivered {
                    payload,
                    offset,
                    permit,
                })
                .is_err()
            {
                return;
            }
        }
        maybe_report_lag(
            &consumer,
            &config.topic,
            next_offset,
            &mut last_lag,
            &metrics,
        );
    }
    debug!(topic = %config.topic, "feed stopped");
}

fn maybe_report_lag(
    consumer: &BaseConsumer,
    topic: &str,
    next_offset: Option<i64>,
    last: &mut Instant,
    metrics: &Metrics,
) {
    if last.elapsed() < LAG_INTERVAL {
        return;
    }
    *last = Instant::now();
    match consumer.fetch_watermarks(topic, 0, Duration::from_secs(5)) {
        Ok((low, high)) => {
            let taken = next_offset.unwrap_or(low);
            metrics.consumer_lag.set((high - taken).max(0));
        }
        Err(error) => debug!(%error, "cannot read watermarks"),
    }
}
