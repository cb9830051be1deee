//! The health pinger: a [`PingMessage`] on `health` about every second while the invoker is enabled
//! (OpenWhisk's `InvokerReactive` schedule), one disabled ping when it is disabled, then silence;
//! and while it drains for shutdown, a disabled ping every second.
//!
//! The controller declares an invoker `Offline` after 10 s without a ping and at once on a ping with
//! `isEnabled: false`; the first enabled ping after that makes it test the invoker again. Draining
//! keeps saying "disabled" rather than falling silent so that a controller that missed (or had not
//! yet read) the first disabled ping cannot go on routing work to a node that no longer consumes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, info, warn};

use crate::kafka::{Producer, SendError};
use crate::message::{InvokerInstanceId, PingMessage};

/// Time between two pings (OpenWhisk: `scheduleWaitAtMost(1.second)`).
pub const PING_INTERVAL: Duration = Duration::from_secs(1);

/// What the pinger says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `isEnabled: true` every interval.
    Enabled,
    /// Silent (after one `isEnabled: false`): the admin `/disable`.
    Disabled,
    /// `isEnabled: false` every interval: shutting down. There is no way back.
    Draining,
}

/// Sends the pings. Owns its task; the task stops when the pinger is stopped or dropped.
#[derive(Debug)]
pub struct Pinger {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    /// Fires when the task has ended, for whatever reason (a panic included).
    ended: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    producer: Producer,
    topic: String,
    instance: InvokerInstanceId,
    mode: watch::Sender<Mode>,
    /// Serialises sends, so that no enabled ping can follow a disabled one.
    send_lock: Mutex<()>,
}

impl Shared {
    async fn send(&self, enabled: bool) -> Result<(), SendError> {
        let ping = PingMessage::new(self.instance.clone(), enabled);
        self.producer.send(&self.topic, &ping.to_json()).await
    }

    async fn send_disabled(&self) {
        if let Err(error) = self.send(false).await {
            warn!(%error, "sending the disabled ping failed");
        }
    }
}

impl Pinger {
    /// Starts pinging `topic` (`health` with the topic prefix) as `instance`, enabled.
    pub fn start(producer: Producer, topic: String, instance: InvokerInstanceId) -> Self {
        let (mode, _) = watch::channel(Mode::Enabled);
        let shared = Arc::new(Shared {
            producer,
            topic,
            instance,
            mode,
            send_lock: Mutex::new(()),
        });
        let cancel = CancellationToken::new();
        let ended = CancellationToken::new();
        let task = tokio::spawn(ping_loop(
            shared.clone(),
            cancel.clone(),
            ended.clone().drop_guard(),
        ));
        Self {
            shared,
            cancel,
            ended,
            task: std::sync::Mutex::new(Some(task)),
        }
    }

    /// This invoker's identity, as pinged.
    pub fn instance(&self) -> &InvokerInstanceId {
        &self.shared.instance
    }

    /// Whether enabled pings are being sent.
    pub fn is_enabled(&self) -> bool {
        *self.shared.mode.borrow() == Mode::Enabled
    }

    /// Resumes pinging; returns whether it was disabled (false: it already was enabled, or it is
    /// draining, which cannot be undone).
    pub async fn enable(&self) -> bool {
        let _guard = self.shared.send_lock.lock().await;
        let changed = self.shared.mode.send_if_modified(|mode| {
            let was_disabled = *mode == Mode::Disabled;
            if was_disabled {
                *mode = Mode::Enabled;
            }
            was_disabled
        });
        if changed {
            info!(invoker = %self.shared.instance, "enabled");
        }
        changed
    }

    /// Stops pinging after one ping with `isEnabled: false`; returns whether it was enabled (false:
    /// it already was disabled or draining, and nothing is sent).
    pub async fn disable(&self) -> bool {
        let _guard = self.shared.send_lock.lock().await;
        let changed = self.shared.mode.send_if_modified(|mode| {
            let was_enabled = *mode == Mode::Enabled;
            if was_enabled {
                *mode = Mode::Disabled;
            }
            was_enabled
        });
        if changed {
            info!(invoker = %self.shared.instance, "disabled");
            self.shared.send_disabled().await;
        }
        changed
    }

    /// Says `isEnabled: false` now and every interval from now on: the node is shutting down.
    pub async fn drain(&self) {
        let _guard = self.shared.send_lock.lock().await;
        self.shared.mode.send_replace(Mode::Draining);
        info!(invoker = %self.shared.instance, "draining: pinging disabled");
        self.shared.send_disabled().await;
    }

    /// Waits until the pinger's task has ended: after [`Pinger::stop`], or because it failed.
    pub async fn ended(&self) {
        self.ended.cancelled().await;
    }

    /// Stops the task; sends the disabled ping if enabled pings were still being sent.
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

async fn ping_loop(shared: Arc<Shared>, cancel: CancellationToken, _ended: DropGuard) {
    let mut changes = shared.mode.subscribe();
    loop {
        let started = tokio::time::Instant::now();
        {
            let _guard = shared.send_lock.lock().await;
            let mode = *shared.mode.borrow();
            let enabled = match mode {
                Mode::Enabled => Some(true),
                Mode::Draining => Some(false),
                Mode::Disabled => None,
            };
            if let Some(enabled) = enabled {
                match shared.send(enabled).await {
                    Ok(()) => debug!(enabled, "ping sent"),
                    Err(error) => warn!(%error, enabled, "ping failed"),
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
