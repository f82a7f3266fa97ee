//! The session with the registry: login, register, resume after a
//! reconnect, heartbeats and session checks, and the replies (or failures)
//! of every registry request, routed by [`Pending`].

use super::App;
use crate::peer::chats::Lookup;
use crate::peer::ui::UiEvent;
use crate::protocol::heartbeat::HeartbeatKey;
use crate::protocol::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Every this many heartbeats, one also goes over TCP: it learns whether
/// the session is still online, and keeps it online (within the 3 s
/// time-out) where a firewall drops the UDP heartbeats. With another
/// registry in the list every heartbeat does, and an unanswered one means
/// the registry stopped answering (see [`Session::check_timeout`]).
const CHECK_EVERY: u64 = 2;

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
    /// `online`, for `/who` with this prefix.
    Who {
        prefix: Option<String>,
    },
    Search,
    /// A look-up for the chat engine (to dial, or to check a hello).
    Chat(Lookup),
    Room(super::RoomPending),
    /// `set_away` with this message (`None`: back).
    Away(Option<String>),
    /// Room history (see `history`): the members of a room whose history
    /// we fetch, or, asked for it on a connection, whether the asker is
    /// a member.
    History(super::history::HistoryPending),
}

impl Pending {
    /// Requests the peer makes by itself, not for a command: their answers
    /// do not let a script go on to its next line. (`leave_room` goes out
    /// once the members acknowledged our leave, after `/leave` returned.)
    pub(super) fn is_background(&self) -> bool {
        use super::RoomPending;
        matches!(
            self,
            Pending::Resume
                | Pending::Check
                | Pending::History(_)
                | Pending::Chat(Lookup::Verify { .. } | Lookup::Resume { .. })
                | Pending::Room(
                    RoomPending::Refresh(_)
                        | RoomPending::Rejoin { .. }
                        | RoomPending::Leave(_)
                        | RoomPending::Key(_)
                )
        )
    }
}

pub struct Session {
    pub username: String,
    pub token: String,
    pub heartbeat_every: Duration,
    /// The registry takes the session offline after this long without a
    /// heartbeat.
    pub timeout: Duration,
    pub heartbeat_port: u16,
    /// The heartbeat id and key of the login reply (`None`: the reply's
    /// were malformed, and only `heartbeat` requests keep the session).
    pub hb: Option<HeartbeatKey>,
    /// The last heartbeat counter sent (each datagram's is one higher).
    pub hb_ctr: u64,
}

impl Session {
    /// How long a session check may wait for its answer. A registry that
    /// stopped answering is noticed at most one heartbeat interval plus
    /// this after its last answer: with this at 3/4 of the time-out minus
    /// one interval (1.5 s for 1 s and 3 s), the peer moves to another
    /// registry before its session would go offline there.
    fn check_timeout(&self) -> Duration {
        let spare = self.timeout.saturating_sub(self.heartbeat_every);
        (spare * 3 / 4).max(Duration::from_millis(200))
    }
}

impl App {
    /// Heartbeats and overdue registry requests.
    pub(super) fn session_tick(&mut self, now: Instant) {
        if self.next_heartbeat.is_some_and(|t| t <= now) {
            self.heartbeat(now);
        }
        for (p, e) in self.link.expired_waiting(now) {
            self.failed(p, &e);
        }
        let late = self.link.expired(now);
        let stopped_answering = !late.is_empty();
        for p in late {
            self.failed(
                p,
                &ApiError::new(
                    ErrorCode::RegistryUnreachable,
                    "the registry did not answer in time",
                ),
            );
        }
        // A registry that answers nothing for a request's whole time-out is
        // as good as gone: a fresh connection (to it, or to another) beats
        // waiting on TCP's back-off after a network cut, which can leave a
        // peer unaware for many seconds that its session ended meanwhile.
        if stopped_answering && self.link.is_up() {
            self.registry_gone("the registry did not answer in time".into());
        }
    }

    /// Asks the registry to re-attach our session (after a reconnect, or
    /// when it says the session went offline while we were cut off).
    pub(super) fn resume_session(&mut self) {
        let Some(s) = &self.session else { return };
        if self.resuming {
            return;
        }
        let req = Request::Resume {
            token: s.token.clone(),
            tcp_port: self.tcp_port,
            udp_port: self.udp_port,
            advertise_ip: self.cfg.advertise.clone(),
            keys: self.identity.as_ref().map(|i| i.wire()),
        };
        self.resuming = true;
        self.send(req, Pending::Resume);
    }

    /// Sends the heartbeat if it is due, from inside a long batch of work:
    /// the registry's verdict on us must not wait for our backlog (a sender
    /// busy with a 100-member room's acknowledgements for more than the
    /// session time-out was taken offline, and every member then dropped it
    /// as "no longer listed").
    pub(super) fn heartbeat_if_due(&mut self) {
        let now = Instant::now();
        if self.next_heartbeat.is_some_and(|t| t <= now) {
            self.heartbeat(now);
        }
    }

    fn heartbeat(&mut self, now: Instant) {
        let (Some(s), Some(remote)) = (self.session.as_mut(), self.link.remote()) else {
            // Never connected yet: keep the schedule, send when we can.
            self.next_heartbeat = self.session.as_ref().map(|s| now + s.heartbeat_every);
            return;
        };
        let to = SocketAddr::new(remote.ip(), s.heartbeat_port);
        if let Some(hb) = &s.hb {
            s.hb_ctr += 1;
            let dg = hb.encode(s.hb_ctr);
            if let Err(e) = self.udp.send_to(dg.as_bytes(), to) {
                log::debug!("heartbeat to {to}: {e}");
            }
        }
        self.next_heartbeat = Some(now + s.heartbeat_every);
        // Datagrams get no answer, so now and then ask over the connection
        // whether the session is still online (it is not if we were cut off
        // longer than the time-out); an invalid_session answer resumes it.
        self.heartbeats += 1;
        let (every, within) = if self.link.has_alternatives() {
            (1, s.check_timeout())
        } else {
            (CHECK_EVERY, crate::peer::link::REQUEST_TIMEOUT)
        };
        if self.heartbeats % every == 0 && self.link.is_up() && !self.resuming {
            let req = Request::Heartbeat {
                token: s.token.clone(),
                announcements_after: Some(self.announcements_seen),
            };
            if let Err((p, e)) = self.link.request_within(&req, Pending::Check, within) {
                self.failed(p, &e);
            }
        }
    }

    pub(super) fn registry_reply(&mut self, v: serde_json::Value) {
        // An error about the connection itself (`id` null), such as
        // `tls_required` for a plaintext peer: said once, not dropped.
        if v.get("id").is_some_and(serde_json::Value::is_null) && v["ok"] == false {
            let code = v["code"].as_str().unwrap_or("registry_error").to_string();
            let said = format!(
                "the registry refused this connection: {}",
                v["message"].as_str().unwrap_or(&code)
            );
            if self.link.shown_refusal.as_ref() != Some(&said) {
                self.link.shown_refusal = Some(said.clone());
                self.error(&code, said);
            }
            return;
        }
        let Some((p, reply, req)) = self.link.reply(v) else {
            return;
        };
        match reply.result {
            Ok(body) => self.replied(p, body),
            Err(e)
                if e.code == ErrorCode::InvalidSession
                    && self.session.is_some()
                    && !matches!(p, Pending::Resume | Pending::Logout { .. }) =>
            {
                // The registry took our session offline (we were cut off
                // past the time-out) but still knows it: resume it, then
                // ask again.
                if let Pending::Chat(purpose @ Lookup::Resume { .. }) = p {
                    // A chat's redial asks again by itself, once a second.
                    let now = Instant::now();
                    self.with_chats(|c| c.looked_up(now, purpose, Err(e)));
                } else if !p.is_background() {
                    self.after_resume.push((req, p));
                }
                self.resume_session();
            }
            Err(e) => self.failed(p, &e),
        }
    }

    pub fn send(&mut self, req: Request, purpose: Pending) {
        // A connection attempt failed and none has worked since: refused
        // at once (a request still waits while the first attempt, or a
        // reconnect after a loss, is under way).
        if !purpose.is_background() && !self.link.is_up() && self.link.failures > 0 {
            let why = self.unreachable_why();
            self.failed(purpose, &why);
            return;
        }
        if let Err((p, e)) = self.link.request(&req, purpose) {
            self.failed(p, &e);
        }
    }

    pub(super) fn token(&mut self) -> Option<String> {
        match &self.session {
            Some(s) => Some(s.token.clone()),
            None => {
                self.error("not_logged_in", "not logged in; /login USER first");
                if let Some(s) = &mut self.script {
                    s.fail_current("not logged in".into());
                }
                None
            }
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
            (Pending::Check, body) => self.announcements_heard(body),
            (Pending::Resume, ReplyBody::Session(s)) => {
                self.resuming = false;
                for (req, p) in std::mem::take(&mut self.after_resume) {
                    self.send(req, p);
                }
                self.start_session(&s);
                if self.moving.is_some() {
                    self.moved(Some(s.username));
                } else {
                    self.emit(UiEvent::SessionRestored {
                        username: s.username,
                    });
                }
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
            (
                Pending::Who { prefix },
                ReplyBody::Users {
                    users,
                    total,
                    next,
                    away,
                },
            ) => {
                self.who_more = next.clone().map(|after| (prefix, after));
                self.emit(UiEvent::Who {
                    users,
                    total,
                    next,
                    away,
                })
            }
            (Pending::Search, ReplyBody::User { user, away }) => {
                let keys = user
                    .online
                    .then(|| super::identity::describe(&user.username, user.keys.as_ref()));
                self.emit(UiEvent::SearchResult { user, away });
                if let Some(line) = keys {
                    self.notice(line);
                }
            }
            (Pending::Away(message), _) => self.away_set(message),
            (Pending::Chat(purpose), ReplyBody::User { user, away }) => {
                self.chat_partner_away(&purpose, &user.username, away);
                let now = Instant::now();
                self.with_chats(|c| c.looked_up(now, purpose, Ok(user)));
            }
            (Pending::History(p), body) => self.history_replied(p, Ok(body)),
            (Pending::Room(p), body) => self.room_replied(p, body),
            (_, body) => log::warn!("unexpected reply shape: {body:?}"),
        }
        if let (Some(s), false) = (&mut self.script, background) {
            s.request_done(true);
        }
    }

    pub(super) fn failed(&mut self, p: Pending, e: &ApiError) {
        let background = p.is_background();
        if matches!(p, Pending::Check) {
            log::debug!("session check: {e}");
            return;
        }
        match p {
            Pending::Resume => {
                self.resuming = false;
                self.moving = None;
                for (_, p) in std::mem::take(&mut self.after_resume) {
                    self.failed(p, e);
                }
                if e.code == ErrorCode::InvalidSession || e.code == ErrorCode::AlreadyOnline {
                    self.end_session();
                    self.error(
                        "session_lost",
                        format!(
                            "could not restore the session ({}); /login again",
                            e.message
                        ),
                    );
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
            Pending::History(p) => return self.history_replied(p, Err(e.clone())),
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

    fn start_session(&mut self, s: &SessionReply) {
        self.set_logged_in(true);
        self.rooms.set_identity(&s.username, self.identity.clone());
        if let Some(m) = &mut self.multicast {
            let (port, refused) = m.start(&s.address.ip, &self.udp);
            self.rooms.engine.set_multicast(port);
            if let Some(why) = refused {
                self.notice(format!("rooms use unicast: {why}"));
            }
        }
        self.chats.set_me(Some(s.username.clone()));
        self.session = Some(Session {
            username: s.username.clone(),
            token: s.token.clone(),
            heartbeat_every: Duration::from_millis(s.heartbeat_interval_ms.max(100)),
            timeout: Duration::from_millis(s.session_timeout_ms),
            heartbeat_port: s.heartbeat_port,
            hb: HeartbeatKey::from_hex(&s.heartbeat_id, &s.heartbeat_key),
            hb_ctr: 0,
        });
        self.heartbeat(Instant::now());
    }

    fn end_session(&mut self) {
        self.end_session_keep_rooms();
        self.rooms.clear();
    }

    /// Ends the session but lets rooms we are leaving finish saying so.
    fn end_session_keep_rooms(&mut self) {
        self.set_logged_in(false);
        self.session = None;
        self.chats.set_me(None);
        self.next_heartbeat = None;
    }
}
