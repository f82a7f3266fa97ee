//! One line per message sent (human-readable output only).
//!
//! Our own message is not printed at once: it waits for its delivery
//! state, at most [`ECHO_WAIT`], and is then printed once, with a mark:
//! `✓` when the partner, or every member of the room, acknowledged it
//! (within milliseconds on a LAN), `(nobody else here)`, `(28/30 so far)`
//! or `(not acknowledged yet)` when a second passed first, or
//! `2 of 30 missed: carol, dave` when the room engine gave up on some. A
//! message printed before it was settled gets one more line when it
//! settles (delivered, or the members it missed). Progress lines are not
//! printed; a message queued for an interrupted chat is printed at once,
//! marked `(queued)`. `--json` is unchanged: `message` at once, then
//! `delivery` / `delivery_failed` (rooms) or `chat_delivered` (chats).

use super::{Ui, UiEvent};
use colored::Colorize;
use std::time::{Duration, Instant};

/// How long our room message waits for its delivery state before it is
/// printed anyway.
pub const ECHO_WAIT: Duration = Duration::from_secs(1);

/// At most this many messages wait (then the oldest is printed).
const MAX_HELD: usize = 256;

pub(super) struct Held {
    /// `#room` or the chat partner's name.
    conv: String,
    id: u64,
    ev: UiEvent,
    unverified: bool,
    since: Instant,
    /// Acknowledged of total, from a progress report.
    progress: Option<(usize, usize)>,
}

/// The held messages, and the ones printed before they settled.
#[derive(Default)]
pub(super) struct Echoes {
    held: Vec<Held>,
    /// (conversation, id, total) printed unsettled.
    early: Vec<(String, u64, usize)>,
}

impl Ui {
    /// Handles our room messages and their delivery reports; gives back
    /// any other event, to print as usual.
    pub(super) fn echo(&mut self, ev: UiEvent, unverified: bool) -> Option<UiEvent> {
        match ev {
            UiEvent::Message {
                ref chat,
                own: true,
                queued: false,
                id,
                ..
            } => {
                let conv = chat.clone();
                if self.echoes.held.len() >= MAX_HELD {
                    let oldest = self.echoes.held.remove(0);
                    self.print_early(oldest);
                }
                self.echoes.held.push(Held {
                    conv,
                    id,
                    ev,
                    unverified,
                    since: Instant::now(),
                    progress: None,
                });
                None
            }
            UiEvent::ChatDelivered { ref with, id } => {
                while let Some(i) = self
                    .echoes
                    .held
                    .iter()
                    .position(|h| h.conv == *with && h.id <= id)
                {
                    let h = self.echoes.held.remove(i);
                    self.print_marked(h, "✓".green().to_string());
                }
                // Printed already: one line saying they got there.
                let before = self.echoes.early.len();
                self.echoes
                    .early
                    .retain(|(c, i, _)| !(c == with && *i <= id));
                (self.echoes.early.len() < before).then_some(ev)
            }
            UiEvent::Delivery {
                ref room,
                id,
                acked,
                total,
            } => {
                let room = &format!("#{room}");
                let at = self.held_at(room, id);
                match at {
                    Some(i) if acked < total => {
                        self.echoes.held[i].progress = Some((acked, total));
                        None
                    }
                    Some(i) => {
                        let h = self.echoes.held.remove(i);
                        let mark = if total == 0 {
                            format!("({})", "nobody else here".dimmed())
                        } else {
                            "✓".green().to_string()
                        };
                        self.print_marked(h, mark);
                        None
                    }
                    // Printed already: one line once it is all delivered.
                    None if acked == total && self.take_early(room, id).is_some() => Some(ev),
                    None => None,
                }
            }
            UiEvent::DeliveryFailed {
                ref room,
                id,
                ref missing,
            } => {
                let room = &format!("#{room}");
                let total = match self.held_at(room, id) {
                    Some(i) => self.echoes.held[i].progress.map(|(_, t)| t),
                    None => self.early_total(room, id),
                };
                let names = missing.join(", ");
                let missed = match total {
                    Some(t) if t > 0 => format!("{} of {t} missed: {names}", missing.len()),
                    _ => format!("missed: {names}"),
                };
                match self.held_at(room, id) {
                    Some(i) => {
                        let h = self.echoes.held.remove(i);
                        self.print_marked(h, missed.red().to_string());
                        None
                    }
                    None => {
                        self.take_early(room, id);
                        let line = format!(
                            "{} {room} message {id}: {}",
                            "!!".red().bold(),
                            missed.red()
                        );
                        self.print_human(line, false);
                        None
                    }
                }
            }
            // What ends a conversation (or the peer) first shows what was
            // still waiting in it.
            UiEvent::ChatClosed { ref with, .. } => {
                self.flush(|c| c == with);
                Some(ev)
            }
            UiEvent::RoomLeft { ref room } => {
                let room = format!("#{room}");
                self.flush(|c| *c == room);
                Some(ev)
            }
            UiEvent::LoggedOut | UiEvent::Bye => {
                self.flush(|_| true);
                Some(ev)
            }
            other => Some(other),
        }
    }

    /// Prints, as they stand, the waiting messages of the conversations
    /// `which` picks.
    fn flush(&mut self, which: impl Fn(&str) -> bool) {
        while let Some(i) = self.echoes.held.iter().position(|h| which(&h.conv)) {
            let h = self.echoes.held.remove(i);
            self.print_early(h);
        }
    }

    /// Prints the messages that waited a second (`ECHO_WAIT`).
    pub fn tick(&mut self, now: Instant) {
        while let Some(i) = self
            .echoes
            .held
            .iter()
            .position(|h| now >= h.since + ECHO_WAIT)
        {
            let h = self.echoes.held.remove(i);
            self.print_early(h);
        }
    }

    /// When [`Ui::tick`] is next due.
    pub fn deadline(&self) -> Option<Instant> {
        self.echoes.held.iter().map(|h| h.since + ECHO_WAIT).min()
    }

    fn held_at(&self, conv: &str, id: u64) -> Option<usize> {
        self.echoes
            .held
            .iter()
            .position(|h| h.conv == conv && h.id == id)
    }

    fn take_early(&mut self, room: &str, id: u64) -> Option<usize> {
        let i = self
            .echoes
            .early
            .iter()
            .position(|(r, i, _)| r == room && *i == id)?;
        Some(self.echoes.early.remove(i).2)
    }

    fn early_total(&self, room: &str, id: u64) -> Option<usize> {
        self.echoes
            .early
            .iter()
            .find(|(r, i, _)| r == room && *i == id)
            .map(|(_, _, t)| *t)
    }

    /// Prints a message not yet settled, with what is known so far.
    fn print_early(&mut self, h: Held) {
        let total = h.progress.map_or(0, |(_, t)| t);
        let mark = match h.progress {
            Some((acked, total)) => format!("({acked}/{total} so far)"),
            None => "(not acknowledged yet)".into(),
        };
        if self.echoes.early.len() >= MAX_HELD {
            self.echoes.early.remove(0);
        }
        self.echoes.early.push((h.conv.clone(), h.id, total));
        self.print_marked(h, mark.dimmed().to_string());
    }

    fn print_marked(&mut self, h: Held, mark: String) {
        let line = format!("{} {mark}", self.line(h.ev));
        self.print_human(line, h.unverified);
    }
}
