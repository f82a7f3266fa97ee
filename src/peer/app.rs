//! The main loop: owns all state, `select!`s over the event channel, the
//! signal channel and the earliest timer, and is the only caller of the UI.

use super::chat::{self, ChatConn, ChatMsg, Closing};
use super::chats::{Action, ChatEvent, Chats, ConnId, Lookup};
use super::commands::{Command, HELP};
use super::events::Event;
use super::link::Link;
use super::script::Script;
use super::ui::{Ui, UiEvent};
use super::Config;
use crate::protocol::*;
use crossbeam_channel::{select, Receiver, Sender};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Every this many heartbeats, one also goes over TCP: it learns whether
/// the session is still online, and keeps it online (within the 3 s
/// time-out) where a firewall drops the UDP heartbeats.
const CHECK_EVERY: u64 = 2;
/// How long `/quit` waits for the logout reply.
const QUIT_GRACE: Duration = Duration::from_millis(700);

/// What a registry reply is for.
pub enum Pending {
    /// The periodic session check (a `heartbeat` request over TCP).
    Check,
    Register,
    Login,
    Resume,
    Logout {
        quitting: bool,
    },
    Who,
    Search,
    /// A look-up for the chat engine (to dial, or to check a hello).
    Chat(Lookup),
    Room(super::rooms::RoomPending),
}

impl Pending {
    /// Requests the peer makes by itself, not for a command: their answers
    /// do not let a script go on to its next line.
    fn is_background(&self) -> bool {
        use super::rooms::RoomPending;
        matches!(
            self,
            Pending::Resume
                | Pending::Check
                | Pending::Chat(Lookup::Verify { .. })
                | Pending::Room(RoomPending::Refresh(_) | RoomPending::Rejoin { .. })
        )
    }
}

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

pub struct Session {
    pub username: String,
    pub token: String,
    pub heartbeat_every: Duration,
    pub heartbeat_port: u16,
}

pub struct App {
    pub cfg: Config,
    pub ui: Ui,
    pub events: Sender<Event>,
    pub link: Link<Pending>,
    pub udp: UdpSocket,
    pub tcp_port: u16,
    pub udp_port: u16,
    pub session: Option<Session>,
    next_heartbeat: Option<Instant>,
    /// Heartbeats sent, to pace the session checks.
    heartbeats: u64,
    /// A `resume` is on its way.
    resuming: bool,
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
    pub exit_code: Option<i32>,
    pub rooms: super::rooms::Rooms,
    pub script: Option<Script>,
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
        let link = Link::new(cfg.registry.clone(), events.clone());
        let rooms = super::rooms::Rooms::new(cfg.faults.clone());
        let chats = Chats::new(Instant::now(), cfg.chat_timeout);
        App {
            cfg,
            ui,
            events,
            link,
            udp,
            tcp_port,
            udp_port,
            session: None,
            next_heartbeat: None,
            heartbeats: 0,
            resuming: false,
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
            exit_code: None,
            rooms,
            script: None,
        }
    }

    pub fn me(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.username.as_str())
    }

    pub fn emit(&mut self, ev: UiEvent) {
        if let Some(script) = &mut self.script {
            script.observe(&ev);
        }
        self.ui.emit(ev);
    }

    pub fn error(&mut self, message: impl Into<String>) {
        self.emit(UiEvent::Error {
            code: None,
            message: message.into(),
        });
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

    /// Runs until `/quit`, Ctrl-C, end of input or the end of a script.
    pub fn run(
        &mut self,
        events: Receiver<Event>,
        conn_events: Receiver<Event>,
        datagrams: Receiver<(Vec<u8>, SocketAddr)>,
        signals: Receiver<()>,
    ) -> i32 {
        self.emit(UiEvent::Ready {
            tcp_port: self.tcp_port,
            udp_port: self.udp_port,
        });
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
                        for ev in events.try_iter().take(1024) {
                            self.on_event(ev);
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
                    if let Ok((bytes, from)) = d {
                        self.datagram(&bytes, from);
                        for (bytes, from) in datagrams.try_iter().take(1024) {
                            self.datagram(&bytes, from);
                        }
                    }
                }
                recv(signals) -> _ => self.quit(),
                recv(crossbeam_channel::after(wait)) -> _ => {}
            }
            self.on_timer(Instant::now());
            if let Some(code) = self.exit_code {
                return code;
            }
        }
    }

    /// The earliest instant something is due; `None` when fully idle.
    fn deadline(&self) -> Option<Instant> {
        let chats = self.chats.poll_timeout();
        let script = self.script.as_ref().and_then(|s| s.deadline());
        [
            self.next_heartbeat,
            chats,
            self.link.deadline(),
            self.quit_at,
            self.rooms.deadline(),
            script,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_timer(&mut self, now: Instant) {
        if self.next_heartbeat.is_some_and(|t| t <= now) {
            self.heartbeat(now);
        }
        for (p, e) in self.link.expired_waiting(now) {
            self.failed(p, &e);
        }
        for p in self.link.expired(now) {
            self.failed(
                p,
                &ApiError::new(
                    ErrorCode::RegistryUnreachable,
                    "the registry did not answer in time",
                ),
            );
        }
        self.with_chats(|c| c.handle_timeout(now));
        self.rooms_tick(now);
        if self.input_ended
            && self.quit_at.is_none()
            && self.link.pending_len() == 0
            && !self.chats.is_dialing()
        {
            self.quit();
        }
        if self.quit_at.is_some_and(|t| t <= now)
            || (self.quitting_ready && self.rooms.leaving_done())
        {
            self.finish();
        }
        self.script_step(now);
    }

    /// Asks the registry to re-attach our session (after a reconnect, or
    /// when it says the session went offline while we were cut off).
    fn resume_session(&mut self) {
        let Some(s) = &self.session else { return };
        if self.resuming {
            return;
        }
        let req = Request::Resume {
            token: s.token.clone(),
            tcp_port: self.tcp_port,
            udp_port: self.udp_port,
            advertise_ip: self.cfg.advertise.clone(),
        };
        self.resuming = true;
        self.send(req, Pending::Resume);
    }

    fn heartbeat(&mut self, now: Instant) {
        let (Some(s), Some(remote)) = (&self.session, self.link.remote()) else {
            // Never connected yet: keep the schedule, send when we can.
            self.next_heartbeat = self.session.as_ref().map(|s| now + s.heartbeat_every);
            return;
        };
        let to = SocketAddr::new(remote.ip(), s.heartbeat_port);
        let dg = serde_json::json!({"op": "heartbeat", "token": s.token}).to_string();
        if let Err(e) = self.udp.send_to(dg.as_bytes(), to) {
            log::debug!("heartbeat to {to}: {e}");
        }
        self.next_heartbeat = Some(now + s.heartbeat_every);
        // Datagrams get no answer, so now and then ask over the connection
        // whether the session is still online (it is not if we were cut off
        // longer than the time-out); an invalid_session answer resumes it.
        self.heartbeats += 1;
        if self.heartbeats % CHECK_EVERY == 0 && self.link.is_up() && !self.resuming {
            let req = Request::Heartbeat {
                token: s.token.clone(),
            };
            self.send(req, Pending::Check);
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Input(cmd) => self.command(cmd),
            Event::InputError(e) => {
                self.error(e);
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
            Event::RegistryConnected(stream) => {
                let reconnect = self.link.was_up;
                if let Err(e) = self.link.connected(stream) {
                    log::warn!("registry connection unusable: {e}");
                    self.link.down(Instant::now());
                    return;
                }
                if reconnect {
                    self.notice("reconnected to the registry");
                }
                self.resuming = false;
                self.resume_session();
                for (req, p) in self.link.take_waiting() {
                    self.send(req, p);
                }
            }
            Event::RegistryConnectFailed(e) => {
                log::info!("registry: {e}");
                self.link.down(Instant::now());
                if !self.link.was_up && self.link.failures == 1 {
                    self.error(format!("{e}; retrying in the background"));
                }
            }
            Event::RegistryReply(v) => {
                if let Some((p, reply, req)) = self.link.reply(v) {
                    match reply.result {
                        Ok(body) => self.replied(p, body),
                        Err(e)
                            if e.code == ErrorCode::InvalidSession
                                && self.session.is_some()
                                && !matches!(p, Pending::Resume | Pending::Logout { .. }) =>
                        {
                            // The registry took our session offline (we were
                            // cut off past the time-out) but still knows it:
                            // resume it, then ask again.
                            if !p.is_background() {
                                self.after_resume.push((req, p));
                            }
                            self.resume_session();
                        }
                        Err(e) => self.failed(p, &e),
                    }
                }
            }
            Event::RegistryClosed { generation, reason } => {
                if self.link.is_current(generation) {
                    for p in self.link.down(Instant::now()) {
                        self.failed(
                            p,
                            &ApiError::new(
                                ErrorCode::RegistryUnreachable,
                                "registry connection lost",
                            ),
                        );
                    }
                    if self.quit_at.is_none() {
                        self.emit(UiEvent::RegistryLost { reason });
                    }
                }
            }
            Event::ChatIncoming(stream) => self.chat_incoming(stream),
            Event::ChatDialed { user, result } => self.chat_dialed(user, result),
            Event::ChatMsg { conn, msg } => {
                let now = Instant::now();
                self.with_chats(|c| c.received(now, conn, msg));
            }
            Event::ChatGarbage { conn } => log::debug!("chat {conn}: ignored a malformed line"),
            Event::ChatClosed { conn, reason } => {
                self.with_chats(|c| c.conn_closed(conn, reason));
            }
        }
    }

    pub fn send(&mut self, req: Request, purpose: Pending) {
        if let Err((p, e)) = self.link.request(&req, purpose) {
            self.failed(p, &e);
        }
    }

    fn token(&mut self) -> Option<String> {
        match &self.session {
            Some(s) => Some(s.token.clone()),
            None => {
                self.error("not logged in; /login USER first");
                if let Some(s) = &mut self.script {
                    s.fail_current("not logged in".into());
                }
                None
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Help => self.emit(UiEvent::Help {
                commands: HELP
                    .iter()
                    .map(|(c, d)| (c.to_string(), d.to_string()))
                    .collect(),
            }),
            Command::Register { username, password } => {
                let req = Request::Register {
                    username,
                    password: password.unwrap_or_default(),
                };
                self.send(req, Pending::Register);
            }
            Command::Login { username, password } => {
                if let Some(me) = self.me() {
                    let msg = format!("already logged in as {me}; /logout first");
                    self.error(msg);
                    return;
                }
                let req = Request::Login {
                    username,
                    password: password.unwrap_or_default(),
                    tcp_port: self.tcp_port,
                    udp_port: self.udp_port,
                    advertise_ip: self.cfg.advertise.clone(),
                };
                self.send(req, Pending::Login);
            }
            Command::Logout => {
                if let Some(token) = self.token() {
                    self.leave_everything("logged out");
                    self.send(
                        Request::Logout { token },
                        Pending::Logout { quitting: false },
                    );
                }
            }
            Command::Who => {
                if let Some(token) = self.token() {
                    self.send(Request::Online { token }, Pending::Who);
                }
            }
            Command::Search(username) => {
                if let Some(token) = self.token() {
                    self.send(Request::Search { token, username }, Pending::Search);
                }
            }
            Command::Chat(user) => self.with_chats(|c| c.open(user, None)),
            Command::Accept(user) => self.with_chats(|c| c.answer(user, true)),
            Command::Reject(user) => self.with_chats(|c| c.answer(user, false)),
            Command::Msg { to, text } => match to.strip_prefix('#') {
                Some(room) => self.room_say(room.to_string(), text),
                None => self.with_chats(|c| c.open(to, Some(text))),
            },
            Command::Close(user) => self.close_chat(user),
            Command::Dnd(on) => {
                let on = self.chats.set_dnd(on);
                self.emit(UiEvent::Dnd { on });
            }
            Command::Create(room) => self.room_command(super::rooms::RoomCommand::Create(room)),
            Command::Join(room) => self.room_command(super::rooms::RoomCommand::Join(room)),
            Command::Leave(room) => self.room_command(super::rooms::RoomCommand::Leave(room)),
            Command::Rooms => self.room_command(super::rooms::RoomCommand::List),
            Command::Members(room) => self.room_command(super::rooms::RoomCommand::Members(room)),
            Command::Switch(name) => self.switch(name),
            Command::Stats => {
                self.rooms.stats.queue_overflow = self
                    .rooms
                    .queue_overflow
                    .load(std::sync::atomic::Ordering::Relaxed);
                self.emit(UiEvent::Stats {
                    rooms: self.rooms.stats.clone(),
                })
            }
            Command::Quit => self.quit(),
            Command::Say(text) => match self.current.clone() {
                Some(Target::Chat(user)) => self.with_chats(|c| c.open(user, Some(text))),
                Some(Target::Room(room)) => self.room_say(room, text),
                None => self.error("no current conversation: /chat USER or /join ROOM first"),
            },
            Command::Sleep(_) | Command::WaitFor { .. } | Command::Retry { .. } => {
                self.error("/sleep and /wait work in scripts (peer --script FILE)")
            }
        }
    }

    fn switch(&mut self, name: String) {
        let target = match name.strip_prefix('#') {
            Some(room) if self.rooms.is_member(room) => Target::Room(room.to_string()),
            None if self.chats.is_open(&name) => Target::Chat(name),
            _ if self.rooms.is_member(&name) => Target::Room(name),
            _ => {
                self.error(format!("no open chat or joined room called {name}"));
                return;
            }
        };
        self.set_current(target);
    }

    pub fn set_current(&mut self, target: Target) {
        if self.current.as_ref() != Some(&target) {
            self.current = Some(target.clone());
            self.emit(UiEvent::Current {
                target: target.to_string(),
            });
        }
    }

    fn replied(&mut self, p: Pending, body: ReplyBody) {
        let background = p.is_background();
        match (p, body) {
            (Pending::Register, ReplyBody::Registered { username }) => {
                self.emit(UiEvent::Registered { username })
            }
            (Pending::Login, ReplyBody::Session(s)) => {
                self.start_session(&s);
                self.emit(UiEvent::LoggedIn {
                    username: s.username,
                    address: s.address,
                });
            }
            (Pending::Check, _) => {}
            (Pending::Resume, ReplyBody::Session(s)) => {
                self.resuming = false;
                for (req, p) in std::mem::take(&mut self.after_resume) {
                    self.send(req, p);
                }
                self.start_session(&s);
                self.emit(UiEvent::SessionRestored {
                    username: s.username,
                });
                self.rooms_rejoin();
            }
            (Pending::Logout { quitting }, _) => {
                self.end_session_keep_rooms();
                if quitting {
                    self.quitting_ready = true;
                } else {
                    self.emit(UiEvent::LoggedOut);
                }
            }
            (Pending::Who, ReplyBody::Users { users }) => self.emit(UiEvent::Who { users }),
            (Pending::Search, ReplyBody::User { user }) => {
                self.emit(UiEvent::SearchResult { user })
            }
            (Pending::Chat(purpose), ReplyBody::User { user }) => {
                let now = Instant::now();
                self.with_chats(|c| c.looked_up(now, purpose, Ok(user)));
            }
            (Pending::Room(p), body) => self.room_replied(p, body),
            (_, body) => log::warn!("unexpected reply shape: {body:?}"),
        }
        if let (Some(s), false) = (&mut self.script, background) {
            s.request_done(true);
        }
    }

    fn failed(&mut self, p: Pending, e: &ApiError) {
        let background = p.is_background();
        if matches!(p, Pending::Check) {
            log::debug!("session check: {e}");
            return;
        }
        match p {
            Pending::Resume => {
                self.resuming = false;
                for (_, p) in std::mem::take(&mut self.after_resume) {
                    self.failed(p, e);
                }
                if e.code == ErrorCode::InvalidSession || e.code == ErrorCode::AlreadyOnline {
                    self.end_session();
                    self.error(format!(
                        "could not restore the session ({}); /login again",
                        e.message
                    ));
                } else {
                    // Try again with the next connection.
                    log::info!("resume failed: {e}");
                }
                return;
            }
            Pending::Logout { quitting: true } => {
                self.quitting_ready = true;
                return;
            }
            Pending::Logout { quitting: false } => self.end_session(),
            Pending::Chat(purpose) => {
                let now = Instant::now();
                self.with_chats(|c| c.looked_up(now, purpose, Err(e.clone())));
                return;
            }
            Pending::Room(p) => {
                self.room_failed(p, e);
                if !background {
                    self.script_fail("room request failed");
                }
                return;
            }
            _ => {}
        }
        self.api_error(e);
        self.script_fail("request failed");
    }

    fn script_fail(&mut self, why: &str) {
        if let Some(s) = &mut self.script {
            s.request_done(false);
            s.fail_current(why.to_string());
        }
    }

    fn start_session(&mut self, s: &SessionReply) {
        self.rooms.me = s.username.clone();
        self.chats.set_me(Some(s.username.clone()));
        self.session = Some(Session {
            username: s.username.clone(),
            token: s.token.clone(),
            heartbeat_every: Duration::from_millis(s.heartbeat_interval_ms.max(100)),
            heartbeat_port: s.heartbeat_port,
        });
        self.heartbeat(Instant::now());
    }

    fn end_session(&mut self) {
        self.end_session_keep_rooms();
        self.rooms.clear();
    }

    /// Ends the session but lets rooms we are leaving finish saying so.
    fn end_session_keep_rooms(&mut self) {
        self.session = None;
        self.chats.set_me(None);
        self.next_heartbeat = None;
    }

    /// Closes every chat (telling partners) and leaves every room.
    fn leave_everything(&mut self, why: &str) {
        self.with_chats(Chats::close_all);
        self.rooms_leave_all(why);
        self.current = None;
    }

    pub fn quit(&mut self) {
        if self.quit_at.is_some() {
            return;
        }
        self.quit_at = Some(Instant::now() + QUIT_GRACE);
        self.leave_everything("quit");
        match self.session.as_ref().map(|s| s.token.clone()) {
            Some(token) if self.link.is_up() => self.send(
                Request::Logout { token },
                Pending::Logout { quitting: true },
            ),
            _ => self.quitting_ready = true,
        }
    }

    fn script_step(&mut self, now: Instant) {
        while self.quit_at.is_none() {
            let Some(script) = &mut self.script else {
                return;
            };
            let next = script.next(now);
            if let Some((line, reason)) = script.take_failure() {
                self.emit(UiEvent::ScriptFailed { line, reason });
                self.quit();
                return;
            }
            if script.finished() {
                self.emit(UiEvent::ScriptDone);
                self.quit();
                return;
            }
            let Some(cmd) = next else { return };
            if cmd == Command::Quit {
                // Reaching /quit is the script's successful end.
                self.emit(UiEvent::ScriptDone);
                self.quit();
                return;
            }
            let before = self.link.pending_len();
            self.command(cmd);
            if self.link.pending_len() > before {
                if let Some(s) = &mut self.script {
                    s.awaiting_reply(now);
                }
            }
        }
    }

    fn finish(&mut self) {
        if self.exit_code.is_none() {
            // Let chat writers send their last lines (a bye) before exit.
            for c in std::mem::take(&mut self.closing) {
                c.wait(Duration::from_millis(300));
            }
            self.emit(UiEvent::Bye);
            let code = self.script.as_ref().map(|s| s.exit_code()).unwrap_or(0);
            self.exit_code = Some(code);
        }
    }

    // ---- one-to-one chats: glue between the engine and the threads ----

    /// Runs `f` on the chat engine, then carries out what it asks.
    fn with_chats(&mut self, f: impl FnOnce(&mut Chats)) {
        f(&mut self.chats);
        while let Some(a) = self.chats.poll_action() {
            self.chat_action(a);
        }
    }

    fn chat_action(&mut self, a: Action) {
        match a {
            Action::Send { conn, msg } => {
                if let Some(c) = self.conns.get(&conn) {
                    c.send(msg);
                }
            }
            Action::Say {
                conn,
                from,
                with,
                id,
                text,
            } => {
                let msg = ChatMsg::Msg {
                    id,
                    text: text.clone(),
                };
                if self.conns.get(&conn).is_some_and(|c| c.send(msg)) {
                    self.emit(UiEvent::Message {
                        from,
                        chat: with,
                        text,
                        id,
                        own: true,
                    });
                } else {
                    self.error(format!("the chat with {with} is closed; message not sent"));
                }
            }
            Action::Close { conn } => {
                if let Some(c) = self.conns.remove(&conn) {
                    self.closing.retain(|c| !c.is_done());
                    self.closing.push(c.close());
                }
            }
            Action::Lookup { user, purpose } => {
                match self.session.as_ref().map(|s| s.token.clone()) {
                    Some(token) => self.send(
                        Request::Search {
                            token,
                            username: user,
                        },
                        Pending::Chat(purpose),
                    ),
                    None => {
                        let e = ApiError::new(ErrorCode::InvalidSession, "not logged in");
                        self.chats.looked_up(Instant::now(), purpose, Err(e));
                    }
                }
            }
            Action::Dial { user, addr } => self.dial(user, addr),
            Action::Event(e) => self.chat_event(e),
        }
    }

    fn chat_event(&mut self, e: ChatEvent) {
        match e {
            ChatEvent::Requested { to } => self.emit(UiEvent::ChatRequested { to }),
            ChatEvent::Request { from } => self.emit(UiEvent::ChatRequest { from }),
            ChatEvent::Opened { with } => {
                self.emit(UiEvent::ChatAccepted { with: with.clone() });
                self.set_current(Target::Chat(with));
            }
            ChatEvent::Focus { with } => self.set_current(Target::Chat(with)),
            ChatEvent::Refused { by, reason } => self.emit(UiEvent::ChatRejected {
                by,
                reason: reason.to_string(),
            }),
            ChatEvent::Busy { user } => self.emit(UiEvent::Busy { user }),
            ChatEvent::TimedOut { with } => self.emit(UiEvent::ChatTimeout { with }),
            ChatEvent::Closed { with, reason } => {
                if self.current == Some(Target::Chat(with.clone())) {
                    self.current = None;
                }
                self.emit(UiEvent::ChatClosed {
                    with,
                    reason: reason.to_string(),
                });
            }
            ChatEvent::Received { from, id, text } => self.emit(UiEvent::Message {
                from: from.clone(),
                chat: from,
                text,
                id,
                own: false,
            }),
            ChatEvent::Notice(n) => self.notice(n.to_string()),
            ChatEvent::Error(e) => {
                self.emit(UiEvent::Error {
                    code: e.code(),
                    message: e.to_string(),
                });
                if let Some(why) = e.script_failure() {
                    self.script_fail(why);
                }
            }
        }
    }

    /// Connects to `user` off the main loop; the result comes back as
    /// [`Event::ChatDialed`].
    fn dial(&mut self, user: String, addr: Address) {
        let events = self.events.clone();
        let spawned = std::thread::Builder::new()
            .name("dial".into())
            .spawn(move || {
                let result = format!("{}:{}", addr.ip, addr.tcp_port)
                    .parse::<SocketAddr>()
                    .map_err(|e| format!("bad address {}: {e}", addr.ip))
                    .and_then(|sa| {
                        TcpStream::connect_timeout(&sa, Duration::from_secs(2))
                            .map_err(|e| format!("cannot reach {user} at {sa}: {e}"))
                    });
                let _ = events.send(Event::ChatDialed { user, result });
            });
        if let Err(e) = spawned {
            self.error(format!("cannot start a connection: {e}"));
        }
    }

    /// Starts a connection's threads under a new id.
    fn spawn_conn(&mut self, stream: TcpStream) -> std::io::Result<(ConnId, SocketAddr)> {
        let id = self.next_conn;
        self.next_conn += 1;
        let conn = chat::spawn(id, stream, self.conn_events.clone())?;
        let addr = conn.addr;
        self.conns.insert(id, conn);
        Ok((id, addr))
    }

    fn chat_dialed(&mut self, user: String, result: Result<TcpStream, String>) {
        let stream = match result {
            Ok(s) => s,
            Err(why) => return self.with_chats(|c| c.dial_failed(user, why)),
        };
        match self.spawn_conn(stream) {
            Ok((id, addr)) => {
                let now = Instant::now();
                self.with_chats(|c| c.connected(now, id, addr, user));
            }
            Err(e) => {
                self.error(format!("cannot use the connection to {user}: {e}"));
                self.chats.forget_dial(&user);
            }
        }
    }

    fn chat_incoming(&mut self, stream: TcpStream) {
        match self.spawn_conn(stream) {
            Ok((id, addr)) => {
                let now = Instant::now();
                self.with_chats(|c| c.accepted(now, id, addr));
            }
            Err(e) => log::warn!("incoming chat connection unusable: {e}"),
        }
    }

    /// `/close [USER]`: the current chat without a name.
    fn close_chat(&mut self, user: Option<String>) {
        let user = user.or_else(|| match &self.current {
            Some(Target::Chat(u)) => Some(u.clone()),
            _ => None,
        });
        match user {
            Some(u) => self.with_chats(|c| c.close(u)),
            None => self.error("no current chat; /close USER"),
        }
    }
}
