//! The one printer. Worker threads never print; the main loop hands every
//! [`UiEvent`] to [`Ui::emit`], which writes a coloured line for people or,
//! with `--json`, one JSON object per line for programs (see `protocol.md`).
//! Every human-readable line passes through [`sanitize`] first.

pub mod sanitize;

use crate::protocol::{Address, RoomSummary, UserInfo};
use colored::{Color, Colorize};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Everything a user (or a test) can see happen.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum UiEvent {
    Ready {
        tcp_port: u16,
        udp_port: u16,
    },
    Notice {
        text: String,
    },
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        message: String,
    },
    Help {
        commands: Vec<(String, String)>,
    },
    Registered {
        username: String,
    },
    LoggedIn {
        username: String,
        address: Address,
    },
    LoggedOut,
    RegistryLost {
        reason: String,
    },
    SessionRestored {
        username: String,
    },
    /// One page of `/who`: `total` online (with the prefix asked for;
    /// `null` from a registry without paging), and the cursor of the next
    /// page (`/who +`), `null` on the last.
    Who {
        users: Vec<UserInfo>,
        total: Option<u64>,
        next: Option<String>,
    },
    SearchResult {
        user: UserInfo,
    },
    /// Someone asks us for a chat.
    ChatRequest {
        from: String,
    },
    /// Our request went out.
    ChatRequested {
        to: String,
    },
    ChatAccepted {
        with: String,
    },
    ChatRejected {
        by: String,
        reason: String,
    },
    Busy {
        user: String,
    },
    ChatTimeout {
        with: String,
    },
    ChatClosed {
        with: String,
        reason: String,
    },
    /// A chat message; `from == me` for our own. `chat` is the partner's
    /// name or `#room`.
    Message {
        from: String,
        chat: String,
        text: String,
        id: u64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        own: bool,
    },
    Current {
        target: String,
    },
    Dnd {
        on: bool,
    },
    RoomJoined {
        room: String,
        members: Vec<String>,
    },
    RoomLeft {
        room: String,
    },
    MemberJoined {
        room: String,
        user: String,
    },
    MemberLeft {
        room: String,
        user: String,
        reason: String,
    },
    Rooms {
        rooms: Vec<RoomSummary>,
    },
    Members {
        room: String,
        members: Vec<UserInfo>,
    },
    /// Progress of one of our room messages: `acked` of `total` members.
    Delivery {
        room: String,
        id: u64,
        acked: usize,
        total: usize,
    },
    /// A room message that could not reach some members after every retry.
    DeliveryFailed {
        room: String,
        id: u64,
        missing: Vec<String>,
    },
    Stats {
        rooms: crate::peer::rooms::Stats,
    },
    ScriptFailed {
        line: usize,
        reason: String,
    },
    ScriptDone,
    Bye,
}

/// Where human-readable lines go.
pub enum Sink {
    Stdout,
    /// The line editor's printer, which redraws the prompt and the half-typed
    /// line below whatever it prints.
    Editor(Box<dyn rustyline::ExternalPrinter + Send>),
}

pub struct Ui {
    json: bool,
    color: bool,
    sink: Sink,
    /// A write failed: the terminal (or the pipe) is gone.
    gone: bool,
}

fn write_stdout(line: &str) -> bool {
    let out = std::io::stdout();
    let mut lock = out.lock();
    writeln!(lock, "{line}").and_then(|()| lock.flush()).is_ok()
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

const PALETTE: &[Color] = &[
    Color::Cyan,
    Color::Green,
    Color::Magenta,
    Color::Blue,
    Color::Yellow,
    Color::BrightCyan,
    Color::BrightGreen,
    Color::BrightMagenta,
    Color::BrightBlue,
    Color::BrightRed,
];

/// A username's colour: the same name always gets the same colour (FNV-1a).
pub fn user_color(name: &str) -> Color {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    PALETTE[(h as usize) % PALETTE.len()]
}

fn clock() -> String {
    let secs = (now_us() / 1_000_000) as libc::time_t;
    // SAFETY: localtime_r writes only into the tm we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return "--:--:--".into();
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// Renders `*bold*`, `_italic_` and links (as OSC 8 hyperlinks) when colour
/// is on; plain text otherwise. The text is passed through the sanitiser
/// (again: [`Ui::emit`] already did), so a message cannot drive the terminal.
pub fn format_text(text: &str, color: bool) -> String {
    let clean = sanitize::clean(text).into_owned();
    if !color {
        return clean;
    }
    let chars: Vec<char> = clean.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let at_word_start =
            i == 0 || chars[i - 1].is_whitespace() || "([{\"'".contains(chars[i - 1]);
        if at_word_start {
            let rest: String = chars[i..].iter().collect();
            if rest.starts_with("http://") || rest.starts_with("https://") {
                let len = chars[i..].iter().take_while(|c| !c.is_whitespace()).count();
                let word: String = chars[i..i + len].iter().collect();
                let url = word.trim_end_matches(['.', ',', ')', ';', '!', '?', ':']);
                let tail = &word[url.len()..];
                out.push_str(&format!(
                    "\x1b]8;;{url}\x1b\\{}\x1b]8;;\x1b\\{tail}",
                    url.underline().blue()
                ));
                i += len;
                continue;
            }
            if let Some(end) = span_end(&chars, i) {
                let body: String = chars[i + 1..end].iter().collect();
                let styled = if chars[i] == '*' {
                    body.bold()
                } else {
                    body.italic()
                };
                out.push_str(&styled.to_string());
                i = end + 1;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// For a `*` or `_` at `start`, the index of the marker that closes the
/// span: the body is not empty, does not start or end with a space, and
/// the closing marker ends a word.
fn span_end(chars: &[char], start: usize) -> Option<usize> {
    let m = chars[start];
    if m != '*' && m != '_' {
        return None;
    }
    let first = *chars.get(start + 1)?;
    if first.is_whitespace() || first == m {
        return None;
    }
    let mut j = start + 2;
    while j < chars.len() {
        if chars[j] == m
            && !chars[j - 1].is_whitespace()
            && chars
                .get(j + 1)
                .is_none_or(|c| c.is_whitespace() || c.is_ascii_punctuation())
        {
            return Some(j);
        }
        j += 1;
    }
    None
}

impl Ui {
    pub fn new(json: bool, color: bool, sink: Sink) -> Ui {
        colored::control::set_override(color && !json);
        Ui {
            json,
            color: color && !json,
            sink,
            gone: false,
        }
    }

    fn name(&self, n: &str) -> String {
        n.color(user_color(n)).bold().to_string()
    }

    /// Writes one line. A terminal that went away (hang-up, closed pipe)
    /// is not an error to die of: output stops, and [`Ui::terminal_gone`]
    /// tells the main loop to quit cleanly.
    fn write(&mut self, line: String) {
        if self.gone {
            return;
        }
        let written = match &mut self.sink {
            // With the newline: the editor adds one only while it is
            // reading a line; between reads the text goes out as is.
            Sink::Editor(p) => p.print(format!("{line}\n")).is_ok() || write_stdout(&line),
            Sink::Stdout => write_stdout(&line),
        };
        if !written {
            log::info!("the terminal is gone: no more output");
            self.gone = true;
        }
    }

    /// True once a write to the terminal failed (it was closed).
    pub fn terminal_gone(&self) -> bool {
        self.gone
    }

    pub fn emit(&mut self, ev: UiEvent) {
        self.emit_marked(ev, false);
    }

    /// Emits `ev`; with `unverified` (a line of a chat whose partner the
    /// registry could not check) the line says so: a leading
    /// `[unverified]`, or `"unverified":true` in JSON.
    pub fn emit_marked(&mut self, ev: UiEvent, unverified: bool) {
        if self.json {
            let mut v = serde_json::to_value(&ev).unwrap_or_default();
            if let Some(map) = v.as_object_mut() {
                if unverified {
                    map.insert("unverified".into(), true.into());
                }
                map.insert("ts_us".into(), now_us().into());
            }
            self.write(v.to_string());
            return;
        }
        let mark = if unverified {
            format!("{} ", "[unverified]".red().bold())
        } else {
            String::new()
        };
        let stamped = format!("{} {mark}{}", clock().dimmed(), self.line(ev));
        self.write(stamped);
    }

    /// The human-readable line for an event: every string in it is
    /// sanitised first ([`sanitize`]), so network text never
    /// reaches the terminal around the sanitiser.
    pub(super) fn line(&self, ev: UiEvent) -> String {
        self.render(&sanitize::event(ev))
    }

    fn notice(s: &str) -> String {
        format!("{} {}", "--".yellow(), s.yellow())
    }

    fn render(&self, ev: &UiEvent) -> String {
        let n = |s: &str| self.name(s);
        let user_line = |u: &UserInfo| match &u.address {
            Some(a) => format!(
                "{} {} at {}:{} (udp {})",
                n(&u.username),
                "online".green(),
                a.ip,
                a.tcp_port,
                a.udp_port
            ),
            None => format!("{} {}", n(&u.username), "offline".dimmed()),
        };
        match ev {
            UiEvent::Ready { tcp_port, udp_port } => Self::notice(&format!(
                "ready: chats on TCP port {tcp_port}, rooms on UDP port {udp_port}; /help lists commands"
            )),
            UiEvent::Notice { text } => Self::notice(text),
            UiEvent::Error { message, .. } => format!("{} {}", "!!".red().bold(), message.red()),
            UiEvent::Help { commands } => {
                let mut s = "commands:".bold().to_string();
                for (c, d) in commands {
                    s.push_str(&format!("\n  {:<18} {}", c.cyan(), d));
                }
                s
            }
            UiEvent::Registered { username } => Self::notice(&format!("registered {username}; now /login {username}")),
            UiEvent::LoggedIn { username, address } => format!(
                "{} logged in as {} (reachable at {}:{})",
                "--".yellow(),
                n(username),
                address.ip,
                address.tcp_port
            ),
            UiEvent::LoggedOut => Self::notice("logged out"),
            UiEvent::RegistryLost { reason } => format!(
                "{} {}",
                "!!".red().bold(),
                format!("lost the registry ({reason}); reconnecting…").red()
            ),
            UiEvent::SessionRestored { username } => Self::notice(&format!("registry is back; session of {username} restored")),
            UiEvent::Who { users, total, .. } if users.is_empty() => match total {
                Some(n) if *n > 0 => Self::notice(&format!("{n} online; no more to show")),
                _ => Self::notice("nobody is online"),
            },
            UiEvent::Who { users, total, next } => {
                let names: Vec<String> = users.iter().map(|u| n(&u.username)).collect();
                let count = match total {
                    Some(t) if *t != users.len() as u64 => format!("{t}, {} here", users.len()),
                    _ => users.len().to_string(),
                };
                let more = match next {
                    Some(_) => format!(" {}", "(more: /who +)".cyan()),
                    None => String::new(),
                };
                format!("{} online ({count}): {}{more}", "--".yellow(), names.join(", "))
            }
            UiEvent::SearchResult { user } => format!("{} {}", "--".yellow(), user_line(user)),
            UiEvent::ChatRequest { from } => format!(
                "{} {} wants to chat: {} or {}",
                "**".magenta().bold(),
                n(from),
                format!("/accept {from}").cyan(),
                format!("/reject {from}").cyan()
            ),
            UiEvent::ChatRequested { to } => Self::notice(&format!("asked {to} for a chat; waiting for an answer…")),
            UiEvent::ChatAccepted { with } => format!("{} chat with {} open", "--".yellow(), n(with)),
            UiEvent::ChatRejected { by, reason } => {
                format!("{} {} declined the chat ({reason})", "--".yellow(), n(by))
            }
            UiEvent::Busy { user } => format!("{} {} is busy (do not disturb)", "--".yellow(), n(user)),
            UiEvent::ChatTimeout { with } => {
                format!("{} chat request with {} timed out", "--".yellow(), n(with))
            }
            UiEvent::ChatClosed { with, reason } => format!("{} chat with {} ended: {reason}", "--".yellow(), n(with)),
            UiEvent::Message { from, chat, text, own, .. } => {
                let body = format_text(text, self.color);
                let room = chat.starts_with('#');
                match (room, *own) {
                    (true, true) => format!("{} <{}> {}", chat.dimmed(), "you".bold(), body.bright_white()),
                    (true, false) => format!("{} <{}> {body}", chat.dimmed(), n(from)),
                    (false, true) => format!("{} {} {}", "you →".bold(), n(chat), body.bright_white()),
                    (false, false) => format!("{} {} {body}", n(from), "(private)".magenta()),
                }
            }
            UiEvent::Current { target } => Self::notice(&format!("now talking in {target}")),
            UiEvent::Dnd { on } => Self::notice(if *on { "do not disturb: on" } else { "do not disturb: off" }),
            UiEvent::RoomJoined { room, members } => {
                let names: Vec<String> = members.iter().map(|m| n(m)).collect();
                format!("{} joined #{room}; members: {}", "--".yellow(), names.join(", "))
            }
            UiEvent::RoomLeft { room } => Self::notice(&format!("left #{room}")),
            UiEvent::MemberJoined { room, user } => format!("{} {} joined #{room}", "-->".green(), n(user)),
            UiEvent::MemberLeft { room, user, reason } => format!("{} {} left #{room} ({reason})", "<--".red(), n(user)),
            UiEvent::Rooms { rooms } if rooms.is_empty() => Self::notice("no rooms yet; /create one"),
            UiEvent::Rooms { rooms } => {
                let list: Vec<String> = rooms.iter().map(|r| format!("#{} ({})", r.name, r.members)).collect();
                Self::notice(&format!("rooms: {}", list.join(", ")))
            }
            UiEvent::Members { room, members } => {
                let list: Vec<String> = members.iter().map(|m| n(&m.username)).collect();
                format!("{} #{room}: {}", "--".yellow(), list.join(", "))
            }
            UiEvent::Delivery { room, id, total: 0, .. } => {
                format!("{}", format!("   #{room} message {id}: nobody else is in #{room}").dimmed())
            }
            UiEvent::Delivery { room, id, acked, total } => {
                format!("{}", format!("   #{room} message {id}: delivered {acked}/{total}").dimmed())
            }
            UiEvent::DeliveryFailed { room, id, missing } => format!(
                "{} #{room} message {id} did not reach {}",
                "!!".red().bold(),
                missing.join(", ").red()
            ),
            UiEvent::Stats { rooms } => {
                let v = serde_json::to_value(rooms).unwrap_or_default();
                let parts: Vec<String> = v
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                Self::notice(&format!("room datagrams: {}", parts.join(" ")))
            }
            UiEvent::ScriptFailed { line, reason } => {
                format!("{} script failed at line {line}: {}", "!!".red().bold(), reason.red())
            }
            UiEvent::ScriptDone => Self::notice("script finished"),
            UiEvent::Bye => Self::notice("bye"),
        }
    }
}

#[cfg(test)]
mod tests;
