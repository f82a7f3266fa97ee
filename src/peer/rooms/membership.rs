//! Who is in each room: joining with the registry's list, keeping that list
//! up to date (the registry's answers add members, never remove them),
//! leaving, and dropping a member with a typed reason.

use super::engine::{Engine, Listed, Room, DEPARTED_MEMORY, LEAVE_LINGER, PING_EVERY};
use super::event::{Ask, Event, Gone, NotMember};
use super::send::control_item;
use crate::protocol::datagram::EventKind;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

impl Engine {
    /// The registry let us into `room` (created or joined): start sending to
    /// every online member listed, and tell each that we joined.
    pub fn enter(&mut self, now: Instant, room: &str, key: [u8; 32], listed: &[Listed]) {
        let me = self.me.clone();
        let mut members = BTreeMap::new();
        for u in listed.iter().filter(|u| u.name != me) {
            if let Some(addr) = u.addr {
                members.insert(u.name.clone(), self.new_member(addr, now));
            }
        }
        let names: Vec<String> = listed.iter().map(|u| u.name.clone()).collect();
        let others: Vec<String> = members.keys().cloned().collect();
        self.rooms.insert(
            room.to_string(),
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
        self.next_ping.get_or_insert(now + PING_EVERY);
        for m in others {
            self.push_item(room, &m, control_item(EventKind::Join), now);
        }
        self.emit(Event::Joined {
            room: room.to_string(),
            members: names,
        });
    }

    /// The registry's member list of `room` (asked for by [`Ask`], or by the
    /// user), with the room's key when the answer carried one.
    ///
    /// Adds the members we did not know (with their current addresses). It
    /// never removes any: the registry's list can lag (or, while it
    /// restarts, be empty); members who leave say so, and members who die
    /// fall silent and time out.
    pub fn members(&mut self, now: Instant, room: &str, key: Option<[u8; 32]>, listed: &[Listed]) {
        if let (Some(key), Some(r)) = (key, self.rooms.get_mut(room)) {
            r.key = key;
        }
        if !self.is_member(room) {
            return;
        }
        let me = self.me.clone();
        let mut joined = Vec::new();
        let recently_gone: Vec<String> = match self.rooms.get_mut(room) {
            Some(r) => {
                r.departed
                    .retain(|_, t| now.duration_since(*t) < DEPARTED_MEMORY);
                r.departed.keys().cloned().collect()
            }
            None => return,
        };
        for u in listed
            .iter()
            .filter(|u| u.name != me && !recently_gone.contains(&u.name))
        {
            let Some(addr) = u.addr else { continue };
            let known = self
                .rooms
                .get(room)
                .and_then(|r| r.members.get(&u.name))
                .map(|m| m.addr);
            match known {
                Some(a) if a == addr => {}
                Some(_) => {
                    if let Some(m) = self
                        .rooms
                        .get_mut(room)
                        .and_then(|r| r.members.get_mut(&u.name))
                    {
                        m.addr = addr;
                    }
                }
                None => {
                    let m = self.new_member(addr, now);
                    if let Some(r) = self.rooms.get_mut(room) {
                        r.members.insert(u.name.clone(), m);
                    }
                    joined.push(u.name.clone());
                }
            }
        }
        for user in joined {
            self.emit(Event::MemberJoined {
                room: room.to_string(),
                user,
            });
        }
    }

    /// The user leaves `room`: tell the members and the registry.
    pub fn leave(&mut self, now: Instant, room: &str) -> Result<(), NotMember> {
        if !self.is_member(room) {
            return Err(NotMember);
        }
        self.start_leaving(room, now);
        self.emit(Event::Ask(Ask::Leave(room.to_string())));
        Ok(())
    }

    /// Leaves every room, telling the members only (logout and quit tell
    /// the registry by themselves).
    pub fn leave_all(&mut self, now: Instant) {
        for room in self.joined() {
            self.start_leaving(&room, now);
        }
    }

    /// After the session is restored, join our rooms again (the registry
    /// dropped us from them when the session went offline).
    pub fn rejoin(&mut self) {
        for room in self.joined() {
            self.emit(Event::Ask(Ask::Rejoin(room)));
        }
    }

    /// Sends our "leave" to every member and lets the room linger until it
    /// is acknowledged (or [`LEAVE_LINGER`] passes).
    fn start_leaving(&mut self, room: &str, now: Instant) {
        let members: Vec<String> = match self.rooms.get_mut(room) {
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
    }

    /// Asks the registry for the members of `room`, at most once per
    /// [`REFRESH_EVERY`](super::engine::REFRESH_EVERY).
    pub(super) fn refresh_members(&mut self, room: &str, now: Instant) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.leaving.is_some()
            || r.last_refresh
                .is_some_and(|t| now.duration_since(t) < super::engine::REFRESH_EVERY)
        {
            return;
        }
        r.last_refresh = Some(now);
        self.emit(Event::Ask(Ask::Members(room.to_string())));
    }

    pub(super) fn remove_member(&mut self, room: &str, user: &str, reason: Gone) {
        let Some(r) = self.rooms.get_mut(room) else {
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
                if reason == Gone::Left {
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
            self.emit(Event::MemberLeft {
                room: room.to_string(),
                user: user.to_string(),
                reason,
            });
        }
    }
}
