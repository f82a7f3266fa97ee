//! The simulator's fake registry: who is in each room, the room's key and
//! epoch (a new one whenever a member leaves or its session times out, as
//! the real registry does), outsiders (a test's own socket as a member),
//! and its answers to the engines' asks, or none while it is down.

use super::Sim;
use crate::peer::rooms::{Ask, Listed};
use crate::protocol::datagram::RoomKey;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What the fake registry knows of a room.
pub(super) struct RegRoom {
    pub(super) key: RoomKey,
    pub(super) members: BTreeSet<usize>,
    /// Members that are not simulated nodes (a test's own socket).
    pub(super) outsiders: BTreeMap<String, SocketAddr>,
    /// Members the current key has not reached yet, and when it will (the
    /// real key maker seals and the member fetches: [`Sim::key_delay`]).
    pub(super) keyless_until: BTreeMap<usize, Instant>,
}

impl RegRoom {
    /// A member left or was taken out: a new key, one epoch on, as the
    /// real registry does.
    pub(super) fn rekey(&mut self, ready: Instant) {
        self.key.epoch += 1;
        self.key.key = [(self.key.epoch as u8).wrapping_mul(37) ^ self.key.key[1]; 32];
        self.keyless_until = self.members.iter().map(|&i| (i, ready)).collect();
    }
}

/// How long the fake registry keeps a killed node's session (the real one
/// times a session out after 3 s without heartbeats).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(3);

impl Sim {
    pub(super) fn listed(&self, room: &str) -> Vec<Listed> {
        let Some(r) = self.registry.get(room) else {
            return Vec::new();
        };
        // A killed node's session lives on until it times out.
        // Every name's keys are fixed (`auth::identity`): the registry
        // vouches for them.
        let nodes = r.members.iter().map(|&i| Listed {
            name: self.nodes[i].name.clone(),
            addr: Some(self.nodes[i].addr),
            sign: Some(self.nodes[i].sign),
        });
        let outsiders = r.outsiders.iter().map(|(name, addr)| Listed {
            name: name.clone(),
            addr: Some(*addr),
            sign: Some(super::auth::identity(name).public().sign),
        });
        nodes.chain(outsiders).collect()
    }

    /// Whether the current key has not reached member `i` yet.
    pub(super) fn keyless(&self, i: usize, room: &str) -> bool {
        self.registry
            .get(room)
            .and_then(|r| r.keyless_until.get(&i))
            .is_some_and(|&t| self.now < t)
    }

    /// The registry's answer to node `i`: the key only for a member.
    pub(super) fn key_for(&self, i: usize, room: &str) -> Option<RoomKey> {
        let r = self.registry.get(room)?;
        r.members.contains(&i).then_some(r.key)
    }

    /// An outsider (a test's own socket at `addr`) joins `room` through
    /// the registry; returns the room's key.
    pub fn register_outsider(&mut self, room: &str, name: &str, addr: SocketAddr) -> RoomKey {
        let r = self.registry.get_mut(room).expect("room exists");
        r.outsiders.insert(name.to_string(), addr);
        r.key
    }

    /// The outsider leaves `room` through the registry (which re-keys it).
    pub fn unregister_outsider(&mut self, room: &str, name: &str) {
        let ready = self.now + self.key_delay;
        let r = self.registry.get_mut(room).expect("room exists");
        if r.outsiders.remove(name).is_some() {
            r.rekey(ready);
        }
    }

    /// Killed nodes whose sessions have timed out leave their rooms.
    pub(super) fn expire_sessions(&mut self) {
        for i in 0..self.nodes.len() {
            let due = self.nodes[i]
                .killed_at
                .is_some_and(|t| self.now >= t + SESSION_TIMEOUT);
            if !due {
                continue;
            }
            self.nodes[i].killed_at = None;
            let ready = self.now + self.key_delay;
            for (name, r) in self.registry.iter_mut() {
                if r.members.remove(&i) {
                    r.rekey(ready);
                    self.nodes[i].lost_rooms.push(name.clone());
                }
            }
        }
    }

    /// The registry goes down: asks go unanswered until it restarts.
    pub fn registry_down(&mut self) {
        self.registry_up = false;
    }

    /// The registry restarts: sessions are gone, so it lists nobody until
    /// each node, its session restored, joins again.
    pub fn registry_restart(&mut self) {
        let ready = self.now + self.key_delay;
        for r in self.registry.values_mut() {
            r.members.clear();
            r.rekey(ready);
        }
        self.registry_up = true;
    }

    /// Every live node's session is restored: it asks to rejoin its rooms.
    pub fn sessions_restored(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].up {
                self.nodes[i].engine.rejoin();
                self.drain(i);
            }
        }
        self.answer_asks();
    }

    /// The fake registry answers what the engines asked, if it is up.
    pub(super) fn answer_asks(&mut self) {
        while !self.asks.is_empty() {
            for (i, ask) in std::mem::take(&mut self.asks) {
                if !self.registry_up || !self.nodes[i].up {
                    continue;
                }
                let room = match ask {
                    Ask::Leave(room) => {
                        let ready = self.now + self.key_delay;
                        if let Some(r) = self.registry.get_mut(&room) {
                            if r.members.remove(&i) {
                                r.rekey(ready);
                            }
                        }
                        continue;
                    }
                    Ask::Rejoin(room) => {
                        let ready = self.now + self.key_delay;
                        if let Some(r) = self.registry.get_mut(&room) {
                            if r.members.insert(i) && !self.key_delay.is_zero() {
                                r.keyless_until.insert(i, ready);
                            }
                        }
                        room
                    }
                    Ask::Members(room) => room,
                };
                let listed = self.listed(&room);
                let now = self.now;
                let key = match self.key_for(i, &room) {
                    Some(k) if self.keyless(i, &room) => {
                        // As the peer does while its key is on the way.
                        let e = &mut self.nodes[i].engine;
                        if e.key(&room).is_some_and(|h| h.epoch != k.epoch) {
                            e.await_key(now, &room);
                        }
                        e.key(&room)
                    }
                    k => k,
                };
                self.nodes[i].engine.members(now, &room, key, &listed);
                self.drain(i);
            }
        }
    }

    /// The room key the fake registry hands out now.
    pub fn key(&self, room: &str) -> RoomKey {
        self.registry[room].key
    }
}
