//! Tab completion on the terminal: command names, user names and room
//! names.
//!
//! The main loop knows the names (it owns all state); the stdin thread
//! completes. They share a [`Names`] behind a mutex: the main loop adds the
//! names it sees go by in [`Names::observe`] (online users from `/who`,
//! `/search`, chat partners and requests, rooms and their members), and the
//! line editor's [`LineHelper`] reads it. [`candidates`] is the pure rule.

use super::commands::HELP;
use super::ui::UiEvent;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Names known to the peer, for completion. Only grows (a user gone
/// offline can still be named in `/search`, a room left can be joined).
#[derive(Debug, Default, Clone)]
pub struct Names {
    pub users: BTreeSet<String>,
    pub rooms: BTreeSet<String>,
}

/// The names, shared by the main loop and the stdin thread.
pub type SharedNames = Arc<Mutex<Names>>;

/// At most this many names of each kind are kept (a `/who` on a big
/// registry pages, but many pages could add up).
const MAX_NAMES: usize = 10_000;

impl Names {
    fn user(&mut self, name: &str) {
        if !name.is_empty() && !name.starts_with('#') && self.users.len() < MAX_NAMES {
            self.users.insert(name.to_string());
        }
    }

    fn room(&mut self, name: &str) {
        let name = name.trim_start_matches('#');
        if !name.is_empty() && self.rooms.len() < MAX_NAMES {
            self.rooms.insert(name.to_string());
        }
    }

    /// Learns the names an event shown to the user carries.
    pub fn observe(&mut self, ev: &UiEvent) {
        match ev {
            UiEvent::Who { users, .. } => users.iter().for_each(|u| self.user(&u.username)),
            UiEvent::SearchResult { user, .. } => self.user(&user.username),
            UiEvent::ChatRequest { from: u }
            | UiEvent::ChatRequested { to: u }
            | UiEvent::ChatAccepted { with: u }
            | UiEvent::ChatResumed { with: u } => self.user(u),
            UiEvent::Message { from, chat, .. } => {
                self.user(from);
                if chat.starts_with('#') {
                    self.room(chat);
                }
            }
            UiEvent::RoomJoined { room, members } => {
                self.room(room);
                members.iter().for_each(|m| self.user(m));
            }
            UiEvent::MemberJoined { room, user } | UiEvent::MemberLeft { room, user, .. } => {
                self.room(room);
                self.user(user);
            }
            UiEvent::Rooms { rooms, .. } => rooms.iter().for_each(|r| self.room(&r.name)),
            UiEvent::Members { room, members, .. } => {
                self.room(room);
                members.iter().for_each(|m| self.user(&m.username));
            }
            _ => {}
        }
    }
}

/// What the argument of a command names.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    User,
    Room,
    Both,
}

fn arg_kind(verb: &str) -> Option<Kind> {
    Some(match verb {
        "chat" | "query" | "msg" | "search" | "whois" | "keys" | "accept" | "reject"
        | "decline" | "close" | "kick" | "ban" | "unban" | "op" | "deop" | "invite" => Kind::User,
        "join" | "leave" | "part" | "members" | "names" | "create" => Kind::Room,
        "switch" | "go" => Kind::Both,
        _ => return None,
    })
}

/// The command names (without `/`), as `/help` lists them.
fn command_names() -> impl Iterator<Item = &'static str> {
    HELP.iter()
        .filter_map(|(usage, _)| usage.strip_prefix('/'))
        .map(|u| u.split_whitespace().next().unwrap_or(u))
}

/// The completions of the word before `pos` in `line`: where the word
/// starts and the replacements (sorted, each ending with a space when it
/// ends the argument). Pure, for tests.
pub fn candidates(line: &str, pos: usize, names: &Names) -> (usize, Vec<String>) {
    let pos = pos.min(line.len());
    let Some(head) = line.get(..pos) else {
        return (pos, Vec::new());
    };
    let start = head.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = &head[start..];
    // Which word of the line this is (0: the first).
    let index = head[..start].split_whitespace().count();
    let verb = line.strip_prefix('/').map(|rest| {
        let verb = rest.split_whitespace().next().unwrap_or("");
        verb.to_ascii_lowercase()
    });
    let users = |prefix: &str, lead: &str| -> Vec<String> {
        names
            .users
            .iter()
            .filter(|u| u.starts_with(prefix))
            .map(|u| format!("{lead}{u} "))
            .collect()
    };
    let rooms = |prefix: &str| -> Vec<String> {
        let bare = prefix.strip_prefix('#').unwrap_or(prefix);
        let lead = if prefix.starts_with('#') { "#" } else { "" };
        names
            .rooms
            .iter()
            .filter(|r| r.starts_with(bare))
            .map(|r| format!("{lead}{r} "))
            .collect()
    };
    let found = match (&verb, index) {
        (Some(_), 0) => {
            let typed = word[1..].to_ascii_lowercase();
            let mut out: Vec<String> = command_names()
                .filter(|c| c.starts_with(&typed))
                .map(|c| format!("/{c} "))
                .collect();
            out.sort();
            out.dedup();
            out
        }
        (Some(verb), 1) => match arg_kind(verb) {
            Some(Kind::User) => users(word, ""),
            Some(Kind::Room) => rooms(word),
            Some(Kind::Both) if word.starts_with('#') => rooms(word),
            Some(Kind::Both) => {
                let mut out = users(word, "");
                out.extend(rooms(&format!("#{word}")));
                out
            }
            None => Vec::new(),
        },
        // `/msg bob TEXT`, `/who PREFIX`…: plain text from here on, where
        // only `@nick` completes.
        (Some(_), _) => at_nick(word, &users),
        // Plain text: `@nick`, or a nick as the line's first word.
        (None, 0) if !word.starts_with('@') && !word.is_empty() => users(word, ""),
        (None, _) => at_nick(word, &users),
    };
    (start, found)
}

fn at_nick(word: &str, users: &dyn Fn(&str, &str) -> Vec<String>) -> Vec<String> {
    match word.strip_prefix('@') {
        Some(prefix) => users(prefix, "@"),
        None => Vec::new(),
    }
}

/// The line editor's helper: completion only (no hints, colours or
/// multi-line validation).
pub struct LineHelper {
    pub names: SharedNames,
    /// The line being typed and the cursor, as last drawn (kept so a
    /// prompt redraw can give them back, see `term`).
    pub typed: Typed,
}

/// The line being typed and its cursor position.
pub type Typed = Arc<Mutex<(String, usize)>>;

impl rustyline::completion::Completer for LineHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let names = self.names.lock().map(|n| n.clone()).unwrap_or_default();
        Ok(candidates(line, pos, &names))
    }
}

impl rustyline::hint::Hinter for LineHelper {
    type Hint = String;

    /// No hints: called on every change of the line, it notes the line.
    fn hint(&self, line: &str, pos: usize, _: &rustyline::Context<'_>) -> Option<String> {
        if let Ok(mut t) = self.typed.lock() {
            t.0.clear();
            t.0.push_str(line);
            t.1 = pos;
        }
        None
    }
}
impl rustyline::highlight::Highlighter for LineHelper {}
impl rustyline::validate::Validator for LineHelper {}
impl rustyline::Helper for LineHelper {}

#[cfg(test)]
mod tests;
