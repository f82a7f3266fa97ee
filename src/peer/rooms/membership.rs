//! Who is in each room: joining with the registry's list, following that
//! list (the registry decides who is a member: nobody it does not list is
//! let in, and members it stops listing are dropped), taking up each new
//! key epoch, leaving, and dropping a member with a typed reason.

use super::engine::{
    ByName, Engine, Listed, Room, DEPARTED_MEMORY, LEAVE_LINGER, MEMBERS_POLL, PING_EVERY,
    PREVIOUS_KEY_GRACE, UNLISTED_LIMIT, UNLISTED_SILENCE,
};
use super::event::{Ask, Event, Gone, NotMember};
use super::flow::Outbox;
use super::send::control_item;
use super::timers::Timer;
use crate::protocol::datagram::{Body, EventKind, RoomKey, VerifyingKey};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Instant;

/// The registry's list, without us, without members it shows offline, and
/// without members it vouches for no keys for (version 1).
fn online_others(me: &str, listed: &[Listed]) -> BTreeMap<String, SocketAddr> {
    listed
        .iter()
        .filter(|u| u.name != me && u.sign.is_some())
        .filter_map(|u| Some((u.name.clone(), u.addr?)))
        .collect()
}

/// The signing keys the registry vouches for, by member.
fn signers(listed: &[Listed]) -> ByName<VerifyingKey> {
    listed
        .iter()
        .filter(|u| u.addr.is_some())
        .filter_map(|u| Some((u.name.clone(), u.sign?)))
        .collect()
}

impl Engine {
    /// The registry let us into `room` (created or joined): start sending to
    /// every online member listed, and tell each that we joined.
    pub fn enter(&mut self, now: Instant, room: &str, key: RoomKey, listed: &[Listed]) {
        self.enter_as(now, room, key, listed, false);
    }

    /// [`Engine::enter`]; `stale`: `key` is a placeholder, and nothing
    /// goes out until the real one comes ([`Engine::enter_awaiting_key`]).
    pub(super) fn enter_as(
        &mut self,
        now: Instant,
        room: &str,
        key: RoomKey,
        listed: &[Listed],
        stale: bool,
    ) {
        let me = self.me.clone();
        let online = online_others(&me, listed);
        let mut members = super::members::Members::default();
        for (name, addr) in &online {
            members.insert(name.clone(), Engine::new_member(*addr, 0, now));
        }
        let stream = self.new_stream_id();
        let names: Vec<String> = listed.iter().map(|u| u.name.clone()).collect();
        let others: Vec<String> = members.keys().cloned().collect();
        self.rooms.insert(
            room.to_string(),
            Room {
                tx: Outbox::new(stream),
                ping_after: String::new(),
                key,
                previous: None,
                stale,
                placeholder: stale,
                tell_registry: false,
                announced: others.iter().cloned().collect(),
                members,
                listed: online,
                signers: signers(listed),
                outdated: HashSet::new(),
                unlisted: HashMap::new(),
                unheard: HashSet::new(),
                next_poll: now + MEMBERS_POLL,
                held: Vec::new(),
                inbound: ByName::default(),
                slots: Default::default(),
                departed: HashMap::new(),
                next_msg: 1,
                out: BTreeMap::new(),
                progress_from: 0,
                last_refresh: None,
                leaving: None,
                run: None,
                away: HashMap::new(),
                group_upto: 0,
            },
        );
        self.next_ping.get_or_insert(now + PING_EVERY);
        self.push_item(room, control_item(EventKind::Join), now);
        self.emit(Event::Joined {
            room: room.to_string(),
            members: names,
        });
        self.refuse_outdated(room, listed);
    }

    /// Tells the user, once per member, about listed members without keys.
    fn refuse_outdated(&mut self, room: &str, listed: &[Listed]) {
        let me = self.me.clone();
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let mut told = Vec::new();
        for u in listed {
            if u.name != me
                && u.addr.is_some()
                && u.sign.is_none()
                && r.outdated.insert(u.name.clone())
            {
                told.push(u.name.clone());
            }
        }
        for user in told {
            self.emit(Event::Outdated {
                room: room.to_string(),
                user,
            });
        }
    }

    /// The key epoch we hold for `room`.
    pub fn epoch(&self, room: &str) -> Option<u64> {
        self.rooms.get(room).map(|r| r.key.epoch)
    }

    /// The registry's member list of `room` (asked for by [`Ask`], or by the
    /// user), with the room's current key when the answer carried one (it
    /// does when the registry counts us as a member).
    ///
    /// The list decides: members we did not know are added (with their
    /// current addresses), and members missing from [`UNLISTED_LIMIT`]
    /// answers in a row are dropped. A new key epoch is taken up at once
    /// (datagrams go out under it from now on, retransmissions included).
    /// An answer without a key means the registry dropped us (our session
    /// timed out, or it restarted): we ask to join again, and drop nobody
    /// on the strength of that answer.
    pub fn members(&mut self, now: Instant, room: &str, key: Option<RoomKey>, listed: &[Listed]) {
        if !self.is_member(room) {
            // Leaving: only the key matters (our "leave" may be waiting
            // for it).
            if let (Some(key), Some(r)) = (key, self.rooms.get_mut(room)) {
                let unstale = r.stale && r.key != key;
                r.key = key;
                if unstale {
                    r.stale = false;
                    r.placeholder = false;
                    self.key_arrived(now, room);
                }
            }
            return;
        }
        let me = self.me.clone();
        let online = online_others(&me, listed);
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(key) = key else {
            self.emit(Event::Ask(Ask::Rejoin(room.to_string())));
            return;
        };
        let unstale = r.stale && r.key != key;
        if r.key != key {
            log::info!("#{room}: key epoch {} -> {}", r.key.epoch, key.epoch);
            // A placeholder (we waited for our first key) is no key to keep.
            if !r.placeholder {
                r.previous = Some((r.key, now + PREVIOUS_KEY_GRACE));
            }
            r.key = key;
            r.stale = false;
            r.placeholder = false;
            r.next_poll = r.next_poll.min(now + MEMBERS_POLL);
            for (user, m) in r.members.iter_mut() {
                m.flow.rekeyed(now);
                // Due now: queued afresh (an entry for later goes stale).
                m.timer = Some(now);
                let timer = Timer::Flow {
                    room: room.to_string(),
                    user: user.clone(),
                };
                self.timers.push(Reverse((now, timer)));
            }
        }
        r.departed
            .retain(|_, t| now.duration_since(*t) < DEPARTED_MEMORY);
        r.unheard.retain(|u| online.contains_key(u));
        let mut gone = Vec::new();
        for (name, m) in r.members.iter() {
            if online.contains_key(name) {
                r.unlisted.remove(name);
            } else {
                let misses = r.unlisted.entry(name.clone()).or_insert(0);
                *misses += 1;
                // A silent one (killed: its session timed out) goes at once.
                let silent = now.saturating_duration_since(m.last_heard) >= UNLISTED_SILENCE;
                if *misses >= UNLISTED_LIMIT || silent {
                    gone.push(name.clone());
                }
            }
        }
        let mut joined = Vec::new();
        for (name, addr) in &online {
            if r.departed.contains_key(name) || r.unheard.contains(name) {
                continue;
            }
            match r.members.get_mut(name) {
                Some(m) => m.addr = *addr,
                None => joined.push((name.clone(), *addr)),
            }
        }
        r.listed = online;
        r.signers = signers(listed);
        for user in gone {
            // One PING under the current epoch on the way out: a member the
            // registry took out (a kick) that has not noticed yet cannot
            // open it, so it asks the registry at once and learns why,
            // while the room still exists.
            let addr = self
                .rooms
                .get(room)
                .and_then(|r| r.members.get(&user))
                .map(|m| m.addr);
            if let Some(addr) = addr {
                self.control_to(room, addr, Body::Ping, now);
            }
            self.remove_member(room, &user, Gone::NotListed);
        }
        for (user, addr) in joined {
            self.add_member(room, &user, addr, now);
        }
        self.refuse_outdated(room, listed);
        self.replay_held(room, now);
        if unstale {
            self.key_arrived(now, room);
        }
    }

    /// Lets a member the registry lists in (again), and says so once.
    /// It is owed what we send from now on.
    pub(super) fn add_member(&mut self, room: &str, user: &str, addr: SocketAddr, now: Instant) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let _ = r;
        let base = self.comes_back(room, user, now);
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let mut m = Engine::new_member(addr, base, now);
        let owed = base < r.tx.last();
        if owed {
            m.notice = Some(super::late::Notice {
                upto: r.tx.last(),
                since: now,
                told: None,
            });
        }
        r.unheard.remove(user);
        r.unlisted.remove(user);
        r.members.insert(user.to_string(), m);
        if r.announced.insert(user.to_string()) {
            self.emit(Event::MemberJoined {
                room: room.to_string(),
                user: user.to_string(),
            });
        }
        if owed {
            // What it missed goes now, paced by its window.
            self.pump(room, user, now);
        }
    }

    /// The user leaves `room`: tell the members and the registry.
    pub fn leave(&mut self, now: Instant, room: &str) -> Result<(), NotMember> {
        if !self.is_member(room) {
            return Err(NotMember);
        }
        self.start_leaving(room, now);
        if let Some(r) = self.rooms.get_mut(room) {
            r.tell_registry = true;
        }
        Ok(())
    }

    /// The registry took us out of `room` (a kick): say goodbye to the
    /// members, but do not tell the registry, and never re-join it.
    pub fn drop_room(&mut self, now: Instant, room: &str) {
        self.start_leaving(room, now);
    }

    /// A room we left is done: every member acknowledged our "leave", or
    /// [`LEAVE_LINGER`] passed. Only now is the registry told (for a
    /// `/leave`), since it then gives the room a new key: told first, the
    /// members could take up the new key before our "leave" reached them,
    /// and drop it as sent under an old one.
    pub(super) fn finish_leaving(&mut self, room: &str) {
        if let Some(r) = self.rooms.remove(room) {
            if r.tell_registry {
                self.emit(Event::Ask(Ask::Leave(room.to_string())));
            }
        }
    }

    /// Leaves every room, telling the members only (logout and quit tell
    /// the registry by themselves).
    pub fn leave_all(&mut self, now: Instant) {
        for room in self.joined() {
            self.start_leaving(&room, now);
        }
    }

    /// After the session is restored, join our rooms again (the registry
    /// dropped us from them when the session went offline). The members
    /// we judged silent meanwhile were most likely silent because we were
    /// cut off: those the registry lists come back in with its answer
    /// (and are judged afresh), instead of once each is heard from.
    pub fn rejoin(&mut self) {
        for r in self.rooms.values_mut() {
            r.unheard.clear();
        }
        for room in self.joined() {
            self.emit(Event::Ask(Ask::Rejoin(room)));
        }
    }

    /// Sends our "leave" to every member and lets the room linger until it
    /// is acknowledged (or [`LEAVE_LINGER`] passes).
    fn start_leaving(&mut self, room: &str, now: Instant) {
        match self.rooms.get_mut(room) {
            Some(r) if r.leaving.is_none() => {
                r.leaving = Some(now + LEAVE_LINGER);
                r.out.clear();
                r.run = None;
            }
            _ => return,
        }
        self.push_item(room, control_item(EventKind::Leave), now);
    }

    /// Asks the registry for the members of `room`, at most once per
    /// [`REFRESH_EVERY`](super::engine::REFRESH_EVERY).
    pub(super) fn refresh_members(&mut self, room: &str, now: Instant) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if let Some(t) = r
            .last_refresh
            .filter(|t| now.duration_since(*t) < super::engine::REFRESH_EVERY)
        {
            // Not now, but not at the next routine poll either: as soon as
            // the limit allows (a joiner waits on it for its key).
            r.next_poll = r.next_poll.min(t + super::engine::REFRESH_EVERY);
            return;
        }
        r.last_refresh = Some(now);
        r.next_poll = now
            + if r.stale {
                super::engine::KEY_POLL
            } else {
                MEMBERS_POLL
            };
        self.emit(Event::Ask(Ask::Members(room.to_string())));
    }

    pub(super) fn remove_member(&mut self, room: &str, user: &str, reason: Gone) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let Some(gone) = r.members.remove(user) else {
            return;
        };
        if reason != Gone::Left {
            self.went_away(room, user, gone.flow.acked, gone.last_heard);
        }
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.unlisted.remove(user);
        match reason {
            // Still listed, maybe only cut off for a while: probe it.
            Gone::Silent | Gone::Unreachable if r.listed.contains_key(user) => {
                r.unheard.insert(user.to_string());
            }
            _ => {
                r.listed.remove(user);
            }
        }
        let announced = r.announced.remove(user);
        // A member who said it left no longer counts for messages still on
        // their way to it; one that fell silent did not get them, and the
        // sender is told so, by name.
        let leaving = r.leaving.is_some();
        let slot = r.slots.get(user).copied();
        for o in r.out.values_mut() {
            if o.remaining.remove(slot) {
                if reason == Gone::Left {
                    o.total -= 1;
                } else {
                    o.failed.push(user.to_string());
                }
            }
        }
        let ids: Vec<u64> = r.out.keys().copied().collect();
        let last = r.tx.last();
        let floor = self.outbox_floor(room, gone.last_heard);
        if let Some(r) = self.rooms.get_mut(room) {
            r.tx.trim(floor.unwrap_or(last));
        }
        for id in ids {
            self.check_done(room, id);
        }
        self.check_left(room);
        if !leaving && announced {
            self.emit(Event::MemberLeft {
                room: room.to_string(),
                user: user.to_string(),
                reason,
            });
        }
    }
}
