//! The peer's command language: IRC-style `/verb args`, and plain text.
//!
//! Parsing is pure so the same syntax serves the terminal, piped stdin and
//! demo scripts (which add a few directives, see [`Command::Sleep`] and
//! [`Command::WaitFor`]).

use std::time::Duration;

/// One line of input, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Help,
    /// `/register USER [PASSWORD]`: without a password the terminal asks.
    Register {
        username: String,
        password: Option<String>,
    },
    /// `/login USER [PASSWORD]`
    Login {
        username: String,
        password: Option<String>,
    },
    Logout,
    /// `/who [PREFIX]`: the first page of online users (whose names start
    /// with PREFIX); `/who +`: the next page of the last `/who`.
    Who {
        prefix: Option<String>,
        more: bool,
    },
    Search(String),
    /// `/keys`: our identity key fingerprint; `/keys USER`: USER's, as
    /// the registry vouches for it.
    Keys(Option<String>),
    /// `/chat USER`: ask for a one-to-one chat, or switch to an open one.
    Chat(String),
    Accept(Option<String>),
    Reject(Option<String>),
    /// `/msg USER TEXT`
    Msg {
        to: String,
        text: String,
    },
    /// `/close [USER]`: end a chat (the current one by default).
    Close(Option<String>),
    /// `/dnd [on|off]`: toggle, or set, do-not-disturb.
    Dnd(Option<bool>),
    Create(String),
    Join(String),
    Leave(Option<String>),
    Rooms,
    Members(Option<String>),
    /// `/switch NAME`: make a room (`#lab`) or chat (`bob`) current.
    Switch(String),
    /// `/stats`: room datagram counters.
    Stats,
    /// `/history [N]`: the last N lines of the current conversation.
    History(Option<usize>),
    /// `/history #ROOM [N]`: ask a member of the room for its last N
    /// texts (see `app::history`).
    RoomHistory {
        room: String,
        count: Option<u32>,
    },
    Quit,
    /// Plain text for the current conversation.
    Say(String),
    /// `/topic [#ROOM] [TEXT]`: show the topic of the current room (or
    /// ROOM), or set it to TEXT (`-` clears it).
    Topic {
        room: Option<String>,
        text: Option<String>,
    },
    /// `/away [MESSAGE]`: set an away message, or without one, clear it.
    Away(Option<String>),
    /// `/me ACTION`: an action line (`* alice waves`) in the current
    /// conversation.
    Me(String),
    /// `/create ROOM --password [PASSWORD]`, `/join ROOM PASSWORD` or
    /// `/join ROOM --password`: without the password the terminal asks.
    RoomWithPassword {
        create: bool,
        room: String,
        password: Option<String>,
    },
    /// `/kick`, `/ban`, `/unban`, `/op`, `/deop`, `/invite` (`user` set),
    /// `/lock`, `/unlock`: on the current room, or `#ROOM` given first.
    Moderate {
        action: String,
        room: Option<String>,
        user: Option<String>,
        reason: String,
    },
    /// `/announce TEXT` (registry admins).
    Announce(String),
    /// `/sleep 500ms` (scripts).
    Sleep(Duration),
    /// `/wait EVENT [ARGS…] [timeout=DURATION]` (scripts).
    WaitFor {
        what: Vec<String>,
        timeout: Duration,
    },
    /// `/retry DURATION COMMAND`: run COMMAND again until it succeeds or
    /// DURATION has passed (scripts).
    Retry {
        within: Duration,
        cmd: Box<Command>,
    },
    /// `/send`, `/get`, `/refuse`, `/cancel`, `/files`.
    File(crate::peer::files::FileCommand),
}

/// The help text: every command with one line.
pub const HELP: &[(&str, &str)] = &[
    ("/register USER", "create an account (asks for a password)"),
    ("/login USER", "log in (asks for the password without echo)"),
    ("/logout", "log out (closes chats, leaves rooms)"),
    (
        "/who [PREFIX]",
        "count and list online users (a page; /who + for the next)",
    ),
    ("/search USER", "is USER registered, online, and where"),
    (
        "/keys [USER]",
        "your identity key fingerprint, or USER's as the registry vouches for it",
    ),
    (
        "/chat USER",
        "ask USER for a one-to-one chat, or switch to it",
    ),
    (
        "/accept [USER]",
        "accept a chat request (the latest by default)",
    ),
    ("/reject [USER]", "reject a chat request"),
    (
        "/msg USER TEXT",
        "send TEXT to USER (asks for a chat first if needed) or #room, without switching",
    ),
    (
        "/close [USER]",
        "end a one-to-one chat (the current one by default)",
    ),
    (
        "/dnd [on|off]",
        "do not disturb: chat requests are answered 'busy', mentions do not ring",
    ),
    ("/create ROOM", "create a chat room and join it"),
    ("/join ROOM", "join a chat room"),
    ("/leave [ROOM]", "leave a room (the current one by default)"),
    ("/rooms", "list rooms with member counts"),
    ("/members [ROOM]", "list a room's members"),
    (
        "/switch NAME",
        "make #room or user the current conversation (+, or Ctrl-X: the next one)",
    ),
    (
        "/history [N]",
        "the last N (20) lines of the current conversation",
    ),
    (
        "/history #ROOM [N]",
        "ask a member of the room for its last N (100) texts",
    ),
    (
        "/stats",
        "counters of room datagrams (dropped, duplicates, retransmits…)",
    ),
    ("/help", "this list"),
    (
        "/quit",
        "close chats, leave rooms, log out and exit (also Ctrl-C)",
    ),
    (
        "/topic [TEXT]",
        "show the current room's topic, or set it (/topic - clears it)",
    ),
    (
        "/away [MESSAGE]",
        "away with a message others see (/who, /search, chats); /away alone: back",
    ),
    (
        "/me ACTION",
        "an action line in the current conversation: * you ACTION",
    ),
    (
        "/send USER FILE",
        "offer a file to USER (over your chat with them)",
    ),
    (
        "/get [ID|NAME]",
        "fetch a file offered to you into the download folder",
    ),
    ("/refuse [ID|NAME]", "say no to a file offered to you"),
    (
        "/cancel ID|NAME",
        "stop a file offer or transfer (either side)",
    ),
    ("/files", "file offers and transfers under way"),
    (
        "TEXT",
        "plain text goes to the current room or chat; *bold* _italic_",
    ),
    (
        "/create ROOM --password",
        "create a room that needs a password to join (asks for it)",
    ),
    (
        "/join ROOM --password",
        "join a room that needs a password (asks for it)",
    ),
    (
        "/kick USER [REASON]",
        "owner/operators: take USER out of the current room (or #ROOM USER)",
    ),
    (
        "/ban USER",
        "owner/operators: USER cannot join again (kicked if in)",
    ),
    ("/unban USER", "owner/operators: lift a ban"),
    ("/lock", "owner/operators: the room becomes invite-only"),
    ("/unlock", "owner/operators: anyone may join again"),
    (
        "/invite USER",
        "owner/operators: let USER join once past the lock and password",
    ),
    ("/op USER", "owner: make a member an operator"),
    ("/deop USER", "owner: an operator becomes a member again"),
    (
        "/announce TEXT",
        "registry admins: a line every online user sees",
    ),
];

/// Parses a duration like `500ms`, `2s`, `1.5s`, `1m` (bare numbers are ms).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "ms"),
    };
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        _ => return None,
    };
    (secs.is_finite() && (0.0..=86_400.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

fn strip_room(name: &str) -> String {
    name.trim_start_matches('#').to_string()
}

/// The room a `/create` or `/join` names (`#` optional), checked against the
/// room-name rule here, so a mistake is told with the rule, not a usage line.
pub(super) fn room_arg(verb: &str, args: &str) -> Result<String, String> {
    let name = strip_room(args.trim());
    if name.is_empty() {
        return Err(format!("usage: {verb} ROOM"));
    }
    crate::protocol::RoomName::parse(&name)
        .map(|r| r.as_str().to_string())
        .map_err(|e| format!("{verb}: {e} (not {name:?})"))
}

mod roles;
use roles::{moderation, room_command};

/// Every command word the parser knows.
const VERBS: &[&str] = &[
    "help", "register", "login", "logout", "who", "online", "search", "whois", "chat", "query",
    "accept", "reject", "decline", "msg", "close", "dnd", "away", "create", "join", "leave",
    "part", "rooms", "list", "members", "names", "switch", "go", "stats", "quit", "exit", "sleep",
    "retry", "wait", "me", "topic", "kick", "ban", "unban", "op", "deop", "invite", "lock",
    "unlock", "announce", "keys",
];

/// The known command closest to a mistyped one (at most 2 edits away).
fn nearest_command(typed: &str) -> Option<&'static str> {
    let typed = typed.to_ascii_lowercase();
    VERBS
        .iter()
        .map(|v| (edit_distance(&typed, v), *v))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

/// Levenshtein distance over characters (inputs are short command words).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Parses a line. `Ok(None)` for a blank line; `Err` is a message for the user.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(None);
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Some(Command::Say(line.to_string())));
    };
    if rest.starts_with('/') {
        // "//text" sends "/text" literally.
        return Ok(Some(Command::Say(rest.to_string())));
    }
    let (verb, args) = match rest.split_once(char::is_whitespace) {
        Some((v, a)) => (v, a.trim()),
        None => (rest, ""),
    };
    let words: Vec<&str> = args.split_whitespace().collect();
    let one = |usage: &str| -> Result<String, String> {
        match words.as_slice() {
            [w] => Ok(w.to_string()),
            _ => Err(format!("usage: {usage}")),
        }
    };
    let opt = |usage: &str| -> Result<Option<String>, String> {
        match words.as_slice() {
            [] => Ok(None),
            [w] => Ok(Some(w.to_string())),
            _ => Err(format!("usage: {usage}")),
        }
    };
    let creds = |usage: &str| -> Result<(String, Option<String>), String> {
        match words.as_slice() {
            [u] => Ok((u.to_string(), None)),
            // The password is the rest of the line, so it may contain spaces.
            [u, ..] => Ok((u.to_string(), Some(args[u.len()..].trim().to_string()))),
            _ => Err(format!("usage: {usage}")),
        }
    };
    let cmd = match verb.to_ascii_lowercase().as_str() {
        "help" | "h" | "?" => Command::Help,
        "register" => {
            let (username, password) = creds("/register USER [PASSWORD]")?;
            Command::Register { username, password }
        }
        "login" => {
            let (username, password) = creds("/login USER [PASSWORD]")?;
            Command::Login { username, password }
        }
        "logout" => Command::Logout,
        "who" | "online" => match opt("/who [PREFIX] or /who +")? {
            Some(w) if w == "+" => Command::Who {
                prefix: None,
                more: true,
            },
            prefix => Command::Who {
                prefix,
                more: false,
            },
        },
        "search" | "whois" => Command::Search(one("/search USER")?),
        "keys" => Command::Keys(opt("/keys [USER]")?),
        "chat" | "query" => Command::Chat(one("/chat USER")?),
        "accept" => Command::Accept(opt("/accept [USER]")?),
        "reject" | "decline" => Command::Reject(opt("/reject [USER]")?),
        "msg" => match args.split_once(char::is_whitespace) {
            Some((to, text)) if !text.trim().is_empty() => Command::Msg {
                to: to.to_string(),
                text: text.trim().to_string(),
            },
            _ => return Err("usage: /msg USER TEXT".into()),
        },
        "close" => Command::Close(opt("/close [USER]")?),
        "away" => Command::Away((!args.is_empty()).then(|| args.to_string())),
        "topic" => {
            let (room, text) = match args.strip_prefix('#') {
                Some(rest) => match rest.split_once(char::is_whitespace) {
                    Some((r, t)) => (Some(r.to_string()), Some(t.trim().to_string())),
                    None => (Some(rest.to_string()), None),
                },
                None => (None, (!args.is_empty()).then(|| args.to_string())),
            };
            let text = text.map(|t| if t == "-" { String::new() } else { t });
            Command::Topic { room, text }
        }
        "dnd" => match words.as_slice() {
            [] => Command::Dnd(None),
            ["on"] => Command::Dnd(Some(true)),
            ["off"] => Command::Dnd(Some(false)),
            _ => return Err("usage: /dnd [on|off]".into()),
        },
        "me" if !args.is_empty() => Command::Me(args.to_string()),
        "me" => return Err("usage: /me ACTION".into()),
        "create" | "join" => room_command(&verb.to_ascii_lowercase(), args)?,
        v @ ("kick" | "ban" | "unban" | "op" | "deop" | "invite" | "lock" | "unlock") => {
            moderation(v, args)?
        }
        "announce" if !args.is_empty() => Command::Announce(args.to_string()),
        "announce" => return Err("usage: /announce TEXT".into()),
        "leave" | "part" => Command::Leave(opt("/leave [ROOM]")?.map(|r| strip_room(&r))),
        "rooms" | "list" => Command::Rooms,
        "members" | "names" => Command::Members(opt("/members [ROOM]")?.map(|r| strip_room(&r))),
        "switch" | "go" => Command::Switch(one("/switch NAME")?),
        "stats" => Command::Stats,
        v @ ("send" | "get" | "refuse" | "cancel" | "files") => {
            Command::File(crate::peer::files::parse(v, args)?)
        }
        "history" | "lastlog" if words.first().is_some_and(|w| w.starts_with('#')) => {
            let usage = "usage: /history #ROOM [N] (N a number of texts)";
            let count = match words.get(1..) {
                Some([]) => None,
                Some([n]) => Some(n.parse::<u32>().ok().filter(|n| *n > 0).ok_or(usage)?),
                _ => return Err(usage.into()),
            };
            Command::RoomHistory {
                room: strip_room(words[0]),
                count,
            }
        }
        "history" | "lastlog" => match opt("/history [N]")? {
            None => Command::History(None),
            Some(n) => match n.parse::<usize>() {
                Ok(n) if n > 0 => Command::History(Some(n)),
                _ => {
                    return Err(format!(
                        "usage: /history [N] (N a number of lines, not {n:?})"
                    ))
                }
            },
        },
        "quit" | "exit" => Command::Quit,
        "sleep" => {
            let d = one("/sleep DURATION (e.g. 500ms, 2s)")?;
            Command::Sleep(parse_duration(&d).ok_or_else(|| format!("not a duration: {d}"))?)
        }
        "retry" => {
            let usage = "usage: /retry DURATION /COMMAND…";
            let (d, rest) = args.split_once(char::is_whitespace).ok_or(usage)?;
            let within = parse_duration(d).ok_or_else(|| format!("not a duration: {d}"))?;
            let cmd = match parse(rest.trim())? {
                Some(c @ (Command::Sleep(_) | Command::WaitFor { .. } | Command::Retry { .. })) => {
                    return Err(format!("/retry cannot repeat {c:?}"))
                }
                Some(c) => c,
                None => return Err(usage.into()),
            };
            Command::Retry {
                within,
                cmd: Box::new(cmd),
            }
        }
        "wait" => {
            let mut timeout = Duration::from_secs(10);
            let mut what = Vec::new();
            for w in &words {
                match w.strip_prefix("timeout=") {
                    Some(t) => {
                        timeout = parse_duration(t).ok_or_else(|| format!("not a duration: {t}"))?
                    }
                    None => what.push(w.to_string()),
                }
            }
            if what.is_empty() {
                return Err("usage: /wait EVENT [ARGS…] [timeout=10s]".into());
            }
            Command::WaitFor { what, timeout }
        }
        other => {
            return Err(match nearest_command(other) {
                Some(near) => {
                    format!("unknown command /{other}; did you mean /{near}? (/help lists them)")
                }
                None => format!("unknown command /{other}; /help lists them"),
            })
        }
    };
    Ok(Some(cmd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistakes_are_told_with_the_rule_or_the_nearest_command() {
        assert_eq!(
            parse("/serch bob"),
            Err("unknown command /serch; did you mean /search? (/help lists them)".into())
        );
        assert_eq!(
            parse("/xyzzy"),
            Err("unknown command /xyzzy; /help lists them".into())
        );
        assert_eq!(
            parse("/create bad name!"),
            Err(
                "/create: a room name is 1-32 characters of a-z, 0-9, '_', '-' (not \"bad name!\")"
                    .into()
            )
        );
        assert_eq!(parse("/join"), Err("usage: /join ROOM".into()));
        assert_eq!(parse("/join #lab"), Ok(Some(Command::Join("lab".into()))));
    }

    #[test]
    fn who_takes_a_prefix_or_a_plus() {
        let who = |prefix: Option<&str>, more| {
            Some(Command::Who {
                prefix: prefix.map(Into::into),
                more,
            })
        };
        assert_eq!(parse("/who").unwrap(), who(None, false));
        assert_eq!(parse("/online al").unwrap(), who(Some("al"), false));
        assert_eq!(parse("/who +").unwrap(), who(None, true));
        assert!(parse("/who a b").is_err());
    }

    #[test]
    fn parses_commands() {
        assert_eq!(
            parse("hello there").unwrap(),
            Some(Command::Say("hello there".into()))
        );
        assert_eq!(parse("  ").unwrap(), None);
        assert_eq!(
            parse("/msg bob hi  there").unwrap(),
            Some(Command::Msg {
                to: "bob".into(),
                text: "hi  there".into()
            })
        );
        assert_eq!(
            parse("/login alice my secret").unwrap(),
            Some(Command::Login {
                username: "alice".into(),
                password: Some("my secret".into())
            })
        );
        assert_eq!(
            parse("/login alice").unwrap(),
            Some(Command::Login {
                username: "alice".into(),
                password: None
            })
        );
        assert_eq!(
            parse("/join #lab").unwrap(),
            Some(Command::Join("lab".into()))
        );
        assert_eq!(
            parse("/sleep 250ms").unwrap(),
            Some(Command::Sleep(Duration::from_millis(250)))
        );
        assert_eq!(parse("//etc").unwrap(), Some(Command::Say("/etc".into())));
        assert!(parse("/msg bob").is_err());
        assert_eq!(
            parse("/retry 5s /join lab").unwrap(),
            Some(Command::Retry {
                within: Duration::from_secs(5),
                cmd: Box::new(Command::Join("lab".into()))
            })
        );
        assert!(parse("/retry 5s /sleep 1s").is_err());
        assert!(parse("/frobnicate").is_err());
        assert_eq!(
            parse("/wait message from=bob timeout=2s").unwrap(),
            Some(Command::WaitFor {
                what: vec!["message".into(), "from=bob".into()],
                timeout: Duration::from_secs(2)
            })
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("20"), Some(Duration::from_millis(20)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
