//! Rate and time left of a transfer, estimated by `indicatif` (its bar is
//! never drawn: the main loop prints the line, so the prompt that the
//! stdin thread draws is not garbled), and how often it is shown.

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressDrawTarget};
use std::time::{Duration, Instant};

/// At a terminal, a progress line at most this often per transfer.
pub const HUMAN_EVERY: Duration = Duration::from_secs(1);

pub struct Progress {
    bar: ProgressBar,
    shown: Option<Instant>,
}

impl Progress {
    pub fn new(size: u64) -> Progress {
        Progress {
            bar: ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::hidden()),
            shown: None,
        }
    }

    /// Records `done` bytes; `(rate in bytes/s, seconds left)`.
    pub fn update(&mut self, done: u64) -> (u64, u64) {
        self.bar.set_position(done);
        let elapsed = self.bar.elapsed().as_secs_f64();
        if self.bar.length() == Some(done) && elapsed > 0.0 {
            // Finished: the average, not the estimate of the last step
            // (which is absurd when it all came in one report).
            return ((done as f64 / elapsed) as u64, 0);
        }
        (self.bar.per_sec() as u64, self.bar.eta().as_secs())
    }

    /// Whether a line is due now (and notes that it is shown).
    pub fn due(&mut self, now: Instant, last: bool) -> bool {
        if last
            || self
                .shown
                .is_none_or(|t| now.duration_since(t) >= HUMAN_EVERY)
        {
            self.shown = Some(now);
            return true;
        }
        false
    }
}

/// `[#######-------]  45%  90.0 MiB of 200.0 MiB, 12.3 MiB/s, 9 seconds left`
pub fn line(done: u64, size: u64, rate: u64, left: u64) -> String {
    const WIDTH: u64 = 20;
    let filled = done
        .saturating_mul(WIDTH)
        .checked_div(size)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let pct = done.saturating_mul(100).checked_div(size).unwrap_or(100);
    format!(
        "[{}{}] {pct:>3}%  {} of {}, {}/s, {} left",
        "#".repeat(filled as usize),
        "-".repeat((WIDTH - filled) as usize),
        HumanBytes(done),
        HumanBytes(size),
        HumanBytes(rate),
        HumanDuration(Duration::from_secs(left)),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_shows_bar_rate_and_time_left() {
        let l = super::line(50, 100, 10, 5);
        assert!(l.starts_with("[##########----------]  50%"), "{l}");
        assert!(l.contains("10 B/s") && l.contains("5 seconds left"), "{l}");
        assert!(super::line(0, 0, 0, 0).contains("100%"));
    }
}
