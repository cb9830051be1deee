//! The delivery of one activation's acks, in the background of [`AckSender::acknowledge`].
//!
//! 1. Every ack is handed to the producer's queue, in order (a result before its completion); then
//!    the activation's slot is freed.
//! 2. An ack the broker did not take is handed over again after a back-off ([`RETRY_FIRST`]
//!    doubling to [`RETRY_MAX`]) until the retry window after the activation has passed; only then
//!    is it given up (`invoker_ack_failures_total`). A send that timed out or met a fatal producer
//!    error replaces the producer first, as OpenWhisk does.
//! 3. The user event goes out once, after the acks are handed over (it is telemetry: not retried).
//!
//! Two ways to get there. The usual one ([`AckSender::hand_over_inline`]) runs no task: each ack's
//! delivery report is handled on the producer's delivery thread, where a success is only counted,
//! and only a failure starts a retrying task on the runtime. A task waiting for every delivery
//! would be woken from that thread for each report, a cross-thread wake-up per activation for
//! nothing but a counter. When the queue refuses an ack at once (full, or the record too large),
//! that ack and the ones after it take the other way: a task ([`AckSender::deliver`]) hands them
//! over with retries and awaits each delivery in turn.
//!
//! An ack too large for Kafka is sent again shrunk to the activation id, whether the local queue or
//! the broker refused it.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{Instrument, debug, warn};

use super::AckSender;
use crate::kafka::{DeliveryReport, OnDelivery, Pending, SendError};
use crate::log_throttle::{LogThrottle, Verdict};
use crate::message::AcknowledgementMessage;

/// First delay before an ack is handed over again.
pub const RETRY_FIRST: Duration = Duration::from_millis(100);
/// Longest delay between two tries of an ack: a broker that is back is used within this.
pub const RETRY_MAX: Duration = Duration::from_secs(5);

/// Warnings about acks being sent again, per interval (an outage fails every ack in flight).
static RETRY_LOG: LogThrottle = LogThrottle::new(3, Duration::from_secs(10));

/// One ack on its way.
#[derive(Debug, Clone)]
pub(super) struct Ack {
    kind: &'static str,
    message: AcknowledgementMessage,
    shrunk: bool,
    payload: String,
}

impl Ack {
    pub(super) fn new(kind: &'static str, message: AcknowledgementMessage, shrunk: bool) -> Self {
        let message = if shrunk { message.shrink() } else { message };
        let payload = message.to_json();
        Self {
            kind,
            message,
            shrunk,
            payload,
        }
    }

    /// Replaces the payload by the shrunk form; false when it already was shrunk.
    fn shrink(&mut self) -> bool {
        if self.shrunk {
            return false;
        }
        warn!(
            bytes = self.payload.len(),
            "ack too large for Kafka: sending it shrunk"
        );
        self.message = self.message.clone().shrink();
        self.payload = self.message.to_json();
        self.shrunk = true;
        true
    }
}

/// The next delay of a back-off.
fn next(delay: Duration) -> Duration {
    (delay * 2).min(RETRY_MAX)
}

impl AckSender {
    /// Hands `acks` to the producer's queue in order, each with a delivery callback and no task (see
    /// the module docs), then `event`. Returns, in order, the acks from the first one the queue
    /// refused on: they are for [`Self::deliver`], and so is the event when any are left.
    pub(super) fn hand_over_inline(
        &self,
        runtime: &Handle,
        topic: &str,
        acks: Vec<Ack>,
        event: &mut Option<(String, String)>,
    ) -> Vec<Ack> {
        let deadline = Instant::now() + self.retry_window;
        let mut acks = acks.into_iter();
        while let Some(ack) = acks.next() {
            let ack = Arc::new(ack);
            let then = self.on_delivery(runtime, topic, Arc::clone(&ack), deadline);
            if self
                .producer
                .enqueue_then(topic, &ack.payload, then)
                .is_err()
            {
                // The refused record's callback is dropped uncalled, so this is the last holder.
                let refused = Arc::unwrap_or_clone(ack);
                return std::iter::once(refused).chain(acks).collect();
            }
        }
        if let Some((topic, json)) = event.take() {
            let named = topic.clone();
            let then: OnDelivery = Box::new(move |delivered: DeliveryReport| {
                if let Err(error) = delivered.result {
                    warn!(%error, topic = %named, "user event failed");
                }
            });
            if let Err(error) = self.producer.enqueue_then(&topic, &json, then) {
                warn!(%error, %topic, "user event failed");
            }
        }
        Vec::new()
    }

    /// What `ack`'s delivery report does, on the producer's delivery thread: a success is counted
    /// there; a failure goes to a task on `runtime` that retries it as [`Self::deliver`] does. The
    /// callback holds a token of the deliveries in progress, so [`AckSender::flush`] waits for it.
    fn on_delivery(
        &self,
        runtime: &Handle,
        topic: &str,
        ack: Arc<Ack>,
        deadline: Instant,
    ) -> OnDelivery {
        let sender = self.clone();
        let runtime = runtime.clone();
        let topic = topic.to_string();
        let span = tracing::Span::current();
        let token = self.deliveries.token();
        Box::new(move |delivered: DeliveryReport| {
            if delivered.result.is_ok() {
                let _entered = span.enter();
                debug!(%topic, kind = ack.kind, shrunk = ack.shrunk, "ack sent");
                sender.metrics.ack(ack.kind, ack.shrunk);
                drop(token);
                return;
            }
            let ack = Arc::unwrap_or_clone(ack);
            runtime.spawn(
                async move {
                    let first = (delivered.generation, delivered.result);
                    sender.settle(&topic, ack, first, deadline).await;
                    drop(token);
                }
                .instrument(span),
            );
        })
    }

    /// Delivers `acks` in order, then `event`; `handed` fires once every ack is in the queue.
    pub(super) async fn deliver(
        &self,
        topic: String,
        acks: Vec<Ack>,
        event: Option<(String, String)>,
        handed: oneshot::Sender<()>,
    ) {
        let deadline = Instant::now() + self.retry_window;
        let mut queued = Vec::with_capacity(acks.len());
        for mut ack in acks {
            let pending = self.hand_over(&topic, &mut ack, deadline).await;
            queued.push((ack, pending));
        }
        let _ = handed.send(());
        for (ack, pending) in queued {
            self.confirm(&topic, ack, pending, deadline).await;
        }
        if let Some((topic, json)) = event
            && let Err(error) = self.producer.send(&topic, &json).await
        {
            warn!(%error, %topic, "user event failed");
        }
    }

    /// Puts `ack` in the producer's queue, trying again until `deadline`; `None` when given up.
    async fn hand_over(&self, topic: &str, ack: &mut Ack, deadline: Instant) -> Option<Pending> {
        let mut delay = RETRY_FIRST;
        loop {
            let error = match self.producer.enqueue(topic, &ack.payload) {
                Ok(pending) => return Some(pending),
                Err(SendError::TooLarge(_)) if ack.shrink() => continue,
                Err(error) => error,
            };
            if error.calls_for_a_new_producer() {
                self.renew(self.producer.generation());
            }
            if !self.wait_to_retry(ack, &error, &mut delay, deadline).await {
                return None;
            }
        }
    }

    /// Waits for `ack`'s delivery, handing it over again after each failure until `deadline`.
    async fn confirm(&self, topic: &str, ack: Ack, pending: Option<Pending>, deadline: Instant) {
        if let Some(queued) = pending {
            let first = (queued.generation, queued.delivered().await);
            self.settle(topic, ack, first, deadline).await;
        }
    }

    /// Settles `ack` from its `first` delivery report (the producer generation and the answer):
    /// counts a success, or hands it over again after each failure until `deadline`.
    async fn settle(
        &self,
        topic: &str,
        mut ack: Ack,
        first: (u64, Result<(), SendError>),
        deadline: Instant,
    ) {
        let mut delay = RETRY_FIRST;
        let (mut generation, mut result) = first;
        loop {
            match result {
                Ok(()) => {
                    debug!(%topic, kind = ack.kind, shrunk = ack.shrunk, "ack sent");
                    self.metrics.ack(ack.kind, ack.shrunk);
                    return;
                }
                Err(SendError::TooLarge(_)) if ack.shrink() => {}
                Err(error) => {
                    if error.calls_for_a_new_producer() {
                        self.renew(generation);
                    }
                    if !self.wait_to_retry(&ack, &error, &mut delay, deadline).await {
                        return;
                    }
                }
            }
            let Some(queued) = self.hand_over(topic, &mut ack, deadline).await else {
                return;
            };
            generation = queued.generation;
            result = queued.delivered().await;
        }
    }

    /// Sleeps before the next try of `ack`; false (and the ack counted as failed) when the
    /// deadline has passed.
    async fn wait_to_retry(
        &self,
        ack: &Ack,
        error: &SendError,
        delay: &mut Duration,
        deadline: Instant,
    ) -> bool {
        let now = Instant::now();
        if now >= deadline {
            warn!(%error, kind = ack.kind, "ack not delivered within the retry window: given up");
            self.metrics.ack_failures.inc();
            return false;
        }
        if !matches!(error, SendError::QueueFull) {
            self.metrics.ack_retries.inc();
            if let Verdict::Log { suppressed } = RETRY_LOG.admit() {
                warn!(%error, kind = ack.kind, retry_in = ?delay, suppressed, "ack not delivered: sending it again");
            }
        }
        tokio::time::sleep((*delay).min(deadline - now)).await;
        *delay = next(*delay);
        true
    }

    /// Replaces the producer if it is still generation `seen`; a producer that cannot be created
    /// any more is fatal.
    fn renew(&self, seen: u64) {
        match self.producer.recreate(seen) {
            Ok(true) => {
                self.metrics.producer_recreations.inc();
            }
            Ok(false) => {}
            Err(error) => self
                .fatal
                .raise(format!("cannot recreate the Kafka producer: {error}")),
        }
    }
}
