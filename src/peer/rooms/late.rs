//! Late marks (issue 16 item 7): what a member missed while it was away
//! reaches it marked as late, every message of it and nothing else.
//!
//! A sender that lets a member back in owing it seqs of its stream (see
//! [`retain`](super::retain)) first tells it so with a LATE notice ("what
//! you get of my stream up to seq `upto` was sent while you were away"),
//! and sends it nothing of its stream until the member answers that it
//! noted it: so no message of the catch-up can arrive before its mark,
//! whatever the network loses or reorders. The notice is repeated every
//! [`NOTICE_REPEAT`] while unanswered; after [`NOTICE_PATIENCE`] (a peer
//! too old to know LATE, or a path that loses everything) the sender
//! sends the catch-up anyway, unmarked: a mark is never worth a message.

use super::engine::Engine;
use super::timers::Timer;
use crate::protocol::datagram::Body;
use std::cmp::Reverse;
use std::time::{Duration, Instant};

/// An unanswered LATE notice is repeated this often…
pub const NOTICE_REPEAT: Duration = Duration::from_millis(20);
/// …for at most this long, after which the catch-up goes unmarked.
pub const NOTICE_PATIENCE: Duration = Duration::from_secs(1);

/// A LATE notice to a member, not yet noted.
pub(super) struct Notice {
    /// The last seq of our stream sent while it was away.
    pub upto: u64,
    /// When the member was let back in.
    pub since: Instant,
    /// When the notice last went out.
    pub told: Option<Instant>,
}

impl Engine {
    /// Whether our stream to member `user` of `room` must wait for its
    /// LATE notice to be noted; sends (or repeats) the notice when due.
    pub(super) fn hold_for_notice(&mut self, room: &str, user: &str, now: Instant) -> bool {
        let Some(r) = self.rooms.get_mut(room) else {
            return false;
        };
        let stream = r.tx.id;
        let Some(m) = r.members.get_mut(user) else {
            return false;
        };
        let Some(n) = m.notice.as_mut() else {
            return false;
        };
        if now.saturating_duration_since(n.since) >= NOTICE_PATIENCE {
            log::debug!("{user} did not note its LATE notice in {room}: catch-up sent unmarked");
            m.notice = None;
            return false;
        }
        if n.told
            .is_some_and(|t| now.saturating_duration_since(t) < NOTICE_REPEAT)
        {
            return true;
        }
        n.told = Some(now);
        let upto = n.upto;
        let late = Body::Late {
            to: user.to_string(),
            stream,
            upto,
            noted: false,
        };
        self.control(room, user, late, now);
        let timer = Timer::Notice {
            room: room.to_string(),
            user: user.to_string(),
        };
        self.timers.push(Reverse((now + NOTICE_REPEAT, timer)));
        true
    }

    /// A LATE datagram from `from`: its notice about its stream (we note
    /// it, and mark what follows), or its answer to ours (the catch-up
    /// goes now).
    pub(super) fn on_late(
        &mut self,
        room: &str,
        from: &str,
        (stream, upto, noted): (u64, u64, bool),
        now: Instant,
    ) {
        if noted {
            let Some(r) = self.rooms.get_mut(room) else {
                return;
            };
            if stream != r.tx.id {
                return;
            }
            let Some(m) = r.members.get_mut(from) else {
                return;
            };
            if m.notice.as_ref().is_some_and(|n| n.upto == upto) {
                m.notice = None;
                self.pump(room, from, now);
            }
            return;
        }
        let Some(at) = self.inbound_stream(room, from, stream, now) else {
            return;
        };
        let Some(this) = self.stream_at(room, from, at) else {
            return;
        };
        this.last = now;
        this.rx.late(upto);
        let answer = Body::Late {
            to: from.to_string(),
            stream,
            upto,
            noted: true,
        };
        self.control(room, from, answer, now);
    }
}
