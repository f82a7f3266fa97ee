//! Time as the registry's logic sees it.
//!
//! Everything that decides by time (session time-outs, heartbeats, the
//! resume grace period, the login rate limiter) asks a [`Clock`] instead of
//! reading the system clock, so tests can drive it with a [`ManualClock`].
//! Socket time-outs and thread pacing stay on real time: they wait, they do
//! not decide.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of time, shared by every client thread.
pub trait Clock: Send + Sync {
    /// Monotonic time, for intervals measured within this process.
    fn now(&self) -> Instant;
    /// Wall-clock milliseconds since the Unix epoch, for times kept in the
    /// store (shared by every registry using it).
    fn now_ms(&self) -> i64;
    /// Lets `d` pass (a deliberate delay, such as a slowed-down login): the
    /// real clock sleeps, a manual one moves forward.
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }

    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that stands still until [`advance`](ManualClock::advance)d; both
/// readings move together.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    start_ms: i64,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    /// A clock reading `start_ms` on the wall clock.
    pub fn new(start_ms: i64) -> ManualClock {
        ManualClock {
            start: Instant::now(),
            start_ms,
            elapsed: Mutex::new(Duration::ZERO),
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.elapsed.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }

    fn elapsed(&self) -> Duration {
        *self.elapsed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for ManualClock {
    /// Starts on 2023-11-14 (any fixed time would do).
    fn default() -> ManualClock {
        ManualClock::new(1_700_000_000_000)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.elapsed()
    }

    fn now_ms(&self) -> i64 {
        self.start_ms + self.elapsed().as_millis() as i64
    }

    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let c = ManualClock::new(5_000);
        let t0 = c.now();
        assert_eq!((c.now(), c.now_ms()), (t0, 5_000));
        c.advance(Duration::from_millis(1_500));
        assert_eq!(c.now() - t0, Duration::from_millis(1_500));
        assert_eq!(c.now_ms(), 6_500);
    }

    #[test]
    fn system_clock_is_recent() {
        // After 2020-01-01.
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
        assert!(SystemClock.now() <= Instant::now());
    }
}
