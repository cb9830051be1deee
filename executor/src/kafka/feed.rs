//! The [`Feed`]: the consumer of `invoker{N}`, on a thread of its own.
//!
//! # Commit semantics (at most once, as OpenWhisk)
//!
//! The feed polls, then **commits the offsets of what it polled synchronously, before the messages
//! are processed** (OpenWhisk's `MessageFeed`). A crash after the commit loses the messages in flight;
//! the controller's forced completion then frees their slots. Nothing is ever processed twice.
//!
//! # Backpressure
//!
//! The feed takes one permit of a shared semaphore per message before it polls for it; the permit
//! travels with the message and is dropped when the activation's slot-freeing ack has been handed
//! to the producer. With `permits = max_peek` a flood of messages waits in Kafka, not in memory:
//! librdkafka's own prefetch is bounded too ([`prefetch_settings`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tracing::{debug, warn};

use super::{KafkaPlumbingError, LAG_INTERVAL, POLL_TIMEOUT, common};
use crate::message::MAX_MESSAGE_BYTES;
use crate::metrics::Metrics;
use crate::service::Watchdog;

/// Longest time the feed polls without holding its partition before it starts a new consumer.
/// A rejoin normally takes a few seconds; a member whose session expired during a broker stall can
/// wait for ever on a broker that does not answer its rejoin (Tansu), while a new member of the same
/// group is assigned at once. Longer than a rebalance of a healthy group, so a live group is never
/// disturbed.
pub const REJOIN_LIMIT: Duration = Duration::from_secs(45);

/// Longest time the feed goes without asking librdkafka whether it still holds its partition while
/// its polls keep returning messages. Asking (`rd_kafka_assignment`) is a synchronous round trip to
/// librdkafka's main thread, once a loop it cost a few µs and two thread wake-ups per activation
/// under load; a poll that returned a message shows the partition held a moment ago, and a poll that
/// came back empty (idle, or no partition) still makes the next loop ask. Far below [`REJOIN_LIMIT`]
/// and the seconds a rebalance takes, so the `assigned` watch lags a revocation by at most this.
pub const ASSIGNMENT_RECHECK: Duration = Duration::from_millis(500);

/// The record that makes the feed thread panic, in binaries built for tests only (the
/// `fault-injection` feature): the fault-injection suite proves a dead feed ends the process.
#[cfg(feature = "fault-injection")]
pub const INJECTED_FEED_PANIC: &[u8] = b"wasm-invoker-injected-feed-panic";

/// Most kilobytes librdkafka prefetches for the feed: two full fetches. Without a bound it would
/// hold up to 64 MiB (and 100,000 messages) past the permits; the feed never needs more than the
/// next fetch ready while one is handed over.
pub const PREFETCH_KBYTES: usize = 2 * MAX_MESSAGE_BYTES / 1024;

/// How long librdkafka waits before fetching again once its local queue reached the bounds, ms.
/// Its default (1,000 ms) is made for the default bounds (100,000 messages): with a queue of a few
/// messages it would add a second to every message behind a full queue.
pub const FETCH_QUEUE_BACKOFF_MS: u32 = 10;

/// librdkafka's prefetch bounds for a feed that holds at most `max_peek` messages: no more
/// messages queued locally than the pool can start (`queued.min.messages`), at most
/// [`PREFETCH_KBYTES`] (`queued.max.messages.kbytes`), and the next fetch soon after the queue
/// drains ([`FETCH_QUEUE_BACKOFF_MS`]).
pub fn prefetch_settings(max_peek: usize) -> [(&'static str, String); 3] {
    [
        ("queued.min.messages", max_peek.max(1).to_string()),
        ("queued.max.messages.kbytes", PREFETCH_KBYTES.to_string()),
        ("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS.to_string()),
    ]
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
    /// Whether the consumer holds its partition now (it becomes true once the node consumes).
    pub assigned: watch::Receiver<bool>,
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
        let max_peek = config.permits.available_permits();
        let consumer = subscribe(&config, max_peek)?;
        let (tx, messages) = mpsc::channel(config.permits.available_permits().max(1));
        let (holds, assigned) = watch::channel(false);
        let stop = Arc::new(AtomicBool::new(false));
        let handle = tokio::runtime::Handle::current();
        let thread = std::thread::Builder::new()
            .name(format!("feed-{}", config.topic))
            .spawn({
                let stop = stop.clone();
                move || {
                    let state = FeedState {
                        config,
                        max_peek,
                        tx,
                        stop,
                        handle,
                        metrics,
                        holds,
                    };
                    feed_loop(consumer, state)
                }
            })
            .map_err(KafkaPlumbingError::Thread)?;
        Ok(Self {
            messages,
            assigned,
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

/// A consumer of `config.topic` in group `config.topic`, subscribed.
fn subscribe(config: &FeedConfig, max_peek: usize) -> Result<BaseConsumer, KafkaPlumbingError> {
    let mut settings: ClientConfig = common(&config.bootstrap);
    for (key, value) in prefetch_settings(max_peek) {
        settings.set(key, value);
    }
    let consumer: BaseConsumer = settings
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
    Ok(consumer)
}

/// Whether `consumer` holds a partition now.
fn assigned(consumer: &BaseConsumer) -> bool {
    consumer
        .assignment()
        .is_ok_and(|assignment| assignment.count() > 0)
}

/// What the feed thread owns besides its consumer.
struct FeedState {
    config: FeedConfig,
    max_peek: usize,
    tx: mpsc::Sender<Delivered>,
    stop: Arc<AtomicBool>,
    handle: tokio::runtime::Handle,
    metrics: Arc<Metrics>,
    /// Publishes whether the consumer holds its partition.
    holds: watch::Sender<bool>,
}

fn feed_loop(mut consumer: BaseConsumer, state: FeedState) {
    let FeedState {
        config,
        max_peek,
        tx,
        stop,
        handle,
        metrics,
        holds,
    } = state;
    let mut watchdog = Watchdog::from_environment();
    let mut last_lag = Instant::now() - LAG_INTERVAL;
    let mut next_offset: Option<i64> = None;
    // Since when the consumer, while polling, has held no partition.
    let mut unassigned_since: Option<Instant> = None;
    // When the assignment was last asked for, and whether the last poll came back without a message.
    let mut last_check: Option<Instant> = None;
    let mut polled_empty = true;
    while !stop.load(Ordering::SeqCst) && !tx.is_closed() {
        // Once a loop: the loop runs at least every POLL_TIMEOUT while the feed is alive.
        watchdog.kick();
        // A permit first: never take a message the pool cannot start.
        // A free permit is taken at once; only without one does the thread wait on the runtime.
        let permit = match config.permits.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => handle.block_on(async {
                tokio::select! {
                    permit = config.permits.clone().acquire_owned() => permit.ok(),
                    () = tokio::time::sleep(POLL_TIMEOUT) => None,
                }
            }),
        };
        let Some(permit) = permit else { continue };
        // Asked unless the partition was held at the last check, the last poll brought messages and
        // that check is recent: a consumer without its partition is asked every loop, as before.
        let due = polled_empty
            || !*holds.borrow()
            || last_check.is_none_or(|at| at.elapsed() >= ASSIGNMENT_RECHECK);
        if due {
            last_check = Some(Instant::now());
            let holding = assigned(&consumer);
            holds.send_if_modified(|held| std::mem::replace(held, holding) != holding);
        }
        let holding = *holds.borrow();
        if holding {
            unassigned_since = None;
        } else if unassigned_since.get_or_insert_with(Instant::now).elapsed() >= REJOIN_LIMIT {
            warn!(topic = %config.topic, limit = ?REJOIN_LIMIT, "no partition assigned while polling: starting a new consumer");
            match subscribe(&config, max_peek) {
                Ok(fresh) => {
                    consumer = fresh;
                    metrics.consumer_restarts.inc();
                }
                Err(error) => warn!(%error, "cannot start a new consumer; keeping the old one"),
            }
            unassigned_since = None;
            last_check = None;
        }
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
                    #[cfg(feature = "fault-injection")]
                    if payload == INJECTED_FEED_PANIC {
                        panic!("injected feed panic (fault-injection hook)");
                    }
                    let offset = message.offset();
                    let partition = message.partition();
                    batch.push((payload, offset, partition, held));
                    permit = config.permits.clone().try_acquire_owned().ok();
                    timeout = Duration::ZERO;
                }
            }
        }
        drop(permit);
        polled_empty = batch.is_empty();
        // An empty poll skips the commit and the hand-over; either way the lag is reported once a
        // loop, below.
        if !batch.is_empty() {
            let mut offsets = TopicPartitionList::new();
            for (_, offset, partition, _) in &batch {
                // One partition in practice; the last offset per partition wins.
                let _ = offsets.add_partition_offset(
                    &config.topic,
                    *partition,
                    Offset::Offset(offset + 1),
                );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_prefetch_is_bounded_by_the_permits_and_two_fetches() {
        let settings = prefetch_settings(8);
        assert_eq!(settings[0], ("queued.min.messages", "8".to_string()));
        // 2 × 1,054,644 bytes = 2,059 KiB, far below librdkafka's default of 65,536 KiB.
        assert_eq!(
            settings[1],
            ("queued.max.messages.kbytes", "2059".to_string())
        );
        assert_eq!(prefetch_settings(0)[0].1, "1", "librdkafka refuses 0");
        assert_eq!(settings[2], ("fetch.queue.backoff.ms", "10".to_string()));
    }
}
