//! The delivery of one activation's acks, in the background of [`AckSender::acknowledge`].
//!
//! 1. Every ack is handed to the producer's queue, in order (a result before its completion); then
//!    the activation's slot is freed.
//! 2. Each ack's delivery is awaited in turn. An ack the broker did not take is handed over again
//!    after a back-off ([`RETRY_FIRST`] doubling to [`RETRY_MAX`]) until the retry window after the
//!    activation has passed; only then is it given up (`invoker_ack_failures_total`). A send that
//!    timed out or met a fatal producer error replaces the producer first, as OpenWhisk does.
//! 3. The user event goes out once, after the acks (it is telemetry: not retried).
//!
//! An ack too large for Kafka is sent again shrunk to the activation id, whether the local queue or
//! the broker refused it.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::AckSender;
use crate::kafka::{Pending, SendError};
use crate::log_throttle::{LogThrottle, Verdict};
use crate::message::AcknowledgementMessage;

/// First delay before an ack is handed over again.
pub const RETRY_FIRST: Duration = Duration::from_millis(100);
/// Longest delay between two tries of an ack: a broker that is back is used within this.
pub const RETRY_MAX: Duration = Duration::from_secs(5);

/// Warnings about acks being sent again, per interval (an outage fails every ack in flight).
static RETRY_LOG: LogThrottle = LogThrottle::new(3, Duration::from_secs(10));

/// One ack on its way.
#[derive(Debug)]
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
    async fn confirm(
        &self,
        topic: &str,
        mut ack: Ack,
        mut pending: Option<Pending>,
        deadline: Instant,
    ) {
        let mut delay = RETRY_FIRST;
        while let Some(queued) = pending.take() {
            let generation = queued.generation;
            match queued.delivered().await {
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
            pending = self.hand_over(topic, &mut ack, deadline).await;
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
