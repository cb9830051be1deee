//! The health pinger: a [`PingMessage`] on `health` about every second while the invoker is enabled
//! (OpenWhisk's `InvokerReactive` schedule), one disabled ping when it is disabled, then silence.
//!
//! The controller declares an invoker `Offline` after 10 s without a ping and at once on a ping with
//! `isEnabled: false`; the first enabled ping after that makes it test the invoker again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::kafka::{Producer, SendError};
use crate::message::{InvokerInstanceId, PingMessage};

/// Time between two pings (OpenWhisk: `scheduleWaitAtMost(1.second)`).
pub const PING_INTERVAL: Duration = Duration::from_secs(1);

/// Sends the pings. Owns its task; the task stops when the pinger is stopped or dropped.
#[derive(Debug)]
pub struct Pinger {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    producer: Producer,
    topic: String,
    instance: InvokerInstanceId,
    enabled: watch::Sender<bool>,
    /// Serialises sends, so that no enabled ping can follow the disabled one.
    send_lock: Mutex<()>,
}

impl Shared {
    async fn send(&self, enabled: bool) -> Result<(), SendError> {
        let ping = PingMessage::new(self.instance.clone(), enabled);
        self.producer.send(&self.topic, &ping.to_json()).await
    }
}

impl Pinger {
    /// Starts pinging `topic` (`health` with the topic prefix) as `instance`, enabled.
    pub fn start(producer: Producer, topic: String, instance: InvokerInstanceId) -> Self {
        let (enabled, _) = watch::channel(true);
        let shared = Arc::new(Shared {
            producer,
            topic,
            instance,
            enabled,
            send_lock: Mutex::new(()),
        });
        let cancel = CancellationToken::new();
        let task = tokio::spawn(ping_loop(shared.clone(), cancel.clone()));
        Self {
            shared,
            cancel,
            task: std::sync::Mutex::new(Some(task)),
        }
    }

    /// This invoker's identity, as pinged.
    pub fn instance(&self) -> &InvokerInstanceId {
        &self.shared.instance
    }

    /// Whether pings are being sent.
    pub fn is_enabled(&self) -> bool {
        *self.shared.enabled.borrow()
    }

    /// Resumes pinging; returns whether it was disabled (false: it already was enabled).
    pub async fn enable(&self) -> bool {
        let _guard = self.shared.send_lock.lock().await;
        let changed = self
            .shared
            .enabled
            .send_if_modified(|enabled| !std::mem::replace(enabled, true));
        if changed {
            info!(invoker = %self.shared.instance, "enabled");
        }
        changed
    }

    /// Stops pinging after one ping with `isEnabled: false`; returns whether it was enabled (false:
    /// it already was disabled, and nothing is sent).
    pub async fn disable(&self) -> bool {
        let _guard = self.shared.send_lock.lock().await;
        let changed = self
            .shared
            .enabled
            .send_if_modified(|enabled| std::mem::replace(enabled, false));
        if changed {
            info!(invoker = %self.shared.instance, "disabled");
            if let Err(error) = self.shared.send(false).await {
                warn!(%error, "sending the disabled ping failed");
            }
        }
        changed
    }

    /// Stops the task; sends the disabled ping if pings were still being sent (shutdown).
    pub async fn stop(&self) {
        self.disable().await;
        self.cancel.cancel();
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn ping_loop(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut changes = shared.enabled.subscribe();
    loop {
        let started = tokio::time::Instant::now();
        {
            let _guard = shared.send_lock.lock().await;
            if *shared.enabled.borrow() {
                match shared.send(true).await {
                    Ok(()) => debug!("ping sent"),
                    Err(error) => warn!(%error, "ping failed"),
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            // Re-enabled: ping at once.
            changed = changes.changed() => if changed.is_err() { break },
            () = tokio::time::sleep_until(started + PING_INTERVAL) => {}
        }
    }
}
