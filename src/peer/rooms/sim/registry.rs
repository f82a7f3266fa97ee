//! The simulator's fake registry: who is in each room, the room's key and
//! epoch (a new one whenever a member leaves or its session times out, as
//! the real registry does), outsiders (a test's own socket as a member),
//! and its answers to the engines' asks, or none while it is down.

use super::Sim;
use crate::peer::rooms::{Ask, Listed};
use crate::protocol::datagram::RoomKey;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

/// What the fake registry knows of a room.
pub(super) struct RegRoom {
    pub(super) key: RoomKey,
    pub(super) members: BTreeSet<usize>,
    /// Members that are not simulated nodes (a test's own socket).
    pub(super) outsiders: BTreeMap<String, SocketAddr>,
}

impl RegRoom {
    /// A member left or was taken out: a new key, one epoch on, as the
    /// real registry does.
    pub(super) fn rekey(&mut self) {
        self.key.epoch += 1;
        self.key.key = [(self.key.epoch as u8).wrapping_mul(37) ^ self.key.key[1]; 32];
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
        let r = self.registry.get_mut(room).expect("room exists");
        if r.outsiders.remove(name).is_some() {
            r.rekey();
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
            for (name, r) in self.registry.iter_mut() {
                if r.members.remove(&i) {
                    r.rekey();
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
        for r in self.registry.values_mut() {
            r.members.clear();
            r.rekey();
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
                        if let Some(r) = self.registry.get_mut(&room) {
                            if r.members.remove(&i) {
                                r.rekey();
                            }
                        }
                        continue;
                    }
                    Ask::Rejoin(room) => {
                        if let Some(r) = self.registry.get_mut(&room) {
                            r.members.insert(i);
                        }
                        room
                    }
                    Ask::Members(room) => room,
                };
                let key = self.key_for(i, &room);
                let listed = self.listed(&room);
                let now = self.now;
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
