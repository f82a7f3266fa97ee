//! Time passing: the sweep of members' flows (retransmissions, windows
//! opening, giving up on a member) and of streams' acknowledgements,
//! progress reports of slow messages, rooms we left finishing, asking the
//! registry for the members, liveness pings (and probes of members we
//! gave up on), and dropping members that fell silent.
//!
//! Liveness costs a bounded number of datagrams per member whatever the
//! room's size: anything a member sends counts as a sign of life, a ping
//! goes only to members we sent nothing to for a round, and at most
//! [`PINGS_PER_ROUND`] of them per room and round, in turn. Verdicts go by
//! the receive time of the last datagram from a member (the driver stamps
//! datagrams as they come off the socket), never by our own queue.

use super::engine::{
    Engine, PINGS_PER_ROUND, PING_EVERY, PROGRESS_AFTER, SILENT_LIMIT, SILENT_ROUNDS,
};
use super::event::{Event, Gone};
use crate::protocol::datagram::{Body, EventKind};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How long a member of a room of `members` others may stay silent: every
/// other member pings it at least once per its ping cycle.
pub fn silent_limit(members: usize) -> Duration {
    let rounds = members.div_ceil(PINGS_PER_ROUND).max(1) as u32;
    SILENT_LIMIT.max(PING_EVERY * rounds * SILENT_ROUNDS)
}

impl Engine {
    /// Does whatever is due at `now`. Cheap when nothing is; the driver
    /// may call it more often than [`poll_timeout`](Engine::poll_timeout) asks.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.injector.release(now);
        self.sweep(now);
        let names: Vec<String> = self.rooms.keys().cloned().collect();
        for room in names {
            let progress: Vec<(u64, usize, usize)> = match self.rooms.get_mut(&room) {
                Some(r) => {
                    // Messages go out in id order: the slow ones are a run
                    // from the first not yet shown.
                    let mut shown = Vec::new();
                    for (id, o) in r.out.range_mut(r.progress_from..) {
                        if now < o.sent_at + PROGRESS_AFTER {
                            break;
                        }
                        o.progress_shown = true;
                        shown.push((*id, o.total - o.remaining.len() - o.failed.len(), o.total));
                    }
                    if let Some(&(id, _, _)) = shown.last() {
                        r.progress_from = id + 1;
                    }
                    shown
                }
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
                .is_some_and(|r| (r.leaving.is_none() || r.stale) && now >= r.next_poll)
            {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.last_refresh = None;
                }
                self.refresh_members(&room, now);
            }
            if self
                .rooms
                .get(&room)
                .is_some_and(|r| r.leaving.is_some_and(|t| now >= t))
            {
                self.finish_leaving(&room);
            } else {
                self.check_left(&room);
            }
        }

        self.run_progress(now);
        if self.next_ping.is_some_and(|t| now >= t) {
            self.next_ping = (!self.rooms.is_empty()).then_some(now + PING_EVERY);
            self.liveness(now);
        }
    }

    fn liveness(&mut self, now: Instant) {
        let mut silent = Vec::new();
        let mut ping = Vec::new();
        let mut probe = Vec::new();
        for (name, r) in self.rooms.iter_mut() {
            // Waiting for a key we hear nothing: nobody is judged by it.
            if r.leaving.is_some() || r.stale {
                continue;
            }
            // Listed members we gave up on: a ping tells them we are here,
            // and anything back from them lets them in again.
            for user in &r.unheard {
                if let Some(addr) = r.listed.get(user) {
                    probe.push((name.clone(), *addr));
                }
            }
            let limit = silent_limit(r.members.len());
            for (user, m) in r.members.iter() {
                if now.saturating_duration_since(m.last_heard) >= limit {
                    silent.push((name.clone(), user.clone()));
                }
            }
            // In turn from where the last round stopped.
            let order = r.members.after(&r.ping_after);
            let mut last = None;
            let mut n = 0;
            for (user, m) in order {
                if n == PINGS_PER_ROUND {
                    break;
                }
                last = Some(user.clone());
                if now.saturating_duration_since(m.last_sent) >= PING_EVERY {
                    ping.push((name.clone(), user.clone()));
                    n += 1;
                }
            }
            if let Some(last) = last {
                r.ping_after = last;
            }
        }
        for (room, user) in ping {
            self.control(&room, &user, Body::Ping, now);
        }
        for (room, addr) in probe {
            self.control_to(&room, addr, Body::Ping, now);
        }
        for (room, user) in silent {
            self.remove_member(&room, &user, Gone::Silent);
        }
    }

    /// A member acknowledged nothing for too long: report the messages it
    /// missed, by name, and drop it from the room.
    pub(super) fn unreachable(&mut self, room: &str, user: &str, _now: Instant) {
        let ids: BTreeSet<u64> = match self.rooms.get(room) {
            Some(r) => {
                let acked = r.members.get(user).map_or(0, |m| m.flow.acked);
                r.tx.buf
                    .range(acked + 1..)
                    .filter(|(_, s)| s.item.event == EventKind::Text)
                    .map(|(_, s)| s.item.msg_id)
                    .collect()
            }
            None => return,
        };
        if let Some(r) = self.rooms.get_mut(room) {
            let slot = r.slots.get(user).copied();
            for id in &ids {
                if let Some(o) = r.out.get_mut(id) {
                    if o.remaining.remove(slot) {
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
