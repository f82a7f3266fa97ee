//! The one sanitiser between the network and the terminal.
//!
//! Every string a [`UiEvent`] carries may have come from a peer or the
//! registry (names, reasons, notices, error messages, room names, message
//! text). [`event`] rewrites each of them with [`clean`] before the event is
//! rendered for a person, so no field can drive the terminal: the match in
//! [`event`] names every variant and every field, and a new one does not
//! compile until it is sanitised too. `--json` output is left exact (JSON
//! escapes every C0 control itself, and programs need the data as sent).
//!
//! [`clean`] replaces with U+FFFD: C0 controls but tab (so ESC, BEL, CR, LF
//! and backspace), DEL and C1 controls (U+0080–U+009F, where U+009B is a
//! one-character CSI), bidirectional controls (U+061C, U+200E, U+200F,
//! U+202A–U+202E, U+2066–U+2069, which reorder what is shown) and the line
//! and paragraph separators U+2028/U+2029. It keeps at most
//! [`MAX_MARKS`] combining marks in a row, so a flood of them cannot smear
//! over other lines.

use super::UiEvent;
use crate::protocol::{Address, RoomSummary, UserInfo};
use std::borrow::Cow;

/// Combining marks kept after one base character (enough for any real
/// script's stacking; "zalgo" text uses dozens).
pub const MAX_MARKS: usize = 3;

fn is_hostile(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}'
        )
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// The generic combining-mark blocks (the ones stacked in mark floods).
fn is_combining(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}')
}

/// `s` with everything that could drive or garble the terminal replaced
/// (see the module docs); borrowed when there was nothing to replace.
pub fn clean(s: &str) -> Cow<'_, str> {
    let mut marks = 0;
    let harmless = s.chars().all(|c| {
        marks = if is_combining(c) { marks + 1 } else { 0 };
        !is_hostile(c) && marks <= MAX_MARKS
    });
    if harmless {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut marks = 0;
    for c in s.chars() {
        if is_combining(c) {
            marks += 1;
            if marks > MAX_MARKS {
                continue;
            }
        } else {
            marks = 0;
        }
        out.push(if is_hostile(c) { '\u{FFFD}' } else { c });
    }
    Cow::Owned(out)
}

fn s(text: &mut String) {
    if let Cow::Owned(c) = clean(text) {
        *text = c;
    }
}

fn address(a: &mut Address) {
    s(&mut a.ip);
}

fn user(u: &mut UserInfo) {
    s(&mut u.username);
    if let Some(a) = &mut u.address {
        address(a);
    }
}

/// A map of names to texts, both cleaned.
fn texts(map: &mut std::collections::BTreeMap<String, String>) {
    *map = std::mem::take(map)
        .into_iter()
        .map(|(mut k, mut v)| {
            s(&mut k);
            s(&mut v);
            (k, v)
        })
        .collect();
}

fn room(r: &mut RoomSummary) {
    s(&mut r.name);
}

/// The event with every string field passed through [`clean`].
pub fn event(mut ev: UiEvent) -> UiEvent {
    match &mut ev {
        UiEvent::Ready { .. }
        | UiEvent::LoggedOut
        | UiEvent::Dnd { .. }
        | UiEvent::Stats { .. }
        | UiEvent::ScriptDone
        | UiEvent::Bye => {}
        UiEvent::Notice { text }
        | UiEvent::RegistryReached { addr: text }
        | UiEvent::ChatDelivered { with: text, .. } => s(text),
        UiEvent::Discovery { found, using } => {
            for f in found {
                s(&mut f.name);
                f.proto.iter_mut().for_each(s);
            }
            s(using);
        }
        UiEvent::Error { code, message } => {
            code.iter_mut().for_each(s);
            s(message);
        }
        UiEvent::History { chat, lines } => {
            s(chat);
            lines.iter_mut().for_each(s);
        }
        UiEvent::Help { commands } => commands.iter_mut().for_each(|(c, d)| {
            s(c);
            s(d);
        }),
        UiEvent::Registered { username } | UiEvent::SessionRestored { username } => s(username),
        UiEvent::LoggedIn {
            username,
            address: a,
        } => {
            s(username);
            address(a);
        }
        UiEvent::RegistryLost { reason } => s(reason),
        UiEvent::RegistryMoved { from, to, username } => {
            s(from);
            s(to);
            username.iter_mut().for_each(s);
        }
        UiEvent::Who {
            users, next, away, ..
        } => {
            users.iter_mut().for_each(user);
            if let Some(next) = next {
                s(next);
            }
            texts(away);
        }
        UiEvent::SearchResult { user: u, away } => {
            user(u);
            away.iter_mut().for_each(s);
        }
        UiEvent::Topic { room, text, by, .. } => {
            s(room);
            text.iter_mut().for_each(s);
            by.iter_mut().for_each(s);
        }
        UiEvent::Away { user, message, .. } => {
            s(user);
            message.iter_mut().for_each(s);
        }
        UiEvent::ChatRequest { from: name }
        | UiEvent::ChatRequested { to: name }
        | UiEvent::ChatAccepted { with: name }
        | UiEvent::Busy { user: name }
        | UiEvent::ChatTimeout { with: name }
        | UiEvent::Current { target: name }
        | UiEvent::ChatResumed { with: name }
        | UiEvent::RoomLeft { room: name } => s(name),
        UiEvent::ChatRejected { by: name, reason }
        | UiEvent::ChatClosed { with: name, reason }
        | UiEvent::ChatInterrupted { with: name, reason } => {
            s(name);
            s(reason);
        }
        UiEvent::Message {
            from, chat, text, ..
        } => {
            s(from);
            s(chat);
            s(text);
        }
        UiEvent::FileOffered { name, from, to, .. } => {
            s(name);
            s(from);
            s(to);
        }
        UiEvent::FileProgress { name, user: by, .. }
        | UiEvent::FileSent { name, to: by, .. }
        | UiEvent::FileCancelled { name, by, .. } => {
            s(name);
            s(by);
        }
        UiEvent::FileReceived {
            name, from, path, ..
        } => {
            s(name);
            s(from);
            s(path);
        }
        UiEvent::FileFailed {
            name,
            user: by,
            reason,
            ..
        }
        | UiEvent::FileRefused {
            name, by, reason, ..
        } => {
            s(name);
            s(by);
            s(reason);
        }
        UiEvent::Files { files } => files.iter_mut().for_each(|f| {
            s(&mut f.name);
            s(&mut f.user);
        }),
        UiEvent::RoomJoined { room: r, members } => {
            s(r);
            members.iter_mut().for_each(s);
        }
        UiEvent::MemberJoined { room: r, user: u } => {
            s(r);
            s(u);
        }
        UiEvent::RoomKey { room, maker, .. } => {
            s(room);
            s(maker);
        }
        UiEvent::MemberLeft {
            room: r,
            user: u,
            reason,
        } => {
            s(r);
            s(u);
            s(reason);
        }
        UiEvent::Rooms { rooms, topics } => {
            rooms.iter_mut().for_each(room);
            texts(topics);
        }
        UiEvent::Members {
            room: r,
            members,
            roles,
        } => {
            s(r);
            members.iter_mut().for_each(user);
            let cleaned = std::mem::take(roles)
                .into_iter()
                .map(|(mut k, v)| {
                    s(&mut k);
                    (k, v)
                })
                .collect();
            *roles = cleaned;
        }
        UiEvent::Kicked {
            room: r,
            by,
            reason,
            ..
        } => {
            s(r);
            s(by);
            s(reason);
        }
        UiEvent::Moderated {
            room: r,
            action,
            user: u,
        } => {
            s(r);
            s(action);
            u.iter_mut().for_each(s);
        }
        UiEvent::Announcement { by, text, .. } => {
            s(by);
            s(text);
        }
        UiEvent::Delivery { room: r, .. } => s(r),
        UiEvent::Sending { room: r, .. } => s(r),
        UiEvent::DeliveryFailed {
            room: r, missing, ..
        } => {
            s(r);
            missing.iter_mut().for_each(s);
        }
        UiEvent::RoomHistoryStart { room: r, via }
        | UiEvent::RoomHistoryEnd { room: r, via, .. } => {
            s(r);
            s(via);
        }
        UiEvent::RoomHistory {
            room: r,
            from,
            text,
            via,
            ..
        } => {
            s(r);
            s(from);
            s(text);
            s(via);
        }
        UiEvent::RoomHistoryUnavailable { room: r, reason } => {
            s(r);
            s(reason);
        }
        UiEvent::ScriptFailed { reason, .. } => s(reason),
        UiEvent::Undelivered { with, messages } => {
            s(with);
            messages.iter_mut().for_each(|m| s(&mut m.text));
        }
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_is_borrowed_and_kept() {
        for ok in [
            "plain",
            "tab\there",
            "é ü ñ 日本語 🙂",
            "e\u{301}\u{302}\u{303}",
        ] {
            assert!(matches!(clean(ok), Cow::Borrowed(t) if t == ok), "{ok:?}");
        }
    }

    #[test]
    fn hostile_characters_are_replaced() {
        assert_eq!(clean("a\x1b[2Jb"), "a\u{FFFD}[2Jb");
        assert_eq!(
            clean("\u{9b}2J\x07\x7f\r\n"),
            "\u{FFFD}2J\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"
        );
        assert_eq!(clean("x\u{202E}fdp.exe"), "x\u{FFFD}fdp.exe");
        assert_eq!(
            clean("\u{2066}a\u{2069}\u{2028}\u{2029}"),
            "\u{FFFD}a\u{FFFD}\u{FFFD}\u{FFFD}"
        );
        let flood = format!("z{}!", "\u{336}".repeat(60));
        assert_eq!(clean(&flood), format!("z{}!", "\u{336}".repeat(MAX_MARKS)));
    }

    /// Hostile sequences: screen clear, cursor moves, window title (OSC 2),
    /// clipboard write (OSC 52), DCS, one-byte C1 CSI, bidi overrides and
    /// isolates, line separators, a combining-mark flood.
    const CORPUS: &[&str] = &[
        "\x1b[2J\x1b[H",
        "\r\x1b[1A\x1b[2K",
        "\x1b]2;pwned\x07",
        "\x1b]0;pwned\x1b\\",
        "\x1b]52;c;Y3VybCBldmlsfHNo\x07",
        "\x1bP+q544e\x1b\\",
        "\u{9b}31m\u{9d}2;x\u{9c}",
        "admin\u{202E}nimda\u{202C}",
        "\u{2067}x\u{2069}\u{200F}\u{061C}",
        "a\u{2028}b\u{2029}c\nd\x08\x7f",
        "Z\u{336}\u{336}\u{336}\u{336}\u{336}\u{336}\u{336}\u{336}\u{336}\u{336}",
    ];

    /// One event of every variant, with every string field set to `t`.
    fn every_event(t: &str) -> Vec<UiEvent> {
        let t = || t.to_string();
        let addr = || Address {
            ip: t(),
            tcp_port: 1,
            udp_port: 2,
        };
        let user = || UserInfo {
            keys: None,
            username: t(),
            online: true,
            address: Some(addr()),
        };
        vec![
            UiEvent::Ready {
                tcp_port: 1,
                udp_port: 2,
            },
            UiEvent::Notice { text: t() },
            UiEvent::RegistryReached { addr: t() },
            UiEvent::ChatDelivered { with: t(), id: 1 },
            UiEvent::Discovery {
                found: vec![crate::discovery::Found {
                    name: t(),
                    addr: "10.0.0.1:15600".parse().expect("address"),
                    proto: Some(t()),
                }],
                using: t(),
            },
            UiEvent::Error {
                code: Some(t()),
                message: t(),
            },
            UiEvent::Help {
                commands: vec![(t(), t())],
            },
            UiEvent::Registered { username: t() },
            UiEvent::LoggedIn {
                username: t(),
                address: addr(),
            },
            UiEvent::LoggedOut,
            UiEvent::RegistryLost { reason: t() },
            UiEvent::SessionRestored { username: t() },
            UiEvent::RegistryMoved {
                from: t(),
                to: t(),
                username: Some(t()),
            },
            UiEvent::Who {
                users: vec![user()],
                total: Some(1),
                next: Some(t()),
                away: [(t(), t())].into(),
            },
            UiEvent::Topic {
                room: t(),
                text: Some(t()),
                by: Some(t()),
                changed: true,
            },
            UiEvent::Away {
                user: t(),
                message: Some(t()),
                own: false,
            },
            UiEvent::SearchResult {
                user: user(),
                away: Some(t()),
            },
            UiEvent::ChatRequest { from: t() },
            UiEvent::ChatRequested { to: t() },
            UiEvent::ChatAccepted { with: t() },
            UiEvent::ChatRejected {
                by: t(),
                reason: t(),
            },
            UiEvent::Busy { user: t() },
            UiEvent::ChatTimeout { with: t() },
            UiEvent::ChatClosed {
                with: t(),
                reason: t(),
            },
            UiEvent::Message {
                from: t(),
                chat: t(),
                text: t(),
                id: 1,
                own: false,
                queued: false,
                action: false,
                mention: false,
                late: false,
            },
            UiEvent::ChatInterrupted {
                with: t(),
                reason: t(),
            },
            UiEvent::ChatResumed { with: t() },
            UiEvent::Undelivered {
                with: t(),
                messages: vec![crate::peer::ui::UndeliveredMsg { id: 1, text: t() }],
            },
            UiEvent::Message {
                from: t(),
                chat: format!("#{}", t()),
                text: format!("https://x.org/{} *{}*", t(), t()),
                id: 1,
                own: true,
                queued: true,
                action: false,
                mention: false,
                late: false,
            },
            UiEvent::Current { target: t() },
            UiEvent::History {
                chat: t(),
                lines: vec![t(), t()],
            },
            UiEvent::Dnd { on: true },
            UiEvent::RoomJoined {
                room: t(),
                members: vec![t()],
            },
            UiEvent::RoomLeft { room: t() },
            UiEvent::MemberJoined {
                room: t(),
                user: t(),
            },
            UiEvent::RoomKey {
                room: t(),
                epoch: 1,
                maker: t(),
            },
            UiEvent::MemberLeft {
                room: t(),
                user: t(),
                reason: t(),
            },
            UiEvent::Rooms {
                rooms: vec![RoomSummary {
                    name: t(),
                    members: 3,
                }],
                topics: [(t(), t())].into(),
            },
            UiEvent::Members {
                room: t(),
                members: vec![user()],
                roles: [(t(), crate::protocol::Role::Owner)].into(),
            },
            UiEvent::Kicked {
                room: t(),
                by: t(),
                reason: t(),
                banned: true,
            },
            UiEvent::Moderated {
                room: t(),
                action: t(),
                user: Some(t()),
            },
            UiEvent::Announcement {
                id: 1,
                by: t(),
                text: t(),
            },
            UiEvent::Delivery {
                room: t(),
                id: 1,
                acked: 1,
                total: 2,
            },
            UiEvent::Sending {
                room: t(),
                done: 1,
                total: 2,
            },
            UiEvent::DeliveryFailed {
                room: t(),
                id: 1,
                missing: vec![t()],
            },
            UiEvent::Stats {
                rooms: Default::default(),
            },
            UiEvent::ScriptFailed {
                line: 1,
                reason: t(),
            },
            UiEvent::ScriptDone,
            UiEvent::Bye,
        ]
    }

    /// `line` without the escape sequences the renderer itself writes:
    /// SGR colours (`ESC [ digits ; … m`) and OSC 8 links whose target has
    /// no control character.
    fn without_own_escapes(line: &str) -> String {
        let mut out = String::new();
        let mut rest = line;
        while let Some(at) = rest.find('\x1b') {
            out.push_str(&rest[..at]);
            let seq = &rest[at..];
            let sgr = seq[2.min(seq.len())..].find('m').filter(|&end| {
                seq.starts_with("\x1b[")
                    && seq[2..2 + end]
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b == b';')
            });
            if let Some(end) = sgr {
                rest = &seq[3 + end..];
            } else if let Some(body) = seq.strip_prefix("\x1b]8;;") {
                let end = body.find("\x1b\\").expect("OSC 8 is terminated");
                assert!(!body[..end].chars().any(|c| c.is_control()), "{line:?}");
                rest = &body[end + 2..];
            } else {
                panic!("foreign escape sequence in {line:?}");
            }
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn no_event_field_can_drive_the_terminal() {
        let ui = crate::peer::ui::Ui::new(false, true, crate::peer::ui::Sink::Stdout);
        let mut lines = 0;
        for hostile in CORPUS {
            for ev in every_event(hostile) {
                let shown = without_own_escapes(&ui.line(ev.clone()));
                lines += 1;
                let bad: Vec<char> = shown
                    .chars()
                    .filter(|&c| (is_hostile(c) && c != '\n') || c == '\x1b')
                    .collect();
                assert!(bad.is_empty(), "{ev:?} shows {bad:?} in {shown:?}");
                let mut run = 0;
                for c in shown.chars() {
                    run = if is_combining(c) { run + 1 } else { 0 };
                    assert!(run <= MAX_MARKS, "{ev:?}: mark flood in {shown:?}");
                }
                // Only the help list (one command here) and /history (one
                // line per line given) are several lines.
                let own_lines = match &ev {
                    UiEvent::History { lines, .. } => lines.len(),
                    _ => 1,
                };
                assert!(
                    shown.matches('\n').count() <= own_lines,
                    "{ev:?}: {shown:?}"
                );
            }
        }
        assert!(lines > 300, "{lines}");
    }
}
