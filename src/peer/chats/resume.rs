//! Reliable one-to-one chats: acknowledgements, chats interrupted by the
//! network and resumed, and the report of what was never delivered.
//!
//! Every message of a resumable chat is kept until the partner
//! acknowledges it (`ack`). A chat whose connection breaks without `bye`
//! is interrupted, not ended: the side whose name sorts first redials
//! (looking the partner up again), sends a resume `hello` with the chat's
//! id and the last id it has shown, and both sides resend what the other
//! has not shown. A chat that ends for good names the messages never
//! acknowledged.

use super::{Action, Chat, ChatError, ChatEvent, Chats, ConnId, EndReason, RejectReason, State};
use crate::protocol::chat::{ChatMsg, CHAT_VERSION};
use crate::protocol::{ApiError, UserInfo};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// An interrupted chat gives up after this long without its partner
/// (counted from when the partner was last heard).
pub const RESUME_LIMIT: Duration = Duration::from_secs(120);
/// A resume hello not accepted by then is dropped and tried again.
pub const RESUME_ATTEMPT: Duration = Duration::from_secs(5);
/// Our messages kept unacknowledged on one chat; beyond them new ones are
/// refused.
pub const MAX_UNACKED: usize = 1024;
/// A redial's look-up and connect not answered by then (the registry link
/// gives up on a request after 10 s, a connect after 2 s) is started anew.
const TRY_LIMIT: Duration = Duration::from_secs(15);

impl Chats {
    /// How long an interrupted chat waits for its partner.
    pub fn set_resume_limit(&mut self, limit: Duration) {
        self.resume_limit = limit;
    }

    /// A new chat id: 128 random bits in hex.
    pub(super) fn new_chat_id() -> String {
        format!("{:032x}", rand::random::<u128>())
    }

    /// The chat with `user` that is open, interrupted or being resumed.
    pub(super) fn find_live(&self, user: &str) -> Option<ConnId> {
        self.chats
            .iter()
            .find(|(_, c)| {
                c.user == user
                    && matches!(c.state, State::Open | State::Interrupted | State::Resuming)
            })
            .map(|(id, _)| *id)
    }

    /// The partner has shown every message up to `id`.
    pub(super) fn acked(&mut self, conn: ConnId, id: u64) {
        let mut done = None;
        if let Some(c) = self.chats.get_mut(&conn) {
            let mut last = None;
            while let Some((m, _)) = c.unacked.front().filter(|(m, _)| *m <= id) {
                last = Some(*m);
                c.unacked.pop_front();
            }
            done = last.map(|m| (c.user.clone(), m));
        }
        if let Some((with, id)) = done {
            self.event(ChatEvent::Delivered { with, id });
        }
    }

    /// Reports the messages of `c` never acknowledged, if any.
    pub(super) fn report_undelivered(&mut self, c: &Chat) {
        if !c.unacked.is_empty() {
            self.event(ChatEvent::Undelivered {
                with: c.user.clone(),
                messages: c.unacked.iter().cloned().collect(),
            });
        }
    }

    /// The open chat on `conn` lost its connection without `bye`: it is
    /// interrupted when the partner can resume it, else it ends.
    pub(super) fn lost(&mut self, conn: ConnId, reason: EndReason) {
        let Some(c) = self.chats.get_mut(&conn) else {
            return;
        };
        if !c.resumable {
            if let Some(c) = self.end(conn, None) {
                self.gone(c, reason);
            }
            return;
        }
        c.state = State::Interrupted;
        c.trying = None;
        let with = c.user.clone();
        self.actions.push_back(Action::Close { conn });
        self.event(ChatEvent::Interrupted { with, reason });
    }

    /// Once a tick for an interrupted chat (or one being resumed): gives
    /// up after the limit; the side whose name sorts first redials.
    pub(super) fn resume_tick(&mut self, now: Instant, conn: ConnId) {
        let me = self.me.clone().unwrap_or_default();
        let Some(c) = self.chats.get_mut(&conn) else {
            return;
        };
        if now.duration_since(c.last_heard) >= self.resume_limit {
            if let Some(c) = self.end(conn, None) {
                self.gone(c, EndReason::NotResumed);
            }
            return;
        }
        if c.state == State::Resuming && now.duration_since(c.since) >= RESUME_ATTEMPT {
            log::info!("chat {conn}: resume of the chat with {} unanswered", c.user);
            c.state = State::Interrupted;
            c.trying = None;
            self.actions.push_back(Action::Close { conn });
            return;
        }
        if c.trying.is_some_and(|t| now.duration_since(t) >= TRY_LIMIT) {
            // Its answer was lost somewhere: try again.
            log::info!("chat {conn}: redial of {} unanswered", c.user);
            c.trying = None;
        }
        if c.state == State::Interrupted && c.trying.is_none() && me.as_str() < c.user.as_str() {
            c.trying = Some(now);
            let user = c.user.clone();
            self.actions.push_back(Action::Lookup {
                user: user.clone(),
                purpose: super::Lookup::Resume { user },
            });
        }
    }

    /// The interrupted chat with `user` whose redial is under way.
    fn trying(&self, user: &str) -> Option<ConnId> {
        self.chats
            .iter()
            .find(|(_, c)| c.user == user && c.state == State::Interrupted && c.trying.is_some())
            .map(|(id, _)| *id)
    }

    /// The registry's answer on where to redial `user`.
    pub(super) fn resume_looked_up(&mut self, user: String, result: Result<UserInfo, ApiError>) {
        let Some(id) = self.trying(&user) else {
            return;
        };
        let key = result
            .as_ref()
            .ok()
            .and_then(|i| Self::vouched_key(i, 0).ok());
        match (result.map(|i| i.address.filter(|_| i.online)), key) {
            (Ok(Some(addr)), Some(key)) => self.actions.push_back(Action::Dial { user, addr, key }),
            other => {
                log::debug!("resuming the chat with {user}: not yet ({other:?})");
                if let Some(c) = self.chats.get_mut(&id) {
                    c.trying = None;
                }
            }
        }
    }

    /// A redial to resume a chat with `user` failed; true if it was one.
    pub(super) fn resume_dial_failed(&mut self, user: &str, why: &str) -> bool {
        let Some(id) = self.trying(user) else {
            return false;
        };
        log::debug!("resuming the chat with {user}: {why}");
        if let Some(c) = self.chats.get_mut(&id) {
            c.trying = None;
        }
        true
    }

    /// A redial to resume a chat with `user` connected as `conn`: the chat
    /// moves there and asks to be resumed. False if it was not one.
    pub(super) fn resume_connected(
        &mut self,
        now: Instant,
        conn: ConnId,
        addr: SocketAddr,
        user: &str,
    ) -> bool {
        let Some(old) = self.trying(user) else {
            if self.find_live(user).is_some() && !self.dialing.contains_key(user) {
                // A redial answered after it was given up: not needed.
                self.actions.push_back(Action::Close { conn });
                return true;
            }
            return false;
        };
        let (Some(me), Some(mut c)) = (self.me.clone(), self.chats.remove(&old)) else {
            return false;
        };
        c.state = State::Resuming;
        c.since = now;
        c.addr = addr;
        c.trying = None;
        let hello = ChatMsg::Hello {
            from: me,
            version: CHAT_VERSION,
            chat: c.chat_id.clone(),
            received: Some(c.last_in),
        };
        self.chats.insert(conn, c);
        self.send(conn, hello);
        true
    }

    /// Our resume hello on `conn` was accepted; the partner has shown up
    /// to `received`.
    pub(super) fn resume_accepted(&mut self, now: Instant, conn: ConnId, received: u64) {
        if let Some(c) = self.chats.get_mut(&conn) {
            c.state = State::Open;
            c.last_heard = now;
            let with = c.user.clone();
            self.reopened(conn, with, received);
        }
    }

    /// Our resume hello on `conn` was turned down or went unanswered.
    pub(super) fn resume_refused(&mut self, conn: ConnId, reason: RejectReason) {
        if reason == RejectReason::UnknownChat {
            // The partner has given the chat up (or restarted): it is over.
            if let Some(c) = self.end(conn, None) {
                self.gone(c, EndReason::Rejected(reason));
            }
            return;
        }
        if let Some(c) = self.chats.get_mut(&conn) {
            log::info!("chat {conn}: resume with {} refused: {reason:?}", c.user);
            c.state = State::Interrupted;
            c.trying = None;
            self.actions.push_back(Action::Close { conn });
        }
    }

    /// A checked resume hello on `conn`: it takes over the chat it names
    /// (interrupted, or still open here when the break was only seen on
    /// the other side), answered with what we have shown. A hello for a
    /// chat we do not hold is rejected "unknown chat".
    pub(super) fn adopt(&mut self, now: Instant, conn: ConnId, received: u64) {
        let Some(new) = self.chats.get(&conn) else {
            return;
        };
        let old = self
            .chats
            .iter()
            .find(|(id, c)| {
                **id != conn
                    && c.user == new.user
                    && c.resumable
                    && c.chat_id == new.chat_id
                    && matches!(c.state, State::Open | State::Interrupted | State::Resuming)
            })
            .map(|(id, _)| *id);
        let Some(old) = old else {
            let reason = RejectReason::UnknownChat.wire().to_string();
            self.end(conn, Some(ChatMsg::Reject { reason }));
            return;
        };
        let (Some(new), Some(mut c)) = (self.chats.remove(&conn), self.chats.remove(&old)) else {
            return;
        };
        if c.state != State::Interrupted {
            // Its connection is dead for the other side: drop it quietly.
            self.actions.push_back(Action::Close { conn: old });
        }
        c.state = State::Open;
        c.addr = new.addr;
        c.since = now;
        c.last_heard = now;
        c.trying = None;
        c.unverified |= new.unverified;
        let (with, last_in) = (c.user.clone(), c.last_in);
        self.chats.insert(conn, c);
        self.send(
            conn,
            ChatMsg::Accept {
                received: Some(last_in),
            },
        );
        self.reopened(conn, with, received);
    }

    /// A resumed chat on `conn`: what the partner has shown (up to
    /// `received`) counts as acknowledged, the rest is sent again.
    fn reopened(&mut self, conn: ConnId, with: String, received: u64) {
        self.acked(conn, received);
        self.event(ChatEvent::Resumed { with });
        let again: Vec<(u64, String)> = self
            .chats
            .get(&conn)
            .map(|c| c.unacked.iter().cloned().collect())
            .unwrap_or_default();
        for (id, text) in again {
            self.send(conn, ChatMsg::Msg { id, text });
        }
    }

    /// Takes our message `text` on the chat `conn` (open, interrupted or
    /// being resumed): kept until acknowledged, sent when open.
    pub(super) fn keep(&mut self, conn: ConnId, text: String) {
        let Some(from) = self.me.clone() else { return };
        let Some(c) = self.chats.get_mut(&conn) else {
            return;
        };
        if c.resumable && c.unacked.len() >= MAX_UNACKED {
            let user = c.user.clone();
            self.error(ChatError::TooManyUnacked {
                user,
                max: MAX_UNACKED,
            });
            return;
        }
        let id = c.next_id;
        c.next_id += 1;
        if c.resumable {
            c.unacked.push_back((id, text.clone()));
        }
        let (with, unverified) = (c.user.clone(), c.unverified);
        let conn = (c.state == State::Open).then_some(conn);
        self.actions.push_back(Action::Say {
            conn,
            from,
            with,
            id,
            text,
            unverified,
        });
    }
}
