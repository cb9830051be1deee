//! Notifications to the service manager (systemd `Type=notify`, `sd_notify(3)`): `READY=1` once the
//! node consumes its topic, `STOPPING=1` when it starts draining, and `WATCHDOG=1` from the feed's
//! loop, so that a feed that wedges (not one that dies: that ends the process) is restarted by
//! systemd's `WatchdogSec=`. Without `NOTIFY_SOCKET` (not under systemd, or in a container) every
//! call is a no-op.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tracing::{debug, info};

fn send(state: NotifyState<'_>) {
    if let Err(error) = sd_notify::notify(&[state]) {
        debug!(%error, "service manager notification failed");
    }
}

/// `READY=1`: the invoker consumes its topic.
pub fn ready() {
    info!("ready: consuming");
    send(NotifyState::Ready);
}

/// `STOPPING=1`: the invoker drains.
pub fn stopping() {
    send(NotifyState::Stopping);
}

/// `WATCHDOG=1` at half the interval the service manager asked for (`WATCHDOG_USEC`), from a
/// loop that calls [`Watchdog::kick`] far more often than that.
#[derive(Debug)]
pub struct Watchdog {
    every: Option<Duration>,
    last: Option<Instant>,
}

impl Watchdog {
    /// The watchdog the service manager asked for, if any.
    pub fn from_environment() -> Self {
        Self {
            every: sd_notify::watchdog_enabled().map(|timeout| timeout / 2),
            last: None,
        }
    }

    /// Says "alive" when half the watchdog interval has passed since the last time.
    pub fn kick(&mut self) {
        let Some(every) = self.every else { return };
        if self.last.is_some_and(|last| last.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        send(NotifyState::Watchdog);
    }
}
