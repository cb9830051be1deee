//! [`LogThrottle`]: the first few lines of one kind per interval, then silence and a count.
//!
//! Some warnings are driven by outsiders: every malformed message a producer writes to
//! `invoker{N}`, every failed write while CouchDB is away. Logging each one lets a bad producer or
//! a long outage flood the node's log (and its disk). A throttle keeps the first
//! [`LogThrottle::new`]`(first, ..)` lines of each interval; the first line after the interval says
//! how many were left out. The metrics count every event regardless.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What to do with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it; `suppressed` events of this kind were left out since the last logged one (say so
    /// when non-zero).
    Log {
        /// Events left out in the previous interval.
        suppressed: u64,
    },
    /// Leave it out (it is counted for the next logged line).
    Suppress,
}

/// Admits the first `first` events of each `interval`.
#[derive(Debug)]
pub struct LogThrottle {
    first: u32,
    interval: Duration,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl LogThrottle {
    /// Logs the first `first` events of every `interval`.
    pub const fn new(first: u32, interval: Duration) -> Self {
        Self {
            first,
            interval,
            window: Mutex::new(Window {
                started: None,
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether to log one event happening now.
    pub fn admit(&self) -> Verdict {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Verdict {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let expired = window
            .started
            .is_none_or(|started| now.duration_since(started) >= self.interval);
        if expired {
            let suppressed = std::mem::take(&mut window.suppressed);
            window.started = Some(now);
            window.logged = 1;
            return Verdict::Log { suppressed };
        }
        if window.logged < self.first {
            window.logged += 1;
            Verdict::Log { suppressed: 0 }
        } else {
            window.suppressed += 1;
            Verdict::Suppress
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_first_lines_pass_then_a_count_after_the_interval() {
        let throttle = LogThrottle::new(3, Duration::from_secs(10));
        let start = Instant::now();
        let verdicts: Vec<Verdict> = (0..1000).map(|_| throttle.admit_at(start)).collect();
        let logged = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Log { .. }))
            .count();
        assert_eq!(logged, 3, "only the first three of a flood are logged");
        assert_eq!(
            throttle.admit_at(start + Duration::from_secs(9)),
            Verdict::Suppress
        );
        assert_eq!(
            throttle.admit_at(start + Duration::from_secs(10)),
            Verdict::Log { suppressed: 998 },
            "the next line after the interval carries the count"
        );
        assert_eq!(
            throttle.admit_at(start + Duration::from_secs(11)),
            Verdict::Log { suppressed: 0 }
        );
    }
}
