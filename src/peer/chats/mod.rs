//! One-to-one chats as a sans-IO state machine: hello, identity check,
//! ask, accept or reject, open, keep-alive, acknowledgements, interruption
//! and resumption (`resume`), and close.
//!
//! [`Chats`] owns no socket, thread or clock. The peer's main loop feeds it
//! (a connection dialled or accepted under an id, a [`ChatMsg`] received on
//! an id, a connection gone, a registry look-up answered, the user's
//! commands, the time) and drains it: [`Chats::poll_action`] says what to
//! send or close on which connection, whom to look up or dial, and what
//! the user should see; [`Chats::poll_timeout`] says when to call
//! [`Chats::handle_timeout`] next. Every reason is a type
//! (`reasons`), rendered to the exact text the peer prints.

mod history;
mod net;
mod peek;
mod reasons;
mod resume;
mod secure;
#[cfg(test)]
mod tests;
mod user;
mod verify;

pub use history::HistoryAsk;
pub use reasons::{ChatError, ChatEvent, ChatNotice, ConnEnd, EndReason, RejectReason};
pub use resume::{MAX_UNACKED, RESUME_ATTEMPT, RESUME_LIMIT};

use crate::protocol::chat::ChatMsg;
use crate::protocol::Address;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The main loop's name for one chat connection.
pub type ConnId = u64;

/// Keep-alive period on chats; silence for `CHAT_DEAD` ends an open chat.
pub const CHAT_PING: Duration = Duration::from_secs(1);
pub const CHAT_DEAD: Duration = Duration::from_secs(3);
/// A connection that has not said hello by then is dropped.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// A hello whose registry check has not come back by then is dropped (the
/// registry link gives up on a request after 10 s, and the check is then
/// answered "unreachable").
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(12);
/// Requests waiting for a registry check or for our user's answer, from
/// one source address and in all: beyond them a hello is answered `busy`
/// before any registry look-up, so a flood of hellos cannot bury the user
/// in prompts or the registry in look-ups.
pub const MAX_PENDING_PER_IP: usize = 4;
pub const MAX_PENDING: usize = 16;
/// A refused request is shown once per source address in this long; the
/// others of a flood are only logged.
pub const REFUSAL_QUIET: Duration = Duration::from_secs(10);
/// The asked side times out first and says so; the asking side gives up
/// this much later when it never does.
const REQUEST_GRACE: Duration = Duration::from_secs(2);

/// What a registry look-up is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Where to dial `user`.
    Dial { user: String },
    /// Whether the static key of the incoming connection `conn` is the
    /// one the registry vouches for the user its hello names.
    Verify { conn: ConnId },
    /// Where to redial `user` to resume an interrupted chat.
    Resume { user: String },
}

/// What the engine asks its owner to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Queue `msg` on connection `conn`.
    Send { conn: ConnId, msg: ChatMsg },
    /// Queue our message `id` on `conn` and show it as our own message
    /// (`from`, in the chat `with`); without `conn` (the chat is
    /// interrupted), or when it cannot be queued there, show it as queued:
    /// the engine keeps it until the partner acknowledges it.
    Say {
        conn: Option<ConnId>,
        from: String,
        with: String,
        id: u64,
        text: String,
        /// The chat's partner was never checked with the registry.
        unverified: bool,
    },
    /// Close `conn` once what is queued on it has been written.
    Close { conn: ConnId },
    /// Ask the registry about `user`; answer with [`Chats::looked_up`].
    Lookup { user: String, purpose: Lookup },
    /// Connect to `user` at `addr`, whose static key must be `key` (the
    /// one the registry vouches for); answer with [`Chats::connected`] or
    /// [`Chats::dial_failed`].
    Dial {
        user: String,
        addr: Address,
        key: [u8; 32],
    },
    /// Show the user something.
    Event(ChatEvent),
    /// `from` (checked with the registry) asks for the history of a room
    /// on `conn`, which the engine has let go of: the owner answers (or
    /// refuses) and closes it.
    HistoryAsked {
        conn: ConnId,
        from: String,
        ask: HistoryAsk,
    },
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
    /// Open, but its connection broke without `bye`: waiting to be resumed
    /// (kept under the id of its dead connection).
    Interrupted,
    /// Interrupted; we redialled and sent a resume hello on this
    /// connection, waiting for `accept`.
    Resuming,
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
    /// The registry could not be asked who sent the hello: every line of
    /// this chat says so.
    unverified: bool,
    /// The last message id received; a `msg` must carry a greater one.
    last_in: u64,
    /// The chat's name for resuming it (chosen by the asker).
    chat_id: Option<String>,
    /// The partner can resume (and acknowledges messages).
    resumable: bool,
    /// Our messages not yet acknowledged: (id, text), oldest first. Only
    /// kept on resumable chats, at most [`MAX_UNACKED`].
    unacked: VecDeque<(u64, String)>,
    /// On an incoming resume hello: the last id its sender has shown.
    resume_from: Option<u64>,
    /// A look-up or dial to resume this chat is under way (since then).
    trying: Option<Instant>,
    /// On an incoming connection: the name the other side claimed in the
    /// Noise handshake and its static key (checked with the registry).
    secured: Option<(String, [u8; 32])>,
    /// On an incoming connection: its first line asked for a room's
    /// history, not for a chat.
    history: Option<HistoryAsk>,
}

impl Chat {
    fn new(user: String, addr: SocketAddr, state: State, now: Instant) -> Chat {
        Chat {
            user,
            addr,
            state,
            since: now,
            last_heard: now,
            next_id: 1,
            queued: Vec::new(),
            unverified: false,
            last_in: 0,
            chat_id: None,
            resumable: false,
            unacked: VecDeque::new(),
            resume_from: None,
            trying: None,
            secured: None,
            history: None,
        }
    }
}

/// Every one-to-one chat of this peer, in whatever state.
pub struct Chats {
    /// Our user name while logged in.
    me: Option<String>,
    /// Do not disturb: requests are answered busy.
    dnd: bool,
    /// An unanswered request gives up after this long.
    chat_timeout: Duration,
    /// An interrupted chat gives up after this long without its partner.
    resume_limit: Duration,
    chats: BTreeMap<ConnId, Chat>,
    /// Texts for users being looked up or dialled.
    dialing: HashMap<String, Vec<String>>,
    /// When a refused request from each address was last shown.
    refusals_shown: HashMap<std::net::IpAddr, Instant>,
    next_tick: Instant,
    actions: VecDeque<Action>,
}

impl Chats {
    pub fn new(now: Instant, chat_timeout: Duration) -> Chats {
        Chats {
            me: None,
            dnd: false,
            chat_timeout,
            resume_limit: RESUME_LIMIT,
            chats: BTreeMap::new(),
            dialing: HashMap::new(),
            refusals_shown: HashMap::new(),
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

    /// Whether a chat with `user` is open (or interrupted, to be resumed).
    pub fn is_open(&self, user: &str) -> bool {
        self.find_live(user).is_some()
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

    /// Keep-alives and time-outs, once per [`CHAT_PING`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.chats.is_empty() || now < self.next_tick {
            return;
        }
        self.next_tick = now + CHAT_PING;
        let mut dead = Vec::new();
        let mut pings = Vec::new();
        let mut lost = Vec::new();
        let mut waiting = Vec::new();
        for (id, c) in &self.chats {
            let age = now.duration_since(c.since);
            match c.state {
                State::Open if now.duration_since(c.last_heard) >= CHAT_DEAD => lost.push(*id),
                State::Interrupted => waiting.push(*id),
                State::Resuming => {
                    waiting.push(*id);
                    pings.push(*id);
                }
                State::Hello if age >= HELLO_TIMEOUT => dead.push((*id, Some(ChatMsg::Bye))),
                State::Verifying if age >= VERIFY_TIMEOUT => dead.push((*id, Some(ChatMsg::Bye))),
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
        for id in lost {
            self.lost(id, EndReason::NotResponding);
        }
        for id in waiting {
            self.resume_tick(now, id);
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
                State::Hello | State::Verifying => {}
                _ => self.gone(c, EndReason::NotResponding),
            }
        }
    }
}
