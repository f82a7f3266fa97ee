//! The main loop: owns all state, `select!`s over the event channel, the
//! signal channel and the earliest timer, and is the only caller of the UI.

use super::chat::{self, ChatConn, ChatMsg};
use super::commands::{Command, HELP};
use super::events::Event;
use super::link::Link;
use super::script::Script;
use super::ui::{Ui, UiEvent};
use super::Config;
use crate::protocol::*;
use crossbeam_channel::{select, Receiver, Sender};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Keep-alive period on open chats; silence for `CHAT_DEAD` ends the chat.
const CHAT_PING: Duration = Duration::from_secs(1);
const CHAT_DEAD: Duration = Duration::from_secs(3);
/// A connection that has not said hello by then is dropped.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
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
    /// Look a user up to open a chat with them.
    Dial {
        user: String,
    },
    /// Check that an incoming chat request comes from where its user is.
    Verify {
        conn: u64,
    },
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
                | Pending::Verify { .. }
                | Pending::Room(RoomPending::Refresh(_) | RoomPending::Rejoin { .. })
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChatState {
    /// Incoming connection; no hello yet.
    Hello,
    /// Incoming hello; checking the sender's address with the registry.
    Verifying,
    /// They asked; waiting for our /accept or /reject.
    Asked,
    /// We asked; waiting for their answer.
    Requesting,
    Open,
}

struct Chat {
    conn: ChatConn,
    user: String,
    state: ChatState,
    since: Instant,
    last_heard: Instant,
    next_id: u64,
    /// Texts typed before the chat was open; sent on accept.
    queued: Vec<String>,
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
    chats: HashMap<u64, Chat>,
    /// Texts for users being looked up or dialled.
    dialing: HashMap<String, Vec<String>>,
    next_conn: u64,
    next_chat_tick: Instant,
    pub current: Option<Target>,
    dnd: bool,
    quit_at: Option<Instant>,
    /// Logged out (or could not): exit once rooms have said goodbye.
    quitting_ready: bool,
    /// Standard input ended; quit once pending requests are answered.
    input_ended: bool,
    pub exit_code: Option<i32>,
    pub rooms: super::rooms::Rooms,
    pub script: Option<Script>,
}

/// "; 2 message(s) not sent", or nothing when none were waiting.
fn unsent(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!("; {n} message(s) not sent")
    }
}

fn same_ip(a: IpAddr, b: &str) -> bool {
    let norm = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    b.parse::<IpAddr>()
        .map(|b| norm(a) == norm(b))
        .unwrap_or(false)
}

impl App {
    pub fn new(
        cfg: Config,
        ui: Ui,
        events: Sender<Event>,
        udp: UdpSocket,
        tcp_port: u16,
        udp_port: u16,
    ) -> App {
        let link = Link::new(cfg.registry.clone(), events.clone());
        let rooms = super::rooms::Rooms::new(cfg.faults.clone());
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
            chats: HashMap::new(),
            dialing: HashMap::new(),
            next_conn: 1,
            next_chat_tick: Instant::now() + CHAT_PING,
            current: None,
            dnd: false,
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
        let chats = (!self.chats.is_empty()).then_some(self.next_chat_tick);
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
        if !self.chats.is_empty() && now >= self.next_chat_tick {
            self.next_chat_tick = now + CHAT_PING;
            self.chat_tick(now);
        }
        self.rooms_tick(now);
        if self.input_ended
            && self.quit_at.is_none()
            && self.link.pending_len() == 0
            && self.dialing.is_empty()
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
            Event::ChatMsg { conn, msg } => self.chat_msg(conn, msg),
            Event::ChatGarbage { conn } => log::debug!("chat {conn}: ignored a malformed line"),
            Event::ChatClosed { conn, reason } => {
                if let Some(c) = self.chats.remove(&conn) {
                    let reason = if reason == "closed" {
                        "connection closed".to_string()
                    } else {
                        reason
                    };
                    self.chat_gone(c, reason);
                }
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
            Command::Chat(user) => self.open_chat(user, None),
            Command::Accept(user) => self.answer(user, true),
            Command::Reject(user) => self.answer(user, false),
            Command::Msg { to, text } => match to.strip_prefix('#') {
                Some(room) => self.room_say(room.to_string(), text),
                None => self.open_chat(to, Some(text)),
            },
            Command::Close(user) => self.close_chat(user),
            Command::Dnd(on) => {
                self.dnd = on.unwrap_or(!self.dnd);
                self.emit(UiEvent::Dnd { on: self.dnd });
            }
            Command::Create(room) => self.room_command(super::rooms::RoomCommand::Create(room)),
            Command::Join(room) => self.room_command(super::rooms::RoomCommand::Join(room)),
            Command::Leave(room) => self.room_command(super::rooms::RoomCommand::Leave(room)),
            Command::Rooms => self.room_command(super::rooms::RoomCommand::List),
            Command::Members(room) => self.room_command(super::rooms::RoomCommand::Members(room)),
            Command::Switch(name) => self.switch(name),
            Command::Stats => {
                let rooms = self.rooms.stats();
                self.emit(UiEvent::Stats { rooms })
            }
            Command::Quit => self.quit(),
            Command::Say(text) => match self.current.clone() {
                Some(Target::Chat(user)) => self.open_chat(user, Some(text)),
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
            None if self.open_with(&name).is_some() => Target::Chat(name),
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
            (Pending::Dial { user }, ReplyBody::User { user: info }) => self.dial(user, info),
            (Pending::Verify { conn }, ReplyBody::User { user }) => self.verified(conn, Some(user)),
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
            Pending::Dial { user } => {
                let lost = self.dialing.remove(&user).unwrap_or_default();
                let extra = unsent(lost.len());
                self.emit(UiEvent::Error {
                    code: Some(e.code.as_str().into()),
                    message: format!("cannot chat with {user}: {}{extra}", e.message),
                });
                self.script_fail("chat failed");
                return;
            }
            Pending::Verify { conn } => {
                self.verified(conn, None);
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
        self.rooms.set_identity(&s.username);
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
        self.next_heartbeat = None;
    }

    /// Closes every chat (telling partners) and leaves every room.
    fn leave_everything(&mut self, why: &str) {
        for (_, c) in self.chats.drain() {
            c.conn.send(ChatMsg::Bye);
            c.conn.closed_within(Duration::from_millis(300));
        }
        self.dialing.clear();
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
            self.emit(UiEvent::Bye);
            let code = self.script.as_ref().map(|s| s.exit_code()).unwrap_or(0);
            self.exit_code = Some(code);
        }
    }

    // ---- one-to-one chats ----

    fn open_with(&self, user: &str) -> Option<u64> {
        self.chats
            .iter()
            .find(|(_, c)| c.user == user && c.state == ChatState::Open)
            .map(|(id, _)| *id)
    }

    fn chat_with(&self, user: &str, state: ChatState) -> Option<u64> {
        self.chats
            .iter()
            .find(|(_, c)| c.user == user && c.state == state)
            .map(|(id, _)| *id)
    }

    /// `/chat USER` and `/msg USER TEXT`.
    fn open_chat(&mut self, user: String, text: Option<String>) {
        let Some(me) = self.me().map(str::to_string) else {
            self.error("not logged in; /login USER first");
            self.script_fail("not logged in");
            return;
        };
        if user == me {
            self.error("that is you");
            return;
        }
        if let Some(id) = self.open_with(&user) {
            match text {
                Some(t) => self.say_on(id, t),
                None => self.set_current(Target::Chat(user)),
            }
            return;
        }
        if let Some(id) = self.chat_with(&user, ChatState::Asked) {
            // They asked us already: treat this as yes.
            self.accept(id);
            if let Some(t) = text {
                self.say_on(id, t);
            }
            return;
        }
        if let Some(id) = self.chat_with(&user, ChatState::Requesting) {
            if let (Some(t), Some(c)) = (text, self.chats.get_mut(&id)) {
                c.queued.push(t);
            } else {
                self.notice(format!("already waiting for {user} to answer"));
            }
            return;
        }
        if let Some(q) = self.dialing.get_mut(&user) {
            q.extend(text);
            return;
        }
        let Some(token) = self.token() else { return };
        self.dialing
            .insert(user.clone(), text.into_iter().collect());
        self.send(
            Request::Search {
                token,
                username: user.clone(),
            },
            Pending::Dial { user },
        );
    }

    fn dial(&mut self, user: String, info: UserInfo) {
        let Some(addr) = info.address.filter(|_| info.online) else {
            let lost = self.dialing.remove(&user).unwrap_or_default();
            let extra = unsent(lost.len());
            self.emit(UiEvent::Error {
                code: Some("offline".into()),
                message: format!("{user} is offline{extra}"),
            });
            self.script_fail("user offline");
            return;
        };
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

    fn chat_dialed(&mut self, user: String, result: Result<TcpStream, String>) {
        let queued = self.dialing.remove(&user).unwrap_or_default();
        let stream = match result {
            Ok(s) => s,
            Err(e) => {
                let extra = unsent(queued.len());
                self.error(format!("{e}{extra}"));
                self.script_fail("dial failed");
                return;
            }
        };
        let Some(me) = self.me().map(str::to_string) else {
            return;
        };
        let id = self.next_conn;
        self.next_conn += 1;
        match chat::spawn(id, stream, self.events.clone()) {
            Ok(conn) => {
                conn.send(ChatMsg::Hello {
                    from: me,
                    version: chat::CHAT_VERSION,
                });
                let now = Instant::now();
                self.chats.insert(
                    id,
                    Chat {
                        conn,
                        user: user.clone(),
                        state: ChatState::Requesting,
                        since: now,
                        last_heard: now,
                        next_id: 1,
                        queued,
                    },
                );
                self.emit(UiEvent::ChatRequested { to: user });
            }
            Err(e) => self.error(format!("cannot use the connection to {user}: {e}")),
        }
    }

    fn chat_incoming(&mut self, stream: TcpStream) {
        let id = self.next_conn;
        self.next_conn += 1;
        match chat::spawn(id, stream, self.events.clone()) {
            Ok(conn) => {
                let now = Instant::now();
                self.chats.insert(
                    id,
                    Chat {
                        conn,
                        user: String::new(),
                        state: ChatState::Hello,
                        since: now,
                        last_heard: now,
                        next_id: 1,
                        queued: Vec::new(),
                    },
                );
            }
            Err(e) => log::warn!("incoming chat connection unusable: {e}"),
        }
    }

    fn chat_msg(&mut self, id: u64, msg: ChatMsg) {
        let Some(c) = self.chats.get_mut(&id) else {
            return;
        };
        c.last_heard = Instant::now();
        let (state, user) = (c.state, c.user.clone());
        match (state, msg) {
            (ChatState::Hello, ChatMsg::Hello { from, .. }) => {
                let Some(token) = self.session.as_ref().map(|s| s.token.clone()) else {
                    self.drop_chat(
                        id,
                        ChatMsg::Reject {
                            reason: "not logged in".into(),
                        },
                    );
                    return;
                };
                if crate::registry::auth::check_username(&from).is_err()
                    || Some(from.as_str()) == self.me()
                {
                    self.drop_chat(
                        id,
                        ChatMsg::Reject {
                            reason: "bad hello".into(),
                        },
                    );
                    return;
                }
                if let Some(c) = self.chats.get_mut(&id) {
                    c.user = from.clone();
                    c.state = ChatState::Verifying;
                }
                self.send(
                    Request::Search {
                        token,
                        username: from,
                    },
                    Pending::Verify { conn: id },
                );
            }
            (_, ChatMsg::Ping) => {}
            (ChatState::Requesting, ChatMsg::Accept) => {
                if let Some(c) = self.chats.get_mut(&id) {
                    c.state = ChatState::Open;
                }
                self.emit(UiEvent::ChatAccepted { with: user.clone() });
                self.set_current(Target::Chat(user));
                self.flush_queue(id);
            }
            (ChatState::Requesting, ChatMsg::Reject { reason }) => {
                let c = self.chats.remove(&id);
                if reason != "crossed" {
                    let reason = if reason.is_empty() {
                        "declined".to_string()
                    } else {
                        reason
                    };
                    self.emit(UiEvent::ChatRejected { by: user, reason });
                    self.report_unsent(c);
                }
            }
            (ChatState::Requesting, ChatMsg::Busy) => {
                let c = self.chats.remove(&id);
                self.emit(UiEvent::Busy { user });
                self.report_unsent(c);
            }
            (ChatState::Requesting, ChatMsg::Timeout) => {
                let c = self.chats.remove(&id);
                self.emit(UiEvent::ChatTimeout { with: user });
                self.report_unsent(c);
            }
            (ChatState::Open, ChatMsg::Msg { id: msg_id, text }) => {
                self.emit(UiEvent::Message {
                    from: user.clone(),
                    chat: user,
                    text,
                    id: msg_id,
                    own: false,
                });
            }
            (_, ChatMsg::Bye) => {
                if let Some(c) = self.chats.remove(&id) {
                    let reason = if state == ChatState::Open {
                        "left the chat"
                    } else {
                        "withdrew the request"
                    };
                    self.chat_gone(c, reason.to_string());
                }
            }
            (state, msg) => log::debug!("chat {id}: ignored {msg:?} in state {state:?}"),
        }
    }

    /// The registry's answer on who sent an incoming hello.
    fn verified(&mut self, id: u64, info: Option<UserInfo>) {
        let Some(c) = self.chats.get(&id) else { return };
        if c.state != ChatState::Verifying {
            return;
        }
        let user = c.user.clone();
        let from = c.conn.addr;
        let ok = match &info {
            Some(UserInfo {
                online: true,
                address: Some(a),
                ..
            }) => same_ip(from.ip(), &a.ip),
            Some(_) => false,
            None => {
                // The registry is unreachable: let the user decide, warned.
                self.notice(format!(
                    "could not check that the request really comes from {user}"
                ));
                true
            }
        };
        if !ok {
            self.drop_chat(
                id,
                ChatMsg::Reject {
                    reason: "identity check failed".into(),
                },
            );
            self.error(format!("refused a chat request claiming to be {user} from {from}: the registry has {user} elsewhere"));
            return;
        }
        if self.dnd {
            self.drop_chat(id, ChatMsg::Busy);
            self.notice(format!(
                "{user} asked for a chat; answered busy (do not disturb)"
            ));
            return;
        }
        let me = self.me().unwrap_or_default().to_string();
        if let Some(ours) = self.chat_with(&user, ChatState::Requesting) {
            // Both asked at once: the request from the smaller name wins.
            if me < user {
                self.drop_chat(
                    id,
                    ChatMsg::Reject {
                        reason: "crossed".into(),
                    },
                );
                return;
            }
            let queued = self
                .chats
                .remove(&ours)
                .map(|c| c.queued)
                .unwrap_or_default();
            if let Some(c) = self.chats.get_mut(&id) {
                c.queued = queued;
            }
            self.accept(id);
            return;
        }
        if let Some(old) = self
            .open_with(&user)
            .or_else(|| self.chat_with(&user, ChatState::Asked))
        {
            // A new request replaces a stale one (the partner restarted).
            if let Some(c) = self.chats.remove(&old) {
                c.conn.send(ChatMsg::Bye);
            }
        }
        if let Some(c) = self.chats.get_mut(&id) {
            c.state = ChatState::Asked;
            c.since = Instant::now();
        }
        self.emit(UiEvent::ChatRequest { from: user });
    }

    fn answer(&mut self, user: Option<String>, yes: bool) {
        let found = self
            .chats
            .iter()
            .filter(|(_, c)| {
                c.state == ChatState::Asked && user.as_ref().is_none_or(|u| *u == c.user)
            })
            .max_by_key(|(_, c)| c.since)
            .map(|(id, _)| *id);
        let Some(id) = found else {
            let who = user.map(|u| format!(" from {u}")).unwrap_or_default();
            self.error(format!("no chat request{who} to answer"));
            self.script_fail("no request");
            return;
        };
        if yes {
            self.accept(id);
        } else {
            let user = self
                .chats
                .get(&id)
                .map(|c| c.user.clone())
                .unwrap_or_default();
            self.drop_chat(
                id,
                ChatMsg::Reject {
                    reason: "declined".into(),
                },
            );
            self.notice(format!("declined {user}'s chat request"));
        }
    }

    fn accept(&mut self, id: u64) {
        let Some(c) = self.chats.get_mut(&id) else {
            return;
        };
        c.state = ChatState::Open;
        c.conn.send(ChatMsg::Accept);
        let user = c.user.clone();
        self.emit(UiEvent::ChatAccepted { with: user.clone() });
        self.set_current(Target::Chat(user));
        self.flush_queue(id);
    }

    fn flush_queue(&mut self, id: u64) {
        let queued = self
            .chats
            .get_mut(&id)
            .map(|c| std::mem::take(&mut c.queued))
            .unwrap_or_default();
        for t in queued {
            self.say_on(id, t);
        }
    }

    fn say_on(&mut self, id: u64, text: String) {
        if text.len() > chat::MAX_TEXT {
            self.error(format!(
                "message too long ({} bytes; at most {})",
                text.len(),
                chat::MAX_TEXT
            ));
            return;
        }
        let Some(me) = self.me().map(str::to_string) else {
            return;
        };
        let Some(c) = self.chats.get_mut(&id) else {
            return;
        };
        let msg_id = c.next_id;
        c.next_id += 1;
        let user = c.user.clone();
        if c.conn.send(ChatMsg::Msg {
            id: msg_id,
            text: text.clone(),
        }) {
            self.emit(UiEvent::Message {
                from: me,
                chat: user,
                text,
                id: msg_id,
                own: true,
            });
        } else {
            self.error(format!("the chat with {user} is closed; message not sent"));
        }
    }

    fn report_unsent(&mut self, c: Option<Chat>) {
        if let Some(c) = c.filter(|c| !c.queued.is_empty()) {
            self.error(format!(
                "{} message(s) to {} not sent",
                c.queued.len(),
                c.user
            ));
        }
    }

    fn drop_chat(&mut self, id: u64, last: ChatMsg) {
        if let Some(c) = self.chats.remove(&id) {
            c.conn.send(last);
        }
    }

    fn close_chat(&mut self, user: Option<String>) {
        let user = match user.or_else(|| match &self.current {
            Some(Target::Chat(u)) => Some(u.clone()),
            _ => None,
        }) {
            Some(u) => u,
            None => {
                self.error("no current chat; /close USER");
                return;
            }
        };
        let ids: Vec<u64> = self
            .chats
            .iter()
            .filter(|(_, c)| c.user == user)
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            self.error(format!("no chat with {user}"));
            return;
        }
        for id in ids {
            self.drop_chat(id, ChatMsg::Bye);
        }
        if self.current == Some(Target::Chat(user.clone())) {
            self.current = None;
        }
        self.emit(UiEvent::ChatClosed {
            with: user,
            reason: "you closed it".into(),
        });
    }

    fn chat_gone(&mut self, c: Chat, reason: String) {
        match c.state {
            ChatState::Open => {
                if self.current == Some(Target::Chat(c.user.clone())) {
                    self.current = None;
                }
                self.emit(UiEvent::ChatClosed {
                    with: c.user,
                    reason,
                });
            }
            ChatState::Requesting => {
                self.emit(UiEvent::ChatRejected {
                    by: c.user.clone(),
                    reason,
                });
                self.report_unsent(Some(c));
            }
            ChatState::Asked => self.notice(format!("{} withdrew the chat request", c.user)),
            ChatState::Hello | ChatState::Verifying => {}
        }
    }

    fn chat_tick(&mut self, now: Instant) {
        let mut dead = Vec::new();
        for (id, c) in &self.chats {
            match c.state {
                ChatState::Open => {
                    if now.duration_since(c.last_heard) >= CHAT_DEAD {
                        dead.push((*id, None, "not responding".to_string()));
                    } else {
                        c.conn.send(ChatMsg::Ping);
                    }
                }
                ChatState::Hello | ChatState::Verifying
                    if now.duration_since(c.since) >= HELLO_TIMEOUT =>
                {
                    dead.push((*id, Some(ChatMsg::Bye), String::new()))
                }
                ChatState::Asked if now.duration_since(c.since) >= self.cfg.chat_timeout => {
                    dead.push((*id, Some(ChatMsg::Timeout), "timeout".into()))
                }
                // The asked side times out first and says so; this is the
                // fallback when it never does.
                ChatState::Requesting
                    if now.duration_since(c.since)
                        >= self.cfg.chat_timeout + Duration::from_secs(2) =>
                {
                    dead.push((*id, Some(ChatMsg::Bye), "timeout".into()))
                }
                ChatState::Requesting | ChatState::Asked => {
                    c.conn.send(ChatMsg::Ping);
                }
                _ => {}
            }
        }
        for (id, last, reason) in dead {
            let Some(c) = self.chats.remove(&id) else {
                continue;
            };
            if let Some(m) = last {
                c.conn.send(m);
            }
            match (c.state, reason.as_str()) {
                (ChatState::Asked | ChatState::Requesting, "timeout") => {
                    let with = c.user.clone();
                    self.emit(UiEvent::ChatTimeout { with });
                    self.report_unsent(Some(c));
                }
                (_, "") => {}
                _ => self.chat_gone(c, reason),
            }
        }
    }
}
