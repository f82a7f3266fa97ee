//! Progress of a long send (a paste): while our messages to a room are
//! still on their way, the engine reports how many of the current run are
//! done, every [`SENDING_EVERY`], once the run has [`PASTE_MIN`] messages
//! and is older than [`PROGRESS_AFTER`]; and once when the last of them is
//! done (for any run of at least [`PASTE_MIN`]). A "run" starts when a message is said while none of ours
//! is outstanding in that room, and ends when none is.

use super::engine::{Engine, PROGRESS_AFTER};
use super::event::Event;
use std::time::{Duration, Instant};

/// Messages in a run before its progress is shown (fewer: each message's
/// own delivery report says enough).
pub const PASTE_MIN: u64 = 10;
/// Progress of a run is shown this often.
pub const SENDING_EVERY: Duration = Duration::from_millis(500);

/// The current run of our messages in one room.
pub(super) struct Run {
    /// Its first message id.
    pub first: u64,
    pub started: Instant,
    /// When its progress was last shown.
    pub shown: Option<Instant>,
}

impl Run {
    fn due(&self) -> Instant {
        match self.shown {
            None => self.started + PROGRESS_AFTER,
            Some(t) => t + SENDING_EVERY,
        }
    }
}

impl Engine {
    /// Message `id` was said in `room`: it starts a run, or joins one.
    pub(super) fn run_said(&mut self, room: &str, id: u64, now: Instant) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.run.get_or_insert(Run {
                first: id,
                started: now,
                shown: None,
            });
        }
    }

    /// A message of ours in `room` is done: when it was the last
    /// outstanding one, the run ends (reported when it was a paste: at
    /// least [`PASTE_MIN`] messages, or its progress showed).
    pub(super) fn run_check_end(&mut self, room: &str) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if !r.out.is_empty() {
            return;
        }
        let Some(run) = r.run.take() else {
            return;
        };
        let total = r.next_msg - run.first;
        if run.shown.is_some() || total >= PASTE_MIN {
            self.emit(Event::Sending {
                room: room.to_string(),
                done: total,
                total,
            });
        }
    }

    /// Shows the progress of every run that is due.
    pub(super) fn run_progress(&mut self, now: Instant) {
        let mut due = Vec::new();
        for (name, r) in self.rooms.iter_mut() {
            let Some(run) = r.run.as_mut() else {
                continue;
            };
            let total = r.next_msg - run.first;
            if total < PASTE_MIN || now < run.due() || r.out.is_empty() {
                continue;
            }
            run.shown = Some(now);
            let done = total.saturating_sub(r.out.len() as u64);
            due.push((name.clone(), done, total));
        }
        for (room, done, total) in due {
            self.emit(Event::Sending { room, done, total });
        }
    }

    /// When a run's progress is next due.
    pub(super) fn run_deadline(&self) -> Option<Instant> {
        self.rooms
            .values()
            .filter_map(|r| {
                let run = r.run.as_ref()?;
                (r.next_msg - run.first >= PASTE_MIN && !r.out.is_empty()).then(|| run.due())
            })
            .min()
    }
}
