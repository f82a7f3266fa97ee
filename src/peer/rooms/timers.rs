//! When each member's flow and each inbound stream's acknowledgement is
//! next due, as a queue ordered by time: the sweep at a deadline handles
//! only what is due then, instead of visiting every member and stream of
//! every room (in a room of 300, that visit per wake was most of a
//! member's work).
//!
//! Entries are lazy: each member and stream remembers the time it is
//! queued for (`timer`); an entry whose time no longer matches is stale
//! and skipped, and one whose target's deadline moved later is queued
//! again at the new time. A deadline that moves earlier is queued at once
//! by [`arm_flow`](Engine::arm_flow) / [`arm_ack`](Engine::arm_ack).

use super::engine::{Engine, Member};
use std::cmp::Reverse;
use std::time::Instant;

/// What a queued deadline is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// A member's flow: retransmissions, its window, or giving up on it.
    Flow { room: String, user: String },
    /// A LATE notice to `user` to repeat (or give up on).
    Notice { room: String, user: String },
    /// The acknowledgement of stream `stream` from `user`.
    Ack {
        room: String,
        user: String,
        stream: u64,
    },
}

/// When member flow `flow` must be looked at next.
pub(super) fn flow_due(flow: &super::flow::Flow) -> Option<Instant> {
    [flow.deadline(), flow.stall_at()]
        .into_iter()
        .flatten()
        .min()
}

pub(super) type Queue = std::collections::BinaryHeap<Reverse<(Instant, Timer)>>;

impl Engine {
    /// Queues member `user`'s flow at its next deadline (retransmission,
    /// time-out, or the moment it counts as stalled), unless it is queued
    /// for that time or earlier already.
    pub(super) fn arm_flow(&mut self, room: &str, user: &str) {
        if let Some(m) = self
            .rooms
            .get_mut(room)
            .and_then(|r| r.members.get_mut(user))
        {
            arm_member(&mut self.timers, room, user, m);
        }
    }

    /// Queues the acknowledgement of stream `at` from `user` at its time.
    pub(super) fn arm_ack(&mut self, room: &str, user: &str, at: usize) {
        let Some(s) = self
            .rooms
            .get_mut(room)
            .and_then(|r| r.inbound.get_mut(user))
            .and_then(|i| i.streams.get_mut(at))
        else {
            return;
        };
        let Some(when) = s.rx.ack_at else { return };
        if s.timer.is_some_and(|t| t <= when) {
            return;
        }
        s.timer = Some(when);
        let timer = Timer::Ack {
            room: room.to_string(),
            user: user.to_string(),
            stream: s.rx.id,
        };
        self.timers.push(Reverse((when, timer)));
    }

    /// The earliest queued deadline (maybe a stale one: waking early is
    /// harmless).
    pub(super) fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Handles every flow and acknowledgement due at `now`.
    pub(super) fn sweep(&mut self, now: Instant) {
        while self
            .timers
            .peek()
            .is_some_and(|Reverse((at, _))| *at <= now)
        {
            let Some(Reverse((at, timer))) = self.timers.pop() else {
                break;
            };
            match timer {
                Timer::Flow { room, user } => {
                    let Some(r) = self.rooms.get_mut(&room) else {
                        continue;
                    };
                    // Waiting for the key, nothing goes out and no member
                    // is judged for it: the new key pumps them all.
                    let stale = r.stale;
                    let Some(m) = r.members.get_mut(&user) else {
                        continue;
                    };
                    if m.timer != Some(at) {
                        continue;
                    }
                    m.timer = None;
                    if stale {
                        continue;
                    }
                    if m.flow.stalled(now) {
                        self.unreachable(&room, &user, now);
                    } else if m.flow.deadline().is_some_and(|t| t <= now) {
                        self.pump(&room, &user, now);
                    } else {
                        self.arm_flow(&room, &user);
                    }
                }
                Timer::Notice { room, user } => {
                    let waiting = self
                        .rooms
                        .get(&room)
                        .and_then(|r| r.members.get(&user))
                        .is_some_and(|m| m.notice.is_some());
                    if waiting {
                        self.pump(&room, &user, now);
                    }
                }
                Timer::Ack { room, user, stream } => {
                    let Some(pos) = self
                        .rooms
                        .get_mut(&room)
                        .and_then(|r| r.inbound.get_mut(&user))
                        .and_then(|i| i.streams.iter().position(|s| s.rx.id == stream))
                    else {
                        continue;
                    };
                    let Some(s) = self
                        .rooms
                        .get_mut(&room)
                        .and_then(|r| r.inbound.get_mut(&user))
                        .and_then(|i| i.streams.get_mut(pos))
                    else {
                        continue;
                    };
                    if s.timer != Some(at) {
                        continue;
                    }
                    s.timer = None;
                    self.maybe_ack(&room, &user, pos, now);
                }
            }
        }
    }
}

/// Queues member `user`'s flow at its next deadline, unless it is queued
/// no later already.
pub(super) fn arm_member(timers: &mut Queue, room: &str, user: &str, m: &mut Member) {
    let Some(at) = flow_due(&m.flow) else {
        return;
    };
    if m.timer.is_some_and(|t| t <= at) {
        return;
    }
    m.timer = Some(at);
    let timer = Timer::Flow {
        room: room.to_string(),
        user: user.to_string(),
    };
    timers.push(Reverse((at, timer)));
}
