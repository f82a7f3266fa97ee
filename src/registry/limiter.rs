//! Throttling password guessing without locking the owner out.
//!
//! Failed logins are counted per source address and per (username,
//! address) pair, never per username alone: five wrong passwords for a
//! name must not keep its owner out (they did, for a minute, renewable for
//! ever, for any number of accounts).
//!
//! - An address with [`ADDRESS_LIMIT`] failures within the window is
//!   refused (`rate_limited`) for the block time, before any password is
//!   hashed, whatever name it tries: that stops one machine guessing.
//! - Each failure of a (name, address) pair delays that pair's next
//!   attempts progressively ([`FIRST_DELAY`], doubling, at most
//!   [`MAX_DELAY`]): the attempt is slowed down, not refused.
//! - An address without failures is neither delayed nor refused, so the
//!   owner gets in at once from their own machine while someone else is
//!   guessing their password from another.
//!
//! The state is in memory: each registry process limits what it sees.

use super::clock::{Clock, SystemClock};
use crate::protocol::{ApiError, ErrorCode};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failures within the window after which an address is refused.
pub const ADDRESS_LIMIT: usize = 5;
/// Delay after a pair's first failure; it doubles with each further one.
pub const FIRST_DELAY: Duration = Duration::from_millis(250);
/// The longest delay a pair's attempt waits.
pub const MAX_DELAY: Duration = Duration::from_secs(4);
/// Cap on tracked keys; past it, keys with nothing recent are dropped.
const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
struct Failures {
    recent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl Failures {
    /// Forgets failures older than `window`; how many are left.
    fn count(&mut self, now: Instant, window: Duration) -> usize {
        while self.recent.front().is_some_and(|t| now - *t >= window) {
            self.recent.pop_front();
        }
        self.recent.len()
    }

    fn stale(&self, now: Instant, window: Duration) -> bool {
        self.blocked_until.is_none_or(|u| u <= now)
            && self.recent.back().is_none_or(|t| now - *t >= window)
    }
}

#[derive(Default)]
struct State {
    addresses: HashMap<IpAddr, Failures>,
    pairs: HashMap<(String, IpAddr), Failures>,
}

pub struct LoginLimiter {
    window: Duration,
    block: Duration,
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
}

impl LoginLimiter {
    /// Failures count for `window`; a blocked address is refused for `block`.
    pub fn new(window: Duration, block: Duration) -> LoginLimiter {
        LoginLimiter {
            window,
            block,
            state: Mutex::new(State::default()),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same limiter, reading time from `clock`.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> LoginLimiter {
        LoginLimiter { clock, ..self }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Before a login attempt: `rate_limited` if the address is blocked,
    /// else how long the attempt must wait first (zero for a pair without
    /// recent failures).
    pub fn check(&self, username: &str, ip: IpAddr) -> Result<Duration, ApiError> {
        let now = self.clock.now();
        let mut state = self.state();
        if let Some(until) = state.addresses.get(&ip).and_then(|f| f.blocked_until) {
            if until > now {
                let secs = (until - now).as_secs() + 1;
                return Err(ApiError::new(
                    ErrorCode::RateLimited,
                    format!("too many failed logins from your address; try again in {secs} s"),
                ));
            }
        }
        let failures = state
            .pairs
            .get_mut(&(username.to_string(), ip))
            .map_or(0, |f| f.count(now, self.window));
        Ok(match failures {
            0 => Duration::ZERO,
            n => FIRST_DELAY
                .saturating_mul(1 << (n - 1).min(16))
                .min(MAX_DELAY),
        })
    }

    pub fn record_failure(&self, username: &str, ip: IpAddr) {
        let now = self.clock.now();
        let window = self.window;
        let mut state = self.state();
        if state.addresses.len() + state.pairs.len() >= MAX_TRACKED {
            state.addresses.retain(|_, f| !f.stale(now, window));
            state.pairs.retain(|_, f| !f.stale(now, window));
        }
        let address = state.addresses.entry(ip).or_default();
        address.count(now, window);
        address.recent.push_back(now);
        if address.recent.len() >= ADDRESS_LIMIT {
            address.blocked_until = Some(now + self.block);
            address.recent.clear();
        }
        let pair = state.pairs.entry((username.to_string(), ip)).or_default();
        pair.count(now, window);
        pair.recent.push_back(now);
    }

    /// A successful login clears its pair's failures (not the address's).
    pub fn record_success(&self, username: &str, ip: IpAddr) {
        self.state().pairs.remove(&(username.to_string(), ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::clock::ManualClock;

    fn limiter() -> (LoginLimiter, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        let l = LoginLimiter::new(Duration::from_secs(60), Duration::from_secs(60))
            .with_clock(clock.clone());
        (l, clock)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_pair_slows_down_progressively_and_the_owner_elsewhere_does_not() {
        let (l, clock) = limiter();
        let (guesser, owner) = (ip("10.0.0.66"), ip("10.0.0.7"));
        let mut delays = Vec::new();
        for _ in 0..4 {
            delays.push(l.check("bob", guesser).unwrap());
            l.record_failure("bob", guesser);
        }
        delays.push(l.check("bob", guesser).unwrap());
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 250, 500, 1000, 2000]);
        // The owner, from an address without failures: no delay at all.
        assert_eq!(l.check("bob", owner).unwrap(), Duration::ZERO);
        // Failures older than the window are forgotten.
        clock.advance(Duration::from_secs(61));
        assert_eq!(l.check("bob", guesser).unwrap(), Duration::ZERO);
    }

    #[test]
    fn an_address_with_five_failures_is_refused_for_every_name() {
        let (l, clock) = limiter();
        let a = ip("10.0.0.66");
        for name in ["u1", "u2", "u3", "u4", "u5"] {
            l.check(name, a).unwrap();
            l.record_failure(name, a);
        }
        for name in ["u1", "carol"] {
            assert_eq!(l.check(name, a).unwrap_err().code, ErrorCode::RateLimited);
        }
        assert_eq!(l.check("u1", ip("10.0.0.67")).unwrap(), Duration::ZERO);
        clock.advance(Duration::from_secs(61));
        assert!(l.check("carol", a).is_ok());
    }

    #[test]
    fn delays_are_capped_and_success_clears_the_pair() {
        let a = ip("10.0.0.66");
        // With no block time an address is never refused, so one pair can
        // pile up failures.
        let l = LoginLimiter::new(Duration::from_secs(60), Duration::ZERO);
        for _ in 0..30 {
            l.record_failure("bob", a);
        }
        assert_eq!(l.check("bob", a).unwrap(), MAX_DELAY);
        l.record_success("bob", a);
        assert_eq!(l.check("bob", a).unwrap(), Duration::ZERO);
    }
}
