//! Waiting on a condition that has no event of its own (a registry-side
//! state seen only by asking, a file, a process list): poll it with a
//! deadline. Anything that prints events is waited on through them instead.

use std::thread;
use std::time::{Duration, Instant};

/// Polls `cond` every `every` until it holds; panics with `what` after
/// `within`. Returns how long it took.
#[track_caller]
pub fn wait_until(
    within: Duration,
    every: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        if start.elapsed() >= within {
            panic!("timed out after {within:?} waiting for: {what}");
        }
        thread::sleep(every);
    }
}

/// [`wait_until`] polling every 2 ms, for conditions that are cheap to check.
#[track_caller]
pub fn poll(within: Duration, what: &str, cond: impl FnMut() -> bool) -> Duration {
    wait_until(within, Duration::from_millis(2), what, cond)
}
