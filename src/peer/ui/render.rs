//! Human-readable lines: colours, `*bold*`/`_italic_`/links, and the text
//! of every [`UiEvent`] (after [`super::sanitize`]).

use super::{now_us, sanitize, Ui, UiEvent};
use crate::protocol::UserInfo;
use colored::{Color, Colorize};

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

pub(super) fn clock() -> String {
    local_time(now_us(), "%H:%M:%S").unwrap_or_else(|| "--:--:--".into())
}

/// `micros` since the epoch as local time in `format` (strftime-like),
/// on every platform (jiff reads the system time zone); `None` when the
/// time is out of range.
pub fn local_time(micros: u64, format: &str) -> Option<String> {
    let ts = jiff::Timestamp::from_microsecond(i64::try_from(micros).ok()?).ok()?;
    let zoned = ts.to_zoned_datetime(jiff::tz::TimeZone::system());
    Some(zoned.strftime(format).to_string())
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
    fn name(&self, n: &str) -> String {
        n.color(user_color(n)).bold().to_string()
    }

    fn notice(s: &str) -> String {
        format!("{} {}", "--".yellow(), s.yellow())
    }

    pub(super) fn render(&self, ev: &UiEvent) -> String {
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
            ev @ (UiEvent::FileOffered { .. }
            | UiEvent::FileProgress { .. }
            | UiEvent::FileReceived { .. }
            | UiEvent::FileSent { .. }
            | UiEvent::FileFailed { .. }
            | UiEvent::FileCancelled { .. }
            | UiEvent::FileRefused { .. }
            | UiEvent::Files { .. }) => Self::notice(&super::files::text(ev)),
            UiEvent::RegistryReached { addr } => Self::notice(&format!("connected to the registry at {addr}")),
            UiEvent::Discovery { found, using } => Self::notice(&discovery_line(found, using)),
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
            UiEvent::RegistryMoved { from, to, username } => Self::notice(&match username {
                Some(u) => format!("registry {from} is gone; now on {to} (session of {u} restored)"),
                None => format!("registry {from} is gone; now on {to}"),
            }),
            UiEvent::Who { users, total, .. } if users.is_empty() => match total {
                Some(n) if *n > 0 => Self::notice(&format!("{n} online; no more to show")),
                _ => Self::notice("nobody is online"),
            },
            UiEvent::Who { users, total, next, away } => {
                let names: Vec<String> = users
                    .iter()
                    .map(|u| match away.get(&u.username) {
                        Some(a) => format!("{} {}", n(&u.username), format!("(away: {a})").dimmed()),
                        None => n(&u.username),
                    })
                    .collect();
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
            UiEvent::SearchResult { user, away: None } => format!("{} {}", "--".yellow(), user_line(user)),
            UiEvent::SearchResult { user, away: Some(a) } => {
                format!("{} {} {}", "--".yellow(), user_line(user), format!("(away: {a})").dimmed())
            }
            UiEvent::Topic { room, text: Some(t), by, changed: false } => match by {
                Some(by) => Self::notice(&format!("topic of #{room}: {t} (set by {by})")),
                None => Self::notice(&format!("topic of #{room}: {t}")),
            },
            UiEvent::Topic { room, text: None, changed: false, .. } => Self::notice(&format!("#{room} has no topic")),
            UiEvent::Topic { room, text: Some(t), by, .. } => {
                format!("{} {} set the topic of #{room}: {t}", "--".yellow(), n(by.as_deref().unwrap_or("someone")))
            }
            UiEvent::Topic { room, text: None, by: Some(by), .. } => {
                format!("{} {} cleared the topic of #{room}", "--".yellow(), n(by))
            }
            UiEvent::Topic { room, text: None, by: None, .. } => Self::notice(&format!("the topic of #{room} was cleared")),
            UiEvent::Away { message: Some(m), own: true, .. } => Self::notice(&format!("you are away: {m} (/away again when you are back)")),
            UiEvent::Away { message: None, own: true, .. } => Self::notice("you are back (no away message)"),
            UiEvent::Away { user, message: Some(m), .. } => format!("{} {} is away: {m}", "--".yellow(), n(user)),
            UiEvent::Away { user, message: None, .. } => format!("{} {} is back", "--".yellow(), n(user)),
            UiEvent::ChatRequest { from } => format!(
                "{} {} wants to chat: {} or {}",
                "**".magenta().bold(),
                n(from),
                format!("/accept {from}").cyan(),
                format!("/reject {from}").cyan()
            ),
            UiEvent::ChatRequested { to } => Self::notice(&format!("asked {to} for a chat; waiting for an answer…")),
            UiEvent::ChatAccepted { with } => format!("{} chat with {} open", "--".yellow(), n(with)),
            UiEvent::ChatRejected { by, reason } if reason == "declined" => {
                format!("{} {} declined your chat request", "--".yellow(), n(by))
            }
            UiEvent::ChatRejected { by, reason } => {
                format!("{} {} refused the chat: {reason}", "--".yellow(), n(by))
            }
            UiEvent::Busy { user } => format!("{} {} is busy (do not disturb)", "--".yellow(), n(user)),
            UiEvent::ChatTimeout { with } => {
                format!("{} chat request with {} timed out", "--".yellow(), n(with))
            }
            // Name who left: "ended: left the chat" did not say.
            UiEvent::ChatClosed { with, reason } if reason == "left the chat" => {
                format!("{} chat with {} ended: {} left the chat", "--".yellow(), n(with), n(with))
            }
            UiEvent::ChatClosed { with, reason } => format!("{} chat with {} ended: {reason}", "--".yellow(), n(with)),
            UiEvent::ChatInterrupted { with, reason } => format!(
                "{} chat with {} interrupted ({reason}); will resume when {} is back",
                "--".yellow(),
                n(with),
                n(with)
            ),
            UiEvent::ChatResumed { with } => format!("{} chat with {} resumed", "--".yellow(), n(with)),
            UiEvent::ChatDelivered { with, id } => {
                format!("{}", format!("   {with} has your messages up to {id}").dimmed())
            }
            UiEvent::Undelivered { with, messages } => {
                let list: Vec<String> = messages.iter().map(|m| format!("#{} \"{}\"", m.id, m.text)).collect();
                format!(
                    "{} {} message(s) to {} not delivered: {}",
                    "!!".red().bold(),
                    messages.len(),
                    n(with),
                    list.join(", ").red()
                )
            }
            UiEvent::Message { from, chat, text, own, queued, action, mention, late, .. } => {
                let text = &if *queued { format!("{text} (queued)") } else { text.clone() };
                let body = format_text(text, self.color);
                // A mention shows the sender's name in reverse video.
                let from_name = if *mention { n(from).reversed().to_string() } else { n(from) };
                let room = chat.starts_with('#');
                let line = match (room, *own, *action) {
                    // Own text in the terminal's own colour: bright white
                    // could not be read on a light background.
                    (true, true, false) => format!("{} <{}> {body}", chat.dimmed(), "you".bold()),
                    (true, false, false) => format!("{} <{from_name}> {body}", chat.dimmed()),
                    (false, true, false) => format!("{} {} {body}", "you →".bold(), n(chat)),
                    (false, false, false) => format!("{from_name} {} {body}", "(private)".magenta()),
                    (true, _, true) => format!("{} * {from_name} {body}", chat.dimmed()),
                    (false, true, true) => format!("{} {} * {} {body}", "you →".bold(), n(chat), n(from)),
                    (false, false, true) => format!("* {from_name} {body} {}", "(private)".magenta()),
                };
                // Sent while we were away: it comes now, in its place.
                if *late { format!("{line} {}", "(late)".dimmed()) } else { line }
            }
            UiEvent::History { chat, lines } if lines.is_empty() => Self::notice(&format!("no history of {chat} yet")),
            UiEvent::History { chat, lines } => {
                let mut s = Self::notice(&format!("last {} line(s) of {chat}:", lines.len()));
                for l in lines {
                    s.push_str(&format!("\n  {}", l.dimmed()));
                }
                s
            }
            UiEvent::Current { target } if target.starts_with('#') => Self::notice(&format!("now talking in {target}")),
            UiEvent::Current { target } => Self::notice(&format!("now talking to {target}")),
            UiEvent::Dnd { on } => Self::notice(if *on {
                "do not disturb: on (chat requests are answered busy; mentions do not ring the bell)"
            } else {
                "do not disturb: off (mentions ring the bell)"
            }),
            UiEvent::RoomJoined { room, members } => {
                let names: Vec<String> = members.iter().map(|m| n(m)).collect();
                format!("{} joined #{room}; members: {}", "--".yellow(), names.join(", "))
            }
            UiEvent::RoomLeft { room } => Self::notice(&format!("left #{room}")),
            UiEvent::MemberJoined { room, user } => format!("{} {} joined #{room}", "-->".green(), n(user)),
            UiEvent::RoomKey { room, epoch, maker } => {
                format!("{}", format!("   #{room}: end-to-end key of epoch {epoch} (made by {maker})").dimmed())
            }
            UiEvent::MemberLeft { room, user, reason } if reason == "left" => format!("{} {} left #{room}", "<--".red(), n(user)),
            UiEvent::MemberLeft { room, user, reason } => format!("{} {} left #{room} ({reason})", "<--".red(), n(user)),
            UiEvent::Rooms { rooms, .. } if rooms.is_empty() => Self::notice("no rooms yet; /create one"),
            UiEvent::Rooms { rooms, topics } => {
                let count = |n: u64| if n == 1 { "1 member".to_string() } else { format!("{n} members") };
                let list: Vec<String> = rooms
                    .iter()
                    .map(|r| match topics.get(&r.name) {
                        Some(t) => format!("#{} ({}: {t})", r.name, count(r.members)),
                        None => format!("#{} ({})", r.name, count(r.members)),
                    })
                    .collect();
                Self::notice(&format!("rooms: {}", list.join(", ")))
            }
            UiEvent::Members { room, members, roles } => {
                let at = |u: &str| if roles.contains_key(u) { "@" } else { "" };
                let list: Vec<String> = members.iter().map(|m| format!("{}{}", at(&m.username), n(&m.username))).collect();
                format!("{} #{room}: {}", "--".yellow(), list.join(", "))
            }
            UiEvent::Kicked { room, by, reason, banned } => {
                let what = if *banned { "banned" } else { "kicked" };
                let why = if reason.is_empty() { String::new() } else { format!(": {reason}") };
                format!("{} you were {what} from #{room} by {}{why}", "!!".red().bold(), n(by)).red().to_string()
            }
            UiEvent::Moderated { room, action, user } => {
                let done = match action.as_str() {
                    "kick" => "kicked", "ban" => "banned", "unban" => "unbanned", "op" => "made operator",
                    "deop" => "no longer operator", "invite" => "invited", "lock" => "locked", "unlock" => "unlocked",
                    other => other,
                };
                match user {
                    Some(u) => Self::notice(&format!("#{room}: {u} {done}")),
                    None => Self::notice(&format!("#{room} {done}")),
                }
            }
            UiEvent::Announcement { by, text, .. } => {
                format!("📢 {} {}", format!("announcement from {by}:").magenta().bold(), text.magenta().bold())
            }
            UiEvent::Delivery { room, id, total: 0, .. } => {
                format!("{}", format!("   #{room} message {id}: nobody else is in #{room}").dimmed())
            }
            UiEvent::Delivery { room, id, acked, total } => {
                format!("{}", format!("   #{room} message {id}: delivered {acked}/{total}").dimmed())
            }
            UiEvent::Sending { room, done, total } if done == total => {
                format!("{}", format!("   #{room}: all {total} messages sent").dimmed())
            }
            UiEvent::Sending { room, done, total } => {
                let pct = done * 100 / (*total).max(1);
                format!("{}", format!("   #{room}: sending… {done}/{total} messages delivered ({pct}%)").dimmed())
            }
            UiEvent::DeliveryFailed { room, id, missing } => format!(
                "{} #{room} message {id} did not reach {}",
                "!!".red().bold(),
                missing.join(", ").red()
            ),
            UiEvent::RoomHistoryStart { room, via } => {
                format!("{}", format!("   #{room}: earlier messages, as kept by {via}:").dimmed())
            }
            UiEvent::RoomHistory { room, from, text, .. } => {
                let body = format_text(text, false);
                format!("{} {}", format!("#{room}").dimmed(), format!("[earlier] <{from}> {body}").dimmed())
            }
            UiEvent::RoomHistoryEnd { room, via, count: 0 } => {
                format!("{}", format!("   #{room}: no earlier messages from {via}").dimmed())
            }
            UiEvent::RoomHistoryEnd { room, via, count } => {
                format!("{}", format!("   #{room}: {count} earlier messages from {via}").dimmed())
            }
            UiEvent::RoomHistoryUnavailable { room, reason } => {
                format!("{}", format!("   #{room}: no earlier messages ({reason})").dimmed())
            }
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
#[path = "render_tests.rs"]
mod tests;

/// The line that says which registry looking on the LAN found.
fn discovery_line(found: &[crate::discovery::Found], using: &str) -> String {
    match found {
        [] => format!(
            "no registry found on the LAN; trying {using} (name one with --registry HOST:PORT or REGISTRY_ADDR)"
        ),
        [one] => format!("found registry {} at {} on the LAN", one.name, one.addr),
        [first, ..] => {
            let all: Vec<String> = found.iter().map(|f| format!("{} at {}", f.name, f.addr)).collect();
            let used = found.iter().find(|f| f.addr.to_string() == using).unwrap_or(first);
            format!(
                "found {} registries on the LAN: {}; using {} (choose with --registry HOST:PORT)",
                found.len(),
                all.join(", "),
                used.name
            )
        }
    }
}

#[cfg(test)]
#[path = "render_progress_tests.rs"]
mod progress_tests;

#[cfg(test)]
#[path = "render_history_tests.rs"]
mod history_tests;
