//! Conversations and the prompt: which chats and rooms are open, unread
//! counts in the ones not current, and the rules for changing the current
//! one (README, "The prompt and the current conversation"):
//!
//! - `/chat USER`, `/accept`, `/join ROOM`, `/create ROOM` and `/switch`
//!   (or Ctrl-X, the next one) are the user's own choice: they make the
//!   conversation current, and a line says so;
//! - `/msg` sends without switching, and nothing arriving (a request, a
//!   message) ever switches;
//! - when the current conversation ends (`/close`, `/leave`, the partner
//!   leaving) the next open one becomes current and a line says so, or,
//!   with none left, a line says there is none and the prompt is bare.

use super::{App, Target};
use crate::peer::ui::{prompt, UiEvent};
use std::collections::{BTreeMap, HashSet};

/// Open conversations (`bob`, `#lab`) in the order they opened, and unread
/// messages in each.
#[derive(Debug, Default)]
pub struct Conversations {
    pub open: Vec<String>,
    pub unread: BTreeMap<String, u32>,
    /// Chats being opened by `/msg`: they do not become current.
    pub quiet: HashSet<String>,
}

impl Conversations {
    fn add(&mut self, name: String) {
        if !self.open.contains(&name) {
            self.open.push(name);
        }
    }

    fn remove(&mut self, name: &str) {
        self.open.retain(|n| n != name);
        self.unread.remove(name);
    }

    /// Keeps the list and the counts up to date with what is shown.
    /// `current` is the current conversation's name.
    pub fn observe(&mut self, ev: &UiEvent, current: Option<&str>) {
        match ev {
            UiEvent::ChatAccepted { with } | UiEvent::ChatResumed { with } => {
                self.add(with.clone())
            }
            UiEvent::RoomJoined { room, .. } => self.add(format!("#{room}")),
            UiEvent::ChatClosed { with, .. } => {
                self.quiet.remove(with);
                self.remove(with)
            }
            // A `/msg` that did not open a chat: a later one may switch.
            UiEvent::ChatRejected { by: u, .. }
            | UiEvent::ChatTimeout { with: u }
            | UiEvent::Busy { user: u } => {
                self.quiet.remove(u);
            }
            UiEvent::RoomLeft { room } => self.remove(&format!("#{room}")),
            UiEvent::Message {
                chat, own: false, ..
            } if Some(chat.as_str()) != current => {
                *self.unread.entry(chat.clone()).or_default() += 1;
            }
            UiEvent::LoggedOut => *self = Conversations::default(),
            _ => {}
        }
    }

    /// The conversation after `current` in the list (the first without one).
    pub fn next_after(&self, current: Option<&str>) -> Option<String> {
        let at = current.and_then(|c| self.open.iter().position(|n| n == c));
        match at {
            Some(i) => self.open.get((i + 1) % self.open.len()).cloned(),
            None => self.open.first().cloned(),
        }
    }
}

fn target_of(name: &str) -> Target {
    match name.strip_prefix('#') {
        Some(room) => Target::Room(room.to_string()),
        None => Target::Chat(name.to_string()),
    }
}

impl App {
    fn current_name(&self) -> Option<String> {
        self.current.as_ref().map(|t| t.to_string())
    }

    /// Learns from an event shown: open conversations, unread counts, and
    /// the current one ending.
    pub(super) fn observe_conversations(&mut self, ev: &UiEvent) {
        let current = self.current_name();
        self.convos.observe(ev, current.as_deref());
        let ended = match ev {
            UiEvent::ChatClosed { with, .. } => Some(with.clone()),
            UiEvent::RoomLeft { room } => Some(format!("#{room}")),
            _ => None,
        };
        if ended.is_some() && ended == current {
            self.current = None;
            self.pending_move = true;
        }
    }

    /// The current room is being left (`/leave`, logging out): it is no
    /// longer one to move to.
    pub(super) fn current_left(&mut self, rooms: &[String]) {
        for r in rooms {
            self.convos.remove(&format!("#{r}"));
        }
        self.pending_move = true;
    }

    /// After the current conversation ended: the next open one becomes
    /// current, or a line says there is none. Runs once the event that
    /// ended it is shown, so the lines come in order.
    pub(super) fn move_current(&mut self) {
        if !std::mem::take(&mut self.pending_move) || self.current.is_some() {
            return;
        }
        match self.convos.next_after(None) {
            Some(next) => self.set_current(target_of(&next)),
            None => {
                self.notice("no current conversation now: /switch NAME, /chat USER or /join ROOM")
            }
        }
    }

    /// `/switch +` (and Ctrl-X): the next open conversation.
    pub(super) fn switch_next(&mut self) {
        let current = self.current_name();
        match self.convos.next_after(current.as_deref()) {
            Some(next) if Some(&next) != current.as_ref() => self.set_current(target_of(&next)),
            Some(_) => self.notice("no other conversation is open"),
            None => self.error("no_target", "no open chat or joined room to switch to"),
        }
    }

    /// The current conversation changed: its messages count as read.
    pub(super) fn mark_read(&mut self) {
        if let Some(c) = self.current_name() {
            self.convos.unread.remove(&c);
        }
    }

    /// Hands the prompt's text to the stdin thread (which redraws it when
    /// it changed).
    pub(super) fn update_prompt(&mut self) {
        let current = self.current_name();
        let no_registry = self.registry_unreachable();
        let text = prompt::text(current.as_deref(), &self.convos.unread, no_registry);
        self.prompt.set(text);
        let down = no_registry.then(|| self.unreachable_why().message);
        self.prompt.set_registry_down(down);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(chat: &str, own: bool) -> UiEvent {
        UiEvent::Message {
            from: "x".into(),
            chat: chat.into(),
            text: "t".into(),
            id: 1,
            own,
            queued: false,
            action: false,
            mention: false,
            late: false,
        }
    }

    #[test]
    fn counts_unread_outside_the_current_and_cycles_in_order() {
        let mut c = Conversations::default();
        c.observe(
            &UiEvent::RoomJoined {
                room: "lab".into(),
                members: vec![],
            },
            None,
        );
        c.observe(&UiEvent::ChatAccepted { with: "bob".into() }, Some("#lab"));
        c.observe(&msg("bob", false), Some("#lab"));
        c.observe(&msg("bob", false), Some("#lab"));
        c.observe(&msg("#lab", false), Some("#lab"));
        c.observe(&msg("bob", true), Some("#lab"));
        assert_eq!(c.unread.get("bob"), Some(&2));
        assert_eq!(c.unread.get("#lab"), None);
        assert_eq!(c.next_after(Some("#lab")).as_deref(), Some("bob"));
        assert_eq!(c.next_after(Some("bob")).as_deref(), Some("#lab"));
        assert_eq!(c.next_after(None).as_deref(), Some("#lab"));
        c.observe(
            &UiEvent::ChatClosed {
                with: "bob".into(),
                reason: "left the chat".into(),
            },
            Some("#lab"),
        );
        assert_eq!(c.open, vec!["#lab".to_string()]);
        assert!(c.unread.is_empty());
        c.observe(&UiEvent::RoomLeft { room: "lab".into() }, None);
        assert_eq!(c.next_after(None), None);
    }
}
