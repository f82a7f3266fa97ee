//! Waiting for a room key. Room keys are made by a member and reach the
//! others sealed through the registry (`protocol::roomkey`); the peer's
//! glue opens them and hands them in with [`Engine::members`]. Between the
//! registry saying "epoch E" and E's key arriving, the engine sends nothing
//! under the key it holds (an ex-member may hold it too) and opens nothing.

use super::engine::{Engine, KEY_POLL};
use crate::protocol::datagram::{Body, Datagram, RoomKey};
use std::time::Instant;

impl Engine {
    /// The registry says `room` is at an epoch whose key we lack: stop
    /// sending under the old key, and ask for the list (and our package)
    /// every [`KEY_POLL`] until the key comes ([`Engine::members`] with it).
    pub fn await_key(&mut self, now: Instant, room: &str) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if !r.stale {
            log::info!("#{room}: waiting for the new epoch's key");
        }
        r.stale = true;
        r.next_poll = r.next_poll.min(now + KEY_POLL);
    }

    /// The key we hold for `room` is the current epoch's after all (the
    /// registry named no new one, e.g. we rejoined within the same epoch):
    /// stop waiting. [`Engine::members`] does this itself for a new key.
    pub fn key_confirmed(&mut self, now: Instant, room: &str) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if !r.stale || r.placeholder {
            return;
        }
        r.stale = false;
        self.key_arrived(now, room);
    }

    /// The key came: what waited for it (our "join", what the user typed)
    /// goes out now.
    pub(super) fn key_arrived(&mut self, now: Instant, room: &str) {
        let names: Vec<String> = self
            .rooms
            .get_mut(room)
            .map(|r| {
                // We were deaf meanwhile, not they silent.
                r.members.values_mut().for_each(|m| m.last_heard = now);
                r.members.keys().cloned().collect()
            })
            .unwrap_or_default();
        for user in names {
            self.pump(room, &user, now);
        }
    }

    /// The key we hold for `room` (perhaps not the current epoch's).
    pub fn key(&self, room: &str) -> Option<RoomKey> {
        self.rooms.get(room).map(|r| r.key)
    }

    /// Whether we hold the key of the epoch the registry last named.
    pub fn has_key(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| !r.stale)
    }

    /// We joined `room` and wait for our key: [`Engine::enter`] under a
    /// placeholder (nothing is sent or opened under it), then a knock to
    /// every member listed, so each asks the registry for the list at once
    /// and the key maker seals the key for us without waiting for its next
    /// poll. The knock is a PING under epoch 0 (no room has it) and a
    /// throwaway key: members drop it unread (counted as `other_epoch`).
    pub fn enter_awaiting_key(
        &mut self,
        now: Instant,
        room: &str,
        epoch: u64,
        listed: &[super::engine::Listed],
    ) {
        let placeholder = RoomKey {
            epoch,
            key: rand::random(),
        };
        self.enter_as(now, room, placeholder, listed, true);
        self.await_key(now, room);
        self.knock(now, room);
    }

    /// Knocks on every member the registry lists in `room` (see
    /// [`Engine::enter_awaiting_key`]): we are in but lack the key, as a
    /// joiner, or as a member back after its session ended, which may
    /// have dropped every member as silent meanwhile.
    pub fn knock(&mut self, now: Instant, room: &str) {
        let Some(addrs) = self
            .rooms
            .get(room)
            .map(|r| r.listed.values().copied().collect::<Vec<_>>())
        else {
            return;
        };
        let throwaway = RoomKey {
            epoch: 0,
            key: rand::random(),
        };
        let dg = Datagram {
            room: room.to_string(),
            from: self.me.clone(),
            body: Body::Ping,
        };
        for addr in addrs {
            let nonce = self.nonce();
            let bytes = dg.encode(&throwaway, &nonce, self.auth.as_ref());
            self.stats.datagrams_out += 1;
            self.injector.send(addr, bytes, now);
        }
    }
}
