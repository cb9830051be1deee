//! [`RecordQueue`]: the activation records of the Kafka invoker, written behind its acks.
//!
//! OpenWhisk's `ContainerProxy` stores a record without waiting for the write, and its CouchDB
//! store batches records into `_bulk_docs` requests. Here an activation hands its record to the
//! queue and is done: its slot is free once its ack is with the producer, whatever the database
//! does. The queue
//!
//! - holds at most `capacity` records; a record that finds it full is **dropped**, counted
//!   (`invoker_activation_records_dropped_total`) and logged through a [`LogThrottle`]: memory stays
//!   bounded while CouchDB is away, and nothing ever waits on a store that hangs;
//! - writes in batches of up to [`BATCH`] through [`ActivationStore::store_batch`], [`WRITERS`]
//!   batches at a time; while one is in flight the next grows until it ends (or to [`GROW_TO`]);
//! - tries a batch again, with a back-off from [`RETRY_FIRST`] doubling to [`RETRY_MAX`], for as
//!   long as the store fails transiently ([`StoreError::is_transient`]: unreachable, timed out,
//!   5xx). A conflict on such a retry means the earlier try did write the record (its answer was
//!   lost): activation ids are unique, so the record is stored once;
//! - on [`RecordQueue::flush`] (shutdown) writes what it holds within a grace period, then drops
//!   and counts the rest.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, warn};

use super::{ActivationQuery, ActivationStore, StoreError, take_ready};
use crate::log_throttle::{LogThrottle, Verdict};
use crate::metrics::RecordMetrics;
use crate::record::WhiskActivation;

/// Default most records waiting to be written (`activation_store.queue_capacity`): a few minutes of
/// a busy node's records, a few hundred MB at worst (records carry results up to 1 MB).
pub const DEFAULT_RECORD_QUEUE_CAPACITY: usize = 10_000;
/// Most records per batch write (OpenWhisk's batcher: 500 per `_bulk_docs`).
pub const BATCH: usize = 500;
/// Batch writes in flight at once.
pub const WRITERS: usize = 4;
/// While a write is in flight, the next batch waits for it to end unless this many records wait
/// first. One request at a time then carries what arrived meanwhile: under load a
/// `_bulk_docs` request per few records cost the invoker (and the database) about as much CPU as
/// the rest of an activation's path (2026-12-03, benches/RESULTS-kafka.md); a lone record, or one
/// behind an idle writer, is still written at once. Meanwhile the records stay in the channel and
/// the worker sleeps: it is woken when the write ends, or by [`RecordQueue::offer`] once this many
/// wait, not by every record (a wake-up per record, often of the other tokio worker, cost a few
/// µs per activation).
pub const GROW_TO: usize = 100;
/// First delay before a failed batch is written again.
pub const RETRY_FIRST: Duration = Duration::from_millis(200);
/// Longest delay between two tries of a batch, so a database that is back is used within this.
pub const RETRY_MAX: Duration = Duration::from_secs(5);
/// Lines of each warning kept per [`LOG_INTERVAL`].
const LOG_FIRST: u32 = 3;
/// The throttles' interval.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The record was not queued: the queue is full (or stopped). It is counted as dropped.
#[derive(Debug, thiserror::Error)]
#[error("activation record dropped: the record queue is full")]
pub struct Dropped;

struct Shared {
    inner: Arc<dyn ActivationStore>,
    metrics: RecordMetrics,
    /// Fires when the flush grace is over: retries stop, what is left is dropped.
    abandon: CancellationToken,
    dropped_log: LogThrottle,
    retry_log: LogThrottle,
    /// Told by [`RecordQueue::offer`] when [`GROW_TO`] records wait.
    grown: Notify,
}

impl Shared {
    fn dropped(&self, count: usize, why: &str) {
        self.metrics.dropped.inc_by(count as u64);
        self.metrics.pending.dec_by(count as i64);
        if let Verdict::Log { suppressed } = self.dropped_log.admit() {
            error!(
                count,
                suppressed,
                why,
                "activation records dropped (invoker_activation_records_dropped_total)"
            );
        }
    }
}

/// A bounded queue of activation records in front of an [`ActivationStore`] (module docs).
pub struct RecordQueue {
    sender: mpsc::Sender<WhiskActivation>,
    shared: Arc<Shared>,
    /// Fires at [`RecordQueue::flush`]: the worker writes what is queued and ends.
    closing: CancellationToken,
    worker: TaskTracker,
}

impl std::fmt::Debug for RecordQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordQueue")
            .field(
                "queued",
                &(self.sender.max_capacity() - self.sender.capacity()),
            )
            .finish_non_exhaustive()
    }
}

impl RecordQueue {
    /// Starts the queue's worker over `inner`. Must be called inside a tokio runtime.
    pub fn start(inner: Arc<dyn ActivationStore>, capacity: usize, metrics: RecordMetrics) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let shared = Arc::new(Shared {
            inner,
            metrics,
            abandon: CancellationToken::new(),
            dropped_log: LogThrottle::new(LOG_FIRST, LOG_INTERVAL),
            retry_log: LogThrottle::new(LOG_FIRST, LOG_INTERVAL),
            grown: Notify::new(),
        });
        let closing = CancellationToken::new();
        let worker = TaskTracker::new();
        worker.spawn(run(shared.clone(), receiver, closing.clone()));
        worker.close();
        Self {
            sender,
            shared,
            closing,
            worker,
        }
    }

    /// Queues `activation` for writing; never waits.
    pub fn offer(&self, activation: WhiskActivation) -> Result<(), Dropped> {
        self.shared.metrics.pending.inc();
        match self.sender.try_send(activation) {
            Ok(()) => {
                let queued = self.sender.max_capacity() - self.sender.capacity();
                // With the first record, which the worker holds while a write is in flight, the
                // batch has GROW_TO. A permit is kept if the worker is not waiting: it then looks
                // once more.
                if queued + 1 >= GROW_TO {
                    self.shared.grown.notify_one();
                }
                Ok(())
            }
            Err(_) => {
                self.shared.dropped(1, "the record queue is full");
                Err(Dropped)
            }
        }
    }

    /// Stops taking records, writes what is queued, and waits for it at most `grace`; then drops
    /// (and counts) what could not be written. Returns how many records were dropped this way.
    pub async fn flush(&self, grace: Duration) -> u64 {
        let before = self.shared.metrics.dropped.get();
        self.closing.cancel();
        if tokio::time::timeout(grace, self.worker.wait())
            .await
            .is_err()
        {
            warn!(
                pending = self.shared.metrics.pending.get(),
                "activation records still unwritten after the grace period: dropping them"
            );
            self.shared.abandon.cancel();
            self.worker.wait().await;
        }
        self.shared.metrics.dropped.get() - before
    }
}

async fn run(
    shared: Arc<Shared>,
    mut receiver: mpsc::Receiver<WhiskActivation>,
    closing: CancellationToken,
) {
    let writers = Arc::new(Semaphore::new(WRITERS));
    // Told each time a write ends.
    let written = Arc::new(Notify::new());
    let writes = TaskTracker::new();
    loop {
        let first = tokio::select! {
            biased;
            next = receiver.recv() => match next {
                Some(record) => record,
                None => break,
            },
            // Only reached with the queue empty (the branch above is polled first).
            () = closing.cancelled() => break,
        };
        let mut batch = vec![first];
        // A write is in flight: the records wait in the channel until it ends, or until GROW_TO
        // of them wait (see GROW_TO: no wake-up per record).
        while batch.len() + receiver.len() < GROW_TO
            && writers.available_permits() < WRITERS
            && !closing.is_cancelled()
        {
            tokio::select! {
                biased;
                () = written.notified() => {}
                () = shared.grown.notified() => {}
                () = closing.cancelled() => {}
            }
        }
        take_ready(&mut receiver, &mut batch, BATCH);
        let Ok(permit) = writers.clone().acquire_owned().await else {
            break;
        };
        let shared = shared.clone();
        let written = written.clone();
        writes.spawn(async move {
            write(&shared, batch).await;
            drop(permit);
            written.notify_one();
        });
    }
    receiver.close();
    // Records offered while closing.
    let mut late = 0;
    while receiver.try_recv().is_ok() {
        late += 1;
    }
    if late > 0 {
        shared.dropped(late, "offered after shutdown began");
    }
    writes.close();
    writes.wait().await;
}

/// Writes `batch`, trying the transient failures again until they succeed or the queue abandons
/// them.
async fn write(shared: &Shared, mut batch: Vec<WhiskActivation>) {
    let mut delay = RETRY_FIRST;
    let mut retried = false;
    loop {
        let results = shared.inner.store_batch(&batch).await;
        let mut again = Vec::new();
        let mut last_error = None;
        for (record, result) in batch.into_iter().zip(results) {
            // A conflict on a retry: an earlier try wrote it and its answer was lost.
            let written = match result {
                Err(StoreError::Conflict) if retried => Ok(()),
                other => other,
            };
            match written {
                Ok(()) => {
                    shared.metrics.stored.inc();
                    shared.metrics.pending.dec();
                }
                Err(error) if error.is_transient() => {
                    last_error = Some(error);
                    again.push(record);
                }
                Err(error) => {
                    shared.metrics.failed.inc();
                    shared.metrics.pending.dec();
                    warn!(activation_id = %record.activation_id, %error, "activation record refused by the store");
                }
            }
        }
        let settled = again.len();
        if again.is_empty() {
            break;
        }
        if shared.abandon.is_cancelled() {
            shared.dropped(settled, "the store was still failing at shutdown");
            return;
        }
        shared.metrics.retries.inc();
        if let Verdict::Log { suppressed } = shared.retry_log.admit() {
            let error = last_error.map(|e| e.to_string()).unwrap_or_default();
            warn!(records = settled, retry_in = ?delay, suppressed, %error, "activation records not written yet: retrying");
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.abandon.cancelled() => {
                shared.dropped(settled, "the store was still failing at shutdown");
                return;
            }
        }
        delay = (delay * 2).min(RETRY_MAX);
        retried = true;
        batch = again;
    }
}

#[async_trait]
impl ActivationStore for RecordQueue {
    /// Queues the record ([`RecordQueue::offer`]); a full queue is [`StoreError::Transport`].
    async fn store(&self, activation: &WhiskActivation) -> Result<(), StoreError> {
        self.offer(activation.clone())
            .map_err(|dropped| StoreError::Transport(dropped.to_string()))
    }

    async fn get(
        &self,
        namespace: &str,
        activation_id: &str,
    ) -> Result<WhiskActivation, StoreError> {
        self.shared.inner.get(namespace, activation_id).await
    }

    async fn list(&self, query: &ActivationQuery) -> Result<Vec<WhiskActivation>, StoreError> {
        self.shared.inner.list(query).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;

    /// An in-memory activation store that fails every batch with a transport error while `down`
    /// is set, and that can lose the answer of its first successful write (the write happens, the
    /// caller sees a timeout), as a database that stalls mid-request does.
    #[derive(Default)]
    struct Flaky {
        down: std::sync::atomic::AtomicBool,
        lose_next_answer: std::sync::atomic::AtomicBool,
        stored: Mutex<Vec<String>>,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl ActivationStore for Flaky {
        async fn store(&self, _: &WhiskActivation) -> Result<(), StoreError> {
            unreachable!("the queue writes batches")
        }

        async fn store_batch(&self, batch: &[WhiskActivation]) -> Vec<Result<(), StoreError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return batch
                    .iter()
                    .map(|_| Err(StoreError::Transport("connection refused".into())))
                    .collect();
            }
            let mut stored = self.stored.lock().unwrap_or_else(PoisonError::into_inner);
            let lose = self.lose_next_answer.swap(false, Ordering::SeqCst);
            batch
                .iter()
                .map(|record| {
                    let id = record.activation_id.to_string();
                    if stored.contains(&id) {
                        return Err(StoreError::Conflict);
                    }
                    stored.push(id);
                    if lose {
                        Err(StoreError::Transport("request timed out".into()))
                    } else {
                        Ok(())
                    }
                })
                .collect()
        }

        async fn get(&self, _: &str, _: &str) -> Result<WhiskActivation, StoreError> {
            Err(StoreError::NotFound)
        }

        async fn list(&self, _: &ActivationQuery) -> Result<Vec<WhiskActivation>, StoreError> {
            Ok(Vec::new())
        }
    }

    use std::sync::PoisonError;

    fn record(n: usize) -> WhiskActivation {
        serde_json::from_value(json!({
            "namespace": "guest", "name": "a", "subject": "guest",
            "activationId": format!("{n:032x}"), "start": 1, "end": 2,
            "response": {"statusCode": 0, "result": {}},
            "logs": [], "version": "0.0.1", "publish": false, "duration": 1,
            "annotations": []
        }))
        .expect("a valid record")
    }

    #[tokio::test(start_paused = true)]
    async fn test_records_wait_for_a_store_that_is_away_and_are_written_once() {
        let store = Arc::new(Flaky::default());
        store.down.store(true, Ordering::SeqCst);
        let metrics = RecordMetrics::default();
        let queue = RecordQueue::start(store.clone(), 100, metrics.clone());
        for n in 0..10 {
            queue.offer(record(n)).expect("queued");
        }
        // A minute of outage: tries go on, nothing is dropped or stored.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(
            metrics.retries.get() >= 5,
            "retried: {}",
            metrics.retries.get()
        );
        assert_eq!(metrics.dropped.get(), 0);
        assert_eq!(metrics.pending.get(), 10);
        // Back, but the first write's answer is lost: the retry meets conflicts, which count as
        // stored.
        store.lose_next_answer.store(true, Ordering::SeqCst);
        store.down.store(false, Ordering::SeqCst);
        assert_eq!(queue.flush(Duration::from_secs(30)).await, 0);
        let stored = store.stored.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(stored.len(), 10, "every record once");
        assert_eq!(metrics.stored.get(), 10);
        assert_eq!(metrics.pending.get(), 0);
        assert_eq!(metrics.failed.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn test_a_full_queue_drops_without_waiting_and_shutdown_drops_what_is_left() {
        let store = Arc::new(Flaky::default());
        store.down.store(true, Ordering::SeqCst);
        let metrics = RecordMetrics::default();
        let queue = RecordQueue::start(store.clone(), 4, metrics.clone());
        let mut refused = 0;
        for n in 0..(4 + BATCH + 20) {
            if queue.offer(record(n)).is_err() {
                refused += 1;
            }
            // Let the worker take what it can.
            tokio::task::yield_now().await;
        }
        assert!(refused > 0, "a full queue refuses");
        assert_eq!(metrics.dropped.get(), refused);
        // Shutdown while the store is still away: the rest is dropped after the grace.
        let left = queue.flush(Duration::from_secs(3)).await;
        assert!(left > 0);
        assert_eq!(metrics.dropped.get(), refused + left);
        assert_eq!(metrics.stored.get(), 0);
        assert_eq!(metrics.pending.get(), 0, "every record accounted for");
    }
}
