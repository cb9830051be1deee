//! The [`Producer`] of acks, pings and events, and the errors of a send ([`SendError`]).
//!
//! A send has two halves: [`Producer::enqueue`] hands a record to librdkafka's local queue and
//! returns at once, and [`Pending::delivered`] waits for the broker's answer. The invoker frees an
//! activation's slot after the first half (docs/protocol.md §4) and keeps delivering in the
//! background ([`crate::ack`]).
//!
//! A broken producer is replaced ([`Producer::recreate`]), as OpenWhisk's
//! `KafkaProducerConnector` recreates its producer after a timeout: a fresh client starts from a
//! fresh metadata request and fresh connections, which is what a broker that moved or restarted
//! needs. The replacement is shared by every clone of the [`Producer`].
//!
//! # Delivery reports
//!
//! Each record carries a tokio oneshot as its librdkafka opaque; the delivery callback
//! ([`Deliveries`]) completes it. The callbacks run on one thread of ours per client that polls the
//! client's event queue. Not rust-rdkafka's `FutureProducer`/`ThreadedProducer`: their thread polls
//! 100 ms at a time and `BaseProducer::poll` rounds the remaining time down to whole milliseconds,
//! so the last millisecond of every poll is a busy loop (10 ms of CPU per second, idle or not). Ours
//! polls [`POLL_SPAN`] at a time, so that loop costs a tenth of that; a delivery report still wakes
//! the poll at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::util::Timeout;
use thiserror::Error;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::{KafkaPlumbingError, SEND_TIMEOUT, common};
use crate::message::MAX_MESSAGE_BYTES;

/// How long [`Producer::send`] waits for room in a full local queue before it gives up.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(50);

/// How long one poll of a client's event queue lasts. It returns early for nothing but its end, so
/// this is also how long a replaced client may live on after it was dropped (its queued records are
/// then purged). Its last millisecond is a busy loop (see the module doc): 1 ms of CPU per second.
const POLL_SPAN: Duration = Duration::from_secs(1);

/// The broker's answer for one record, as the delivery callback reports it.
type Report = Result<(), KafkaError>;

/// The producer's context: completes each record's oneshot with its delivery report.
struct Deliveries;

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<oneshot::Sender<Report>>;

    fn delivery(&self, result: &DeliveryResult<'_>, sender: Self::DeliveryOpaque) {
        let report = match result {
            Ok(_) => Ok(()),
            Err((error, _)) => Err(error.clone()),
        };
        // The receiver is gone when its sender stopped waiting (a cancelled delivery task).
        let _ = sender.send(report);
    }
}

/// A send that failed.
#[derive(Debug, Error)]
pub enum SendError {
    /// The record is larger than Kafka accepts (`RecordTooLargeException`): shrink and retry.
    #[error("record of {0} bytes is too large for Kafka")]
    TooLarge(usize),
    /// librdkafka's local queue is full: try again shortly.
    #[error("the producer's local queue is full")]
    QueueFull,
    /// The record was not delivered within `message.timeout.ms` (the broker is unreachable or
    /// stalled).
    #[error("not delivered within {}s", SEND_TIMEOUT.as_secs())]
    TimedOut,
    /// The producer that held the record went away (it was replaced) before an answer came.
    #[error("the producer was replaced before the record was delivered")]
    Abandoned,
    /// A fatal producer error: this client cannot send any more and must be replaced.
    #[error("fatal producer error: {0}")]
    Fatal(KafkaError),
    /// Any other failure.
    #[error("send failed: {0}")]
    Kafka(KafkaError),
}

impl SendError {
    fn classify(error: KafkaError, bytes: usize) -> Self {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Fatal) => Self::Fatal(error),
            Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize) => {
                Self::TooLarge(bytes)
            }
            Some(RDKafkaErrorCode::QueueFull) => Self::QueueFull,
            Some(RDKafkaErrorCode::MessageTimedOut | RDKafkaErrorCode::RequestTimedOut) => {
                Self::TimedOut
            }
            _ => Self::Kafka(error),
        }
    }

    /// Whether a new client could help: the producer is fatally broken, or records time out
    /// (OpenWhisk recreates its producer on a timeout).
    pub fn calls_for_a_new_producer(&self) -> bool {
        matches!(self, Self::Fatal(_) | Self::TimedOut)
    }
}

/// The producer of acks, pings and events (OpenWhisk's invoker producer: `acks=1`,
/// `max.request.size` = [`MAX_MESSAGE_BYTES`]). Clones share one client.
#[derive(Clone)]
pub struct Producer {
    shared: Arc<Shared>,
}

struct Shared {
    bootstrap: String,
    current: RwLock<Arc<Client>>,
    /// Bumped by every replacement, so that many failed sends replace the client once.
    generation: AtomicU64,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

/// A record in librdkafka's queue: await [`Pending::delivered`] for the broker's answer.
#[must_use = "a pending record says nothing until its delivery is awaited"]
pub struct Pending {
    report: oneshot::Receiver<Report>,
    bytes: usize,
    /// The producer generation that took the record.
    pub generation: u64,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("bytes", &self.bytes)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// Waits for the broker's answer (at most `message.timeout.ms`).
    pub async fn delivered(self) -> Result<(), SendError> {
        match self.report.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(SendError::classify(error, self.bytes)),
            Err(_) => Err(SendError::Abandoned),
        }
    }
}

/// One librdkafka producer and the thread that serves its delivery reports. Dropping it stops the
/// thread within [`POLL_SPAN`]; the thread then drops the producer, which purges what is still
/// queued (those records' reports say so) and joins librdkafka's threads, off the reactor.
struct Client {
    producer: Arc<BaseProducer<Deliveries>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Client {
    fn new(bootstrap: &str) -> Result<Self, KafkaPlumbingError> {
        let config = common(bootstrap)
            .set("acks", "1")
            .set("request.timeout.ms", "30000")
            .set("metadata.max.age.ms", "15000")
            .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
            .set("linger.ms", "0")
            .set("message.timeout.ms", SEND_TIMEOUT.as_millis().to_string())
            .clone();
        let producer = BaseProducer::from_config_and_context(&config, Deliveries)
            .map(Arc::new)
            .map_err(|source| KafkaPlumbingError::Client {
                client: "producer",
                source,
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        std::thread::Builder::new()
            .name("kafka-producer".into())
            .spawn({
                let producer = producer.clone();
                let stop = stop.clone();
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        producer.poll(POLL_SPAN);
                    }
                    debug!("producer poller stopped");
                }
            })
            .map_err(KafkaPlumbingError::Thread)?;
        Ok(Self { producer, stop })
    }
}

impl Producer {
    /// A producer for `bootstrap`.
    pub fn new(bootstrap: &str) -> Result<Self, KafkaPlumbingError> {
        Ok(Self {
            shared: Arc::new(Shared {
                bootstrap: bootstrap.to_string(),
                current: RwLock::new(Arc::new(Client::new(bootstrap)?)),
                generation: AtomicU64::new(0),
            }),
        })
    }

    /// How many times the client was replaced.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::SeqCst)
    }

    fn current(&self) -> (Arc<Client>, u64) {
        let current = self
            .shared
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        (current.clone(), self.generation())
    }

    /// Hands one record (null key, UTF-8 JSON value) to the local queue; returns at once.
    pub fn enqueue(&self, topic: &str, payload: &str) -> Result<Pending, SendError> {
        let (client, generation) = self.current();
        let (sender, report) = oneshot::channel();
        let record =
            BaseRecord::<(), str, _>::with_opaque_to(topic, Box::new(sender)).payload(payload);
        match client.producer.send(record) {
            Ok(()) => Ok(Pending {
                report,
                bytes: payload.len(),
                generation,
            }),
            Err((error, _)) => Err(SendError::classify(error, payload.len())),
        }
    }

    /// Sends one record and waits for the broker's ack (one attempt: at most [`SEND_TIMEOUT`]).
    pub async fn send(&self, topic: &str, payload: &str) -> Result<(), SendError> {
        let started = tokio::time::Instant::now();
        loop {
            match self.enqueue(topic, payload) {
                Ok(pending) => return pending.delivered().await,
                Err(SendError::QueueFull) if started.elapsed() < SEND_TIMEOUT => {
                    tokio::time::sleep(QUEUE_FULL_WAIT).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Replaces the client if it is still generation `seen` (the one a failed send used), so that
    /// a burst of failures replaces it once. Records still queued in the old client are abandoned
    /// ([`SendError::Abandoned`]) once nothing uses it any more; their senders send them again.
    pub fn recreate(&self, seen: u64) -> Result<bool, KafkaPlumbingError> {
        let mut current = self
            .shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if self.generation() != seen {
            return Ok(false);
        }
        let fresh = Arc::new(Client::new(&self.shared.bootstrap)?);
        // The old client closes on its poller thread once the last send holding it is done.
        drop(std::mem::replace(&mut *current, fresh));
        let generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        drop(current);
        info!(generation, "Kafka producer recreated");
        Ok(true)
    }

    /// Waits (at most `timeout`) until every queued record has been delivered.
    pub fn flush(&self, timeout: Duration) {
        let (client, _) = self.current();
        if let Err(error) = client.producer.flush(Timeout::After(timeout)) {
            warn!(%error, "flushing the producer failed");
        }
    }
}
