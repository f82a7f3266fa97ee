//! The room engine's state and its sans-IO surface: what it holds per room
//! and per member, and how a driver drains it (`poll_transmit`,
//! `poll_event`, `poll_timeout`). The behaviour lives beside it, by
//! concern: `membership`, `send`,
//! `receive` and `liveness` (private modules beside this one).

use super::event::{Event, Stats};
use super::faults::{Faults, Injector};
use super::flow::{Flow, Outbox};
use super::stream::RecvStream;
use super::timers::Queue;
use crate::protocol::datagram::{Authenticator, RoomKey, VerifyingKey, NONCE_LEN};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Liveness rounds this often: each pings, per room, the members it sent
/// nothing to since the last round, at most [`PINGS_PER_ROUND`] of them
/// (the next ones at the next round, in turn)…
pub const PING_EVERY: Duration = Duration::from_millis(500);
/// …so a member sends at most 20 pings a second per room, whatever its
/// size: in a room of up to 11 every member hears from every other every
/// 500 ms; in one of 100, every 5 s.
pub const PINGS_PER_ROUND: usize = 10;
/// A member silent this long (or for [`SILENT_ROUNDS`] of its ping cycles
/// in a large room, if longer) is gone.
pub const SILENT_LIMIT: Duration = Duration::from_millis(3500);
pub const SILENT_ROUNDS: u32 = 3;
/// A member the registry stopped listing, and silent this long, is dropped
/// on the first answer that leaves it out (a killed peer: the registry
/// times its session out after 3 s, so it leaves every list within about
/// 3 s plus one members poll, whatever the room's size).
pub const UNLISTED_SILENCE: Duration = Duration::from_secs(2);
/// A message not fully acknowledged after this long shows its progress.
pub const PROGRESS_AFTER: Duration = Duration::from_millis(300);
/// Ask the registry for a room's members at most this often when unknown
/// members show up.
pub const REFRESH_EVERY: Duration = Duration::from_millis(500);
/// Datagrams from senders the registry has not listed yet, kept per room
/// until it answers.
pub const HELD_MAX: usize = 64;
/// Ask the registry for each room's members this often: members it no
/// longer lists are dropped, and a new key epoch is picked up.
pub const MEMBERS_POLL: Duration = Duration::from_millis(1500);
/// How often to ask while waiting for the current epoch's key.
pub const KEY_POLL: Duration = Duration::from_millis(150);
/// A member missing from this many answers in a row is dropped (one answer
/// may race a member's leave and rejoin, or a registry restart). With
/// [`MEMBERS_POLL`], a member the registry no longer lists is gone from our
/// list within about 3 s.
pub const UNLISTED_LIMIT: u8 = 2;
/// How long after a new key epoch a member's "leave" under the previous
/// key is still taken.
pub const PREVIOUS_KEY_GRACE: Duration = Duration::from_secs(3);
/// How long the registry's list may show a member who left without us
/// adding it back.
pub const DEPARTED_MEMORY: Duration = Duration::from_secs(10);
/// How long a room we left keeps retransmitting our "leave".
pub const LEAVE_LINGER: Duration = Duration::from_millis(1500);

/// Where stream ids come from. Each must be larger than any this peer used
/// before, even in an earlier run, so a receiver can tell a newer stream
/// from a replayed older one (the engine also keeps them increasing within
/// a run). The peer uses microseconds since the epoch; tests use a counter.
pub trait StreamIds {
    fn stream_id(&mut self) -> u64;
}

/// A map by member name, for the lookups made per datagram: a fast
/// hasher (seeded per process, like the standard one).
pub(super) type ByName<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// A member of a room as the registry lists it: online members have an
/// address (where their room datagrams go), offline ones none; `sign` is
/// the signing key the registry vouches for with the address (none: a
/// version-1 peer, which cannot share a room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub addr: Option<SocketAddr>,
    pub sign: Option<VerifyingKey>,
}

pub(super) struct Member {
    pub addr: SocketAddr,
    /// What we owe it on our stream, and how fast.
    pub flow: Flow,
    /// When a datagram from it last arrived (its receive time).
    pub last_heard: Instant,
    /// When we last sent it anything (a ping is needed only after a silence).
    pub last_sent: Instant,
    /// When its flow is queued in the engine's timers.
    pub timer: Option<Instant>,
    /// Let back in owing what it missed: the LATE notice it must note
    /// before the catch-up goes (see `late`).
    pub notice: Option<super::late::Notice>,
    /// Its last ACK said our copies to the room's group reach it: what
    /// goes to the group is not sent to it again (see `group`).
    pub hears_group: bool,
}

/// What we receive from one sender. Kept per room by name, apart from the
/// member list, so that a member dropped and added again (the registry
/// restarted, a time-out that healed) picks up its stream where it was.
/// What we receive from one member: its streams, several at once.
///
/// A datagram on a stream id we have not seen does not end the streams we
/// hold (a single forged datagram with a higher id used to make every real
/// one after it look like a replay, cutting the member off for good). We
/// keep up to [`MAX_STREAMS`] per member, the least recently active going
/// first (its id and every lower one then become stale: `floor`). A stream
/// below every one we hold is an earlier run's, and its datagrams replays.
pub(super) struct Inbound {
    pub streams: Vec<StreamIn>,
    /// Streams below this id are over: their datagrams are replays.
    pub floor: u64,
    /// The sender started another stream: a new run of it, if a join follows.
    pub renewed: bool,
}

/// Streams kept per member.
pub const MAX_STREAMS: usize = 4;

/// One stream from one member.
pub(super) struct StreamIn {
    pub rx: RecvStream,
    /// Fragments of a text being reassembled: (msg_id, bytes so far, next
    /// frag, whether any of them came late).
    pub partial: Option<(u64, Vec<u8>, u16, bool)>,
    /// When a datagram last arrived on it.
    pub last: Instant,
    /// When its acknowledgement is queued in the engine's timers.
    pub timer: Option<Instant>,
    /// Whether the sender's copies to the group reach us.
    pub hearing: super::group::Hearing,
}

pub(super) struct OutMsg {
    pub total: usize,
    /// Fragments each member has still to acknowledge.
    pub remaining: super::owed::Owed,
    pub failed: Vec<String>,
    pub sent_at: Instant,
    pub progress_shown: bool,
}

pub(super) struct Room {
    /// Our stream to the room (it outlives key epochs: seqs go on).
    pub tx: Outbox,
    /// The member pinged last (liveness rounds go on from the next one).
    pub ping_after: String,
    /// The key of the room's current epoch, as the registry last said.
    pub key: RoomKey,
    /// The key before it, until when a "leave" under it is still taken.
    pub previous: Option<(RoomKey, Instant)>,
    /// The registry moved the room to an epoch whose key has not reached
    /// us yet (or we just joined and wait for ours): nothing is sent under
    /// `key` meanwhile, and what arrives is not opened ([`Engine::await_key`]).
    pub stale: bool,
    /// `key` is a placeholder (we joined and wait for our first key): it
    /// is never kept as the previous key, nor used to open anything.
    pub placeholder: bool,
    /// Members we send to and hear from.
    pub members: super::members::Members,
    /// The registry's latest list (online members but us, with their
    /// addresses): only a member on it is let in.
    pub listed: BTreeMap<String, SocketAddr>,
    /// The signing key the registry vouches for, per listed member: a
    /// datagram is looked at only once its sender's signature holds.
    pub signers: ByName<VerifyingKey>,
    /// Listed members without keys (version 1) we told the user about.
    pub outdated: HashSet<String>,
    /// Members missing from the registry's answers, and how many in a row.
    pub unlisted: HashMap<String, u8>,
    /// Listed members we dropped as silent or unreachable: they are probed
    /// with pings, and come back when something arrives from them.
    pub unheard: HashSet<String>,
    /// Members the user was told are here (so joins and departures are
    /// shown once each).
    pub announced: HashSet<String>,
    /// When to ask the registry for the members next.
    pub next_poll: Instant,
    /// Datagrams from senders not (yet) listed, kept until the registry
    /// answers (at most [`HELD_MAX`]).
    pub held: Vec<Vec<u8>>,
    pub inbound: ByName<Inbound>,
    /// A small number per member name, for [`OutMsg::remaining`].
    pub slots: super::owed::Slots,
    /// Members who said they left, and when: the registry may list them a
    /// little longer, and they must not be added back from that list.
    pub departed: HashMap<String, Instant>,
    pub next_msg: u64,
    pub out: BTreeMap<u64, OutMsg>,
    /// Messages below this id have had their progress shown (or are
    /// done): the scans for slow messages start here, not at the oldest.
    pub progress_from: u64,
    pub last_refresh: Option<Instant>,
    /// Set once we left: the room only finishes sending our "leave".
    pub leaving: Option<Instant>,
    /// Our current run of messages still on their way (a paste's progress).
    pub run: Option<super::progress::Run>,
    /// Members dropped from the live list, entitled to what they missed.
    pub away: HashMap<String, super::retain::Away>,
    /// The last seq of our stream sent to the room's multicast group.
    pub group_upto: u64,
    /// Tell the registry we left once the "leave" is done (a `/leave`;
    /// logout and quit tell it by themselves).
    pub tell_registry: bool,
}

/// Every room this peer is in, as one state machine: fed datagrams,
/// time-outs and commands; drained of datagrams to send, events and its
/// next deadline. Owns no socket, thread or clock.
pub struct Engine {
    /// Our username, kept after logout so a "leave" can still be signed.
    pub(super) me: String,
    pub(super) rooms: BTreeMap<String, Room>,
    last_stream: u64,
    ids: Box<dyn StreamIds>,
    pub(super) injector: Injector,
    pub(super) stats: Stats,
    pub(super) next_ping: Option<Instant>,
    /// When each member's flow and each stream's acknowledgement is due.
    pub(super) timers: Queue,
    pub(super) events: VecDeque<Event>,
    /// Nonces for sealing datagrams: 192 random bits each.
    nonces: StdRng,
    /// Set while held datagrams go through again (they are not held twice).
    pub(super) replaying: bool,
    /// Signs what we send, checks what we receive.
    pub(super) auth: Box<dyn Authenticator>,
    /// How long a member dropped from a live list stays owed what it
    /// missed ([`RETENTION`](super::RETENTION) unless set).
    pub(super) retention: Duration,
    /// The port of the rooms' multicast groups, when the driver set up
    /// multicast (see `group`); none: unicast only.
    pub(super) multicast: Option<u16>,
    /// Set while a datagram that came by a group is handled.
    pub(super) via_group: bool,
}

impl Engine {
    /// `seed` drives the fault injector (the only randomness); `ids` gives
    /// stream ids; `auth` signs and checks datagrams (the peer's identity;
    /// replace it with [`set_auth`](Engine::set_auth) at login).
    pub fn new(
        faults: Faults,
        seed: u64,
        ids: Box<dyn StreamIds>,
        auth: Box<dyn Authenticator>,
    ) -> Engine {
        Engine {
            me: String::new(),
            rooms: BTreeMap::new(),
            last_stream: 0,
            ids,
            injector: Injector::new(faults, seed),
            stats: Stats::default(),
            next_ping: None,
            timers: Queue::new(),
            events: VecDeque::new(),
            nonces: StdRng::from_entropy(),
            replaying: false,
            auth,
            retention: super::RETENTION,
            multicast: None,
            via_group: false,
        }
    }

    /// Sends what goes to every member of a room once to its multicast
    /// group on `port` as well (and unicast only to the members that do
    /// not hear the group), or with `None` (the default) unicast only. The
    /// driver calls it once its socket can send to groups, and joins
    /// [`groups`](Engine::groups).
    pub fn set_multicast(&mut self, port: Option<u16>) {
        self.multicast = port;
    }

    /// Whether one of the rooms we are in has group `group`.
    pub fn listens(&self, group: SocketAddr) -> bool {
        self.multicast.is_some_and(|port| {
            port == group.port()
                && self
                    .rooms
                    .iter()
                    .any(|(n, r)| r.leaving.is_none() && super::group::group_of(n, port) == group)
        })
    }

    /// The groups of the rooms we are in: the driver's group socket joins
    /// these (none without [`set_multicast`](Engine::set_multicast)).
    pub fn groups(&self) -> Vec<SocketAddr> {
        let Some(port) = self.multicast else {
            return Vec::new();
        };
        let mut g: Vec<SocketAddr> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.leaving.is_none())
            .map(|(n, _)| super::group::group_of(n, port))
            .collect();
        g.sort();
        g.dedup();
        g
    }

    /// How long a member dropped from a room's live list stays owed, when
    /// it comes back, what it missed (`--room-retention`; zero: only what
    /// is sent after it is back).
    pub fn set_retention(&mut self, retention: Duration) {
        self.retention = retention;
    }

    /// Signs and checks with `auth` from now on (the identity of the user
    /// who logged in).
    pub fn set_auth(&mut self, auth: Box<dyn Authenticator>) {
        self.auth = auth;
    }

    /// A fresh nonce for sealing one datagram.
    pub(super) fn nonce(&mut self) -> [u8; NONCE_LEN] {
        let mut n = [0; NONCE_LEN];
        self.nonces.fill_bytes(&mut n);
        n
    }

    /// Who we are: datagrams are signed as, and accepted only when sent to,
    /// this name. Kept after logout, so leaves in flight stay valid.
    pub fn set_identity(&mut self, me: &str) {
        self.me = me.to_string();
    }

    pub fn identity(&self) -> &str {
        &self.me
    }

    pub(super) fn new_stream_id(&mut self) -> u64 {
        self.last_stream = self.ids.stream_id().max(self.last_stream + 1);
        self.last_stream
    }

    /// A member owed every seq of our stream after `base`.
    pub(super) fn new_member(addr: SocketAddr, base: u64, now: Instant) -> Member {
        Member {
            addr,
            flow: Flow::new(base, now),
            last_heard: now,
            last_sent: now,
            timer: None,
            notice: None,
            hears_group: false,
        }
    }

    pub(super) fn emit(&mut self, ev: Event) {
        self.events.push_back(ev);
    }

    /// In `room`, and not on the way out of it.
    pub fn is_member(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.leaving.is_none())
    }

    /// The rooms we are in (not those we are leaving).
    pub fn joined(&self) -> Vec<String> {
        self.rooms
            .iter()
            .filter(|(_, r)| r.leaving.is_none())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The members we currently send to in `room`.
    pub fn members_of(&self, room: &str) -> Vec<String> {
        self.rooms
            .get(room)
            .map(|r| r.members.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets every room at once, saying nothing (the session is gone).
    pub fn clear(&mut self) {
        self.rooms.clear();
        self.next_ping = None;
        self.timers.clear();
    }

    /// True when no room is still sending a "leave".
    pub fn leaving_done(&self) -> bool {
        self.rooms.values().all(|r| r.leaving.is_none())
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.injected_drops = self.injector.dropped;
        s.injected_dups = self.injector.duplicated;
        s.injected_delays = self.injector.reordered;
        s
    }

    /// The next datagram to send, and where.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.injector.pop()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Engine::handle_timeout) should run next;
    /// `None` when nothing is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let streams = self.next_timer();
        // Messages go out in id order, so the first not yet shown is the
        // oldest.
        let progress = self
            .rooms
            .values()
            .filter_map(|r| r.out.range(r.progress_from..).next().map(|(_, o)| o))
            .map(|o| o.sent_at + PROGRESS_AFTER)
            .min();
        let leaving = self.rooms.values().filter_map(|r| r.leaving).min();
        // A room we are leaving is polled only while our "leave" waits for
        // its key.
        let poll = self
            .rooms
            .values()
            .filter(|r| r.leaving.is_none() || r.stale)
            .map(|r| r.next_poll)
            .min();
        [
            streams,
            progress,
            leaving,
            poll,
            self.next_ping,
            self.injector.deadline(),
            self.run_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
