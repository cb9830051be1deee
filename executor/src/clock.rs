//! The time source of every timer in the executor: pause grace, idle removal, prewarm expiry,
//! health checks.
//!
//! Production code uses [`SystemClock`] (tokio's monotonic time). Tests use [`ManualClock`], whose time
//! only moves when the test calls [`ManualClock::advance`], so a test can step over a 10 minute idle
//! timeout in microseconds while real work (wasm runs, Docker calls, Kafka) keeps using real time.
//! Activation records do not use this clock: their epoch-millisecond times come from the factories.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// A boxed sleep future, as [`Clock::sleep`] returns it.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A monotonic clock that timers read and sleep on.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;

    /// A future that completes once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// Real time: `Instant::now()` and `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Time that moves only when told to: for tests of timers.
///
/// Sleepers wake when [`ManualClock::advance`] moves the clock to or past their deadline.
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    offset: watch::Sender<Duration>,
}

impl ManualClock {
    /// A clock standing at the current real instant.
    pub fn new() -> Arc<Self> {
        let (offset, _) = watch::channel(Duration::ZERO);
        Arc::new(Self {
            base: Instant::now(),
            offset,
        })
    }

    /// Moves the clock forward by `duration` and wakes every sleeper whose deadline has come.
    pub fn advance(&self, duration: Duration) {
        self.offset.send_modify(|offset| *offset += duration);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + *self.offset.borrow()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        let target = *self.offset.borrow() + duration;
        let mut offsets = self.offset.subscribe();
        Box::pin(async move {
            // An error means the clock was dropped: time will never come, so sleep forever (the
            // owner of the sleeper is being torn down as well).
            if offsets.wait_for(|offset| *offset >= target).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_manual_clock_wakes_sleepers_only_when_advanced_far_enough() {
        let clock = ManualClock::new();
        let start = clock.now();
        let sleeper = tokio::spawn(clock.sleep(Duration::from_secs(10)));
        clock.advance(Duration::from_secs(9));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("sleeper woke")
            .expect("sleeper did not panic");
        assert_eq!(clock.now() - start, Duration::from_secs(10));
    }
}
