//! The one printer. Worker threads never print; the main loop hands every
//! [`UiEvent`] to [`Ui::emit`], which writes a coloured line for people or,
//! with `--json`, one JSON object per line for programs (see `protocol.md`).
//! Every human-readable line passes through [`sanitize`] first.

mod echo;
mod files;
pub mod prompt;
mod render;
pub mod sanitize;

use render::clock;
pub use render::{format_text, local_time, user_color};

use crate::protocol::{Address, RoomSummary, UserInfo};
use colored::Colorize;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// The first connection to the registry is up (at start, or once it
    /// could be reached after failing).
    RegistryReached {
        addr: String,
    },
    /// Started without a registry: what looking on the LAN found (sorted
    /// by name) and the address used (the first found, else the fallback).
    Discovery {
        found: Vec<crate::discovery::Found>,
        using: String,
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
    /// The registry went away and the peer moved to another one in its
    /// list (with its session restored there, when it had one).
    RegistryMoved {
        from: String,
        to: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
    },
    /// One page of `/who`: `total` online (with the prefix asked for;
    /// `null` from a registry without paging), and the cursor of the next
    /// page (`/who +`), `null` on the last.
    /// `away`: the away messages of the users listed who set one.
    Who {
        users: Vec<UserInfo>,
        total: Option<u64>,
        next: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        away: BTreeMap<String, String>,
    },
    SearchResult {
        user: UserInfo,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        away: Option<String>,
    },
    /// A room's topic: shown on join (`changed` false), or changed by
    /// `by` (`text` null: cleared).
    Topic {
        room: String,
        text: Option<String>,
        by: Option<String>,
        changed: bool,
    },
    /// An away message: ours set (`own`, `message` null: back), or that
    /// of `user`, whom we are about to chat with.
    Away {
        user: String,
        message: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        own: bool,
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
    /// A chat lost its connection; it resumes when the partner is back.
    ChatInterrupted {
        with: String,
        reason: String,
    },
    ChatResumed {
        with: String,
    },
    /// The partner acknowledged (has shown) our messages in the chat with
    /// `with` up to message `id`.
    ChatDelivered {
        with: String,
        id: u64,
    },
    /// Our messages in the chat with `with` that it ended without the
    /// partner acknowledging (texts cut to [`UNDELIVERED_TEXT`] characters).
    Undelivered {
        with: String,
        messages: Vec<UndeliveredMsg>,
    },
    /// A chat message; `from == me` for our own. `chat` is the partner's
    /// name or `#room`. `queued`: our own message, kept until the
    /// interrupted chat resumes.
    Message {
        from: String,
        chat: String,
        text: String,
        id: u64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        own: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        queued: bool,
        /// An action (`/me waves`): `text` is what follows `/me `.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        action: bool,
        /// A room line that names us, or a private message in a chat that
        /// is not current: highlighted, and the bell rings (see
        /// [`crate::peer::social`]).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        mention: bool,
        /// A room message sent while we were away (cut off, dropped by
        /// its sender), delivered when we came back.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        late: bool,
    },
    Current {
        target: String,
    },
    /// `/history`: the last lines of conversation `chat` (oldest first),
    /// each `YYYY-MM-DD HH:MM:SS text` as in its log file.
    History {
        chat: String,
        lines: Vec<String>,
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
    /// We hold `room`'s key of `epoch` now, made by member `maker` and
    /// sealed to us (at joining, and after each re-key).
    RoomKey {
        room: String,
        epoch: u64,
        maker: String,
    },
    MemberLeft {
        room: String,
        user: String,
        reason: String,
    },
    /// `topics`: the topic of each room that has one.
    Rooms {
        rooms: Vec<RoomSummary>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        topics: BTreeMap<String, String>,
    },
    /// `roles`: the owner and operators (shown `@name`).
    Members {
        room: String,
        members: Vec<UserInfo>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        roles: BTreeMap<String, crate::protocol::Role>,
    },
    /// We were taken out of `room` by a kick (or a ban).
    Kicked {
        room: String,
        by: String,
        reason: String,
        banned: bool,
    },
    /// Our kick, ban, unban, op, deop, invite, lock or unlock was done.
    Moderated {
        room: String,
        action: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
    /// A registry admin's announcement.
    Announcement {
        id: u64,
        by: String,
        text: String,
    },
    /// Progress of one of our room messages: `acked` of `total` members.
    Delivery {
        room: String,
        id: u64,
        acked: usize,
        total: usize,
    },
    /// Progress of a long send (a paste) to a room: `done` of `total`
    /// messages delivered to every member (or reported missed).
    Sending {
        room: String,
        done: u64,
        total: u64,
    },
    /// A room message that could not reach some members after every retry.
    DeliveryFailed {
        room: String,
        id: u64,
        missing: Vec<String>,
    },
    /// A member starts answering our room history request: what follows
    /// is `room`'s texts as `via` kept them.
    RoomHistoryStart {
        room: String,
        via: String,
    },
    /// A room text shown before we joined (or asked), `age_ms` before
    /// `via` answered; vouched for by `via`, not signed by `from`.
    RoomHistory {
        room: String,
        from: String,
        id: u64,
        text: String,
        age_ms: u64,
        via: String,
    },
    /// The end of `via`'s history answer: `count` earlier texts shown.
    RoomHistoryEnd {
        room: String,
        via: String,
        count: u32,
    },
    /// No member could give us `room`'s history (`reason`).
    RoomHistoryUnavailable {
        room: String,
        reason: String,
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
    // File transfers (`peer::files`, protocol.md §5).
    /// A file offered to us (`own` false, by `from`) or by us (to `to`).
    FileOffered {
        offer: String,
        name: String,
        size: u64,
        sha256: String,
        from: String,
        to: String,
        own: bool,
    },
    /// `done` of `size` bytes, `rate` bytes/s, `left` seconds; `sending`:
    /// we serve it to `user`, else we fetch it from `user`.
    FileProgress {
        offer: String,
        name: String,
        user: String,
        sending: bool,
        done: u64,
        size: u64,
        rate: u64,
        left: u64,
    },
    /// The whole file arrived, its SHA-256 checked, saved at `path`.
    FileReceived {
        offer: String,
        name: String,
        from: String,
        path: String,
        size: u64,
        sha256: String,
    },
    /// The receiver `to` has the whole file, checked.
    FileSent {
        offer: String,
        name: String,
        to: String,
    },
    FileFailed {
        offer: String,
        name: String,
        user: String,
        reason: String,
    },
    /// The offer and its transfer stopped (`by` us or the other side).
    FileCancelled {
        offer: String,
        name: String,
        by: String,
    },
    /// The offer was refused by its receiver `by`.
    FileRefused {
        offer: String,
        name: String,
        by: String,
        reason: String,
    },
    /// `/files`: offers made and received, and their state.
    Files {
        files: Vec<FileEntry>,
    },
}

/// One line of [`UiEvent::Files`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub offer: String,
    pub name: String,
    pub size: u64,
    /// `in` (offered to us) or `out` (offered by us).
    pub direction: String,
    /// The other side.
    pub user: String,
    /// `offered`, `waiting` (for the chat to open) or `fetching`.
    pub state: String,
}

/// Characters of each text an [`UiEvent::Undelivered`] names.
pub const UNDELIVERED_TEXT: usize = 60;

/// One message in [`UiEvent::Undelivered`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndeliveredMsg {
    pub id: u64,
    pub text: String,
}

impl UndeliveredMsg {
    /// Our message `id`, its text cut to [`UNDELIVERED_TEXT`] characters.
    pub fn new(id: u64, text: &str) -> UndeliveredMsg {
        let mut cut: String = text.chars().take(UNDELIVERED_TEXT).collect();
        if cut.len() < text.len() {
            cut.push('…');
        }
        UndeliveredMsg { id, text: cut }
    }
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
    /// Mentions ring the terminal bell (off while `/dnd` is on).
    bell: bool,
    /// Our room messages waiting for their delivery state.
    echoes: echo::Echoes,
    /// The prompt, whose gate output waits at while a line is erased.
    prompt: Option<std::sync::Arc<prompt::PromptShared>>,
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

impl Ui {
    pub fn new(json: bool, color: bool, sink: Sink) -> Ui {
        colored::control::set_override(color && !json);
        Ui {
            json,
            color: color && !json,
            sink,
            gone: false,
            bell: true,
            echoes: Default::default(),
            prompt: None,
        }
    }

    /// Whether mentions ring the bell (`/dnd` turns it off).
    pub fn set_bell(&mut self, on: bool) {
        self.bell = on;
    }

    /// Output waits at the prompt's gate while the stdin thread erases a
    /// line (see [`prompt`]).
    pub fn set_prompt(&mut self, p: std::sync::Arc<prompt::PromptShared>) {
        self.prompt = Some(p);
    }

    /// Writes one line. A terminal that went away (hang-up, closed pipe)
    /// is not an error to die of: output stops, and [`Ui::terminal_gone`]
    /// tells the main loop to quit cleanly.
    fn write(&mut self, line: String) {
        if self.gone {
            return;
        }
        if let (Some(p), Sink::Editor(_)) = (&self.prompt, &self.sink) {
            p.wait_gate();
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
        if let Some(ev) = self.echo(ev, unverified) {
            // One BEL per mentioning line, after the sanitised text (which
            // can hold none of its own).
            let bell = self.bell && matches!(ev, UiEvent::Message { mention: true, .. });
            let mut line = self.line(ev);
            if bell {
                line.push('\x07');
            }
            self.print_human(line, unverified);
        }
    }

    /// Writes a human-readable line, with the time and the unverified mark.
    fn print_human(&mut self, line: String, unverified: bool) {
        let mark = if unverified {
            format!("{} ", "[unverified]".red().bold())
        } else {
            String::new()
        };
        let stamped = format!("{} {mark}{line}", clock().dimmed());
        self.write(stamped);
    }

    /// The human-readable line for an event: every string in it is
    /// sanitised first ([`sanitize`]), so network text never
    /// reaches the terminal around the sanitiser.
    pub(super) fn line(&self, ev: UiEvent) -> String {
        self.render(&sanitize::event(ev))
    }
}
