//! Nothing lost across a blip (issue 16 item 7, first part): a member
//! dropped from the live list (silent, unreachable, or no longer listed:
//! it stops counting for liveness and delivery reports, so a killed member
//! still leaves every list within seconds) stays entitled, for
//! [`RETENTION`], to what our stream sent after the last seq it
//! acknowledged. Our outbox keeps those messages (within [`OUTBOX_MAX`]
//! messages), and a member let back in within the window is owed
//! everything after that seq: it gets what it missed, in order, once,
//! paced by its window, each datagram sealed at send time under the key
//! of the room's current epoch.
//!
//! [`OUTBOX_MAX`]: super::flow::OUTBOX_MAX

use super::engine::Engine;
use std::time::{Duration, Instant};

/// How long a member dropped from the live list stays entitled to what
/// it missed, unless `--room-retention` says otherwise
/// ([`Engine::set_retention`]).
pub const RETENTION: Duration = Duration::from_secs(600);

/// A member dropped from the live list, entitled to what it missed.
pub(super) struct Away {
    /// The last seq of our stream it acknowledged.
    pub acked: u64,
    /// When we last heard from it.
    pub since: Instant,
}

impl Engine {
    /// Member `user` was dropped from `room`'s live list: remember where it
    /// stood on our stream.
    pub(super) fn went_away(&mut self, room: &str, user: &str, acked: u64, since: Instant) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.away.insert(user.to_string(), Away { acked, since });
        }
    }

    /// Where member `user`, let back into `room` at `now`, stands on our
    /// stream: after the seq it last acknowledged when it is back within
    /// [`RETENTION`] and our outbox still holds what follows; else after
    /// our last (it is owed what we send from now on).
    pub(super) fn comes_back(&mut self, room: &str, user: &str, now: Instant) -> u64 {
        let retention = self.retention;
        let Some(r) = self.rooms.get_mut(room) else {
            return 0;
        };
        let last = r.tx.last();
        let Some(away) = r.away.remove(user) else {
            return last;
        };
        let kept =
            r.tx.buf
                .first_key_value()
                .map_or(last + 1, |(&first, _)| first);
        let fresh = now.saturating_duration_since(away.since) < retention;
        if fresh && away.acked + 1 >= kept && away.acked <= last {
            away.acked
        } else {
            last
        }
    }

    /// The lowest seq our outbox must keep in `room`: every live member's
    /// acknowledgement and every recent away member's.
    pub(super) fn outbox_floor(&mut self, room: &str, now: Instant) -> Option<u64> {
        let retention = self.retention;
        let r = self.rooms.get_mut(room)?;
        r.away
            .retain(|_, a| now.saturating_duration_since(a.since) < retention);
        let live = r.members.values().map(|m| m.flow.acked);
        let away = r.away.values().map(|a| a.acked);
        live.chain(away).min()
    }
}

impl Engine {
    /// The outbox holds more than [`OUTBOX_MAX`](super::flow::OUTBOX_MAX):
    /// away members further behind lose their claim (they will be told
    /// they missed messages when they are back), and the outbox shrinks.
    pub(super) fn outbox_overflow(&mut self, room: &str, floor: u64, now: Instant) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.away.retain(|_, a| a.acked >= floor);
        let last = r.tx.last();
        let min = self.outbox_floor(room, now);
        if let Some(r) = self.rooms.get_mut(room) {
            r.tx.trim(min.unwrap_or(last));
        }
    }
}
