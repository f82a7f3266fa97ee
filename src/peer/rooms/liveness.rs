//! Time passing: retransmissions and giving up on a member, progress
//! reports of slow messages, rooms we left finishing, asking the registry
//! for the members, liveness pings (and probes of members we gave up on),
//! and dropping members that fell silent.

use super::engine::{Engine, PING_EVERY, PROGRESS_AFTER, SILENT_LIMIT};
use super::event::{Event, Gone};
use super::stream::Item;
use crate::protocol::datagram::{Body, EventKind};
use std::collections::BTreeSet;
use std::time::Instant;

impl Engine {
    /// Does whatever is due at `now`. Cheap when nothing is; the driver
    /// may call it more often than [`poll_timeout`](Engine::poll_timeout) asks.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.injector.release(now);
        let names: Vec<String> = self.rooms.keys().cloned().collect();
        for room in names {
            let members: Vec<String> = match self.rooms.get(&room) {
                Some(r) => r.members.keys().cloned().collect(),
                None => continue,
            };
            for user in members {
                let due = match self
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
            let progress: Vec<(u64, usize, usize)> = match self.rooms.get_mut(&room) {
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
                self.emit(Event::Delivery {
                    room: room.clone(),
                    id,
                    acked,
                    total,
                });
            }
            if self
                .rooms
                .get(&room)
                .is_some_and(|r| r.leaving.is_none() && now >= r.next_poll)
            {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.last_refresh = None;
                }
                self.refresh_members(&room, now);
            }
            if let Some(r) = self.rooms.get(&room) {
                if r.leaving.is_some_and(|t| now >= t)
                    || (r.leaving.is_some() && r.members.values().all(|m| m.tx.idle()))
                {
                    self.finish_leaving(&room);
                }
            }
        }

        if self.next_ping.is_some_and(|t| now >= t) {
            self.next_ping = (!self.rooms.is_empty()).then_some(now + PING_EVERY);
            self.liveness(now);
        }
    }

    fn liveness(&mut self, now: Instant) {
        let mut silent = Vec::new();
        let mut ping = Vec::new();
        let mut probe = Vec::new();
        for (name, r) in &self.rooms {
            if r.leaving.is_some() {
                continue;
            }
            // Listed members we gave up on: a ping tells them we are here,
            // and anything back from them lets them in again.
            for user in &r.unheard {
                if let Some(addr) = r.listed.get(user) {
                    probe.push((name.clone(), user.clone(), *addr));
                }
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
        for (room, user, addr) in probe {
            self.control_to(&room, &user, addr, Body::Ping, now);
        }
        for (room, user) in silent {
            self.remove_member(&room, &user, Gone::Silent);
        }
    }

    /// A member did not acknowledge after every retry: report the messages
    /// it missed, by name, and drop it from the room.
    fn unreachable(&mut self, room: &str, user: &str, lost: Vec<Item>) {
        let ids: BTreeSet<u64> = lost
            .iter()
            .filter(|i| i.event == EventKind::Text)
            .map(|i| i.msg_id)
            .collect();
        if let Some(r) = self.rooms.get_mut(room) {
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
        self.remove_member(room, user, Gone::Unreachable);
    }
}
