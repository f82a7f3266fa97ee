//! Glue between the chat engine ([`crate::peer::chats`]) and the world:
//! it carries out the engine's actions on the connection threads
//! ([`crate::peer::chat`]), the registry and the UI, and feeds it what
//! they report.

use super::{App, Pending, Target};
use crate::peer::chat_noise::Role;
use crate::peer::chats::{Action, ChatEvent, Chats, ConnId, Lookup};
use crate::peer::events::Event;
use crate::peer::ui::{UiEvent, UndeliveredMsg};
use crate::peer::{chat, slots};
use crate::protocol::chat::ChatMsg;
use crate::protocol::{Address, ApiError, ErrorCode, Request};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

impl App {
    /// Runs `f` on the chat engine, then carries out what it asks.
    pub(super) fn with_chats(&mut self, f: impl FnOnce(&mut Chats)) {
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
                unverified,
            } => {
                let msg = ChatMsg::Msg {
                    id,
                    text: text.clone(),
                };
                // Not sent now: the engine keeps it, and sends it again
                // when the chat resumes (or names it as not delivered).
                let sent = conn
                    .and_then(|conn| self.conns.get(&conn))
                    .is_some_and(|c| c.send(msg));
                let ev = UiEvent::Message {
                    from,
                    chat: with,
                    text,
                    id,
                    own: true,
                    queued: !sent,
                    action: false,
                    mention: false,
                    late: false,
                };
                self.emit_marked(ev, unverified);
            }
            Action::Close { conn } => {
                if let Some(c) = self.conns.remove(&conn) {
                    self.closing.retain(|c| !c.is_done());
                    self.closing.push(c.close());
                }
            }
            Action::Lookup {
                purpose: purpose @ Lookup::Verify { .. },
                ..
            } if !self.link.is_up() => {
                // Checking a request cannot wait for the registry to come
                // back: the engine shows it, marked unverified.
                let e = ApiError::new(ErrorCode::RegistryUnreachable, "registry connection lost");
                self.chats.looked_up(Instant::now(), purpose, Err(e));
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
            Action::Dial { user, addr, key } => self.dial(user, addr, key),
            Action::Event(e) => self.chat_event(e),
            Action::HistoryAsked { conn, from, ask } => self.history_asked(conn, from, ask),
        }
    }

    fn chat_event(&mut self, e: ChatEvent) {
        match e {
            ChatEvent::Requested { to } => self.emit(UiEvent::ChatRequested { to }),
            ChatEvent::Request { from, unverified } => {
                self.emit_marked(UiEvent::ChatRequest { from }, unverified)
            }
            ChatEvent::Opened { with, unverified } => {
                let ev = UiEvent::ChatAccepted { with: with.clone() };
                self.emit_marked(ev, unverified);
                // Opened by `/msg`: the message goes, the current stays.
                if !self.convos.quiet.remove(&with) {
                    self.set_current(Target::Chat(with));
                }
            }
            ChatEvent::Focus { with } => self.set_current(Target::Chat(with)),
            ChatEvent::Refused { by, reason } => self.emit(UiEvent::ChatRejected {
                by,
                reason: reason.to_string(),
            }),
            ChatEvent::Busy { user } => self.emit(UiEvent::Busy { user }),
            ChatEvent::TimedOut { with } => self.emit(UiEvent::ChatTimeout { with }),
            ChatEvent::Closed {
                with,
                reason,
                unverified,
            } => {
                let reason = reason.to_string();
                self.emit_marked(UiEvent::ChatClosed { with, reason }, unverified);
            }
            ChatEvent::Received {
                from,
                id,
                text,
                unverified,
            } => {
                let ev = UiEvent::Message {
                    from: from.clone(),
                    chat: from,
                    text,
                    id,
                    own: false,
                    queued: false,
                    action: false,
                    mention: false,
                    late: false,
                };
                self.emit_marked(ev, unverified);
            }
            ChatEvent::Interrupted { with, reason } => {
                let reason = reason.to_string();
                self.emit(UiEvent::ChatInterrupted { with, reason });
            }
            ChatEvent::Resumed { with } => self.emit(UiEvent::ChatResumed { with }),
            ChatEvent::Delivered { with, id } => self.emit(UiEvent::ChatDelivered { with, id }),
            ChatEvent::Undelivered { with, messages } => {
                let messages = messages
                    .iter()
                    .map(|(id, text)| UndeliveredMsg::new(*id, text))
                    .collect();
                self.emit(UiEvent::Undelivered { with, messages });
            }
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

    /// [`App::emit`] for a line of a chat, marked when its partner is
    /// unverified.
    fn emit_marked(&mut self, mut ev: UiEvent, unverified: bool) {
        self.decorate(&mut ev);
        if let Some(script) = &mut self.script {
            script.observe(&ev);
        }
        self.observe_conversations(&ev);
        let failed = self.log_event(&ev);
        self.ui.emit_marked(ev, unverified);
        self.log_failed(failed);
    }

    /// Connects to `user` off the main loop; the result comes back as
    /// [`Event::ChatDialed`].
    fn dial(&mut self, user: String, addr: Address, key: [u8; 32]) {
        let events = self.events.clone();
        let who = user.clone();
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
                let _ = events.send(Event::ChatDialed { user, key, result });
            });
        if let Err(e) = spawned {
            self.error(
                "connection_failed",
                format!("cannot start a connection: {e}"),
            );
            self.chats.forget_dial(&who);
        }
    }

    /// Starts a connection's threads under a new id.
    pub(super) fn spawn_conn(
        &mut self,
        stream: TcpStream,
        slot: slots::Slot,
        role: Role,
    ) -> std::io::Result<(ConnId, SocketAddr)> {
        let setup = self.chat_setup(role)?;
        let id = self.next_conn;
        self.next_conn += 1;
        let conn = chat::spawn(id, stream, self.conn_events.clone(), slot, setup)?;
        let addr = conn.addr;
        self.conns.insert(id, conn);
        Ok((id, addr))
    }

    pub(super) fn chat_dialed(
        &mut self,
        user: String,
        key: [u8; 32],
        result: Result<TcpStream, String>,
    ) {
        let stream = match result {
            Ok(s) => s,
            Err(why) => return self.with_chats(|c| c.dial_failed(user, why)),
        };
        let role = Role::Dial {
            user: user.clone(),
            key,
        };
        match self.spawn_conn(stream, slots::Slot::outgoing(), role) {
            Ok((id, addr)) => {
                let now = Instant::now();
                self.with_chats(|c| c.connected(now, id, addr, user));
            }
            Err(e) => {
                self.error(
                    "connection_failed",
                    format!("cannot use the connection to {user}: {e}"),
                );
                self.chats.forget_dial(&user);
            }
        }
    }

    pub(super) fn chat_incoming(&mut self, incoming: slots::Incoming) {
        match self.spawn_conn(incoming.stream, incoming.slot, Role::Accept) {
            Ok((id, addr)) => {
                let now = Instant::now();
                self.with_chats(|c| c.accepted(now, id, addr));
            }
            Err(e) => log::warn!("incoming chat connection unusable: {e}"),
        }
    }

    /// `/close [USER]`: the current chat without a name.
    pub(super) fn close_chat(&mut self, user: Option<String>) {
        let user = user.or_else(|| match &self.current {
            Some(Target::Chat(u)) => Some(u.clone()),
            _ => None,
        });
        match user {
            Some(u) => self.with_chats(|c| c.close(u)),
            None => self.error("no_target", "no current chat; /close USER"),
        }
    }
}
