//! Room history for latecomers (`protocol.md` section 3, "Room history"):
//! the glue between [`crate::peer::history`] (transcripts, limits, the
//! joiner's fetch), the chat connections (Noise over TCP, as for a chat)
//! and the registry (who is in the room, and where).
//!
//! A joiner asks the room's members from the registry, dials the first
//! present one (then the next, at most [`MAX_TRIES`]) and sends `history`
//! as its first line; the asked side checks the asker like a `hello` (the
//! chat engine does that, [`Action::HistoryAsked`] hands it over), then
//! that it is a member, and answers from its transcript without asking
//! its user.
//!
//! [`Action::HistoryAsked`]: crate::peer::chats::Action::HistoryAsked
//! [`MAX_TRIES`]: crate::peer::history::MAX_TRIES

use super::App;
use crate::identity::unhex32;
use crate::peer::chat_noise::Role;
use crate::peer::chats::{ConnEnd, ConnId, HistoryAsk};
use crate::peer::events::Event;
use crate::peer::history::{
    AnswerLimit, Candidate, Entry, Fetch, Shown, Transcripts, FETCH_TIMEOUT, MAX_ROOM_BYTES,
};
use crate::peer::slots;
use crate::peer::ui::UiEvent;
use crate::protocol::chat::{ChatMsg, CHAT_VERSION};
use crate::protocol::datagram::MAX_MESSAGE;
use crate::protocol::{ApiError, ReplyBody, Request, UserInfo};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// (sender, id) shown as history remembered per room at most; beyond,
/// forgotten (a later fetch may show them again).
const MAX_SHOWN: usize = 10_000;

/// Why a history answer is refused: the asker is not in the room.
pub const NOT_A_MEMBER: &str = "not a member";

/// What a registry request about room history was for.
pub enum HistoryPending {
    /// The members of `room`, to ask one of them for its history.
    Members { room: String },
    /// Whether `from`, who asked on `conn` for a room's history, is a
    /// member of it (our room engine did not list it yet).
    Check {
        conn: ConnId,
        from: String,
        ask: HistoryAsk,
    },
}

/// The peer's room history state.
pub struct HistoryState {
    pub transcripts: Transcripts,
    pub(super) answers: AnswerLimit,
    /// Our fetches under way, by room.
    fetches: HashMap<String, Fetch>,
    /// Asked connections waiting for the registry's word on the asker.
    pub(super) checking: HashMap<ConnId, String>,
    /// (sender, id) shown as history, per room: the same text arriving
    /// live afterwards is not shown again.
    /// With each, the text's fingerprint and when it was shown.
    shown: HashMap<String, HashMap<(String, u64), Shown>>,
    /// Since when each member of each room is one in our room engine's
    /// view: our texts from then on were sent to it.
    members_since: HashMap<(String, String), Instant>,
}

impl HistoryState {
    pub fn new(limit: usize) -> HistoryState {
        HistoryState {
            transcripts: Transcripts::new(limit, MAX_ROOM_BYTES),
            answers: AnswerLimit::default(),
            fetches: HashMap::new(),
            checking: HashMap::new(),
            shown: HashMap::new(),
            members_since: HashMap::new(),
        }
    }

    /// Whether connection `conn` is one of ours (asking or answering).
    pub fn owns(&self, conn: ConnId) -> bool {
        self.checking.contains_key(&conn) || self.fetch_of(conn).is_some()
    }

    fn fetch_of(&self, conn: ConnId) -> Option<String> {
        self.fetches
            .values()
            .find(|f| f.conn == Some(conn))
            .map(|f| f.room.clone())
    }

    /// `user` is a member of `room` from `now` on (`None`: no longer).
    pub fn member(&mut self, room: &str, user: &str, now: Option<Instant>) {
        let key = (room.to_string(), user.to_string());
        match now {
            Some(now) => self.members_since.insert(key, now),
            None => self.members_since.remove(&key),
        };
    }

    /// Since when `user` is a member of `room` in our view.
    pub fn member_since(&self, room: &str, user: &str) -> Option<Instant> {
        let key = (room.to_string(), user.to_string());
        self.members_since.get(&key).copied()
    }

    /// Forgets what we kept of the rooms we are no longer in.
    pub(super) fn forget_left(&mut self, rooms: &super::Rooms) {
        self.transcripts.retain(|r| rooms.is_member(r));
        self.shown.retain(|r, _| rooms.is_member(r));
        self.members_since.retain(|(r, _), _| rooms.is_member(r));
    }

    /// When the oldest fetch gives its member up (one waiting for the
    /// registry's list has the registry's own time-out).
    pub fn deadline(&self) -> Option<Instant> {
        self.fetches
            .values()
            .filter(|f| f.via.is_some())
            .map(|f| f.since + FETCH_TIMEOUT)
            .min()
    }
}

fn candidate(me: &str, u: &UserInfo) -> Option<Candidate> {
    if u.username == me || !u.online {
        return None;
    }
    Some(Candidate {
        user: u.username.clone(),
        addr: u.address.clone()?,
        key: unhex32(&u.keys.as_ref()?.kx)?,
    })
}

impl App {
    /// We are in `room` now, with `members`: ask one of them for what was
    /// said before.
    pub(super) fn history_joined(&mut self, room: &str, members: &[String]) {
        // Anything kept from an earlier stay in the room is forgotten (the
        // room engine announces a join only when we were not in it).
        self.history.transcripts.retain(|r| r != room);
        self.history.shown.remove(room);
        let now = Instant::now();
        for m in members {
            self.history.member(room, m, Some(now));
        }
        let count = self.history.transcripts.limit();
        let me = self.me().unwrap_or_default().to_string();
        if count == 0 || members.iter().all(|m| *m == me) {
            return;
        }
        self.history_fetch(room.to_string(), count as u32, false);
    }

    /// Starts fetching `room`'s last `count` texts (`/history #ROOM [N]`
    /// when `manual`).
    pub(super) fn history_fetch(&mut self, room: String, count: u32, manual: bool) {
        if self.history.fetches.contains_key(&room) {
            if manual {
                self.notice(format!("#{room}: already asking for its history"));
            }
            return;
        }
        let Some(token) = self.session.as_ref().map(|s| s.token.clone()) else {
            return self.error("not_logged_in", "not logged in");
        };
        let mut seen = self.history.transcripts.keys(&room);
        if let Some(shown) = self.history.shown.get_mut(&room) {
            if shown.len() > MAX_SHOWN {
                shown.clear();
            }
            seen.extend(shown.keys().cloned());
        }
        let mut fetch = Fetch::new(room.clone(), count, seen, Instant::now());
        fetch.manual = manual;
        self.history.fetches.insert(room.clone(), fetch);
        let req = Request::Members {
            token,
            room: room.clone(),
        };
        self.send(
            req,
            super::Pending::History(HistoryPending::Members { room }),
        );
    }

    /// The registry answered a history request.
    pub(super) fn history_replied(&mut self, p: HistoryPending, body: Result<ReplyBody, ApiError>) {
        let members = match body {
            Ok(ReplyBody::Room { room, .. }) => Ok(room.members),
            Ok(other) => Err(format!("unexpected reply {other:?}")),
            Err(e) => Err(e.message),
        };
        match p {
            HistoryPending::Members { room } => {
                let me = self.me().unwrap_or_default().to_string();
                let Some(f) = self.history.fetches.get_mut(&room) else {
                    return;
                };
                match members {
                    Ok(m) => f.candidates = m.iter().filter_map(|u| candidate(&me, u)).collect(),
                    Err(why) => f.why = Some(why),
                }
                self.history_next(&room);
            }
            HistoryPending::Check { conn, from, ask } => {
                self.history.checking.remove(&conn);
                let member = members.is_ok_and(|m| m.iter().any(|u| u.username == from));
                if member && self.rooms.is_member(&ask.room) {
                    self.history_answer(conn, &from, &ask);
                } else {
                    self.history_refuse(conn, NOT_A_MEMBER);
                }
            }
        }
    }

    /// Asks the next member of `room`'s fetch, or gives the fetch up.
    fn history_next(&mut self, room: &str) {
        let now = Instant::now();
        let Some(f) = self.history.fetches.get_mut(room) else {
            return;
        };
        let Some(c) = f.next(now) else {
            let f = self.history.fetches.remove(room);
            let reason = f
                .and_then(|f| f.why)
                .unwrap_or_else(|| "no other member is online to ask".into());
            let room = room.to_string();
            return self.emit(UiEvent::RoomHistoryUnavailable { room, reason });
        };
        let events = self.events.clone();
        let room = room.to_string();
        let spawned = std::thread::Builder::new()
            .name("history-dial".into())
            .spawn(move || {
                let result = format!("{}:{}", c.addr.ip, c.addr.tcp_port)
                    .parse::<SocketAddr>()
                    .map_err(|e| format!("bad address {}: {e}", c.addr.ip))
                    .and_then(|sa| {
                        TcpStream::connect_timeout(&sa, Duration::from_secs(2))
                            .map_err(|e| format!("cannot reach {} at {sa}: {e}", c.user))
                    });
                let _ = events.send(Event::HistoryDialed {
                    room,
                    user: c.user,
                    key: c.key,
                    result,
                });
            });
        if let Err(e) = spawned {
            log::warn!("cannot start a history dial: {e}");
        }
    }

    /// Our connection to `user` for `room`'s history is up (or failed).
    pub(super) fn history_dialed(
        &mut self,
        room: String,
        user: String,
        key: [u8; 32],
        result: Result<TcpStream, String>,
    ) {
        let Some(f) = self.history.fetches.get_mut(&room) else {
            return;
        };
        if f.via.as_deref() != Some(user.as_str()) || f.conn.is_some() {
            return;
        }
        let count = f.count;
        let stream = match result {
            Ok(s) => s,
            Err(why) => {
                f.why = Some(why);
                return self.history_next(&room);
            }
        };
        let role = Role::Dial { user, key };
        match self.spawn_conn(stream, slots::Slot::outgoing(), role) {
            Ok((conn, _)) => {
                if let Some(f) = self.history.fetches.get_mut(&room) {
                    f.conn = Some(conn);
                }
                let from = self.me().unwrap_or_default().to_string();
                let ask = ChatMsg::History {
                    from,
                    version: CHAT_VERSION,
                    room,
                    count,
                };
                if let Some(c) = self.conns.get(&conn) {
                    c.send(ask);
                }
            }
            Err(e) => {
                if let Some(f) = self.history.fetches.get_mut(&room) {
                    f.why = Some(e.to_string());
                }
                self.history_next(&room);
            }
        }
    }

    /// A line on one of our history connections.
    pub(super) fn history_msg(&mut self, conn: ConnId, msg: ChatMsg) {
        let Some(room) = self.history.fetch_of(conn) else {
            // An asker says more than its request: ignored.
            return;
        };
        let Some(f) = self.history.fetches.get_mut(&room) else {
            return;
        };
        let via = f.via.clone().unwrap_or_default();
        match msg {
            ChatMsg::HistoryMsg {
                from,
                id,
                text,
                age_ms,
            } => {
                f.got += 1;
                if f.got > f.count {
                    // More than asked for: the rest is not taken.
                    f.why = Some(format!("{via} sent more than asked for"));
                    return self.history_done(&room, conn);
                }
                if text.len() > MAX_MESSAGE || !f.seen.insert((from.clone(), id)) {
                    return;
                }
                f.shown += 1;
                let first = !f.started;
                f.started = true;
                self.history
                    .shown
                    .entry(room.clone())
                    .or_default()
                    .insert((from.clone(), id), Shown::new(&text, Instant::now()));
                if first {
                    let (room, via) = (room.clone(), via.clone());
                    self.emit(UiEvent::RoomHistoryStart { room, via });
                }
                self.emit(UiEvent::RoomHistory {
                    room,
                    from,
                    id,
                    text,
                    age_ms,
                    via,
                });
            }
            ChatMsg::HistoryEnd { .. } => {
                let count = f.shown;
                self.history.fetches.remove(&room);
                self.history_close(conn);
                self.emit(UiEvent::RoomHistoryEnd { room, via, count });
            }
            ChatMsg::Reject { reason } => {
                let stop = reason == NOT_A_MEMBER;
                f.why = Some(format!("{via}: {reason}"));
                if stop {
                    f.candidates.clear();
                }
                self.history_done(&room, conn);
            }
            ChatMsg::Busy => {
                f.why = Some(format!("{via} is busy"));
                self.history_done(&room, conn);
            }
            _ => {}
        }
    }

    /// The member asked on `conn` failed: the next one is asked.
    fn history_done(&mut self, room: &str, conn: ConnId) {
        self.history_close(conn);
        self.history_next(room);
    }

    /// One of our history connections ended.
    pub(super) fn history_closed(&mut self, conn: ConnId, why: ConnEnd) {
        if self.history.checking.remove(&conn).is_some() {
            return self.history_close(conn);
        }
        let Some(room) = self.history.fetch_of(conn) else {
            return;
        };
        if let Some(f) = self.history.fetches.get_mut(&room) {
            let via = f.via.clone().unwrap_or_default();
            f.why = Some(format!("{via}: {why}"));
        }
        self.history_done(&room, conn);
    }

    /// Fetches whose member has not answered in time ask the next.
    pub(super) fn history_tick(&mut self, now: Instant) {
        let late: Vec<(String, Option<ConnId>)> = self
            .history
            .fetches
            .values()
            .filter(|f| f.via.is_some() && f.overdue(now))
            .map(|f| (f.room.clone(), f.conn))
            .collect();
        for (room, conn) in late {
            if let Some(f) = self.history.fetches.get_mut(&room) {
                let via = f.via.clone().unwrap_or_default();
                f.why = Some(format!("{via} did not answer"));
            }
            match conn {
                Some(conn) => self.history_done(&room, conn),
                None => self.history_next(&room),
            }
        }
    }

    /// A room text shown live: kept for latecomers. True when it was
    /// shown already as history (and is not shown again).
    pub(super) fn history_live(&mut self, room: &str, from: &str, id: u64, text: &str) -> bool {
        self.history.forget_left(&self.rooms);
        let key = (from.to_string(), id);
        if let Some(f) = self.history.fetches.get_mut(room) {
            f.seen.insert(key.clone());
        }
        let entry = Entry {
            from: from.to_string(),
            id,
            text: text.to_string(),
            at: Instant::now(),
        };
        self.history.transcripts.record(room, entry);
        self.history
            .shown
            .get(room)
            .and_then(|shown| shown.get(&key))
            .is_some_and(|shown| shown.is_copy(text, Instant::now()))
    }
}
