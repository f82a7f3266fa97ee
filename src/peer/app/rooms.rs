//! The thin glue between the peer's main loop and the room [`Engine`]:
//! datagrams from the UDP socket, registry replies and user commands go in;
//! the engine's datagrams go to the socket, its events to the UI and its
//! requests to the registry (with the session's token). Owns the clock
//! (`Instant::now()`), the stream-id source and the registry bookkeeping
//! ([`RoomPending`]); the room logic is all in the engine.

use super::room_keys::KeyNews;
use super::{App, Pending, Target};
use crate::peer::rooms::engine::{Engine, Listed, StreamIds};
use crate::peer::rooms::event::{Ask, Event, NotMember, SayError, Stats};
use crate::peer::rooms::faults::Faults;
use crate::peer::ui::UiEvent;
use crate::protocol::datagram::{self as wire, RoomKey};
use crate::protocol::{ApiError, ErrorCode, ReplyBody, Request, RoomInfo, UserInfo};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub enum RoomCommand {
    Create(String),
    Join(String),
    Leave(Option<String>),
    List,
    Members(Option<String>),
}

/// What a room request to the registry was for.
pub enum RoomPending {
    Create(String),
    Join(String),
    /// Re-join after the session was restored (`attempt` bounds retries).
    Rejoin {
        room: String,
        attempt: u8,
    },
    Leave(String),
    List,
    Members(String),
    /// Background refresh of the member list.
    Refresh(String),
    /// `/topic TEXT`: `set_topic`.
    Topic(String),
    /// `/kick`, `/ban`… on this room.
    Moderated(String),
    /// `/announce`.
    Announce,
    /// Our `room_key` (the packages of a key we made); answered as
    /// `members` is.
    Key(String),
}

/// Stream ids from the wall clock: microseconds since the epoch, so a
/// restarted peer's streams are newer than its previous run's.
struct WallClock;

impl StreamIds for WallClock {
    fn stream_id(&mut self) -> u64 {
        crate::peer::ui::now_us()
    }
}

/// Room datagrams signed with the user's identity.
struct Signer(Arc<crate::identity::Identity>);

impl wire::Authenticator for Signer {
    fn sign(&self, msg: &[u8]) -> [u8; wire::SIG_LEN] {
        self.0.sign(msg)
    }
    fn verify(&self, signer: &wire::VerifyingKey, msg: &[u8], sig: &[u8; wire::SIG_LEN]) -> bool {
        wire::Authenticator::verify(self.0.as_ref(), signer, msg, sig)
    }
}

/// The peer's rooms: the engine plus what the I/O side counts.
pub struct Rooms {
    pub engine: Engine,
    /// Shared with the UDP receiver thread, which counts what it drops.
    pub queue_overflow: Arc<AtomicU64>,
    /// The last topic the registry told us of each room we joined.
    pub topics: std::collections::HashMap<String, Option<crate::protocol::TopicInfo>>,
    /// Room keys we made, and what we sealed for whom.
    pub keys: super::room_keys::KeyState,
}

impl Rooms {
    pub fn new(faults: Faults) -> Rooms {
        Rooms {
            engine: Engine::new(
                faults,
                rand::random(),
                Box::new(WallClock),
                // Replaced by the user's identity at login.
                Box::new(crate::identity::Identity::generate()),
            ),
            queue_overflow: Default::default(),
            topics: Default::default(),
            keys: Default::default(),
        }
    }

    /// Who we are in rooms, and the identity keys we sign with (those the
    /// registry vouches for with our session).
    pub fn set_identity(&mut self, me: &str, keys: Option<Arc<crate::identity::Identity>>) {
        self.engine.set_identity(me);
        if let Some(keys) = keys {
            self.engine.set_auth(Box::new(Signer(keys)));
        }
    }

    pub fn is_member(&self, room: &str) -> bool {
        self.engine.is_member(room)
    }

    pub fn joined(&self) -> Vec<String> {
        self.engine.joined()
    }

    pub fn clear(&mut self) {
        self.engine.clear();
        self.keys.clear();
    }

    pub fn leaving_done(&self) -> bool {
        self.engine.leaving_done()
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.engine.poll_timeout()
    }

    /// The counters for `/stats`.
    pub fn stats(&self) -> Stats {
        let mut s = self.engine.stats();
        s.queue_overflow = self.queue_overflow.load(Ordering::Relaxed);
        s
    }
}

fn addr_of(u: &UserInfo) -> Option<SocketAddr> {
    let a = u.address.as_ref().filter(|_| u.online)?;
    Some(SocketAddr::new(a.ip.parse::<IpAddr>().ok()?, a.udp_port))
}

fn listed(users: &[UserInfo]) -> Vec<Listed> {
    users
        .iter()
        .map(|u| Listed {
            name: u.username.clone(),
            addr: addr_of(u),
            sign: u
                .keys
                .as_ref()
                .and_then(|k| crate::identity::PublicKeys::from_wire(k).ok())
                .map(|k| k.sign),
        })
        .collect()
}

// The only App internals used beyond `emit`, `error`, `api_error`, `send`,
// `set_current`, `current`, `udp` and `rooms`: the session's token and the
// running script, each behind one helper.
impl App {
    /// The session's token, for registry requests; `None` when logged out.
    fn room_token(&self) -> Option<String> {
        self.session.as_ref().map(|s| s.token.clone())
    }

    /// The key to hand the engine with a member list: the epoch's key when
    /// we hold it; while it has not reached us, the engine's own (which it
    /// then sends nothing under: [`Engine::await_key`]); `None` when the
    /// registry no longer counts us a member. `rejoined`: the key we hold
    /// is from before the registry dropped us, whatever its epoch says.
    fn room_key_for_engine(
        &mut self,
        now: Instant,
        info: &RoomInfo,
        rejoined: bool,
    ) -> Option<RoomKey> {
        match self.room_key_news(now, info) {
            KeyNews::Key(key) => {
                // The very key we held while we waited: nothing will change
                // it, so stop waiting here.
                if self.rooms.engine.key(&info.name) == Some(key) {
                    self.rooms.engine.key_confirmed(now, &info.name);
                }
                Some(key)
            }
            KeyNews::NotMember => None,
            KeyNews::Waiting(epoch) => {
                let engine = &mut self.rooms.engine;
                let held = engine.key(&info.name)?;
                if rejoined || held.epoch != epoch || !engine.has_key(&info.name) {
                    engine.await_key(now, &info.name);
                }
                Some(held)
            }
        }
    }

    /// A room command failed: a running script stops at this line.
    fn room_script_fail(&mut self, why: &str) {
        if let Some(s) = &mut self.script {
            s.fail_current(why.into());
        }
    }

    /// Drains the engine: datagrams to the socket, events to the UI and
    /// the registry.
    fn rooms_flush(&mut self) {
        if let Some(m) = &mut self.multicast {
            m.reconcile(&self.rooms.engine.groups());
        }
        let batch: Vec<(std::net::SocketAddr, Vec<u8>)> =
            std::iter::from_fn(|| self.rooms.engine.poll_transmit()).collect();
        if !batch.is_empty() {
            super::batch::send_all(&self.udp, &batch);
        }
        while let Some(ev) = self.rooms.engine.poll_event() {
            self.room_event(ev);
        }
    }

    fn room_event(&mut self, ev: Event) {
        let ui = match ev {
            Event::Joined { room, members } => {
                self.emit(UiEvent::RoomJoined {
                    room: room.clone(),
                    members: members.clone(),
                });
                self.set_current(Target::Room(room.clone()));
                self.history_joined(&room, &members);
                return;
            }
            Event::MemberJoined { room, user } => {
                self.history.member(&room, &user, Some(Instant::now()));
                UiEvent::MemberJoined { room, user }
            }
            Event::MemberLeft { room, user, reason } => {
                self.history.member(&room, &user, None);
                UiEvent::MemberLeft {
                    room,
                    user,
                    reason: reason.to_string(),
                }
            }
            Event::Message {
                room,
                from,
                text,
                id,
                ..
            } if self.history_live(&room, &from, id, &text) => {
                log::debug!("#{room}: {from}'s {id} was shown as history already");
                return;
            }
            Event::Message {
                room,
                from,
                text,
                id,
                own,
                late,
            } => UiEvent::Message {
                from,
                chat: format!("#{room}"),
                text,
                id,
                own,
                queued: false,
                action: false,
                mention: false,
                late,
            },
            Event::Delivery {
                room,
                id,
                acked,
                total,
            } => UiEvent::Delivery {
                room,
                id,
                acked,
                total,
            },
            Event::DeliveryFailed { room, id, missing } => {
                UiEvent::DeliveryFailed { room, id, missing }
            }
            Event::Sending { room, done, total } => UiEvent::Sending { room, done, total },
            Event::Ask(ask) => return self.room_ask(ask),
            Event::Outdated { room, user } => {
                let why = format!(
                    "{user} (in #{room}) runs an older lanchat without identity keys: \
                     they need to upgrade before you can share the room"
                );
                return self.error("outdated_peer", &why);
            }
        };
        self.emit(ui);
    }

    /// A registry request the engine needs (dropped when logged out).
    fn room_ask(&mut self, ask: Ask) {
        let Some(token) = self.room_token() else {
            return;
        };
        let (req, p) = match ask {
            Ask::Members(room) => (
                Request::Members {
                    token,
                    room: room.clone(),
                },
                RoomPending::Refresh(room),
            ),
            Ask::Rejoin(room) => (
                Request::JoinRoom {
                    token,
                    room: room.clone(),
                    password: None,
                },
                RoomPending::Rejoin { room, attempt: 0 },
            ),
            Ask::Leave(room) => (
                Request::LeaveRoom {
                    token,
                    room: room.clone(),
                },
                RoomPending::Leave(room),
            ),
        };
        self.send(req, Pending::Room(p));
    }

    /// A room we are leaving stops being the current target.
    fn room_forget_current(&mut self, left: &[String]) {
        if matches!(&self.current, Some(Target::Room(r)) if left.contains(r)) {
            self.current = None;
            self.current_left(left);
        }
    }

    pub fn room_command(&mut self, cmd: RoomCommand) {
        let Some(token) = self.room_token() else {
            self.error("not_logged_in", "not logged in; /login USER first");
            self.room_script_fail("not logged in");
            return;
        };
        let current_room = match &self.current {
            Some(Target::Room(r)) => Some(r.clone()),
            _ => None,
        };
        let (req, p) = match cmd {
            RoomCommand::Create(room) => (
                Request::CreateRoom {
                    token,
                    room: room.clone(),
                    password: None,
                },
                RoomPending::Create(room),
            ),
            RoomCommand::Join(room) => {
                if self.rooms.is_member(&room) {
                    self.set_current(Target::Room(room));
                    return;
                }
                (
                    Request::JoinRoom {
                        token,
                        room: room.clone(),
                        password: None,
                    },
                    RoomPending::Join(room),
                )
            }
            RoomCommand::Leave(room) => {
                let Some(room) = room.or(current_room) else {
                    self.error("usage", "which room? /leave ROOM");
                    return;
                };
                if let Err(NotMember) = self.rooms.engine.leave(Instant::now(), &room) {
                    self.error("not_a_member", format!("you are not in #{room}"));
                    return;
                }
                // The engine asks for the registry's LeaveRoom.
                self.room_forget_current(&[room]);
                self.rooms_flush();
                return;
            }
            RoomCommand::List => (Request::Rooms { token }, RoomPending::List),
            RoomCommand::Members(room) => {
                let Some(room) = room.or(current_room) else {
                    self.error("usage", "which room? /members ROOM");
                    return;
                };
                (
                    Request::Members {
                        token,
                        room: room.clone(),
                    },
                    RoomPending::Members(room),
                )
            }
        };
        self.send(req, Pending::Room(p));
    }

    /// Leaves every room (logout, quit).
    pub fn rooms_leave_all(&mut self, _why: &str) {
        let left = self.rooms.joined();
        self.rooms.engine.leave_all(Instant::now());
        self.room_forget_current(&left);
        self.rooms_flush();
    }

    /// After the session is restored, join our rooms again (the registry
    /// dropped us from them when the session went offline).
    pub fn rooms_rejoin(&mut self) {
        self.rooms.engine.rejoin();
        self.rooms_flush();
    }

    pub fn room_replied(&mut self, p: RoomPending, body: ReplyBody) {
        let now = Instant::now();
        if let RoomPending::Moderated(_) | RoomPending::Announce = p {
            return self.moderation_replied(body);
        }
        // Taken out by a kick or ban: told at the next member refresh.
        if let (
            RoomPending::Refresh(_) | RoomPending::Rejoin { .. } | RoomPending::Members(_),
            ReplyBody::Room {
                room,
                kicked: Some(k),
                ..
            },
        ) = (&p, &body)
        {
            if self.rooms.is_member(&room.name) {
                return self.room_kicked(room.name.clone(), k.clone());
            }
        }
        match (p, body) {
            (
                RoomPending::Create(_) | RoomPending::Join(_),
                ReplyBody::Room { room, topic, .. },
            ) => {
                self.rooms.keys.forget(&room.name);
                let members = listed(&room.members);
                match self.room_key_news(now, &room) {
                    KeyNews::Key(key) => self.rooms.engine.enter(now, &room.name, key, &members),
                    KeyNews::Waiting(epoch) => self
                        .rooms
                        .engine
                        .enter_awaiting_key(now, &room.name, epoch, &members),
                    KeyNews::NotMember => {
                        self.error(
                            "bad_reply",
                            format!("the registry did not count us in #{}", room.name),
                        );
                        return;
                    }
                }
                // The topic shows under the "joined" line.
                self.rooms_flush();
                self.topic_seen(&room.name, topic, true);
            }
            (
                p @ (RoomPending::Rejoin { .. } | RoomPending::Refresh(_) | RoomPending::Key(_)),
                ReplyBody::Room { room, topic, .. },
            ) => {
                let rejoined = matches!(p, RoomPending::Rejoin { .. });
                if rejoined {
                    self.rooms.keys.forget(&room.name);
                }
                let members = listed(&room.members);
                let key = self.room_key_for_engine(now, &room, rejoined);
                self.rooms.engine.members(now, &room.name, key, &members);
                if rejoined && !self.rooms.engine.has_key(&room.name) {
                    // The key maker learns of us now, not at its next poll.
                    self.rooms.engine.knock(now, &room.name);
                }
                self.topic_seen(&room.name, topic, false);
            }
            (RoomPending::Topic(_), ReplyBody::Topic { room, topic }) => {
                self.topic_seen(&room, topic, false)
            }
            (RoomPending::Leave(room), _) => {
                self.emit(UiEvent::RoomLeft { room });
            }
            (RoomPending::List, ReplyBody::Rooms { rooms, topics }) => {
                self.emit(UiEvent::Rooms { rooms, topics })
            }
            (
                RoomPending::Members(room),
                ReplyBody::Room {
                    room: info,
                    topic,
                    roles,
                    ..
                },
            ) => {
                self.topic_seen(&room, topic, false);
                let members = listed(&info.members);
                let key = self.room_key_for_engine(now, &info, false);
                self.rooms.engine.members(now, &room, key, &members);
                self.rooms_flush();
                self.emit(UiEvent::Members {
                    room,
                    members: info.members,
                    roles,
                });
            }
            (_, body) => log::warn!("unexpected room reply: {body:?}"),
        }
        self.rooms_flush();
    }

    pub fn room_failed(&mut self, p: RoomPending, e: &ApiError) {
        match p {
            RoomPending::Rejoin { room, attempt } if attempt < 3 => {
                // The room may have been deleted while we were away: make it
                // again (or join whoever made it first).
                let Some(token) = self.room_token() else {
                    return;
                };
                let req = match e.code {
                    ErrorCode::NoSuchRoom => Request::CreateRoom {
                        token,
                        room: room.clone(),
                        password: None,
                    },
                    ErrorCode::RoomExists => Request::JoinRoom {
                        token,
                        room: room.clone(),
                        password: None,
                    },
                    _ => {
                        self.api_error(e);
                        return;
                    }
                };
                self.send(
                    req,
                    Pending::Room(RoomPending::Rejoin {
                        room,
                        attempt: attempt + 1,
                    }),
                );
            }
            // The room went away (the registry restarted without it, or
            // dropped us and the room emptied): make it again or join it.
            RoomPending::Refresh(room)
                if e.code == ErrorCode::NoSuchRoom && self.rooms.is_member(&room) =>
            {
                self.room_ask(Ask::Rejoin(room))
            }
            RoomPending::Refresh(_) => log::debug!("member refresh failed: {e}"),
            // Another member made the key first, or the epoch moved on:
            // the list tells us what now.
            RoomPending::Key(room) => {
                log::debug!("room_key for #{room} refused: {e}");
                if self.rooms.is_member(&room) {
                    self.room_ask(Ask::Members(room));
                }
            }
            RoomPending::Leave(room) => {
                // Locally we are out either way.
                self.emit(UiEvent::RoomLeft { room });
            }
            // Say the next step, not only what went wrong.
            RoomPending::Join(room) if e.code == ErrorCode::NoSuchRoom => {
                self.api_error(&ApiError {
                    message: format!("{}; /create {room} makes it", e.message),
                    ..e.clone()
                })
            }
            RoomPending::Join(room)
                if matches!(
                    e.code,
                    ErrorCode::RoomPasswordRequired | ErrorCode::WrongRoomPassword
                ) =>
            {
                self.api_error(&ApiError {
                    message: format!("{}; /join {room} --password asks for it", e.message),
                    ..e.clone()
                })
            }
            RoomPending::Create(room) if e.code == ErrorCode::RoomExists => {
                self.api_error(&ApiError {
                    message: format!("{}; /join {room} to go in", e.message),
                    ..e.clone()
                })
            }
            _ => self.api_error(e),
        }
    }

    /// Sends a text to every member of `room`.
    pub fn room_say(&mut self, room: String, text: String) {
        match self.rooms.engine.say(Instant::now(), &room, &text) {
            Ok(_) => self.rooms_flush(),
            Err(SayError::NotMember) => {
                self.error(
                    "not_a_member",
                    format!("you are not in #{room}; /join {room} first"),
                );
                self.room_script_fail("not in room");
            }
            Err(SayError::TooLong { len }) => self.error(
                "too_long",
                format!(
                    "message too long for a room ({len} bytes; at most {} bytes)",
                    wire::MAX_MESSAGE
                ),
            ),
        }
    }

    /// A datagram arrived on our UDP socket (`group`: on the group
    /// socket, by a room's multicast group). `at`: when it came off the
    /// socket.
    pub fn datagram(&mut self, bytes: &[u8], src: SocketAddr, at: Instant, group: bool) {
        if group {
            self.rooms.engine.handle_group_datagram(at, src, bytes);
        } else {
            self.rooms.engine.handle_datagram(at, src, bytes);
        }
        self.rooms_flush();
    }

    /// Retransmissions, liveness pings, member time-outs, progress reports.
    pub fn rooms_tick(&mut self, now: Instant) {
        self.rooms.engine.handle_timeout(now);
        self.rooms_flush();
    }
}
