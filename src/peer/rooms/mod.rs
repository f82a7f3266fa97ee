//! Chat rooms on the peer: membership (from the registry, then kept up to
//! date peer to peer), fan-out of each message to every member over UDP,
//! and the glue between the main loop and the reliable streams.
//!
//! - [`stream`]: per-(sender, receiver) reliable ordered delivery.
//! - [`faults`]: optional drop/duplicate/reorder injection when sending.

pub mod faults;
pub mod stream;

use super::app::{App, Pending, Target};
use super::ui::UiEvent;
use crate::protocol::datagram::{self as wire, Body, Datagram, DecodeError, EventKind};
use crate::protocol::{ApiError, ErrorCode, ReplyBody, Request, UserInfo};
use faults::{Faults, Injector};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use stream::{Item, Received, RecvStream, SendStream, Transmit};

/// Liveness pings to each member this often…
const PING_EVERY: Duration = Duration::from_millis(500);
/// …and a member silent this long is gone (a killed peer leaves every list
/// within this plus one ping period).
const SILENT_LIMIT: Duration = Duration::from_millis(3500);
/// A message not fully acknowledged after this long shows its progress.
const PROGRESS_AFTER: Duration = Duration::from_millis(300);
/// Ask the registry for a room's members at most this often when unknown
/// members show up.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// How long the registry's list may show a member who left without us
/// adding it back.
const DEPARTED_MEMORY: Duration = Duration::from_secs(10);
/// How long a room we left keeps retransmitting our "leave".
const LEAVE_LINGER: Duration = Duration::from_millis(1500);

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
}

/// Counters of what happened to room datagrams (shown by `/stats`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub datagrams_in: u64,
    pub malformed: u64,
    pub bad_tag: u64,
    pub unknown_room: u64,
    pub non_member: u64,
    pub wrong_destination: u64,
    pub stale_stream: u64,
    pub duplicates: u64,
    pub out_of_window: u64,
    pub messages_delivered: u64,
    pub datagrams_out: u64,
    pub retransmits: u64,
    pub injected_drops: u64,
    pub injected_dups: u64,
    pub injected_delays: u64,
    /// Datagrams dropped because the main loop's queue was full (a flood).
    pub queue_overflow: u64,
}

struct Member {
    addr: SocketAddr,
    tx: SendStream,
    last_heard: Instant,
}

/// What we receive from one sender. Kept per room by name, apart from the
/// member list, so that a member dropped and added again (the registry
/// restarted, a time-out that healed) picks up its stream where it was.
struct Inbound {
    rx: RecvStream,
    /// Fragments of a text being reassembled: (msg_id, bytes so far, next frag).
    partial: Option<(u64, Vec<u8>, u16)>,
    /// The sender moved to a newer stream: a new run of it, if a join follows.
    renewed: bool,
}

struct OutMsg {
    total: usize,
    /// Fragments each member has still to acknowledge.
    remaining: HashMap<String, u16>,
    failed: Vec<String>,
    sent_at: Instant,
    progress_shown: bool,
}

struct Room {
    key: [u8; 32],
    members: BTreeMap<String, Member>,
    inbound: HashMap<String, Inbound>,
    /// Members who said they left, and when: the registry may list them a
    /// little longer, and they must not be added back from that list.
    departed: HashMap<String, Instant>,
    next_msg: u64,
    out: BTreeMap<u64, OutMsg>,
    last_refresh: Option<Instant>,
    /// Set once we left: the room only finishes sending our "leave".
    leaving: Option<Instant>,
}

pub struct Rooms {
    /// Our username, kept after logout so a "leave" can still be signed.
    pub me: String,
    rooms: BTreeMap<String, Room>,
    last_stream: u64,
    injector: Injector,
    pub stats: Stats,
    /// Shared with the UDP receiver thread, which counts what it drops.
    pub queue_overflow: std::sync::Arc<std::sync::atomic::AtomicU64>,
    next_ping: Option<Instant>,
}

fn addr_of(u: &UserInfo) -> Option<SocketAddr> {
    let a = u.address.as_ref().filter(|_| u.online)?;
    Some(SocketAddr::new(a.ip.parse::<IpAddr>().ok()?, a.udp_port))
}

impl Rooms {
    pub fn new(faults: Faults) -> Rooms {
        Rooms {
            me: String::new(),
            rooms: BTreeMap::new(),
            last_stream: 0,
            injector: Injector::new(faults),
            stats: Stats::default(),
            queue_overflow: Default::default(),
            next_ping: None,
        }
    }

    /// A stream id larger than any this process used before (microseconds
    /// since the epoch, bumped if the clock stalls), so a receiver can tell
    /// a newer stream from a replayed older one.
    fn new_stream_id(&mut self) -> u64 {
        self.last_stream = super::ui::now_us().max(self.last_stream + 1);
        self.last_stream
    }

    fn new_member(&mut self, addr: SocketAddr, now: Instant) -> Member {
        Member {
            addr,
            tx: SendStream::new(self.new_stream_id()),
            last_heard: now,
        }
    }

    pub fn is_member(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.leaving.is_none())
    }

    pub fn joined(&self) -> Vec<String> {
        self.rooms
            .iter()
            .filter(|(_, r)| r.leaving.is_none())
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn clear(&mut self) {
        self.rooms.clear();
        self.next_ping = None;
    }

    /// True when no room is still sending a "leave".
    pub fn leaving_done(&self) -> bool {
        self.rooms.values().all(|r| r.leaving.is_none())
    }

    pub fn deadline(&self) -> Option<Instant> {
        let streams = self
            .rooms
            .values()
            .flat_map(|r| r.members.values().filter_map(|m| m.tx.deadline()))
            .min();
        let progress = self
            .rooms
            .values()
            .flat_map(|r| {
                r.out
                    .values()
                    .filter(|o| !o.progress_shown)
                    .map(|o| o.sent_at + PROGRESS_AFTER)
            })
            .min();
        let leaving = self.rooms.values().filter_map(|r| r.leaving).min();
        [
            streams,
            progress,
            leaving,
            self.next_ping,
            self.injector.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

fn text_items(text: &str, msg_id: u64) -> Vec<Item> {
    let bytes = text.as_bytes();
    let chunks: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[][..]]
    } else {
        bytes.chunks(wire::FRAGMENT_BYTES).collect()
    };
    let frags = chunks.len() as u16;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| Item {
            event: EventKind::Text,
            msg_id,
            frag: i as u16,
            frags,
            bytes: c.to_vec(),
        })
        .collect()
}

fn control_item(event: EventKind) -> Item {
    Item {
        event,
        msg_id: 0,
        frag: 0,
        frags: 1,
        bytes: Vec::new(),
    }
}

impl App {
    fn me_or_empty(&self) -> String {
        self.rooms.me.clone()
    }

    /// Encodes and sends stream transmissions from us to `to` in `room`.
    fn transmit(&mut self, room: &str, to: &str, sends: Vec<Transmit>, now: Instant) {
        let me = self.me_or_empty();
        let Some(r) = self.rooms.rooms.get(room) else {
            return;
        };
        let Some(m) = r.members.get(to) else { return };
        let (key, addr, stream) = (r.key, m.addr, m.tx.id);
        for t in sends {
            if t.retransmit {
                self.rooms.stats.retransmits += 1;
            }
            let dg = Datagram {
                room: room.to_string(),
                from: me.clone(),
                to: to.to_string(),
                body: Body::Data {
                    stream,
                    seq: t.seq,
                    event: t.item.event,
                    msg_id: t.item.msg_id,
                    frag: t.item.frag,
                    frags: t.item.frags,
                    bytes: t.item.bytes,
                },
            };
            self.send_datagram(addr, dg.encode(&key), now);
        }
    }

    fn send_datagram(&mut self, to: SocketAddr, bytes: Vec<u8>, now: Instant) {
        self.rooms.stats.datagrams_out += 1;
        self.rooms.injector.send(&self.udp, to, bytes, now);
    }

    fn control(&mut self, room: &str, to: &str, body: Body, now: Instant) {
        let Some(r) = self.rooms.rooms.get(room) else {
            return;
        };
        let Some(m) = r.members.get(to) else { return };
        let (key, addr) = (r.key, m.addr);
        let dg = Datagram {
            room: room.to_string(),
            from: self.me_or_empty(),
            to: to.to_string(),
            body,
        };
        self.send_datagram(addr, dg.encode(&key), now);
    }

    /// Queues an item on the stream to one member and sends what it lets out.
    fn push_item(&mut self, room: &str, to: &str, item: Item, now: Instant) {
        let sends = match self
            .rooms
            .rooms
            .get_mut(room)
            .and_then(|r| r.members.get_mut(to))
        {
            Some(m) => m.tx.push(item, now),
            None => return,
        };
        self.transmit(room, to, sends, now);
    }

    pub fn room_command(&mut self, cmd: RoomCommand) {
        let Some(token) = self.session.as_ref().map(|s| s.token.clone()) else {
            self.error("not logged in; /login USER first");
            if let Some(s) = &mut self.script {
                s.fail_current("not logged in".into());
            }
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
                    },
                    RoomPending::Join(room),
                )
            }
            RoomCommand::Leave(room) => {
                let Some(room) = room.or(current_room) else {
                    self.error("which room? /leave ROOM");
                    return;
                };
                if !self.rooms.is_member(&room) {
                    self.error(format!("you are not in #{room}"));
                    return;
                }
                self.start_leaving(&room, Instant::now());
                (
                    Request::LeaveRoom {
                        token,
                        room: room.clone(),
                    },
                    RoomPending::Leave(room),
                )
            }
            RoomCommand::List => (Request::Rooms { token }, RoomPending::List),
            RoomCommand::Members(room) => {
                let Some(room) = room.or(current_room) else {
                    self.error("which room? /members ROOM");
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

    /// Sends our "leave" to every member and lets the room linger until it
    /// is acknowledged (or [`LEAVE_LINGER`] passes).
    fn start_leaving(&mut self, room: &str, now: Instant) {
        let members: Vec<String> = match self.rooms.rooms.get_mut(room) {
            Some(r) if r.leaving.is_none() => {
                r.leaving = Some(now + LEAVE_LINGER);
                r.out.clear();
                r.members.keys().cloned().collect()
            }
            _ => return,
        };
        for m in members {
            self.push_item(room, &m, control_item(EventKind::Leave), now);
        }
        if self.current == Some(Target::Room(room.to_string())) {
            self.current = None;
        }
    }

    /// Leaves every room (logout, quit).
    pub fn rooms_leave_all(&mut self, _why: &str) {
        let now = Instant::now();
        for room in self.rooms.joined() {
            self.start_leaving(&room, now);
        }
    }

    /// After the session is restored, join our rooms again (the registry
    /// dropped us from them when the session went offline).
    pub fn rooms_rejoin(&mut self) {
        let Some(token) = self.session.as_ref().map(|s| s.token.clone()) else {
            return;
        };
        for room in self.rooms.joined() {
            let req = Request::JoinRoom {
                token: token.clone(),
                room: room.clone(),
            };
            self.send(req, Pending::Room(RoomPending::Rejoin { room, attempt: 0 }));
        }
    }

    pub fn room_replied(&mut self, p: RoomPending, body: ReplyBody) {
        let now = Instant::now();
        match (p, body) {
            (RoomPending::Create(_) | RoomPending::Join(_), ReplyBody::Room { room }) => {
                let Some(key) = room.key.as_deref().and_then(wire::parse_key) else {
                    self.error(format!(
                        "the registry sent no usable key for #{}",
                        room.name
                    ));
                    return;
                };
                let me = self.me_or_empty();
                let mut members = BTreeMap::new();
                for u in room.members.iter().filter(|u| u.username != me) {
                    if let Some(addr) = addr_of(u) {
                        members.insert(u.username.clone(), self.rooms.new_member(addr, now));
                    }
                }
                let names: Vec<String> = room.members.iter().map(|u| u.username.clone()).collect();
                let others: Vec<String> = members.keys().cloned().collect();
                self.rooms.rooms.insert(
                    room.name.clone(),
                    Room {
                        key,
                        members,
                        inbound: HashMap::new(),
                        departed: HashMap::new(),
                        next_msg: 1,
                        out: BTreeMap::new(),
                        last_refresh: None,
                        leaving: None,
                    },
                );
                self.rooms.next_ping.get_or_insert(now + PING_EVERY);
                for m in others {
                    self.push_item(&room.name, &m, control_item(EventKind::Join), now);
                }
                self.emit(UiEvent::RoomJoined {
                    room: room.name.clone(),
                    members: names,
                });
                self.set_current(Target::Room(room.name));
            }
            (RoomPending::Rejoin { .. } | RoomPending::Refresh(_), ReplyBody::Room { room }) => {
                if let Some(key) = room.key.as_deref().and_then(wire::parse_key) {
                    if let Some(r) = self.rooms.rooms.get_mut(&room.name) {
                        r.key = key;
                    }
                }
                self.reconcile(&room.name, &room.members, now);
            }
            (RoomPending::Leave(room), _) => {
                self.emit(UiEvent::RoomLeft { room });
            }
            (RoomPending::List, ReplyBody::Rooms { rooms }) => self.emit(UiEvent::Rooms { rooms }),
            (RoomPending::Members(room), ReplyBody::Room { room: info }) => {
                self.reconcile(&room, &info.members, now);
                self.emit(UiEvent::Members {
                    room,
                    members: info.members,
                });
            }
            (_, body) => log::warn!("unexpected room reply: {body:?}"),
        }
    }

    pub fn room_failed(&mut self, p: RoomPending, e: &ApiError) {
        match p {
            RoomPending::Rejoin { room, attempt } if attempt < 3 => {
                // The room may have been deleted while we were away: make it
                // again (or join whoever made it first).
                let Some(token) = self.session.as_ref().map(|s| s.token.clone()) else {
                    return;
                };
                let req = match e.code {
                    ErrorCode::NoSuchRoom => Request::CreateRoom {
                        token,
                        room: room.clone(),
                    },
                    ErrorCode::RoomExists => Request::JoinRoom {
                        token,
                        room: room.clone(),
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
            RoomPending::Refresh(_) => log::debug!("member refresh failed: {e}"),
            RoomPending::Leave(room) => {
                // Locally we are out either way.
                self.emit(UiEvent::RoomLeft { room });
            }
            _ => self.api_error(e),
        }
    }

    /// Adds the members the registry lists that we did not know (with
    /// their current addresses). It never removes any: the registry's list
    /// can lag (or, while it restarts, be empty); members who leave say so,
    /// and members who die fall silent and time out.
    fn reconcile(&mut self, room: &str, infos: &[UserInfo], now: Instant) {
        let me = self.me_or_empty();
        if !self.rooms.is_member(room) {
            return;
        }
        let mut joined = Vec::new();
        let recently_gone: Vec<String> = match self.rooms.rooms.get_mut(room) {
            Some(r) => {
                r.departed
                    .retain(|_, t| now.duration_since(*t) < DEPARTED_MEMORY);
                r.departed.keys().cloned().collect()
            }
            None => return,
        };
        for u in infos
            .iter()
            .filter(|u| u.username != me && !recently_gone.contains(&u.username))
        {
            let Some(addr) = addr_of(u) else { continue };
            let known = self
                .rooms
                .rooms
                .get(room)
                .and_then(|r| r.members.get(&u.username))
                .map(|m| m.addr);
            match known {
                Some(a) if a == addr => {}
                Some(_) => {
                    if let Some(m) = self
                        .rooms
                        .rooms
                        .get_mut(room)
                        .and_then(|r| r.members.get_mut(&u.username))
                    {
                        m.addr = addr;
                    }
                }
                None => {
                    let m = self.rooms.new_member(addr, now);
                    if let Some(r) = self.rooms.rooms.get_mut(room) {
                        r.members.insert(u.username.clone(), m);
                    }
                    joined.push(u.username.clone());
                }
            }
        }
        for user in joined {
            self.emit(UiEvent::MemberJoined {
                room: room.to_string(),
                user,
            });
        }
    }

    fn remove_member(&mut self, room: &str, user: &str, reason: &str) {
        let Some(r) = self.rooms.rooms.get_mut(room) else {
            return;
        };
        if r.members.remove(user).is_none() {
            return;
        }
        // A member who said it left no longer counts for messages still on
        // their way to it; one that fell silent did not get them, and the
        // sender is told so, by name.
        let leaving = r.leaving.is_some();
        for o in r.out.values_mut() {
            if o.remaining.remove(user).is_some() {
                if reason == "left" {
                    o.total -= 1;
                } else {
                    o.failed.push(user.to_string());
                }
            }
        }
        let ids: Vec<u64> = r.out.keys().copied().collect();
        for id in ids {
            self.check_done(room, id);
        }
        if !leaving {
            self.emit(UiEvent::MemberLeft {
                room: room.to_string(),
                user: user.to_string(),
                reason: reason.to_string(),
            });
        }
    }

    /// Emits the final delivery state of message `id` once every member has
    /// acknowledged it or been given up on.
    fn check_done(&mut self, room: &str, id: u64) {
        let Some(r) = self.rooms.rooms.get_mut(room) else {
            return;
        };
        let Some(o) = r.out.get(&id) else { return };
        if !o.remaining.is_empty() {
            return;
        }
        let Some(o) = r.out.remove(&id) else { return };
        if o.failed.is_empty() {
            self.emit(UiEvent::Delivery {
                room: room.to_string(),
                id,
                acked: o.total,
                total: o.total,
            });
        } else {
            self.emit(UiEvent::DeliveryFailed {
                room: room.to_string(),
                id,
                missing: o.failed,
            });
        }
    }

    /// Sends a text to every member of `room`.
    pub fn room_say(&mut self, room: String, text: String) {
        if !self.rooms.is_member(&room) {
            self.error(format!("you are not in #{room}; /join {room} first"));
            if let Some(s) = &mut self.script {
                s.fail_current("not in room".into());
            }
            return;
        }
        if text.len() > wire::MAX_MESSAGE {
            self.error(format!(
                "message too long for a room ({} bytes; at most {} bytes)",
                text.len(),
                wire::MAX_MESSAGE
            ));
            return;
        }
        let now = Instant::now();
        let me = self.me_or_empty();
        let Some(r) = self.rooms.rooms.get_mut(&room) else {
            return;
        };
        let id = r.next_msg;
        r.next_msg += 1;
        let items = text_items(&text, id);
        let members: Vec<String> = r.members.keys().cloned().collect();
        r.out.insert(
            id,
            OutMsg {
                total: members.len(),
                remaining: members
                    .iter()
                    .map(|m| (m.clone(), items.len() as u16))
                    .collect(),
                failed: Vec::new(),
                sent_at: now,
                progress_shown: false,
            },
        );
        self.emit(UiEvent::Message {
            from: me,
            chat: format!("#{room}"),
            text,
            id,
            own: true,
        });
        for m in &members {
            for item in &items {
                self.push_item(&room, m, item.clone(), now);
            }
        }
        self.check_done(&room, id);
    }

    /// A datagram arrived on our UDP socket.
    pub fn datagram(&mut self, bytes: &[u8], src: SocketAddr) {
        let now = Instant::now();
        let stats = &mut self.rooms.stats;
        stats.datagrams_in += 1;
        let rooms = &self.rooms.rooms;
        let dg = match Datagram::decode(bytes, |name| rooms.get(name).map(|r| r.key)) {
            Ok(d) => d,
            Err(e) => {
                match e {
                    DecodeError::Malformed => stats.malformed += 1,
                    DecodeError::BadTag => stats.bad_tag += 1,
                    DecodeError::UnknownRoom => stats.unknown_room += 1,
                }
                return;
            }
        };
        let me = self.me_or_empty();
        if dg.to != me || dg.from == me {
            self.rooms.stats.wrong_destination += 1;
            return;
        }
        let room = dg.room.clone();
        let known = self
            .rooms
            .rooms
            .get(&room)
            .is_some_and(|r| r.members.contains_key(&dg.from));
        if !known {
            let is_join = matches!(
                dg.body,
                Body::Data {
                    event: EventKind::Join,
                    ..
                }
            );
            if is_join && self.rooms.is_member(&room) {
                // A newcomer proves it holds the key; confirm with the registry.
                let m = self.rooms.new_member(src, now);
                if let Some(r) = self.rooms.rooms.get_mut(&room) {
                    r.members.insert(dg.from.clone(), m);
                }
            } else {
                self.rooms.stats.non_member += 1;
                self.refresh_members(&room, now);
                return;
            }
        }
        if let Some(m) = self
            .rooms
            .rooms
            .get_mut(&room)
            .and_then(|r| r.members.get_mut(&dg.from))
        {
            m.last_heard = now;
        }
        match dg.body {
            Body::Ping => {}
            Body::Ack { stream, cum, sack } => self.on_ack(&room, &dg.from, stream, cum, sack, now),
            Body::Data {
                stream,
                seq,
                event,
                msg_id,
                frag,
                frags,
                bytes,
            } => {
                let item = Item {
                    event,
                    msg_id,
                    frag,
                    frags,
                    bytes,
                };
                self.on_data(&room, &dg.from, stream, seq, item, now);
            }
        }
    }

    fn refresh_members(&mut self, room: &str, now: Instant) {
        let Some(r) = self.rooms.rooms.get_mut(room) else {
            return;
        };
        if r.leaving.is_some()
            || r.last_refresh
                .is_some_and(|t| now.duration_since(t) < REFRESH_EVERY)
        {
            return;
        }
        r.last_refresh = Some(now);
        if let Some(token) = self.session.as_ref().map(|s| s.token.clone()) {
            let req = Request::Members {
                token,
                room: room.to_string(),
            };
            self.send(req, Pending::Room(RoomPending::Refresh(room.to_string())));
        }
    }

    fn on_ack(&mut self, room: &str, from: &str, stream: u64, cum: u64, sack: u64, now: Instant) {
        let Some(m) = self
            .rooms
            .rooms
            .get_mut(room)
            .and_then(|r| r.members.get_mut(from))
        else {
            return;
        };
        if stream != m.tx.id {
            return;
        }
        let (acked, more) = m.tx.ack(cum, sack, now);
        self.transmit(room, from, more, now);
        let Some(r) = self.rooms.rooms.get_mut(room) else {
            return;
        };
        let mut touched = Vec::new();
        for item in acked.iter().filter(|i| i.event == EventKind::Text) {
            if let Some(o) = r.out.get_mut(&item.msg_id) {
                if let Some(left) = o.remaining.get_mut(from) {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        o.remaining.remove(from);
                        touched.push(item.msg_id);
                    }
                }
            }
        }
        for id in touched {
            self.check_done(room, id);
        }
        let leave_done = self
            .rooms
            .rooms
            .get(room)
            .is_some_and(|r| r.leaving.is_some() && r.members.values().all(|m| m.tx.idle()));
        if leave_done {
            self.rooms.rooms.remove(room);
        }
    }

    fn on_data(&mut self, room: &str, from: &str, stream: u64, seq: u64, item: Item, now: Instant) {
        let Some(r) = self.rooms.rooms.get_mut(room) else {
            return;
        };
        if r.leaving.is_some() || !r.members.contains_key(from) {
            return;
        }
        let inbound = r
            .inbound
            .entry(from.to_string())
            .or_insert_with(|| Inbound {
                rx: RecvStream::new(stream),
                partial: None,
                renewed: false,
            });
        let before = inbound.rx.id;
        let result = inbound.rx.receive(stream, seq, item);
        if inbound.rx.id != before {
            inbound.partial = None;
            inbound.renewed = true;
        }
        let (cum, sack) = inbound.rx.ack();
        let ack_stream = inbound.rx.id;
        let delivered = match result {
            Received::Deliver(items) => items,
            Received::Duplicate => {
                self.rooms.stats.duplicates += 1;
                Vec::new()
            }
            Received::Stale => {
                self.rooms.stats.stale_stream += 1;
                return;
            }
            Received::OutOfWindow => {
                self.rooms.stats.out_of_window += 1;
                return;
            }
        };
        self.control(
            room,
            from,
            Body::Ack {
                stream: ack_stream,
                cum,
                sack,
            },
            now,
        );
        for item in delivered {
            self.deliver(room, from, item, now);
        }
    }

    /// An item arrived in order from `from`.
    fn deliver(&mut self, room: &str, from: &str, item: Item, now: Instant) {
        match item.event {
            EventKind::Join => {
                if let Some(r) = self.rooms.rooms.get_mut(room) {
                    r.departed.remove(from);
                }
                // A new run of a member we heard from before (it restarted,
                // or left and came back) knows nothing of our stream: start
                // a new one at seq 1, resending what it has not acknowledged.
                let renewed = self
                    .rooms
                    .rooms
                    .get_mut(room)
                    .and_then(|r| r.inbound.get_mut(from))
                    .is_some_and(|i| std::mem::take(&mut i.renewed));
                if renewed {
                    let id = self.rooms.new_stream_id();
                    let sends = match self
                        .rooms
                        .rooms
                        .get_mut(room)
                        .and_then(|r| r.members.get_mut(from))
                    {
                        Some(m) => m.tx.reset(id, now),
                        None => return,
                    };
                    self.transmit(room, from, sends, now);
                }
                self.emit(UiEvent::MemberJoined {
                    room: room.to_string(),
                    user: from.to_string(),
                })
            }
            EventKind::Leave => {
                self.remove_member(room, from, "left");
                if let Some(r) = self.rooms.rooms.get_mut(room) {
                    r.inbound.remove(from);
                    r.departed.insert(from.to_string(), now);
                }
            }
            EventKind::Text => {
                let Some(inb) = self
                    .rooms
                    .rooms
                    .get_mut(room)
                    .and_then(|r| r.inbound.get_mut(from))
                else {
                    return;
                };
                let (msg_id, mut buf, next) = match inb.partial.take() {
                    Some((id, buf, next)) if id == item.msg_id && next == item.frag => {
                        (id, buf, next)
                    }
                    _ if item.frag == 0 => (item.msg_id, Vec::new(), 0),
                    // A fragment out of place can only come from a broken
                    // sender: drop it and what was pending.
                    _ => return,
                };
                buf.extend_from_slice(&item.bytes);
                if next + 1 < item.frags {
                    if buf.len() <= wire::MAX_MESSAGE {
                        inb.partial = Some((msg_id, buf, next + 1));
                    }
                    return;
                }
                self.rooms.stats.messages_delivered += 1;
                let text = String::from_utf8_lossy(&buf).into_owned();
                self.emit(UiEvent::Message {
                    from: from.to_string(),
                    chat: format!("#{room}"),
                    text,
                    id: msg_id,
                    own: false,
                });
            }
        }
    }

    /// Retransmissions, liveness pings, member time-outs, progress reports.
    pub fn rooms_tick(&mut self, now: Instant) {
        self.rooms.injector.release(&self.udp, now);
        let stats = &mut self.rooms.stats;
        stats.injected_drops = self.rooms.injector.dropped;
        stats.injected_dups = self.rooms.injector.duplicated;
        stats.injected_delays = self.rooms.injector.reordered;

        let names: Vec<String> = self.rooms.rooms.keys().cloned().collect();
        for room in names {
            let members: Vec<String> = match self.rooms.rooms.get(&room) {
                Some(r) => r.members.keys().cloned().collect(),
                None => continue,
            };
            for user in members {
                let due = match self
                    .rooms
                    .rooms
                    .get_mut(&room)
                    .and_then(|r| r.members.get_mut(&user))
                {
                    Some(m) => m.tx.due(now),
                    None => continue,
                };
                match due {
                    Ok(sends) => self.transmit(&room, &user, sends, now),
                    Err(lost) => self.unreachable(&room, &user, lost),
                }
            }
            let progress: Vec<(u64, usize, usize)> = match self.rooms.rooms.get_mut(&room) {
                Some(r) => r
                    .out
                    .iter_mut()
                    .filter(|(_, o)| !o.progress_shown && now >= o.sent_at + PROGRESS_AFTER)
                    .map(|(id, o)| {
                        o.progress_shown = true;
                        (*id, o.total - o.remaining.len() - o.failed.len(), o.total)
                    })
                    .collect(),
                None => continue,
            };
            for (id, acked, total) in progress {
                self.emit(UiEvent::Delivery {
                    room: room.clone(),
                    id,
                    acked,
                    total,
                });
            }
            if let Some(r) = self.rooms.rooms.get(&room) {
                if r.leaving.is_some_and(|t| now >= t)
                    || (r.leaving.is_some() && r.members.values().all(|m| m.tx.idle()))
                {
                    self.rooms.rooms.remove(&room);
                }
            }
        }

        if self.rooms.next_ping.is_some_and(|t| now >= t) {
            self.rooms.next_ping = (!self.rooms.rooms.is_empty()).then_some(now + PING_EVERY);
            self.liveness(now);
        }
    }

    fn liveness(&mut self, now: Instant) {
        let mut silent = Vec::new();
        let mut ping = Vec::new();
        for (name, r) in &self.rooms.rooms {
            if r.leaving.is_some() {
                continue;
            }
            for (user, m) in &r.members {
                if now.duration_since(m.last_heard) >= SILENT_LIMIT {
                    silent.push((name.clone(), user.clone()));
                } else {
                    ping.push((name.clone(), user.clone()));
                }
            }
        }
        for (room, user) in ping {
            self.control(&room, &user, Body::Ping, now);
        }
        for (room, user) in silent {
            self.remove_member(&room, &user, "not responding");
        }
    }

    /// A member did not acknowledge after every retry: report the messages
    /// it missed, by name, and drop it from the room.
    fn unreachable(&mut self, room: &str, user: &str, lost: Vec<Item>) {
        let ids: std::collections::BTreeSet<u64> = lost
            .iter()
            .filter(|i| i.event == EventKind::Text)
            .map(|i| i.msg_id)
            .collect();
        if let Some(r) = self.rooms.rooms.get_mut(room) {
            for id in &ids {
                if let Some(o) = r.out.get_mut(id) {
                    if o.remaining.remove(user).is_some() {
                        o.failed.push(user.to_string());
                    }
                }
            }
        }
        for id in ids {
            self.check_done(room, id);
        }
        self.remove_member(room, user, "unreachable");
    }
}
