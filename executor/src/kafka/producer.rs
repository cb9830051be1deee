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
//! Each record carries its [`OnDelivery`] as its librdkafka opaque, and the delivery callback
//! ([`Deliveries`]) calls it. [`Producer::enqueue`]'s completes a tokio oneshot, which a task awaits
//! ([`Pending::delivered`]); [`Producer::enqueue_then`]'s runs the caller's own code, so that a
//! delivery nobody needs to wait for wakes no task. The callbacks run on one thread of ours per
//! client that polls the client's event queue. Not rust-rdkafka's `FutureProducer`/`ThreadedProducer`: their thread polls
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

/// The broker's answer for one record handed over with [`Producer::enqueue_then`].
#[derive(Debug)]
pub struct DeliveryReport {
    /// The producer generation that took the record (see [`Producer::recreate`]).
    pub generation: u64,
    /// Whether the broker took it.
    pub result: Result<(), SendError>,
}

/// What runs with a record's [`DeliveryReport`], on the producer's delivery thread: it must be quick
/// and must not block (hand anything longer to the runtime).
pub type OnDelivery = Box<dyn FnOnce(DeliveryReport) + Send + Sync>;

/// A record's librdkafka opaque: calls its [`OnDelivery`] exactly once, with the broker's answer or,
/// if librdkafka drops the record without one, with [`SendError::Abandoned`].
struct Delivery {
    bytes: usize,
    generation: u64,
    then: Option<OnDelivery>,
}

impl Delivery {
    fn report(mut self, result: Result<(), SendError>) {
        if let Some(then) = self.then.take() {
            then(DeliveryReport {
                generation: self.generation,
                result,
            });
        }
    }

    /// Drops the record's callback unused: the queue refused the record, and its sender was told.
    fn disarm(mut self) {
        self.then = None;
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(then) = self.then.take() {
            then(DeliveryReport {
                generation: self.generation,
                result: Err(SendError::Abandoned),
            });
        }
    }
}

/// The producer's context: runs each record's [`OnDelivery`] with its delivery report.
struct Deliveries;

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Delivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, delivery: Self::DeliveryOpaque) {
        let result = match result {
            Ok(_) => Ok(()),
            Err((error, _)) => Err(SendError::classify(error.clone(), delivery.bytes)),
        };
        delivery.report(result);
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
    /// `linger.ms` of every client, the replacements' too.
    linger_ms: f64,
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
    report: oneshot::Receiver<Result<(), SendError>>,
    /// The producer generation that took the record.
    pub generation: u64,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// Waits for the broker's answer (at most `message.timeout.ms`).
    pub async fn delivered(self) -> Result<(), SendError> {
        self.report.await.unwrap_or(Err(SendError::Abandoned))
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
    fn new(bootstrap: &str, linger_ms: f64) -> Result<Self, KafkaPlumbingError> {
        let config = common(bootstrap)
            .set("acks", "1")
            .set("request.timeout.ms", "30000")
            .set("metadata.max.age.ms", "15000")
            .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
            .set("linger.ms", linger_ms.to_string())
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
    /// A producer for `bootstrap` that sends each record at once
    /// ([`DEFAULT_PRODUCER_LINGER_MS`](super::DEFAULT_PRODUCER_LINGER_MS)).
    pub fn new(bootstrap: &str) -> Result<Self, KafkaPlumbingError> {
        Self::with_linger(bootstrap, super::DEFAULT_PRODUCER_LINGER_MS)
    }

    /// A producer for `bootstrap` whose records wait up to `linger_ms` for others to share their
    /// produce request (librdkafka's `linger.ms`; above
    /// [`MAX_PRODUCER_LINGER_MS`](super::MAX_PRODUCER_LINGER_MS) the configuration refuses it).
    pub fn with_linger(bootstrap: &str, linger_ms: f64) -> Result<Self, KafkaPlumbingError> {
        Ok(Self {
            shared: Arc::new(Shared {
                bootstrap: bootstrap.to_string(),
                linger_ms,
                current: RwLock::new(Arc::new(Client::new(bootstrap, linger_ms)?)),
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
        let (sender, report) = oneshot::channel();
        // The receiver is gone when its task stopped waiting (a cancelled delivery task).
        let then: OnDelivery = Box::new(move |delivered: DeliveryReport| {
            let _ = sender.send(delivered.result);
        });
        let generation = self.enqueue_then(topic, payload, then)?;
        Ok(Pending { report, generation })
    }

    /// Hands one record to the local queue like [`enqueue`](Self::enqueue), and runs `then` with
    /// its [`DeliveryReport`] on the delivery thread; returns the generation that took it. When the
    /// queue refuses the record, the error is returned here and `then` is dropped uncalled.
    pub fn enqueue_then(
        &self,
        topic: &str,
        payload: &str,
        then: OnDelivery,
    ) -> Result<u64, SendError> {
        let (client, generation) = self.current();
        let delivery = Box::new(Delivery {
            bytes: payload.len(),
            generation,
            then: Some(then),
        });
        let record = BaseRecord::<(), str, _>::with_opaque_to(topic, delivery).payload(payload);
        match client.producer.send(record) {
            Ok(()) => Ok(generation),
            Err((error, record)) => {
                record.delivery_opaque.disarm();
                Err(SendError::classify(error, payload.len()))
            }
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
        let fresh = Arc::new(Client::new(&self.shared.bootstrap, self.shared.linger_ms)?);
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A delivery whose callback sends what it was called with.
    fn delivery(generation: u64) -> (Delivery, mpsc::Receiver<DeliveryReport>) {
        let (sender, reports) = mpsc::channel();
        let then: OnDelivery = Box::new(move |report| {
            let _ = sender.send(report);
        });
        let delivery = Delivery {
            bytes: 10,
            generation,
            then: Some(then),
        };
        (delivery, reports)
    }

    #[test]
    fn test_a_report_runs_the_callback_once_with_its_generation() {
        let (delivery, reports) = delivery(7);
        delivery.report(Ok(()));
        let report = reports.try_recv().expect("the callback ran");
        assert_eq!(report.generation, 7);
        assert!(report.result.is_ok());
        assert!(reports.try_recv().is_err(), "the callback ran twice");
    }

    #[test]
    fn test_a_record_dropped_without_a_report_is_abandoned() {
        let (delivery, reports) = delivery(3);
        drop(delivery);
        let report = reports.try_recv().expect("the callback ran");
        assert_eq!(report.generation, 3);
        assert!(matches!(report.result, Err(SendError::Abandoned)));
    }

    #[test]
    fn test_a_disarmed_record_never_runs_its_callback() {
        let (delivery, reports) = delivery(0);
        delivery.disarm();
        assert!(matches!(
            reports.try_recv(),
            Err(mpsc::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn test_a_record_the_local_queue_refuses_is_returned_as_an_error_and_not_reported() {
        // No broker is needed (nothing listens on port 9): librdkafka checks a record's size against
        // `message.max.bytes` before it queues the record.
        let producer = Producer::new("127.0.0.1:9").expect("a client needs no broker to start");
        let (sender, reports) = mpsc::channel();
        let then: OnDelivery = Box::new(move |report: DeliveryReport| {
            let _ = sender.send(report.result.is_ok());
        });
        let huge = "x".repeat(MAX_MESSAGE_BYTES + 1);
        let refused = producer.enqueue_then("t", &huge, then);
        assert!(
            matches!(refused, Err(SendError::TooLarge(_))),
            "{refused:?}"
        );
        assert!(matches!(
            reports.try_recv(),
            Err(mpsc::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn test_every_linger_the_configuration_accepts_starts_a_producer() {
        use crate::kafka::{KafkaPlumbingError, MAX_PRODUCER_LINGER_MS, SEND_TIMEOUT};
        for linger_ms in [0.0, 0.5, 1.0, MAX_PRODUCER_LINGER_MS] {
            if let Err(error) = Producer::with_linger("127.0.0.1:9", linger_ms) {
                panic!("linger.ms {linger_ms}: {error}");
            }
        }
        // librdkafka itself refuses a linger that is not below the send timeout.
        let at_timeout = SEND_TIMEOUT.as_secs_f64() * 1_000.0;
        let refused = Producer::with_linger("127.0.0.1:9", at_timeout);
        assert!(
            matches!(
                refused,
                Err(KafkaPlumbingError::Client {
                    client: "producer",
                    ..
                })
            ),
            "{refused:?}"
        );
    }
}
