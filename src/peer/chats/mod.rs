//! One-to-one chats as a sans-IO state machine: hello, identity check,
//! ask, accept or reject, open, keep-alive and close.
//!
//! [`Chats`] owns no socket, thread or clock. The peer's main loop feeds it
//! (a connection dialled or accepted under an id, a [`ChatMsg`] received on
//! an id, a connection gone, a registry look-up answered, the user's
//! commands, the time) and drains it: [`Chats::poll_action`] says what to
//! send or close on which connection, whom to look up or dial, and what
//! the user should see; [`Chats::poll_timeout`] says when to call
//! [`Chats::handle_timeout`] next. Every reason is a type
//! ([`reasons`]), rendered to the exact text the peer prints.

mod reasons;
#[cfg(test)]
mod tests;

pub use reasons::{ChatError, ChatEvent, ChatNotice, ConnEnd, EndReason, RejectReason};

use super::chat::{ChatMsg, CHAT_VERSION, MAX_TEXT};
use crate::protocol::{Address, ApiError, UserInfo};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The main loop's name for one chat connection.
pub type ConnId = u64;

/// Keep-alive period on chats; silence for `CHAT_DEAD` ends an open chat.
pub const CHAT_PING: Duration = Duration::from_secs(1);
pub const CHAT_DEAD: Duration = Duration::from_secs(3);
/// A connection that has not said hello (and been checked) by then is
/// dropped.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// The asked side times out first and says so; the asking side gives up
/// this much later when it never does.
const REQUEST_GRACE: Duration = Duration::from_secs(2);

/// What a registry look-up is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Where to dial `user`.
    Dial { user: String },
    /// Whether an incoming hello on `conn` comes from where its user is.
    Verify { conn: ConnId },
}

/// What the engine asks its owner to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Queue `msg` on connection `conn`.
    Send { conn: ConnId, msg: ChatMsg },
    /// Queue our message `id` on `conn`; if it could be queued, show it as
    /// our own message (`from`, in the chat `with`), else say the chat with
    /// `with` is closed.
    Say {
        conn: ConnId,
        from: String,
        with: String,
        id: u64,
        text: String,
    },
    /// Close `conn` once what is queued on it has been written.
    Close { conn: ConnId },
    /// Ask the registry about `user`; answer with [`Chats::looked_up`].
    Lookup { user: String, purpose: Lookup },
    /// Connect to `user` at `addr`; answer with [`Chats::connected`] or
    /// [`Chats::dial_failed`].
    Dial { user: String, addr: Address },
    /// Show the user something.
    Event(ChatEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Incoming connection; no hello yet.
    Hello,
    /// Incoming hello; checking the sender's address with the registry.
    Verifying,
    /// They asked; waiting for our accept or reject.
    Asked,
    /// We asked; waiting for their answer.
    Requesting,
    Open,
}

struct Chat {
    user: String,
    addr: SocketAddr,
    state: State,
    since: Instant,
    last_heard: Instant,
    next_id: u64,
    /// Texts typed before the chat was open; sent on accept.
    queued: Vec<String>,
}

/// Every one-to-one chat of this peer, in whatever state.
pub struct Chats {
    /// Our user name while logged in.
    me: Option<String>,
    /// Do not disturb: requests are answered busy.
    dnd: bool,
    /// An unanswered request gives up after this long.
    chat_timeout: Duration,
    chats: BTreeMap<ConnId, Chat>,
    /// Texts for users being looked up or dialled.
    dialing: HashMap<String, Vec<String>>,
    next_tick: Instant,
    actions: VecDeque<Action>,
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

impl Chats {
    pub fn new(now: Instant, chat_timeout: Duration) -> Chats {
        Chats {
            me: None,
            dnd: false,
            chat_timeout,
            chats: BTreeMap::new(),
            dialing: HashMap::new(),
            next_tick: now + CHAT_PING,
            actions: VecDeque::new(),
        }
    }

    /// Our name once logged in, `None` once logged out.
    pub fn set_me(&mut self, me: Option<String>) {
        self.me = me;
    }

    /// Sets (or with `None` toggles) do-not-disturb; returns the new value.
    pub fn set_dnd(&mut self, on: Option<bool>) -> bool {
        self.dnd = on.unwrap_or(!self.dnd);
        self.dnd
    }

    /// Whether a chat with `user` is open.
    pub fn is_open(&self, user: &str) -> bool {
        self.find(user, State::Open).is_some()
    }

    /// Whether a look-up or dial is under way.
    pub fn is_dialing(&self) -> bool {
        !self.dialing.is_empty()
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Chats::handle_timeout`] is next due; `None` without chats.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.chats.is_empty()).then_some(self.next_tick)
    }

    fn find(&self, user: &str, state: State) -> Option<ConnId> {
        self.chats
            .iter()
            .find(|(_, c)| c.user == user && c.state == state)
            .map(|(id, _)| *id)
    }

    fn event(&mut self, e: ChatEvent) {
        self.actions.push_back(Action::Event(e));
    }

    fn error(&mut self, e: ChatError) {
        self.event(ChatEvent::Error(e));
    }

    fn notice(&mut self, n: ChatNotice) {
        self.event(ChatEvent::Notice(n));
    }

    fn send(&mut self, conn: ConnId, msg: ChatMsg) {
        self.actions.push_back(Action::Send { conn, msg });
    }

    /// Forgets chat `conn`, sending `last` first; gives the chat back.
    fn end(&mut self, conn: ConnId, last: Option<ChatMsg>) -> Option<Chat> {
        let c = self.chats.remove(&conn)?;
        if let Some(msg) = last {
            self.send(conn, msg);
        }
        self.actions.push_back(Action::Close { conn });
        Some(c)
    }

    fn report_unsent(&mut self, c: &Chat) {
        if !c.queued.is_empty() {
            self.error(ChatError::NotSent {
                user: c.user.clone(),
                count: c.queued.len(),
            });
        }
    }

    // ---- the user's commands ----

    /// `/chat USER` (no text) and `/msg USER TEXT`.
    pub fn open(&mut self, user: String, text: Option<String>) {
        let Some(me) = self.me.clone() else {
            self.error(ChatError::NotLoggedIn);
            return;
        };
        if user == me {
            self.error(ChatError::ThatIsYou);
            return;
        }
        if let Some(id) = self.find(&user, State::Open) {
            match text {
                Some(t) => self.say_on(id, t),
                None => self.event(ChatEvent::Focus { with: user }),
            }
            return;
        }
        if let Some(id) = self.find(&user, State::Asked) {
            // They asked us already: treat this as yes.
            self.accept(id);
            if let Some(t) = text {
                self.say_on(id, t);
            }
            return;
        }
        if let Some(id) = self.find(&user, State::Requesting) {
            match (text, self.chats.get_mut(&id)) {
                (Some(t), Some(c)) => c.queued.push(t),
                _ => self.notice(ChatNotice::AlreadyWaiting { user }),
            }
            return;
        }
        if let Some(q) = self.dialing.get_mut(&user) {
            q.extend(text);
            return;
        }
        self.dialing
            .insert(user.clone(), text.into_iter().collect());
        self.actions.push_back(Action::Lookup {
            user: user.clone(),
            purpose: Lookup::Dial { user },
        });
    }

    /// `/accept [USER]` (`yes`) and `/reject [USER]`: answers the latest
    /// request (from `user`).
    pub fn answer(&mut self, user: Option<String>, yes: bool) {
        let found = self
            .chats
            .iter()
            .filter(|(_, c)| c.state == State::Asked && user.as_ref().is_none_or(|u| *u == c.user))
            .max_by_key(|(_, c)| c.since)
            .map(|(id, _)| *id);
        let Some(id) = found else {
            self.error(ChatError::NoRequest { from: user });
            return;
        };
        if yes {
            self.accept(id);
        } else {
            let reason = RejectReason::Declined.wire().to_string();
            if let Some(c) = self.end(id, Some(ChatMsg::Reject { reason })) {
                self.notice(ChatNotice::Declined { user: c.user });
            }
        }
    }

    /// `/close USER`: ends every chat with `user`, in any state.
    pub fn close(&mut self, user: String) {
        let ids: Vec<ConnId> = self
            .chats
            .iter()
            .filter(|(_, c)| c.user == user)
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            self.error(ChatError::NoChat { user });
            return;
        }
        for id in ids {
            self.end(id, Some(ChatMsg::Bye));
        }
        self.event(ChatEvent::Closed {
            with: user,
            reason: EndReason::YouClosed,
        });
    }

    /// Logging out or quitting: says bye on every chat and forgets texts
    /// waiting for a dial, without telling the user.
    pub fn close_all(&mut self) {
        let ids: Vec<ConnId> = self.chats.keys().copied().collect();
        for id in ids {
            self.end(id, Some(ChatMsg::Bye));
        }
        self.dialing.clear();
    }

    fn accept(&mut self, id: ConnId) {
        let Some(c) = self.chats.get_mut(&id) else {
            return;
        };
        c.state = State::Open;
        let with = c.user.clone();
        self.send(id, ChatMsg::Accept);
        self.opened(id, with);
    }

    fn opened(&mut self, id: ConnId, with: String) {
        self.event(ChatEvent::Opened { with });
        let queued = self
            .chats
            .get_mut(&id)
            .map(|c| std::mem::take(&mut c.queued))
            .unwrap_or_default();
        for t in queued {
            self.say_on(id, t);
        }
    }

    fn say_on(&mut self, id: ConnId, text: String) {
        if text.len() > MAX_TEXT {
            self.error(ChatError::TooLong {
                len: text.len(),
                max: MAX_TEXT,
            });
            return;
        }
        let Some(from) = self.me.clone() else { return };
        let Some(c) = self.chats.get_mut(&id) else {
            return;
        };
        let msg_id = c.next_id;
        c.next_id += 1;
        let with = c.user.clone();
        self.actions.push_back(Action::Say {
            conn: id,
            from,
            with,
            id: msg_id,
            text,
        });
    }

    // ---- answers to our actions ----

    /// The registry's answer to an [`Action::Lookup`] (an error when it
    /// could not be asked or refused).
    pub fn looked_up(&mut self, now: Instant, purpose: Lookup, result: Result<UserInfo, ApiError>) {
        match (purpose, result) {
            (Lookup::Dial { user }, Ok(info)) => self.dial(user, info),
            (Lookup::Dial { user }, Err(error)) => {
                let unsent = self.dialing.remove(&user).unwrap_or_default().len();
                self.error(ChatError::LookupFailed {
                    user,
                    error,
                    unsent,
                });
            }
            (Lookup::Verify { conn }, result) => self.verified(now, conn, result.ok()),
        }
    }

    fn dial(&mut self, user: String, info: UserInfo) {
        match info.address.filter(|_| info.online) {
            Some(addr) => self.actions.push_back(Action::Dial { user, addr }),
            None => {
                let unsent = self.dialing.remove(&user).unwrap_or_default().len();
                self.error(ChatError::Offline { user, unsent });
            }
        }
    }

    /// Our connection to `user` is up as `conn` (to `addr`): say hello.
    pub fn connected(&mut self, now: Instant, conn: ConnId, addr: SocketAddr, user: String) {
        let queued = self.dialing.remove(&user).unwrap_or_default();
        let Some(me) = self.me.clone() else {
            self.actions.push_back(Action::Close { conn });
            return;
        };
        self.send(
            conn,
            ChatMsg::Hello {
                from: me,
                version: CHAT_VERSION,
            },
        );
        self.chats.insert(
            conn,
            Chat {
                user: user.clone(),
                addr,
                state: State::Requesting,
                since: now,
                last_heard: now,
                next_id: 1,
                queued,
            },
        );
        self.event(ChatEvent::Requested { to: user });
    }

    /// Connecting to `user` failed (`why`, for the user).
    pub fn dial_failed(&mut self, user: String, why: String) {
        let unsent = self.dialing.remove(&user).unwrap_or_default().len();
        self.error(ChatError::Unreachable { why, unsent });
    }

    /// Gives up a dial without a word (the owner has reported why).
    pub fn forget_dial(&mut self, user: &str) {
        self.dialing.remove(user);
    }

    // ---- the network ----

    /// A partner connected to us as `conn`, from `addr`.
    pub fn accepted(&mut self, now: Instant, conn: ConnId, addr: SocketAddr) {
        self.chats.insert(
            conn,
            Chat {
                user: String::new(),
                addr,
                state: State::Hello,
                since: now,
                last_heard: now,
                next_id: 1,
                queued: Vec::new(),
            },
        );
    }

    /// Connection `conn` ended.
    pub fn conn_closed(&mut self, conn: ConnId, why: ConnEnd) {
        if let Some(c) = self.end(conn, None) {
            self.gone(c, EndReason::Conn(why));
        }
    }

    /// A message arrived on `conn`.
    pub fn received(&mut self, now: Instant, conn: ConnId, msg: ChatMsg) {
        let Some(c) = self.chats.get_mut(&conn) else {
            return;
        };
        c.last_heard = now;
        let (state, user) = (c.state, c.user.clone());
        match (state, msg) {
            (State::Hello, ChatMsg::Hello { from, .. }) => self.hello(conn, from),
            (_, ChatMsg::Ping) => {}
            (State::Requesting, ChatMsg::Accept) => {
                if let Some(c) = self.chats.get_mut(&conn) {
                    c.state = State::Open;
                }
                self.opened(conn, user);
            }
            (State::Requesting, ChatMsg::Reject { reason }) => {
                let c = self.end(conn, None);
                let reason = RejectReason::from_wire(&reason);
                if reason != RejectReason::Crossed {
                    self.event(ChatEvent::Refused {
                        by: user,
                        reason: EndReason::Rejected(reason),
                    });
                    c.inspect(|c| self.report_unsent(c));
                }
            }
            (State::Requesting, ChatMsg::Busy) => {
                let c = self.end(conn, None);
                self.event(ChatEvent::Busy { user });
                c.inspect(|c| self.report_unsent(c));
            }
            (State::Requesting, ChatMsg::Timeout) => {
                let c = self.end(conn, None);
                self.event(ChatEvent::TimedOut { with: user });
                c.inspect(|c| self.report_unsent(c));
            }
            (State::Open, ChatMsg::Msg { id, text }) => {
                self.event(ChatEvent::Received {
                    from: user,
                    id,
                    text,
                });
            }
            (_, ChatMsg::Bye) => {
                if let Some(c) = self.end(conn, None) {
                    let reason = if state == State::Open {
                        EndReason::Left
                    } else {
                        EndReason::Withdrew
                    };
                    self.gone(c, reason);
                }
            }
            (state, msg) => log::debug!("chat {conn}: ignored {msg:?} in state {state:?}"),
        }
    }

    fn hello(&mut self, conn: ConnId, from: String) {
        let Some(me) = self.me.as_deref() else {
            let reason = RejectReason::NotLoggedIn.wire().to_string();
            self.end(conn, Some(ChatMsg::Reject { reason }));
            return;
        };
        if crate::registry::auth::check_username(&from).is_err() || from == me {
            let reason = RejectReason::BadHello.wire().to_string();
            self.end(conn, Some(ChatMsg::Reject { reason }));
            return;
        }
        if let Some(c) = self.chats.get_mut(&conn) {
            c.user = from.clone();
            c.state = State::Verifying;
        }
        self.actions.push_back(Action::Lookup {
            user: from,
            purpose: Lookup::Verify { conn },
        });
    }

    /// The registry's answer on who sent the hello on `conn` (`None`: it
    /// could not be asked).
    fn verified(&mut self, now: Instant, id: ConnId, info: Option<UserInfo>) {
        let Some(c) = self.chats.get(&id) else { return };
        if c.state != State::Verifying {
            return;
        }
        let user = c.user.clone();
        let from = c.addr;
        let ok = match &info {
            Some(UserInfo {
                online: true,
                address: Some(a),
                ..
            }) => same_ip(from.ip(), &a.ip),
            Some(_) => false,
            None => {
                // The registry is unreachable: let the user decide, warned.
                self.notice(ChatNotice::Unverified { user: user.clone() });
                true
            }
        };
        if !ok {
            let reason = RejectReason::IdentityCheckFailed.wire().to_string();
            self.end(id, Some(ChatMsg::Reject { reason }));
            self.error(ChatError::Impostor { user, from });
            return;
        }
        if self.dnd {
            self.end(id, Some(ChatMsg::Busy));
            self.notice(ChatNotice::AnsweredBusy { user });
            return;
        }
        let me = self.me.clone().unwrap_or_default();
        if let Some(ours) = self.find(&user, State::Requesting) {
            // Both asked at once: the request from the smaller name wins.
            if me < user {
                let reason = RejectReason::Crossed.wire().to_string();
                self.end(id, Some(ChatMsg::Reject { reason }));
                return;
            }
            let queued = self.end(ours, None).map(|c| c.queued).unwrap_or_default();
            if let Some(c) = self.chats.get_mut(&id) {
                c.queued = queued;
            }
            self.accept(id);
            return;
        }
        if let Some(old) = self
            .find(&user, State::Open)
            .or_else(|| self.find(&user, State::Asked))
        {
            // A new request replaces a stale one (the partner restarted).
            self.end(old, Some(ChatMsg::Bye));
        }
        if let Some(c) = self.chats.get_mut(&id) {
            c.state = State::Asked;
            c.since = now;
        }
        self.event(ChatEvent::Request { from: user });
    }

    /// A chat ended from the other side (or went silent).
    fn gone(&mut self, c: Chat, reason: EndReason) {
        match c.state {
            State::Open => self.event(ChatEvent::Closed {
                with: c.user,
                reason,
            }),
            State::Requesting => {
                self.event(ChatEvent::Refused {
                    by: c.user.clone(),
                    reason,
                });
                self.report_unsent(&c);
            }
            State::Asked => self.notice(ChatNotice::Withdrawn { user: c.user }),
            State::Hello | State::Verifying => {}
        }
    }

    // ---- time ----

    /// Keep-alives and time-outs, once per [`CHAT_PING`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.chats.is_empty() || now < self.next_tick {
            return;
        }
        self.next_tick = now + CHAT_PING;
        let mut dead = Vec::new();
        let mut pings = Vec::new();
        for (id, c) in &self.chats {
            let age = now.duration_since(c.since);
            match c.state {
                State::Open if now.duration_since(c.last_heard) >= CHAT_DEAD => {
                    dead.push((*id, None))
                }
                State::Hello | State::Verifying if age >= HELLO_TIMEOUT => {
                    dead.push((*id, Some(ChatMsg::Bye)))
                }
                State::Asked if age >= self.chat_timeout => {
                    dead.push((*id, Some(ChatMsg::Timeout)))
                }
                State::Requesting if age >= self.chat_timeout + REQUEST_GRACE => {
                    dead.push((*id, Some(ChatMsg::Bye)))
                }
                State::Open | State::Requesting | State::Asked => pings.push(*id),
                State::Hello | State::Verifying => {}
            }
        }
        for id in pings {
            self.send(id, ChatMsg::Ping);
        }
        for (id, last) in dead {
            let Some(c) = self.end(id, last) else {
                continue;
            };
            match c.state {
                State::Asked | State::Requesting => {
                    self.event(ChatEvent::TimedOut {
                        with: c.user.clone(),
                    });
                    self.report_unsent(&c);
                }
                State::Open => self.gone(c, EndReason::NotResponding),
                State::Hello | State::Verifying => {}
            }
        }
    }
}
