//! The network's side of the chat engine: answers to its look-ups and
//! dials, incoming connections and lines, and chats that end.

use super::{
    Action, Chat, ChatError, ChatEvent, ChatNotice, Chats, ConnEnd, ConnId, EndReason, Lookup,
    RejectReason, State,
};
use crate::protocol::addr::same_ip;
use crate::protocol::chat::{ChatMsg, CHAT_VERSION};
use crate::protocol::Username;
use crate::protocol::{ApiError, UserInfo};
use std::net::SocketAddr;
use std::time::Instant;

impl Chats {
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

    pub(super) fn dial(&mut self, user: String, info: UserInfo) {
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

    pub(super) fn hello(&mut self, conn: ConnId, from: String) {
        let Some(me) = self.me.as_deref() else {
            let reason = RejectReason::NotLoggedIn.wire().to_string();
            self.end(conn, Some(ChatMsg::Reject { reason }));
            return;
        };
        if Username::parse(&from).is_err() || from == me {
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
    pub(super) fn verified(&mut self, now: Instant, id: ConnId, info: Option<UserInfo>) {
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
    pub(super) fn gone(&mut self, c: Chat, reason: EndReason) {
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
}
