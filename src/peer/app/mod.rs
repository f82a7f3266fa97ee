//! The peer's main loop and the state it owns ([`App`]): it `select!`s
//! over the event channels, the signal channel and the earliest timer, and
//! is the only caller of the UI.
//!
//! `App` is split by concern, each an `impl App` block:
//! - this file: the state, the loop, timers, event dispatch, UI helpers;
//! - `session`: the registry link (login, register, resume, heartbeats,
//!   replies and failures of every request);
//! - `registry`: the registry connection coming and going, and moving to
//!   another registry of the list;
//! - `command`: the user's `/commands` and the script runner;
//! - `chats`: glue between the chat engine ([`super::chats`]) and the
//!   chat connection threads;
//! - `quit`: logging out and quitting;
//! - `rooms`: glue between the room engine ([`super::rooms`]) and the UDP
//!   socket, the registry and the UI.

mod batch;
mod chat_keys;
mod chats;
mod command;
mod convo;
mod file_events;
mod files;
mod history;
mod history_answer;
mod identity;
mod keylog;
mod moderation;
mod multicast;
mod quit;
mod registry;
mod room_keys;
mod rooms;
mod session;
mod social;
mod topics;

pub use rooms::{RoomCommand, RoomPending, Rooms};

pub use multicast::{receive, Arrived, Multicast};
pub use registry::Moving;
pub use session::{Pending, Session};

use super::chat::{ChatConn, Closing};
use super::chats::{Chats, ConnId};
use super::events::Event;
use super::link::Link;
use super::script::Script;
use super::ui::{Ui, UiEvent};
use super::Config;
use crate::protocol::{ApiError, Request};
use crossbeam_channel::{select, Receiver, Sender};
use std::collections::HashMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// The conversation plain text goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Chat(String),
    Room(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Chat(u) => f.write_str(u),
            Target::Room(r) => write!(f, "#{r}"),
        }
    }
}

pub struct App {
    /// Whether a session is open, for the stdin thread (which checks
    /// `/login` before asking for a password).
    logged_in: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Names seen go by, for Tab completion in the stdin thread.
    names: crate::peer::complete::SharedNames,
    pub cfg: Config,
    pub ui: Ui,
    pub events: Sender<Event>,
    pub link: Link<Pending>,
    pub udp: UdpSocket,
    pub tcp_port: u16,
    pub udp_port: u16,
    pub session: Option<Session>,
    /// This user's identity keys on this device, loaded (or made) at
    /// `/login`; their public halves go with `login` and `resume`.
    pub identity: Option<std::sync::Arc<crate::identity::Identity>>,
    /// Whose keys `identity` holds.
    identity_user: Option<String>,
    /// `--keylog`: where room keys are written.
    keylog: Option<keylog::KeyLog>,
    next_heartbeat: Option<Instant>,
    /// Heartbeats sent, to pace the session checks.
    heartbeats: u64,
    /// The id of the last announcement shown (see `moderation`).
    announcements_seen: u64,
    /// A `resume` is on its way.
    resuming: bool,
    /// Moving to another registry after losing one.
    moving: Option<Moving>,
    /// Requests refused because the session had gone offline, to ask again
    /// once it is resumed.
    after_resume: Vec<(Request, Pending)>,
    /// Connection events (chat readers and writers, the listener).
    conn_events: Sender<Event>,
    /// One-to-one chats; `conns` are their connections' threads.
    chats: Chats,
    conns: HashMap<ConnId, ChatConn>,
    /// Connections closed, until their writer has flushed (see `finish`).
    closing: Vec<Closing>,
    next_conn: ConnId,
    pub current: Option<Target>,
    quit_at: Option<Instant>,
    /// Logged out (or could not): exit once rooms have said goodbye.
    quitting_ready: bool,
    /// Standard input ended; quit once pending requests are answered.
    input_ended: bool,
    /// Piped commands held until the `/register` or `/login` before them
    /// is answered (see [`App::on_input`]).
    held: std::collections::VecDeque<crate::peer::commands::Command>,
    /// Whether commands come from a pipe (not a terminal, not a script).
    piped: bool,
    pub exit_code: Option<i32>,
    /// Where `/who +` goes on: the prefix and cursor of the last page.
    who_more: Option<(Option<String>, String)>,
    pub rooms: Rooms,
    pub script: Option<Script>,
    /// File offers and transfers (`/send`, `/get`; see `files`).
    pub files: crate::peer::files::Files,
    /// Conversation scrollback and log files (`/history`).
    pub logs: crate::peer::logs::Logs,
    /// The prompt, drawn by the stdin thread.
    prompt: std::sync::Arc<crate::peer::ui::prompt::PromptShared>,
    /// Open conversations and unread counts (see `convo`).
    convos: convo::Conversations,
    /// The current conversation ended: move to another (see `convo`).
    pending_move: bool,
    /// Room history for latecomers (see `history`).
    history: history::HistoryState,
    /// Room multicast (`--room-transport`), once `run` set it up.
    pub multicast: Option<Multicast>,
}

impl App {
    pub fn new(
        cfg: Config,
        ui: Ui,
        events: Sender<Event>,
        conn_events: Sender<Event>,
        udp: UdpSocket,
        tcp_port: u16,
        udp_port: u16,
    ) -> App {
        let link = Link::new(cfg.registry.clone(), events.clone()).secured(cfg.security.clone());
        let mut rooms = Rooms::new(cfg.faults.clone());
        rooms.engine.set_retention(cfg.room_retention);
        let logs = crate::peer::logs::Logs::new(cfg.log_root.clone());
        let history = history::HistoryState::new(cfg.room_history);
        let files = crate::peer::files::Files::new(cfg.files.clone());
        let keylog = cfg.keylog.clone().map(keylog::KeyLog::new);
        let mut chats = Chats::new(Instant::now(), cfg.chat_timeout);
        chats.set_resume_limit(cfg.chat_resume);
        App {
            logged_in: Default::default(),
            names: Default::default(),
            cfg,
            ui,
            events,
            link,
            udp,
            tcp_port,
            udp_port,
            session: None,
            identity: None,
            identity_user: None,
            keylog,
            next_heartbeat: None,
            heartbeats: 0,
            announcements_seen: 0,
            resuming: false,
            moving: None,
            after_resume: Vec::new(),
            conn_events,
            chats,
            conns: HashMap::new(),
            closing: Vec::new(),
            next_conn: 1,
            current: None,
            quit_at: None,
            quitting_ready: false,
            input_ended: false,
            held: Default::default(),
            piped: !crate::peer::term::is_tty(0),
            exit_code: None,
            who_more: None,
            logs,
            files,
            rooms,
            script: None,
            prompt: Default::default(),
            convos: Default::default(),
            pending_move: false,
            history,
            multicast: None,
        }
    }

    pub fn me(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.username.as_str())
    }

    pub fn emit(&mut self, mut ev: UiEvent) {
        self.decorate(&mut ev);
        if let Some(script) = &mut self.script {
            script.observe(&ev);
        }
        if let Ok(mut names) = self.names.lock() {
            names.observe(&ev);
        }
        self.observe_conversations(&ev);
        let failed = self.log_event(&ev);
        self.ui.emit(ev);
        self.log_failed(failed);
    }

    /// Records `ev` in its conversation's scrollback and log (see
    /// [`crate::peer::logs`]); the error to show once it is shown.
    pub(super) fn log_event(&mut self, ev: &UiEvent) -> Option<String> {
        let me = self.session.as_ref().map(|s| s.username.as_str());
        self.logs.set_user(me);
        self.logs.record(ev)
    }

    /// Shows the failure [`App::log_event`] returned, if any.
    pub(super) fn log_failed(&mut self, failed: Option<String>) {
        if let Some(message) = failed {
            self.ui.emit(UiEvent::Error {
                code: Some("log_failed".into()),
                message,
            });
        }
    }

    /// An error of the peer's own (not the registry's), with its `code`
    /// (protocol.md §5 lists them).
    pub fn error(&mut self, code: &str, message: impl Into<String>) {
        self.emit(UiEvent::Error {
            code: Some(code.to_string()),
            message: message.into(),
        });
    }

    /// Shares whether a session is open with the stdin thread.
    pub fn share_login_state(&mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        self.logged_in = flag;
    }

    /// Shares the prompt with the stdin thread.
    pub fn share_prompt(&mut self, prompt: std::sync::Arc<crate::peer::ui::prompt::PromptShared>) {
        self.ui.set_prompt(prompt.clone());
        self.prompt = prompt;
    }

    /// Shares the names seen go by with the stdin thread (Tab completion).
    pub fn share_names(&mut self, names: crate::peer::complete::SharedNames) {
        self.names = names;
    }

    pub(super) fn set_logged_in(&self, on: bool) {
        self.logged_in
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn api_error(&mut self, e: &ApiError) {
        self.emit(UiEvent::Error {
            code: Some(e.code.as_str().to_string()),
            message: e.message.clone(),
        });
    }

    pub fn notice(&mut self, text: impl Into<String>) {
        self.emit(UiEvent::Notice { text: text.into() });
    }

    pub fn set_current(&mut self, target: Target) {
        if self.current.as_ref() != Some(&target) {
            self.current = Some(target.clone());
            self.mark_read();
            self.emit(UiEvent::Current {
                target: target.to_string(),
            });
        }
    }

    /// Runs until `/quit`, Ctrl-C, end of input or the end of a script.
    pub fn run(
        &mut self,
        events: Receiver<Event>,
        conn_events: Receiver<Event>,
        datagrams: Receiver<Arrived>,
        signals: Receiver<()>,
    ) -> i32 {
        self.emit(UiEvent::Ready {
            tcp_port: self.tcp_port,
            udp_port: self.udp_port,
        });
        if let Some(d) = self.cfg.discovery.clone() {
            self.emit(UiEvent::Discovery {
                found: d.found,
                using: d.using,
            });
        }
        loop {
            let now = Instant::now();
            self.link.poll_connect(now);
            let wait = self
                .deadline()
                .map(|d| d.saturating_duration_since(now))
                .unwrap_or(Duration::from_secs(3600));
            select! {
                recv(events) -> ev => match ev {
                    Ok(ev) => {
                        self.on_event(ev);
                        // Take what else is waiting before timers run, so a
                        // backlog of acknowledgements is seen before any
                        // retransmission is decided.
                        for (i, ev) in events.try_iter().take(1024).enumerate() {
                            self.on_event(ev);
                            if i % 64 == 63 {
                                self.heartbeat_if_due();
                            }
                        }
                    }
                    Err(_) => self.quit(),
                },
                recv(conn_events) -> ev => {
                    if let Ok(ev) = ev {
                        self.on_event(ev);
                        for ev in conn_events.try_iter().take(1024) {
                            self.on_event(ev);
                        }
                    }
                }
                recv(datagrams) -> d => {
                    if let Ok((bytes, from, at, group)) = d {
                        self.datagram(&bytes, from, at, group);
                    }
                }
                recv(signals) -> _ => self.quit(),
                recv(crossbeam_channel::after(wait)) -> _ => {}
            }
            // Every datagram waiting is handled before any timer: a room
            // member is judged silent by when its datagrams arrived, never
            // because this loop was busy.
            for (i, (bytes, from, at, group)) in
                datagrams.try_iter().take(super::DATAGRAM_QUEUE).enumerate()
            {
                self.datagram(&bytes, from, at, group);
                if i % 256 == 255 {
                    self.heartbeat_if_due();
                }
            }
            self.on_timer(Instant::now());
            self.move_current();
            self.update_prompt();
            if self.ui.terminal_gone() {
                // Hang-up or a closed pipe: leave rooms and log out as on
                // Ctrl-C, with nothing more printed.
                self.quit();
            }
            if let Some(code) = self.exit_code {
                return code;
            }
        }
    }

    /// The earliest instant something is due; `None` when fully idle.
    fn deadline(&self) -> Option<Instant> {
        let chats = self.chats.poll_timeout();
        let script = self.script.as_ref().and_then(|s| s.deadline());
        let prompt = self
            .prompt
            .stale()
            .then(|| Instant::now() + crate::peer::ui::prompt::RECHECK);
        [
            prompt,
            self.next_heartbeat,
            chats,
            self.link.deadline(),
            self.quit_at,
            self.rooms.deadline(),
            self.ui.deadline(),
            self.history.deadline(),
            script,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_timer(&mut self, now: Instant) {
        self.release_held();
        self.session_tick(now);
        self.with_chats(|c| c.handle_timeout(now));
        self.flush_offers();
        self.rooms_tick(now);
        self.history_tick(now);
        self.quit_tick(now);
        self.script_step(now);
        self.ui.tick(now);
    }

    /// A command from the user. Piped commands run in order as a script's
    /// do: nothing runs while a `/register`, `/login` or `/logout` before it
    /// waits for its answer (so `/login` then `/create` does not answer
    /// "not logged in"). Typed commands run at once.
    fn on_input(&mut self, cmd: crate::peer::commands::Command) {
        if self.piped && self.script.is_none() && (self.auth_pending() || !self.held.is_empty()) {
            self.held.push_back(cmd);
            return;
        }
        self.command(cmd);
    }

    fn auth_pending(&self) -> bool {
        self.link.any_pending(|p| {
            matches!(
                p,
                Pending::Register | Pending::Login | Pending::Logout { .. }
            )
        })
    }

    /// Runs held commands once nothing they wait on is pending.
    fn release_held(&mut self) {
        while !self.held.is_empty() && !self.auth_pending() && self.quit_at.is_none() {
            if let Some(cmd) = self.held.pop_front() {
                self.command(cmd);
            }
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Input(cmd) => self.on_input(cmd),
            Event::InputError(e) => {
                self.error("bad_input", e);
                if let Some(s) = &mut self.script {
                    s.fail_current("the line did not parse".into());
                }
            }
            Event::InputEnd => {
                // Piped commands: let the requests already made finish
                // (each is bounded by the request time-out), then quit.
                if self.script.is_none() {
                    self.input_ended = true;
                }
            }
            Event::Interrupt => self.quit(),
            Event::InputHint(text) => self.notice(text),
            Event::RegistryConnected(stream, report) => self.registry_connected(stream, report),
            Event::RegistryConnectFailed(e, report) => self.registry_connect_failed(e, report),
            Event::RegistryReply(v) => self.registry_reply(v),
            Event::RegistryClosed { generation, reason } => {
                self.registry_closed(generation, reason)
            }
            Event::ChatIncoming(stream) => self.chat_incoming(stream),
            Event::ChatDialed { user, key, result } => self.chat_dialed(user, key, result),
            Event::ChatSecured { conn, user, key } => {
                self.with_chats(|c| c.secured(conn, user, key))
            }
            Event::HistoryDialed {
                room,
                user,
                key,
                result,
            } => self.history_dialed(room, user, key, result),
            Event::ChatMsg { conn, msg } if self.history.owns(conn) => self.history_msg(conn, msg),
            Event::ChatMsg { conn, msg } if msg.is_file() => self.file_msg(conn, msg),
            Event::ChatMsg { conn, msg } => {
                let now = Instant::now();
                self.with_chats(|c| c.received(now, conn, msg));
            }
            Event::File(report) => self.file_report(report),
            Event::ChatGarbage { conn } => self.with_chats(|c| c.garbage(conn)),
            Event::ChatClosed { conn, reason } if self.history.owns(conn) => {
                self.history_closed(conn, reason)
            }
            Event::ChatClosed { conn, reason } => {
                self.with_chats(|c| c.conn_closed(conn, reason));
            }
        }
    }
}
