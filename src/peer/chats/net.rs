//! The network's side of the chat engine: answers to its look-ups and
//! dials, incoming connections and lines, and chats that end.

use super::{
    Action, Chat, ChatError, ChatEvent, ChatNotice, Chats, ConnEnd, ConnId, EndReason, Lookup,
    RejectReason, State, MAX_PENDING, MAX_PENDING_PER_IP,
};
use crate::protocol::chat::{ChatMsg, CHAT_VERSION, MAX_CHAT_ID};
use crate::protocol::secure::SecureError;
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
            (Lookup::Verify { conn }, result) => self.verified(now, conn, result),
            (Lookup::Resume { user }, result) => self.resume_looked_up(user, result),
        }
    }

    pub(super) fn dial(&mut self, user: String, info: UserInfo) {
        match info.address.clone().filter(|_| info.online) {
            Some(addr) => {
                let unsent = self.dialing.get(&user).map_or(0, Vec::len);
                match Self::vouched_key(&info, unsent) {
                    Ok(key) => self.actions.push_back(Action::Dial { user, addr, key }),
                    Err(e) => {
                        self.dialing.remove(&user);
                        self.error(e);
                    }
                }
            }
            None => {
                let unsent = self.dialing.remove(&user).unwrap_or_default().len();
                self.error(ChatError::Offline { user, unsent });
            }
        }
    }

    /// Our connection to `user` is up as `conn` (to `addr`): say hello.
    pub fn connected(&mut self, now: Instant, conn: ConnId, addr: SocketAddr, user: String) {
        if self.resume_connected(now, conn, addr, &user) {
            return;
        }
        let queued = self.dialing.remove(&user).unwrap_or_default();
        let Some(me) = self.me.clone() else {
            self.actions.push_back(Action::Close { conn });
            return;
        };
        let mut chat = Chat::new(user.clone(), addr, State::Requesting, now);
        chat.queued = queued;
        chat.chat_id = Some(Self::new_chat_id());
        self.send(
            conn,
            ChatMsg::Hello {
                from: me,
                version: CHAT_VERSION,
                chat: chat.chat_id.clone(),
                received: None,
            },
        );
        self.chats.insert(conn, chat);
        self.event(ChatEvent::Requested { to: user });
    }

    /// Connecting to `user` failed (`why`, for the user).
    pub fn dial_failed(&mut self, user: String, why: String) {
        if self.resume_dial_failed(&user, &why) {
            return;
        }
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
        self.chats
            .insert(conn, Chat::new(String::new(), addr, State::Hello, now));
    }

    /// Connection `conn` ended.
    pub fn conn_closed(&mut self, conn: ConnId, why: ConnEnd) {
        let Some((state, user)) = self.chats.get(&conn).map(|c| (c.state, c.user.clone())) else {
            return;
        };
        if let (State::Requesting, ConnEnd::Secure(error)) = (state, &why) {
            // Our request never left: the other side failed the handshake
            // (a key other than the registry's, a version-1 peer...).
            let unsent = self.end(conn, None).map_or(0, |c| c.queued.len());
            let error = match error {
                SecureError::KeyMismatch { user } => ChatError::KeyMismatch { user: user.clone() },
                SecureError::Version1 => ChatError::NeedsUpgrade { user, unsent },
                e => ChatError::Secure {
                    user,
                    error: e.clone(),
                    unsent,
                },
            };
            self.error(error);
            return;
        }
        let broken = matches!(
            why,
            ConnEnd::Closed | ConnEnd::Io(_) | ConnEnd::WriteFailed(_)
        );
        match state {
            // Its connection was dropped already; it waits to be resumed.
            State::Interrupted => {}
            State::Open if broken => self.lost(conn, EndReason::Conn(why)),
            State::Resuming if broken => {
                self.resume_refused(conn, RejectReason::Other(why.to_string()))
            }
            _ => {
                if let Some(c) = self.end(conn, None) {
                    self.gone(c, EndReason::Conn(why));
                }
            }
        }
    }

    /// A message arrived on `conn`.
    pub fn received(&mut self, now: Instant, conn: ConnId, msg: ChatMsg) {
        let Some(c) = self.chats.get_mut(&conn) else {
            return;
        };
        if c.state != State::Resuming {
            // A resume attempt that is refused again and again does not
            // put off giving the chat up.
            c.last_heard = now;
        }
        let (state, user, unverified) = (c.state, c.user.clone(), c.unverified);
        match (state, msg) {
            (
                State::Hello,
                ChatMsg::Hello {
                    from,
                    version,
                    chat,
                    received,
                },
            ) => self.hello(conn, from, version, chat, received),
            (
                State::Hello,
                ChatMsg::History {
                    from,
                    version,
                    room,
                    count,
                },
            ) => self.history_hello(conn, from, version, super::HistoryAsk { room, count }),
            (State::Hello, _) => self.bad_hello(conn),
            (_, ChatMsg::Ping) => {}
            (State::Requesting, ChatMsg::Accept { received }) => {
                if let Some(c) = self.chats.get_mut(&conn) {
                    c.state = State::Open;
                    c.resumable = received.is_some() && c.chat_id.is_some();
                }
                self.opened(conn, user);
            }
            (State::Resuming, ChatMsg::Accept { received }) => {
                self.resume_accepted(now, conn, received.unwrap_or(0))
            }
            (State::Resuming, ChatMsg::Reject { reason }) => {
                self.resume_refused(conn, RejectReason::from_wire(&reason))
            }
            (State::Resuming, ChatMsg::Busy | ChatMsg::Timeout) => {
                self.resume_refused(conn, RejectReason::Other("busy".into()))
            }
            (State::Open, ChatMsg::Ack { id }) => self.acked(conn, id),
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
                let Some(c) = self.chats.get_mut(&conn) else {
                    return;
                };
                if id <= c.last_in {
                    // A repeat or a step back: shown once already, or
                    // out of order. Dropped.
                    log::debug!("chat {conn}: dropped msg id {id} after {}", c.last_in);
                    return;
                }
                c.last_in = id;
                if c.resumable {
                    self.send(conn, ChatMsg::Ack { id });
                }
                self.event(ChatEvent::Received {
                    from: user,
                    id,
                    text,
                    unverified,
                });
            }
            (_, ChatMsg::Bye) => {
                if let Some(c) = self.end(conn, None) {
                    let reason =
                        if matches!(state, State::Open | State::Interrupted | State::Resuming) {
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

    /// A line on `conn` that is not a chat message: before the hello it
    /// is answered at once, after it ignored.
    pub fn garbage(&mut self, conn: ConnId) {
        if self
            .chats
            .get(&conn)
            .is_some_and(|c| c.state == State::Hello)
        {
            self.bad_hello(conn);
        }
    }

    /// The connection did not start with a valid hello.
    pub(super) fn bad_hello(&mut self, conn: ConnId) {
        let reason = RejectReason::BadHello.wire().to_string();
        self.end(conn, Some(ChatMsg::Reject { reason }));
    }

    /// Requests from `ip` and in all that wait for the registry or for
    /// our user.
    pub(super) fn pending(&self, ip: std::net::IpAddr) -> (usize, usize) {
        let waiting = || {
            self.chats
                .values()
                .filter(|c| matches!(c.state, State::Verifying | State::Asked))
        };
        (
            waiting().filter(|c| c.addr.ip() == ip).count(),
            waiting().count(),
        )
    }

    pub(super) fn hello(
        &mut self,
        conn: ConnId,
        from: String,
        version: u32,
        chat: Option<String>,
        received: Option<u64>,
    ) {
        let bad_chat = match &chat {
            Some(c) => c.is_empty() || c.len() > MAX_CHAT_ID,
            None => received.is_some(),
        };
        let Some(c) = self.admit(conn, from, version, bad_chat) else {
            return;
        };
        c.resumable = chat.is_some();
        c.chat_id = chat;
        c.resume_from = received;
    }

    /// The checks every first line (`hello`, or a history request) passes
    /// before the registry is asked about `from`: we are logged in; a valid
    /// name, not ours, the one the handshake claimed; our version; nothing
    /// else wrong with it (`bad`); room in the caps on pending requests.
    /// Then the connection waits for the identity check, and is returned
    /// for its first line's own fields; `None` when it was ended.
    pub(super) fn admit(
        &mut self,
        conn: ConnId,
        from: String,
        version: u32,
        bad: bool,
    ) -> Option<&mut Chat> {
        let Some(me) = self.me.as_deref() else {
            let reason = RejectReason::NotLoggedIn.wire().to_string();
            self.end(conn, Some(ChatMsg::Reject { reason }));
            return None;
        };
        // The first line must name whom the handshake claimed.
        let other_name = self.claimed(conn).is_some_and(|u| u != from);
        if Username::parse(&from).is_err()
            || from == me
            || version != CHAT_VERSION
            || bad
            || other_name
        {
            self.bad_hello(conn);
            return None;
        }
        let ip = self.chats.get(&conn).map(|c| c.addr.ip())?;
        let (from_ip, all) = self.pending(ip);
        if from_ip >= MAX_PENDING_PER_IP || all >= MAX_PENDING {
            log::info!("chat {conn}: {from_ip} requests pending from {ip}, {all} in all: busy");
            self.end(conn, Some(ChatMsg::Busy));
            return None;
        }
        self.actions.push_back(Action::Lookup {
            user: from.clone(),
            purpose: Lookup::Verify { conn },
        });
        let c = self.chats.get_mut(&conn)?;
        c.user = from;
        c.state = State::Verifying;
        Some(c)
    }

    /// A chat ended from the other side (or went silent).
    pub(super) fn gone(&mut self, c: Chat, reason: EndReason) {
        match c.state {
            State::Open | State::Interrupted | State::Resuming => {
                self.event(ChatEvent::Closed {
                    with: c.user.clone(),
                    reason,
                    unverified: c.unverified,
                });
                self.report_undelivered(&c);
            }
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
